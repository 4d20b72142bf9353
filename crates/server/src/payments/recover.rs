//! Crash recovery: resolving sessions a restart finds between approval and submission.
//!
//! Nothing is ever signed twice: an `approved` session whose grant the signer already used gets
//! the stored signature back (or fails if the signer failed after burning it); one whose grant
//! was never used waits until the grant has expired and then fails, releasing its budget; one
//! with no grant yet (released by approvers, or scheduled) is prepared and signed now. A
//! `signed` session is sent again (the same bytes, which the ledger applies at most once) while
//! its blockhash can still land, and proven failed otherwise.

use clawfirst_core::grant::CLOCK_SKEW_MS;
use clawfirst_core::now_ms;
use clawfirst_store::{AuditEvent, Failure, Session, SessionPatch, SessionState};
use serde_json::json;
use tracing::{debug, info, warn};

use super::settle::Pass;
use super::{PaymentService, internal};
use crate::error::ToolError;
use crate::signer_client::GrantUse;

impl PaymentService {
    /// Resolves every session a crash may have left mid-way. Run once at start, before
    /// serving.
    ///
    /// # Errors
    /// A store failure.
    pub async fn recover(&self) -> Result<usize, ToolError> {
        let pending = self
            .store
            .sessions_in_states(
                &[
                    SessionState::Approved,
                    SessionState::Signed,
                    SessionState::Submitted,
                    SessionState::Confirmed,
                ],
                usize::MAX,
            )
            .await
            .map_err(|e| internal("list sessions to recover", &e))?;
        let count = pending.len();
        for session in pending {
            let id = session.id.clone();
            if let Err(e) = self.advance(session, 0, Pass::OnDemand).await {
                warn!(session.id = %id, error = %e, "recovery left the session for later");
            }
        }
        if count > 0 {
            info!(sessions = count, "recovered sessions after restart");
        }
        Ok(count)
    }

    /// A signed transaction that may never have been sent: look it up, send it again if it can
    /// still land (the same bytes, so the ledger can only apply it once), or fail it.
    pub(super) async fn resume_signed(&self, session: Session) -> Result<Session, ToolError> {
        let Some(signature) = session.signature.clone() else {
            return Ok(session);
        };
        match self.ledger.status(&signature).await {
            Ok(Some(_)) => {
                let audit = AuditEvent::system("ledger.submitted")
                    .session(&session.id)
                    .details(json!({ "signature": signature, "recovered": true }));
                let submitted = self
                    .move_to(
                        &session,
                        SessionState::Submitted,
                        SessionPatch::default(),
                        audit,
                    )
                    .await?;
                self.refresh(submitted, Pass::OnDemand).await
            }
            Ok(None) => {
                let still_valid = match session
                    .message
                    .as_deref()
                    .map(clawfirst_solana::decode::decode_payment)
                {
                    Some(Ok(decoded)) => self
                        .ledger
                        .is_blockhash_valid(&decoded.recent_blockhash)
                        .await
                        .unwrap_or(true),
                    _ => true,
                };
                if still_valid {
                    match self.submit(session.clone()).await {
                        Ok(_) | Err(_) => self.reload(&session.id).await,
                    }
                } else {
                    self.fail_if_unlandable(session).await
                }
            }
            Err(_) => Ok(session),
        }
    }

    /// An approved session whose signing outcome is unknown: ask the signer about the grant.
    pub(super) async fn resume_approved(&self, session: Session) -> Result<Session, ToolError> {
        let (Some(grant_id), Some(message)) = (session.grant_id, session.message.clone()) else {
            // Released by approvers or scheduled: prepared and signed only now.
            let id = session.id.clone();
            if let Err(e) = self.execute_approved(session).await {
                debug!(session.id = %id, error = %e, "approved payment not executed yet");
            }
            return self.reload(&id).await;
        };
        match self.signer.grant_status(grant_id).await {
            Ok(GrantUse::Signed(signature)) => {
                let _ = self
                    .store_signed(session.clone(), &message, &signature)
                    .await;
                self.reload(&session.id).await
            }
            Ok(GrantUse::UsedWithoutSignature) => {
                let failure = Failure {
                    code: "SIGNATURE_FAILED".into(),
                    message: "the signer failed".into(),
                };
                self.close(
                    &session,
                    SessionState::Failed,
                    Some((failure, "")),
                    "signer.failed",
                )
                .await
            }
            Ok(GrantUse::Unused) => {
                let grant_dead =
                    session.updated_at_ms + self.settings.grant_ttl_ms + CLOCK_SKEW_MS < now_ms();
                if !grant_dead {
                    return Ok(session);
                }
                let failure = Failure {
                    code: "SIGNATURE_FAILED".into(),
                    message: "the grant expired unused".into(),
                };
                self.close(
                    &session,
                    SessionState::Failed,
                    Some((failure, "")),
                    "grant.expired",
                )
                .await
            }
            Err(_) => Ok(session),
        }
    }
}
