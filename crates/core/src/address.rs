//! Solana account addresses as validated 32-byte values.
//!
//! This crate stays free of the Solana SDK so that every layer can share it cheaply; the
//! `clawfirst-solana` crate converts to and from the SDK's address type.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::asset::truncate_for_error;

/// A 32-byte Solana address (an Ed25519 public key or a program-derived address).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address([u8; 32]);

/// Why a string is not a Solana address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Outside the 32 to 44 characters a base58 32-byte value takes.
    #[error("address must be 32 to 44 base58 characters, got {0}")]
    Length(usize),
    /// A character outside the base58 alphabet.
    #[error("address contains {0:?}, which is not a base58 character")]
    Alphabet(char),
    /// Valid base58 that does not decode to exactly 32 bytes.
    #[error("address does not decode to 32 bytes")]
    DecodedLength,
}

impl Address {
    /// Wraps raw bytes.
    pub const fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// The raw bytes by reference.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses a base58 address strictly: length, alphabet, decoded size.
    ///
    /// # Errors
    /// An [`AddressError`] naming the problem.
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let len = text.chars().count();
        if !(32..=44).contains(&len) {
            return Err(AddressError::Length(len));
        }
        if let Some(bad) = text.chars().find(|c| !is_base58(*c)) {
            return Err(AddressError::Alphabet(bad));
        }
        let mut out = [0u8; 32];
        match bs58::decode(text).onto(&mut out) {
            Ok(32) => Ok(Self(out)),
            _ => Err(AddressError::DecodedLength),
        }
    }
}

fn is_base58(c: char) -> bool {
    c.is_ascii_alphanumeric() && !matches!(c, '0' | 'O' | 'I' | 'l')
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = AddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Address::parse(s)
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Address::parse(&text).map_err(|e| {
            serde::de::Error::custom(format!("{e} (in {:?})", truncate_for_error(&text)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_bad_text() {
        let a = Address::new([7u8; 32]);
        assert_eq!(Address::parse(&a.to_string()), Ok(a));
        assert_eq!(Address::parse("short"), Err(AddressError::Length(5)));
        let zero_o = "O".repeat(40);
        assert_eq!(Address::parse(&zero_o), Err(AddressError::Alphabet('O')));
        // 44 base58 characters that decode to more than 32 bytes.
        assert_eq!(
            Address::parse(&"z".repeat(44)),
            Err(AddressError::DecodedLength)
        );
        // 32 ones decode to 32 zero bytes: the system program id, which is a valid address.
        assert_eq!(Address::parse(&"1".repeat(32)), Ok(Address::new([0; 32])));
    }
}
