//! The canonical binary encoding of [`GrantBody`], built from the shared helpers in
//! [`crate::codec`].

use crate::codec::{DecodeFailure, Reader, put_id, put_transfer};
use crate::ids::{AgentId, GrantId, IdError, KeyId, SessionId};

use super::GrantBody;

const MAGIC: &[u8; 8] = b"CFGRANT1";

/// Why grant bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GrantDecodeError {
    /// Not valid base64.
    #[error("grant body is not valid base64")]
    Base64,
    /// The magic prefix is missing or of another version.
    #[error("grant body has an unknown format")]
    Magic,
    /// The body ended before the named field.
    #[error("grant body is truncated at {0}")]
    Truncated(&'static str),
    /// Bytes remain after the last field.
    #[error("grant body has trailing bytes")]
    TrailingBytes,
    /// An identifier field holds a disallowed value.
    #[error("grant body has an invalid identifier")]
    Id(#[source] IdError),
    /// An unknown asset tag or mint flag, or a mint that does not fit the asset.
    #[error("grant body has an invalid transfer")]
    Transfer,
}

impl DecodeFailure for GrantDecodeError {
    fn truncated(field: &'static str) -> Self {
        GrantDecodeError::Truncated(field)
    }

    fn invalid_id(error: IdError) -> Self {
        GrantDecodeError::Id(error)
    }

    fn invalid_transfer() -> Self {
        GrantDecodeError::Transfer
    }
}

pub(super) fn encode(body: &GrantBody) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&body.grant_id.to_bytes());
    out.extend_from_slice(&body.issued_at_ms.to_be_bytes());
    out.extend_from_slice(&body.expires_at_ms.to_be_bytes());
    put_id(&mut out, body.agent_id.as_str());
    put_id(&mut out, body.session_id.as_str());
    put_id(&mut out, body.key_id.as_str());
    out.extend_from_slice(&body.message_sha256);
    put_transfer(&mut out, &body.transfer);
    out
}

pub(super) fn decode(bytes: &[u8]) -> Result<GrantBody, GrantDecodeError> {
    let mut r = Reader::<GrantDecodeError>::new(bytes);
    if !r.magic(MAGIC) {
        return Err(GrantDecodeError::Magic);
    }

    let grant_id = GrantId::from_bytes(r.array("grant id")?);
    let issued_at_ms = r.u64("issued at")?;
    let expires_at_ms = r.u64("expires at")?;
    let agent_id = AgentId::new(r.id("agent id")?).map_err(GrantDecodeError::Id)?;
    let session_id = SessionId::new(r.id("session id")?).map_err(GrantDecodeError::Id)?;
    let key_id = KeyId::new(r.id("key id")?).map_err(GrantDecodeError::Id)?;
    let message_sha256 = r.array("message hash")?;
    let transfer = r.transfer()?;
    if !r.is_empty() {
        return Err(GrantDecodeError::TrailingBytes);
    }

    Ok(GrantBody {
        grant_id,
        issued_at_ms,
        expires_at_ms,
        agent_id,
        session_id,
        key_id,
        message_sha256,
        transfer,
    })
}
