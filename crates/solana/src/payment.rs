//! Building the message a wallet signs for one payment.
//!
//! The message is a legacy Solana message whose fee payer is the transfer's payer, with these
//! instructions in this order:
//!
//! 1. Compute Budget `SetComputeUnitLimit`;
//! 2. Compute Budget `SetComputeUnitPrice`;
//! 3. for SOL, a System `Transfer` of the amount in lamports from payer to recipient; for an SPL
//!    token, an Associated Token Account `CreateIdempotent` of the recipient's account (funded
//!    by the payer, a no-op when it exists) followed by SPL Token `TransferChecked` from the
//!    payer's associated token account to the recipient's, with the asset's decimals;
//! 4. optionally an SPL Memo (v2) carrying the memo text.
//!
//! [`crate::decode::decode_payment`] accepts every message built here and
//! [`crate::decode::check_matches`] matches it with the plan's transfer; a property test holds
//! the two sides together.

use clawfirst_core::Transfer;
use clawfirst_core::transfer::TransferError;
use solana_hash::Hash;
use solana_instruction::Instruction;
use solana_message::Message;
use spl_associated_token_account_interface::instruction::create_associated_token_account_idempotent;

use crate::programs::{MEMO_PROGRAM, associated_token_address, to_sdk};
use crate::wire::{self, MAX_MESSAGE_LEN, WireError};

/// Compute units a SOL payment is given by default. Measured on the localnet runtime: about
/// 450 units without a memo and 900 with a memo of the longest allowed size; the rest is
/// headroom for runtime cost changes.
pub const SOL_COMPUTE_UNIT_LIMIT: u32 = 5_000;

/// Compute units a token payment is given by default. Measured on the localnet runtime: about
/// 14,000 to 17,000 units when the recipient's account is created and the memo is of the
/// longest size. Creating the account searches for a program-address bump, and each extra
/// attempt costs about 1,500 units, so the headroom covers even rare unlucky searches. The
/// priority fee is charged on this limit, not on the units used.
pub const TOKEN_COMPUTE_UNIT_LIMIT: u32 = 50_000;

/// The highest compute-unit limit a transaction may request.
pub const MAX_COMPUTE_UNIT_LIMIT: u32 = 1_400_000;

/// The highest compute-unit price a payment may offer, in micro-lamports per unit (the same
/// ceiling the x402 `exact` scheme applies). At the maximum limit this is 7,000,000 lamports.
pub const MAX_COMPUTE_UNIT_PRICE_MICRO_LAMPORTS: u64 = 5_000_000;

/// The longest memo, in bytes of UTF-8.
pub const MAX_MEMO_LEN: usize = 256;

/// Everything needed to build a payment's message apart from the blockhash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentPlan {
    /// The value movement; its payer is also the fee payer.
    pub transfer: Transfer,
    /// The compute-unit limit requested.
    pub compute_unit_limit: u32,
    /// The priority fee offered, in micro-lamports per compute unit.
    pub compute_unit_price_micro_lamports: u64,
    /// Text recorded on chain with the payment, at most [`MAX_MEMO_LEN`] bytes.
    pub memo: Option<String>,
}

impl PaymentPlan {
    /// A plan with the default compute-unit limit for the transfer's asset, no priority fee and
    /// no memo.
    pub fn new(transfer: Transfer) -> Self {
        Self {
            compute_unit_limit: default_compute_unit_limit(&transfer),
            transfer,
            compute_unit_price_micro_lamports: 0,
            memo: None,
        }
    }
}

/// The default compute-unit limit for a transfer: [`SOL_COMPUTE_UNIT_LIMIT`] or
/// [`TOKEN_COMPUTE_UNIT_LIMIT`].
pub const fn default_compute_unit_limit(transfer: &Transfer) -> u32 {
    if transfer.asset.is_token() {
        TOKEN_COMPUTE_UNIT_LIMIT
    } else {
        SOL_COMPUTE_UNIT_LIMIT
    }
}

/// Why a plan cannot become a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The transfer breaks its own invariants (zero amount, or a mint that does not fit).
    #[error("transfer is invalid")]
    InvalidTransfer(#[source] TransferError),
    /// A compute-unit limit of zero or above [`MAX_COMPUTE_UNIT_LIMIT`].
    #[error("compute-unit limit {0} is outside 1..=1400000")]
    ComputeUnitLimit(u32),
    /// A compute-unit price above [`MAX_COMPUTE_UNIT_PRICE_MICRO_LAMPORTS`].
    #[error("compute-unit price {0} micro-lamports exceeds the maximum of 5000000")]
    ComputeUnitPrice(u64),
    /// A memo longer than [`MAX_MEMO_LEN`] bytes.
    #[error("memo of {0} bytes exceeds the maximum of 256")]
    MemoTooLong(usize),
    /// The SPL Token interface refused the instruction.
    #[error("token instruction could not be built")]
    TokenInstruction,
    /// The message would not fit in a transaction.
    #[error("message cannot be encoded")]
    Encoding(#[source] WireError),
}

/// Builds the serialized legacy message for `plan`, ready to be signed by the payer.
///
/// # Errors
/// A [`BuildError`] when the plan is invalid or out of the bounds the decoder accepts.
pub fn build_message(
    plan: &PaymentPlan,
    recent_blockhash: [u8; 32],
) -> Result<Vec<u8>, BuildError> {
    let transfer = &plan.transfer;
    transfer.validate().map_err(BuildError::InvalidTransfer)?;
    if plan.compute_unit_limit == 0 || plan.compute_unit_limit > MAX_COMPUTE_UNIT_LIMIT {
        return Err(BuildError::ComputeUnitLimit(plan.compute_unit_limit));
    }
    if plan.compute_unit_price_micro_lamports > MAX_COMPUTE_UNIT_PRICE_MICRO_LAMPORTS {
        return Err(BuildError::ComputeUnitPrice(
            plan.compute_unit_price_micro_lamports,
        ));
    }
    if let Some(memo) = &plan.memo
        && memo.len() > MAX_MEMO_LEN
    {
        return Err(BuildError::MemoTooLong(memo.len()));
    }

    let mut instructions = vec![
        compute_unit_limit_instruction(plan.compute_unit_limit),
        compute_unit_price_instruction(plan.compute_unit_price_micro_lamports),
    ];
    instructions.extend(value_instructions(transfer)?);
    if let Some(memo) = &plan.memo {
        instructions.push(Instruction {
            program_id: to_sdk(MEMO_PROGRAM),
            accounts: Vec::new(),
            data: memo.as_bytes().to_vec(),
        });
    }

    let payer = to_sdk(transfer.payer);
    let blockhash = Hash::new_from_array(recent_blockhash);
    let message = Message::new_with_blockhash(&instructions, Some(&payer), &blockhash);
    let bytes = wire::encode_legacy_message(&message).map_err(BuildError::Encoding)?;
    if bytes.len() > MAX_MESSAGE_LEN {
        return Err(BuildError::Encoding(WireError::TooLarge(bytes.len())));
    }
    Ok(bytes)
}

fn compute_unit_limit_instruction(units: u32) -> Instruction {
    solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_limit(units)
}

fn compute_unit_price_instruction(micro_lamports: u64) -> Instruction {
    solana_compute_budget_interface::ComputeBudgetInstruction::set_compute_unit_price(
        micro_lamports,
    )
}

/// The instructions that move the value: one for SOL, two for a token.
fn value_instructions(transfer: &Transfer) -> Result<Vec<Instruction>, BuildError> {
    let payer = to_sdk(transfer.payer);
    let recipient = to_sdk(transfer.recipient);
    let Some(mint) = transfer.mint else {
        let ix =
            solana_system_interface::instruction::transfer(&payer, &recipient, transfer.amount);
        return Ok(vec![ix]);
    };

    let token_program = spl_token_interface::ID;
    let sdk_mint = to_sdk(mint);
    let create =
        create_associated_token_account_idempotent(&payer, &recipient, &sdk_mint, &token_program);
    let source = to_sdk(associated_token_address(&transfer.payer, &mint));
    let destination = to_sdk(associated_token_address(&transfer.recipient, &mint));
    let transfer_checked = spl_token_interface::instruction::transfer_checked(
        &token_program,
        &source,
        &sdk_mint,
        &destination,
        &payer,
        &[],
        transfer.amount,
        transfer.asset.decimals(),
    )
    .map_err(|_| BuildError::TokenInstruction)?;
    Ok(vec![create, transfer_checked])
}
