//! The state shared by the [`crate::Localnet`] handle and its ticker thread, and the
//! operations that change it: advancing a slot, funding a wallet, landing a transaction.
//!
//! Every change is applied in memory and then committed to SQLite while the database lock is
//! still held, so the database sees changes in the order the runtime made them. If a commit
//! fails, memory is ahead of disk: the state is marked poisoned and refuses further changes
//! until it is reopened from disk.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use clawfirst_core::{Address, Asset};
use clawfirst_solana::programs::associated_token_address;
use solana_account::Account;
use solana_program_pack::Pack;
use spl_token_interface::state::{Account as TokenAccount, Mint};

use crate::LocalnetOptions;
use crate::chain::Chain;
use crate::errors::LocalnetError;
use crate::fixtures::{self, localnet_mint};
use crate::store::Store;

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) chain: Mutex<Chain>,
    pub(crate) store: Mutex<Store>,
    /// A copy of the chain's current slot, readable without the runtime lock.
    slot: AtomicU64,
    poisoned: AtomicBool,
    pub(crate) options: LocalnetOptions,
    usdc_mint: Address,
    bonk_mint: Address,
}

/// Locks a mutex, reporting poisoning as an error instead of panicking.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>, LocalnetError> {
    mutex.lock().map_err(|_| LocalnetError::LockPoisoned)
}

impl Shared {
    pub(crate) fn open(path: &Path, options: LocalnetOptions) -> Result<Self, LocalnetError> {
        let mut store = Store::open(path, options.durability)?;
        let usdc_mint = localnet_mint(Asset::Usdc).ok_or(LocalnetError::CorruptState("mint"))?;
        let bonk_mint = localnet_mint(Asset::Bonk).ok_or(LocalnetError::CorruptState("mint"))?;

        let chain = match store.load()? {
            Some(snapshot) => {
                let chain = Chain::restore(snapshot)?;
                tracing::info!(slot = chain.slot(), "localnet resumed");
                chain
            }
            None => {
                let mut chain = Chain::genesis();
                // The mints first, then the first slot: the slot row marks genesis complete,
                // so a crash in between repeats genesis instead of losing the mints.
                let rent = chain.rent_exempt_minimum(Mint::LEN);
                let mut mints = Vec::new();
                for (mint, asset) in [(usdc_mint, Asset::Usdc), (bonk_mint, Asset::Bonk)] {
                    let account = fixtures::mint_account(asset.decimals(), 0, rent);
                    chain.set_account(&mint, account.clone())?;
                    mints.push((mint.to_bytes(), Some(account)));
                }
                store.write_accounts(&mints)?;
                let (slot, hash) = chain.latest();
                store.record_slot(slot, &hash, slot)?;
                tracing::info!(
                    slot,
                    usdc.mint = %usdc_mint,
                    bonk.mint = %bonk_mint,
                    "localnet created"
                );
                chain
            }
        };

        Ok(Self {
            slot: AtomicU64::new(chain.slot()),
            chain: Mutex::new(chain),
            store: Mutex::new(store),
            poisoned: AtomicBool::new(false),
            options,
            usdc_mint,
            bonk_mint,
        })
    }

    pub(crate) fn slot(&self) -> u64 {
        self.slot.load(Ordering::Acquire)
    }

    pub(crate) fn mint(&self, asset: Asset) -> Option<Address> {
        match asset {
            Asset::Sol => None,
            Asset::Usdc => Some(self.usdc_mint),
            Asset::Bonk => Some(self.bonk_mint),
        }
    }

    pub(crate) fn ensure_writable(&self) -> Result<(), LocalnetError> {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(LocalnetError::Poisoned);
        }
        Ok(())
    }

    /// Marks memory as ahead of disk after a failed commit.
    pub(crate) fn poison(&self, cause: &LocalnetError) {
        self.poisoned.store(true, Ordering::Release);
        tracing::error!(error = %cause, "localnet commit failed; refusing further changes");
    }

    /// Advances one slot and records its blockhash.
    pub(crate) fn tick(&self) -> Result<(), LocalnetError> {
        self.ensure_writable()?;
        let mut chain = lock(&self.chain)?;
        let (slot, hash, oldest_kept) = chain.advance();
        self.slot.store(slot, Ordering::Release);
        let mut store = lock(&self.store)?;
        drop(chain);
        store
            .record_slot(slot, &hash, oldest_kept)
            .inspect_err(|e| self.poison(e))?;
        tracing::trace!(slot, "slot advanced");
        Ok(())
    }

    /// See [`crate::Localnet::fund`].
    pub(crate) fn fund(
        &self,
        owner: &Address,
        lamports: u64,
        usdc_units: u64,
        bonk_units: u64,
    ) -> Result<(), LocalnetError> {
        self.ensure_writable()?;
        let mut chain = lock(&self.chain)?;

        // 1. Work out every account to write before writing any.
        let mut changes: Vec<(Address, Account)> = Vec::new();
        let current = chain.account(owner);
        if current.as_ref().map_or(0, |a| a.lamports) < lamports {
            changes.push((*owner, fixtures::with_lamports(current, lamports)));
        }
        let rent = chain.rent_exempt_minimum(TokenAccount::LEN);
        for (mint, units) in [(self.usdc_mint, usdc_units), (self.bonk_mint, bonk_units)] {
            let ata = associated_token_address(owner, &mint);
            let (account, grown) = match chain.account(&ata) {
                None => (fixtures::token_account(mint, *owner, units, rent), units),
                Some(existing) => match fixtures::with_token_amount(&existing, units) {
                    Some(raised) => raised,
                    None if fixtures::token_state(&existing).is_some() => continue,
                    None => return Err(LocalnetError::CorruptState("token account")),
                },
            };
            if grown == 0 {
                continue;
            }
            let mint_account = chain
                .account(&mint)
                .ok_or(LocalnetError::CorruptState("mint"))?;
            changes.push((ata, account));
            changes.push((mint, fixtures::with_supply_grown(&mint_account, grown)?));
        }
        if changes.is_empty() {
            return Ok(());
        }

        // 2. Apply them, then commit them in one database transaction.
        for (address, account) in &changes {
            chain.set_account(address, account.clone())?;
        }
        let rows: Vec<_> = changes
            .into_iter()
            .map(|(a, acc)| (a.to_bytes(), Some(acc)))
            .collect();
        let mut store = lock(&self.store)?;
        drop(chain);
        store
            .write_accounts(&rows)
            .inspect_err(|e| self.poison(e))?;
        tracing::info!(wallet = %owner, lamports, usdc_units, bonk_units, "localnet wallet funded");
        Ok(())
    }

    /// The token balance of `owner`'s associated token account for `mint`; zero when the
    /// account is absent or holds no token state.
    pub(crate) fn token_balance(chain: &Chain, owner: &Address, mint: &Address) -> u64 {
        let ata = associated_token_address(owner, mint);
        chain
            .account(&ata)
            .as_ref()
            .and_then(fixtures::token_state)
            .map_or(0, |s| s.amount)
    }
}
