//! How a session is shown to the agent.

use clawfirst_core::Amount;
use serde_json::{Value, json};

use clawfirst_store::approval::{APPROVAL_REJECTED, APPROVAL_TIMEOUT};
use clawfirst_store::{Session, SessionState};

use super::approvals::approval_summary;
use super::settle::reached_commitment;
use super::{PaymentService, ToolResult, internal};

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

impl PaymentService {
    /// The session view, with the approval block for a session that waits for approvers or
    /// that they decided: quorum, expiry and decisions so far. Other sessions cost no extra
    /// read.
    pub(super) async fn full_view(&self, s: &Session) -> ToolResult {
        let mut view = self.session_view(s);
        let decided_by_approvers = s
            .failure
            .as_ref()
            .is_some_and(|f| f.code == APPROVAL_TIMEOUT || f.code == APPROVAL_REJECTED);
        let waiting = s.state == SessionState::AwaitingApproval;
        let unsigned = s.state == SessionState::Approved && s.grant_id.is_none();
        if !(waiting || decided_by_approvers || unsigned) {
            return Ok(view);
        }
        let record = self
            .store
            .approval_request(&s.id)
            .await
            .map_err(|e| internal("load approval", &e))?;
        if let Some(map) = view.as_object_mut() {
            if let Some(record) = &record {
                map.insert("approval".into(), approval_summary(record));
            }
            if waiting {
                map.insert("waiting_for".into(), json!("human_approval"));
            } else if unsigned && s.execute_after_ms.is_some() {
                map.insert("waiting_for".into(), json!("execute_after"));
            } else if unsigned {
                map.insert("waiting_for".into(), json!("signing"));
            }
        }
        Ok(view)
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
