//! One connection: line framing, answering requests in order, and closing on shutdown.
//!
//! The same code serves a Unix socket connection and a TLS stream: the protocol over either is
//! the line-delimited JSON of [`clawfirst_core::signer_proto`].

use std::io;
use std::sync::Arc;
use std::time::Duration;

use clawfirst_core::signer_proto::{MAX_FRAME_BYTES, SignerErrorCode, SignerResponse};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::service::Service;

/// How long a TLS client may take to complete its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

enum Frame {
    Line,
    TooLong,
    Closed,
}

/// Completes the TLS handshake (the client certificate checks happen here), then serves the
/// connection. A refused or abandoned handshake is logged at `info` and closed.
pub(super) async fn tls(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    service: Arc<Service>,
    mut stop: watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
    let accepted = tokio::select! {
        _ = stop.changed() => return,
        accepted = handshake => accepted,
    };
    match accepted {
        Ok(Ok(stream)) => {
            tracing::debug!("tls handshake completed");
            serve(stream, service, stop).await;
        }
        Ok(Err(e)) => {
            tracing::info!(reason = %e, "connection refused: tls handshake failed");
        }
        Err(_) => tracing::info!("connection refused: tls handshake timed out"),
    }
}

/// Answers requests until the peer closes, a frame is too long, an I/O error, or shutdown.
pub(super) async fn serve<S>(stream: S, service: Arc<Service>, mut stop: watch::Receiver<bool>)
where
    S: AsyncRead + AsyncWrite,
{
    let (read, mut write) = tokio::io::split(stream);
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
    // Best effort: over TLS this sends close_notify, so the peer sees a clean end.
    let _ = write.shutdown().await;
}

/// Reads one line into `buf` (without its newline), reading at most one byte past the limit.
async fn read_frame<R>(reader: &mut BufReader<R>, buf: &mut Vec<u8>) -> io::Result<Frame>
where
    R: AsyncRead + Unpin,
{
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

async fn write_response<W>(write: &mut W, response: &SignerResponse) -> io::Result<()>
where
    W: AsyncWrite + Unpin,
{
    let mut bytes = serde_json::to_vec(response).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.flush().await
}
