//! What a JWT must say to be accepted, validated once.

use std::fmt;

use serde::Deserialize;

use crate::error::SetupError;

/// The largest leeway accepted for `exp` and `nbf`, in seconds.
pub const MAX_LEEWAY_SECONDS: u64 = 300;

/// The signature algorithms a JWT may use. There is deliberately no `none` and no HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[non_exhaustive]
pub enum JwtAlgorithm {
    /// Ed25519 (`EdDSA`), with an OKP/Ed25519 key.
    #[serde(rename = "EdDSA")]
    EdDsa,
    /// ECDSA on P-256 with SHA-256 (`ES256`), with an EC/P-256 key.
    #[serde(rename = "ES256")]
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`), with an RSA key of at least 2048 bits.
    #[serde(rename = "RS256")]
    Rs256,
}

impl JwtAlgorithm {
    /// The name in a JWT header.
    pub const fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::EdDsa => "EdDSA",
            JwtAlgorithm::Es256 => "ES256",
            JwtAlgorithm::Rs256 => "RS256",
        }
    }

    /// The algorithm a header names, if it is one of the supported three (exact spelling).
    pub fn from_name(name: &str) -> Option<Self> {
        [
            JwtAlgorithm::EdDsa,
            JwtAlgorithm::Es256,
            JwtAlgorithm::Rs256,
        ]
        .into_iter()
        .find(|alg| alg.as_str() == name)
    }

    pub(crate) const fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            JwtAlgorithm::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            JwtAlgorithm::Es256 => jsonwebtoken::Algorithm::ES256,
            JwtAlgorithm::Rs256 => jsonwebtoken::Algorithm::RS256,
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a JWT must say to be accepted.
///
/// Deserializes from configuration with the defaults below; [`JwtVerifier::new`] validates it.
///
/// [`JwtVerifier::new`]: super::JwtVerifier::new
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtSettings {
    /// Accepted `iss` values, compared exactly. Required, non-empty.
    pub issuers: Vec<String>,
    /// The `aud` value that names this ClawFirst deployment. Required, non-empty. A token for
    /// another audience is refused, so a token minted for another service cannot be replayed
    /// here.
    pub audience: String,
    /// Leeway for `exp` and `nbf`, in seconds. Default 30; more than [`MAX_LEEWAY_SECONDS`] is
    /// refused, since leeway extends the life of a stolen token.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// Accepted algorithms. Default EdDSA, ES256 and RS256; must not be empty. Configure only
    /// what the identity provider uses.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<JwtAlgorithm>,
    /// The claim holding the agent id. Default `sub`.
    #[serde(default = "default_agent_claim")]
    pub agent_claim: String,
}

fn default_leeway() -> u64 {
    30
}

fn default_algorithms() -> Vec<JwtAlgorithm> {
    vec![
        JwtAlgorithm::EdDsa,
        JwtAlgorithm::Es256,
        JwtAlgorithm::Rs256,
    ]
}

fn default_agent_claim() -> String {
    "sub".to_owned()
}

impl JwtSettings {
    /// Settings with the defaults for everything but the issuers and the audience.
    pub fn new(issuers: Vec<String>, audience: impl Into<String>) -> Self {
        Self {
            issuers,
            audience: audience.into(),
            leeway_seconds: default_leeway(),
            algorithms: default_algorithms(),
            agent_claim: default_agent_claim(),
        }
    }

    /// Checks the ranges documented on each field.
    ///
    /// # Errors
    /// [`SetupError::JwtSettings`] naming the first field out of range.
    pub fn validate(&self) -> Result<(), SetupError> {
        if self.issuers.is_empty() || self.issuers.iter().any(String::is_empty) {
            return Err(SetupError::JwtSettings(
                "issuers must be a non-empty list of non-empty strings",
            ));
        }
        if self.audience.is_empty() {
            return Err(SetupError::JwtSettings("audience must not be empty"));
        }
        if self.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(SetupError::JwtSettings(
                "leeway_seconds must be at most 300",
            ));
        }
        if self.algorithms.is_empty() {
            return Err(SetupError::JwtSettings("algorithms must not be empty"));
        }
        if self.agent_claim.is_empty() {
            return Err(SetupError::JwtSettings("agent_claim must not be empty"));
        }
        Ok(())
    }
}
