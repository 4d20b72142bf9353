//! The request and response format spoken between the approval layer and `clawfirst-signer`.
//!
//! Framing: each message is one JSON object on one line (UTF-8, terminated by `\n`), at most
//! [`MAX_FRAME_BYTES`] long. A connection carries any number of request/response pairs in
//! order; the client waits for each response before sending the next request. The full
//! reference with examples is `docs/signer-protocol.md`.
//!
//! Binary values are base64 (standard alphabet, padded); addresses and signatures are base58 as
//! Solana prints them.

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::approval::SignedApproval;
use crate::grant::SignedGrant;
use crate::ids::KeyId;

/// The longest line either side accepts.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// A request to the signer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignerRequest {
    /// Sign `message` (base64 of the exact Solana message bytes) with `key_id`, as `grant`
    /// allows.
    Sign {
        /// The wallet key.
        key_id: KeyId,
        /// Base64 of the message bytes.
        message: String,
        /// The approval grant bound to this message.
        grant: SignedGrant,
        /// Human approvals of this payment, needed above the signer's floor. Absent means
        /// none.
        #[serde(default)]
        approvals: Vec<SignedApproval>,
    },
    /// The public key (wallet address) of `key_id`.
    PublicKey {
        /// The wallet key.
        key_id: KeyId,
    },
    /// Whether a grant id has been used, and the signature it produced. Lets the approval layer
    /// recover after a crash without ever asking for a second signature.
    GrantStatus {
        /// 32 hex digits.
        grant_id: String,
    },
    /// Liveness and the configured key ids. A struct variant, so that unknown fields are
    /// refused here as in every other request.
    Health {},
}

/// The signer's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case", deny_unknown_fields)]
pub enum SignerResponse {
    /// The message was signed.
    Signed {
        /// Base58 Ed25519 signature, also the Solana transaction signature.
        signature: String,
        /// The wallet address that signed.
        public_key: Address,
    },
    /// A key's public key.
    PublicKey {
        /// The wallet key.
        key_id: KeyId,
        /// Its address.
        public_key: Address,
    },
    /// What the signer knows of a grant id.
    GrantStatus {
        /// Whether the grant id has been used.
        used: bool,
        /// The signature produced under it, when one was.
        signature: Option<String>,
    },
    /// The signer is up.
    Health {
        /// Configured key ids.
        keys: Vec<KeyId>,
        /// The backend kind, e.g. `pkcs11` or `dangerous_dev_keyfile`.
        backend: String,
    },
    /// The request was refused or failed.
    Error {
        /// Machine-readable reason.
        code: SignerErrorCode,
        /// Human-readable, never containing key material or the grant.
        message: String,
    },
}

/// Why the signer refused or failed a request. Each refusal has its own code so the approval
/// layer and the audit trail can tell them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SignerErrorCode {
    /// The request line was not valid JSON for this protocol, or too long.
    BadRequest,
    /// The grant did not decode.
    GrantMalformed,
    /// The grant signature did not verify under the configured grant key.
    GrantBadSignature,
    /// The grant has expired, is not yet valid, or claims too long a lifetime.
    GrantExpired,
    /// The grant id was used before.
    GrantReplayed,
    /// The grant names another key, or the message hash differs from the grant's.
    GrantMismatch,
    /// The message does not perform exactly the transfer the grant describes.
    MessageMismatch,
    /// The key id is not configured.
    UnknownKey,
    /// The key backend failed; nothing was signed.
    BackendFailure,
    /// The signer's own database failed; nothing was signed.
    StorageFailure,
    /// The transfer exceeds the signer's own floor limits (per transaction, or the agent's
    /// rolling 24-hour total for the asset); nothing was signed and the grant stays unused.
    /// Also the answer above the floor when the signer is configured without approvers.
    FloorExceeded,
    /// The transfer is above the floor and the request does not carry enough valid approvals
    /// from distinct approvers; nothing was signed and the grant stays unused.
    ApprovalRequired,
    /// A supplied approval is forged, from an approver the signer does not know, a rejection,
    /// about another payment, too old or from the future, or from an approver already counted;
    /// nothing was signed and the grant stays unused.
    ApprovalInvalid,
    /// Approvals for this payment session were already used to sign another grant; nothing was
    /// signed and the grant stays unused.
    ApprovalReplayed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_refuses_unknown_fields() {
        assert_eq!(
            serde_json::from_str::<SignerRequest>(r#"{"op":"health"}"#).ok(),
            Some(SignerRequest::Health {})
        );
        for line in [
            r#"{"op":"health","extra":1}"#,
            r#"{"op":"public_key","key_id":"default","extra":1}"#,
            r#"{"op":"grant_status","grant_id":"00","extra":1}"#,
            r#"{"op":"unknown"}"#,
            concat!(
                r#"{"op":"sign","key_id":"k","message":"","grant":{"body":"","signature":""},"#,
                r#""approvals":[{"statement":"","signature":"","extra":1}]}"#
            ),
        ] {
            assert!(
                serde_json::from_str::<SignerRequest>(line).is_err(),
                "{line}"
            );
        }
    }

    #[test]
    fn a_sign_request_without_approvals_carries_none() {
        let line = r#"{"op":"sign","key_id":"k","message":"","grant":{"body":"","signature":""}}"#;
        let parsed = serde_json::from_str::<SignerRequest>(line);
        assert!(
            matches!(&parsed, Ok(SignerRequest::Sign { approvals, .. }) if approvals.is_empty()),
            "{parsed:?}"
        );
    }

    #[test]
    fn the_approval_codes_have_their_wire_names() {
        for (code, name) in [
            (SignerErrorCode::ApprovalRequired, "\"approval_required\""),
            (SignerErrorCode::ApprovalInvalid, "\"approval_invalid\""),
            (SignerErrorCode::ApprovalReplayed, "\"approval_replayed\""),
        ] {
            assert_eq!(serde_json::to_string(&code).ok().as_deref(), Some(name));
        }
    }
}
