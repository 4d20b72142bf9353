//! The audit trail: an append-only sequence of events.
//!
//! Every change the store makes is written in the same transaction as the audit event that
//! records it: if the event cannot be written, neither is the change. Each record gets the
//! next `seq` inside the writing transaction, so the sequence has no gaps and no two records
//! share a number; the database refuses updates and deletes of audit rows.
//!
//! The tamper-evident hash chain (SPEC section 8) is built on top of this: each record will
//! carry the previous record's hash, computed over the record's fields in `seq` order. Because
//! appends are serialized by the write lock, the previous record is always well defined.
//!
//! # Security
//!
//! Never put a secret (a key, a token, an API key or its hash, a passphrase) in an event: the
//! trail is exported to SIEMs and read by responders. The store cannot tell a secret from other
//! text, so this is the caller's duty.

use clawfirst_core::{AgentId, SessionId};
use serde::{Deserialize, Serialize};

use crate::error::named_enum;

/// Who caused an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// An AI agent, through an MCP tool.
    Agent,
    /// A human approver.
    Approver,
    /// An operator or responder, through the admin API or CLI.
    Operator,
    /// ClawFirst itself (expiry, recovery, the settlement watcher).
    System,
}

named_enum!(ActorKind, "actor kind", [
    ActorKind::Agent => "agent",
    ActorKind::Approver => "approver",
    ActorKind::Operator => "operator",
    ActorKind::System => "system",
]);

/// The longest event name accepted.
pub const MAX_EVENT_LEN: usize = 64;
/// The actor id of [`AuditEvent::system`].
pub const SYSTEM_ACTOR: &str = "clawfirst";
/// The longest actor id accepted.
pub const MAX_ACTOR_ID_LEN: usize = 128;

/// An event to append; built with [`AuditEvent::new`] and the chained setters.
///
/// ```
/// # use clawfirst_store::{ActorKind, AuditEvent};
/// # use clawfirst_core::AgentId;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let agent = AgentId::new("agent-1")?;
/// let event = AuditEvent::agent(&agent, "tool.initialize_payment")
///     .detail("amount", "2.5 USDC")
///     .details(serde_json::json!({ "policy.version": "9f2c", "tier": 1 }));
/// assert_eq!(event.actor_kind, ActorKind::Agent);
/// assert_eq!(event.details["amount"], "2.5 USDC");
/// assert_eq!(event.details["tier"], 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AuditEvent {
    /// When it happened; the store also stamps the change it records with this time.
    pub at_ms: u64,
    /// Who caused it.
    pub actor_kind: ActorKind,
    /// Which agent, approver or operator (for the system, the component).
    pub actor_id: String,
    /// What happened, dotted lower case: `policy.decision`, `grant.issued`, ...
    pub event: String,
    /// The session concerned; session methods fill it in.
    pub session_id: Option<SessionId>,
    /// The facts of the event.
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl AuditEvent {
    /// An event happening now ([`clawfirst_core::now_ms`]) with no details.
    pub fn new(
        actor_kind: ActorKind,
        actor_id: impl Into<String>,
        event: impl Into<String>,
    ) -> Self {
        Self {
            at_ms: clawfirst_core::now_ms(),
            actor_kind,
            actor_id: actor_id.into(),
            event: event.into(),
            session_id: None,
            details: serde_json::Map::new(),
        }
    }

    /// An event caused by an agent.
    pub fn agent(agent_id: &AgentId, event: impl Into<String>) -> Self {
        Self::new(ActorKind::Agent, agent_id.as_str(), event)
    }

    /// An event caused by a human approver.
    pub fn approver(approver_id: impl Into<String>, event: impl Into<String>) -> Self {
        Self::new(ActorKind::Approver, approver_id, event)
    }

    /// An event caused by an operator or responder.
    pub fn operator(operator_id: impl Into<String>, event: impl Into<String>) -> Self {
        Self::new(ActorKind::Operator, operator_id, event)
    }

    /// An event caused by ClawFirst itself, with the actor id [`SYSTEM_ACTOR`]; use
    /// [`AuditEvent::new`] to name a component instead.
    pub fn system(event: impl Into<String>) -> Self {
        Self::new(ActorKind::System, SYSTEM_ACTOR, event)
    }

    /// Sets the time of the event.
    #[must_use]
    pub fn at_ms(mut self, at_ms: u64) -> Self {
        self.at_ms = at_ms;
        self
    }

    /// Names the session concerned.
    #[must_use]
    pub fn session(mut self, session_id: &SessionId) -> Self {
        self.session_id = Some(session_id.clone());
        self
    }

    /// Adds one fact.
    #[must_use]
    pub fn detail(mut self, key: impl Into<String>, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    /// Adds every field of a JSON object; any other JSON value is added under the key `value`.
    #[must_use]
    pub fn details(mut self, details: serde_json::Value) -> Self {
        match details {
            serde_json::Value::Object(fields) => self.details.extend(fields),
            other => {
                self.details.insert("value".to_owned(), other);
            }
        }
        self
    }

    /// Checks the parts the store relies on: a bounded dotted event name and a bounded,
    /// printable actor id.
    pub(crate) fn validate(&self) -> Result<(), &'static str> {
        let name_ok = !self.event.is_empty()
            && self.event.len() <= MAX_EVENT_LEN
            && self
                .event
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_')
            && !self.event.starts_with('.')
            && !self.event.ends_with('.');
        if !name_ok {
            return Err("event name must be 1 to 64 characters of a-z, 0-9, '_' and inner '.'");
        }
        if self.actor_id.is_empty() || self.actor_id.chars().count() > MAX_ACTOR_ID_LEN {
            return Err("actor id must be 1 to 128 characters");
        }
        if self.actor_id.chars().any(char::is_control) {
            return Err("actor id must not contain control characters");
        }
        Ok(())
    }

    /// Binds the event to `session_id`, refusing an event that names another session.
    pub(crate) fn bind_session(&mut self, session_id: &SessionId) -> Result<(), &'static str> {
        match &self.session_id {
            Some(named) if named != session_id => Err("event names a different session"),
            _ => {
                self.session_id = Some(session_id.clone());
                Ok(())
            }
        }
    }
}

/// An event as stored, with its place in the trail.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// The position in the trail: 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// When it happened.
    pub at_ms: u64,
    /// Who caused it.
    pub actor_kind: ActorKind,
    /// Which agent, approver, operator or component.
    pub actor_id: String,
    /// What happened.
    pub event: String,
    /// The session concerned.
    pub session_id: Option<SessionId>,
    /// The facts of the event.
    pub details: serde_json::Map<String, serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, actor: &str) -> AuditEvent {
        AuditEvent::new(ActorKind::System, actor, name)
    }

    #[test]
    fn event_names_are_dotted_lower_case() {
        for good in [
            "tool.initialize_payment",
            "session.transition",
            "x402.fetch",
            "audit",
        ] {
            assert_eq!(event(good, "a").validate(), Ok(()), "{good}");
        }
        let too_long = "a".repeat(MAX_EVENT_LEN + 1);
        for bad in [
            "",
            "Tool.x",
            "a b",
            ".a",
            "a.",
            "a\nb",
            "a-b",
            too_long.as_str(),
        ] {
            assert!(event(bad, "a").validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn actor_ids_are_bounded_and_free_of_control_characters() {
        assert!(event("a", "approver@example.com").validate().is_ok());
        assert!(event("a", "").validate().is_err());
        assert!(
            event("a", &"é".repeat(MAX_ACTOR_ID_LEN + 1))
                .validate()
                .is_err()
        );
        assert!(event("a", "line\nbreak").validate().is_err());
    }

    #[test]
    fn details_merge_objects_and_keep_other_values() {
        let event = AuditEvent::system("x")
            .detail("a", 1)
            .details(serde_json::json!({ "b": 2, "a": 3 }))
            .details(serde_json::json!([4]));
        assert_eq!(
            serde_json::Value::Object(event.details),
            serde_json::json!({ "a": 3, "b": 2, "value": [4] })
        );
    }

    #[test]
    fn binding_refuses_another_session() -> Result<(), Box<dyn std::error::Error>> {
        let one = SessionId::new("ps_one")?;
        let two = SessionId::new("ps_two")?;
        let mut unbound = event("a", "b");
        assert_eq!(unbound.bind_session(&one), Ok(()));
        assert_eq!(unbound.session_id.as_ref(), Some(&one));
        let mut bound = event("a", "b").session(&two);
        assert!(bound.bind_session(&one).is_err());
        Ok(())
    }
}
