//! Solana payment transactions for ClawFirst: building them, decoding them strictly, and the
//! ledger interface every network implements.
//!
//! Both sides of the signing boundary link this crate. The server builds the exact message a
//! wallet signs from a [`clawfirst_core::Transfer`]; the separate signer decodes the same bytes,
//! which it must treat as hostile, and checks that they perform that transfer and nothing else
//! before it signs. The crate therefore depends only on the light Solana interface crates
//! (message, instruction and address types, the System, Compute Budget, SPL Token and
//! Associated Token Account interfaces), never on a runtime, an RPC client or a key backend.
//!
//! # Architecture
//!
//! - [`payment`]: [`PaymentPlan`] and [`build_message`], the legacy message for one transfer:
//!   compute-unit limit, compute-unit price, the value movement (a System transfer, or for an SPL
//!   token an idempotent creation of the recipient's associated token account followed by
//!   `TransferChecked`), and an optional SPL Memo.
//! - [`decode`]: [`decode_payment`] parses untrusted message bytes (legacy, or v0 without
//!   address-table lookups) and accepts only that shape; [`check_matches`] compares the result
//!   with the transfer a grant approved.
//! - [`wire`]: the wire format shared by both: compact lengths, message encoding, assembling a
//!   signed transaction and base58 signature text.
//! - [`ledger`]: the [`Ledger`] trait (localnet now, JSON-RPC networks later), its value types,
//!   [`associated_token_address`] and [`estimate_fee`].
//! - [`programs`]: the program ids involved and conversions to the SDK address type.
//!
//! # Security
//!
//! - The decoder is an allowlist: every program, instruction, account and byte must be
//!   accounted for, with exactly one signer (the fee payer, who is also the source of funds).
//!   Anything else is refused with an error naming what was found. It never panics, whatever the
//!   input; property tests and a fuzz target (`/fuzz`) exercise that.
//! - Associated token accounts are derived here from owner and mint, never taken on trust from
//!   the message.
//! - No floating point: amounts, fees and compute-unit prices are integers throughout.
//! - Nothing in this crate logs, and it never handles key material: signatures arrive as bytes
//!   produced elsewhere.

#![forbid(unsafe_code)]

pub mod decode;
pub mod ledger;
pub mod payment;
pub mod programs;
pub mod wire;

pub use decode::{DecodeError, DecodedPayment, DecodedTransfer, MismatchError};
pub use decode::{check_matches, decode_payment};
pub use ledger::{
    Balance, Commitment, FeeEstimate, FeeSchedule, Ledger, LedgerError, Network, RecentBlockhash,
    TxStatus, associated_token_address, estimate_fee, known_mint,
};
pub use payment::{BuildError, PaymentPlan, build_message};
pub use wire::{WireError, assemble_transaction, signature_text, transaction_signature};
