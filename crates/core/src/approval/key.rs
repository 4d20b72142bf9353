//! An approver's own signing key and its file format.
//!
//! # Key file
//!
//! Two lines of text, each ending in `\n` (the last newline may be missing):
//!
//! ```text
//! clawfirst-approver-key-v1
//! <base64 of the 32-byte Ed25519 seed, standard alphabet, padded>
//! ```
//!
//! Nothing else is accepted: no blank lines, no spaces, no other header. The file holds the
//! secret itself, unencrypted: whoever writes it must create it with mode 0600 (owner only),
//! and whoever reads it should refuse a file that group or others may access.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey};
use zeroize::Zeroizing;

use crate::address::Address;
use crate::secret::{SecretBytes, SecretString};

use super::{ApprovalError, ApprovalStatement, SignedApproval};

/// The first line of an approver key file.
pub const KEY_FILE_HEADER: &str = "clawfirst-approver-key-v1";

/// Why an approver key could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApproverKeyError {
    /// The seed is not 32 bytes.
    #[error("approver key must be a 32-byte Ed25519 seed")]
    SeedLength,
    /// The text is not an approver key file; the reason never quotes the file.
    #[error("approver key file is malformed: {0}")]
    FileFormat(&'static str),
}

/// An approver's Ed25519 signing key.
///
/// # Security
/// Whoever holds this key can cast this approver's vote on any payment. It belongs to one
/// human, on their own machine; neither the server nor the signer needs it. It has no `Debug`
/// output of its bytes and wipes them on drop.
pub struct ApproverKey {
    key: SigningKey,
}

impl fmt::Debug for ApproverKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApproverKey")
            .field("public_key", &self.public_key())
            .finish()
    }
}

impl ApproverKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// Loads a key from its 32-byte seed.
    ///
    /// # Errors
    /// [`ApproverKeyError::SeedLength`] when the seed is not 32 bytes.
    pub fn from_seed(seed: &SecretBytes) -> Result<Self, ApproverKeyError> {
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
            seed.expose()
                .try_into()
                .map_err(|_| ApproverKeyError::SeedLength)?,
        );
        Ok(Self {
            key: SigningKey::from_bytes(&bytes),
        })
    }

    /// The 32-byte seed, for storing the key at rest.
    pub fn seed(&self) -> SecretBytes {
        SecretBytes::new(self.key.to_bytes().to_vec())
    }

    /// The Ed25519 key, for the other signatures an approver makes (see [`super::request`]).
    pub(super) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The public key the signer lists for this approver.
    pub fn public_key(&self) -> Address {
        Address::new(self.key.verifying_key().to_bytes())
    }

    /// Encodes and signs a statement.
    ///
    /// # Errors
    /// [`ApprovalError::ApproverMismatch`] when `statement.approver` is not this key's public
    /// key: such a statement could never verify, and signing it would only hide the mistake.
    pub fn sign(&self, statement: &ApprovalStatement) -> Result<SignedApproval, ApprovalError> {
        if statement.approver != self.public_key() {
            return Err(ApprovalError::ApproverMismatch);
        }
        let bytes = statement.encode();
        let signature = self.key.sign(&bytes);
        Ok(SignedApproval {
            statement: B64.encode(&bytes),
            signature: B64.encode(signature.to_bytes()),
        })
    }

    /// The key file's text (see the module documentation). Write it with mode 0600.
    pub fn to_file_text(&self) -> SecretString {
        let seed = Zeroizing::new(B64.encode(self.key.to_bytes()));
        SecretString::new(format!("{KEY_FILE_HEADER}\n{}\n", seed.as_str()))
    }

    /// Parses a key file's text strictly.
    ///
    /// # Errors
    /// [`ApproverKeyError::FileFormat`] naming what is wrong (never quoting the text), or
    /// [`ApproverKeyError::SeedLength`].
    pub fn from_file_text(text: &str) -> Result<Self, ApproverKeyError> {
        let body = text.strip_suffix('\n').unwrap_or(text);
        let Some((header, seed)) = body.split_once('\n') else {
            return Err(ApproverKeyError::FileFormat("expected two lines"));
        };
        if header != KEY_FILE_HEADER {
            return Err(ApproverKeyError::FileFormat(
                "the first line is not clawfirst-approver-key-v1",
            ));
        }
        if seed.contains('\n') {
            return Err(ApproverKeyError::FileFormat("expected two lines"));
        }
        let bytes = Zeroizing::new(
            B64.decode(seed)
                .map_err(|_| ApproverKeyError::FileFormat("the seed is not valid base64"))?,
        );
        Self::from_seed(&SecretBytes::new(bytes.to_vec()))
    }
}
