//! What a policy decision does to a session: the atomic reservation of its budget, the wait
//! for human approvers, a rejection naming the rule, and the breaker a canary payee trips.
//!
//! Every outcome is written before the agent hears of it: a reservation together with the
//! session's move (one transaction, so parallel payments cannot exceed a cap together), a
//! rejection together with the rule and reason the agent is given.

use clawfirst_policy::{ApprovalRequirement, BudgetCap, Denial, Measure};
use clawfirst_store::{
    AgentStatus, ApprovalRequest, AuditEvent, BudgetWindow, CapExceeded, Failure, Reservation,
    Session, SessionPatch, SessionState, StoreError,
};
use serde_json::json;
use tracing::{info, warn};

use super::{PaymentService, ToolResult, internal};
use crate::error::{ErrorCode, ToolError};

impl PaymentService {
    /// Reserves the session's budget and approves it (`initialized` to `approved`); a cap
    /// that would be exceeded rejects the session and is returned as the agent's error.
    pub(super) async fn approve(
        &self,
        session: &Session,
        reservation: Reservation,
        patch: SessionPatch,
        audit: AuditEvent,
        policy_version: &str,
    ) -> Result<Session, ToolError> {
        let outcome = self
            .store
            .reserve_and_transition(
                &session.id,
                SessionState::Initialized,
                SessionState::Approved,
                reservation,
                patch,
                audit,
            )
            .await;
        self.reserved(session, outcome, policy_version).await
    }

    /// Interprets the outcome of an atomic reservation.
    pub(super) async fn reserved(
        &self,
        session: &Session,
        outcome: Result<Result<Session, CapExceeded>, StoreError>,
        policy_version: &str,
    ) -> Result<Session, ToolError> {
        match outcome {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(exceeded)) => Err(self.cap_exceeded(session, exceeded, policy_version).await),
            Err(StoreError::StateConflict { .. }) => self.reload(&session.id).await,
            Err(e) => Err(internal("reserve budget", &e)),
        }
    }

    /// Holds the budget and waits for approvers; tells the webhook.
    pub(super) async fn await_approval(
        &self,
        session: Session,
        requirement: ApprovalRequirement,
        now: u64,
    ) -> ToolResult {
        info!(
            policy.rule = %requirement.rule(),
            approval.group = requirement.group(),
            approval.required = requirement.required(),
            "payment needs human approval"
        );
        let version = requirement.policy_version().to_string();
        let request = ApprovalRequest {
            tier: requirement.tier().map(str::to_owned),
            rule: requirement.rule().name().to_owned(),
            group: requirement.group().to_owned(),
            eligible: requirement.approvers().to_vec(),
            required: requirement.required(),
            expires_at_ms: now.saturating_add(requirement.timeout_ms()),
            policy_version: version.clone(),
        };
        let patch = SessionPatch {
            policy_rule: Some(requirement.rule().name().to_owned()),
            ..SessionPatch::default()
        };
        let audit = AuditEvent::agent(&session.agent_id, "approval.requested")
            .session(&session.id)
            .details(json!({
                "policy_rule": requirement.rule().name(),
                "policy_tier": requirement.tier(),
                "policy_version": version,
                "group": request.group,
                "required": request.required,
                "expires_at_ms": request.expires_at_ms,
            }));
        let reservation = reservation_of(requirement.budgets(), requirement.usd_micros());
        let outcome = self
            .store
            .reserve_and_await_approval(
                &session.id,
                SessionState::Initialized,
                reservation,
                request,
                patch,
                audit,
            )
            .await;
        let waiting = self.reserved(&session, outcome, &version).await?;
        if waiting.state == SessionState::AwaitingApproval {
            self.notify_pending(&waiting).await;
        }
        self.full_view(&waiting).await
    }

    /// Rejects the session for a policy denial; a canary payee also suspends the agent.
    pub(super) async fn deny(&self, session: &Session, denial: Denial) -> ToolError {
        info!(
            policy.rule = %denial.rule,
            policy.version = %denial.policy_version,
            "payment denied"
        );
        if denial.trips_breaker {
            self.trip_breaker(session, &denial).await;
        }
        let failure = Failure {
            code: ErrorCode::PolicyViolation.as_str().into(),
            message: denial.reason.clone(),
        };
        if let Err(e) = self
            .close(
                session,
                SessionState::Rejected,
                Some((failure, denial.rule.name())),
                "policy.denied",
            )
            .await
        {
            return e;
        }
        policy_violation(
            denial.rule.name(),
            &denial.reason,
            &denial.policy_version.to_string(),
        )
    }

    /// Suspends the agent after a payment attempt no legitimate agent makes.
    async fn trip_breaker(&self, session: &Session, denial: &Denial) {
        warn!(
            agent.id = %session.agent_id,
            policy.rule = %denial.rule,
            "breaker tripped: agent suspended"
        );
        let audit = AuditEvent::system("breaker.tripped")
            .session(&session.id)
            .details(json!({
                "agent_id": session.agent_id.as_str(),
                "rule": denial.rule.name(),
            }));
        if let Err(e) = self
            .store
            .set_agent_status(&session.agent_id, AgentStatus::Suspended, audit)
            .await
        {
            warn!(error = %super::ErrorChain(&e), "could not suspend the agent");
        }
    }

    /// Rejects the session whose reservation a rolling cap refused.
    async fn cap_exceeded(
        &self,
        session: &Session,
        exceeded: CapExceeded,
        policy_version: &str,
    ) -> ToolError {
        info!(policy.rule = %exceeded.name, "payment denied by a rolling cap");
        let reason = format!(
            "the payment would exceed the {} ({} of {} used)",
            exceeded.name, exceeded.used, exceeded.cap
        );
        let failure = Failure {
            code: ErrorCode::PolicyViolation.as_str().into(),
            message: reason.clone(),
        };
        if let Err(e) = self
            .close(
                session,
                SessionState::Rejected,
                Some((failure, &exceeded.name)),
                "policy.denied",
            )
            .await
        {
            return e;
        }
        policy_violation(&exceeded.name, &reason, policy_version)
    }
}

pub(super) fn policy_violation(rule: &str, reason: &str, version: &str) -> ToolError {
    ToolError::new(
        ErrorCode::PolicyViolation,
        format!("denied by {rule}: {reason}"),
    )
    .with_details(json!({ "rule": rule, "policy_version": version }))
}

/// The store's reservation for the budgets a decision names.
pub(super) fn reservation_of(budgets: &[BudgetCap], usd_micros: Option<u64>) -> Reservation {
    let windows = budgets
        .iter()
        .map(|b| {
            let measure = match b.measure {
                Measure::BaseUnits => clawfirst_store::Measure::BaseUnits,
                Measure::UsdMicros => clawfirst_store::Measure::UsdMicros,
                Measure::Count => clawfirst_store::Measure::Count,
            };
            BudgetWindow::measured(b.rule.name(), b.window_ms, b.cap, measure)
        })
        .collect();
    let reservation = Reservation::new(windows);
    match usd_micros {
        Some(usd) => reservation.usd_micros(usd),
        None => reservation,
    }
}
