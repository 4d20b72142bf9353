//! The in-memory ledger: a LiteSVM instance, the current slot and the window of recent
//! blockhashes.
//!
//! LiteSVM knows a single "latest" blockhash and accepts only transactions that carry it. The
//! localnet keeps the last [`BLOCKHASH_WINDOW`] slots' blockhashes itself, as a validator
//! does, refuses a transaction whose blockhash is not among them, and otherwise presents that
//! transaction's blockhash to LiteSVM as the latest for the duration of the call. LiteSVM's
//! own check therefore stays on and agrees with the window.

use std::collections::VecDeque;

use clawfirst_core::Address;
use clawfirst_solana::LedgerError;
use litesvm::LiteSVM;
use solana_account::Account;
use solana_hash::Hash;
use solana_transaction::versioned::VersionedTransaction;

use crate::errors::{Failure, LocalnetError, classify, landed};
use crate::store::Snapshot;

/// How many slots a blockhash stays usable after the slot that produced it (Solana's
/// `MAX_PROCESSING_AGE`).
pub const BLOCKHASH_WINDOW: u64 = 150;

/// The owner of sysvar accounts (`Sysvar1111111111111111111111111111111111111`), which a
/// fresh runtime recreates and which are never stored.
const SYSVAR_OWNER: [u8; 32] = [
    6, 167, 213, 23, 24, 117, 247, 41, 199, 61, 147, 64, 143, 33, 97, 32, 6, 126, 216, 140, 118,
    224, 140, 40, 127, 193, 148, 96, 0, 0, 0, 0,
];

/// A transaction that made it into a slot, successful or not.
#[derive(Debug)]
pub(crate) struct Landed {
    pub(crate) slot: u64,
    pub(crate) failure: Option<Failure>,
    /// The state after execution of every account the transaction could write; `None` for an
    /// account that no longer exists.
    pub(crate) accounts: Vec<([u8; 32], Option<Account>)>,
}

pub(crate) struct Chain {
    svm: LiteSVM,
    /// Oldest first; the back is the current slot and the runtime's latest blockhash.
    window: VecDeque<(u64, [u8; 32])>,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("slot", &self.slot())
            .finish_non_exhaustive()
    }
}

/// A runtime with the builtins, sysvars and real SPL programs, signature verification and the
/// blockhash check on. LiteSVM's internal airdrop account is deliberately left unfunded: no
/// key in this process can mint SOL.
fn fresh_runtime() -> LiteSVM {
    LiteSVM::default()
        .with_mainnet_features()
        .with_builtins()
        .with_sysvars()
        .with_feature_accounts()
        .with_default_programs()
        .with_sigverify(true)
        .with_blockhash_check(true)
}

impl Chain {
    /// A new ledger at LiteSVM's default starting slot.
    pub(crate) fn genesis() -> Self {
        let mut svm = fresh_runtime();
        let slot = litesvm::MAINNET_DEFAULT_SLOT;
        svm.warp_to_slot(slot);
        let hash = svm.latest_blockhash().to_bytes();
        Self {
            svm,
            window: VecDeque::from([(slot, hash)]),
        }
    }

    /// The ledger a snapshot describes.
    pub(crate) fn restore(snapshot: Snapshot) -> Result<Self, LocalnetError> {
        let mut svm = fresh_runtime();
        let &(slot, hash) = snapshot
            .window
            .last()
            .ok_or(LocalnetError::CorruptState("slot"))?;
        svm.warp_to_slot(slot);
        svm.set_latest_blockhash(Hash::new_from_array(hash));
        for (address, account) in snapshot.accounts {
            let address = solana_address::Address::new_from_array(address);
            svm.set_account(address, account)
                .map_err(LocalnetError::Runtime)?;
        }
        Ok(Self {
            svm,
            window: snapshot.window.into(),
        })
    }

    pub(crate) fn slot(&self) -> u64 {
        self.window.back().map_or(0, |&(slot, _)| slot)
    }

    /// The newest blockhash and the slot that produced it.
    pub(crate) fn latest(&self) -> (u64, [u8; 32]) {
        self.window.back().copied().unwrap_or_default()
    }

    pub(crate) fn is_recent(&self, hash: &[u8; 32]) -> bool {
        self.window.iter().any(|(_, h)| h == hash)
    }

    /// Moves to the next slot with a new blockhash; returns the slot, its blockhash and the
    /// oldest slot whose blockhash is still usable.
    pub(crate) fn advance(&mut self) -> (u64, [u8; 32], u64) {
        let slot = self.slot().saturating_add(1);
        self.svm.expire_blockhash();
        self.svm.warp_to_slot(slot);
        let hash = self.svm.latest_blockhash().to_bytes();
        self.window.push_back((slot, hash));
        let oldest_kept = slot.saturating_sub(BLOCKHASH_WINDOW);
        while self.window.front().is_some_and(|&(s, _)| s < oldest_kept) {
            self.window.pop_front();
        }
        (slot, hash, oldest_kept)
    }

    pub(crate) fn account(&self, address: &Address) -> Option<Account> {
        self.svm
            .get_account(&solana_address::Address::new_from_array(address.to_bytes()))
    }

    /// Writes an account directly (fixtures only).
    pub(crate) fn set_account(
        &mut self,
        address: &Address,
        account: Account,
    ) -> Result<(), LocalnetError> {
        let address = solana_address::Address::new_from_array(address.to_bytes());
        self.svm
            .set_account(address, account)
            .map_err(LocalnetError::Runtime)
    }

    pub(crate) fn lamports_per_signature(&self) -> u64 {
        self.svm.get_fee_structure().lamports_per_signature
    }

    pub(crate) fn rent_exempt_minimum(&self, data_len: usize) -> u64 {
        self.svm.minimum_balance_for_rent_exemption(data_len)
    }

    /// Runs a transaction in the current slot.
    ///
    /// # Errors
    /// A [`LedgerError`] for a transaction that did not land (nothing changed).
    pub(crate) fn execute(&mut self, tx: VersionedTransaction) -> Result<Landed, LedgerError> {
        let blockhash = tx.message.recent_blockhash().to_bytes();
        if !self.is_recent(&blockhash) {
            return Err(LedgerError::BlockhashExpired);
        }
        let message = tx.message.clone();
        let writable = writable_keys(&message);

        let latest = self.svm.latest_blockhash();
        self.svm
            .set_latest_blockhash(Hash::new_from_array(blockhash));
        let result = self.svm.send_transaction(tx);
        self.svm.set_latest_blockhash(latest);

        let failure = match result {
            Ok(_) => None,
            Err(failed) if landed(&failed.err) => Some(classify(&failed.err, &message)),
            Err(failed) => return Err(classify(&failed.err, &message).to_ledger_error()),
        };
        let accounts = writable
            .into_iter()
            .filter_map(|key| {
                let account = self.svm.get_account(&key);
                let stored = account.filter(|a| a.lamports > 0);
                let skip = stored
                    .as_ref()
                    .is_some_and(|a| a.executable || a.owner.to_bytes() == SYSVAR_OWNER);
                (!skip).then_some((key.to_bytes(), stored))
            })
            .collect();
        Ok(Landed {
            slot: self.slot(),
            failure,
            accounts,
        })
    }
}

/// The static keys the header marks writable: writable signers, then writable non-signers.
fn writable_keys(message: &solana_transaction::VersionedMessage) -> Vec<solana_address::Address> {
    let header = message.header();
    let keys = message.static_account_keys();
    let signers = usize::from(header.num_required_signatures);
    let writable_signers = signers.saturating_sub(usize::from(header.num_readonly_signed_accounts));
    let writable_end = keys
        .len()
        .saturating_sub(usize::from(header.num_readonly_unsigned_accounts));
    keys.iter()
        .enumerate()
        .filter(|&(i, _)| i < writable_signers || (i >= signers && i < writable_end))
        .map(|(_, key)| *key)
        .collect()
}
