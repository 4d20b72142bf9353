//! Identifiers shared across the layers, each validated at construction.
//!
//! Identifiers travel in grants, URLs, logs and audit records, so they are restricted to a
//! small, printable alphabet and a bounded length: nothing an attacker puts in one can break a
//! log line or an encoding.

use std::fmt;

use rand::RngCore;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest identifier accepted.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// Empty or longer than [`MAX_ID_LEN`].
    #[error("{kind} must be 1 to 64 characters")]
    Length {
        /// Which identifier.
        kind: &'static str,
    },
    /// A character outside `A-Z a-z 0-9 . _ -`.
    #[error("{kind} may contain only letters, digits, '.', '_' and '-'")]
    Alphabet {
        /// Which identifier.
        kind: &'static str,
    },
}

fn check(kind: &'static str, text: &str) -> Result<(), IdError> {
    if text.is_empty() || text.len() > MAX_ID_LEN {
        return Err(IdError::Length { kind });
    }
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(IdError::Alphabet { kind });
    }
    Ok(())
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an identifier.
            ///
            /// # Errors
            /// [`IdError`] when the text is empty, too long or has a disallowed character.
            pub fn new(text: impl Into<String>) -> Result<Self, IdError> {
                let text = text.into();
                check($kind, &text)?;
                Ok(Self(text))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $name::new(text).map_err(serde::de::Error::custom)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::new(s)
            }
        }
    };
}

string_id!(
    /// An agent: the principal on whose behalf payments are made.
    AgentId,
    "agent id"
);
string_id!(
    /// A payment session.
    SessionId,
    "session id"
);
string_id!(
    /// A wallet key known to the signer.
    KeyId,
    "key id"
);

impl SessionId {
    /// A fresh random session id (`ps_` and 32 hex digits).
    pub fn random() -> Self {
        Self(format!("ps_{}", hex::encode(random_bytes::<16>())))
    }
}

/// The unique identifier of an approval grant: 16 random bytes, never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GrantId([u8; 16]);

impl GrantId {
    /// A fresh random grant id.
    pub fn random() -> Self {
        Self(random_bytes::<16>())
    }

    /// Wraps raw bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// Parses the 32-hex-digit form.
    ///
    /// # Errors
    /// [`IdError::Alphabet`] when the text is not 32 hex digits.
    pub fn parse_hex(text: &str) -> Result<Self, IdError> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(text, &mut out).map_err(|_| IdError::Alphabet { kind: "grant id" })?;
        Ok(Self(out))
    }
}

impl fmt::Display for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for GrantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GrantId({self})")
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    rand::rngs::OsRng.fill_bytes(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_hostile_text() {
        assert!(AgentId::new("demo-agent_1.x").is_ok());
        assert_eq!(AgentId::new(""), Err(IdError::Length { kind: "agent id" }));
        assert_eq!(
            AgentId::new("a".repeat(65)),
            Err(IdError::Length { kind: "agent id" })
        );
        assert_eq!(
            AgentId::new("a\nb"),
            Err(IdError::Alphabet { kind: "agent id" })
        );
        assert_eq!(
            SessionId::new("../x"),
            Err(IdError::Alphabet { kind: "session id" })
        );
    }

    #[test]
    fn grant_ids_round_trip_through_hex() {
        let id = GrantId::random();
        assert_eq!(GrantId::parse_hex(&id.to_string()), Ok(id));
        assert!(GrantId::parse_hex("zz").is_err());
    }
}
