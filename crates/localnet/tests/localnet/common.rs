//! Shared fixtures: a ledger in a temporary directory, wallets with keys, paying.

use std::path::PathBuf;
use std::time::Duration;

use clawfirst_core::{Address, Asset, Transfer};
use clawfirst_localnet::{Localnet, LocalnetOptions};
use clawfirst_solana::{
    Balance, Ledger, LedgerError, PaymentPlan, assemble_transaction, build_message,
};
use solana_keypair::Keypair;
use solana_signer::Signer;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;
pub type BoxResult<T> = Result<T, Box<dyn std::error::Error>>;

pub const SOL: u64 = 1_000_000_000;

/// A ledger file in a fresh temporary directory, which lives as long as this value.
pub struct TempLedger {
    pub dir: tempfile::TempDir,
}

impl TempLedger {
    pub fn new() -> BoxResult<Self> {
        Ok(Self {
            dir: tempfile::tempdir()?,
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("localnet.sqlite")
    }

    /// Opens the ledger with manual slots, so tests decide when time passes.
    pub fn open(&self) -> BoxResult<Localnet> {
        let options = LocalnetOptions {
            slot_interval: Duration::ZERO,
            ..LocalnetOptions::default()
        };
        Ok(Localnet::open(&self.path(), options)?)
    }
}

/// A wallet whose key exists only in the test.
pub struct Wallet {
    keypair: Keypair,
    pub address: Address,
}

impl Wallet {
    pub fn new() -> Self {
        let keypair = Keypair::new();
        let address = Address::new(keypair.pubkey().to_bytes());
        Self { keypair, address }
    }

    /// Signs `message` and returns the wire bytes of the transaction.
    pub fn sign(&self, message: &[u8]) -> BoxResult<Vec<u8>> {
        let signature = self.keypair.sign_message(message);
        Ok(assemble_transaction(message, signature.as_array())?)
    }
}

pub fn transfer(
    ledger: &Localnet,
    asset: Asset,
    amount: u64,
    from: &Wallet,
    to: Address,
) -> Transfer {
    Transfer {
        asset,
        mint: ledger.mint(asset),
        amount,
        recipient: to,
        payer: from.address,
    }
}

/// Builds, signs and assembles `plan` under the ledger's latest blockhash.
pub async fn signed(ledger: &Localnet, from: &Wallet, plan: &PaymentPlan) -> BoxResult<Vec<u8>> {
    let blockhash = ledger.latest_blockhash().await?;
    from.sign(&build_message(plan, blockhash.hash)?)
}

/// Builds, signs and submits `plan`; the outer error is a test failure, the inner one the
/// ledger's answer.
pub async fn pay(
    ledger: &Localnet,
    from: &Wallet,
    plan: &PaymentPlan,
) -> BoxResult<Result<String, LedgerError>> {
    let wire = signed(ledger, from, plan).await?;
    Ok(ledger.submit(&wire).await)
}

pub async fn balance(ledger: &Localnet, owner: &Address, asset: Asset) -> BoxResult<u64> {
    let balances: Vec<Balance> = ledger.balances(owner).await?;
    let found = balances
        .into_iter()
        .find(|b| b.asset == asset)
        .ok_or("asset missing")?;
    Ok(found.base_units)
}
