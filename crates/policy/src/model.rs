//! The checked policy: every value parsed, every cross-field constraint verified.
//!
//! These types use ordered collections only, so their JSON encoding is canonical: the policy
//! version is the SHA-256 of that encoding, independent of the file's formatting and key order.

use std::collections::{BTreeMap, BTreeSet};

use clawfirst_core::{Address, AgentId, Asset};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::decision::PolicyVersion;
use crate::raw::FirstTime;
use crate::window::TimeWindow;

/// The whole checked policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Spec {
    /// `None`: every network is allowed.
    pub(crate) networks: Option<BTreeSet<String>>,
    /// Prices in nano-USD per whole unit (USDC not listed: it is always one dollar).
    pub(crate) prices: BTreeMap<Asset, u64>,
    /// Approver groups by name.
    pub(crate) groups: BTreeMap<String, Vec<String>>,
    /// The operator defaults, with the operator-wide canaries folded in.
    pub(crate) defaults: Rules,
    /// The effective (merged) rules of each agent with an override.
    pub(crate) agents: BTreeMap<AgentId, Rules>,
}

impl Spec {
    /// The SHA-256 of the canonical JSON encoding.
    pub(crate) fn version(&self) -> PolicyVersion {
        // Serialising ordered maps of plain values cannot fail; an empty encoding would still
        // hash to a fixed value rather than panic.
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        PolicyVersion(Sha256::digest(&canonical).into())
    }
}

/// A payee named in a recipient list: an address or a directory e-mail (lower case).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub(crate) enum Payee {
    Address(Address),
    Email(String),
}

impl std::fmt::Display for Payee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Payee::Address(a) => a.fmt(f),
            Payee::Email(e) => f.write_str(e),
        }
    }
}

/// Who approves and how many of them must.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct ApprovalSpec {
    pub(crate) group: String,
    pub(crate) approvals: u32,
    pub(crate) timeout_ms: u64,
}

/// What a tier does with the payments it covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) enum TierAction {
    Allow,
    Approve(ApprovalSpec),
    Deny,
}

/// An amount tier. A payment fits when it is within every bound the tier sets; a tier with no
/// bound is a catch-all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Tier {
    pub(crate) name: String,
    /// Per-asset bounds in base units; an asset not named does not fit when this is non-empty.
    pub(crate) up_to: BTreeMap<Asset, u64>,
    /// A bound on the USD value in micro-USD.
    pub(crate) up_to_usd: Option<u64>,
    pub(crate) action: TierAction,
}

impl Tier {
    /// Whether the tier has no bound at all.
    pub(crate) fn is_catch_all(&self) -> bool {
        self.up_to.is_empty() && self.up_to_usd.is_none()
    }

    /// Whether a payment of `base_units` of `asset` worth `usd` (micro-USD) fits.
    pub(crate) fn fits(&self, asset: Asset, base_units: u64, usd: Option<u64>) -> bool {
        if !self.up_to.is_empty() && self.up_to.get(&asset).is_none_or(|b| base_units > *b) {
            return false;
        }
        match self.up_to_usd {
            Some(bound) => usd.is_some_and(|v| v <= bound),
            None => true,
        }
    }
}

/// One agent's effective rules (or the defaults).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Rules {
    pub(crate) assets: BTreeSet<Asset>,
    pub(crate) per_transaction: BTreeMap<Asset, u64>,
    /// Rolling caps in base units, indexed like `rule::WINDOWS`.
    pub(crate) rolling: [BTreeMap<Asset, u64>; 4],
    pub(crate) usd_per_transaction: Option<u64>,
    /// Rolling USD caps in micro-USD, indexed like `rule::WINDOWS`.
    pub(crate) usd_rolling: [Option<u64>; 4],
    /// Count caps, indexed like `rule::COUNT_WINDOWS`.
    pub(crate) payments: [Option<u64>; 5],
    pub(crate) allow: BTreeSet<Payee>,
    pub(crate) block: BTreeSet<Payee>,
    pub(crate) first_time: FirstTime,
    pub(crate) purpose_above: BTreeMap<Asset, u64>,
    pub(crate) purpose_above_usd: Option<u64>,
    pub(crate) time_windows: Vec<TimeWindow>,
    /// Inclusive UTC day numbers.
    pub(crate) active_from: Option<i64>,
    pub(crate) active_until: Option<i64>,
    pub(crate) approval: Option<ApprovalSpec>,
    pub(crate) tiers: Vec<Tier>,
    /// Canary payees: operator-wide, defaults' and the agent's own.
    pub(crate) canaries: BTreeSet<Address>,
}

impl Rules {
    /// Whether any rule needs the payment's USD value.
    pub(crate) fn uses_usd(&self) -> bool {
        self.usd_per_transaction.is_some()
            || self.usd_rolling.iter().any(Option::is_some)
            || self.purpose_above_usd.is_some()
            || self.tiers.iter().any(|t| t.up_to_usd.is_some())
    }
}
