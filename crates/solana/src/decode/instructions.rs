//! Recognising the allowed instructions by program, data layout and account count.
//!
//! Layouts (all integers little-endian):
//!
//! | program | instruction | data | accounts |
//! |---|---|---|---|
//! | Compute Budget | `SetComputeUnitLimit` | `02` + u32 | none |
//! | Compute Budget | `SetComputeUnitPrice` | `03` + u64 | none |
//! | System | `Transfer` | u32 `2` + u64 lamports | from, to |
//! | SPL Token | `TransferChecked` | `0c`, u64 amount, u8 decimals | source, mint, destination, |
//! | | | | authority |
//! | ATA | `Create` / `CreateIdempotent` | empty or `00` / `01` | funding, account, wallet, mint, |
//! | | | | system program, token program |
//! | SPL Memo v2 | memo | the memo bytes | none |

use clawfirst_core::Address;

use crate::programs::{
    ASSOCIATED_TOKEN_PROGRAM, COMPUTE_BUDGET_PROGRAM, MEMO_PROGRAM, SYSTEM_PROGRAM, TOKEN_PROGRAM,
};

use super::DecodeError;
use super::parse::RawInstruction;

const SET_COMPUTE_UNIT_LIMIT: u8 = 2;
const SET_COMPUTE_UNIT_PRICE: u8 = 3;
const SYSTEM_TRANSFER: u32 = 2;
const TOKEN_TRANSFER_CHECKED: u8 = 12;
const ATA_CREATE: u8 = 0;
const ATA_CREATE_IDEMPOTENT: u8 = 1;

/// A System transfer's accounts and amount.
#[derive(Clone, Copy, Debug)]
pub(super) struct SolTransfer {
    pub(super) from: Address,
    pub(super) to: Address,
    pub(super) lamports: u64,
}

/// A `TransferChecked`'s accounts and figures.
#[derive(Clone, Copy, Debug)]
pub(super) struct TokenTransfer {
    pub(super) source: Address,
    pub(super) mint: Address,
    pub(super) destination: Address,
    pub(super) authority: Address,
    pub(super) amount: u64,
    pub(super) decimals: u8,
}

/// An associated token account creation's accounts.
#[derive(Clone, Copy, Debug)]
pub(super) struct CreateAccount {
    pub(super) funding: Address,
    pub(super) account: Address,
    pub(super) wallet: Address,
    pub(super) mint: Address,
    pub(super) system_program: Address,
    pub(super) token_program: Address,
}

/// The recognised instructions of a message, each present at most once.
#[derive(Debug, Default)]
pub(super) struct Parts<'a> {
    pub(super) compute_unit_limit: Option<u32>,
    pub(super) compute_unit_price: Option<u64>,
    pub(super) sol: Option<SolTransfer>,
    pub(super) token: Option<TokenTransfer>,
    pub(super) create: Option<CreateAccount>,
    pub(super) memo: Option<&'a [u8]>,
}

/// Sets `slot` once; a second value is a duplicate instruction.
fn once<T>(slot: &mut Option<T>, value: T, kind: &'static str) -> Result<(), DecodeError> {
    if slot.is_some() {
        return Err(DecodeError::DuplicateInstruction(kind));
    }
    *slot = Some(value);
    Ok(())
}

/// The accounts of an instruction that must have exactly `N` of them.
fn accounts<const N: usize>(
    ix: &RawInstruction<'_>,
    kind: &'static str,
) -> Result<[Address; N], DecodeError> {
    <[Address; N]>::try_from(ix.accounts.as_slice())
        .map_err(|_| DecodeError::InstructionAccounts(kind))
}

fn le_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

fn le_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

pub(super) fn classify<'a>(instructions: &[RawInstruction<'a>]) -> Result<Parts<'a>, DecodeError> {
    let mut parts = Parts::default();
    for ix in instructions {
        match ix.program {
            p if p == COMPUTE_BUDGET_PROGRAM => compute_budget(ix, &mut parts)?,
            p if p == SYSTEM_PROGRAM => {
                let kind = "system transfer";
                let (tag, lamports) = ix.data.split_at_checked(4).unwrap_or_default();
                let (Some(SYSTEM_TRANSFER), Some(lamports)) = (le_u32(tag), le_u64(lamports))
                else {
                    return Err(DecodeError::UnsupportedInstruction("system"));
                };
                let [from, to] = accounts(ix, kind)?;
                once(&mut parts.sol, SolTransfer { from, to, lamports }, kind)?;
            }
            p if p == TOKEN_PROGRAM => {
                let kind = "token transfer";
                let transfer = match ix.data {
                    [TOKEN_TRANSFER_CHECKED, rest @ ..] if rest.len() == 9 => {
                        let (amount, decimals) = rest.split_at(8);
                        let amount =
                            le_u64(amount).ok_or(DecodeError::UnsupportedInstruction("token"))?;
                        let [source, mint, destination, authority] = accounts(ix, kind)?;
                        let decimals = decimals.first().copied().unwrap_or_default();
                        TokenTransfer {
                            source,
                            mint,
                            destination,
                            authority,
                            amount,
                            decimals,
                        }
                    }
                    _ => return Err(DecodeError::UnsupportedInstruction("token")),
                };
                once(&mut parts.token, transfer, kind)?;
            }
            p if p == ASSOCIATED_TOKEN_PROGRAM => {
                let kind = "token account creation";
                if !matches!(ix.data, [] | [ATA_CREATE] | [ATA_CREATE_IDEMPOTENT]) {
                    return Err(DecodeError::UnsupportedInstruction(
                        "associated token account",
                    ));
                }
                let [
                    funding,
                    account,
                    wallet,
                    mint,
                    system_program,
                    token_program,
                ] = accounts(ix, kind)?;
                let create = CreateAccount {
                    funding,
                    account,
                    wallet,
                    mint,
                    system_program,
                    token_program,
                };
                once(&mut parts.create, create, kind)?;
            }
            p if p == MEMO_PROGRAM => {
                accounts::<0>(ix, "memo")?;
                once(&mut parts.memo, ix.data, "memo")?;
            }
            other => return Err(DecodeError::UnknownProgram(other)),
        }
    }
    Ok(parts)
}

fn compute_budget<'a>(ix: &RawInstruction<'a>, parts: &mut Parts<'a>) -> Result<(), DecodeError> {
    let unsupported = DecodeError::UnsupportedInstruction("compute budget");
    let Some((&tag, value)) = ix.data.split_first() else {
        return Err(unsupported);
    };
    match tag {
        SET_COMPUTE_UNIT_LIMIT => {
            let units = le_u32(value).ok_or(unsupported)?;
            accounts::<0>(ix, "compute-unit limit")?;
            once(&mut parts.compute_unit_limit, units, "compute-unit limit")
        }
        SET_COMPUTE_UNIT_PRICE => {
            let price = le_u64(value).ok_or(unsupported)?;
            accounts::<0>(ix, "compute-unit price")?;
            once(&mut parts.compute_unit_price, price, "compute-unit price")
        }
        _ => Err(unsupported),
    }
}
