//! The listeners (a Unix socket, a TCP port with mutual TLS, or both): accepting, connection
//! limits and graceful shutdown. Framing lives in `connection`.
//!
//! Each connection carries line-framed requests answered in order. A line longer than
//! [`MAX_FRAME_BYTES`](clawfirst_core::signer_proto::MAX_FRAME_BYTES) is answered with
//! `bad_request` and the connection is closed, because the rest of that line cannot be told
//! apart from a next request. On shutdown the listener stops
//! accepting, connections waiting for a request are closed, requests being handled finish and
//! are answered, and the socket file is removed.
//!
//! # Security
//!
//! The socket is created with mode 0600 before the first connection is accepted, and every
//! connection's peer credentials are checked: only processes running as the signer's own user
//! (or root, which the mode cannot stop either) are served. Operators who want another user to
//! connect put both in a group and proxy, rather than widening the socket.
//!
//! A TCP connection is served only after a TLS 1.3 handshake in which the client presented a
//! certificate from the signer's own CA carrying the allowed identity ([`crate::tls`]); the
//! handshake runs in the connection's task, under the same connection limit, with a timeout.
//! There is no plaintext TCP listener.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::config::TlsConfig;
use crate::service::Service;
use crate::tls::TlsError;

mod connection;

/// Connections served at once; more are closed on accept.
const MAX_CONNECTIONS: usize = 1024;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Another process answers on the socket path.
    #[error("another process is already listening on {0}")]
    AlreadyRunning(PathBuf),
    /// Something other than a socket is at the path; it is not removed.
    #[error("{0} exists and is not a socket; refusing to replace it")]
    NotASocket(PathBuf),
    /// Binding or restricting the socket failed.
    #[error("cannot prepare socket {path}")]
    Socket {
        /// The socket path.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// Neither a socket nor a TLS listener was given.
    #[error("nothing to listen on: configure a socket, a [tls] section, or both")]
    NoEndpoint,
    /// The TLS listener's certificates or key are unusable.
    #[error("cannot configure the TLS listener")]
    Tls(#[source] TlsError),
    /// The TCP address could not be bound.
    #[error("cannot listen on {address}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
    /// The socket file could not be removed at shutdown.
    #[error("cannot remove socket {path}")]
    Cleanup {
        /// The socket path.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: io::Error,
    },
}

/// Where the signer listens: the Unix socket, the TLS listener, or both.
#[derive(Debug, Clone, Copy, Default)]
pub struct Endpoints<'a> {
    /// The Unix socket path.
    pub socket: Option<&'a Path>,
    /// The TCP listener with mutual TLS.
    pub tls: Option<&'a TlsConfig>,
}

/// Binds the socket, serves until `shutdown` completes, then drains connections and removes
/// the socket.
///
/// # Errors
/// [`ServeError`] when the socket cannot be prepared.
pub async fn serve(
    service: Arc<Service>,
    socket: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let endpoints = Endpoints {
        socket: Some(socket),
        tls: None,
    };
    serve_endpoints(service, endpoints, shutdown).await
}

/// Listens on every configured endpoint, serves until `shutdown` completes, then drains
/// connections and removes the socket file.
///
/// The TLS listener is prepared first (certificates read, port bound), so a TLS problem stops
/// the start before the socket file exists.
///
/// # Errors
/// [`ServeError`] when no endpoint is given or one cannot be prepared.
pub async fn serve_endpoints(
    service: Arc<Service>,
    endpoints: Endpoints<'_>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    if endpoints.socket.is_none() && endpoints.tls.is_none() {
        return Err(ServeError::NoEndpoint);
    }
    let tcp = match endpoints.tls {
        Some(tls) => Some(bind_tls(tls).await?),
        None => None,
    };
    let unix = match endpoints.socket {
        Some(socket) => Some(bind_socket(socket).await?),
        None => None,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let mut next_id: u64 = 1;
    tokio::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept_unix(unix.as_ref()) => accepted.map(Accepted::Unix),
            accepted = accept_tcp(tcp.as_ref()) => accepted.map(Accepted::Tcp),
        };
        // Reap finished connection tasks so the set does not grow with the connection count.
        while connections.try_join_next().is_some() {}

        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let conn_id = next_id;
        next_id = next_id.wrapping_add(1);
        if let Accepted::Unix(stream) = &accepted
            && let Some(unix) = &unix
            && !unix.admits(stream, conn_id)
        {
            continue;
        }
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(
                conn.id = conn_id,
                "connection refused: too many connections"
            );
            continue;
        };
        let service = Arc::clone(&service);
        let stop = stop_rx.clone();
        match (accepted, &tcp) {
            (Accepted::Unix(stream), _) => {
                let span = tracing::info_span!("conn", conn.id = conn_id);
                let task = connection::serve(stream, service, stop);
                connections.spawn(
                    async move {
                        task.await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            (Accepted::Tcp((stream, peer)), Some(tcp)) => {
                let span = tracing::info_span!("conn", conn.id = conn_id, peer.addr = %peer);
                let task = connection::tls(stream, tcp.acceptor.clone(), service, stop);
                connections.spawn(
                    async move {
                        task.await;
                        drop(permit);
                    }
                    .instrument(span),
                );
            }
            (Accepted::Tcp(_), None) => {}
        }
    }

    tracing::info!(in_flight = connections.len(), "signer stopping");
    drop(tcp);
    let socket = unix.map(|unix| unix.path);
    // Receivers stay alive in the tasks, so this cannot fail in a way that matters.
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    if let Some(socket) = socket {
        std::fs::remove_file(&socket).map_err(|source| ServeError::Cleanup {
            path: socket,
            source,
        })?;
    }
    tracing::info!("signer stopped");
    Ok(())
}

enum Accepted {
    Unix(UnixStream),
    Tcp((TcpStream, SocketAddr)),
}

/// The Unix socket listener and the owner it serves.
struct UnixEndpoint {
    listener: UnixListener,
    path: PathBuf,
    own_uid: u32,
}

impl UnixEndpoint {
    /// Whether the peer runs as the signer's user or root; logs a refusal.
    fn admits(&self, stream: &UnixStream, conn_id: u64) -> bool {
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == self.own_uid || cred.uid() == 0 => true,
            Ok(cred) => {
                tracing::info!(
                    conn.id = conn_id,
                    peer.uid = cred.uid(),
                    "connection refused: other user"
                );
                false
            }
            Err(e) => {
                tracing::info!(conn.id = conn_id, error = %e, "connection refused: no credentials");
                false
            }
        }
    }
}

/// The TCP listener and its TLS configuration.
struct TlsEndpoint {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

async fn accept_unix(unix: Option<&UnixEndpoint>) -> io::Result<UnixStream> {
    match unix {
        Some(unix) => unix.listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

async fn accept_tcp(tcp: Option<&TlsEndpoint>) -> io::Result<(TcpStream, SocketAddr)> {
    match tcp {
        Some(tcp) => {
            let (stream, peer) = tcp.listener.accept().await?;
            // Requests and answers are single small writes: do not hold them back.
            stream.set_nodelay(true)?;
            Ok((stream, peer))
        }
        None => std::future::pending().await,
    }
}

async fn bind_tls(config: &TlsConfig) -> Result<TlsEndpoint, ServeError> {
    let server_config = crate::tls::server_config(config).map_err(ServeError::Tls)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Listen {
            address: config.listen,
            source,
        })?;
    let address = listener.local_addr().unwrap_or(config.listen);
    tracing::info!(
        tls.listen = %address,
        tls.allowed_client = %config.allowed_client,
        "signer listening with mutual TLS"
    );
    Ok(TlsEndpoint {
        listener,
        acceptor: TlsAcceptor::from(server_config),
    })
}

async fn bind_socket(socket: &Path) -> Result<UnixEndpoint, ServeError> {
    let listener = bind(socket).await?;
    let own_uid = std::fs::metadata(socket)
        .map_err(|source| ServeError::Socket {
            path: socket.to_owned(),
            source,
        })?
        .uid();
    tracing::info!(socket = %socket.display(), "signer listening");
    Ok(UnixEndpoint {
        listener,
        path: socket.to_owned(),
        own_uid,
    })
}

/// Removes a stale socket (one nobody answers on), binds, and restricts the socket to its owner.
async fn bind(socket: &Path) -> Result<UnixListener, ServeError> {
    let socket_error = |source| ServeError::Socket {
        path: socket.to_owned(),
        source,
    };
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ServeError::NotASocket(socket.to_owned()));
        }
        Ok(_) => {
            if UnixStream::connect(socket).await.is_ok() {
                return Err(ServeError::AlreadyRunning(socket.to_owned()));
            }
            std::fs::remove_file(socket).map_err(socket_error)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(socket_error(e)),
    }
    let listener = UnixListener::bind(socket).map_err(socket_error)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(socket_error)?;
    Ok(listener)
}
