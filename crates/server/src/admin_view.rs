//! How sessions and audit records are shown on the admin API.
//!
//! Operators see more than agents (grant ids, policy rules, failures), but never secrets: the
//! store holds none, and message bytes are shown only as their SHA-256.

use clawfirst_store::{AuditRecord, Session};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// A session for operators.
pub fn session(s: &Session) -> Value {
    json!({
        "session_id": s.id.as_str(),
        "agent_id": s.agent_id.as_str(),
        "state": s.state.to_string(),
        "asset": s.asset.symbol(),
        "base_units": s.amount.to_string(),
        "recipient": s.recipient_input,
        "recipient_address": s.recipient.to_string(),
        "payer": s.payer.to_string(),
        "key_id": s.key_id.as_str(),
        "purpose": s.purpose,
        "idempotency_key": s.idempotency_key,
        "created_at_ms": s.created_at_ms,
        "updated_at_ms": s.updated_at_ms,
        "expires_at_ms": s.expires_at_ms,
        "grant_id": s.grant_id.map(|g| g.to_string()),
        "message_sha256": s.message.as_ref().map(|m| hex::encode(Sha256::digest(m))),
        "signature": s.signature,
        "slot": s.slot,
        "policy_rule": s.policy_rule,
        "failure": s.failure.as_ref().map(|f| json!({ "code": f.code, "message": f.message })),
    })
}

/// An audit record for operators.
pub fn audit(r: &AuditRecord) -> Value {
    json!({
        "seq": r.seq,
        "at_ms": r.at_ms,
        "actor_kind": r.actor_kind.to_string(),
        "actor_id": r.actor_id,
        "event": r.event,
        "session_id": r.session_id.as_ref().map(|s| s.as_str().to_owned()),
        "details": r.details,
    })
}
