//! Approval grants: the approval layer's signed statement that one exact transaction may be
//! signed.
//!
//! A grant binds a unique id, the agent, the payment session, the wallet key, the SHA-256 of the
//! exact message bytes to be signed, the transfer that message performs, and a short validity
//! window. The approval layer signs the grant's canonical encoding with its own Ed25519 grant
//! key; the signer verifies that signature with the grant public key from its own
//! configuration, then checks the message against the transfer before it signs anything.
//!
//! # Encoding
//!
//! The body is a fixed-order binary encoding (all integers big-endian):
//!
//! | field | bytes |
//! |---|---|
//! | magic `CFGRANT1` | 8 |
//! | grant id | 16 |
//! | issued at, ms since the Unix epoch | 8 |
//! | expires at, ms since the Unix epoch | 8 |
//! | agent id, session id, key id | each 1 length byte + ASCII |
//! | SHA-256 of the message | 32 |
//! | asset tag (0 SOL, 1 USDC, 2 BONK) | 1 |
//! | mint flag (0 none, 1 present) + mint | 1 + 0 or 32 |
//! | amount in base units | 8 |
//! | recipient, payer | 32 each |
//!
//! Decoding accepts only this exact layout: no trailing bytes, no unknown tags, valid
//! identifiers. The signature covers the body bytes as sent, so there is no canonicalisation
//! step an attacker could exploit.
//!
//! # Security
//!
//! [`VerifiedGrant`] can only be obtained from [`GrantVerifier::verify`], so code that demands
//! one cannot be handed an unchecked grant. Replay protection is not part of verification: the
//! signer records each grant id in its own database and refuses one seen before.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::address::Address;
use crate::ids::{AgentId, GrantId, KeyId, SessionId};
use crate::secret::SecretBytes;
use crate::transfer::Transfer;

mod codec;
#[cfg(test)]
mod tests;

pub use codec::GrantDecodeError;

/// The longest validity window a verifier accepts, from issue to expiry.
pub const MAX_GRANT_LIFETIME_MS: u64 = 5 * 60 * 1000;

/// Clock skew tolerated between the approval layer and the signer.
pub const CLOCK_SKEW_MS: u64 = 5_000;

/// What a grant states.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantBody {
    /// Unique per grant; the signer refuses an id it has seen.
    pub grant_id: GrantId,
    /// When the approval layer issued the grant.
    pub issued_at_ms: u64,
    /// After this instant the grant is void.
    pub expires_at_ms: u64,
    /// The agent that asked for the payment.
    pub agent_id: AgentId,
    /// The payment session.
    pub session_id: SessionId,
    /// The wallet key that may sign.
    pub key_id: KeyId,
    /// SHA-256 of the exact message bytes to be signed.
    pub message_sha256: [u8; 32],
    /// The transfer the message must perform, and nothing else.
    pub transfer: Transfer,
}

impl GrantBody {
    /// SHA-256 of a message, as bound in [`GrantBody::message_sha256`].
    pub fn hash_message(message: &[u8]) -> [u8; 32] {
        Sha256::digest(message).into()
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes the canonical encoding strictly.
    ///
    /// # Errors
    /// [`GrantDecodeError`] naming the first malformed field.
    pub fn decode(bytes: &[u8]) -> Result<Self, GrantDecodeError> {
        codec::decode(bytes)
    }
}

/// A grant as it travels: the encoded body and the grant key's signature over it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedGrant {
    /// Base64 of the canonical body.
    pub body: String,
    /// Base64 of the 64-byte Ed25519 signature over the decoded body bytes.
    pub signature: String,
}

impl fmt::Debug for SignedGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedGrant")
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// The approval layer's grant signing key.
///
/// # Security
/// Whoever holds this key can authorize payments up to the signer's floor limits. It lives in the
/// server's data directory, never in the signer, and never in a log: this type has no `Debug`
/// output of its bytes and wipes them on drop.
pub struct GrantSigner {
    key: SigningKey,
}

impl fmt::Debug for GrantSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrantSigner")
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl GrantSigner {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// Loads a key from its 32-byte seed.
    ///
    /// # Errors
    /// [`GrantKeyError`] when the seed is not 32 bytes.
    pub fn from_seed(seed: &SecretBytes) -> Result<Self, GrantKeyError> {
        let bytes: [u8; 32] = seed.expose().try_into().map_err(|_| GrantKeyError)?;
        Ok(Self {
            key: SigningKey::from_bytes(&bytes),
        })
    }

    /// The 32-byte seed, for storing the key at rest.
    pub fn seed(&self) -> SecretBytes {
        SecretBytes::new(self.key.to_bytes().to_vec())
    }

    /// The public key the signer is configured with.
    pub fn public_key(&self) -> Address {
        Address::new(self.key.verifying_key().to_bytes())
    }

    /// Encodes and signs a grant body.
    pub fn sign(&self, body: &GrantBody) -> SignedGrant {
        let bytes = body.encode();
        let signature = self.key.sign(&bytes);
        SignedGrant {
            body: B64.encode(&bytes),
            signature: B64.encode(signature.to_bytes()),
        }
    }
}

/// A grant key that is not 32 bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("grant key must be a 32-byte Ed25519 seed")]
pub struct GrantKeyError;

/// Why a grant was refused by [`GrantVerifier::verify`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantError {
    /// The body or signature is not valid base64 or the body does not decode.
    #[error("grant is malformed")]
    Malformed(#[source] GrantDecodeError),
    /// The signature does not verify under the configured grant key.
    #[error("grant signature is invalid")]
    BadSignature,
    /// The grant's expiry has passed.
    #[error("grant has expired")]
    Expired,
    /// The grant claims to be issued in the future.
    #[error("grant is not yet valid")]
    NotYetValid,
    /// The validity window is longer than [`MAX_GRANT_LIFETIME_MS`].
    #[error("grant lifetime exceeds the maximum")]
    LifetimeTooLong,
}

/// Verifies grants against the approval layer's public key.
#[derive(Clone, Debug)]
pub struct GrantVerifier {
    key: VerifyingKey,
}

/// A grant whose signature and validity window have been checked.
///
/// Only [`GrantVerifier::verify`] constructs this type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedGrant {
    body: GrantBody,
}

impl VerifiedGrant {
    /// The verified statement.
    pub fn body(&self) -> &GrantBody {
        &self.body
    }
}

impl GrantVerifier {
    /// A verifier for the given grant public key.
    ///
    /// # Errors
    /// [`GrantKeyError`] when the bytes are not a valid Ed25519 public key.
    pub fn new(public_key: Address) -> Result<Self, GrantKeyError> {
        let key = VerifyingKey::from_bytes(public_key.as_bytes()).map_err(|_| GrantKeyError)?;
        Ok(Self { key })
    }

    /// Checks the signature first, then the validity window at `now_ms`.
    ///
    /// The signature is checked before anything in the body is trusted, including its expiry.
    ///
    /// # Errors
    /// A [`GrantError`] naming the first failed check.
    pub fn verify(&self, grant: &SignedGrant, now_ms: u64) -> Result<VerifiedGrant, GrantError> {
        let body_bytes = B64
            .decode(&grant.body)
            .map_err(|_| GrantError::Malformed(GrantDecodeError::Base64))?;
        let signature = B64
            .decode(&grant.signature)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or(GrantError::BadSignature)?;

        // 1. Authenticity: verify_strict refuses malleable and small-order signatures.
        self.key
            .verify_strict(&body_bytes, &signature)
            .map_err(|_| GrantError::BadSignature)?;

        // 2. Structure.
        let body = GrantBody::decode(&body_bytes).map_err(GrantError::Malformed)?;

        // 3. Validity window.
        if body.expires_at_ms.saturating_sub(body.issued_at_ms) > MAX_GRANT_LIFETIME_MS {
            return Err(GrantError::LifetimeTooLong);
        }
        if body.issued_at_ms > now_ms.saturating_add(CLOCK_SKEW_MS) {
            return Err(GrantError::NotYetValid);
        }
        if now_ms >= body.expires_at_ms {
            return Err(GrantError::Expired);
        }
        Ok(VerifiedGrant { body })
    }
}
