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
use clawfirst_policy::{Decision, PaymentFacts};
use clawfirst_solana::ledger::LedgerError;
use clawfirst_store::approval::{APPROVAL_REJECTED, APPROVAL_TIMEOUT};
use clawfirst_store::{
    AuditEvent, Failure, Session, SessionPatch, SessionState, SettlementConstraint, StoreError,
};
use serde_json::json;
use tracing::{debug, instrument, warn};

use super::outcome::reservation_of;
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

        // 2. The credential's own limit, then policy.
        let amount = Amount::from_base_units(session.asset, session.amount)
            .map_err(|e| internal("session amount", &e))?;
        caller.check_delegated(amount)?;
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
                .approve(&session, reservation, patch, audit, &version)
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
            .approve(&session, reservation, patch, audit, &version)
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
        // The payee's directory name, however the agent named it: a policy that lists the
        // e-mail covers the address too.
        let label = self.payees.email_of(&session.recipient);
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
            Err(StoreError::StateConflict { .. }) => self.reload(&session.id).await,
            Err(e) => Err(internal("close session", &e)),
        }
    }
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
