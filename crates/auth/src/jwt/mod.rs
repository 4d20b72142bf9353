//! JWT bearer tokens from the operator's identity provider.
//!
//! [`JwtVerifier::verify`] is synchronous and pure: it takes the token and the current time and
//! reads nothing else. Key sets are loaded into it by the caller or by [`JwksCache`], which
//! owns the file reading, the https fetching and the refresh policy.
//!
//! # Security
//!
//! The checks run in this order, and each refusal has its own [`AuthError`]:
//!
//! 1. size: tokens above [`MAX_TOKEN_BYTES`] are refused before any parsing;
//! 2. shape: three strict base64url segments, a header and a claims object with distinct keys;
//! 3. `alg` must be one of the configured algorithms (only EdDSA, ES256 and RS256 exist here,
//!    so `none` and every HMAC algorithm are refused before any key is looked at); a header
//!    with `crit` is refused;
//! 4. `kid` is required and must name a key of the set; the key's type must be the one the
//!    header's `alg` needs, which is what stops algorithm confusion (an RSA or HMAC token
//!    checked with a key of another type);
//! 5. the signature, with the `jsonwebtoken` crate on aws-lc-rs;
//! 6. the claims: `exp` required and `nbf` when present, both with the configured leeway;
//!    `iss` one of the configured issuers; `aud` equal to, or an array containing, the
//!    configured audience; the agent claim a valid [`AgentId`].
//!
//! A token that passed every check is remembered by its SHA-256 for as long as this verifier
//! (and so this key set) is in use; the byte-identical token on a later request is only checked
//! against its time window again.
//!
//! Keys embedded in the token (`jwk`, `jku`, `x5u`, `x5c`) are never used. Tokens are never
//! logged; refusals are logged at info with their reason and the key id, acceptances at debug.

mod cache;
mod jwks;
mod settings;

use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clawfirst_core::AgentId;
use serde_json::Value;
use tracing::{debug, info, instrument};

pub use cache::{JwksCache, JwksCacheSettings, JwksSource};
pub use jwks::{IgnoredKey, JwkSet, MAX_JWKS_BYTES, MAX_JWKS_KEYS};
pub use settings::{JwtAlgorithm, JwtSettings, MAX_LEEWAY_SECONDS};

use crate::error::{AuthError, SetupError};
use crate::json::UniqueObject;
use crate::memo::{Expiring, VerifiedMemo, token_key};

/// The longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Who a verified JWT says the caller is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JwtIdentity {
    /// The agent, from the configured agent claim.
    pub agent_id: AgentId,
    /// The `kid` of the key that verified the token.
    pub key_id: String,
    /// The token's `exp`, in seconds since the Unix epoch.
    pub expires_at_s: u64,
}

/// Checks JWT bearer tokens against validated settings and a key set.
#[derive(Clone)]
pub struct JwtVerifier {
    settings: JwtSettings,
    keys: JwkSet,
    /// Tokens that passed every check with these keys and settings (see [`crate::memo`]).
    memo: Arc<VerifiedMemo<VerifiedJwt>>,
}

/// What a token's signature established, kept for its later requests.
#[derive(Clone, Debug)]
struct VerifiedJwt {
    identity: JwtIdentity,
    not_before_s: Option<u64>,
    leeway_s: u64,
}

impl Expiring for VerifiedJwt {
    fn dead_from_s(&self) -> u64 {
        self.identity.expires_at_s.saturating_add(self.leeway_s)
    }
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("settings", &self.settings)
            .field("keys", &self.keys)
            .finish()
    }
}

impl JwtVerifier {
    /// A verifier for these settings and keys.
    ///
    /// # Errors
    /// [`SetupError::JwtSettings`] when the settings are out of range (see [`JwtSettings`]).
    pub fn new(settings: JwtSettings, keys: JwkSet) -> Result<Self, SetupError> {
        settings.validate()?;
        Ok(Self {
            settings,
            keys,
            memo: Arc::default(),
        })
    }

    /// The settings this verifier checks against.
    pub fn settings(&self) -> &JwtSettings {
        &self.settings
    }

    /// The key set this verifier checks against.
    pub fn keys(&self) -> &JwkSet {
        &self.keys
    }

    /// Verifies `token` at `now_s` (seconds since the Unix epoch).
    ///
    /// # Errors
    /// The [`AuthError`] of the first check that fails, in the order of the module docs.
    #[instrument(skip_all, fields(auth.method = "jwt"))]
    pub fn verify(&self, token: &str, now_s: u64) -> Result<JwtIdentity, AuthError> {
        match self.check(token, now_s) {
            Ok(identity) => {
                debug!(
                    agent.id = %identity.agent_id,
                    jwt.kid = %identity.key_id,
                    "jwt accepted"
                );
                Ok(identity)
            }
            Err(error) => {
                info!(auth.reason = error.reason(), "jwt refused");
                Err(error)
            }
        }
    }

    fn check(&self, token: &str, now_s: u64) -> Result<JwtIdentity, AuthError> {
        // 1. Size, before anything is decoded.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::JwtTooLarge);
        }

        // The same token again: its signature, issuer, audience and agent were checked with
        // these very keys and settings; only the time window can have changed.
        let memo_key = token_key(token);
        if let Some(verified) = self.memo.get(&memo_key) {
            self.check_window(verified.identity.expires_at_s, verified.not_before_s, now_s)?;
            return Ok(verified.identity);
        }

        // 2. Shape.
        let mut parts = token.split('.');
        let (Some(header_b64), Some(claims_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::JwtMalformed);
        };
        let header = decode_object(header_b64)?;
        let claims = decode_object(claims_b64)?;
        if URL_SAFE_NO_PAD.decode(signature_b64).is_err() {
            return Err(AuthError::JwtMalformed);
        }

        // 3. Algorithm, before any key is selected.
        let algorithm = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(JwtAlgorithm::from_name)
            .filter(|alg| self.settings.algorithms.contains(alg))
            .ok_or(AuthError::JwtAlgNotAllowed)?;
        if header.get("crit").is_some() {
            return Err(AuthError::JwtUnsupportedHeader);
        }

        // 4. Key, and the key's type against the algorithm.
        let kid = match header.get("kid") {
            None => return Err(AuthError::JwtMissingKid),
            Some(Value::String(kid)) => kid,
            Some(_) => return Err(AuthError::JwtMalformed),
        };
        let key = self.keys.key(kid).ok_or(AuthError::JwtUnknownKid)?;
        if key.algorithm != algorithm {
            return Err(AuthError::JwtAlgKeyMismatch);
        }

        // 5. Signature over the two first segments exactly as received.
        let signed = &token[..header_b64.len() + 1 + claims_b64.len()];
        let valid = jsonwebtoken::crypto::verify(
            signature_b64,
            signed.as_bytes(),
            &key.key,
            algorithm.to_jsonwebtoken(),
        )
        .unwrap_or(false);
        if !valid {
            return Err(AuthError::JwtBadSignature);
        }

        // 6. Claims.
        let expires_at_s =
            numeric_date(&claims, "exp")?.ok_or_else(|| AuthError::JwtMissingClaim {
                claim: "exp".to_owned(),
            })?;
        let not_before_s = numeric_date(&claims, "nbf")?;
        self.check_window(expires_at_s, not_before_s, now_s)?;
        self.check_issuer(&claims)?;
        self.check_audience(&claims)?;
        let agent_id = self.agent(&claims)?;
        let identity = JwtIdentity {
            agent_id,
            key_id: kid.clone(),
            expires_at_s,
        };
        let verified = VerifiedJwt {
            identity: identity.clone(),
            not_before_s,
            leeway_s: self.settings.leeway_seconds,
        };
        self.memo.insert(memo_key, verified, now_s);
        Ok(identity)
    }

    /// `exp` and `nbf`, with the configured leeway.
    fn check_window(
        &self,
        expires_at_s: u64,
        not_before_s: Option<u64>,
        now_s: u64,
    ) -> Result<(), AuthError> {
        let leeway = self.settings.leeway_seconds;
        if now_s >= expires_at_s.saturating_add(leeway) {
            return Err(AuthError::JwtExpired);
        }
        if let Some(nbf) = not_before_s
            && now_s.saturating_add(leeway) < nbf
        {
            return Err(AuthError::JwtNotYetValid);
        }
        Ok(())
    }

    fn check_issuer(&self, claims: &UniqueObject) -> Result<(), AuthError> {
        match claims.get("iss") {
            None => Err(AuthError::JwtMissingClaim {
                claim: "iss".to_owned(),
            }),
            Some(Value::String(iss)) if self.settings.issuers.iter().any(|i| i == iss) => Ok(()),
            Some(Value::String(_)) => Err(AuthError::JwtWrongIssuer),
            Some(_) => Err(AuthError::JwtBadClaim { claim: "iss" }),
        }
    }

    fn check_audience(&self, claims: &UniqueObject) -> Result<(), AuthError> {
        let wanted = self.settings.audience.as_str();
        let matches = match claims.get("aud") {
            None => {
                return Err(AuthError::JwtMissingClaim {
                    claim: "aud".to_owned(),
                });
            }
            Some(Value::String(aud)) => aud == wanted,
            Some(Value::Array(auds)) => {
                if !auds.iter().all(Value::is_string) {
                    return Err(AuthError::JwtBadClaim { claim: "aud" });
                }
                auds.iter().any(|aud| aud.as_str() == Some(wanted))
            }
            Some(_) => return Err(AuthError::JwtBadClaim { claim: "aud" }),
        };
        if matches {
            Ok(())
        } else {
            Err(AuthError::JwtWrongAudience)
        }
    }

    fn agent(&self, claims: &UniqueObject) -> Result<AgentId, AuthError> {
        let claim = &self.settings.agent_claim;
        match claims.get(claim) {
            None => Err(AuthError::JwtMissingClaim {
                claim: claim.clone(),
            }),
            Some(Value::String(id)) => {
                AgentId::new(id.as_str()).map_err(|_| AuthError::JwtBadAgentClaim)
            }
            Some(_) => Err(AuthError::JwtBadAgentClaim),
        }
    }
}

fn decode_object(segment: &str) -> Result<UniqueObject, AuthError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| AuthError::JwtMalformed)?;
    UniqueObject::parse(&bytes).map_err(|_| AuthError::JwtMalformed)
}

/// A NumericDate claim as whole seconds; absent is `None`, anything but a non-negative integer
/// is refused.
fn numeric_date(claims: &UniqueObject, claim: &'static str) -> Result<Option<u64>, AuthError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or(AuthError::JwtBadClaim { claim }),
    }
}
