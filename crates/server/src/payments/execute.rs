//! From an approval to a signed transaction: building the message, issuing the grant and
//! asking the signer.
//!
//! A payment that policy allows outright is prepared before its budget is reserved, so the
//! reservation, the approval and the grant are one write ([`super::authorize`]). A payment
//! that waited, for human approvers or for its scheduled time, is already `approved` and holds
//! its reservation; [`PaymentService::execute_approved`] prepares it then, because the message
//! carries a recent blockhash that would have expired while it waited.
//!
//! # Exactly once
//!
//! The grant id is write-once in the store: of two executions racing on the same approved
//! session (the approval that completed the quorum and the background watcher, or two server
//! processes), only the first stores its grant; the other stops before it reaches the signer.
//! The signer adds its own guard: approvals for a session sign one grant only.

use clawfirst_core::approval::SignedApproval;
use clawfirst_core::grant::{GrantBody, SignedGrant};
use clawfirst_core::{GrantId, KeyId, now_ms};
use clawfirst_solana::build_message;
use clawfirst_store::{AuditEvent, Session, SessionPatch, SessionState, StoreError, VoteDecision};
use serde_json::json;
use tracing::{debug, info, instrument};

use super::authorize::ledger_error;
use super::{PaymentService, ToolResult, internal};
use crate::error::{ErrorCode, ToolError};

/// A payment ready for the signer: the exact message and the grant that binds it.
pub(super) struct Prepared {
    pub(super) message: Vec<u8>,
    pub(super) grant_id: GrantId,
    pub(super) grant: SignedGrant,
    pub(super) last_valid_slot: u64,
    pub(super) audit_details: serde_json::Value,
}

impl Prepared {
    /// The session fields that record the preparation, written before the signer is asked.
    pub(super) fn patch(&self) -> SessionPatch {
        SessionPatch {
            message: Some(self.message.clone()),
            grant_id: Some(self.grant_id),
            blockhash_last_valid_slot: Some(self.last_valid_slot),
            ..SessionPatch::default()
        }
    }
}

impl PaymentService {
    /// Builds the message for the session's transfer and signs a grant for it.
    ///
    /// # Errors
    /// `INSUFFICIENT_BALANCE` when the wallet cannot pay the amount and the fees (nothing is
    /// recorded: the agent may top up and retry), `INVALID_INPUT` when a SOL payment would
    /// leave a new recipient account below the rent-exempt minimum (the session fails), and
    /// ledger errors.
    pub(super) async fn prepare(
        &self,
        session: &Session,
        key_id: &KeyId,
        policy_details: serde_json::Value,
    ) -> Result<Prepared, ToolError> {
        // 1. The transfer, and whether the ledger can carry it.
        let transfer = self.transfer_of(session)?;
        let blockhash = self.ledger.latest_blockhash().await.map_err(ledger_error)?;
        let plan = self.plan(transfer, Some(session.id.as_str()));
        if let Err(e) = self.check_rent(&transfer).await {
            let reason = e.message.clone();
            return Err(self
                .fail_with(session, e, reason, "session.unpayable")
                .await);
        }
        self.check_funds(&plan).await?;

        // 2. The message and the grant that names its hash.
        let message =
            build_message(&plan, blockhash.hash).map_err(|e| internal("build message", &e))?;
        let issued = now_ms();
        let body = GrantBody {
            grant_id: GrantId::random(),
            issued_at_ms: issued,
            expires_at_ms: issued + self.settings.grant_ttl_ms,
            agent_id: session.agent_id.clone(),
            session_id: session.id.clone(),
            key_id: key_id.clone(),
            message_sha256: GrantBody::hash_message(&message),
            transfer,
        };
        let grant = self.grant_signer.sign(&body);
        let mut audit_details = json!({
            "grant_id": body.grant_id.to_string(),
            "message_sha256": hex::encode(body.message_sha256),
            "expires_at_ms": body.expires_at_ms,
        });
        if let (Some(map), serde_json::Value::Object(extra)) =
            (audit_details.as_object_mut(), policy_details)
        {
            map.extend(extra);
        }
        Ok(Prepared {
            message,
            grant_id: body.grant_id,
            grant,
            last_valid_slot: blockhash.last_valid_slot,
            audit_details,
        })
    }

    /// Signs and submits an `approved` session that has no grant yet: one that human
    /// approvers released, or a scheduled one whose time has come.
    ///
    /// Runs without an agent waiting for the answer, so every outcome is recorded on the
    /// session: a payment that can no longer be made fails (releasing its reservation) rather
    /// than waiting for ever.
    ///
    /// # Errors
    /// As `authorize_transaction`; `INVALID_STATE` when the session is not waiting for
    /// execution.
    #[instrument(skip_all, fields(agent.id = %session.agent_id, session.id = %session.id))]
    pub async fn execute_approved(&self, session: Session) -> ToolResult {
        if session.state != SessionState::Approved || session.grant_id.is_some() {
            return Ok(self.session_view(&session));
        }
        if let Some(after) = session.execute_after_ms.filter(|t| now_ms() < *t) {
            debug!(execute_after_ms = after, "scheduled payment not due yet");
            return Ok(self.session_view(&session));
        }

        // 1. The approvals that released it, for the signer's own check.
        let approvals = self.approvals_for(&session).await?;

        // 2. Message and grant, recorded before the signer is asked.
        let key_id = session.key_id.clone();
        let prepared = match self.prepare(&session, &key_id, json!({})).await {
            Ok(prepared) => prepared,
            Err(e) if e.code == ErrorCode::InsufficientBalance => {
                let reason = e.message.clone();
                return Err(self
                    .fail_with(&session, e, reason, "session.unpayable")
                    .await);
            }
            Err(e) => return Err(e),
        };
        let audit = AuditEvent::system("grant.issued")
            .session(&session.id)
            .details(prepared.audit_details.clone());
        let session = match self
            .store
            .patch_session(&session.id, SessionState::Approved, prepared.patch(), audit)
            .await
        {
            Ok(session) => session,
            Err(StoreError::WriteOnceField { .. } | StoreError::StateConflict { .. }) => {
                // Another execution stored its grant first; it owns the signing.
                info!("session already being executed elsewhere");
                let now = self.store.session(&session.id).await;
                let now = now.map_err(|e| internal("reload session", &e))?;
                return Ok(now.map(|s| self.session_view(&s)).unwrap_or_default());
            }
            Err(e) => return Err(internal("store grant", &e)),
        };

        // 3. Sign and submit.
        self.sign_and_submit(
            session,
            &key_id,
            &prepared.message,
            prepared.grant,
            approvals,
        )
        .await
    }

    /// The signed approvals recorded for a session, in the order they were given.
    async fn approvals_for(&self, session: &Session) -> Result<Vec<SignedApproval>, ToolError> {
        let record = self
            .store
            .approval_request(&session.id)
            .await
            .map_err(|e| internal("load approvals", &e))?;
        Ok(record
            .map(|r| {
                r.votes
                    .into_iter()
                    .filter(|v| v.decision == VoteDecision::Approve)
                    .map(|v| SignedApproval {
                        statement: v.statement,
                        signature: v.signature,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}
