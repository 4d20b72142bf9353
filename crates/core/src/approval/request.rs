//! Approvers' own login to the approval API: each request signed with the approver's key.
//!
//! An approver needs no admin token and no password. Every request to the approval routes
//! carries
//!
//! ```text
//! Authorization: ClawFirst-Approver name=<approver>,at=<unix ms>,sig=<base64 signature>
//! ```
//!
//! where the signature is Ed25519 (checked with `verify_strict`, as approval statements are),
//! by the approver's key, over [`REQUEST_CONTEXT`] followed by
//! `<METHOD>\n<path and query>\n<at>`. The server checks that the approver is registered and
//! active, that `at` is within [`REQUEST_MAX_SKEW_MS`] of its clock, and the signature.
//!
//! # Security
//!
//! - The context string keeps a request signature from ever being taken for an approval
//!   statement's signature, and the other way round.
//! - The body is not signed: the one request with a body that approvers may send, a decision,
//!   carries its own signature by the same approver over the payment's exact facts, and the
//!   server requires the decision's approver to be the one who signed the request. A replayed
//!   header (within the skew window, on the same method and path) therefore reads what the
//!   approver could read, and can decide nothing the approver did not sign.
//! - Names, timestamps and signatures are parsed strictly; a header longer than
//!   [`MAX_HEADER_BYTES`] is refused before parsing.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, VerifyingKey};

use super::ApproverKey;
use crate::address::Address;

/// The authorization scheme of approver requests.
pub const SCHEME: &str = "ClawFirst-Approver";
/// Signed before the request's method, path and time.
pub const REQUEST_CONTEXT: &[u8] = b"clawfirst approver request v1\n";
/// How far a request's time may be from the server's clock, either way.
pub const REQUEST_MAX_SKEW_MS: u64 = 60_000;
/// The longest header value accepted.
pub const MAX_HEADER_BYTES: usize = 256;

/// A parsed `ClawFirst-Approver` authorization, not yet verified.
#[derive(Clone, PartialEq, Eq)]
pub struct ApproverAuthorization {
    /// The approver's name, as registered.
    pub name: String,
    /// When the request was signed, Unix milliseconds.
    pub at_ms: u64,
    signature: [u8; 64],
}

impl fmt::Debug for ApproverAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApproverAuthorization")
            .field("name", &self.name)
            .field("at_ms", &self.at_ms)
            .finish_non_exhaustive()
    }
}

/// The bytes an approver signs for one request.
fn request_message(method: &str, path_and_query: &str, at_ms: u64) -> Vec<u8> {
    let mut message = REQUEST_CONTEXT.to_vec();
    message.extend_from_slice(method.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(path_and_query.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(at_ms.to_string().as_bytes());
    message
}

impl ApproverKey {
    /// Signs one request to the approval API as approver `name`; returns the authorization
    /// header's value.
    pub fn sign_request(
        &self,
        name: &str,
        method: &str,
        path_and_query: &str,
        at_ms: u64,
    ) -> String {
        let signature = self
            .signing_key()
            .sign(&request_message(method, path_and_query, at_ms));
        format!(
            "{SCHEME} name={name},at={at_ms},sig={}",
            B64.encode(signature.to_bytes())
        )
    }
}

/// Why an approver authorization is refused; the reason is for logs and the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApproverAuthError {
    /// Not `ClawFirst-Approver name=..,at=..,sig=..` with valid fields.
    #[error("malformed approver authorization")]
    Malformed,
    /// `at` is too far from the server's clock.
    #[error("approver request time outside the allowed skew")]
    Stale,
    /// The signature does not verify with the approver's key.
    #[error("approver request signature does not verify")]
    BadSignature,
}

impl ApproverAuthError {
    /// A stable, lower-case reason for logs and audit records.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "malformed_approver_authorization",
            Self::Stale => "approver_request_stale",
            Self::BadSignature => "approver_bad_signature",
        }
    }
}

impl ApproverAuthorization {
    /// Parses a header value strictly: the scheme, then exactly `name`, `at` and `sig` in
    /// this order, separated by commas, with no spaces.
    ///
    /// # Errors
    /// [`ApproverAuthError::Malformed`].
    pub fn parse(header: &str) -> Result<Self, ApproverAuthError> {
        let malformed = ApproverAuthError::Malformed;
        if header.len() > MAX_HEADER_BYTES {
            return Err(malformed);
        }
        let rest = header
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or(malformed)?;
        let mut fields = rest.split(',');
        let (Some(name), Some(at), Some(sig), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(malformed);
        };
        let name = name.strip_prefix("name=").ok_or(malformed)?;
        let at = at.strip_prefix("at=").ok_or(malformed)?;
        let sig = sig.strip_prefix("sig=").ok_or(malformed)?;
        let name_ok = (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        let digits_ok = (1..=20).contains(&at.len()) && at.bytes().all(|b| b.is_ascii_digit());
        if !name_ok || !digits_ok {
            return Err(malformed);
        }
        let at_ms = at.parse().map_err(|_| malformed)?;
        let signature: [u8; 64] = B64
            .decode(sig)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(malformed)?;
        Ok(Self {
            name: name.to_owned(),
            at_ms,
            signature,
        })
    }

    /// Checks the time against `now_ms` and the signature against the approver's registered
    /// public key, for this request's method and path (with its query, if any).
    ///
    /// # Errors
    /// [`ApproverAuthError::Stale`] or [`ApproverAuthError::BadSignature`].
    pub fn verify(
        &self,
        public_key: &Address,
        method: &str,
        path_and_query: &str,
        now_ms: u64,
    ) -> Result<(), ApproverAuthError> {
        if self.at_ms.abs_diff(now_ms) > REQUEST_MAX_SKEW_MS {
            return Err(ApproverAuthError::Stale);
        }
        let key = VerifyingKey::from_bytes(public_key.as_bytes())
            .map_err(|_| ApproverAuthError::BadSignature)?;
        key.verify_strict(
            &request_message(method, path_and_query, self.at_ms),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| ApproverAuthError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn a_signed_request_verifies_only_for_its_method_path_time_and_key() {
        let key = ApproverKey::generate();
        let other = ApproverKey::generate();
        let header = key.sign_request("alice", "GET", "/admin/v1/approvals?limit=5", NOW);
        let auth = ApproverAuthorization::parse(&header).expect("parses");
        assert_eq!(auth.name, "alice");
        assert_eq!(auth.at_ms, NOW);
        let pk = key.public_key();
        assert_eq!(
            auth.verify(&pk, "GET", "/admin/v1/approvals?limit=5", NOW + 1000),
            Ok(())
        );
        let bad = Err(ApproverAuthError::BadSignature);
        assert_eq!(
            auth.verify(&pk, "POST", "/admin/v1/approvals?limit=5", NOW),
            bad
        );
        assert_eq!(auth.verify(&pk, "GET", "/admin/v1/approvals", NOW), bad);
        assert_eq!(
            auth.verify(
                &other.public_key(),
                "GET",
                "/admin/v1/approvals?limit=5",
                NOW
            ),
            bad
        );
        let stale = Err(ApproverAuthError::Stale);
        let late = NOW + REQUEST_MAX_SKEW_MS + 1;
        assert_eq!(
            auth.verify(&pk, "GET", "/admin/v1/approvals?limit=5", late),
            stale
        );
        let early = NOW - REQUEST_MAX_SKEW_MS - 1;
        assert_eq!(
            auth.verify(&pk, "GET", "/admin/v1/approvals?limit=5", early),
            stale
        );
    }

    #[test]
    fn headers_out_of_shape_are_malformed() {
        let key = ApproverKey::generate();
        let good = key.sign_request("alice", "GET", "/x", NOW);
        let sig = good.rsplit_once("sig=").map(|(_, s)| s).unwrap_or_default();
        let cases = [
            String::new(),
            "Bearer abc".to_owned(),
            format!("ClawFirst-Approver name=alice,at={NOW}"),
            format!("ClawFirst-Approver at={NOW},name=alice,sig={sig}"),
            format!("ClawFirst-Approver name=alice,at={NOW},sig={sig},extra=1"),
            format!("ClawFirst-Approver name=al ice,at={NOW},sig={sig}"),
            format!("ClawFirst-Approver name=,at={NOW},sig={sig}"),
            format!("ClawFirst-Approver name=alice,at=-1,sig={sig}"),
            format!("ClawFirst-Approver name=alice,at=99999999999999999999,sig={sig}"),
            format!("ClawFirst-Approver name=alice,at={NOW},sig=AAAA"),
            format!("ClawFirst-Approver  name=alice,at={NOW},sig={sig}"),
            format!(
                "ClawFirst-Approver name={},at={NOW},sig={sig}",
                "a".repeat(65)
            ),
        ];
        for case in cases {
            assert_eq!(
                ApproverAuthorization::parse(&case),
                Err(ApproverAuthError::Malformed),
                "{case}"
            );
        }
    }

    #[test]
    fn debug_output_leaves_the_signature_out() {
        let key = ApproverKey::generate();
        let header = key.sign_request("alice", "GET", "/x", NOW);
        let auth = ApproverAuthorization::parse(&header).expect("parses");
        let sig = header
            .rsplit_once("sig=")
            .map(|(_, s)| s)
            .unwrap_or_default();
        assert!(!format!("{auth:?}").contains(sig));
    }

    proptest! {
        /// The parser never panics, and whatever it accepts re-verifies or refuses cleanly.
        #[test]
        fn any_header_parses_or_is_refused(header in ".{0,300}") {
            if let Ok(auth) = ApproverAuthorization::parse(&header) {
                let key = ApproverKey::generate();
                let _ = auth.verify(&key.public_key(), "GET", "/", NOW);
            }
        }

        /// Every signed header parses back to its name and time.
        #[test]
        fn signed_headers_round_trip(
            name in "[A-Za-z0-9._-]{1,64}",
            at in any::<u64>(),
            path in "/[ -~]{0,60}",
        ) {
            let key = ApproverKey::generate();
            let header = key.sign_request(&name, "POST", &path, at);
            let auth = ApproverAuthorization::parse(&header).expect("parses");
            prop_assert_eq!(&auth.name, &name);
            prop_assert_eq!(auth.at_ms, at);
            prop_assert_eq!(auth.verify(&key.public_key(), "POST", &path, at), Ok(()));
        }
    }
}
