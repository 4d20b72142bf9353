//! Human approvals: what approvers see, how their signed decisions are checked and counted,
//! and what happens when a quorum is reached.
//!
//! A payment that policy sends to humans waits in `awaiting_approval` with its budget
//! reserved. Each approver signs a statement over the exact payment (session, agent, wallet key
//! and transfer) with their own Ed25519 key, on their own machine; the server only checks and
//! counts. The store counts each approver once and decides atomically, so concurrent votes
//! cannot over- or under-count. When the quorum is met the payment is signed and submitted
//! without the agent calling again; the signer checks the same signatures against its own list
//! of approvers before it signs above its floor.
//!
//! # Security
//!
//! - A vote is accepted only with a valid signature by the registered key of an active
//!   approver who is in the group the payment waits for, over this payment's exact facts,
//!   made within [`MAX_DECISION_AGE_MS`] and not in the future.
//! - The HTTP layer admits only operator credentials to these operations; an agent's
//!   credential can never approve.
//! - Refusals are precise in the log and plain to the caller.

use std::sync::Arc;

use clawfirst_core::approval::{ApprovalDecision, SignedApproval};
use clawfirst_core::grant::CLOCK_SKEW_MS;
use clawfirst_core::{SessionId, now_ms};
use clawfirst_store::{
    ApprovalRecord, ApproverStatus, AuditEvent, Session, SessionState, StoreError, Vote,
    VoteDecision,
};
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

use super::view::rfc3339;
use super::{PaymentService, internal};

/// How old a signed decision may be when it reaches the server.
pub const MAX_DECISION_AGE_MS: u64 = 10 * 60 * 1000;

/// Why a vote was not counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VoteError {
    /// No session with this id.
    #[error("no such payment session")]
    SessionNotFound,
    /// The session is not waiting for approvers.
    #[error("the payment is not waiting for approval; it is {0}")]
    NotWaiting(SessionState),
    /// The approver is not registered or was removed.
    #[error("unknown or removed approver")]
    UnknownApprover,
    /// The signature does not verify, or the statement is malformed.
    #[error("the signed decision is invalid")]
    BadSignature,
    /// The statement is signed by a key other than the approver's registered key.
    #[error("the decision is not signed by the approver's registered key")]
    WrongKey,
    /// The statement describes another payment.
    #[error("the signed decision is for a different payment")]
    WrongPayment,
    /// The statement's time is too old or in the future.
    #[error("the signed decision is too old or dated in the future")]
    Stale,
    /// The approver is not in the group the payment waits for.
    #[error("the approver is not eligible for this payment")]
    NotEligible,
    /// The approver has already decided on this payment.
    #[error("the approver has already decided on this payment")]
    Duplicate,
    /// The approval request expired.
    #[error("the approval request has expired")]
    Expired,
    /// A storage failure; details are in the log.
    #[error("internal failure")]
    Internal,
}

impl VoteError {
    /// The HTTP status the admin API answers with.
    pub fn status(&self) -> u16 {
        match self {
            VoteError::SessionNotFound => 404,
            VoteError::UnknownApprover | VoteError::NotEligible | VoteError::WrongKey => 403,
            VoteError::BadSignature | VoteError::WrongPayment | VoteError::Stale => 400,
            VoteError::NotWaiting(_) | VoteError::Duplicate | VoteError::Expired => 409,
            VoteError::Internal => 500,
        }
    }
}

impl PaymentService {
    /// The payments waiting for approvers, oldest first, as operators see them.
    ///
    /// # Errors
    /// A storage failure.
    pub async fn pending_approvals(&self, limit: usize) -> Result<Vec<Value>, StoreError> {
        let pending = self.store.pending_approvals(limit).await?;
        Ok(pending
            .iter()
            .map(|(session, record)| self.approval_view(session, Some(record)))
            .collect())
    }

    /// One session with its approval request, as an approver needs it to sign.
    ///
    /// # Errors
    /// A storage failure; `Ok(None)` when there is no such session.
    pub async fn approval(&self, id: &SessionId) -> Result<Option<Value>, StoreError> {
        let Some(session) = self.store.session(id).await? else {
            return Ok(None);
        };
        let record = self.store.approval_request(id).await?;
        Ok(Some(self.approval_view(&session, record.as_ref())))
    }

    /// Checks and records one approver's signed decision; a decision that completes the
    /// quorum starts signing in the background.
    ///
    /// # Errors
    /// A [`VoteError`] saying why the decision was not counted; nothing is written then.
    #[instrument(skip_all, fields(session.id = %id, approver = %approver))]
    pub async fn vote(
        self: &Arc<Self>,
        id: &SessionId,
        approver: &str,
        signed: SignedApproval,
        reason: Option<String>,
    ) -> Result<Value, VoteError> {
        let refused = |e: VoteError| {
            info!(reason = %e, "approval decision refused");
            e
        };

        // 1. The session and the approver's registered key.
        let session = self
            .store
            .session(id)
            .await
            .map_err(|e| store_failure("load session", &e))?
            .ok_or(VoteError::SessionNotFound)?;
        let record = self
            .store
            .approver(approver)
            .await
            .map_err(|e| store_failure("load approver", &e))?
            .filter(|a| a.status == ApproverStatus::Active)
            .ok_or_else(|| refused(VoteError::UnknownApprover))?;

        // 2. The signature, by that key, over this payment, made recently.
        let verified = signed
            .verify()
            .map_err(|_| refused(VoteError::BadSignature))?;
        let statement = verified.statement();
        if statement.approver != record.public_key {
            return Err(refused(VoteError::WrongKey));
        }
        let transfer = self
            .transfer_of(&session)
            .map_err(|_| VoteError::Internal)?;
        if statement.session_id != session.id
            || statement.agent_id != session.agent_id
            || statement.key_id != session.key_id
            || statement.transfer != transfer
        {
            return Err(refused(VoteError::WrongPayment));
        }
        let now = now_ms();
        if statement.decided_at_ms > now + CLOCK_SKEW_MS
            || statement.decided_at_ms + MAX_DECISION_AGE_MS < now
        {
            return Err(refused(VoteError::Stale));
        }

        // 3. Counted once, atomically; a reject or a quorum decides.
        let decision = match statement.decision {
            ApprovalDecision::Approve => VoteDecision::Approve,
            ApprovalDecision::Reject => VoteDecision::Reject,
        };
        let audit = AuditEvent::approver(approver, decision_event(decision))
            .session(id)
            .details(json!({
                "approver_public_key": record.public_key.to_string(),
                "decided_at_ms": statement.decided_at_ms,
                "reason": reason,
            }));
        let vote = Vote {
            approver: approver.to_owned(),
            decision,
            statement: signed.statement,
            signature: signed.signature,
            reason,
            at_ms: now,
        };
        let outcome = self
            .store
            .record_vote(id, vote, audit)
            .await
            .map_err(|e| refused(vote_error(e)))?;
        info!(
            approval.count = outcome.approvals,
            approval.required = outcome.required,
            "approval decision recorded"
        );

        // 4. Tell the webhook; sign a released payment without waiting for the agent.
        self.notify_decision(&outcome.session, approver, decision, outcome.approvals)
            .await;
        if outcome.decided == Some(SessionState::Approved) {
            let service = Arc::clone(self);
            let released = outcome.session.clone();
            tokio::spawn(async move {
                let id = released.id.clone();
                if let Err(e) = service.execute_approved(released).await {
                    warn!(session.id = %id, error = %e, "approved payment not executed yet");
                }
            });
        }
        let record = self
            .store
            .approval_request(id)
            .await
            .map_err(|e| store_failure("reload approvals", &e))?;
        Ok(self.approval_view(&outcome.session, record.as_ref()))
    }

    /// Tells the webhook that a payment waits for approvers.
    pub(super) async fn notify_pending(&self, session: &Session) {
        if !self.notifier.is_enabled() {
            return;
        }
        match self.store.approval_request(&session.id).await {
            Ok(record) => {
                let mut event = self.approval_view(session, record.as_ref());
                if let Some(map) = event.as_object_mut() {
                    map.insert("event".into(), json!("approval.pending"));
                    map.insert("at".into(), json!(rfc3339(now_ms())));
                }
                self.notifier.notify(event);
            }
            Err(e) => warn!(error = %super::ErrorChain(&e), "approval not notified"),
        }
    }

    /// Tells the webhook about one decision and, if it decided, the outcome.
    async fn notify_decision(
        &self,
        session: &Session,
        approver: &str,
        decision: VoteDecision,
        approvals: u32,
    ) {
        self.notifier.notify(json!({
            "event": decision_event(decision),
            "session_id": session.id.as_str(),
            "agent_id": session.agent_id.as_str(),
            "approver": approver,
            "approvals": approvals,
            "state": session.state.to_string(),
            "at": rfc3339(now_ms()),
        }));
    }

    /// Tells the webhook that approval requests expired without a quorum.
    pub(super) fn notify_expired(&self, expired: &[Session]) {
        for session in expired.iter().filter(|s| {
            s.failure
                .as_ref()
                .is_some_and(|f| f.code == "APPROVAL_TIMEOUT")
        }) {
            self.notifier.notify(json!({
                "event": "approval.expired",
                "session_id": session.id.as_str(),
                "agent_id": session.agent_id.as_str(),
                "state": session.state.to_string(),
                "at": rfc3339(now_ms()),
            }));
        }
    }

    /// A session with its approval request: the payment's facts an approver signs, the
    /// quorum and the decisions so far (without their signatures).
    pub(super) fn approval_view(
        &self,
        session: &Session,
        record: Option<&ApprovalRecord>,
    ) -> Value {
        let mut view = self.session_view(session);
        let transfer = self.transfer_of(session).ok();
        if let Some(map) = view.as_object_mut() {
            map.insert("agent_id".into(), json!(session.agent_id.as_str()));
            map.insert("key_id".into(), json!(session.key_id.as_str()));
            map.insert("transfer".into(), json!(transfer));
            if let Some(record) = record {
                map.insert("approval".into(), approval_summary(record));
            }
        }
        view
    }
}

/// The approval block of a view: quorum, expiry and the decisions so far.
pub(super) fn approval_summary(record: &ApprovalRecord) -> Value {
    let approvals = record
        .votes
        .iter()
        .filter(|v| v.decision == VoteDecision::Approve)
        .count();
    json!({
        "tier": record.request.tier,
        "rule": record.request.rule,
        "group": record.request.group,
        "eligible": record.request.eligible,
        "required": record.request.required,
        "approvals": approvals,
        "expires_at": rfc3339(record.request.expires_at_ms),
        "decisions": record.votes.iter().map(|v| json!({
            "approver": v.approver,
            "decision": match v.decision {
                VoteDecision::Approve => "approve",
                VoteDecision::Reject => "reject",
            },
            "at": rfc3339(v.at_ms),
            "reason": v.reason,
        })).collect::<Vec<_>>(),
    })
}

fn decision_event(decision: VoteDecision) -> &'static str {
    match decision {
        VoteDecision::Approve => "approval.approved",
        VoteDecision::Reject => "approval.rejected",
    }
}

fn vote_error(e: StoreError) -> VoteError {
    match e {
        StoreError::NotEligible { .. } => VoteError::NotEligible,
        StoreError::DuplicateVote { .. } => VoteError::Duplicate,
        StoreError::ApprovalExpired { .. } => VoteError::Expired,
        StoreError::StateConflict { actual, .. } => VoteError::NotWaiting(actual),
        StoreError::SessionNotFound { .. } => VoteError::SessionNotFound,
        other => store_failure("record vote", &other),
    }
}

fn store_failure(operation: &'static str, e: &dyn std::error::Error) -> VoteError {
    let _ = internal(operation, e);
    VoteError::Internal
}
