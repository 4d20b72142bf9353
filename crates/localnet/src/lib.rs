//! The embedded `localnet` ledger: a real Solana runtime in the ClawFirst process.
//!
//! [`Localnet`] implements [`clawfirst_solana::Ledger`] on top of LiteSVM with the real SPL
//! Token, Associated Token Account and Memo programs, signature verification and the blockhash
//! check on. It is what `clawfirst up` runs by default, and what the integration tests pay
//! against: transactions are built, signed and submitted exactly as on devnet.
//!
//! # Architecture
//!
//! - `chain`: the LiteSVM instance, the current slot and a 150-slot window of recent
//!   blockhashes ([`BLOCKHASH_WINDOW`]).
//! - `store`: a SQLite file (WAL) holding the blockhash window, every account a landed
//!   transaction or a fixture wrote, and every landed transaction's signature, slot and
//!   outcome. [`Localnet::open`] on the same path replays it into a fresh runtime.
//! - a ticker thread advancing one slot every [`LocalnetOptions::slot_interval`], with a new
//!   blockhash each slot; it stops when the [`Localnet`] is dropped.
//! - `fixtures`: the USDC and BONK mints and the funding fixture, written as account state.
//!
//! # Mints
//!
//! The mints are created at the first start, at program-derived addresses of the seeds
//! `b"mint"` and the asset symbol under [`MINT_NAMESPACE`] (where no program is deployed), so
//! they are the same on every machine and no private key exists for them:
//!
//! | asset | decimals | mint |
//! |---|---|---|
//! | USDC | 6 | `EcwuxBxWFDR12Apj8Tg8FbKeD3zAjzMeeyBU5sFubXVM` ([`USDC_MINT_TEXT`]) |
//! | BONK | 5 | `CHe4ARuw2UVregYsdaF9Z39gFyqdTTV3wPPSQLkkNY2p` ([`BONK_MINT_TEXT`]) |
//!
//! # Commitment
//!
//! Commitment follows slots: a transaction is `processed` in the slot it landed in,
//! `confirmed` [`LocalnetOptions::confirmation_depth_slots`] slots later and `finalized`
//! [`LocalnetOptions::finality_depth_slots`] slots later.
//!
//! # Concurrency
//!
//! LiteSVM is not `Sync`, so the runtime sits behind a mutex, held only while one transaction
//! executes or one slot advances (well under a millisecond). [`Ledger::submit`] runs on
//! tokio's blocking pool because it also commits to SQLite (an `fsync` with the default
//! [`Durability`]), or inline when called outside a tokio runtime; every other method works
//! inline, being a memory read or one indexed SQLite lookup. The lock order is always
//! runtime, then database. Transactions execute one at a time, as in a single-threaded
//! leader; two submissions of the same signature cannot both execute.
//!
//! # Security
//!
//! - No private key lives in this crate. The mints are program-derived addresses (no key can
//!   exist for them) with no mint or freeze authority; balances come from
//!   [`Localnet::fund`], which writes account state directly. LiteSVM's internal airdrop key
//!   is never funded.
//! - Submitting a transaction that already landed does not execute it again: the recorded
//!   outcome is returned, across restarts too.
//! - Logs carry signatures, slots and outcomes; never transaction bytes above trace.
//!
//! [`Ledger::submit`]: clawfirst_solana::Ledger::submit

#![forbid(unsafe_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clawfirst_core::Address;

mod chain;
mod errors;
mod fixtures;
mod ledger;
mod shared;
mod store;
mod ticker;

pub use chain::BLOCKHASH_WINDOW;
pub use errors::LocalnetError;
pub use fixtures::{BONK_MINT_TEXT, MINT_NAMESPACE, USDC_MINT_TEXT, localnet_mint};
pub use store::Durability;

use shared::Shared;
use ticker::Ticker;

/// How the localnet keeps time and durability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LocalnetOptions {
    /// The length of a slot. Default 100 ms. Zero disables the background tick; slots then
    /// advance only through [`Localnet::advance_slots`] (for deterministic tests).
    pub slot_interval: Duration,
    /// Slots after landing at which a transaction is `finalized`. Default 32.
    pub finality_depth_slots: u64,
    /// Slots after landing at which a transaction is `confirmed`. Default 1; at most
    /// `finality_depth_slots`.
    pub confirmation_depth_slots: u64,
    /// How hard commits are pushed to disk. Default [`Durability::PowerLoss`].
    pub durability: Durability,
}

impl Default for LocalnetOptions {
    fn default() -> Self {
        Self {
            slot_interval: Duration::from_millis(100),
            finality_depth_slots: 32,
            confirmation_depth_slots: 1,
            durability: Durability::default(),
        }
    }
}

/// The embedded ledger. Dropping it stops its slot ticker; its state stays in its file.
#[derive(Debug)]
pub struct Localnet {
    shared: Arc<Shared>,
    /// Dropping it stops the ticker thread and waits for it to end.
    _ticker: Option<Ticker>,
}

impl Localnet {
    /// Opens the ledger stored at `path`, creating it (with its USDC and BONK mints) when the
    /// file is new, and starts the slot ticker.
    ///
    /// # Errors
    /// A [`LocalnetError`] when the options are inconsistent, the database cannot be opened or
    /// holds state that cannot be restored, or the ticker cannot start.
    pub fn open(path: &Path, options: LocalnetOptions) -> Result<Self, LocalnetError> {
        if options.confirmation_depth_slots > options.finality_depth_slots {
            return Err(LocalnetError::InvalidOptions(
                "confirmation depth exceeds finality depth",
            ));
        }
        let shared = Arc::new(Shared::open(path, options)?);
        let ticker = if options.slot_interval.is_zero() {
            None
        } else {
            Some(Ticker::start(Arc::clone(&shared), options.slot_interval)?)
        };
        Ok(Self {
            shared,
            _ticker: ticker,
        })
    }

    /// Development fixture: raises `owner`'s balances to at least the given amounts by writing
    /// account state directly (SOL balance; USDC and BONK associated token accounts, created
    /// when absent; each mint's supply grows by what was added).
    ///
    /// Balances already at or above an amount are left alone, so calling this at every start
    /// for the demo wallet tops it up only when it is new or has spent below the amounts. It
    /// exists for development and tests; nothing on a real network can do this.
    ///
    /// # Errors
    /// A [`LocalnetError`] when the state cannot be written or persisted.
    pub fn fund(
        &self,
        owner: &Address,
        lamports: u64,
        usdc_units: u64,
        bonk_units: u64,
    ) -> Result<(), LocalnetError> {
        self.shared.fund(owner, lamports, usdc_units, bonk_units)
    }

    /// Advances `slots` slots at once, each with a new blockhash, as the ticker would.
    ///
    /// # Errors
    /// A [`LocalnetError`] when a slot cannot be persisted.
    pub fn advance_slots(&self, slots: u64) -> Result<(), LocalnetError> {
        for _ in 0..slots {
            self.shared.tick()?;
        }
        Ok(())
    }

    /// The current slot.
    pub fn slot(&self) -> u64 {
        self.shared.slot()
    }
}
