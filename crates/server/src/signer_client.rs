//! The approval layer's client of `clawfirst-signer`.
//!
//! Speaks the line-delimited JSON protocol of [`clawfirst_core::signer_proto`] over the
//! signer's Unix socket, or over TCP with mutual TLS to a signer on another host ([`tls`]).
//! Connections are kept in a small pool and reused; a connection that saw any error is dropped,
//! never returned to the pool.
//!
//! # Security
//!
//! The server holds no wallet key: this client sends a message and its grant and receives a
//! signature, nothing else. It never logs the grant or the message.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use clawfirst_core::approval::SignedApproval;
use clawfirst_core::grant::SignedGrant;
use clawfirst_core::signer_proto::{
    MAX_FRAME_BYTES, SignerErrorCode, SignerRequest, SignerResponse,
};
use clawfirst_core::{Address, GrantId, KeyId};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

pub mod tls;

pub use tls::{SignerTls, SignerTlsError};

/// How long one request may take before the connection is abandoned.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle connections kept for reuse.
const POOL_SIZE: usize = 128;

/// Why a signer request did not produce what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignerClientError {
    /// The socket could not be reached or the connection broke. Whether a sign request was
    /// carried out is unknown: ask [`SignerClient::grant_status`].
    #[error("signer is unreachable")]
    Unreachable(#[source] std::io::Error),
    /// The signer did not answer in time; as for `Unreachable`, the outcome is unknown.
    #[error("signer did not answer in time")]
    Timeout,
    /// The signer answered something this client does not understand.
    #[error("signer sent an invalid response")]
    Protocol,
    /// The signer refused or failed the request; nothing was signed unless the code says the
    /// grant was used.
    #[error("signer refused the request: {code:?}")]
    Refused {
        /// The signer's reason.
        code: SignerErrorCode,
        /// The signer's message, for the log.
        message: String,
    },
}

/// A signature and the key that made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignOutcome {
    /// The 64 signature bytes.
    pub signature: [u8; 64],
    /// The wallet address that signed.
    pub public_key: Address,
}

/// What the signer knows of a grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantUse {
    /// Never presented: safe to abandon once expired.
    Unused,
    /// Presented, and signed with this signature.
    Signed([u8; 64]),
    /// Presented, but signing failed: nothing was signed.
    UsedWithoutSignature,
}

/// A byte stream to the signer: a Unix socket or a TLS stream.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

struct Connection {
    stream: BufReader<Box<dyn Stream>>,
}

/// How the signer is reached.
#[derive(Debug)]
enum Link {
    Socket(PathBuf),
    Tls(tls::Connector),
}

/// A pooled client of the signer.
#[derive(Debug)]
pub struct SignerClient {
    link: Link,
    pool: Mutex<Vec<Connection>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connection")
    }
}

impl SignerClient {
    /// A client of the signer listening on `socket`. Connects lazily.
    pub fn new(socket: PathBuf) -> Self {
        Self {
            link: Link::Socket(socket),
            pool: Mutex::new(Vec::new()),
        }
    }

    /// A client of a signer's TLS listener. Reads the certificates and key now; connects
    /// lazily.
    ///
    /// # Errors
    /// [`SignerTlsError`] when a file is unreadable, not PEM, or refused by rustls.
    pub fn with_tls(tls: &SignerTls) -> Result<Self, SignerTlsError> {
        Ok(Self {
            link: Link::Tls(tls::Connector::new(tls)?),
            pool: Mutex::new(Vec::new()),
        })
    }

    /// The client the configuration asks for: over TLS when `signer.tls_address` is set,
    /// otherwise over `signer.socket`.
    ///
    /// # Errors
    /// [`SignerTlsError`], as for [`SignerClient::with_tls`].
    pub fn from_config(config: &crate::config::Config) -> Result<Self, SignerTlsError> {
        match &config.signer_tls {
            Some(tls) => Self::with_tls(tls),
            None => Ok(Self::new(config.signer_socket.clone())),
        }
    }

    /// Where this client connects, for messages: the socket path or `tls://host:port`.
    pub fn endpoint(&self) -> String {
        match &self.link {
            Link::Socket(path) => path.display().to_string(),
            Link::Tls(connector) => connector.endpoint(),
        }
    }

    /// Asks the signer to sign `message` under `grant`.
    ///
    /// # Errors
    /// [`SignerClientError`]; on `Unreachable` or `Timeout` the outcome is unknown.
    pub async fn sign(
        &self,
        key_id: &KeyId,
        message: &[u8],
        grant: SignedGrant,
        approvals: Vec<SignedApproval>,
    ) -> Result<SignOutcome, SignerClientError> {
        let request = SignerRequest::Sign {
            key_id: key_id.clone(),
            message: B64.encode(message),
            grant,
            approvals,
        };
        match self.call(&request).await? {
            SignerResponse::Signed {
                signature,
                public_key,
            } => Ok(SignOutcome {
                signature: decode_signature(&signature)?,
                public_key,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// The wallet address of a key.
    ///
    /// # Errors
    /// [`SignerClientError`].
    pub async fn public_key(&self, key_id: &KeyId) -> Result<Address, SignerClientError> {
        match self
            .call(&SignerRequest::PublicKey {
                key_id: key_id.clone(),
            })
            .await?
        {
            SignerResponse::PublicKey { public_key, .. } => Ok(public_key),
            other => Err(unexpected(other)),
        }
    }

    /// Whether a grant was used, for crash recovery.
    ///
    /// # Errors
    /// [`SignerClientError`].
    pub async fn grant_status(&self, grant_id: GrantId) -> Result<GrantUse, SignerClientError> {
        let request = SignerRequest::GrantStatus {
            grant_id: grant_id.to_string(),
        };
        match self.call(&request).await? {
            SignerResponse::GrantStatus { used: false, .. } => Ok(GrantUse::Unused),
            SignerResponse::GrantStatus {
                used: true,
                signature: None,
            } => Ok(GrantUse::UsedWithoutSignature),
            SignerResponse::GrantStatus {
                used: true,
                signature: Some(s),
            } => Ok(GrantUse::Signed(decode_signature(&s)?)),
            other => Err(unexpected(other)),
        }
    }

    /// Whether the signer answers.
    ///
    /// # Errors
    /// [`SignerClientError`].
    pub async fn health(&self) -> Result<(), SignerClientError> {
        match self.call(&SignerRequest::Health {}).await? {
            SignerResponse::Health { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn call(&self, request: &SignerRequest) -> Result<SignerResponse, SignerClientError> {
        let mut line = serde_json::to_vec(request).map_err(|_| SignerClientError::Protocol)?;
        line.push(b'\n');

        let pooled = self.pool.lock().ok().and_then(|mut p| p.pop());
        let mut conn = match pooled {
            Some(conn) => conn,
            None => tokio::time::timeout(REQUEST_TIMEOUT, self.connect())
                .await
                .map_err(|_| SignerClientError::Timeout)??,
        };

        let exchange = async {
            let stream = conn.stream.get_mut();
            stream
                .write_all(&line)
                .await
                .map_err(SignerClientError::Unreachable)?;
            stream
                .flush()
                .await
                .map_err(SignerClientError::Unreachable)?;
            let mut buf = Vec::with_capacity(256);
            let n = (&mut conn.stream)
                .take(u64::try_from(MAX_FRAME_BYTES).unwrap_or(u64::MAX))
                .read_until(b'\n', &mut buf)
                .await
                .map_err(SignerClientError::Unreachable)?;
            if n == 0 || buf.last() != Some(&b'\n') {
                return Err(SignerClientError::Unreachable(std::io::Error::from(
                    std::io::ErrorKind::UnexpectedEof,
                )));
            }
            serde_json::from_slice::<SignerResponse>(&buf).map_err(|_| SignerClientError::Protocol)
        };
        let response = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| SignerClientError::Timeout)??;

        if let Ok(mut pool) = self.pool.lock()
            && pool.len() < POOL_SIZE
        {
            pool.push(conn);
        }
        match response {
            SignerResponse::Error { code, message } => {
                Err(SignerClientError::Refused { code, message })
            }
            other => Ok(other),
        }
    }

    /// Opens a connection; over TLS this includes the handshake. A signer that refuses this
    /// server's certificate may still let the handshake finish (TLS 1.3 checks the client last)
    /// and then close: that shows as `Unreachable` on the first request.
    async fn connect(&self) -> Result<Connection, SignerClientError> {
        let stream: Box<dyn Stream> = match &self.link {
            Link::Socket(path) => Box::new(
                UnixStream::connect(path)
                    .await
                    .map_err(SignerClientError::Unreachable)?,
            ),
            Link::Tls(connector) => Box::new(
                connector
                    .connect()
                    .await
                    .map_err(SignerClientError::Unreachable)?,
            ),
        };
        Ok(Connection {
            stream: BufReader::new(stream),
        })
    }
}

use tokio::io::AsyncReadExt as _;

fn decode_signature(text: &str) -> Result<[u8; 64], SignerClientError> {
    let mut out = [0u8; 64];
    match bs58::decode(text).onto(&mut out) {
        Ok(64) => Ok(out),
        _ => Err(SignerClientError::Protocol),
    }
}

fn unexpected(response: SignerResponse) -> SignerClientError {
    match response {
        SignerResponse::Error { code, message } => SignerClientError::Refused { code, message },
        _ => SignerClientError::Protocol,
    }
}
