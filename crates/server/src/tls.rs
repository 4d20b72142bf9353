//! HTTPS for the MCP endpoint and the admin API, with optional client certificates (mutual
//! TLS) from the operator's CA.
//!
//! [`server_config`] reads the `[tls]` files into a rustls configuration: the server's chain
//! and key, and, with `client_ca_file`, a verifier that requires (or, with `client_auth =
//! "optional"`, accepts) client certificates chaining to that CA. [`TlsListener`] accepts TCP
//! connections and runs their handshakes concurrently, each under the handshake timeout, so a
//! slow or silent client never holds up the others; axum serves each finished connection, and
//! [`TlsPeer`] carries the verified leaf certificate to every request on it (as axum's
//! `ConnectInfo`), where [`crate::agent_auth`] reads the agent from it.
//!
//! # Security
//!
//! TLS 1.3 only (the client certificate is encrypted in the handshake, so observers do not
//! learn which agent connects), rustls with aws-lc-rs. No system roots: only `client_ca_file`
//! is trusted for clients; rustls checks chain, validity dates and the client-auth key usage
//! before a certificate reaches this server. The key file must be mode 0600 or stricter.
//! Refused handshakes are logged at info with `auth.method = "mtls"` and the reason; those
//! refused for their certificate are also audited as `auth.failed`, at most one record per
//! [`AUDIT_INTERVAL`], which counts the refusals it stands for, so a flood of bad handshakes
//! cannot flood the audit trail.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use clawfirst_auth::cert::CertIdentity;
use clawfirst_store::{AuditEvent, Store};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tracing::{debug, info, warn};

use crate::agent_auth::ClientCertificate;
use crate::config::{ClientAuth, TlsConfig};

pub mod operator;

/// The most handshakes in progress at once; further connections wait in the kernel's backlog.
pub const MAX_PENDING_HANDSHAKES: usize = 256;
/// The shortest time between two audit records of refused handshakes.
pub const AUDIT_INTERVAL: Duration = Duration::from_secs(10);

/// Why the `[tls]` files cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerTlsError {
    /// A certificate file could not be read.
    #[error("{key}: cannot read {path}")]
    Read {
        /// The configuration key naming the file.
        key: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM certificate or key.
    #[error("{key}: {path} holds no usable PEM {kind}")]
    Pem {
        /// The configuration key naming the file.
        key: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// `certificate` or `private key`.
        kind: &'static str,
    },
    /// The key file is unreadable or readable by others.
    #[error("tls.key_file is unusable")]
    Key(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// rustls refused the CA, the chain or the key (a key that is not the certificate's, say).
    #[error("{key}: rustls refused it")]
    Rustls {
        /// The configuration key at fault.
        key: &'static str,
        /// rustls' reason.
        #[source]
        source: rustls::Error,
    },
    /// The client CA verifier could not be built.
    #[error("tls.client_ca_file: cannot verify client certificates with it")]
    Verifier(#[source] rustls::server::VerifierBuilderError),
}

/// Reads the `[tls]` files into a rustls server configuration.
///
/// # Errors
/// A [`ServerTlsError`] naming the key whose file is at fault.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, ServerTlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let chain = read_certificates("tls.cert_file", &tls.cert_file)?;
    let key_pem = zeroize::Zeroizing::new(
        crate::datadir::read_private(&tls.key_file).map_err(|e| ServerTlsError::Key(e.into()))?,
    );
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|_| ServerTlsError::Pem {
            key: "tls.key_file",
            path: tls.key_file.clone(),
            kind: "private key",
        })?;

    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|source| ServerTlsError::Rustls { key: "tls", source })?;
    let builder = match &tls.clients {
        None => builder.with_no_client_auth(),
        Some(clients) => {
            let mut roots = rustls::RootCertStore::empty();
            for ca in read_certificates("tls.client_ca_file", &clients.ca_file)? {
                roots.add(ca).map_err(|source| ServerTlsError::Rustls {
                    key: "tls.client_ca_file",
                    source,
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = match clients.auth {
                ClientAuth::Required => verifier,
                ClientAuth::Optional => verifier.allow_unauthenticated(),
            };
            builder.with_client_cert_verifier(verifier.build().map_err(ServerTlsError::Verifier)?)
        }
    };
    let mut config =
        builder
            .with_single_cert(chain, key)
            .map_err(|source| ServerTlsError::Rustls {
                key: "tls.key_file",
                source,
            })?;
    // The server speaks HTTP/1.1 only (axum is built without HTTP/2): say so, so that a client
    // that prefers h2 does not try it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ServerTlsError> {
    let bytes = std::fs::read(path).map_err(|source| ServerTlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })?;
    let certificates: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|_| ServerTlsError::Pem {
            key,
            path: path.to_owned(),
            kind: "certificate",
        })?;
    if certificates.is_empty() {
        return Err(ServerTlsError::Pem {
            key,
            path: path.to_owned(),
            kind: "certificate",
        });
    }
    Ok(certificates)
}

/// Who is at the other end of a TLS connection: its address and its verified client
/// certificate, if it presented one.
#[derive(Clone, Debug)]
pub struct TlsPeer {
    /// The remote address.
    pub remote: SocketAddr,
    /// The verified leaf certificate.
    pub certificate: Option<ClientCertificate>,
}

impl Connected<IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Why a handshake did not complete.
struct HandshakeFailure {
    remote: SocketAddr,
    reason: &'static str,
    /// Refused for the client certificate (or its absence), rather than for the connection.
    certificate: bool,
}

/// A TCP listener that hands axum only connections whose TLS handshake succeeded.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    identity: Arc<CertIdentity>,
    timeout: Duration,
    handshakes: JoinSet<Result<(TlsStream<TcpStream>, TlsPeer), HandshakeFailure>>,
    audit: AuditThrottle,
}

impl std::fmt::Debug for TlsListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsListener({:?})", self.tcp.local_addr().ok())
    }
}

impl TlsListener {
    /// Serves TLS on `tcp` with this configuration; refusals are audited in `store`.
    pub fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
        tls: &TlsConfig,
        store: Store,
    ) -> Self {
        let identity = tls
            .clients
            .as_ref()
            .map(|c| c.identity.clone())
            .unwrap_or_default();
        Self {
            tcp,
            acceptor: TlsAcceptor::from(config),
            identity: Arc::new(identity),
            timeout: tls.handshake_timeout,
            handshakes: JoinSet::new(),
            audit: AuditThrottle::new(store),
        }
    }

    fn start_handshake(&mut self, tcp: TcpStream, remote: SocketAddr) {
        let acceptor = self.acceptor.clone();
        let identity = self.identity.clone();
        let timeout = self.timeout;
        self.handshakes.spawn(async move {
            let _ = tcp.set_nodelay(true);
            let stream = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return Err(classify(remote, &error)),
                Err(_) => {
                    return Err(HandshakeFailure {
                        remote,
                        reason: "handshake_timeout",
                        certificate: false,
                    });
                }
            };
            let certificate = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|leaf| ClientCertificate {
                    der: Arc::from(leaf.as_ref()),
                    identity,
                });
            Ok((
                stream,
                TlsPeer {
                    remote,
                    certificate,
                },
            ))
        });
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.handshakes.len() < MAX_PENDING_HANDSHAKES;
            tokio::select! {
                accepted = self.tcp.accept(), if room => match accepted {
                    Ok((tcp, remote)) => self.start_handshake(tcp, remote),
                    Err(error) => {
                        // Out of file descriptors and the like: back off rather than spin.
                        warn!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(done) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    match done {
                        Ok(Ok(connection)) => return connection,
                        Ok(Err(failure)) => self.audit.refused(&failure),
                        Err(error) => warn!(%error, "a TLS handshake task failed"),
                    }
                }
                // Unreachable (with no room, handshakes are pending), but never a panic.
                else => tokio::task::yield_now().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(TlsPeer {
            remote: self.tcp.local_addr()?,
            certificate: None,
        })
    }
}

/// The reason a handshake error gives, and whether it is about the client certificate.
fn classify(remote: SocketAddr, error: &std::io::Error) -> HandshakeFailure {
    use rustls::{CertificateError, Error};
    let tls = error.get_ref().and_then(|e| e.downcast_ref::<Error>());
    let (reason, certificate) = match tls {
        Some(Error::NoCertificatesPresented) => ("no_client_certificate", true),
        Some(Error::InvalidCertificate(e)) => (
            match e {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "certificate_expired"
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "certificate_not_yet_valid"
                }
                CertificateError::UnknownIssuer => "certificate_unknown_issuer",
                CertificateError::BadSignature => "certificate_bad_signature",
                CertificateError::Revoked => "certificate_revoked",
                _ => "certificate_invalid",
            },
            true,
        ),
        Some(_) => ("tls_protocol_error", false),
        None => ("connection_failed", false),
    };
    HandshakeFailure {
        remote,
        reason,
        certificate,
    }
}

/// Logs every refused handshake and audits certificate refusals at a bounded rate.
struct AuditThrottle {
    store: Store,
    last: Option<Instant>,
    unrecorded: u64,
}

impl AuditThrottle {
    fn new(store: Store) -> Self {
        Self {
            store,
            last: None,
            unrecorded: 0,
        }
    }

    fn refused(&mut self, failure: &HandshakeFailure) {
        if !failure.certificate {
            debug!(
                auth.method = "mtls",
                auth.reason = failure.reason,
                peer.addr = %failure.remote,
                "TLS handshake failed"
            );
            return;
        }
        info!(
            auth.method = "mtls",
            auth.reason = failure.reason,
            peer.addr = %failure.remote,
            "client certificate refused in the TLS handshake"
        );
        self.unrecorded += 1;
        let now = Instant::now();
        if self.last.is_some_and(|last| now - last < AUDIT_INTERVAL) {
            return;
        }
        self.last = Some(now);
        let audit = AuditEvent::system("auth.failed").details(json!({
            "method": "mtls",
            "reason": failure.reason,
            "peer": failure.remote.to_string(),
            "refusals": self.unrecorded,
        }));
        self.unrecorded = 0;
        let store = self.store.clone();
        // Accepting goes on while the record is written; the refusal stands either way.
        tokio::spawn(async move {
            let _ = store.append_audit(audit).await;
        });
    }
}

/// Serves `app` on `tcp` until `shutdown` resolves: over TLS with `tls` (its section and the
/// configuration [`server_config`] made of it), plain HTTP without.
///
/// # Errors
/// When the server fails.
pub async fn serve(
    tcp: TcpListener,
    app: axum::Router,
    tls: Option<(&TlsConfig, Arc<rustls::ServerConfig>)>,
    store: Store,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => axum::serve(tcp, app).with_graceful_shutdown(shutdown).await,
        Some((tls, config)) => {
            let listener = TlsListener::new(tcp, config, tls, store);
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<TlsPeer>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
    }
}

#[cfg(test)]
mod auth_tests;
#[cfg(test)]
mod tests;
