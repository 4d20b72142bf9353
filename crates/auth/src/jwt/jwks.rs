//! JSON Web Key Sets: the public keys JWT bearer tokens are checked against.
//!
//! Each key is read on its own, and a key this crate cannot use safely is left out with a
//! reason instead of failing the whole set: an identity provider may publish encryption keys or
//! key types ClawFirst does not support beside the signing keys it needs. A key's type decides
//! the one algorithm it may verify: OKP/Ed25519 for EdDSA, EC/P-256 for ES256, RSA of 2048 to
//! 8192 bits for RS256. A key id published twice is dropped entirely, since a token could not
//! say which of the two it means.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use super::JwtAlgorithm;
use crate::error::SetupError;

/// The largest JWKS document read, in bytes.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// The most keys a set may list.
pub const MAX_JWKS_KEYS: usize = 64;

const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 8192;

/// A key of the set that verifies tokens of exactly one algorithm.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) algorithm: JwtAlgorithm,
    pub(crate) key: DecodingKey,
}

/// A key of the document that was left out, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IgnoredKey {
    /// The key's `kid`, when it had a string one.
    pub key_id: Option<String>,
    /// Why it was left out (`missing_kid`, `unsupported_key_type`, `unsupported_curve`,
    /// `rsa_key_too_small`, `rsa_key_too_large`, `bad_key_encoding`, `not_a_signing_key`,
    /// `algorithm_mismatch`, `duplicate_kid`, `malformed_key`).
    pub reason: &'static str,
}

/// The usable keys of a JWKS document, by key id.
#[derive(Clone, Default)]
pub struct JwkSet {
    keys: BTreeMap<String, VerificationKey>,
    ignored: Vec<IgnoredKey>,
}

impl fmt::Debug for JwkSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<(&str, JwtAlgorithm)> = self
            .keys
            .iter()
            .map(|(kid, key)| (kid.as_str(), key.algorithm))
            .collect();
        f.debug_struct("JwkSet")
            .field("keys", &keys)
            .field("ignored", &self.ignored)
            .finish()
    }
}

#[derive(Deserialize)]
struct Document {
    keys: Vec<serde_json::Value>,
}

/// The fields of one JWK this crate reads; others are ignored.
#[derive(Deserialize)]
struct RawKey {
    kty: String,
    kid: Option<String>,
    #[serde(rename = "use")]
    public_key_use: Option<String>,
    alg: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

impl JwkSet {
    /// Reads a JWKS document (`{"keys": [...]}`).
    ///
    /// # Errors
    /// [`SetupError::JwksTooLarge`] above [`MAX_JWKS_BYTES`]; [`SetupError::JwksMalformed`] when
    /// the text is not such an object or lists more than [`MAX_JWKS_KEYS`] keys. Unusable keys
    /// are not errors: see [`JwkSet::ignored`].
    pub fn from_json(text: &str) -> Result<Self, SetupError> {
        if text.len() > MAX_JWKS_BYTES {
            return Err(SetupError::JwksTooLarge);
        }
        let document: Document =
            serde_json::from_str(text).map_err(|e| SetupError::JwksMalformed(Some(e)))?;
        if document.keys.len() > MAX_JWKS_KEYS {
            return Err(SetupError::JwksMalformed(None));
        }

        let mut set = JwkSet::default();
        let mut duplicates = Vec::new();
        for value in document.keys {
            let kid = value.get("kid").and_then(|k| k.as_str()).map(str::to_owned);
            match read_key(value) {
                Ok((kid, key)) => {
                    if set.keys.insert(kid.clone(), key).is_some() {
                        duplicates.push(kid);
                    }
                }
                Err(reason) => set.ignored.push(IgnoredKey {
                    key_id: kid,
                    reason,
                }),
            }
        }
        for kid in duplicates {
            if set.keys.remove(&kid).is_some() {
                set.ignored.push(IgnoredKey {
                    key_id: Some(kid),
                    reason: "duplicate_kid",
                });
            }
        }
        Ok(set)
    }

    /// The ids of the usable keys.
    pub fn key_ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// The algorithm the key `kid` verifies, if the set has it.
    pub fn algorithm_of(&self, kid: &str) -> Option<JwtAlgorithm> {
        self.keys.get(kid).map(|k| k.algorithm)
    }

    /// The keys that were left out, with the reason for each.
    pub fn ignored(&self) -> &[IgnoredKey] {
        &self.ignored
    }

    /// The number of usable keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is usable.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub(crate) fn key(&self, kid: &str) -> Option<&VerificationKey> {
        self.keys.get(kid)
    }
}

fn read_key(value: serde_json::Value) -> Result<(String, VerificationKey), &'static str> {
    let raw: RawKey = serde_json::from_value(value).map_err(|_| "malformed_key")?;
    let kid = raw.kid.clone().ok_or("missing_kid")?;
    if raw.public_key_use.as_deref().is_some_and(|u| u != "sig") {
        return Err("not_a_signing_key");
    }

    let (algorithm, key) = match raw.kty.as_str() {
        "OKP" => (JwtAlgorithm::EdDsa, ed25519_key(&raw)?),
        "EC" => (JwtAlgorithm::Es256, p256_key(&raw)?),
        "RSA" => (JwtAlgorithm::Rs256, rsa_key(&raw)?),
        _ => return Err("unsupported_key_type"),
    };
    if raw
        .alg
        .as_deref()
        .is_some_and(|alg| alg != algorithm.as_str())
    {
        return Err("algorithm_mismatch");
    }
    Ok((kid, VerificationKey { algorithm, key }))
}

fn decode(field: Option<&String>) -> Result<Vec<u8>, &'static str> {
    let text = field.ok_or("bad_key_encoding")?;
    URL_SAFE_NO_PAD.decode(text).map_err(|_| "bad_key_encoding")
}

fn ed25519_key(raw: &RawKey) -> Result<DecodingKey, &'static str> {
    if raw.crv.as_deref() != Some("Ed25519") {
        return Err("unsupported_curve");
    }
    let x: [u8; 32] = decode(raw.x.as_ref())?
        .try_into()
        .map_err(|_| "bad_key_encoding")?;
    // Refuse bytes that are not a point of the curve now rather than at every verification.
    ed25519_dalek::VerifyingKey::from_bytes(&x).map_err(|_| "bad_key_encoding")?;
    Ok(DecodingKey::from_ed_der(&x))
}

fn p256_key(raw: &RawKey) -> Result<DecodingKey, &'static str> {
    if raw.crv.as_deref() != Some("P-256") {
        return Err("unsupported_curve");
    }
    let x = decode(raw.x.as_ref())?;
    let y = decode(raw.y.as_ref())?;
    if x.len() != 32 || y.len() != 32 {
        return Err("bad_key_encoding");
    }
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    Ok(DecodingKey::from_ec_der(&point))
}

fn rsa_key(raw: &RawKey) -> Result<DecodingKey, &'static str> {
    let n = decode(raw.n.as_ref())?;
    let e = decode(raw.e.as_ref())?;
    let n = strip_leading_zeros(&n);
    let e = strip_leading_zeros(&e);
    if n.is_empty() || e.is_empty() {
        return Err("bad_key_encoding");
    }
    let bits = n.len() * 8 - n[0].leading_zeros() as usize;
    if bits < MIN_RSA_BITS {
        return Err("rsa_key_too_small");
    }
    if bits > MAX_RSA_BITS {
        return Err("rsa_key_too_large");
    }
    Ok(DecodingKey::from_rsa_raw_components(n, e))
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    &bytes[start..]
}
