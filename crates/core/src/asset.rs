//! The assets ClawFirst pays in and their on-chain precision.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An asset an agent can pay in.
///
/// SOL is the native asset (its base unit is the lamport); USDC and BONK are SPL tokens whose
/// mint address depends on the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Asset {
    /// Native SOL, 9 decimals.
    Sol,
    /// USD Coin, 6 decimals.
    Usdc,
    /// BONK, 5 decimals.
    Bonk,
}

impl Asset {
    /// Every supported asset, in a fixed order.
    pub const ALL: [Asset; 3] = [Asset::Sol, Asset::Usdc, Asset::Bonk];

    /// Number of decimal places of the asset's base unit.
    pub const fn decimals(self) -> u8 {
        match self {
            Asset::Sol => 9,
            Asset::Usdc => 6,
            Asset::Bonk => 5,
        }
    }

    /// The ticker symbol as agents write it.
    pub const fn symbol(self) -> &'static str {
        match self {
            Asset::Sol => "SOL",
            Asset::Usdc => "USDC",
            Asset::Bonk => "BONK",
        }
    }

    /// Whether the asset is an SPL token (as opposed to native SOL).
    pub const fn is_token(self) -> bool {
        !matches!(self, Asset::Sol)
    }

    /// The single-byte tag used in binary encodings.
    pub const fn tag(self) -> u8 {
        match self {
            Asset::Sol => 0,
            Asset::Usdc => 1,
            Asset::Bonk => 2,
        }
    }

    /// The asset for a binary tag, if any.
    pub const fn from_tag(tag: u8) -> Option<Asset> {
        match tag {
            0 => Some(Asset::Sol),
            1 => Some(Asset::Usdc),
            2 => Some(Asset::Bonk),
            _ => None,
        }
    }
}

impl fmt::Display for Asset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// The asset symbol was not one of `SOL`, `USDC` or `BONK`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown asset {0:?}: expected SOL, USDC or BONK")]
pub struct UnknownAsset(pub String);

impl FromStr for Asset {
    type Err = UnknownAsset;

    /// Parses an exact, upper-case symbol. `usdc` is refused so that what the agent wrote and
    /// what the audit trail records are the same string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Asset::ALL
            .into_iter()
            .find(|a| a.symbol() == s)
            .ok_or_else(|| UnknownAsset(truncate_for_error(s)))
    }
}

/// Shortens attacker-controlled text before it is echoed in an error message.
pub(crate) fn truncate_for_error(s: &str) -> String {
    const MAX: usize = 32;
    if s.chars().count() <= MAX {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(MAX).collect();
    out.push('…');
    out
}
