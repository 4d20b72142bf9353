//! Request handling: one protocol line in, one response out.
//!
//! [`Service::handle_line`] is the whole surface an untrusted client reaches. It parses the line
//! strictly, dispatches it, logs the outcome with `tracing` and records it in the signer
//! database. The `sign` sequence itself is in the private `sign` module.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clawfirst_core::grant::GrantVerifier;
use clawfirst_core::signer_proto::{SignerErrorCode, SignerRequest, SignerResponse};
use clawfirst_core::{GrantId, KeyId, now_ms};
use tracing::instrument;

use crate::approvers::Approvers;
use crate::backend::Keys;
use crate::config::FloorLimits;
use crate::store::{GrantState, RequestLog, Store};

/// The signing service: keys, the grant verifier, the database, the floor and the approvers.
#[derive(Debug)]
pub struct Service {
    pub(crate) keys: Keys,
    pub(crate) verifier: GrantVerifier,
    pub(crate) store: Store,
    pub(crate) floor: Option<FloorLimits>,
    pub(crate) approvers: Option<Approvers>,
}

/// The longest refusal detail written to the log.
const MAX_DETAIL_CHARS: usize = 240;

/// A refused or failed request: the code the client sees, and the precise reason operators
/// see in the log.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub(crate) code: SignerErrorCode,
    pub(crate) detail: String,
}

impl Refusal {
    /// A refusal with its log detail. The detail may quote client input (a parser's message),
    /// so it is cut to [`MAX_DETAIL_CHARS`] and control characters are escaped: a client
    /// cannot forge or flood log lines through it.
    pub(crate) fn new(code: SignerErrorCode, detail: impl Into<String>) -> Self {
        let detail: String = detail
            .into()
            .chars()
            .take(MAX_DETAIL_CHARS)
            .flat_map(|c| match c.is_control() {
                true => c.escape_default().collect::<Vec<_>>(),
                false => vec![c],
            })
            .collect();
        Self { code, detail }
    }

    pub(crate) fn response(&self) -> SignerResponse {
        SignerResponse::Error {
            code: self.code,
            message: public_message(self.code).to_owned(),
        }
    }
}

impl Service {
    /// Assembles a service from opened parts. `floor` is `None` only for a configuration with
    /// `dangerous_no_floor = true`: every amount is then admitted.
    pub fn new(
        keys: Keys,
        verifier: GrantVerifier,
        store: Store,
        floor: Option<FloorLimits>,
    ) -> Service {
        Service {
            keys,
            verifier,
            store,
            floor,
            approvers: None,
        }
    }

    /// Accepts human approvals above the floor from `approvers`. Without this, every transfer
    /// above the floor is refused (`floor_exceeded`) and any approval is refused as unknown.
    pub fn with_approvals(mut self, approvers: Approvers) -> Service {
        self.approvers = Some(approvers);
        self
    }

    /// Handles one request line (without its newline). Never panics, whatever the bytes.
    pub async fn handle_line(&self, line: &[u8]) -> SignerResponse {
        match serde_json::from_slice::<SignerRequest>(line) {
            Ok(request) => self.handle(request).await,
            Err(e) => {
                let refusal = Refusal::new(SignerErrorCode::BadRequest, e.to_string());
                tracing::info!(
                    op = "invalid",
                    outcome = code_name(refusal.code),
                    reason = %refusal.detail,
                    "request refused"
                );
                self.record(log_line("invalid", Err(&refusal), None)).await;
                refusal.response()
            }
        }
    }

    /// Handles a parsed request.
    pub async fn handle(&self, request: SignerRequest) -> SignerResponse {
        match request {
            SignerRequest::Sign {
                key_id,
                message,
                grant,
                approvals,
            } => self.sign(key_id, &message, &grant, &approvals).await,
            SignerRequest::PublicKey { key_id } => self.public_key(key_id).await,
            SignerRequest::GrantStatus { grant_id } => self.grant_status(&grant_id).await,
            SignerRequest::Health {} => self.health().await,
        }
    }

    #[instrument(skip_all, fields(op = "public_key", key.id = %key_id))]
    async fn public_key(&self, key_id: KeyId) -> SignerResponse {
        let result = match self.keys.get(&key_id) {
            Some(backend) => Ok(backend.public_key()),
            None => Err(Refusal::new(
                SignerErrorCode::UnknownKey,
                "key id is not configured",
            )),
        };
        let log = log_line(
            "public_key",
            result.as_ref().map(|_| "ok"),
            Some(key_id.clone()),
        );
        self.answer(
            log,
            result.map(|public_key| SignerResponse::PublicKey { key_id, public_key }),
        )
        .await
    }

    #[instrument(skip_all, fields(op = "grant_status", grant.id = tracing::field::Empty))]
    async fn grant_status(&self, grant_id: &str) -> SignerResponse {
        let result = match GrantId::parse_hex(grant_id) {
            Err(_) => Err(Refusal::new(
                SignerErrorCode::BadRequest,
                "grant id is not 32 hex digits",
            )),
            Ok(id) => {
                tracing::Span::current().record("grant.id", tracing::field::display(id));
                self.store
                    .status(id)
                    .await
                    .map(|state| (id, state))
                    .map_err(|e| {
                        Refusal::new(SignerErrorCode::StorageFailure, crate::error_chain(&e))
                    })
            }
        };
        let mut log = log_line("grant_status", result.as_ref().map(|_| "ok"), None);
        log.grant_id = result.as_ref().ok().map(|(id, _)| *id);
        let response = result.map(|(_, state)| match state {
            GrantState::Unused => SignerResponse::GrantStatus {
                used: false,
                signature: None,
            },
            GrantState::Used { signature } => SignerResponse::GrantStatus {
                used: true,
                signature: signature.map(|s| bs58::encode(s).into_string()),
            },
        });
        self.answer(log, response).await
    }

    #[instrument(skip_all, fields(op = "health"))]
    async fn health(&self) -> SignerResponse {
        let response = SignerResponse::Health {
            keys: self.keys.ids(),
            backend: self.keys.kinds(),
        };
        self.answer(log_line("health", Ok("ok"), None), Ok(response))
            .await
    }

    /// Logs and records a non-sign outcome, then returns the response. A request whose record
    /// cannot be written is answered with `storage_failure`, so `health` also proves that the
    /// database accepts writes.
    async fn answer(
        &self,
        log: RequestLog,
        result: Result<SignerResponse, Refusal>,
    ) -> SignerResponse {
        match &result {
            Ok(_) => tracing::debug!(outcome = "ok", "request answered"),
            Err(refusal) => tracing::info!(
                outcome = code_name(refusal.code),
                reason = %refusal.detail,
                "request refused"
            ),
        }
        if let Err(e) = self.store.log(log).await {
            let chain = crate::error_chain(&e);
            tracing::error!(error = %chain, "cannot record the request");
            return Refusal::new(SignerErrorCode::StorageFailure, chain).response();
        }
        match result {
            Ok(response) => response,
            Err(refusal) => refusal.response(),
        }
    }

    /// Logs and records a request line refused for exceeding the frame limit.
    pub(crate) async fn refuse_oversize_line(&self) {
        let refusal = Refusal::new(SignerErrorCode::BadRequest, "request line is too long");
        tracing::info!(
            op = "invalid",
            outcome = code_name(refusal.code),
            reason = %refusal.detail,
            "request refused"
        );
        self.record(log_line("invalid", Err(&refusal), None)).await;
    }

    /// Records a request whose response does not depend on the record.
    pub(crate) async fn record(&self, log: RequestLog) {
        if let Err(e) = self.store.log(log).await {
            tracing::error!(error = %crate::error_chain(&e), "cannot record the request");
        }
    }
}

/// A request log line with the outcome filled in.
pub(crate) fn log_line(
    op: &'static str,
    outcome: Result<&'static str, &Refusal>,
    key_id: Option<KeyId>,
) -> RequestLog {
    RequestLog {
        at_ms: now_ms(),
        op,
        outcome: match outcome {
            Ok(text) => text,
            Err(refusal) => code_name(refusal.code),
        },
        key_id,
        grant_id: None,
        agent_id: None,
        session_id: None,
        approvers: None,
    }
}

/// The wire name of an error code, as recorded and logged.
pub(crate) fn code_name(code: SignerErrorCode) -> &'static str {
    match code {
        SignerErrorCode::BadRequest => "bad_request",
        SignerErrorCode::GrantMalformed => "grant_malformed",
        SignerErrorCode::GrantBadSignature => "grant_bad_signature",
        SignerErrorCode::GrantExpired => "grant_expired",
        SignerErrorCode::GrantReplayed => "grant_replayed",
        SignerErrorCode::GrantMismatch => "grant_mismatch",
        SignerErrorCode::MessageMismatch => "message_mismatch",
        SignerErrorCode::UnknownKey => "unknown_key",
        SignerErrorCode::BackendFailure => "backend_failure",
        SignerErrorCode::FloorExceeded => "floor_exceeded",
        SignerErrorCode::StorageFailure => "storage_failure",
        SignerErrorCode::ApprovalRequired => "approval_required",
        SignerErrorCode::ApprovalInvalid => "approval_invalid",
        SignerErrorCode::ApprovalReplayed => "approval_replayed",
        _ => "error",
    }
}

/// What the client is told for each code. Deliberately general: the precise reason (which
/// field of the message differs, which database call failed) goes to the log only.
fn public_message(code: SignerErrorCode) -> &'static str {
    match code {
        SignerErrorCode::BadRequest => "request is not valid for this protocol",
        SignerErrorCode::GrantMalformed => "grant is malformed",
        SignerErrorCode::GrantBadSignature => "grant signature is invalid",
        SignerErrorCode::GrantExpired => "grant is outside its validity window",
        SignerErrorCode::GrantReplayed => "grant was used before",
        SignerErrorCode::GrantMismatch => "grant does not cover this key and message",
        SignerErrorCode::MessageMismatch => "message does not perform the granted transfer",
        SignerErrorCode::UnknownKey => "key id is not configured",
        SignerErrorCode::BackendFailure => "key backend failed; nothing was signed",
        SignerErrorCode::StorageFailure => "signer database failed; nothing was signed",
        SignerErrorCode::FloorExceeded => "transfer exceeds the signer's floor limits",
        SignerErrorCode::ApprovalRequired => {
            "transfer exceeds the signer's floor and needs more valid human approvals"
        }
        SignerErrorCode::ApprovalInvalid => "an approval is not valid for this payment",
        SignerErrorCode::ApprovalReplayed => {
            "approvals for this session were already used for another grant"
        }
        _ => "request failed",
    }
}

/// Decodes the base64 message of a sign request.
pub(crate) fn decode_message(message: &str) -> Result<Vec<u8>, Refusal> {
    B64.decode(message)
        .map_err(|_| Refusal::new(SignerErrorCode::BadRequest, "message is not valid base64"))
}
