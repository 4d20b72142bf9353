//! Settlement: `verify_settlement` and the background watcher (crash recovery is in
//! `recover`).
//!
//! A session advances from `submitted` to `confirmed` and `finalized` as the ledger reports
//! commitments; finalization commits its budget reservation. A signature the ledger does not
//! know, whose blockhash can no longer land, is proven failed and its reservation released. A
//! timeout is never a failure: the session waits until the ledger says one way or the other.

use std::sync::Arc;
use std::time::Duration;

use clawfirst_core::{SessionId, now_ms};
use clawfirst_solana::ledger::Commitment;
use clawfirst_store::approval::{APPROVAL_TIMEOUT, APPROVAL_TIMEOUT_MESSAGE};
use clawfirst_store::{AuditEvent, Failure, Session, SessionPatch, SessionState, StoreError};
use serde_json::{Value, json};
use tracing::{debug, instrument, warn};

use super::{Caller, PaymentService, ToolResult, internal};
use crate::error::ToolError;
use crate::periodic::Periodic;

/// Sessions left in `approved` or `signed` for this long are considered abandoned by the call
/// that created them and are resolved by the watcher.
const ABANDONED_AFTER_MS: u64 = 15_000;
/// Sessions the watcher looks at per tick.
const BATCH: usize = 512;

impl PaymentService {
    /// Where a session stands, refreshed from the ledger.
    ///
    /// # Errors
    /// `SESSION_NOT_FOUND`; internal failures.
    #[instrument(skip_all, fields(agent.id = %caller.agent_id, session.id = %id))]
    pub async fn verify_settlement(
        &self,
        caller: &Caller,
        id: &SessionId,
        wanted: Commitment,
    ) -> ToolResult {
        let session = self.session_of(caller, id).await?;
        // A session approved or signed moments ago may be in the hands of a call in flight
        // (the agent's own authorize, or the signing that approvers just released): asking the
        // signer about its grant now could mistake signing in progress for a failure. Those
        // are resolved here only once abandoned, as the watcher does.
        let session = self
            .advance(session, ABANDONED_AFTER_MS, Pass::OnDemand)
            .await?;
        let mut view = self.full_view(&session).await?;
        let reached = reached_commitment(session.state);
        if let Some(map) = view.as_object_mut() {
            map.insert(
                "settled".into(),
                Value::Bool(reached.is_some_and(|c| c >= wanted)),
            );
            map.insert("requested_commitment".into(), json!(wanted));
        }
        Ok(view)
    }

    /// One pass of the watcher: expire due sessions, advance submitted ones, resolve
    /// abandoned ones.
    ///
    /// # Errors
    /// A store failure.
    pub async fn watch_once(&self) -> Result<(), ToolError> {
        let expired = self
            .store
            .expire_due(now_ms())
            .await
            .map_err(|e| internal("expire", &e))?;
        for s in &expired {
            debug!(session.id = %s.id, "session expired");
        }
        self.notify_expired(&expired);
        let pending = self
            .store
            .sessions_in_states(
                &[
                    SessionState::Submitted,
                    SessionState::Confirmed,
                    SessionState::Approved,
                    SessionState::Signed,
                ],
                BATCH,
            )
            .await
            .map_err(|e| internal("list pending sessions", &e))?;
        for session in pending {
            let id = session.id.clone();
            if let Err(e) = self
                .advance(session, ABANDONED_AFTER_MS, Pass::Background)
                .await
            {
                debug!(session.id = %id, error = %e, "session not advanced this pass");
            }
        }
        Ok(())
    }

    /// Moves a session forward as far as the signer and the ledger allow. `approved` and
    /// `signed` sessions younger than `min_age_ms` are left to the call that is handling them.
    pub(super) async fn advance(
        &self,
        session: Session,
        min_age_ms: u64,
        pass: Pass,
    ) -> Result<Session, ToolError> {
        let old_enough = session.updated_at_ms.saturating_add(min_age_ms) <= now_ms();
        match session.state {
            SessionState::Submitted | SessionState::Confirmed => self.refresh(session, pass).await,
            SessionState::Signed if old_enough => self.resume_signed(session).await,
            SessionState::Approved if old_enough || scheduled_and_due(&session) => {
                self.resume_approved(session).await
            }
            SessionState::Initialized if now_ms() >= session.expires_at_ms => {
                self.close(&session, SessionState::Expired, None, "session.expired")
                    .await
            }
            SessionState::AwaitingApproval if now_ms() >= session.expires_at_ms => {
                let failure = Failure {
                    code: APPROVAL_TIMEOUT.into(),
                    message: APPROVAL_TIMEOUT_MESSAGE.into(),
                };
                let expired = self
                    .close(
                        &session,
                        SessionState::Expired,
                        Some((failure, "")),
                        "approval.expired",
                    )
                    .await?;
                self.notify_expired(std::slice::from_ref(&expired));
                Ok(expired)
            }
            _ => Ok(session),
        }
    }

    /// Applies the ledger's view of a submitted transaction.
    pub(super) async fn refresh(&self, session: Session, pass: Pass) -> Result<Session, ToolError> {
        let Some(signature) = session.signature.clone() else {
            return Ok(session);
        };
        let status = match self.ledger.status(&signature).await {
            Ok(status) => status,
            Err(e) => {
                debug!(error = %super::ErrorChain(&e), "status unknown");
                return Ok(session);
            }
        };
        match status {
            Some(st) if st.error.is_some() && session.state != SessionState::Confirmed => {
                let reason = st.error.unwrap_or_default();
                let failure = Failure {
                    code: "TRANSACTION_FAILED".into(),
                    message: reason,
                };
                self.close(
                    &session,
                    SessionState::Failed,
                    Some((failure, "")),
                    "ledger.failed",
                )
                .await
            }
            Some(st) => {
                let target = match st.commitment {
                    Commitment::Processed => SessionState::Submitted,
                    Commitment::Confirmed => SessionState::Confirmed,
                    Commitment::Finalized => SessionState::Finalized,
                };
                if target <= session.state && session.state != SessionState::Signed {
                    return Ok(session);
                }
                if pass == Pass::Background && target == SessionState::Confirmed {
                    // Nobody is asking: wait for finality and record it in one write.
                    return Ok(session);
                }
                let event = match target {
                    SessionState::Finalized => "ledger.finalized",
                    SessionState::Confirmed => "ledger.confirmed",
                    _ => "ledger.processed",
                };
                let audit = AuditEvent::system(event)
                    .session(&session.id)
                    .details(json!({ "signature": signature, "slot": st.slot }));
                let patch = SessionPatch {
                    slot: Some(st.slot),
                    ..SessionPatch::default()
                };
                self.move_to(&session, target, patch, audit).await
            }
            None => self.fail_if_unlandable(session).await,
        }
    }

    /// A signature the ledger does not know fails only once its blockhash can no longer land.
    pub(super) async fn fail_if_unlandable(&self, session: Session) -> Result<Session, ToolError> {
        let Some(message) = session.message.as_deref() else {
            return Ok(session);
        };
        let Ok(decoded) = clawfirst_solana::decode::decode_payment(message) else {
            return Ok(session);
        };
        match self
            .ledger
            .is_blockhash_valid(&decoded.recent_blockhash)
            .await
        {
            Ok(false) => {
                // Look once more: the transaction may have landed just before the hash expired.
                if let Some(signature) = &session.signature
                    && let Ok(Some(_)) = self.ledger.status(signature).await
                {
                    return Ok(session);
                }
                let failure = Failure {
                    code: "TRANSACTION_FAILED".into(),
                    message: "the transaction expired without landing".into(),
                };
                self.close(
                    &session,
                    SessionState::Failed,
                    Some((failure, "")),
                    "ledger.expired",
                )
                .await
            }
            _ => Ok(session),
        }
    }

    pub(super) async fn move_to(
        &self,
        session: &Session,
        to: SessionState,
        patch: SessionPatch,
        audit: AuditEvent,
    ) -> Result<Session, ToolError> {
        match self
            .store
            .transition(&session.id, session.state, to, patch, audit)
            .await
        {
            Ok(s) => Ok(s),
            Err(StoreError::StateConflict { .. }) => self.reload(&session.id).await,
            Err(e) => Err(internal("advance session", &e)),
        }
    }

    pub(super) async fn reload(&self, id: &SessionId) -> Result<Session, ToolError> {
        self.store
            .session(id)
            .await
            .map_err(|e| internal("reload session", &e))?
            .ok_or_else(ToolError::internal)
    }
}

/// Who is advancing a session: a caller waiting for the answer, or the background watcher.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pass {
    /// Record every commitment reached, so the caller sees it.
    OnDemand,
    /// Record only what ends the session (finality or failure), saving a write per payment.
    Background,
}

/// An approved payment scheduled for a time that has come. Only the watcher and
/// `verify_settlement` execute those, so there is no call in flight to wait for.
fn scheduled_and_due(session: &Session) -> bool {
    session.grant_id.is_none() && session.execute_after_ms.is_some_and(|t| t <= now_ms())
}

/// The commitment a session's state proves, if any.
pub(super) fn reached_commitment(state: SessionState) -> Option<Commitment> {
    match state {
        SessionState::Submitted => Some(Commitment::Processed),
        SessionState::Confirmed => Some(Commitment::Confirmed),
        SessionState::Finalized => Some(Commitment::Finalized),
        _ => None,
    }
}

/// Runs [`PaymentService::watch_once`] every `interval`.
pub fn start_watcher(service: Arc<PaymentService>, interval: Duration) -> Periodic {
    Periodic::start(interval, move || {
        let service = service.clone();
        async move {
            if let Err(e) = service.watch_once().await {
                warn!(error = %e, "settlement watcher pass failed");
            }
        }
    })
}
