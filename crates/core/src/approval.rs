//! Human approvals: an approver's own Ed25519 signature over one payment.
//!
//! Above the signer's floor, a grant alone is not enough: the signer also demands signed
//! approvals from enough distinct humans it knows. An approver signs an
//! [`ApprovalStatement`] about the payment (session, agent, wallet key and the exact transfer),
//! not about the Solana message: approvals are given minutes or hours before the message, with
//! its recent blockhash, is built. The signer checks each statement against the grant it
//! arrives with.
//!
//! # Encoding
//!
//! The statement is a fixed-order binary encoding (all integers big-endian), built from the
//! same field writers as the grant's:
//!
//! | field | bytes |
//! |---|---|
//! | magic `CFAPPRV1` | 8 |
//! | approver public key (Ed25519) | 32 |
//! | decision (1 approve, 0 reject) | 1 |
//! | decided at, ms since the Unix epoch | 8 |
//! | session id, agent id, key id | each 1 length byte + ASCII |
//! | asset tag (0 SOL, 1 USDC, 2 BONK) | 1 |
//! | mint flag (0 none, 1 present) + mint | 1 + 0 or 32 |
//! | amount in base units | 8 |
//! | recipient, payer | 32 each |
//!
//! Decoding accepts only this exact layout: no trailing bytes, no unknown tags or decisions,
//! valid identifiers. The magic differs from the grant's, so a signature over one can never be
//! taken for the other.
//!
//! # Security
//!
//! - [`SignedApproval::verify`] checks the signature (with `verify_strict`, which refuses
//!   malleable signatures and weak keys) against the approver key named in the statement
//!   itself. Whether that key belongs to an approver the verifier trusts is the caller's
//!   decision: the signer compares it with its own list.
//! - [`VerifiedApproval`] can only be obtained from [`SignedApproval::verify`].
//! - [`ApproverKey::sign`] refuses a statement that names another approver, so a key cannot
//!   produce a statement that claims someone else's key.
//! - Freshness and single use are not part of verification: the signer bounds the age of
//!   `decided_at_ms` and records each approved session once.
//! - Nothing here logs. [`ApproverKey`] never prints its seed; [`SignedApproval`] prints only
//!   its length.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::grant::GrantBody;
use crate::ids::{AgentId, KeyId, SessionId};
use crate::transfer::Transfer;

mod codec;
mod key;
pub mod request;
#[cfg(test)]
mod tests;

pub use codec::ApprovalDecodeError;
pub use key::{ApproverKey, ApproverKeyError, KEY_FILE_HEADER};

/// The longest base64 statement accepted; a valid one is under 500 characters.
pub const MAX_STATEMENT_BASE64: usize = 1024;

/// What an approver decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalDecision {
    /// The payment may be made.
    Approve,
    /// The payment must not be made.
    Reject,
}

impl ApprovalDecision {
    /// The byte in the encoding.
    pub const fn tag(self) -> u8 {
        match self {
            ApprovalDecision::Approve => 1,
            ApprovalDecision::Reject => 0,
        }
    }

    /// The decision for a byte of the encoding, if any.
    pub const fn from_tag(tag: u8) -> Option<Self> {
        match tag {
            1 => Some(ApprovalDecision::Approve),
            0 => Some(ApprovalDecision::Reject),
            _ => None,
        }
    }
}

/// What an approver signs: a decision about one payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalStatement {
    /// The approver's Ed25519 public key; the signature must verify under it.
    pub approver: Address,
    /// Approve or reject.
    pub decision: ApprovalDecision,
    /// When the approver decided, ms since the Unix epoch.
    pub decided_at_ms: u64,
    /// The payment session.
    pub session_id: SessionId,
    /// The agent that asked for the payment.
    pub agent_id: AgentId,
    /// The wallet key that will sign.
    pub key_id: KeyId,
    /// The exact transfer approved.
    pub transfer: Transfer,
}

impl ApprovalStatement {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes the canonical encoding strictly.
    ///
    /// # Errors
    /// [`ApprovalDecodeError`] naming the first malformed field.
    pub fn decode(bytes: &[u8]) -> Result<Self, ApprovalDecodeError> {
        codec::decode(bytes)
    }
}

/// An approval as it travels: the encoded statement and the approver's signature over it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedApproval {
    /// Base64 of the canonical statement.
    pub statement: String,
    /// Base64 of the 64-byte Ed25519 signature over the decoded statement bytes.
    pub signature: String,
}

impl fmt::Debug for SignedApproval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedApproval")
            .field("statement_len", &self.statement.len())
            .finish_non_exhaustive()
    }
}

/// Why an approval was refused or could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// The statement is not valid base64, too long, or does not decode.
    #[error("approval statement is malformed")]
    Malformed(#[source] ApprovalDecodeError),
    /// The signature is malformed or does not verify under the statement's approver key.
    #[error("approval signature is invalid")]
    BadSignature,
    /// [`ApproverKey::sign`] was given a statement naming another approver.
    #[error("approval statement names another approver than the signing key")]
    ApproverMismatch,
}

/// An approval whose signature verified under the approver key it names.
///
/// Only [`SignedApproval::verify`] constructs this type. It says nothing yet about whether the
/// approver is trusted, the decision, the statement's age, or which payment it is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedApproval {
    statement: ApprovalStatement,
}

impl VerifiedApproval {
    /// The verified statement.
    pub fn statement(&self) -> &ApprovalStatement {
        &self.statement
    }

    /// The approver whose key produced the signature.
    pub fn approver(&self) -> Address {
        self.statement.approver
    }

    /// Whether the statement is about the payment `grant` authorizes: the same session, agent,
    /// wallet key and exact transfer.
    pub fn matches_grant(&self, grant: &GrantBody) -> bool {
        let s = &self.statement;
        s.session_id == grant.session_id
            && s.agent_id == grant.agent_id
            && s.key_id == grant.key_id
            && s.transfer == grant.transfer
    }
}

impl SignedApproval {
    /// Decodes the statement and verifies the signature against the approver key it names.
    ///
    /// The statement is decoded before the signature is checked because the key to check
    /// against is inside it; the decoder is strict and bounds-checked, and nothing else of the
    /// statement is trusted before the signature verified.
    ///
    /// # Errors
    /// [`ApprovalError::Malformed`] or [`ApprovalError::BadSignature`].
    pub fn verify(&self) -> Result<VerifiedApproval, ApprovalError> {
        if self.statement.len() > MAX_STATEMENT_BASE64 {
            return Err(ApprovalError::Malformed(ApprovalDecodeError::TooLong));
        }
        let bytes = B64
            .decode(&self.statement)
            .map_err(|_| ApprovalError::Malformed(ApprovalDecodeError::Base64))?;
        let statement = ApprovalStatement::decode(&bytes).map_err(ApprovalError::Malformed)?;

        let signature = B64
            .decode(&self.signature)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or(ApprovalError::BadSignature)?;
        let key = VerifyingKey::from_bytes(statement.approver.as_bytes())
            .map_err(|_| ApprovalError::BadSignature)?;
        key.verify_strict(&bytes, &signature)
            .map_err(|_| ApprovalError::BadSignature)?;
        Ok(VerifiedApproval { statement })
    }
}
