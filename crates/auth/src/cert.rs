//! The agent behind a client certificate.
//!
//! rustls verifies the chain to the operator's CA (see [`crate::ca`] and rustls'
//! `WebPkiClientVerifier`); this module then reads which agent the verified leaf certificate
//! names, under one explicit [`CertIdentity`] mapping. It must only ever be given certificates
//! that rustls has already verified: it checks no signature, date or issuer itself.
//!
//! # Security
//!
//! A certificate naming two different agents is refused rather than resolved, and the name
//! must be a valid [`AgentId`] as a whole (no prefix matching inside it, no case folding).
//! [`certificate_sha256`] is the fingerprint that binds delegation tokens to a certificate.

use clawfirst_core::AgentId;
use sha2::{Digest, Sha256};
use tracing::{debug, info, instrument};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use crate::error::AuthError;

/// The SAN URI prefix ClawFirst's CA writes before the agent id.
pub const DEFAULT_SAN_URI_PREFIX: &str = "urn:clawfirst:agent:";
/// The largest certificate read, in bytes.
pub const MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// Where in the certificate the agent id is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertIdentity {
    /// A subject alternative name URI made of `prefix` and the agent id, e.g.
    /// `urn:clawfirst:agent:agent-7`. The prefix is compared exactly.
    SanUri {
        /// The text before the agent id.
        prefix: String,
    },
    /// The subject's common name (CN) is the agent id.
    SubjectCommonName,
}

impl Default for CertIdentity {
    /// The SAN URI mapping with [`DEFAULT_SAN_URI_PREFIX`], which certificates from
    /// [`crate::ca::OperatorCa`] carry.
    fn default() -> Self {
        CertIdentity::SanUri {
            prefix: DEFAULT_SAN_URI_PREFIX.to_owned(),
        }
    }
}

/// The SHA-256 of a certificate's DER encoding.
pub fn certificate_sha256(der: &[u8]) -> [u8; 32] {
    Sha256::digest(der).into()
}

/// The agent a verified client certificate names.
///
/// # Errors
/// [`AuthError::CertMalformed`] when `der` is not exactly one X.509 certificate;
/// [`AuthError::CertNoIdentity`] when the mapping finds nothing;
/// [`AuthError::CertAmbiguousIdentity`] when it finds two different names;
/// [`AuthError::CertBadAgentId`] when the name is not a valid agent id.
#[instrument(skip_all, fields(auth.method = "mtls"))]
pub fn agent_from_certificate(der: &[u8], mapping: &CertIdentity) -> Result<AgentId, AuthError> {
    match identity(der, mapping) {
        Ok(agent_id) => {
            debug!(agent.id = %agent_id, "client certificate accepted");
            Ok(agent_id)
        }
        Err(error) => {
            info!(auth.reason = error.reason(), "client certificate refused");
            Err(error)
        }
    }
}

fn identity(der: &[u8], mapping: &CertIdentity) -> Result<AgentId, AuthError> {
    if der.len() > MAX_CERTIFICATE_BYTES {
        return Err(AuthError::CertMalformed);
    }
    let (rest, cert) = X509Certificate::from_der(der).map_err(|_| AuthError::CertMalformed)?;
    if !rest.is_empty() {
        return Err(AuthError::CertMalformed);
    }

    let names = match mapping {
        CertIdentity::SanUri { prefix } => san_uris(&cert, prefix)?,
        CertIdentity::SubjectCommonName => common_names(&cert)?,
    };
    let Some(first) = names.first() else {
        return Err(AuthError::CertNoIdentity);
    };
    if names.iter().any(|name| name != first) {
        return Err(AuthError::CertAmbiguousIdentity);
    }
    AgentId::new(first.as_str()).map_err(|_| AuthError::CertBadAgentId)
}

fn san_uris(cert: &X509Certificate<'_>, prefix: &str) -> Result<Vec<String>, AuthError> {
    let san = cert
        .subject_alternative_name()
        .map_err(|_| AuthError::CertMalformed)?;
    let Some(san) = san else {
        return Ok(Vec::new());
    };
    Ok(san
        .value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix(prefix).map(str::to_owned),
            _ => None,
        })
        .collect())
}

fn common_names(cert: &X509Certificate<'_>) -> Result<Vec<String>, AuthError> {
    cert.subject()
        .iter_common_name()
        .map(|cn| {
            cn.as_str()
                .map(str::to_owned)
                .map_err(|_| AuthError::CertBadAgentId)
        })
        .collect()
}
