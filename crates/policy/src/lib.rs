//! The approval layer's policy evaluation.
//!
//! A [`Policy`] holds the operator's spending limits: per-asset per-transaction caps and rolling
//! daily caps, as operator defaults with per-agent overrides. [`Policy::evaluate`] is a pure
//! function from a policy and the facts of one payment to a [`Decision`]: no clock, no I/O, the
//! same answer every time.
//!
//! # Security
//!
//! - Approval is a value: [`Permit`] has private fields and no public constructor, so only this
//!   crate can say yes. The code that asks the signer for a signature demands a `Permit`.
//! - Fail closed: an asset with no configured cap is denied, not unlimited.
//! - A permit names the rule that allowed the payment and the rolling budgets it must reserve;
//!   the reservation itself is atomic in storage, because concurrent payments each see only
//!   their own facts here.
//! - Every decision carries the policy's version hash, so the audit trail says which policy
//!   decided.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::fmt;

use clawfirst_core::{AgentId, Amount, Asset};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One day in milliseconds: the window of the daily cap.
pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Limits for one agent, per asset, in base units.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// The most one payment may move.
    pub per_transaction: BTreeMap<Asset, u64>,
    /// The most all of an agent's payments may move in any rolling 24 hours, counting payments
    /// reserved but not yet settled.
    pub daily: BTreeMap<Asset, u64>,
}

/// The operator's policy: defaults and per-agent overrides.
///
/// An agent with an override uses the override's value for each asset it names and the
/// default for the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    defaults: Limits,
    agents: BTreeMap<AgentId, Limits>,
    version: PolicyVersion,
}

/// The SHA-256 of a policy's canonical form, recorded with every decision.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyVersion([u8; 32]);

impl fmt::Display for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0[..8]))
    }
}

impl fmt::Debug for PolicyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PolicyVersion({self})")
    }
}

/// The facts of one payment that policy looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentFacts<'a> {
    /// Who pays.
    pub agent_id: &'a AgentId,
    /// How much of what.
    pub amount: Amount,
}

/// A rule of the policy, as named in decisions and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Rule {
    /// The per-transaction cap.
    PerTransactionCap,
    /// The rolling daily cap.
    DailyCap,
    /// No cap is configured for the asset, so it is not allowed at all.
    AssetNotConfigured,
}

impl Rule {
    /// The rule's name as agents and operators see it.
    pub const fn name(self) -> &'static str {
        match self {
            Rule::PerTransactionCap => "per_transaction_cap",
            Rule::DailyCap => "daily_cap",
            Rule::AssetNotConfigured => "asset_not_configured",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rolling budget a permitted payment must fit in, checked and reserved atomically by the
/// store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetCap {
    /// The rule that sets the cap; named in the denial if the reservation fails.
    pub rule: Rule,
    /// The length of the rolling window.
    pub window_ms: u64,
    /// The most the window may hold, in base units.
    pub cap: u64,
}

/// Permission to proceed with one payment, subject to reserving [`Permit::budgets`].
///
/// Only [`Policy::evaluate`] constructs a permit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permit {
    rule: Rule,
    budgets: Vec<BudgetCap>,
    version: PolicyVersion,
}

impl Permit {
    /// The last rule that the payment passed.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// The rolling budgets to reserve.
    pub fn budgets(&self) -> &[BudgetCap] {
        &self.budgets
    }

    /// The policy that granted this permit.
    pub fn policy_version(&self) -> PolicyVersion {
        self.version
    }
}

/// A refusal, naming the rule and a reason an agent can act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The rule that denied.
    pub rule: Rule,
    /// What the agent can do about it, without revealing the rest of the policy.
    pub reason: String,
    /// The policy that denied.
    pub policy_version: PolicyVersion,
}

/// The outcome of evaluating a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Proceed, reserving the permit's budgets.
    Allow(Permit),
    /// Refuse.
    Deny(Denial),
}

/// A policy that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A cap of zero would deny everything; leave the asset out instead.
    #[error("{scope}: {rule} for {asset} must be greater than zero")]
    ZeroCap {
        /// `defaults` or `agents.<id>`.
        scope: String,
        /// Which cap.
        rule: Rule,
        /// For which asset.
        asset: Asset,
    },
    /// A per-transaction cap above the daily cap can never be reached.
    #[error("{scope}: per_transaction_cap for {asset} exceeds its daily_cap")]
    PerTransactionAboveDaily {
        /// `defaults` or `agents.<id>`.
        scope: String,
        /// For which asset.
        asset: Asset,
    },
}

impl Policy {
    /// Validates limits and computes the version hash.
    ///
    /// # Errors
    /// A [`PolicyError`] naming the scope and asset of the first inconsistent cap.
    pub fn new(defaults: Limits, agents: BTreeMap<AgentId, Limits>) -> Result<Self, PolicyError> {
        check_limits("defaults", &defaults)?;
        for (agent, limits) in &agents {
            check_limits(&format!("agents.{agent}"), &merged(&defaults, limits))?;
        }
        let canonical = serde_json::to_vec(&(&defaults, &agents)).unwrap_or_default();
        let version = PolicyVersion(Sha256::digest(&canonical).into());
        Ok(Self {
            defaults,
            agents,
            version,
        })
    }

    /// The version hash.
    pub fn version(&self) -> PolicyVersion {
        self.version
    }

    /// The limits that apply to an agent.
    pub fn limits_for(&self, agent_id: &AgentId) -> Limits {
        match self.agents.get(agent_id) {
            Some(own) => merged(&self.defaults, own),
            None => self.defaults.clone(),
        }
    }

    /// Evaluates one payment, in order: asset configured, per-transaction cap, daily cap.
    ///
    /// The daily cap is not checked against usage here (that needs the store's atomic
    /// reservation); the permit carries it as a [`BudgetCap`] to reserve.
    pub fn evaluate(&self, facts: &PaymentFacts<'_>) -> Decision {
        let limits = self.limits_for(facts.agent_id);
        let asset = facts.amount.asset();
        let deny = |rule: Rule, reason: String| {
            Decision::Deny(Denial {
                rule,
                reason,
                policy_version: self.version,
            })
        };

        let (Some(&per_tx), Some(&daily)) =
            (limits.per_transaction.get(&asset), limits.daily.get(&asset))
        else {
            return deny(
                Rule::AssetNotConfigured,
                format!("payments in {asset} are not enabled"),
            );
        };

        if facts.amount.base_units() > per_tx {
            let cap = Amount::from_base_units(asset, per_tx).map(|a| a.to_string());
            return deny(
                Rule::PerTransactionCap,
                format!(
                    "amount exceeds the per-transaction cap of {}",
                    cap.unwrap_or_else(|_| "0".into())
                ),
            );
        }

        Decision::Allow(Permit {
            rule: Rule::PerTransactionCap,
            budgets: vec![BudgetCap {
                rule: Rule::DailyCap,
                window_ms: DAY_MS,
                cap: daily,
            }],
            version: self.version,
        })
    }
}

fn merged(defaults: &Limits, own: &Limits) -> Limits {
    let mut out = defaults.clone();
    out.per_transaction
        .extend(own.per_transaction.iter().map(|(k, v)| (*k, *v)));
    out.daily.extend(own.daily.iter().map(|(k, v)| (*k, *v)));
    out
}

fn check_limits(scope: &str, limits: &Limits) -> Result<(), PolicyError> {
    for (rule, map) in [
        (Rule::PerTransactionCap, &limits.per_transaction),
        (Rule::DailyCap, &limits.daily),
    ] {
        if let Some((asset, _)) = map.iter().find(|(_, cap)| **cap == 0) {
            return Err(PolicyError::ZeroCap {
                scope: scope.to_owned(),
                rule,
                asset: *asset,
            });
        }
    }
    for (asset, per_tx) in &limits.per_transaction {
        if limits.daily.get(asset).is_some_and(|daily| per_tx > daily) {
            return Err(PolicyError::PerTransactionAboveDaily {
                scope: scope.to_owned(),
                asset: *asset,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
