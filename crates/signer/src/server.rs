//! The Unix socket listener: framing, connections and graceful shutdown.
//!
//! Each connection carries line-framed requests answered in order. A line longer than
//! [`MAX_FRAME_BYTES`] is answered with `bad_request` and the connection is closed, because the
//! rest of that line cannot be told apart from a next request. On shutdown the listener stops
//! accepting, connections waiting for a request are closed, requests being handled finish and
//! are answered, and the socket file is removed.
//!
//! # Security
//!
//! The socket is created with mode 0600 before the first connection is accepted, and every
//! connection's peer credentials are checked: only processes running as the signer's own user
//! (or root, which the mode cannot stop either) are served. Operators who want another user to
//! connect put both in a group and proxy, rather than widening the socket.

use std::future::Future;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use clawfirst_core::signer_proto::{MAX_FRAME_BYTES, SignerErrorCode, SignerResponse};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::service::Service;

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
    let listener = bind(socket).await?;
    let own_uid = std::fs::metadata(socket)
        .map_err(|source| ServeError::Socket {
            path: socket.to_owned(),
            source,
        })?
        .uid();
    tracing::info!(socket = %socket.display(), "signer listening");

    let (stop_tx, stop_rx) = watch::channel(false);
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = JoinSet::new();
    let next_id = AtomicU64::new(1);
    tokio::pin!(shutdown);

    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        // Reap finished connection tasks so the set does not grow with the connection count.
        while connections.try_join_next().is_some() {}

        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let conn_id = next_id.fetch_add(1, Ordering::Relaxed);
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == own_uid || cred.uid() == 0 => {}
            Ok(cred) => {
                tracing::info!(
                    conn.id = conn_id,
                    peer.uid = cred.uid(),
                    "connection refused: other user"
                );
                continue;
            }
            Err(e) => {
                tracing::info!(conn.id = conn_id, error = %e, "connection refused: no credentials");
                continue;
            }
        }
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(
                conn.id = conn_id,
                "connection refused: too many connections"
            );
            continue;
        };
        let span = tracing::info_span!("conn", conn.id = conn_id);
        let task = connection(stream, Arc::clone(&service), stop_rx.clone());
        connections.spawn(
            async move {
                task.await;
                drop(permit);
            }
            .instrument(span),
        );
    }

    tracing::info!(in_flight = connections.len(), "signer stopping");
    drop(listener);
    // Receivers stay alive in the tasks, so this cannot fail in a way that matters.
    let _ = stop_tx.send(true);
    while connections.join_next().await.is_some() {}
    std::fs::remove_file(socket).map_err(|source| ServeError::Cleanup {
        path: socket.to_owned(),
        source,
    })?;
    tracing::info!("signer stopped");
    Ok(())
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

enum Frame {
    Line,
    TooLong,
    Closed,
}

/// Reads one line into `buf` (without its newline), reading at most one byte past the limit.
async fn read_frame(
    reader: &mut BufReader<tokio::net::unix::OwnedReadHalf>,
    buf: &mut Vec<u8>,
) -> io::Result<Frame> {
    buf.clear();
    let limit = u64::try_from(MAX_FRAME_BYTES)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    let read = (&mut *reader).take(limit).read_until(b'\n', buf).await?;
    if read == 0 {
        return Ok(Frame::Closed);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
        return Ok(Frame::Line);
    }
    if buf.len() > MAX_FRAME_BYTES {
        return Ok(Frame::TooLong);
    }
    // The peer closed in the middle of a line: there is no one to answer.
    Ok(Frame::Closed)
}

async fn connection(stream: UnixStream, service: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::with_capacity(4096);
    loop {
        if *stop.borrow_and_update() {
            break;
        }
        let frame = tokio::select! {
            _ = stop.changed() => break,
            frame = read_frame(&mut reader, &mut line) => frame,
        };
        let response = match frame {
            Ok(Frame::Line) => service.handle_line(&line).await,
            Ok(Frame::TooLong) => {
                service.refuse_oversize_line().await;
                let response = SignerResponse::Error {
                    code: SignerErrorCode::BadRequest,
                    message: format!("request line exceeds {MAX_FRAME_BYTES} bytes"),
                };
                // Best effort: the connection closes either way.
                let _ = write_response(&mut write, &response).await;
                break;
            }
            Ok(Frame::Closed) => break,
            Err(e) => {
                tracing::debug!(error = %e, "connection read failed");
                break;
            }
        };
        if let Err(e) = write_response(&mut write, &response).await {
            tracing::debug!(error = %e, "connection write failed");
            break;
        }
    }
}

async fn write_response(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    response: &SignerResponse,
) -> io::Result<()> {
    let mut bytes = serde_json::to_vec(response).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.flush().await
}
