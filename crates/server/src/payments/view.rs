//! How a session is shown to the agent.

use clawfirst_core::Amount;
use serde_json::{Value, json};

use super::PaymentService;
use super::settle::reached_commitment;
use clawfirst_store::Session;

impl PaymentService {
    /// The `result` object of the session-returning tools.
    pub(super) fn session_view(&self, s: &Session) -> Value {
        let amount = Amount::from_base_units(s.asset, s.amount)
            .map(|a| a.decimal_string())
            .unwrap_or_else(|_| "0".into());
        let mut view = json!({
            "session_id": s.id.as_str(),
            "state": s.state.to_string(),
            "amount": amount,
            "asset": s.asset.symbol(),
            "base_units": s.amount.to_string(),
            "recipient": s.recipient_input,
            "recipient_address": s.recipient.to_string(),
            "payer": s.payer.to_string(),
            "expires_at": rfc3339(s.expires_at_ms),
            "signature": s.signature,
            "commitment": reached_commitment(s.state),
            "slot": s.slot,
            "settled": s.state == clawfirst_store::SessionState::Finalized,
        });
        if let Some(map) = view.as_object_mut() {
            if let Some(purpose) = &s.purpose {
                map.insert("purpose".into(), json!(purpose));
            }
            if let Some(after) = s.execute_after_ms {
                map.insert("execute_after".into(), json!(rfc3339(after)));
            }
            if let Some(failure) = &s.failure {
                map.insert(
                    "failure".into(),
                    json!({ "code": failure.code, "message": failure.message }),
                );
            }
            if let Some(rule) = &s.policy_rule {
                map.insert("policy_rule".into(), json!(rule));
            }
        }
        view
    }
}

/// Epoch milliseconds as RFC 3339 UTC.
pub(crate) fn rfc3339(ms: u64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
