//! Reaching a signer on another host: TCP with mutual TLS 1.3.
//!
//! The server checks the signer's certificate against `signer.tls_ca_file` (the CA that issued
//! it, normally the signer's own) and `signer.tls_server_name`, and presents its own client
//! certificate (`signer.tls_cert_file`, `signer.tls_key_file`), which the signer checks against
//! its CA and its one allowed client identity. The protocol inside the stream is the same
//! line-delimited JSON as over the Unix socket.
//!
//! # Security
//!
//! TLS 1.3 only, rustls with aws-lc-rs (the provider the rest of the workspace uses). No system
//! roots are trusted: only the configured CA. The client key file must be mode 0600 or stricter.
//! A signer that refuses this server's certificate ends the connection during or right after
//! the handshake; callers see [`super::SignerClientError::Unreachable`], and the log line of the
//! signer says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The `[signer]` keys that point the server at a signer over TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignerTls {
    /// `host:port` of the signer's TLS listener.
    pub address: String,
    /// The CA certificates (PEM) the signer's certificate must chain to.
    pub ca_file: PathBuf,
    /// The name (DNS name or IP address) the signer's certificate must carry.
    pub server_name: String,
    /// The server's client certificate chain (PEM).
    pub cert_file: PathBuf,
    /// The server's client private key (PEM; mode 0600 or stricter).
    pub key_file: PathBuf,
}

impl SignerTls {
    /// Validates the `tls_*` keys: all of them or none. `resolve` makes a path absolute.
    ///
    /// # Errors
    /// The key at fault and what is wrong with it.
    pub fn from_keys(
        address: Option<String>,
        ca_file: Option<PathBuf>,
        server_name: Option<String>,
        cert_file: Option<PathBuf>,
        key_file: Option<PathBuf>,
        resolve: impl Fn(PathBuf) -> PathBuf,
    ) -> Result<Option<SignerTls>, (&'static str, String)> {
        let missing = |key: &'static str| (key, "required when signer.tls_address is set".into());
        let Some(address) = address else {
            let others = [
                ("signer.tls_ca_file", ca_file.is_some()),
                ("signer.tls_server_name", server_name.is_some()),
                ("signer.tls_cert_file", cert_file.is_some()),
                ("signer.tls_key_file", key_file.is_some()),
            ];
            return match others.into_iter().find(|(_, set)| *set) {
                Some((key, _)) => Err((key, "needs signer.tls_address".into())),
                None => Ok(None),
            };
        };
        if address
            .rsplit_once(':')
            .is_none_or(|(_, port)| port.parse::<u16>().is_err())
        {
            return Err(("signer.tls_address", "must be host:port".into()));
        }
        let server_name = server_name.ok_or_else(|| missing("signer.tls_server_name"))?;
        if ServerName::try_from(server_name.as_str()).is_err() {
            return Err((
                "signer.tls_server_name",
                "must be a DNS name or an IP address".into(),
            ));
        }
        Ok(Some(SignerTls {
            address,
            ca_file: resolve(ca_file.ok_or_else(|| missing("signer.tls_ca_file"))?),
            server_name,
            cert_file: resolve(cert_file.ok_or_else(|| missing("signer.tls_cert_file"))?),
            key_file: resolve(key_file.ok_or_else(|| missing("signer.tls_key_file"))?),
        }))
    }
}

/// Why the TLS link to the signer could not be set up from its files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerTlsError {
    /// A certificate file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM certificate or key.
    #[error("{path} holds no usable PEM {kind}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// `certificate` or `private key`.
        kind: &'static str,
    },
    /// The client key file is unreadable or readable by others.
    #[error("the signer TLS client key is unusable")]
    Key(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// rustls refused a CA, the certificate or the key (a key that does not match, say).
    #[error("the signer TLS configuration is not usable")]
    Rustls(#[source] rustls::Error),
    /// `tls_server_name` is not a DNS name or IP address.
    #[error("signer.tls_server_name is not a DNS name or IP address")]
    ServerName,
}

/// Opens TLS connections to the signer.
pub(super) struct Connector {
    connector: TlsConnector,
    server_name: ServerName<'static>,
    address: String,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Connector({})", self.address)
    }
}

impl Connector {
    /// Reads the CA, the client certificate and its key.
    pub(super) fn new(tls: &SignerTls) -> Result<Connector, SignerTlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for ca in read_certificates(&tls.ca_file)? {
            roots.add(ca).map_err(SignerTlsError::Rustls)?;
        }
        let chain = read_certificates(&tls.cert_file)?;
        let key_pem = zeroize::Zeroizing::new(
            crate::datadir::read_private(&tls.key_file)
                .map_err(|e| SignerTlsError::Key(e.into()))?,
        );
        let key =
            PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| SignerTlsError::Pem {
                path: tls.key_file.clone(),
                kind: "private key",
            })?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(SignerTlsError::Rustls)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .map_err(SignerTlsError::Rustls)?;
        let server_name = ServerName::try_from(tls.server_name.clone())
            .map_err(|_| SignerTlsError::ServerName)?;
        Ok(Connector {
            connector: TlsConnector::from(Arc::new(config)),
            server_name,
            address: tls.address.clone(),
        })
    }

    /// `tls://host:port`, for messages.
    pub(super) fn endpoint(&self) -> String {
        format!("tls://{}", self.address)
    }

    /// Connects and completes the handshake.
    pub(super) async fn connect(&self) -> std::io::Result<TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(self.address.as_str()).await?;
        tcp.set_nodelay(true)?;
        self.connector.connect(self.server_name.clone(), tcp).await
    }
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, SignerTlsError> {
    let bytes = std::fs::read(path).map_err(|source| SignerTlsError::Read {
        path: path.to_owned(),
        source,
    })?;
    let certificates: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| SignerTlsError::Pem {
            path: path.to_owned(),
            kind: "certificate",
        })?;
    match certificates.is_empty() {
        true => Err(SignerTlsError::Pem {
            path: path.to_owned(),
            kind: "certificate",
        }),
        false => Ok(certificates),
    }
}
