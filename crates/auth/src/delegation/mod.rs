//! Delegation tokens: short-lived credentials ClawFirst issues to an agent.
//!
//! A token reads `cfdt_<payload>.<signature>`, both parts unpadded base64url. The payload is a
//! canonical JSON object, its members always in this order:
//!
//! ```text
//! {"v":1,"tid":"<32 hex>","agent":"<agent id>","iat":<s>,"exp":<s>,"gen":<u32>,
//!  "max":{"USDC":"<base units>",...},"cnf":"<64 hex>"}
//! ```
//!
//! `max` (lower spending limits than the agent's policy) and `cnf` (the SHA-256 of the client
//! certificate the token is bound to) are left out when unused. The signature is Ed25519 over
//! [`SIGNING_CONTEXT`] followed by the payload bytes, so no other ClawFirst signature (grants,
//! approvals) can be passed off as a delegation token.
//!
//! # Security
//!
//! [`DelegationVerifier::verify`] checks, in order: the size limit; the shape; the signature
//! (Ed25519 `verify_strict`), before any JSON is parsed, so the parser only sees bytes the
//! delegation key signed; a canonical payload with no unknown member and `v == 1`; the expiry
//! with [`CLOCK_SKEW_SECONDS`]; the certificate binding (a bound token is refused without its
//! certificate, compared in constant time).
//!
//! A token that passed the signature and payload checks is remembered by its SHA-256, for as
//! long as the verifier exists; the byte-identical token on a later request skips to the time
//! and certificate checks, which run every time.
//!
//! What this module cannot know is checked by the caller against the store:
//! - revocation: refuse a token whose [`DelegationClaims::token_id`] is revoked;
//! - rotation: refuse a token whose [`DelegationClaims::generation`] is lower than the agent's
//!   current credential generation (rotating an agent increments it, revoking every token
//!   issued before at once);
//! - suspension and the agent's existence;
//! - [`DelegationClaims::max_amounts`]: the tighter of these and the policy applies.
//!
//! Tokens and the key seed are never logged; errors name only the refusal reason.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use clawfirst_core::secret::{SecretBytes, SecretString};
use clawfirst_core::{AgentId, Asset};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use rand::RngCore;
use subtle::ConstantTimeEq;
use tracing::{debug, info, instrument};

use crate::cert::certificate_sha256;
use crate::error::{AuthError, SetupError};
use crate::memo::{Expiring, VerifiedMemo, token_key};

mod payload;

use payload::Payload;

/// The prefix of every delegation token.
pub const TOKEN_PREFIX: &str = "cfdt_";
/// Signed before the payload: binds the signature to this use.
pub const SIGNING_CONTEXT: &[u8] = b"clawfirst delegation token v1\n";
/// The longest token accepted, in bytes.
pub const MAX_TOKEN_BYTES: usize = 2048;
/// The longest lifetime a token may be issued with, in seconds (one day).
pub const MAX_TTL_SECONDS: u64 = 86_400;
/// Clock difference tolerated between the issuer and the verifier, in seconds.
pub const CLOCK_SKEW_SECONDS: u64 = 5;

/// The unique id of one issued token (16 random bytes), the key of its revocation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId([u8; 16]);

impl TokenId {
    /// A fresh random id.
    pub fn random() -> Self {
        let mut bytes = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The raw bytes.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0
    }

    /// Parses 32 lower-case hex digits.
    pub fn parse_hex(text: &str) -> Option<Self> {
        parse_lower_hex(text).map(Self)
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({self})")
    }
}

/// What a verified token grants, for the caller's revocation, rotation and limit checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegationClaims {
    /// The token's id: check it against the revocation list.
    pub token_id: TokenId,
    /// The agent the token speaks for.
    pub agent_id: AgentId,
    /// When it was issued, in seconds since the Unix epoch.
    pub issued_at_s: u64,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at_s: u64,
    /// The agent's credential generation at issue: refuse it if the agent's current
    /// generation is higher.
    pub generation: u32,
    /// Per-asset limits in base units, lower than the policy's; empty means none.
    pub max_amounts: BTreeMap<Asset, u64>,
    /// The SHA-256 of the client certificate the token is bound to, if any.
    pub bound_certificate_sha256: Option<[u8; 32]>,
}

/// What to issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegationRequest {
    /// The agent the token speaks for.
    pub agent_id: AgentId,
    /// Lifetime, 1 to [`MAX_TTL_SECONDS`].
    pub ttl_seconds: u64,
    /// Per-asset limits in base units; empty for none.
    pub max_amounts: BTreeMap<Asset, u64>,
    /// Bind the token to this client certificate (its DER's SHA-256).
    pub bound_certificate_sha256: Option<[u8; 32]>,
    /// The agent's current credential generation.
    pub generation: u32,
}

/// A newly issued token: the secret to hand to the agent, and its claims to record.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token, shown once.
    pub token: SecretString,
    /// What it grants; store the token id for revocation.
    pub claims: DelegationClaims,
}

/// The key that signs delegation tokens.
///
/// # Security
/// The seed is wiped on drop (ed25519-dalek's `zeroize`); `Debug` shows only the public key;
/// [`DelegationKey::seed`] is the one way to export it.
pub struct DelegationKey(SigningKey);

impl fmt::Debug for DelegationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DelegationKey(public {})",
            hex::encode(self.public_key())
        )
    }
}

impl DelegationKey {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Self(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    /// The key with this 32-byte seed.
    ///
    /// # Errors
    /// [`SetupError::DelegationKey`] when the seed is not 32 bytes.
    pub fn from_seed(seed: &SecretBytes) -> Result<Self, SetupError> {
        let bytes: &[u8; 32] = seed
            .expose()
            .try_into()
            .map_err(|_| SetupError::DelegationKey)?;
        Ok(Self(SigningKey::from_bytes(bytes)))
    }

    /// The seed, for storing the key.
    pub fn seed(&self) -> SecretBytes {
        SecretBytes::new(self.0.to_bytes().to_vec())
    }

    /// The public key, for [`DelegationVerifier::new`].
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Issues a token at `now_s` (seconds since the Unix epoch).
    ///
    /// # Errors
    /// [`SetupError::TokenLifetime`] when the lifetime is outside 1 to [`MAX_TTL_SECONDS`].
    pub fn issue(&self, request: DelegationRequest, now_s: u64) -> Result<IssuedToken, SetupError> {
        if !(1..=MAX_TTL_SECONDS).contains(&request.ttl_seconds) {
            return Err(SetupError::TokenLifetime(request.ttl_seconds));
        }
        let claims = DelegationClaims {
            token_id: TokenId::random(),
            agent_id: request.agent_id,
            issued_at_s: now_s,
            expires_at_s: now_s.saturating_add(request.ttl_seconds),
            generation: request.generation,
            max_amounts: request.max_amounts,
            bound_certificate_sha256: request.bound_certificate_sha256,
        };
        let payload = Payload::from_claims(&claims).to_json();
        let signature = self.0.sign(&signing_message(payload.as_bytes()));
        let token = format!(
            "{TOKEN_PREFIX}{}.{}",
            URL_SAFE_NO_PAD.encode(payload.as_bytes()),
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        );
        Ok(IssuedToken {
            token: SecretString::new(token),
            claims,
        })
    }
}

/// Checks delegation tokens against the delegation public key.
#[derive(Clone)]
pub struct DelegationVerifier {
    key: VerifyingKey,
    /// Tokens whose signature and payload this key verified.
    memo: Arc<VerifiedMemo<DelegationClaims>>,
}

impl fmt::Debug for DelegationVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DelegationVerifier({})",
            hex::encode(self.key.as_bytes())
        )
    }
}

impl Expiring for DelegationClaims {
    fn dead_from_s(&self) -> u64 {
        self.expires_at_s.saturating_add(CLOCK_SKEW_SECONDS)
    }
}

impl DelegationVerifier {
    /// A verifier for this public key.
    ///
    /// # Errors
    /// [`SetupError::DelegationKey`] when the bytes are not a valid, non-weak Ed25519 key.
    pub fn new(public_key: &[u8; 32]) -> Result<Self, SetupError> {
        let key = VerifyingKey::from_bytes(public_key).map_err(|_| SetupError::DelegationKey)?;
        if key.is_weak() {
            return Err(SetupError::DelegationKey);
        }
        Ok(Self {
            key,
            memo: Arc::default(),
        })
    }

    /// Verifies `token` at `now_s`, with the client certificate presented on the connection,
    /// if any.
    ///
    /// # Errors
    /// The [`AuthError`] of the first failed check, in the order of the module docs.
    #[instrument(skip_all, fields(auth.method = "delegation_token"))]
    pub fn verify(
        &self,
        token: &str,
        now_s: u64,
        presented_certificate_der: Option<&[u8]>,
    ) -> Result<DelegationClaims, AuthError> {
        match self.check(token, now_s, presented_certificate_der) {
            Ok(claims) => {
                debug!(
                    agent.id = %claims.agent_id,
                    token.id = %claims.token_id,
                    "delegation token accepted"
                );
                Ok(claims)
            }
            Err(error) => {
                info!(auth.reason = error.reason(), "delegation token refused");
                Err(error)
            }
        }
    }

    fn check(
        &self,
        token: &str,
        now_s: u64,
        presented_certificate_der: Option<&[u8]>,
    ) -> Result<DelegationClaims, AuthError> {
        // 1. Size.
        if token.len() > MAX_TOKEN_BYTES {
            return Err(AuthError::TokenTooLarge);
        }
        let memo_key = token_key(token);
        let claims = match self.memo.get(&memo_key) {
            Some(claims) => claims,
            None => {
                let claims = self.authentic(token)?;
                self.memo.insert(memo_key, claims.clone(), now_s);
                claims
            }
        };

        // 4. Time.
        if now_s >= claims.expires_at_s.saturating_add(CLOCK_SKEW_SECONDS) {
            return Err(AuthError::TokenExpired);
        }
        if now_s.saturating_add(CLOCK_SKEW_SECONDS) < claims.issued_at_s {
            return Err(AuthError::TokenNotYetValid);
        }

        // 5. Certificate binding.
        if let Some(bound) = &claims.bound_certificate_sha256 {
            let presented = presented_certificate_der.ok_or(AuthError::TokenNeedsCertificate)?;
            let same: bool = certificate_sha256(presented).ct_eq(bound).into();
            if !same {
                return Err(AuthError::TokenBoundToOtherCertificate);
            }
        }
        Ok(claims)
    }

    /// Steps 1 to 3: the token's shape, its signature, and its payload.
    fn authentic(&self, token: &str) -> Result<DelegationClaims, AuthError> {
        // 1. Shape.
        let (payload_b64, signature_b64) = token
            .strip_prefix(TOKEN_PREFIX)
            .and_then(|rest| rest.split_once('.'))
            .ok_or(AuthError::TokenMalformed)?;
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| AuthError::TokenMalformed)?;
        let signature: [u8; 64] = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .ok()
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(AuthError::TokenMalformed)?;

        // 2. Signature, before the payload is parsed.
        self.key
            .verify_strict(
                &signing_message(&payload),
                &Signature::from_bytes(&signature),
            )
            .map_err(|_| AuthError::TokenBadSignature)?;

        // 3. Strict, canonical payload.
        Payload::parse(&payload)
    }
}

fn signing_message(payload: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + payload.len());
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(payload);
    message
}

/// Parses exactly `2 * N` lower-case hex digits.
pub(crate) fn parse_lower_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}
