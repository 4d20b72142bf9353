//! `authorize_transaction`: approval, grant, signature, submission.
//!
//! The sequence, each step persisted before the next takes effect outward:
//! 1. the session is the caller's, `initialized`, not expired, not scheduled for later;
//! 2. policy evaluates the payment and returns a permit or a denial;
//! 3. the transaction message is built and the wallet's funds are checked;
//! 4. a grant binding the message and the transfer is signed with the grant key;
//! 5. the budget is reserved and the session moves to `approved` in one atomic step;
//! 6. the signer signs; the signed transaction is stored (`signed`) (see `submit`);
//! 7. the transaction is submitted (`submitted`).

use clawfirst_core::grant::GrantBody;
use clawfirst_core::{Amount, GrantId, SessionId, now_ms};
use clawfirst_policy::{Decision, PaymentFacts};
use clawfirst_solana::build_message;
use clawfirst_solana::ledger::LedgerError;
use clawfirst_store::{
    AuditEvent, BudgetWindow, Failure, Reservation, Session, SessionPatch, SessionState, StoreError,
};
use serde_json::json;
use tracing::{debug, info, instrument, warn};

use super::{Caller, PaymentService, ToolResult, internal};
use crate::error::{ErrorCode, ToolError};

impl PaymentService {
    /// Approves, signs and submits a session's payment.
    ///
    /// Calling it again on a session that is already past approval returns where it stands,
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
            SessionState::Approved
            | SessionState::Signed
            | SessionState::Submitted
            | SessionState::Confirmed
            | SessionState::Finalized => return Ok(self.session_view(&session)),
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
        if let Some(after) = session.execute_after_ms.filter(|t| now < *t) {
            return Err(ToolError::new(
                ErrorCode::InvalidState,
                "the payment is scheduled for later",
            )
            .with_details(json!({ "execute_after_ms": after }))
            .retryable());
        }

        // 2. Policy.
        let amount = Amount::from_base_units(session.asset, session.amount)
            .map_err(|e| internal("session amount", &e))?;
        let permit = match self.policy.evaluate(&PaymentFacts {
            agent_id: &caller.agent_id,
            amount,
        }) {
            Decision::Allow(permit) => permit,
            Decision::Deny(denial) => {
                info!(
                    policy.rule = %denial.rule,
                    policy.version = %denial.policy_version,
                    "payment denied"
                );
                let failure = Failure {
                    code: "POLICY_VIOLATION".into(),
                    message: denial.reason.clone(),
                };
                self.close(
                    &session,
                    SessionState::Rejected,
                    Some((failure, denial.rule.name())),
                    "policy.denied",
                )
                .await?;
                return Err(policy_violation(
                    denial.rule.name(),
                    &denial.reason,
                    &denial.policy_version.to_string(),
                ));
            }
        };
        debug!(policy.rule = %permit.rule(), "payment allowed by policy");

        // 3. The transaction message, and whether the wallet can pay for it.
        let transfer = self.transfer_of(&session)?;
        let blockhash = self.ledger.latest_blockhash().await.map_err(ledger_error)?;
        let plan = self.plan(transfer, Some(session.id.as_str()));
        if let Err(e) = self.check_rent(&transfer).await {
            let reason = e.message.clone();
            return Err(self
                .fail_with(&session, e, reason, "session.unpayable")
                .await);
        }
        self.check_funds(&plan).await?;
        let message =
            build_message(&plan, blockhash.hash).map_err(|e| internal("build message", &e))?;

        // 4. The grant.
        let issued = now_ms();
        let grant_body = GrantBody {
            grant_id: GrantId::random(),
            issued_at_ms: issued,
            expires_at_ms: issued + self.settings.grant_ttl_ms,
            agent_id: caller.agent_id.clone(),
            session_id: session.id.clone(),
            key_id: key_id.clone(),
            message_sha256: GrantBody::hash_message(&message),
            transfer,
        };
        let grant = self.grant_signer.sign(&grant_body);

        // 5. Reserve the budget and approve, atomically.
        let reservation = Reservation::new(
            permit
                .budgets()
                .iter()
                .map(|b| BudgetWindow::new(b.rule.name(), b.window_ms, b.cap))
                .collect(),
        );
        let patch = SessionPatch {
            message: Some(message.clone()),
            grant_id: Some(grant_body.grant_id),
            blockhash_last_valid_slot: Some(blockhash.last_valid_slot),
            policy_rule: Some(permit.rule().name().to_owned()),
            ..SessionPatch::default()
        };
        let audit = AuditEvent::agent(&caller.agent_id, "grant.issued")
            .session(&session.id)
            .details(json!({
                "grant_id": grant_body.grant_id.to_string(),
                "policy_rule": permit.rule().name(),
                "policy_version": permit.policy_version().to_string(),
                "message_sha256": hex::encode(grant_body.message_sha256),
                "expires_at_ms": grant_body.expires_at_ms,
            }));
        let approved = match self
            .store
            .reserve_and_transition(
                &session.id,
                SessionState::Initialized,
                SessionState::Approved,
                reservation,
                patch,
                audit,
            )
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(exceeded)) => {
                info!(policy.rule = %exceeded.name, "payment denied by a rolling cap");
                let reason = format!(
                    "the payment would exceed the {} ({} of {} base units used)",
                    exceeded.name, exceeded.used, exceeded.cap
                );
                let failure = Failure {
                    code: "POLICY_VIOLATION".into(),
                    message: reason.clone(),
                };
                self.close(
                    &session,
                    SessionState::Rejected,
                    Some((failure, &exceeded.name)),
                    "policy.denied",
                )
                .await?;
                return Err(policy_violation(
                    &exceeded.name,
                    &reason,
                    &permit.policy_version().to_string(),
                ));
            }
            Err(StoreError::StateConflict { .. }) => {
                // Another call moved the session first; report where it is now.
                let now = self.session_of(caller, id).await?;
                return Ok(self.session_view(&now));
            }
            Err(e) => return Err(internal("reserve budget", &e)),
        };

        // 6 and 7.
        self.sign_and_submit(approved, &key_id, &message, grant)
            .await
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
    match state {
        SessionState::Expired => {
            ToolError::new(ErrorCode::SessionExpired, "the session has expired")
                .with_details(details)
        }
        SessionState::AwaitingApproval => ToolError::new(
            ErrorCode::ApprovalRequired,
            "the payment is waiting for human approval",
        )
        .with_details(details),
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
