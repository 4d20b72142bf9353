//! Comparing a decoded message with the transfer a grant approved.

use clawfirst_core::transfer::TransferError;
use clawfirst_core::{Address, Asset, Transfer};

use crate::programs::associated_token_address;

use super::{DecodedPayment, DecodedTransfer};

/// How a decoded message differs from the approved transfer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MismatchError {
    /// The approved transfer itself breaks its invariants.
    #[error("approved transfer is invalid")]
    InvalidTransfer(#[source] TransferError),
    /// SOL approved and a token moved, or the reverse.
    #[error("message moves a different asset than the approved {expected}")]
    Asset {
        /// The approved asset.
        expected: Asset,
    },
    /// A token of another mint.
    #[error("message moves a token of mint {found}, not the approved mint")]
    Mint {
        /// The mint in the message.
        found: Address,
    },
    /// Decimals other than the asset's.
    #[error("message asserts {found} decimals, the approved asset has {expected}")]
    Decimals {
        /// The asset's decimals.
        expected: u8,
        /// The decimals in the message.
        found: u8,
    },
    /// Another amount.
    #[error("message moves {found} base units, {expected} were approved")]
    Amount {
        /// The approved amount.
        expected: u64,
        /// The amount in the message.
        found: u64,
    },
    /// Another recipient, or a token account that is not the recipient's.
    #[error("message pays {found}, not the approved recipient")]
    Recipient {
        /// The credited account in the message (a wallet, or a token account).
        found: Address,
    },
    /// Another payer.
    #[error("message is paid by {found}, not the approved payer")]
    Payer {
        /// The fee payer in the message.
        found: Address,
    },
}

/// Checks that `decoded` performs exactly `expected`: same asset (SOL or the same mint, with
/// the asset's decimals), same amount, same recipient, and the payer as fee payer and source.
///
/// For a token, the credited account must be the recipient's associated token account for the
/// mint, derived here; when the message creates that account, the wallet it names must also be
/// the recipient.
///
/// # Errors
/// A [`MismatchError`] naming the first difference.
pub fn check_matches(decoded: &DecodedPayment, expected: &Transfer) -> Result<(), MismatchError> {
    expected
        .validate()
        .map_err(MismatchError::InvalidTransfer)?;
    if decoded.fee_payer != expected.payer {
        return Err(MismatchError::Payer {
            found: decoded.fee_payer,
        });
    }

    match (decoded.transfer, expected.mint) {
        (DecodedTransfer::Sol { from, to, lamports }, None) => {
            if from != expected.payer {
                return Err(MismatchError::Payer { found: from });
            }
            if lamports != expected.amount {
                return Err(MismatchError::Amount {
                    expected: expected.amount,
                    found: lamports,
                });
            }
            if to != expected.recipient {
                return Err(MismatchError::Recipient { found: to });
            }
            Ok(())
        }
        (
            DecodedTransfer::Token {
                mint,
                decimals,
                amount,
                owner,
                destination,
                recipient,
            },
            Some(m),
        ) => {
            if mint != m {
                return Err(MismatchError::Mint { found: mint });
            }
            let expected_decimals = expected.asset.decimals();
            if decimals != expected_decimals {
                return Err(MismatchError::Decimals {
                    expected: expected_decimals,
                    found: decimals,
                });
            }
            if owner != expected.payer {
                return Err(MismatchError::Payer { found: owner });
            }
            if amount != expected.amount {
                return Err(MismatchError::Amount {
                    expected: expected.amount,
                    found: amount,
                });
            }
            if let Some(wallet) = recipient
                && wallet != expected.recipient
            {
                return Err(MismatchError::Recipient { found: wallet });
            }
            if destination != associated_token_address(&expected.recipient, &m) {
                return Err(MismatchError::Recipient { found: destination });
            }
            Ok(())
        }
        _ => Err(MismatchError::Asset {
            expected: expected.asset,
        }),
    }
}
