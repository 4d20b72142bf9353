//! The canonical binary encoding of [`ApprovalStatement`], built from the shared helpers in
//! [`crate::codec`].

use crate::address::Address;
use crate::codec::{DecodeFailure, Reader, put_id, put_transfer};
use crate::ids::{AgentId, IdError, KeyId, SessionId};

use super::{ApprovalDecision, ApprovalStatement};

const MAGIC: &[u8; 8] = b"CFAPPRV1";

/// Why approval statement bytes did not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalDecodeError {
    /// Not valid base64.
    #[error("approval statement is not valid base64")]
    Base64,
    /// Longer than any valid statement.
    #[error("approval statement is too long")]
    TooLong,
    /// The magic prefix is missing or of another version.
    #[error("approval statement has an unknown format")]
    Magic,
    /// The statement ended before the named field.
    #[error("approval statement is truncated at {0}")]
    Truncated(&'static str),
    /// Bytes remain after the last field.
    #[error("approval statement has trailing bytes")]
    TrailingBytes,
    /// The decision byte is neither 0 nor 1.
    #[error("approval statement has an unknown decision")]
    Decision,
    /// An identifier field holds a disallowed value.
    #[error("approval statement has an invalid identifier")]
    Id(#[source] IdError),
    /// An unknown asset tag or mint flag, or a mint that does not fit the asset.
    #[error("approval statement has an invalid transfer")]
    Transfer,
}

impl DecodeFailure for ApprovalDecodeError {
    fn truncated(field: &'static str) -> Self {
        ApprovalDecodeError::Truncated(field)
    }

    fn invalid_id(error: IdError) -> Self {
        ApprovalDecodeError::Id(error)
    }

    fn invalid_transfer() -> Self {
        ApprovalDecodeError::Transfer
    }
}

pub(super) fn encode(statement: &ApprovalStatement) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(statement.approver.as_bytes());
    out.push(statement.decision.tag());
    out.extend_from_slice(&statement.decided_at_ms.to_be_bytes());
    put_id(&mut out, statement.session_id.as_str());
    put_id(&mut out, statement.agent_id.as_str());
    put_id(&mut out, statement.key_id.as_str());
    put_transfer(&mut out, &statement.transfer);
    out
}

pub(super) fn decode(bytes: &[u8]) -> Result<ApprovalStatement, ApprovalDecodeError> {
    let mut r = Reader::<ApprovalDecodeError>::new(bytes);
    if !r.magic(MAGIC) {
        return Err(ApprovalDecodeError::Magic);
    }

    let approver = Address::new(r.array("approver")?);
    let decision =
        ApprovalDecision::from_tag(r.u8("decision")?).ok_or(ApprovalDecodeError::Decision)?;
    let decided_at_ms = r.u64("decided at")?;
    let session_id = SessionId::new(r.id("session id")?).map_err(ApprovalDecodeError::Id)?;
    let agent_id = AgentId::new(r.id("agent id")?).map_err(ApprovalDecodeError::Id)?;
    let key_id = KeyId::new(r.id("key id")?).map_err(ApprovalDecodeError::Id)?;
    let transfer = r.transfer()?;
    if !r.is_empty() {
        return Err(ApprovalDecodeError::TrailingBytes);
    }

    Ok(ApprovalStatement {
        approver,
        decision,
        decided_at_ms,
        session_id,
        agent_id,
        key_id,
        transfer,
    })
}
