//! The Solana wire format, as far as payments need it.
//!
//! A signed legacy or v0 transaction on the wire is a compact length, that many 64-byte
//! Ed25519 signatures, then the message bytes the signatures cover. A compact length
//! ("short vec") stores a `u16` in one to three bytes, seven bits per byte, low bits first, with
//! the top bit of each byte saying whether another byte follows. Only the shortest encoding is
//! canonical; the runtime refuses the others and so does this module.

use solana_message::Message;

/// The largest transaction the network accepts, in bytes (an IPv6 packet minus headers).
pub const MAX_TRANSACTION_LEN: usize = 1232;

/// The length of one Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The largest message that still fits a transaction with one signature.
pub const MAX_MESSAGE_LEN: usize = MAX_TRANSACTION_LEN - 1 - SIGNATURE_LEN;

/// The top bit of a message's first byte marks a versioned message.
pub(crate) const VERSION_PREFIX: u8 = 0x80;

/// Why transaction or signature bytes could not be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The bytes ended before the named part.
    #[error("bytes end before the {0}")]
    Truncated(&'static str),
    /// The message asks for a number of signatures other than one.
    #[error("message requires {0} signatures, expected exactly 1")]
    SignerCount(u8),
    /// A versioned message of a version other than 0.
    #[error("message version {0} is not supported")]
    UnsupportedVersion(u8),
    /// The result would exceed [`MAX_TRANSACTION_LEN`].
    #[error("transaction of {0} bytes exceeds the network limit")]
    TooLarge(usize),
    /// A compact length that is not in its shortest form or exceeds `u16`.
    #[error("length prefix is not canonical")]
    NonCanonicalLength,
    /// A transaction that carries no signature at all.
    #[error("transaction carries no signature")]
    NoSignature,
    /// Text that is not the base58 form of a 64-byte signature.
    #[error("signature text is not base58 of 64 bytes")]
    SignatureText,
}

/// A forward-only reader over untrusted bytes; every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Whether every byte has been consumed.
    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub(crate) fn byte(&mut self, what: &'static str) -> Result<u8, WireError> {
        let b = *self.bytes.get(self.pos).ok_or(WireError::Truncated(what))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let end = self
            .pos
            .checked_add(len)
            .ok_or(WireError::Truncated(what))?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(WireError::Truncated(what))?;
        self.pos = end;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    /// Reads a canonical compact length.
    pub(crate) fn compact_len(&mut self, what: &'static str) -> Result<usize, WireError> {
        let mut value = 0usize;
        for shift in [0u32, 7, 14] {
            let b = self.byte(what)?;
            value |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                // A final byte of zero after a continuation is an alias of a shorter encoding.
                if shift > 0 && b == 0 {
                    return Err(WireError::NonCanonicalLength);
                }
                if value > usize::from(u16::MAX) {
                    return Err(WireError::NonCanonicalLength);
                }
                return Ok(value);
            }
        }
        Err(WireError::NonCanonicalLength)
    }
}

/// Appends `len` as a compact length.
///
/// # Errors
/// [`WireError::NonCanonicalLength`] when `len` exceeds `u16::MAX`.
pub(crate) fn push_compact_len(out: &mut Vec<u8>, len: usize) -> Result<(), WireError> {
    let mut rest = u16::try_from(len).map_err(|_| WireError::NonCanonicalLength)?;
    loop {
        let low = u8::try_from(rest & 0x7f).unwrap_or(0);
        rest >>= 7;
        if rest == 0 {
            out.push(low);
            return Ok(());
        }
        out.push(low | 0x80);
    }
}

/// Encodes a legacy message exactly as the runtime serializes it.
///
/// # Errors
/// [`WireError::NonCanonicalLength`] when a list is longer than a compact length can state.
pub(crate) fn encode_legacy_message(message: &Message) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(MAX_MESSAGE_LEN);
    out.push(message.header.num_required_signatures);
    out.push(message.header.num_readonly_signed_accounts);
    out.push(message.header.num_readonly_unsigned_accounts);
    push_compact_len(&mut out, message.account_keys.len())?;
    for key in &message.account_keys {
        out.extend_from_slice(key.as_array());
    }
    out.extend_from_slice(message.recent_blockhash.as_bytes());
    push_compact_len(&mut out, message.instructions.len())?;
    for ix in &message.instructions {
        out.push(ix.program_id_index);
        push_compact_len(&mut out, ix.accounts.len())?;
        out.extend_from_slice(&ix.accounts);
        push_compact_len(&mut out, ix.data.len())?;
        out.extend_from_slice(&ix.data);
    }
    Ok(out)
}

/// The number of signatures a legacy or v0 message requires, read from its header.
fn required_signatures(message: &[u8]) -> Result<u8, WireError> {
    let mut reader = Reader::new(message);
    let first = reader.byte("message header")?;
    if first & VERSION_PREFIX == 0 {
        return Ok(first);
    }
    let version = first & !VERSION_PREFIX;
    if version != 0 {
        return Err(WireError::UnsupportedVersion(version));
    }
    reader.byte("message header")
}

/// The wire bytes of a transaction carrying `message` and its one signature.
///
/// The message is not decoded beyond its header: the signer has already checked it, and the
/// network verifies the signature.
///
/// # Errors
/// [`WireError::SignerCount`] unless the message requires exactly one signature,
/// [`WireError::UnsupportedVersion`] for a versioned message other than v0,
/// [`WireError::TooLarge`] when the result would exceed [`MAX_TRANSACTION_LEN`].
pub fn assemble_transaction(message: &[u8], signature: &[u8; 64]) -> Result<Vec<u8>, WireError> {
    let required = required_signatures(message)?;
    if required != 1 {
        return Err(WireError::SignerCount(required));
    }
    let len = 1 + SIGNATURE_LEN + message.len();
    if len > MAX_TRANSACTION_LEN {
        return Err(WireError::TooLarge(len));
    }

    let mut out = Vec::with_capacity(len);
    out.push(1);
    out.extend_from_slice(signature);
    out.extend_from_slice(message);
    Ok(out)
}

/// The base58 text of the transaction's first signature, which is its id on the network.
///
/// # Errors
/// [`WireError::NoSignature`] or [`WireError::Truncated`] when the bytes hold no signature.
pub fn transaction_signature(transaction: &[u8]) -> Result<String, WireError> {
    let mut reader = Reader::new(transaction);
    if reader.compact_len("signature count")? == 0 {
        return Err(WireError::NoSignature);
    }
    let signature: [u8; SIGNATURE_LEN] = reader.array("signature")?;
    Ok(signature_text(&signature))
}

/// The base58 text of a signature, as explorers and RPC nodes show it.
pub fn signature_text(signature: &[u8; 64]) -> String {
    bs58::encode(signature).into_string()
}

/// Parses the base58 text of a signature.
///
/// # Errors
/// [`WireError::SignatureText`] unless `text` is base58 of exactly 64 bytes.
pub fn parse_signature_text(text: &str) -> Result<[u8; 64], WireError> {
    // 64 bytes take at most 88 base58 characters; refuse longer text before decoding it.
    if text.len() > 88 {
        return Err(WireError::SignatureText);
    }
    let mut out = [0u8; SIGNATURE_LEN];
    match bs58::decode(text).onto(&mut out) {
        Ok(SIGNATURE_LEN) => Ok(out),
        _ => Err(WireError::SignatureText),
    }
}

#[cfg(test)]
mod tests;
