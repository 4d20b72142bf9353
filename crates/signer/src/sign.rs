//! The `sign` sequence: the only path to a wallet signature.
//!
//! Each step either passes or refuses with its own [`SignerErrorCode`]; nothing is signed unless
//! every step before signing has passed, and the grant is burned before the key is used.
//!
//! 1. Verify the grant: signature first, then the validity window (`grant_bad_signature`,
//!    `grant_malformed`, `grant_expired`).
//! 2. The grant names this key id and the SHA-256 of these exact message bytes
//!    (`grant_mismatch`).
//! 3. The key is configured (`unknown_key`); the message decodes as a payment that performs
//!    exactly the grant's transfer, paid and fee-paid by this key (`message_mismatch`).
//! 4. Every approval the request carries is valid (`approval_invalid`, fail closed: one bad
//!    approval refuses the request): its signature verifies under the approver key it names,
//!    that key is in the signer's approvers file, the decision is approve, the statement names
//!    this grant's session, agent, key and exact transfer, it was decided no longer ago than
//!    `approvals.max_age` and not in the future beyond the clock skew, and no approver appears
//!    twice. Approvals are enough when at least `approvals.required` remain.
//! 5. The per-transaction floor, before anything is written: an amount above the floor of its
//!    asset (or an asset without a floor) needs enough approvals; without them it is refused,
//!    `approval_required` when `[approvals]` is configured, `floor_exceeded` when it is not.
//! 6. Burn the grant, durably, in one operation of the database writer: an id already recorded
//!    is refused (`grant_replayed`); a request with approvals whose session already consumed
//!    approvals is refused (`approval_replayed`); within the per-transaction floor, the agent's
//!    rolling 24-hour total of unapproved grants for the asset plus this amount must not exceed
//!    the daily floor, unless the approvals are enough (then the grant is approved and not
//!    counted), else `approval_required` or `floor_exceeded` as in step 5. The writer applies
//!    operations one after another under SQLite's write lock, so concurrent requests cannot
//!    pass these checks together. A refusal writes nothing: the grant stays unused, and the
//!    session's approvals stay unconsumed. A grant that carried approvals consumes them for its
//!    session, whether or not they were needed.
//! 7. Sign with the backend (`backend_failure`). A failure leaves the grant burned (and the
//!    session's approvals consumed): fail closed.
//! 8. Store the signature with the grant row and log the request (with the approvers' names and
//!    keys, never their signatures), then answer `signed`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clawfirst_core::approval::SignedApproval;
use clawfirst_core::grant::{GrantBody, GrantError, SignedGrant};
use clawfirst_core::signer_proto::{SignerErrorCode, SignerResponse};
use clawfirst_core::{KeyId, now_ms};
use tracing::{Span, field, instrument};

use crate::service::{Refusal, Service, code_name, decode_message, log_line};
use crate::store::{Admission, ApprovalUse, BurnError, FloorCheck, GrantUse, RequestLog};

mod approvals;

impl Service {
    /// Runs the sign sequence, logs its outcome and records it.
    #[instrument(
        skip_all,
        fields(
            op = "sign",
            key.id = %key_id,
            grant.id = field::Empty,
            agent.id = field::Empty,
            session.id = field::Empty,
            approval.count = approvals.len(),
            approval.approvers = field::Empty,
        )
    )]
    pub(crate) async fn sign(
        &self,
        key_id: KeyId,
        message: &str,
        grant: &SignedGrant,
        approvals: &[SignedApproval],
    ) -> SignerResponse {
        let mut log = log_line("sign", Ok("signed"), Some(key_id.clone()));
        let outcome = self
            .sign_steps(&key_id, message, grant, approvals, &mut log)
            .await;
        match outcome {
            Ok(response) => {
                tracing::debug!(outcome = "signed", "sign allowed");
                response
            }
            Err(refusal) => {
                tracing::info!(
                    outcome = code_name(refusal.code),
                    reason = %refusal.detail,
                    "sign refused"
                );
                log.outcome = code_name(refusal.code);
                self.record(log).await;
                refusal.response()
            }
        }
    }

    async fn sign_steps(
        &self,
        key_id: &KeyId,
        message_b64: &str,
        grant: &SignedGrant,
        approvals: &[SignedApproval],
        log: &mut RequestLog,
    ) -> Result<SignerResponse, Refusal> {
        let message = decode_message(message_b64)?;
        tracing::trace!(
            message.len = message.len(),
            message.base64 = message_b64,
            "sign request"
        );

        // 1. Authenticity and validity window of the grant.
        let verified = match self.verifier.verify(grant, now_ms()) {
            Ok(verified) => verified,
            Err(error) => {
                if signature_was_valid(&error)
                    && let Some(body) = decode_body(grant)
                {
                    // Authentic but outside its window: name the grant in the log.
                    identify(&body, log);
                }
                return Err(grant_refusal(error));
            }
        };
        let body = verified.body();
        identify(body, log);

        // 2. The grant covers this key and these exact bytes.
        if body.key_id != *key_id {
            return Err(Refusal::new(
                SignerErrorCode::GrantMismatch,
                format!("grant is for key {}", body.key_id),
            ));
        }
        let message_sha256 = GrantBody::hash_message(&message);
        if message_sha256 != body.message_sha256 {
            return Err(Refusal::new(
                SignerErrorCode::GrantMismatch,
                "message hash differs from the grant's",
            ));
        }

        // 3. The message performs exactly the granted transfer, from this key.
        let backend =
            self.keys.get(key_id).cloned().ok_or_else(|| {
                Refusal::new(SignerErrorCode::UnknownKey, "key id is not configured")
            })?;
        let public_key = backend.public_key();
        if body.transfer.payer != public_key {
            return Err(mismatch(format!(
                "grant's payer is not key {key_id}'s address"
            )));
        }
        let decoded = clawfirst_solana::decode_payment(&message)
            .map_err(|e| mismatch(format!("message is not an acceptable payment: {e}")))?;
        clawfirst_solana::check_matches(&decoded, &body.transfer)
            .map_err(|e| mismatch(format!("message differs from the grant: {e}")))?;
        if decoded.fee_payer != public_key {
            return Err(mismatch("message's fee payer is not the key"));
        }

        // 4. Every approval carried is valid for this grant.
        let checked = self.check_approvals(body, approvals, now_ms())?;
        if let Some(checked) = &checked {
            let approvers = checked.describe();
            Span::current().record("approval.approvers", field::display(&approvers));
            log.approvers = Some(approvers);
        }
        let approvals_suffice = checked.as_ref().is_some_and(|c| c.suffice);

        // 5. The per-transaction floor, before anything is written.
        let asset = body.transfer.asset;
        let floor = match &self.floor {
            None => FloorCheck::Unlimited,
            Some(floor) => {
                let per_transaction = floor.per_transaction.get(asset);
                let within_per_transaction =
                    per_transaction.is_some_and(|limit| body.transfer.amount <= limit);
                match (within_per_transaction, floor.daily.get(asset)) {
                    (true, Some(limit)) => FloorCheck::Daily {
                        limit,
                        approvals_suffice,
                    },
                    _ if approvals_suffice => FloorCheck::Approved,
                    (false, _) => {
                        return Err(self.above_floor("per_transaction", body, per_transaction));
                    }
                    (true, None) => return Err(self.above_floor("daily", body, None)),
                }
            }
        };

        // 6. Burn the grant (and consume the session's approvals) within the daily floor.
        let grant_use = GrantUse {
            grant_id: body.grant_id,
            key_id: key_id.clone(),
            agent_id: body.agent_id.clone(),
            session_id: body.session_id.clone(),
            message_sha256,
            transfer: body.transfer,
            used_at_ms: now_ms(),
        };
        let approval_use = checked.as_ref().map(|c| ApprovalUse {
            approvers: c.describe(),
        });
        let admission = self
            .store
            .burn(grant_use, floor, approval_use)
            .await
            .map_err(|e| self.burn_refusal(e, body))?;
        if admission == Admission::Approved {
            // The span carries the approvers.
            tracing::debug!("above the floor on human approvals");
        }

        // 7. Sign, off the async threads. On failure the grant stays burned.
        let signed = tokio::task::spawn_blocking(move || backend.sign(&message)).await;
        let signature = match signed {
            Ok(Ok(signature)) => signature,
            Ok(Err(e)) => {
                return Err(Refusal::new(
                    SignerErrorCode::BackendFailure,
                    crate::error_chain(&e),
                ));
            }
            Err(e) => {
                return Err(Refusal::new(SignerErrorCode::BackendFailure, e.to_string()));
            }
        };

        // 8. Store the signature and the request record; only then hand the signature out.
        self.store
            .finish(body.grant_id, signature, log.clone())
            .await
            .map_err(|e| Refusal::new(SignerErrorCode::StorageFailure, crate::error_chain(&e)))?;
        Ok(SignerResponse::Signed {
            signature: bs58::encode(signature).into_string(),
            public_key,
        })
    }
}

/// Records who a grant speaks for, in the span and the request log.
fn identify(body: &GrantBody, log: &mut RequestLog) {
    let span = Span::current();
    span.record("grant.id", field::display(body.grant_id));
    span.record("agent.id", field::display(&body.agent_id));
    span.record("session.id", field::display(&body.session_id));
    log.grant_id = Some(body.grant_id);
    log.agent_id = Some(body.agent_id.clone());
    log.session_id = Some(body.session_id.clone());
}

/// Window errors are reported only after the signature verified: the grant is authentic.
fn signature_was_valid(error: &GrantError) -> bool {
    matches!(
        error,
        GrantError::Expired | GrantError::NotYetValid | GrantError::LifetimeTooLong
    )
}

fn decode_body(grant: &SignedGrant) -> Option<GrantBody> {
    let bytes = B64.decode(&grant.body).ok()?;
    GrantBody::decode(&bytes).ok()
}

fn grant_refusal(error: GrantError) -> Refusal {
    let code = match &error {
        GrantError::BadSignature => SignerErrorCode::GrantBadSignature,
        e if signature_was_valid(e) => SignerErrorCode::GrantExpired,
        _ => SignerErrorCode::GrantMalformed,
    };
    Refusal::new(code, crate::error_chain(&error))
}

impl Service {
    /// Refuses a transfer above a floor limit without enough approvals; `limit` is `None` when
    /// the asset has none. The code is `approval_required` when approvers are configured.
    fn above_floor(&self, rule: &'static str, body: &GrantBody, limit: Option<u64>) -> Refusal {
        let asset = body.transfer.asset;
        tracing::info!(
            floor.rule = rule,
            asset = %asset,
            amount = body.transfer.amount,
            floor.limit = limit,
            "floor exceeded"
        );
        let detail = match limit {
            Some(limit) => format!("{rule} floor is {limit} {asset} base units"),
            None => format!("no {rule} floor is configured for {asset}"),
        };
        self.floor_refusal(detail)
    }

    fn floor_refusal(&self, detail: String) -> Refusal {
        match &self.approvers {
            None => Refusal::new(SignerErrorCode::FloorExceeded, detail),
            Some(approvers) => Refusal::new(
                SignerErrorCode::ApprovalRequired,
                format!(
                    "{detail}; above it, {} distinct valid approvals are required",
                    approvers.required()
                ),
            ),
        }
    }

    fn burn_refusal(&self, error: BurnError, body: &GrantBody) -> Refusal {
        match error {
            BurnError::Replayed => Refusal::new(
                SignerErrorCode::GrantReplayed,
                "grant id is already recorded",
            ),
            BurnError::ApprovalReplayed => Refusal::new(
                SignerErrorCode::ApprovalReplayed,
                "approvals for this session were already used by another grant",
            ),
            BurnError::DailyFloorExceeded { used, limit } => {
                let asset = body.transfer.asset;
                tracing::info!(
                    floor.rule = "daily",
                    asset = %asset,
                    amount = body.transfer.amount,
                    floor.used = %used,
                    floor.limit = limit,
                    "floor exceeded"
                );
                self.floor_refusal(format!(
                    "daily floor {limit} {asset} base units; {used} used in 24 hours"
                ))
            }
            other => Refusal::new(SignerErrorCode::StorageFailure, crate::error_chain(&other)),
        }
    }
}

fn mismatch(detail: impl Into<String>) -> Refusal {
    Refusal::new(SignerErrorCode::MessageMismatch, detail)
}
