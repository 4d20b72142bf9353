//! Signing and submission: the steps after approval, shared by `authorize_transaction` and
//! crash recovery.
//!
//! The signed transaction is stored before it is sent, so a crash between the two leaves a
//! session that recovery sends again (the same bytes, which the ledger applies at most once)
//! rather than one that is signed again.

use clawfirst_core::KeyId;
use clawfirst_core::approval::SignedApproval;
use clawfirst_core::grant::SignedGrant;
use clawfirst_core::signer_proto::SignerErrorCode;
use clawfirst_solana::LedgerError;
use clawfirst_solana::assemble_transaction;
use clawfirst_store::{AuditEvent, Failure, Session, SessionPatch, SessionState};
use serde_json::json;
use tracing::{info, warn};

use super::{PaymentService, ToolResult, internal};
use crate::error::{ErrorCode, ToolError};
use crate::signer_client::SignerClientError;

impl PaymentService {
    /// Asks the signer for the signature, stores the signed transaction, submits it.
    pub(super) async fn sign_and_submit(
        &self,
        session: Session,
        key_id: &KeyId,
        message: &[u8],
        grant: SignedGrant,
        approvals: Vec<SignedApproval>,
    ) -> ToolResult {
        let outcome = match self.signer.sign(key_id, message, grant, approvals).await {
            Ok(outcome) => outcome,
            Err(SignerClientError::Refused {
                code: SignerErrorCode::FloorExceeded,
                ..
            }) => {
                // The signer's own limit, independent of this server's policy: a denial the
                // agent can act on, named as a rule. The grant was not used.
                let reason = "the payment exceeds the signing service's own limit";
                return Err(self.signer_denied(&session, "signer_floor", reason).await);
            }
            Err(SignerClientError::Refused {
                code: SignerErrorCode::ApprovalRequired,
                ..
            }) => {
                // Above its floor the signer wants more human approvals than this payment
                // carries: the same limit, seen from a signer that accepts approvals.
                let reason = "the payment exceeds the signing service's own limit for payments \
                              without enough human approvals";
                return Err(self.signer_denied(&session, "signer_floor", reason).await);
            }
            Err(SignerClientError::Refused {
                code,
                message: reason,
            }) => {
                warn!(signer.code = ?code, signer.reason = %reason, "signer refused");
                let err = ToolError::new(
                    ErrorCode::SignatureFailed,
                    "the signer refused the payment; nothing was sent",
                );
                return Err(self
                    .fail_with(&session, err, format!("{code:?}"), "signer.refused")
                    .await);
            }
            Err(e) => {
                warn!(
                    error = %super::ErrorChain(&e),
                    "signer unavailable; the session will be recovered"
                );
                return Err(ToolError::new(
                    ErrorCode::SignatureFailed,
                    "the signer is unavailable; the payment has not been sent",
                )
                .with_details(json!({ "state": "approved" }))
                .retryable());
            }
        };
        if outcome.public_key != session.payer {
            let err = ToolError::new(
                ErrorCode::SignatureFailed,
                "the signer used an unexpected key; nothing was sent",
            );
            return Err(self
                .fail_with(
                    &session,
                    err,
                    "signed by an unexpected key",
                    "signer.wrong_key",
                )
                .await);
        }
        self.store_signed(session, message, &outcome.signature)
            .await
    }

    /// Fails a session the signer refused for one of its own limits, naming the limit as the
    /// rule an agent sees.
    async fn signer_denied(&self, session: &Session, rule: &str, reason: &str) -> ToolError {
        info!(
            policy.rule = rule,
            "payment refused by the signer's own limits"
        );
        let failure = Failure {
            code: ErrorCode::PolicyViolation.as_str().into(),
            message: reason.into(),
        };
        if let Err(e) = self
            .close(
                session,
                SessionState::Failed,
                Some((failure, rule)),
                "signer.limit_refused",
            )
            .await
        {
            return e;
        }
        ToolError::new(
            ErrorCode::PolicyViolation,
            format!("denied by {rule}: {reason}"),
        )
        .with_details(json!({ "rule": rule }))
    }

    /// Stores the signed transaction, then submits it.
    pub(super) async fn store_signed(
        &self,
        session: Session,
        message: &[u8],
        signature: &[u8; 64],
    ) -> ToolResult {
        let transaction =
            assemble_transaction(message, signature).map_err(|e| internal("assemble", &e))?;
        let signature_text = bs58::encode(signature).into_string();
        let patch = SessionPatch {
            signature: Some(signature_text.clone()),
            signed_transaction: Some(transaction),
            ..SessionPatch::default()
        };
        let audit = AuditEvent::system("signer.signed")
            .session(&session.id)
            .details(json!({
                "signature": signature_text,
                "grant_id": session.grant_id.map(|g| g.to_string()),
            }));
        let signed = self
            .store
            .transition(
                &session.id,
                SessionState::Approved,
                SessionState::Signed,
                patch,
                audit,
            )
            .await
            .map_err(|e| internal("store signed transaction", &e))?;
        self.submit(signed).await
    }

    /// Sends a stored signed transaction.
    pub(super) async fn submit(&self, session: Session) -> ToolResult {
        let Some(transaction) = session.signed_transaction.clone() else {
            return Err(ToolError::internal());
        };
        let error = match self.ledger.submit(&transaction).await {
            Ok(signature) => {
                let audit = AuditEvent::system("ledger.submitted")
                    .session(&session.id)
                    .details(json!({ "signature": signature }));
                let submitted = self
                    .store
                    .transition(
                        &session.id,
                        SessionState::Signed,
                        SessionState::Submitted,
                        SessionPatch::default(),
                        audit,
                    )
                    .await
                    .map_err(|e| internal("record submission", &e))?;
                return Ok(self.session_view(&submitted));
            }
            Err(error) => error,
        };
        let (err, reason) = match error {
            LedgerError::InsufficientFunds { reason } => (
                ToolError::new(
                    ErrorCode::InsufficientBalance,
                    "the wallet cannot cover the payment and its fees",
                ),
                reason,
            ),
            LedgerError::Rejected { reason } => (
                ToolError::new(
                    ErrorCode::TransactionFailed,
                    "the ledger rejected the transaction",
                )
                .with_details(json!({ "reason": reason })),
                reason,
            ),
            LedgerError::BlockhashExpired => (
                ToolError::new(
                    ErrorCode::TransactionFailed,
                    "the transaction expired before it landed",
                ),
                "blockhash expired".to_owned(),
            ),
            other => {
                warn!(error = %super::ErrorChain(&other), "submission outcome unknown");
                return Err(ToolError::new(
                    ErrorCode::NetworkError,
                    "the ledger did not answer; the payment may still land: call verify_settlement",
                )
                .with_details(json!({ "state": "signed", "signature": session.signature }))
                .retryable());
            }
        };
        Err(self
            .fail_with(&session, err, reason, "ledger.rejected")
            .await)
    }

    /// Fails a session on proven failure, recording `reason`, and returns `err` for the
    /// agent (or the storage failure that prevented recording it).
    pub(super) async fn fail_with(
        &self,
        session: &Session,
        err: ToolError,
        reason: impl Into<String>,
        event: &'static str,
    ) -> ToolError {
        let failure = Failure {
            code: err.code.as_str().into(),
            message: reason.into(),
        };
        match self
            .close(session, SessionState::Failed, Some((failure, "")), event)
            .await
        {
            Ok(_) => err,
            Err(storage) => storage,
        }
    }
}
