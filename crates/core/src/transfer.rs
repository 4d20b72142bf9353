//! The description of one payment: the facts a grant binds and the signer checks a transaction
//! against.

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::amount::Amount;
use crate::asset::Asset;

/// Exactly one movement of value from the payer's wallet to a recipient.
///
/// For SOL the recipient is credited directly. For an SPL token the payment moves `amount`
/// from the payer's associated token account for `mint` to the recipient's associated token
/// account, which the transaction may create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    /// What is paid.
    pub asset: Asset,
    /// The SPL mint of a token asset; `None` for SOL.
    pub mint: Option<Address>,
    /// The quantity in base units; never zero.
    pub amount: u64,
    /// The wallet that receives the payment (the owner, not a token account).
    pub recipient: Address,
    /// The wallet that pays: the signer's key for this agent, also the fee payer.
    pub payer: Address,
}

/// A transfer whose asset and mint disagree, or whose amount is zero.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// A token asset without a mint, or SOL with one.
    #[error("{0} transfer has an inconsistent mint")]
    MintMismatch(Asset),
    /// A zero amount.
    #[error("transfer amount is zero")]
    ZeroAmount,
}

impl Transfer {
    /// Builds a transfer of `amount` and checks that the mint fits the asset.
    ///
    /// # Errors
    /// [`TransferError::MintMismatch`] when a token has no mint or SOL has one.
    pub fn new(
        amount: Amount,
        mint: Option<Address>,
        recipient: Address,
        payer: Address,
    ) -> Result<Self, TransferError> {
        let transfer = Self {
            asset: amount.asset(),
            mint,
            amount: amount.base_units(),
            recipient,
            payer,
        };
        transfer.validate()?;
        Ok(transfer)
    }

    /// Checks the invariants that every constructor and decoder must uphold.
    ///
    /// # Errors
    /// A [`TransferError`] naming the broken invariant.
    pub fn validate(&self) -> Result<(), TransferError> {
        if self.amount == 0 {
            return Err(TransferError::ZeroAmount);
        }
        if self.asset.is_token() != self.mint.is_some() {
            return Err(TransferError::MintMismatch(self.asset));
        }
        Ok(())
    }

    /// The amount as a typed value.
    ///
    /// # Errors
    /// Never for a validated transfer; [`crate::amount::AmountError::Zero`] otherwise.
    pub fn typed_amount(&self) -> Result<Amount, crate::amount::AmountError> {
        Amount::from_base_units(self.asset, self.amount)
    }
}
