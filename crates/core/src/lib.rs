//! Shared vocabulary of ClawFirst.
//!
//! Every layer speaks these types: the server that agents talk to, the approval layer and the
//! separate signing service. They are deliberately small, validated at construction and free of
//! I/O, so that both sides of each trust boundary agree on what a payment is.
//!
//! - [`amount`]: strict parsing of `"2.5 USDC"` into integer base units; no floating point.
//! - [`address`], [`recipient`]: Solana addresses and payee-directory e-mail recipients.
//! - [`transfer`]: the one movement of value a payment performs.
//! - [`grant`]: the approval grant the signer demands before it signs.
//! - [`approval`]: human approvers' signed statements about one payment, which the signer
//!   demands above its floor.
//! - [`signer_proto`]: the line-delimited JSON protocol of `clawfirst-signer`.
//! - [`secret`]: secret bytes and strings that never print.
//!
//! # Security
//!
//! Nothing in this crate logs. Secret-bearing types redact themselves in `Debug`.

#![forbid(unsafe_code)]

pub mod address;
pub mod amount;
pub mod approval;
pub mod asset;
mod codec;
pub mod grant;
pub mod ids;
pub mod recipient;
pub mod secret;
pub mod signer_proto;
pub mod transfer;

pub use address::Address;
pub use amount::{Amount, AmountError};
pub use asset::Asset;
pub use ids::{AgentId, GrantId, KeyId, SessionId};
pub use transfer::Transfer;

/// Milliseconds since the Unix epoch, the clock every layer stamps with.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
