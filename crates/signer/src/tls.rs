//! The TCP listener's TLS: TLS 1.3 only, mutual authentication against the signer's own CA, and
//! one allowed client identity.
//!
//! A client is served only when its certificate chains to a CA in `tls.client_ca_file`, is
//! inside its validity period, is meant for client authentication, and carries the configured
//! `tls.allowed_client` as a subject alternative name (see [`verifier`]). Every check happens
//! during the handshake, before the connection can send a request: a refused client never
//! reaches the request handler and leaves no row in the request log, only an `info` log line.
//!
//! # Security
//!
//! - One crypto provider, aws-lc-rs (the one jsonwebtoken uses elsewhere in the workspace), and
//!   TLS 1.3 only: no legacy suites, no renegotiation, and the client certificate is sent
//!   encrypted.
//! - Session resumption is off (no session cache, no tickets), so every connection presents and
//!   verifies its certificate afresh; the client keeps its connections open instead.
//! - The private key file must be mode 0600 or stricter and is wiped from memory once parsed.
//! - There is no plaintext TCP: the TCP listener exists only with TLS.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

use crate::config::TlsConfig;

pub mod dangerous_dev_setup;
pub mod verifier;

/// PEM files larger than this are refused before parsing.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// Why the TLS listener's configuration could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// A file is unusable as it is; the reason says why (never its contents).
    #[error("{path}: {reason}")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A file is not the PEM it should be.
    #[error("{path} is not valid PEM")]
    Pem {
        /// The file.
        path: PathBuf,
        /// The parser's account.
        #[source]
        source: rustls_pki_types::pem::Error,
    },
    /// rustls refused the certificates or key (for example a key that does not match the
    /// certificate, or a CA certificate it cannot parse).
    #[error("the TLS configuration is not usable")]
    Rustls(#[source] rustls::Error),
    /// The client verifier could not be built from the CA file.
    #[error("cannot use the client CA certificates")]
    ClientCa(#[source] rustls::server::VerifierBuilderError),
}

/// The crypto provider of every TLS configuration in this crate.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Builds the listener's rustls configuration from the `[tls]` section, reading its files.
///
/// # Errors
/// A [`TlsError`] naming the file at fault.
pub fn server_config(config: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let chain = read_certificates(&config.cert_file)?;
    let key = read_private_key(&config.key_file)?;
    let roots = read_roots(&config.client_ca_file)?;

    let provider = provider();
    let webpki =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
            .build()
            .map_err(TlsError::ClientCa)?;
    let verifier = verifier::IdentityVerifier::new(webpki, config.allowed_client.clone());

    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(TlsError::Rustls)?
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(chain, key)
        .map_err(TlsError::Rustls)?;
    server.session_storage = Arc::new(NoServerSessionStorage {});
    server.send_tls13_tickets = 0;
    Ok(Arc::new(server))
}

/// Reads a PEM file of certificates, leaf first; at least one.
///
/// # Errors
/// [`TlsError`] when the file cannot be read, is not PEM, or holds no certificate.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read_limited(path)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| pem_error(path, source))?;
    match chain.is_empty() {
        true => Err(TlsError::Unusable {
            path: path.to_owned(),
            reason: "holds no CERTIFICATE block",
        }),
        false => Ok(chain),
    }
}

/// Reads the trust anchors of a PEM CA file.
///
/// # Errors
/// [`TlsError`] when the file is unusable or a certificate is not a usable trust anchor.
pub fn read_roots(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for certificate in read_certificates(path)? {
        roots.add(certificate).map_err(TlsError::Rustls)?;
    }
    Ok(roots)
}

/// Reads a PEM private key from a file only its owner may access.
///
/// # Errors
/// [`TlsError`] when the file is readable by group or others, unreadable, or holds no key.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let meta = std::fs::metadata(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(TlsError::Unusable {
            path: path.to_owned(),
            reason: "group or others may access this private key; restrict it with chmod 600",
        });
    }
    let bytes = Zeroizing::new(read_limited(path)?);
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|source| pem_error(path, source))
}

fn pem_error(path: &Path, source: rustls_pki_types::pem::Error) -> TlsError {
    match source {
        rustls_pki_types::pem::Error::NoItemsFound => TlsError::Unusable {
            path: path.to_owned(),
            reason: "holds no PEM block of the expected kind",
        },
        source => TlsError::Pem {
            path: path.to_owned(),
            source,
        },
    }
}

fn read_limited(path: &Path) -> Result<Vec<u8>, TlsError> {
    let read_error = |source| TlsError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read_error)?;
    if meta.len() > MAX_PEM_BYTES {
        return Err(TlsError::Unusable {
            path: path.to_owned(),
            reason: "larger than 1 MiB",
        });
    }
    std::fs::read(path).map_err(read_error)
}
