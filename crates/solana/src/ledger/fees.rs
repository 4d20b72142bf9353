//! What a payment costs its payer beyond the amount, in integer lamports.
//!
//! Solana charges a base fee per signature, plus a priority fee of the compute-unit price times
//! the requested compute-unit limit, rounded up to whole lamports. A token payment to a wallet
//! without a token account for the mint also pays the new account's rent-exempt deposit.

use serde::{Deserialize, Serialize};

use crate::payment::PaymentPlan;

/// Micro-lamports in a lamport.
const MICRO_LAMPORTS_PER_LAMPORT: u128 = 1_000_000;

/// A payment message carries exactly one signature.
const SIGNATURES_PER_PAYMENT: u64 = 1;

/// The network's current charges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeSchedule {
    /// The base fee per signature.
    pub lamports_per_signature: u64,
    /// The rent-exempt deposit of a 165-byte SPL token account.
    pub token_account_rent_lamports: u64,
}

/// The cost of a payment to its payer, apart from the amount itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeEstimate {
    /// The signature fee.
    pub base_fee_lamports: u64,
    /// `ceil(compute_unit_limit * compute_unit_price / 1_000_000)`.
    pub priority_fee_lamports: u64,
    /// The deposit for creating the recipient's token account; zero for SOL or when it exists.
    pub rent_lamports: u64,
    /// The sum of the three.
    pub total_lamports: u64,
}

/// Estimates what `plan` costs the payer in lamports beyond the amount.
///
/// The estimate is exact for the messages [`build_message`](crate::build_message) produces:
/// the runtime charges the requested limit, not the units consumed. Sums saturate at
/// `u64::MAX` rather than wrap.
pub fn estimate_fee(
    plan: &PaymentPlan,
    schedule: &FeeSchedule,
    recipient_account_exists: bool,
) -> FeeEstimate {
    let base_fee_lamports = schedule
        .lamports_per_signature
        .saturating_mul(SIGNATURES_PER_PAYMENT);
    let priority_fee_lamports = priority_fee(
        plan.compute_unit_limit,
        plan.compute_unit_price_micro_lamports,
    );
    let rent_lamports = if plan.transfer.asset.is_token() && !recipient_account_exists {
        schedule.token_account_rent_lamports
    } else {
        0
    };
    let total_lamports = base_fee_lamports
        .saturating_add(priority_fee_lamports)
        .saturating_add(rent_lamports);
    FeeEstimate {
        base_fee_lamports,
        priority_fee_lamports,
        rent_lamports,
        total_lamports,
    }
}

/// The priority fee in lamports, rounded up.
pub fn priority_fee(compute_unit_limit: u32, compute_unit_price_micro_lamports: u64) -> u64 {
    let micro_lamports =
        u128::from(compute_unit_limit) * u128::from(compute_unit_price_micro_lamports);
    let lamports = micro_lamports.div_ceil(MICRO_LAMPORTS_PER_LAMPORT);
    u64::try_from(lamports).unwrap_or(u64::MAX)
}
