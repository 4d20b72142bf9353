//! The interface every Solana network implements for ClawFirst.
//!
//! The embedded localnet (`clawfirst-localnet`) implements [`Ledger`] now; a JSON-RPC client
//! for devnet and mainnet-beta will implement it later. The server only ever holds an
//! `Arc<dyn Ledger>`, so payment sessions do not know which network they run on beyond
//! [`Ledger::network`].
//!
//! Submission is by signed wire bytes and identification by base58 signature text, exactly
//! as on the real network, so that a stored signed transaction can be re-checked after a
//! restart instead of being signed again.

use std::error::Error as StdError;
use std::fmt;
use std::str::FromStr;

use async_trait::async_trait;
use clawfirst_core::{Address, Asset};
use serde::{Deserialize, Serialize};

mod fees;
#[cfg(test)]
mod tests;

pub use crate::programs::associated_token_address;
pub use fees::{FeeEstimate, FeeSchedule, estimate_fee};

/// A Solana cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Network {
    /// The embedded, in-process ledger.
    Localnet,
    /// The public development cluster.
    Devnet,
    /// The production cluster.
    MainnetBeta,
}

impl Network {
    /// The cluster's conventional name.
    pub const fn name(self) -> &'static str {
        match self {
            Network::Localnet => "localnet",
            Network::Devnet => "devnet",
            Network::MainnetBeta => "mainnet-beta",
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text was not `localnet`, `devnet` or `mainnet-beta`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network: expected localnet, devnet or mainnet-beta")]
pub struct UnknownNetwork;

impl FromStr for Network {
    type Err = UnknownNetwork;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Network::Localnet, Network::Devnet, Network::MainnetBeta]
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or(UnknownNetwork)
    }
}

/// USDC on mainnet-beta (6 decimals).
pub const MAINNET_USDC_MINT: Address = Address::new([
    198, 250, 122, 243, 190, 219, 173, 58, 61, 101, 243, 106, 171, 201, 116, 49, 177, 187, 228,
    194, 210, 246, 224, 228, 124, 166, 2, 3, 69, 47, 93, 97,
]);

/// BONK on mainnet-beta (5 decimals).
pub const MAINNET_BONK_MINT: Address = Address::new([
    188, 7, 197, 110, 96, 173, 61, 63, 23, 115, 130, 234, 198, 84, 143, 186, 31, 211, 44, 253, 144,
    202, 2, 179, 231, 207, 161, 133, 253, 206, 115, 152,
]);

/// USDC on devnet (Circle's devnet mint, 6 decimals).
pub const DEVNET_USDC_MINT: Address = Address::new([
    59, 68, 44, 179, 145, 33, 87, 241, 58, 147, 61, 1, 52, 40, 45, 3, 43, 95, 254, 205, 1, 162,
    219, 241, 183, 121, 6, 8, 223, 0, 46, 167,
]);

/// The well-known mint of `asset` on a public cluster.
///
/// `None` for SOL, for every asset on localnet (whose mints the localnet itself creates; ask
/// [`Ledger::mint`]), and for BONK on devnet, which has no canonical mint.
pub const fn known_mint(network: Network, asset: Asset) -> Option<Address> {
    match (network, asset) {
        (Network::MainnetBeta, Asset::Usdc) => Some(MAINNET_USDC_MINT),
        (Network::MainnetBeta, Asset::Bonk) => Some(MAINNET_BONK_MINT),
        (Network::Devnet, Asset::Usdc) => Some(DEVNET_USDC_MINT),
        _ => None,
    }
}

/// How settled a transaction is, in increasing order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Commitment {
    /// Executed in a slot that may still be skipped.
    Processed,
    /// Voted on by a supermajority of the cluster.
    Confirmed,
    /// Rooted: it will not be rolled back.
    Finalized,
}

impl fmt::Display for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Commitment::Processed => "processed",
            Commitment::Confirmed => "confirmed",
            Commitment::Finalized => "finalized",
        })
    }
}

/// Where a landed transaction stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxStatus {
    /// The slot it landed in.
    pub slot: u64,
    /// How settled it is now.
    pub commitment: Commitment,
    /// The runtime's error when it landed but failed (its fee was still charged).
    pub error: Option<String>,
}

/// One balance of a wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The asset.
    pub asset: Asset,
    /// The token's mint; `None` for SOL.
    pub mint: Option<Address>,
    /// The amount in base units (lamports for SOL).
    pub base_units: u64,
}

/// A blockhash to sign under, and the last slot at which it is still accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecentBlockhash {
    /// The hash.
    pub hash: [u8; 32],
    /// The last slot at which a transaction carrying it can land.
    pub last_valid_slot: u64,
}

/// A boxed cause, for the variants whose source depends on the implementation.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a ledger operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The bytes are not a transaction.
    #[error("transaction bytes are malformed")]
    MalformedTransaction(#[source] BoxError),
    /// The signature text is not base58 of 64 bytes.
    #[error("signature text is malformed")]
    MalformedSignature,
    /// The transaction's blockhash is unknown or too old: build, sign and submit anew.
    #[error("transaction blockhash is not recent")]
    BlockhashExpired,
    /// The payer cannot cover the amount, the fee or the rent.
    #[error("insufficient funds: {reason}")]
    InsufficientFunds {
        /// What ran short, as the network reported it.
        reason: String,
    },
    /// The network refused or failed the transaction for another reason.
    #[error("transaction rejected: {reason}")]
    Rejected {
        /// The network's reason.
        reason: String,
    },
    /// The network could not be reached.
    #[error("ledger endpoint is unreachable")]
    Network(#[source] BoxError),
    /// The endpoint answered with an error.
    #[error("ledger endpoint returned error {code}: {message}")]
    Rpc {
        /// The JSON-RPC error code.
        code: i64,
        /// The JSON-RPC error message.
        message: String,
    },
    /// The ledger implementation itself failed (for the embedded localnet: its database or
    /// an internal fault); the cause says which.
    #[error("ledger backend failed")]
    Backend(#[source] BoxError),
}

impl LedgerError {
    /// Whether repeating the same call later may succeed without changing it. An expired
    /// blockhash is not retryable in this sense: the payment needs a new message and signature.
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            LedgerError::Network(_) | LedgerError::Rpc { .. } | LedgerError::Backend(_)
        )
    }
}

/// A Solana network as ClawFirst uses it.
///
/// Implementations are shared between tasks (`Send + Sync`) and keep each call short.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// Which cluster this is.
    fn network(&self) -> Network;

    /// The mint used for `asset` on this ledger; `None` for SOL.
    fn mint(&self, asset: Asset) -> Option<Address>;

    /// A blockhash to build the next message with.
    async fn latest_blockhash(&self) -> Result<RecentBlockhash, LedgerError>;

    /// Whether a transaction carrying `hash` can still land.
    async fn is_blockhash_valid(&self, hash: &[u8; 32]) -> Result<bool, LedgerError>;

    /// Submits signed wire bytes and returns the base58 signature.
    ///
    /// Submitting a transaction that already landed must not execute it again.
    async fn submit(&self, signed_transaction: &[u8]) -> Result<String, LedgerError>;

    /// The status of a transaction by signature; `None` when it has not landed.
    async fn status(&self, signature: &str) -> Result<Option<TxStatus>, LedgerError>;

    /// SOL and the supported token balances of `owner` (token balances of its associated token
    /// accounts, zero when absent), in the order of [`Asset::ALL`].
    async fn balances(&self, owner: &Address) -> Result<Vec<Balance>, LedgerError>;

    /// Whether an account exists at `address` (for example a recipient's token account).
    async fn account_exists(&self, address: &Address) -> Result<bool, LedgerError>;

    /// The figures fee estimates are made from.
    async fn fee_schedule(&self) -> Result<FeeSchedule, LedgerError>;
}
