//! `clawfirst-signer dangerous-dev-tls-setup`: a throwaway CA and the two certificates the
//! signer's TLS link needs, for tests and local use.
//!
//! # Security
//!
//! Development only. The CA's private key is never written: it signs the two certificates and
//! is dropped, so nobody can issue a further certificate from it (run the command again into a
//! new directory instead). The files are written to a directory of the caller's choosing; the
//! two private keys get mode 0600 and are never printed. Production deployments issue these
//! certificates from their own CA, with their own lifetimes and revocation practice.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};

use crate::config::ClientIdentity;

/// The file names written into the directory.
pub const CA_FILE: &str = "signer-ca.pem";
/// The signer's certificate.
pub const SIGNER_CERT_FILE: &str = "signer.pem";
/// The signer's private key.
pub const SIGNER_KEY_FILE: &str = "signer.key";
/// The server's client certificate.
pub const CLIENT_CERT_FILE: &str = "server-client.pem";
/// The server's client private key.
pub const CLIENT_KEY_FILE: &str = "server-client.key";

/// What to put in the certificates.
#[derive(Debug, Clone)]
pub struct DevTlsOptions {
    /// Names (DNS names or IP addresses) the signer's certificate is valid for.
    pub signer_names: Vec<String>,
    /// The identity of the server's client certificate.
    pub client_identity: ClientIdentity,
    /// How long the certificates are valid, from now.
    pub validity_days: u16,
}

impl Default for DevTlsOptions {
    fn default() -> Self {
        DevTlsOptions {
            signer_names: vec!["localhost".to_owned(), "127.0.0.1".to_owned()],
            client_identity: ClientIdentity::Uri("urn:clawfirst:server".to_owned()),
            validity_days: 365,
        }
    }
}

/// Why the files could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevTlsError {
    /// A file of the set already exists; nothing is overwritten.
    #[error("{0} already exists; choose an empty directory")]
    Exists(PathBuf),
    /// A name cannot go into a certificate.
    #[error("cannot put {0:?} into a certificate")]
    Name(String),
    /// Generating a key or certificate failed.
    #[error("cannot generate the certificates")]
    Generate(#[source] rcgen::Error),
    /// Writing a file failed.
    #[error("cannot write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
}

/// Writes a fresh CA certificate, the signer's certificate and key, and the server's client
/// certificate and key into `dir` (created with mode 0700 if missing). Returns the paths in
/// the order of the constants above.
///
/// # Errors
/// [`DevTlsError`]; when a file of the set exists, nothing is written.
pub fn generate(dir: &Path, options: &DevTlsOptions) -> Result<[PathBuf; 5], DevTlsError> {
    let paths = [
        CA_FILE,
        SIGNER_CERT_FILE,
        SIGNER_KEY_FILE,
        CLIENT_CERT_FILE,
        CLIENT_KEY_FILE,
    ]
    .map(|name| dir.join(name));
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        return Err(DevTlsError::Exists(existing.clone()));
    }

    // 1. The CA, valid a little longer than what it signs.
    let now = time::OffsetDateTime::now_utc();
    let not_after = now + time::Duration::days(i64::from(options.validity_days));
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "clawfirst dangerous dev signer CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_before = now - time::Duration::minutes(5);
    ca.not_after = not_after + time::Duration::days(1);
    let ca_key = KeyPair::generate().map_err(DevTlsError::Generate)?;
    let ca_cert = ca.self_signed(&ca_key).map_err(DevTlsError::Generate)?;
    let issuer = Issuer::new(ca, ca_key);

    // 2. The signer's server certificate.
    let mut signer = leaf("clawfirst signer", now, not_after);
    for name in &options.signer_names {
        signer.subject_alt_names.push(san(name)?);
    }
    signer.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let signer_key = KeyPair::generate().map_err(DevTlsError::Generate)?;
    let signer_cert = signer
        .signed_by(&signer_key, &issuer)
        .map_err(DevTlsError::Generate)?;

    // 3. The server's client certificate.
    let mut client = leaf("clawfirst server", now, not_after);
    client
        .subject_alt_names
        .push(match &options.client_identity {
            ClientIdentity::Uri(uri) => SanType::URI(
                uri.as_str()
                    .try_into()
                    .map_err(|_| DevTlsError::Name(uri.clone()))?,
            ),
            ClientIdentity::Dns(name) => san(name)?,
        });
    client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_key = KeyPair::generate().map_err(DevTlsError::Generate)?;
    let client_cert = client
        .signed_by(&client_key, &issuer)
        .map_err(DevTlsError::Generate)?;

    // 4. The files: keys owner-only, certificates readable.
    create_dir(dir)?;
    let contents = [
        (ca_cert.pem(), 0o644),
        (signer_cert.pem(), 0o644),
        (signer_key.serialize_pem(), 0o600),
        (client_cert.pem(), 0o644),
        (client_key.serialize_pem(), 0o600),
    ];
    for (path, (text, mode)) in paths.iter().zip(contents) {
        let text = zeroize::Zeroizing::new(text);
        write_new(path, text.as_bytes(), mode)?;
    }
    Ok(paths)
}

fn leaf(
    common_name: &str,
    now: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = not_after;
    params.use_authority_key_identifier_extension = true;
    params
}

fn san(name: &str) -> Result<SanType, DevTlsError> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    name.try_into()
        .map(SanType::DnsName)
        .map_err(|_| DevTlsError::Name(name.to_owned()))
}

fn create_dir(dir: &Path) -> Result<(), DevTlsError> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| DevTlsError::Write {
            path: dir.to_owned(),
            source,
        })
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), DevTlsError> {
    let write_error = |source| DevTlsError::Write {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(write_error)?;
    file.write_all(bytes).map_err(write_error)?;
    file.sync_all().map_err(write_error)
}
