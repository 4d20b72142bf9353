//! Test keys and a token builder independent of the verifier under test.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::Signer as _;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

pub const NOW: u64 = 1_800_000_000;
pub const ISSUER: &str = "https://idp.example";
pub const AUDIENCE: &str = "clawfirst";

/// A key that signs test tokens, with its public JWK.
pub enum TestKey {
    Ed(ed25519_dalek::SigningKey),
    Es(EncodingKey, Value),
    Rs(EncodingKey, Value),
}

impl TestKey {
    pub fn ed25519(seed: u8) -> Self {
        TestKey::Ed(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]))
    }

    pub fn p256() -> Result<Self, Box<dyn std::error::Error>> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let raw = pair.public_key_raw();
        let (x, y) = (&raw[1..33], &raw[33..65]);
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)});
        Ok(TestKey::Es(
            EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk,
        ))
    }

    pub fn rsa2048() -> Result<Self, Box<dyn std::error::Error>> {
        let der = std::fs::read(fixture("rsa2048.der"))?;
        let jwk: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture("rsa2048.public.json"))?)?;
        Ok(TestKey::Rs(EncodingKey::from_rsa_der(&der), jwk))
    }

    pub fn alg(&self) -> &'static str {
        match self {
            TestKey::Ed(_) => "EdDSA",
            TestKey::Es(..) => "ES256",
            TestKey::Rs(..) => "RS256",
        }
    }

    /// The public JWK with this `kid`.
    pub fn jwk(&self, kid: &str) -> Value {
        let mut jwk = match self {
            TestKey::Ed(key) => json!({
                "kty": "OKP",
                "crv": "Ed25519",
                "x": b64(key.verifying_key().as_bytes()),
            }),
            TestKey::Es(_, jwk) | TestKey::Rs(_, jwk) => jwk.clone(),
        };
        jwk["kid"] = json!(kid);
        jwk
    }

    pub fn sign(&self, signing_input: &[u8]) -> String {
        match self {
            TestKey::Ed(key) => b64(&key.sign(signing_input).to_bytes()),
            TestKey::Es(key, _) => {
                jsonwebtoken::crypto::sign(signing_input, key, Algorithm::ES256).unwrap_or_default()
            }
            TestKey::Rs(key, _) => {
                jsonwebtoken::crypto::sign(signing_input, key, Algorithm::RS256).unwrap_or_default()
            }
        }
    }
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `b64(header).b64(claims)`, the JWS signing input.
pub fn signing_input(header: &Value, claims: &Value) -> String {
    format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

/// A token signed by `key` with the given header and claims.
pub fn token(key: &TestKey, header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature = key.sign(input.as_bytes());
    format!("{input}.{signature}")
}

/// A token signed with HMAC-SHA256 under `secret`.
pub fn hs256_token(secret: &[u8], header: &Value, claims: &Value) -> String {
    let input = signing_input(header, claims);
    let signature = EncodingKey::from_secret(secret)
        .and_then(|key| jsonwebtoken::crypto::sign(input.as_bytes(), &key, Algorithm::HS256))
        .unwrap_or_default();
    assert!(!signature.is_empty(), "hmac signing failed");
    format!("{input}.{signature}")
}

/// Claims that the default settings accept at [`NOW`].
pub fn good_claims() -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "agent-7",
        "iat": NOW - 10,
        "exp": NOW + 600,
    })
}

pub fn header(alg: &str, kid: &str) -> Value {
    json!({"alg": alg, "typ": "JWT", "kid": kid})
}
