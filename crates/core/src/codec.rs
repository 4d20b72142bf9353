//! Building blocks of the fixed binary encodings that are signed: grants
//! ([`crate::grant`]) and approval statements ([`crate::approval`]).
//!
//! Both encodings write identifiers as one length byte followed by ASCII, integers big-endian,
//! and a transfer as asset tag, mint flag and mint, amount, recipient and payer. The writers and
//! the strict reader live here once, so the two formats cannot drift apart. Each format keeps its
//! own public error type; [`DecodeFailure`] lets the reader produce it.

use std::marker::PhantomData;

use crate::address::Address;
use crate::asset::Asset;
use crate::ids::IdError;
use crate::transfer::Transfer;

/// How a format's decode error reports the failures the shared reader detects.
pub(crate) trait DecodeFailure: Sized {
    /// The input ended before `field`.
    fn truncated(field: &'static str) -> Self;
    /// An identifier is not valid.
    fn invalid_id(error: IdError) -> Self;
    /// An unknown asset tag or mint flag, or a transfer that breaks its invariants.
    fn invalid_transfer() -> Self;
}

/// Appends an identifier: one length byte, then its ASCII bytes.
pub(crate) fn put_id(out: &mut Vec<u8>, id: &str) {
    // Identifiers are at most 64 bytes by construction, so the length fits one byte.
    out.push(u8::try_from(id.len()).unwrap_or(u8::MAX));
    out.extend_from_slice(id.as_bytes());
}

/// Appends a transfer: asset tag, mint flag (+ mint), amount, recipient, payer.
pub(crate) fn put_transfer(out: &mut Vec<u8>, transfer: &Transfer) {
    out.push(transfer.asset.tag());
    match transfer.mint {
        Some(mint) => {
            out.push(1);
            out.extend_from_slice(mint.as_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(&transfer.amount.to_be_bytes());
    out.extend_from_slice(transfer.recipient.as_bytes());
    out.extend_from_slice(transfer.payer.as_bytes());
}

/// A strict reader over untrusted bytes: every read is bounds-checked and reports the field it
/// was reading.
pub(crate) struct Reader<'a, E> {
    rest: &'a [u8],
    error: PhantomData<E>,
}

impl<'a, E: DecodeFailure> Reader<'a, E> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            error: PhantomData,
        }
    }

    /// Whether every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Whether the input starts with `magic`; consumes it when it does.
    pub(crate) fn magic(&mut self, magic: &[u8]) -> bool {
        match self.rest.strip_prefix(magic) {
            Some(tail) => {
                self.rest = tail;
                true
            }
            None => false,
        }
    }

    pub(crate) fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], E> {
        if self.rest.len() < n {
            return Err(E::truncated(field));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], E> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, E> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    pub(crate) fn u8(&mut self, field: &'static str) -> Result<u8, E> {
        Ok(self.array::<1>(field)?[0])
    }

    /// An identifier's text, validated afterwards by the caller's identifier type.
    pub(crate) fn id(&mut self, field: &'static str) -> Result<&'a str, E> {
        let len = usize::from(self.u8(field)?);
        let bytes = self.take(len, field)?;
        // Non-UTF-8 cannot pass the identifier alphabet check either.
        std::str::from_utf8(bytes)
            .map_err(|_| E::invalid_id(IdError::Alphabet { kind: "identifier" }))
    }

    /// A transfer, checked against its invariants.
    pub(crate) fn transfer(&mut self) -> Result<Transfer, E> {
        let asset = Asset::from_tag(self.u8("asset")?).ok_or_else(E::invalid_transfer)?;
        let mint = match self.u8("mint flag")? {
            0 => None,
            1 => Some(Address::new(self.array("mint")?)),
            _ => return Err(E::invalid_transfer()),
        };
        let transfer = Transfer {
            asset,
            mint,
            amount: self.u64("amount")?,
            recipient: Address::new(self.array("recipient")?),
            payer: Address::new(self.array("payer")?),
        };
        transfer.validate().map_err(|_| E::invalid_transfer())?;
        Ok(transfer)
    }
}
