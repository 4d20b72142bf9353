//! The two error boundaries of the crate.
//!
//! [`AuthError`] is a refusal of a presented credential: one variant per reason, each with a
//! stable snake_case [`AuthError::reason`] for logs, metrics and audit records, and the
//! [`AuthError::method`] it concerns. Callers show agents something vague (`UNAUTHORIZED`) and
//! record the precise reason. No variant carries any part of the credential.
//!
//! [`SetupError`] is a problem of the operator's configuration or key material: settings out of
//! range, an unreadable key set, a certificate authority that cannot be loaded.

use std::fmt;

/// The kind of credential a refusal concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// A JWT bearer token from the operator's identity provider.
    Jwt,
    /// A delegation token issued by ClawFirst.
    DelegationToken,
    /// A client certificate presented over mutual TLS.
    Mtls,
}

impl AuthMethod {
    /// The stable name: `jwt`, `delegation_token` or `mtls`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::DelegationToken => "delegation_token",
            AuthMethod::Mtls => "mtls",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a presented credential was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The JWT is longer than the size limit; it was not parsed.
    #[error("jwt exceeds the size limit")]
    JwtTooLarge,
    /// The JWT is not three base64url segments with a JSON header and claims object.
    #[error("jwt is malformed")]
    JwtMalformed,
    /// The header's `alg` is missing, unknown, or not one of the configured algorithms.
    #[error("jwt algorithm is not allowed")]
    JwtAlgNotAllowed,
    /// The header's `alg` does not fit the type of the key its `kid` selects.
    #[error("jwt algorithm does not match the key type")]
    JwtAlgKeyMismatch,
    /// The header lists critical extensions (`crit`), none of which are supported.
    #[error("jwt header has unsupported critical extensions")]
    JwtUnsupportedHeader,
    /// The header has no `kid`.
    #[error("jwt header has no key id")]
    JwtMissingKid,
    /// The header's `kid` names no key of the key set.
    #[error("jwt key id is unknown")]
    JwtUnknownKid,
    /// The signature does not verify under the selected key.
    #[error("jwt signature is invalid")]
    JwtBadSignature,
    /// `exp` has passed, leeway included.
    #[error("jwt has expired")]
    JwtExpired,
    /// `nbf` is still in the future, leeway included.
    #[error("jwt is not yet valid")]
    JwtNotYetValid,
    /// `iss` is not one of the configured issuers.
    #[error("jwt issuer is not accepted")]
    JwtWrongIssuer,
    /// `aud` does not name the configured audience.
    #[error("jwt audience does not match")]
    JwtWrongAudience,
    /// A required claim is absent.
    #[error("jwt lacks the claim {claim}")]
    JwtMissingClaim {
        /// The claim's name (from the configuration, never from the token).
        claim: String,
    },
    /// A registered claim (`exp`, `nbf`, `iss`, `aud`) has the wrong JSON type.
    #[error("jwt claim {claim} has the wrong type")]
    JwtBadClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// The agent claim is not a string that is a valid agent id.
    #[error("jwt agent claim is not a valid agent id")]
    JwtBadAgentClaim,

    /// The delegation token is longer than the size limit; it was not parsed.
    #[error("delegation token exceeds the size limit")]
    TokenTooLarge,
    /// The delegation token does not have the `cfdt_<payload>.<signature>` shape, or its
    /// (authentic) payload is not a canonical claims object.
    #[error("delegation token is malformed")]
    TokenMalformed,
    /// The signature does not verify under the delegation key.
    #[error("delegation token signature is invalid")]
    TokenBadSignature,
    /// The payload's format version is not 1.
    #[error("delegation token version is not supported")]
    TokenUnsupportedVersion,
    /// The token's expiry has passed.
    #[error("delegation token has expired")]
    TokenExpired,
    /// The token was issued in the future.
    #[error("delegation token is not yet valid")]
    TokenNotYetValid,
    /// The token is bound to a client certificate and none was presented.
    #[error("delegation token requires its client certificate")]
    TokenNeedsCertificate,
    /// The token is bound to a different client certificate than the one presented.
    #[error("delegation token is bound to another certificate")]
    TokenBoundToOtherCertificate,

    /// The client certificate is not a well-formed X.509 certificate.
    #[error("client certificate is malformed")]
    CertMalformed,
    /// The certificate carries no agent identity under the configured mapping.
    #[error("client certificate carries no agent identity")]
    CertNoIdentity,
    /// The identity in the certificate is not a valid agent id.
    #[error("client certificate identity is not a valid agent id")]
    CertBadAgentId,
    /// The certificate names more than one agent.
    #[error("client certificate names more than one agent")]
    CertAmbiguousIdentity,
}

impl AuthError {
    /// The stable snake_case reason, for logs, metrics and audit records.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::JwtTooLarge => "jwt_too_large",
            AuthError::JwtMalformed => "jwt_malformed",
            AuthError::JwtAlgNotAllowed => "jwt_alg_not_allowed",
            AuthError::JwtAlgKeyMismatch => "jwt_alg_key_mismatch",
            AuthError::JwtUnsupportedHeader => "jwt_unsupported_header",
            AuthError::JwtMissingKid => "jwt_missing_kid",
            AuthError::JwtUnknownKid => "jwt_unknown_kid",
            AuthError::JwtBadSignature => "jwt_bad_signature",
            AuthError::JwtExpired => "jwt_expired",
            AuthError::JwtNotYetValid => "jwt_not_yet_valid",
            AuthError::JwtWrongIssuer => "jwt_wrong_issuer",
            AuthError::JwtWrongAudience => "jwt_wrong_audience",
            AuthError::JwtMissingClaim { .. } => "jwt_missing_claim",
            AuthError::JwtBadClaim { .. } => "jwt_bad_claim",
            AuthError::JwtBadAgentClaim => "jwt_bad_agent_claim",
            AuthError::TokenTooLarge => "token_too_large",
            AuthError::TokenMalformed => "token_malformed",
            AuthError::TokenBadSignature => "token_bad_signature",
            AuthError::TokenUnsupportedVersion => "token_unsupported_version",
            AuthError::TokenExpired => "token_expired",
            AuthError::TokenNotYetValid => "token_not_yet_valid",
            AuthError::TokenNeedsCertificate => "token_needs_certificate",
            AuthError::TokenBoundToOtherCertificate => "token_bound_to_other_certificate",
            AuthError::CertMalformed => "cert_malformed",
            AuthError::CertNoIdentity => "cert_no_identity",
            AuthError::CertBadAgentId => "cert_bad_agent_id",
            AuthError::CertAmbiguousIdentity => "cert_ambiguous_identity",
        }
    }

    /// The kind of credential that was refused.
    pub fn method(&self) -> AuthMethod {
        match self {
            AuthError::JwtTooLarge
            | AuthError::JwtMalformed
            | AuthError::JwtAlgNotAllowed
            | AuthError::JwtAlgKeyMismatch
            | AuthError::JwtUnsupportedHeader
            | AuthError::JwtMissingKid
            | AuthError::JwtUnknownKid
            | AuthError::JwtBadSignature
            | AuthError::JwtExpired
            | AuthError::JwtNotYetValid
            | AuthError::JwtWrongIssuer
            | AuthError::JwtWrongAudience
            | AuthError::JwtMissingClaim { .. }
            | AuthError::JwtBadClaim { .. }
            | AuthError::JwtBadAgentClaim => AuthMethod::Jwt,
            AuthError::TokenTooLarge
            | AuthError::TokenMalformed
            | AuthError::TokenBadSignature
            | AuthError::TokenUnsupportedVersion
            | AuthError::TokenExpired
            | AuthError::TokenNotYetValid
            | AuthError::TokenNeedsCertificate
            | AuthError::TokenBoundToOtherCertificate => AuthMethod::DelegationToken,
            AuthError::CertMalformed
            | AuthError::CertNoIdentity
            | AuthError::CertBadAgentId
            | AuthError::CertAmbiguousIdentity => AuthMethod::Mtls,
        }
    }
}

/// A problem with the operator's settings or key material, found while setting up a verifier,
/// loading a key set, or using the certificate authority.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// JWT settings out of range; the text names the field and the rule.
    #[error("invalid jwt settings: {0}")]
    JwtSettings(&'static str),
    /// The JWKS text is not a JSON object with a `keys` array, or exceeds the limits.
    #[error("jwks document is malformed")]
    JwksMalformed(#[source] Option<serde_json::Error>),
    /// The JWKS URL is not an https URL (plain http needs `dangerous_allow_http`).
    #[error("jwks url must be an absolute https url")]
    JwksInsecureUrl,
    /// Reading the JWKS file failed.
    #[error("cannot read the jwks file")]
    JwksRead(#[source] std::io::Error),
    /// Fetching the JWKS URL failed.
    #[error("cannot fetch the jwks url")]
    JwksFetch(#[source] reqwest::Error),
    /// The JWKS URL answered with an unsuccessful status.
    #[error("jwks url answered with status {0}")]
    JwksStatus(u16),
    /// The JWKS response or file exceeds the size limit.
    #[error("jwks document exceeds the size limit")]
    JwksTooLarge,
    /// Building the TLS client for JWKS fetches failed.
    #[error("cannot build the jwks http client")]
    JwksClient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A delegation token's lifetime is outside 1 to 86400 seconds.
    #[error("delegation token lifetime must be 1 to 86400 seconds, not {0}")]
    TokenLifetime(u64),
    /// A delegation key seed or public key has the wrong length or is not a valid key.
    #[error("delegation key is invalid")]
    DelegationKey,
    /// A certificate lifetime is outside the accepted range.
    #[error("certificate lifetime must be 1 to 3650 days, not {0}")]
    CertificateLifetime(u32),
    /// A server certificate needs at least one DNS name or IP address.
    #[error("a server certificate needs at least one dns name or ip address")]
    NoServerNames,
    /// The certificate or key PEM could not be read.
    #[error("certificate or key pem is invalid")]
    Pem,
    /// rcgen refused to build or sign a certificate.
    #[error("certificate generation failed")]
    Certificate(#[source] rcgen::Error),
}
