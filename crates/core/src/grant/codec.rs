//! The canonical binary encoding of [`GrantBody`].

use crate::address::Address;
use crate::ids::{AgentId, GrantId, IdError, KeyId, SessionId};
use crate::transfer::Transfer;

use super::{GrantBody, asset_from_tag};

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

pub(super) fn encode(body: &GrantBody) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&body.grant_id.to_bytes());
    out.extend_from_slice(&body.issued_at_ms.to_be_bytes());
    out.extend_from_slice(&body.expires_at_ms.to_be_bytes());
    for id in [
        body.agent_id.as_str(),
        body.session_id.as_str(),
        body.key_id.as_str(),
    ] {
        // Identifiers are at most 64 bytes by construction, so the length fits one byte.
        out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
        out.extend_from_slice(id.as_bytes());
    }
    out.extend_from_slice(&body.message_sha256);
    let t = &body.transfer;
    out.push(t.asset.tag());
    match t.mint {
        Some(mint) => {
            out.push(1);
            out.extend_from_slice(mint.as_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(&t.amount.to_be_bytes());
    out.extend_from_slice(t.recipient.as_bytes());
    out.extend_from_slice(t.payer.as_bytes());
    out
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], GrantDecodeError> {
        if self.rest.len() < n {
            return Err(GrantDecodeError::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], GrantDecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, GrantDecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, GrantDecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn id(&mut self, field: &'static str) -> Result<&'a str, GrantDecodeError> {
        let len = usize::from(self.u8(field)?);
        let bytes = self.take(len, field)?;
        // Non-UTF-8 cannot pass the identifier alphabet check either.
        std::str::from_utf8(bytes)
            .map_err(|_| GrantDecodeError::Id(IdError::Alphabet { kind: "identifier" }))
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<GrantBody, GrantDecodeError> {
    let mut r = Reader { rest: bytes };
    if r.take(MAGIC.len(), "magic").ok() != Some(MAGIC.as_slice()) {
        return Err(GrantDecodeError::Magic);
    }

    let grant_id = GrantId::from_bytes(r.array("grant id")?);
    let issued_at_ms = r.u64("issued at")?;
    let expires_at_ms = r.u64("expires at")?;
    let agent_id = AgentId::new(r.id("agent id")?).map_err(GrantDecodeError::Id)?;
    let session_id = SessionId::new(r.id("session id")?).map_err(GrantDecodeError::Id)?;
    let key_id = KeyId::new(r.id("key id")?).map_err(GrantDecodeError::Id)?;
    let message_sha256 = r.array("message hash")?;

    let asset = asset_from_tag(r.u8("asset")?).ok_or(GrantDecodeError::Transfer)?;
    let mint = match r.u8("mint flag")? {
        0 => None,
        1 => Some(Address::new(r.array("mint")?)),
        _ => return Err(GrantDecodeError::Transfer),
    };
    let amount = r.u64("amount")?;
    let recipient = Address::new(r.array("recipient")?);
    let payer = Address::new(r.array("payer")?);
    if !r.rest.is_empty() {
        return Err(GrantDecodeError::TrailingBytes);
    }

    let transfer = Transfer {
        asset,
        mint,
        amount,
        recipient,
        payer,
    };
    transfer
        .validate()
        .map_err(|_| GrantDecodeError::Transfer)?;
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
