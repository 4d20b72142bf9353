//! `initialize_payment`: a session from the agent's intent.

use clawfirst_core::{Address, SessionId, now_ms};
use clawfirst_store::{
    AuditEvent, CreateOutcome, NewSession, SettlementConstraint as StoredConstraint, StoreError,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tracing::{debug, instrument};

use super::{Caller, PaymentService, ToolResult, internal};
use crate::error::{ErrorCode, ToolError};
use crate::tools::input::{InitializePayment, SettlementConstraint};

impl PaymentService {
    /// Creates a payment session, or returns the original one for a repeated idempotency key
    /// with the same parameters.
    ///
    /// # Errors
    /// `INVALID_INPUT` for an unknown payee, a payment to the agent's own wallet, or an
    /// idempotency key reused with other parameters; `AGENT_SUSPENDED`; `INVALID_WALLET`.
    #[instrument(skip_all, fields(agent.id = %caller.agent_id))]
    pub async fn initialize_payment(&self, caller: &Caller, req: InitializePayment) -> ToolResult {
        // 1. The agent, its wallet, and its credential's own limit.
        let (key_id, payer) = self.wallet_of(caller).await?;
        caller.check_delegated(req.amount)?;

        // 2. The recipient, through the payee directory for e-mail.
        let recipient = self
            .payees
            .resolve(&req.recipient)
            .map_err(|e| ToolError::invalid_input("recipient", e))?;
        if recipient == payer {
            return Err(ToolError::invalid_input(
                "recipient",
                "is the agent's own wallet",
            ));
        }

        let transfer = clawfirst_core::Transfer {
            asset: req.amount.asset(),
            mint: self.ledger.mint(req.amount.asset()),
            amount: req.amount.base_units(),
            recipient,
            payer,
        };
        self.check_rent(&transfer).await?;

        // 3. The session, created once per idempotency key.
        let now = now_ms();
        let execute_after_ms = match req.constraint {
            SettlementConstraint::Scheduled { execute_after_ms } => Some(execute_after_ms),
            _ => None,
        };
        let expires_at_ms = execute_after_ms
            .unwrap_or(now)
            .max(now)
            .saturating_add(self.settings.session_ttl_ms);
        let id = SessionId::random();
        let new = NewSession {
            id: id.clone(),
            agent_id: caller.agent_id.clone(),
            asset: req.amount.asset(),
            amount: req.amount.base_units(),
            recipient,
            recipient_input: req.recipient_input.clone(),
            purpose: req.purpose.clone(),
            settlement_constraint: match req.constraint {
                SettlementConstraint::Immediate => StoredConstraint::Immediate,
                SettlementConstraint::DeferUntilApproval => StoredConstraint::DeferUntilApproval,
                SettlementConstraint::Scheduled { .. } => StoredConstraint::Scheduled,
            },
            execute_after_ms,
            idempotency_key: req.idempotency_key.clone(),
            request_digest: request_digest(&req, &recipient),
            metadata: req.metadata.clone(),
            expires_at_ms,
            key_id,
            payer,
        };
        let audit = AuditEvent::agent(&caller.agent_id, "session.created")
            .session(&id)
            .details(json!({
                "amount": req.amount.to_string(),
                "recipient": req.recipient_input,
                "recipient_address": recipient.to_string(),
                "purpose": req.purpose,
                "settlement_constraint": req.constraint.name(),
                "idempotency_key": req.idempotency_key,
                "metadata": req.metadata,
            }));

        let session = match self.store.create_session(new, audit).await {
            Ok(CreateOutcome::Created(s)) => {
                debug!(session.id = %s.id, amount = %req.amount, "session created");
                s
            }
            Ok(CreateOutcome::Existing(s)) => {
                debug!(session.id = %s.id, "idempotent retry returned the original session");
                s
            }
            Err(StoreError::IdempotencyConflict { .. }) => {
                return Err(ToolError::invalid_input(
                    "idempotency_key",
                    "was already used with different parameters",
                ));
            }
            Err(StoreError::OutOfRange { .. }) => {
                return Err(ToolError::invalid_input("amount", "is too large to record"));
            }
            Err(e) => return Err(internal("create session", &e)),
        };

        // 4. The answer, with what the payment will cost.
        let mut view = self.session_view(&session);
        if session.state.is_terminal() {
            return Ok(view);
        }
        match self.estimate_for(&self.transfer_of(&session)?).await {
            Ok(fee) => {
                if let Some(map) = view.as_object_mut() {
                    map.insert("fee_estimate".into(), fee);
                }
            }
            Err(e) if e.code == ErrorCode::InternalError => {}
            Err(e) => return Err(e),
        }
        Ok(view)
    }
}

/// SHA-256 over the parameters that define a payment, so a retried idempotency key can be
/// recognised as the same request.
pub(crate) fn request_digest(req: &InitializePayment, recipient: &Address) -> [u8; 32] {
    let mut h = Sha256::new();
    let execute_after = match req.constraint {
        SettlementConstraint::Scheduled { execute_after_ms } => execute_after_ms.to_string(),
        _ => String::new(),
    };
    for part in [
        "clawfirst/request/v1",
        req.amount.asset().symbol(),
        &req.amount.base_units().to_string(),
        &req.recipient_input,
        &recipient.to_string(),
        req.purpose.as_deref().unwrap_or(""),
        req.constraint.name(),
        &execute_after,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    let mut metadata = String::new();
    if let Some(m) = &req.metadata {
        canonical_json(m, &mut metadata);
    }
    h.update((metadata.len() as u64).to_be_bytes());
    h.update(metadata.as_bytes());
    h.finalize().into()
}

/// Writes JSON with object keys sorted, so equal values hash equally.
fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                if let Some(v) = map.get(k) {
                    canonical_json(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
