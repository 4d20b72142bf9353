//! The operator's CA in the data directory, for a trial mutual-TLS setup: `clawfirst ca init`,
//! `clawfirst ca server-cert` and `clawfirst agents add --mtls`.
//!
//! Files, relative to the data directory (keys mode 0600; only an agent's pair is ever
//! replaced, by `clawfirst agents rotate ID --mtls`):
//!
//! | file | what |
//! |---|---|
//! | `ca/operator-ca.pem`, `ca/operator-ca.key` | the CA: `tls.client_ca_file` is the first |
//! | `tls/server.pem`, `tls/server.key` | a server certificate: `tls.cert_file`, `tls.key_file` |
//! | `agents/ID.pem`, `agents/ID.key` | agent ID's client certificate and key |
//!
//! Production deployments issue these from the operator's own PKI; this CA lives on the
//! operator's machine beside the server's data, so whoever reads `ca/operator-ca.key` can
//! mint a certificate for any agent.
//!
//! The admin commands (`clawfirst agents ...`) reach an `https` admin URL trusting only
//! `ca/operator-ca.pem`, and, when the CA key is there, present a one-day client certificate
//! made for the call (held in memory only), so they work when `tls.client_auth = "required"`.
//! Its identity is [`OPERATOR_CLIENT_NAME`]: it is only used on the admin API, where the admin
//! token decides.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clawfirst_auth::ca::{IssuedCertificate, OperatorCa};
use clawfirst_auth::cert::certificate_sha256;
use clawfirst_core::AgentId;
use clawfirst_core::secret::SecretString;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::datadir::{read_private, write_secret};

/// The CA certificate, relative to the data directory.
pub const CA_CERT_FILE: &str = "ca/operator-ca.pem";
/// The CA private key, relative to the data directory.
pub const CA_KEY_FILE: &str = "ca/operator-ca.key";
/// The name in the admin commands' short-lived client certificates.
pub const OPERATOR_CLIENT_NAME: &str = "clawfirst-operator-cli";

/// Where an issued certificate and its key were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenCertificate {
    /// The certificate, PEM.
    pub cert_file: PathBuf,
    /// Its private key, PEM, mode 0600.
    pub key_file: PathBuf,
    /// The SHA-256 of the certificate's DER, hex: what `--bind-cert-sha256` takes.
    pub sha256: String,
}

/// The data directory's CA, if `ca init` made one.
///
/// # Errors
/// When the files exist but cannot be read or do not form a CA.
pub fn load_ca(data_dir: &Path) -> Result<Option<OperatorCa>> {
    let cert_file = data_dir.join(CA_CERT_FILE);
    if !cert_file.exists() {
        return Ok(None);
    }
    let certificate = std::fs::read_to_string(&cert_file)
        .with_context(|| format!("cannot read {}", cert_file.display()))?;
    let key = SecretString::new(read_private(&data_dir.join(CA_KEY_FILE))?);
    let ca = OperatorCa::from_pem(&certificate, &key)
        .with_context(|| format!("{} and its key do not form a CA", cert_file.display()))?;
    Ok(Some(ca))
}

/// The data directory's CA, created first if there is none; true when it was created now.
///
/// # Errors
/// When the CA cannot be read or written.
pub fn ensure_ca(data_dir: &Path) -> Result<(OperatorCa, bool)> {
    if let Some(ca) = load_ca(data_dir)? {
        return Ok((ca, false));
    }
    let ca = OperatorCa::generate("ClawFirst operator CA").context("cannot generate the CA")?;
    let (certificate, key) = ca.to_pem();
    create_private_dir(&data_dir.join("ca"))?;
    write_secret(&data_dir.join(CA_KEY_FILE), key.expose().as_bytes())?;
    write_secret(&data_dir.join(CA_CERT_FILE), certificate.as_bytes())?;
    Ok((ca, true))
}

/// Issues agent `agent_id`'s client certificate into `agents/ID.pem` and `agents/ID.key`.
/// With `replace`, a pair already there is replaced (each file by an atomic rename), as when
/// the agent's certificate is rotated.
///
/// # Errors
/// When the files exist already (without `replace`), or the CA cannot be read or used.
pub fn issue_agent_certificate(
    data_dir: &Path,
    agent_id: &AgentId,
    days: u32,
    replace: bool,
) -> Result<WrittenCertificate> {
    let (ca, _) = ensure_ca(data_dir)?;
    let issued = ca
        .issue_client_certificate(agent_id, days)
        .context("cannot issue the client certificate")?;
    let dir = data_dir.join("agents");
    if !replace {
        return write_pair(&dir, agent_id.as_str(), &issued);
    }
    let staged = write_pair(&dir, &format!("{agent_id}.new"), &issued)?;
    let cert_file = dir.join(format!("{agent_id}.pem"));
    let key_file = dir.join(format!("{agent_id}.key"));
    for (from, to) in [
        (&staged.key_file, &key_file),
        (&staged.cert_file, &cert_file),
    ] {
        std::fs::rename(from, to)
            .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
    }
    Ok(WrittenCertificate {
        cert_file,
        key_file,
        sha256: staged.sha256,
    })
}

/// Issues a server certificate into `tls/server.pem` and `tls/server.key`.
///
/// # Errors
/// When the files exist already, there is no name, or the CA cannot be read or used.
pub fn issue_server_certificate(
    data_dir: &Path,
    dns_names: &[String],
    ip_addresses: &[IpAddr],
    days: u32,
) -> Result<WrittenCertificate> {
    let (ca, _) = ensure_ca(data_dir)?;
    let issued = ca
        .issue_server_certificate(dns_names, ip_addresses, days)
        .context("cannot issue the server certificate")?;
    write_pair(&data_dir.join("tls"), "server", &issued)
}

fn write_pair(dir: &Path, name: &str, issued: &IssuedCertificate) -> Result<WrittenCertificate> {
    create_private_dir(dir)?;
    let cert_file = dir.join(format!("{name}.pem"));
    let key_file = dir.join(format!("{name}.key"));
    if cert_file.exists() || key_file.exists() {
        bail!(
            "{} or its key exists already; move them away first",
            cert_file.display()
        );
    }
    write_secret(&key_file, issued.private_key_pem.expose().as_bytes())?;
    write_secret(&cert_file, issued.certificate_pem.as_bytes())?;
    Ok(WrittenCertificate {
        cert_file,
        key_file,
        sha256: hex::encode(certificate_sha256(&issued.certificate_der)),
    })
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// The TLS settings of the admin commands for an `https` admin URL: trust the data directory's
/// CA and present a one-day operator certificate from it.
///
/// # Errors
/// When there is no CA in the data directory, or it cannot be used.
pub fn admin_client_tls(data_dir: &Path) -> Result<rustls::ClientConfig> {
    let Some(ca) = load_ca(data_dir)? else {
        bail!(
            "the admin API is served over https, and {} is missing: the admin commands trust \
             only that CA",
            data_dir.join(CA_CERT_FILE).display()
        );
    };
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.certificate_der().to_vec()))
        .context("the operator CA certificate is not usable")?;
    let name = AgentId::new(OPERATOR_CLIENT_NAME).map_err(|e| anyhow::anyhow!("{e}"))?;
    let issued = ca
        .issue_client_certificate(&name, 1)
        .context("cannot issue the operator's client certificate")?;
    let key = PrivateKeyDer::from_pem_slice(issued.private_key_pem.expose().as_bytes())
        .context("the operator's client key is not usable")?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 is not available")?
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![CertificateDer::from(issued.certificate_der)], key)
        .context("the operator's client certificate is not usable")
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn mode(path: &Path) -> std::io::Result<u32> {
        Ok(std::fs::metadata(path)?.permissions().mode() & 0o777)
    }

    #[test]
    fn the_ca_is_created_once_with_an_owner_only_key() -> TestResult {
        let dir = tempfile::tempdir()?;
        let (first, created) = ensure_ca(dir.path())?;
        assert!(created);
        assert_eq!(mode(&dir.path().join(CA_KEY_FILE))?, 0o600);
        let (again, created) = ensure_ca(dir.path())?;
        assert!(!created);
        assert_eq!(first.certificate_der(), again.certificate_der());
        Ok(())
    }

    #[test]
    fn an_agent_certificate_is_written_once_with_its_fingerprint() -> TestResult {
        crate::install_crypto_provider();
        let dir = tempfile::tempdir()?;
        assert!(admin_client_tls(dir.path()).is_err());
        let agent = AgentId::new("agent-7")?;
        let written = issue_agent_certificate(dir.path(), &agent, 30, false)?;
        assert_eq!(written.cert_file, dir.path().join("agents/agent-7.pem"));
        assert_eq!(mode(&written.key_file)?, 0o600);
        let der = CertificateDer::from_pem_file(&written.cert_file)?;
        assert_eq!(written.sha256, hex::encode(certificate_sha256(&der)));
        assert_eq!(
            clawfirst_auth::cert::agent_from_certificate(&der, &Default::default())?,
            agent
        );
        assert!(issue_agent_certificate(dir.path(), &agent, 30, false).is_err());
        assert!(admin_client_tls(dir.path()).is_ok());

        // Rotation replaces the pair in place; nothing staged is left behind.
        let replaced = issue_agent_certificate(dir.path(), &agent, 30, true)?;
        assert_eq!(replaced.cert_file, written.cert_file);
        assert_ne!(replaced.sha256, written.sha256);
        let der = CertificateDer::from_pem_file(&replaced.cert_file)?;
        assert_eq!(replaced.sha256, hex::encode(certificate_sha256(&der)));
        assert_eq!(mode(&replaced.key_file)?, 0o600);
        let mut names: Vec<_> = std::fs::read_dir(dir.path().join("agents"))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        assert_eq!(names, ["agent-7.key", "agent-7.pem"]);
        Ok(())
    }
}
