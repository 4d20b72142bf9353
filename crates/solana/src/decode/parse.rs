//! Structural parsing of a legacy or v0 message: header, account keys, blockhash and compiled
//! instructions, with the runtime's own sanity rules (indices in range, unique keys, canonical
//! lengths, no trailing bytes) and this crate's stricter ones (one signer, no lookups).

use clawfirst_core::Address;

use crate::wire::{MAX_MESSAGE_LEN, Reader, VERSION_PREFIX, WireError};

use super::DecodeError;

/// A message's parts, borrowed from the input bytes.
#[derive(Debug)]
pub(super) struct RawMessage<'a> {
    pub(super) keys: Vec<Address>,
    pub(super) recent_blockhash: [u8; 32],
    pub(super) instructions: Vec<RawInstruction<'a>>,
}

/// One instruction with its account indices resolved to addresses, and opaque data.
#[derive(Debug)]
pub(super) struct RawInstruction<'a> {
    pub(super) program: Address,
    pub(super) accounts: Vec<Address>,
    pub(super) data: &'a [u8],
}

/// More instructions than a payment can have (two compute-budget instructions, account
/// creation, the transfer and a memo) is refused before anything is allocated for them.
const MAX_INSTRUCTIONS: usize = 5;

impl From<WireError> for DecodeError {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated(what) => DecodeError::Truncated(what),
            WireError::NonCanonicalLength => DecodeError::NonCanonicalLength,
            WireError::UnsupportedVersion(v) => DecodeError::UnsupportedVersion(v),
            // The reader produces no other variant; map anything new to the structural error.
            _ => DecodeError::InvalidHeader,
        }
    }
}

pub(super) fn parse(message: &[u8]) -> Result<RawMessage<'_>, DecodeError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(DecodeError::TooLarge(message.len()));
    }
    let mut r = Reader::new(message);

    // 1. Version prefix and header.
    let mut first = r.byte("header")?;
    let versioned = first & VERSION_PREFIX != 0;
    if versioned {
        let version = first & !VERSION_PREFIX;
        if version != 0 {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        first = r.byte("header")?;
    }
    let num_required_signatures = first;
    let num_readonly_signed = r.byte("header")?;
    let num_readonly_unsigned = r.byte("header")?;
    if num_required_signatures != 1 {
        return Err(DecodeError::SignerCount(num_required_signatures));
    }
    if num_readonly_signed != 0 {
        return Err(DecodeError::FeePayerReadonly);
    }

    // 2. Account keys: unique, and enough of them for the header's counts.
    let key_count = r.compact_len("account keys")?;
    let key_bytes = r.take(key_count.saturating_mul(32), "account keys")?;
    let keys: Vec<Address> = key_bytes
        .chunks_exact(32)
        .map(|chunk| {
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(chunk);
            Address::new(bytes)
        })
        .collect();
    if keys.len() < 1 + usize::from(num_readonly_unsigned) {
        return Err(DecodeError::InvalidHeader);
    }
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(DecodeError::DuplicateAccount);
    }

    // 3. Blockhash.
    let recent_blockhash = r.array::<32>("blockhash")?;

    // 4. Instructions, with every index checked against the keys.
    let instruction_count = r.compact_len("instructions")?;
    if instruction_count > MAX_INSTRUCTIONS {
        return Err(DecodeError::TooManyInstructions(instruction_count));
    }
    let mut used = vec![false; keys.len()];
    if let Some(fee_payer) = used.first_mut() {
        *fee_payer = true;
    }
    let mut instructions = Vec::with_capacity(instruction_count);
    for _ in 0..instruction_count {
        let program_index = usize::from(r.byte("instruction")?);
        let account_count = r.compact_len("instruction accounts")?;
        let indices = r.take(account_count, "instruction accounts")?;
        let data_len = r.compact_len("instruction data")?;
        let data = r.take(data_len, "instruction data")?;

        if program_index == 0 {
            return Err(DecodeError::ProgramIsFeePayer);
        }
        let program = *keys
            .get(program_index)
            .ok_or(DecodeError::AccountIndexOutOfRange)?;
        let mut accounts = Vec::with_capacity(indices.len());
        for index in indices.iter().map(|&i| usize::from(i)) {
            accounts.push(*keys.get(index).ok_or(DecodeError::AccountIndexOutOfRange)?);
            mark_used(&mut used, index);
        }
        mark_used(&mut used, program_index);
        instructions.push(RawInstruction {
            program,
            accounts,
            data,
        });
    }

    // 5. A v0 message ends with its address-table lookups, which payments never use.
    if versioned && r.compact_len("address table lookups")? != 0 {
        return Err(DecodeError::AddressTableLookups);
    }
    if !r.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    if used.iter().any(|u| !u) {
        return Err(DecodeError::UnusedAccount);
    }
    Ok(RawMessage {
        keys,
        recent_blockhash,
        instructions,
    })
}

fn mark_used(used: &mut [bool], index: usize) {
    if let Some(slot) = used.get_mut(index) {
        *slot = true;
    }
}
