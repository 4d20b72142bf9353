//! Agents and the hashes of their API keys.
//!
//! # Security
//!
//! The store never sees a raw API key. The caller generates the key, shows it once, and hands
//! the store only its public lookup id (the non-secret part embedded in the key) and the
//! SHA-256 of the whole key. To authenticate, the caller looks the record up by the public id
//! and compares the hash of the presented key with [`ApiKeyRecord::hash`] in constant time
//! (`subtle::ConstantTimeEq`); the store does no comparison itself.

use std::fmt;

use clawfirst_core::{AgentId, KeyId};
use serde::{Deserialize, Serialize};

use crate::error::named_enum;

/// Whether an agent may pay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// The agent may make payments.
    Active,
    /// Payments are refused until an operator resumes the agent.
    Suspended,
    /// The agent is retired for good; its credentials no longer work.
    Revoked,
}

named_enum!(AgentStatus, "agent status", [
    AgentStatus::Active => "active",
    AgentStatus::Suspended => "suspended",
    AgentStatus::Revoked => "revoked",
]);

/// An agent as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// The agent.
    pub agent_id: AgentId,
    /// The signer key that pays for this agent.
    pub key_id: KeyId,
    /// Whether the agent may pay.
    pub status: AgentStatus,
    /// When the agent was created.
    pub created_at_ms: u64,
    /// When the agent's status last changed.
    pub updated_at_ms: u64,
    /// Moves on at every credential rotation; a delegation token issued in an earlier
    /// generation is no longer valid.
    pub credential_generation: u32,
    /// When set, the SHA-256 (of the DER) of the only client certificate the agent may
    /// authenticate with by mutual TLS; when not, any certificate from the configured client
    /// CA that names the agent.
    #[serde(with = "opt_hex32")]
    pub certificate_sha256: Option<[u8; 32]>,
}

/// An optional 32-byte value as lower-case hex.
mod opt_hex32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<[u8; 32]>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_some(&hex::encode(bytes)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<[u8; 32]>, D::Error> {
        let Some(text) = Option::<String>::deserialize(deserializer)? else {
            return Ok(None);
        };
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(Some(bytes))
    }
}

/// What the caller provides to register an API key; the store stamps it with the time of the
/// audit event that records it.
#[derive(Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The non-secret lookup id embedded in the key.
    pub key_id_public: String,
    /// The agent the key authenticates.
    pub agent_id: AgentId,
    /// SHA-256 of the whole key.
    pub hash: [u8; 32],
}

/// An API key's record.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// The non-secret lookup id embedded in the key.
    pub key_id_public: String,
    /// The agent the key authenticates.
    pub agent_id: AgentId,
    /// SHA-256 of the whole key; compare in constant time.
    pub hash: [u8; 32],
    /// When the key was registered.
    pub created_at_ms: u64,
    /// When the key was revoked; a revoked key never authenticates.
    pub revoked_at_ms: Option<u64>,
}

impl ApiKeyRecord {
    /// Whether the key may still authenticate (it has not been revoked).
    pub fn is_usable(&self) -> bool {
        self.revoked_at_ms.is_none()
    }
}

/// The longest public key id accepted.
pub const MAX_KEY_ID_PUBLIC_LEN: usize = 64;

/// Whether a public key id is short and printable enough to log and index.
pub(crate) fn valid_key_id_public(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_KEY_ID_PUBLIC_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Hashes of keys are not secrets, but there is no reason to put them in logs either.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[sha256 redacted]")
    }
}

impl fmt::Debug for NewApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApiKey")
            .field("key_id_public", &self.key_id_public)
            .field("agent_id", &self.agent_id)
            .field("hash", &Redacted)
            .finish()
    }
}

impl fmt::Debug for ApiKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyRecord")
            .field("key_id_public", &self.key_id_public)
            .field("agent_id", &self.agent_id)
            .field("hash", &Redacted)
            .field("created_at_ms", &self.created_at_ms)
            .field("revoked_at_ms", &self.revoked_at_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_leaves_the_hash_out() -> Result<(), Box<dyn std::error::Error>> {
        let key = ApiKeyRecord {
            key_id_public: "cf_live_ab12".into(),
            agent_id: AgentId::new("agent-1")?,
            hash: [0xab; 32],
            created_at_ms: 1,
            revoked_at_ms: None,
        };
        let new = NewApiKey {
            key_id_public: key.key_id_public.clone(),
            agent_id: key.agent_id.clone(),
            hash: key.hash,
        };
        let printed = format!("{key:?} {new:?} {key:#?}");
        assert!(!printed.contains("abab"), "{printed}");
        assert!(!printed.contains("171, 171"), "{printed}");
        assert!(printed.contains("cf_live_ab12"));
        Ok(())
    }

    #[test]
    fn public_key_ids_are_bounded_and_printable() {
        assert!(valid_key_id_public("cf_live_0123-abc.x"));
        assert!(!valid_key_id_public(""));
        assert!(!valid_key_id_public(&"a".repeat(MAX_KEY_ID_PUBLIC_LEN + 1)));
        assert!(!valid_key_id_public("a b"));
        assert!(!valid_key_id_public("a\nb"));
    }
}
