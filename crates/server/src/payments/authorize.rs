//! `authorize_transaction`: the approval layer's decision, then signature and submission.
//!
//! The sequence, each step persisted before the next takes effect outward:
//! 1. the session is the caller's, `initialized`, not expired; the agent is active;
//! 2. policy evaluates the payment: allow, needs approval, or deny (naming the rule);
//! 3. a payment that needs human approval reserves its budget and waits in
//!    `awaiting_approval`; approvers release it later ([`super::approvals`]);
//! 4. an allowed payment scheduled for later reserves its budget and waits in `approved`
//!    until its time ([`PaymentService::execute_approved`]);
//! 5. otherwise the message is built, the wallet's funds checked and a grant signed;
//! 6. the budget is reserved, the session approved and the grant recorded in one atomic step;
//! 7. the signer signs; the signed transaction is stored (`signed`); it is submitted.

use clawfirst_core::{Amount, SessionId, now_ms};
use clawfirst_policy::{ApprovalRequirement, BudgetCap, Decision, Denial, Measure, PaymentFacts};
use clawfirst_solana::ledger::LedgerError;
use clawfirst_store::approval::{APPROVAL_REJECTED, APPROVAL_TIMEOUT};
use clawfirst_store::{
    AgentStatus, ApprovalRequest, AuditEvent, BudgetWindow, CapExceeded, Failure, Reservation,
    Session, SessionPatch, SessionState, SettlementConstraint, StoreError,
};
use serde_json::json;
use tracing::{debug, info, instrument, warn};

use super::{Caller, PaymentService, ToolResult, internal};
use crate::error::{ErrorCode, ToolError};

impl PaymentService {
    /// Approves, signs and submits a session's payment, or leaves it waiting for approvers or
    /// for its scheduled time.
    ///
    /// Calling it again on a session that is already past this point returns where it stands,
    /// so an agent that lost the first answer can simply retry.
    ///
    /// # Errors
    /// `POLICY_VIOLATION` naming the rule, `SESSION_EXPIRED`, `INSUFFICIENT_BALANCE`,
    /// `SIGNATURE_FAILED`, `TRANSACTION_FAILED`, `NETWORK_ERROR`, `INVALID_STATE`.
    #[instrument(skip_all, fields(agent.id = %caller.agent_id, session.id = %id))]
    pub async fn authorize_transaction(&self, caller: &Caller, id: &SessionId) -> ToolResult {
        // 1. The session and the agent.
        let session = self.session_of(caller, id).await?;
        match session.state {
            SessionState::Initialized => {}
            SessionState::AwaitingApproval
            | SessionState::Approved
            | SessionState::Signed
            | SessionState::Submitted
            | SessionState::Confirmed
            | SessionState::Finalized => return self.full_view(&session).await,
            other => return Err(state_error(&session, other)),
        }
        let (key_id, payer) = self.wallet_of(caller).await?;
        if key_id != session.key_id || payer != session.payer {
            return Err(ToolError::new(
                ErrorCode::InvalidWallet,
                "the agent's wallet changed",
            ));
        }
        let now = now_ms();
        if now >= session.expires_at_ms {
            self.close(&session, SessionState::Expired, None, "session.expired")
                .await?;
            return Err(ToolError::new(
                ErrorCode::SessionExpired,
                "the session has expired",
            ));
        }

        // 2. Policy.
        let permit = match self.evaluate(&session, now).await? {
            Decision::Allow(permit) => permit,
            Decision::NeedsApproval(requirement) => {
                // 3. Humans decide; the budget is held meanwhile.
                return self.await_approval(session, requirement, now).await;
            }
            Decision::Deny(denial) => return Err(self.deny(&session, denial).await),
        };
        debug!(policy.rule = %permit.rule(), "payment allowed by policy");
        let reservation = reservation_of(permit.budgets(), permit.usd_micros());
        let version = permit.policy_version().to_string();
        let policy_details = json!({
            "policy_rule": permit.rule().name(),
            "policy_tier": permit.tier(),
            "policy_version": version,
        });

        // 4. Scheduled for later: approve now, execute at its time.
        if session.execute_after_ms.is_some_and(|t| now < t) {
            let patch = SessionPatch {
                policy_rule: Some(permit.rule().name().to_owned()),
                ..SessionPatch::default()
            };
            let audit = AuditEvent::agent(&caller.agent_id, "policy.allowed")
                .session(&session.id)
                .details(policy_details);
            let approved = self
                .reserve(
                    &session,
                    SessionState::Approved,
                    reservation,
                    patch,
                    audit,
                    &version,
                )
                .await?;
            return self.full_view(&approved).await;
        }

        // 5. The message and the grant.
        let prepared = self.prepare(&session, &key_id, policy_details).await?;

        // 6. Reserve the budget, approve and record the grant, atomically.
        let mut patch = prepared.patch();
        patch.policy_rule = Some(permit.rule().name().to_owned());
        let audit = AuditEvent::agent(&caller.agent_id, "grant.issued")
            .session(&session.id)
            .details(prepared.audit_details.clone());
        let approved = self
            .reserve(
                &session,
                SessionState::Approved,
                reservation,
                patch,
                audit,
                &version,
            )
            .await?;
        if approved.grant_id != Some(prepared.grant_id) {
            // Another call approved it first; report where it is.
            return self.full_view(&approved).await;
        }

        // 7. Sign and submit.
        self.sign_and_submit(
            approved,
            &key_id,
            &prepared.message,
            prepared.grant,
            Vec::new(),
        )
        .await
    }

    /// Evaluates the session's payment against the current policy.
    async fn evaluate(&self, session: &Session, now: u64) -> Result<Decision, ToolError> {
        let amount = Amount::from_base_units(session.asset, session.amount)
            .map_err(|e| internal("session amount", &e))?;
        let policy = self.policy.current();
        let first_payment = if policy.uses_recipient_history(&session.agent_id) {
            !self
                .store
                .has_paid_recipient(&session.agent_id, &session.recipient)
                .await
                .map_err(|e| internal("recipient history", &e))?
        } else {
            false
        };
        let label = session
            .recipient_input
            .contains('@')
            .then_some(session.recipient_input.as_str());
        let facts = PaymentFacts {
            agent_id: &session.agent_id,
            agent_state: clawfirst_policy::AgentState::Active,
            network: self.ledger.network().name(),
            amount,
            recipient: &session.recipient,
            recipient_label: label,
            purpose: session.purpose.as_deref(),
            first_payment_to_recipient: first_payment,
            defer_until_approval: session.settlement_constraint
                == SettlementConstraint::DeferUntilApproval,
            at_ms: now,
            usage: None,
        };
        Ok(policy.evaluate(&facts))
    }

    /// Reserves the session's budget and moves it to `to`; a cap that would be exceeded
    /// rejects the session and is returned as the agent's error.
    async fn reserve(
        &self,
        session: &Session,
        to: SessionState,
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
                to,
                reservation,
                patch,
                audit,
            )
            .await;
        self.reserved(session, outcome, policy_version).await
    }

    /// Interprets the outcome of an atomic reservation.
    async fn reserved(
        &self,
        session: &Session,
        outcome: Result<Result<Session, CapExceeded>, StoreError>,
        policy_version: &str,
    ) -> Result<Session, ToolError> {
        match outcome {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(exceeded)) => Err(self.cap_exceeded(session, exceeded, policy_version).await),
            Err(StoreError::StateConflict { .. }) => self
                .store
                .session(&session.id)
                .await
                .map_err(|e| internal("reload session", &e))?
                .ok_or_else(ToolError::internal),
            Err(e) => Err(internal("reserve budget", &e)),
        }
    }

    /// Holds the budget and waits for approvers; tells the webhook.
    async fn await_approval(
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
    async fn deny(&self, session: &Session, denial: Denial) -> ToolError {
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

    /// Moves a session to a side exit, with the failure and rule that caused it.
    pub(super) async fn close(
        &self,
        session: &Session,
        to: SessionState,
        failure: Option<(Failure, &str)>,
        event: &'static str,
    ) -> Result<Session, ToolError> {
        let (failure, rule) = match failure {
            Some((f, r)) => (Some(f), (!r.is_empty()).then(|| r.to_owned())),
            None => (None, None),
        };
        let audit = AuditEvent::system(event).session(&session.id).details(json!({
            "to": to.to_string(),
            "failure": failure.as_ref().map(|f| json!({ "code": f.code, "message": f.message })),
            "rule": rule,
        }));
        let patch = SessionPatch {
            failure,
            policy_rule: rule,
            ..SessionPatch::default()
        };
        match self
            .store
            .transition(&session.id, session.state, to, patch, audit)
            .await
        {
            Ok(s) => Ok(s),
            Err(StoreError::StateConflict { .. }) => self
                .store
                .session(&session.id)
                .await
                .map_err(|e| internal("reload session", &e))?
                .ok_or_else(ToolError::internal),
            Err(e) => Err(internal("close session", &e)),
        }
    }
}

fn policy_violation(rule: &str, reason: &str, version: &str) -> ToolError {
    ToolError::new(
        ErrorCode::PolicyViolation,
        format!("denied by {rule}: {reason}"),
    )
    .with_details(json!({ "rule": rule, "policy_version": version }))
}

/// The error for a session whose state does not allow authorization.
pub(super) fn state_error(session: &Session, state: SessionState) -> ToolError {
    let details = json!({ "session_id": session.id.as_str(), "state": state.to_string() });
    let failure = session.failure.as_ref().map(|f| f.code.as_str());
    match state {
        SessionState::Expired if failure == Some(APPROVAL_TIMEOUT) => ToolError::new(
            ErrorCode::ApprovalTimeout,
            "no approval quorum was reached before the approval expired",
        )
        .with_details(details),
        SessionState::Rejected if failure == Some(APPROVAL_REJECTED) => ToolError::new(
            ErrorCode::PolicyViolation,
            "an approver rejected the payment",
        )
        .with_details(json!({
            "session_id": session.id.as_str(),
            "state": state.to_string(),
            "rule": "human_approval",
            "reason": session.failure.as_ref().map(|f| f.message.as_str()),
        })),
        SessionState::Expired => {
            ToolError::new(ErrorCode::SessionExpired, "the session has expired")
                .with_details(details)
        }
        _ => ToolError::new(ErrorCode::InvalidState, format!("the session is {state}"))
            .with_details(details),
    }
}

/// Maps a ledger failure to what the agent sees.
pub(super) fn ledger_error(e: LedgerError) -> ToolError {
    warn!(error = %super::ErrorChain(&e), "ledger failure");
    match e {
        LedgerError::Rpc { .. } => {
            ToolError::new(ErrorCode::RpcError, "the ledger answered with an error").retryable()
        }
        _ => ToolError::new(ErrorCode::NetworkError, "the ledger is unavailable").retryable(),
    }
}

/// The store's reservation for the budgets a decision names.
fn reservation_of(budgets: &[BudgetCap], usd_micros: Option<u64>) -> Reservation {
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
