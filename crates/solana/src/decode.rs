//! Strict decoding of untrusted payment messages.
//!
//! The signer runs [`decode_payment`] on the exact bytes it is asked to sign, then
//! [`check_matches`] against the transfer its grant approved. Decoding is an allowlist:
//!
//! - a legacy message, or a v0 message without address-table lookups, of at most
//!   [`MAX_MESSAGE_LEN`](crate::wire::MAX_MESSAGE_LEN) bytes, canonically encoded, with no
//!   trailing bytes, unique account keys, every key used, and exactly one signer (the fee
//!   payer, writable);
//! - at most one Compute Budget `SetComputeUnitLimit` (at most
//!   [`MAX_COMPUTE_UNIT_LIMIT`]) and one `SetComputeUnitPrice` (at most
//!   [`MAX_COMPUTE_UNIT_PRICE_MICRO_LAMPORTS`]);
//! - exactly one value movement: a System `Transfer` from the fee payer, or an SPL Token
//!   `TransferChecked` whose authority is the fee payer and whose source is the fee payer's
//!   associated token account for the mint (never a plain `Transfer`, never Token-2022);
//! - for a token transfer, at most one Associated Token Account `Create` or
//!   `CreateIdempotent`, funded by the fee payer, creating exactly the account the transfer
//!   pays into, for the transfer's mint, under the SPL Token program;
//! - at most one SPL Memo (v2) without accounts, of valid UTF-8, at most
//!   [`MAX_MEMO_LEN`] bytes.
//!
//! Anything else is a [`DecodeError`] naming what was found. Instruction order is not
//! constrained: a misordered message fails on chain without moving anything it did not
//! declare.

use clawfirst_core::Address;

use crate::payment::{MAX_COMPUTE_UNIT_LIMIT, MAX_COMPUTE_UNIT_PRICE_MICRO_LAMPORTS, MAX_MEMO_LEN};
use crate::programs::{SYSTEM_PROGRAM, TOKEN_PROGRAM, associated_token_address};

mod check;
mod instructions;
mod parse;
#[cfg(test)]
mod tests;

pub use check::{MismatchError, check_matches};

/// What a payment message does, once it has passed every rule above.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedPayment {
    /// The account that pays the fee and signs; always the source of the value.
    pub fee_payer: Address,
    /// The blockhash the message is valid under.
    pub recent_blockhash: [u8; 32],
    /// The one value movement.
    pub transfer: DecodedTransfer,
    /// The compute-unit limit requested, if any.
    pub compute_unit_limit: Option<u32>,
    /// The priority fee offered in micro-lamports per compute unit, if any.
    pub compute_unit_price_micro_lamports: Option<u64>,
    /// Whether the message creates the recipient's associated token account (the payer funds
    /// its rent when it did not exist).
    pub creates_recipient_account: bool,
    /// The memo bytes (valid UTF-8), if any.
    pub memo: Option<Vec<u8>>,
}

/// The value a message moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodedTransfer {
    /// Lamports by System `Transfer`.
    Sol {
        /// The paying wallet (the fee payer).
        from: Address,
        /// The credited account.
        to: Address,
        /// The amount in lamports.
        lamports: u64,
    },
    /// An SPL token by `TransferChecked` between token accounts.
    Token {
        /// The token's mint.
        mint: Address,
        /// The decimals the instruction asserts for the mint.
        decimals: u8,
        /// The amount in base units.
        amount: u64,
        /// The paying wallet: the transfer's authority and the owner of its source account.
        owner: Address,
        /// The token account credited.
        destination: Address,
        /// The wallet whose associated token account `destination` is, when the message
        /// creates that account and so names the wallet. Without a creation instruction the
        /// wallet cannot be recovered from the message; [`check_matches`] then derives the
        /// expected account from the approved recipient and compares addresses.
        recipient: Option<Address>,
    },
}

/// Why a message is not an acceptable payment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Longer than any one-signature transaction can carry.
    #[error("message of {0} bytes is too large")]
    TooLarge(usize),
    /// The bytes ended before the named part.
    #[error("message is truncated in the {0}")]
    Truncated(&'static str),
    /// A compact length in other than its shortest form.
    #[error("message has a non-canonical length prefix")]
    NonCanonicalLength,
    /// Bytes remain after the message.
    #[error("message has trailing bytes")]
    TrailingBytes,
    /// A versioned message other than v0.
    #[error("message version {0} is not supported")]
    UnsupportedVersion(u8),
    /// A v0 message that loads accounts from address tables.
    #[error("message uses address-table lookups")]
    AddressTableLookups,
    /// Other than exactly one required signature.
    #[error("message requires {0} signatures, expected exactly 1")]
    SignerCount(u8),
    /// The fee payer is marked read-only.
    #[error("message marks the fee payer read-only")]
    FeePayerReadonly,
    /// Header counts that do not fit the account keys.
    #[error("message header does not fit its account keys")]
    InvalidHeader,
    /// The same account key listed twice.
    #[error("message lists an account key twice")]
    DuplicateAccount,
    /// An instruction refers past the account keys.
    #[error("message refers to an account index out of range")]
    AccountIndexOutOfRange,
    /// An instruction names the fee payer as its program.
    #[error("message invokes the fee payer as a program")]
    ProgramIsFeePayer,
    /// An account key that no instruction uses.
    #[error("message lists an account no instruction uses")]
    UnusedAccount,
    /// More instructions than a payment has.
    #[error("message has {0} instructions, more than a payment needs")]
    TooManyInstructions(usize),
    /// A program outside the payment allowlist.
    #[error("message invokes program {0}, which payments do not use")]
    UnknownProgram(Address),
    /// An instruction of an allowed program that payments do not use.
    #[error("message has an unsupported {0} instruction")]
    UnsupportedInstruction(&'static str),
    /// An allowed instruction with the wrong number of accounts.
    #[error("{0} instruction has an unexpected account list")]
    InstructionAccounts(&'static str),
    /// An allowed instruction kind appearing more than once.
    #[error("message has more than one {0} instruction")]
    DuplicateInstruction(&'static str),
    /// No value movement.
    #[error("message moves no value")]
    NoTransfer,
    /// Both a SOL and a token movement.
    #[error("message moves value more than once")]
    MultipleTransfers,
    /// A compute-unit limit above [`MAX_COMPUTE_UNIT_LIMIT`].
    #[error("compute-unit limit {0} exceeds the maximum")]
    ComputeUnitLimitTooHigh(u32),
    /// A compute-unit price above [`MAX_COMPUTE_UNIT_PRICE_MICRO_LAMPORTS`].
    #[error("compute-unit price {0} exceeds the maximum")]
    ComputeUnitPriceTooHigh(u64),
    /// The value leaves an account other than the fee payer's, or another authority signs.
    #[error("the fee payer is not the source of the transfer")]
    FeePayerNotSource,
    /// The token source is not the fee payer's associated token account for the mint.
    #[error("token source is not the fee payer's associated token account")]
    SourceNotPayerAccount,
    /// Account creation in a SOL payment.
    #[error("message creates a token account without a token transfer")]
    CreationWithoutTokenTransfer,
    /// Account creation funded by someone other than the fee payer.
    #[error("token account creation is not funded by the fee payer")]
    CreationNotFundedByPayer,
    /// Account creation for another mint, another program, or an address that is not the
    /// wallet's associated token account.
    #[error("token account creation does not match the transfer")]
    CreationMismatch,
    /// The token transfer pays into an account other than the one the message creates.
    #[error("token destination is not the created recipient account")]
    DestinationMismatch,
    /// A memo longer than [`MAX_MEMO_LEN`] bytes.
    #[error("memo of {0} bytes exceeds the maximum")]
    MemoTooLong(usize),
    /// A memo that is not UTF-8.
    #[error("memo is not valid UTF-8")]
    MemoNotUtf8,
}

/// Decodes `message` and checks it against every rule in the module documentation.
///
/// # Errors
/// A [`DecodeError`] naming the first rule broken.
pub fn decode_payment(message: &[u8]) -> Result<DecodedPayment, DecodeError> {
    // 1. Structure: header, keys, blockhash, instructions.
    let raw = parse::parse(message)?;
    let fee_payer = *raw.keys.first().ok_or(DecodeError::InvalidHeader)?;

    // 2. Every instruction is one of the allowed kinds, each at most once.
    let parts = instructions::classify(&raw.instructions)?;
    if let Some(limit) = parts.compute_unit_limit
        && limit > MAX_COMPUTE_UNIT_LIMIT
    {
        return Err(DecodeError::ComputeUnitLimitTooHigh(limit));
    }
    if let Some(price) = parts.compute_unit_price
        && price > MAX_COMPUTE_UNIT_PRICE_MICRO_LAMPORTS
    {
        return Err(DecodeError::ComputeUnitPriceTooHigh(price));
    }

    // 3. Exactly one movement of value, from the fee payer.
    let transfer = match (parts.sol, parts.token) {
        (None, None) => return Err(DecodeError::NoTransfer),
        (Some(_), Some(_)) => return Err(DecodeError::MultipleTransfers),
        (Some(sol), None) => {
            if parts.create.is_some() {
                return Err(DecodeError::CreationWithoutTokenTransfer);
            }
            if sol.from != fee_payer {
                return Err(DecodeError::FeePayerNotSource);
            }
            DecodedTransfer::Sol {
                from: sol.from,
                to: sol.to,
                lamports: sol.lamports,
            }
        }
        (None, Some(token)) => {
            if token.authority != fee_payer {
                return Err(DecodeError::FeePayerNotSource);
            }
            if token.source != associated_token_address(&fee_payer, &token.mint) {
                return Err(DecodeError::SourceNotPayerAccount);
            }
            // 4. An account creation must create exactly the destination, paid by the payer.
            let recipient = match parts.create {
                None => None,
                Some(create) => {
                    if create.funding != fee_payer {
                        return Err(DecodeError::CreationNotFundedByPayer);
                    }
                    let derived = associated_token_address(&create.wallet, &create.mint);
                    if create.mint != token.mint
                        || create.system_program != SYSTEM_PROGRAM
                        || create.token_program != TOKEN_PROGRAM
                        || create.account != derived
                    {
                        return Err(DecodeError::CreationMismatch);
                    }
                    if token.destination != create.account {
                        return Err(DecodeError::DestinationMismatch);
                    }
                    Some(create.wallet)
                }
            };
            DecodedTransfer::Token {
                mint: token.mint,
                decimals: token.decimals,
                amount: token.amount,
                owner: token.authority,
                destination: token.destination,
                recipient,
            }
        }
    };

    // 5. The memo, if any, is short UTF-8.
    if let Some(memo) = parts.memo {
        if memo.len() > MAX_MEMO_LEN {
            return Err(DecodeError::MemoTooLong(memo.len()));
        }
        if std::str::from_utf8(memo).is_err() {
            return Err(DecodeError::MemoNotUtf8);
        }
    }

    Ok(DecodedPayment {
        fee_payer,
        recent_blockhash: raw.recent_blockhash,
        transfer,
        compute_unit_limit: parts.compute_unit_limit,
        compute_unit_price_micro_lamports: parts.compute_unit_price,
        creates_recipient_account: parts.create.is_some(),
        memo: parts.memo.map(<[u8]>::to_vec),
    })
}
