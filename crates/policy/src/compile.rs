//! The evaluation form of one agent's rules, built once at load.
//!
//! Lists become hash sets, approval requirements carry their group's members, and the budgets
//! of each asset are precomputed and shared, so that an evaluation that allows allocates
//! nothing.

use std::collections::HashSet;
use std::sync::Arc;

use clawfirst_core::{Address, Asset};

use crate::decision::{BudgetCap, Measure};
use crate::file::Context;
use crate::model::{ApprovalSpec, Payee, Rules, Tier, TierAction};
use crate::rule::{COUNT_WINDOWS, WINDOWS};
use crate::usd::Prices;

/// An approval requirement ready to hand out.
#[derive(Clone, Debug)]
pub(crate) struct Requirement {
    pub(crate) group: Arc<str>,
    pub(crate) approvers: Arc<[String]>,
    pub(crate) required: u32,
    pub(crate) timeout_ms: u64,
}

impl Requirement {
    fn new(spec: &ApprovalSpec, ctx: &Context<'_>) -> Self {
        let members = ctx.groups.get(&spec.group).cloned().unwrap_or_default();
        Self {
            group: Arc::from(spec.group.as_str()),
            approvers: Arc::from(members),
            required: spec.approvals,
            timeout_ms: spec.timeout_ms,
        }
    }
}

/// A tier in evaluation form.
#[derive(Debug)]
pub(crate) struct CompiledTier {
    pub(crate) tier: Tier,
    pub(crate) name: Arc<str>,
    pub(crate) approval: Option<Requirement>,
}

/// One agent's rules in evaluation form.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) rules: Rules,
    pub(crate) prices: Prices,
    pub(crate) canaries: HashSet<Address>,
    pub(crate) allow_addresses: HashSet<Address>,
    pub(crate) allow_emails: HashSet<String>,
    pub(crate) block_addresses: HashSet<Address>,
    pub(crate) block_emails: HashSet<String>,
    /// Budgets to reserve, indexed by [`Asset::tag`].
    pub(crate) budgets: [Arc<[BudgetCap]>; 3],
    pub(crate) approval: Option<Requirement>,
    pub(crate) tiers: Vec<CompiledTier>,
}

impl Compiled {
    pub(crate) fn new(rules: Rules, ctx: &Context<'_>) -> Self {
        let split = |set: &std::collections::BTreeSet<Payee>| {
            let mut addresses = HashSet::new();
            let mut emails = HashSet::new();
            for payee in set {
                match payee {
                    Payee::Address(a) => {
                        addresses.insert(*a);
                    }
                    Payee::Email(e) => {
                        emails.insert(e.clone());
                    }
                }
            }
            (addresses, emails)
        };
        let (allow_addresses, allow_emails) = split(&rules.allow);
        let (block_addresses, block_emails) = split(&rules.block);
        let budgets = Asset::ALL.map(|asset| budgets_for(&rules, asset));
        let tiers = rules
            .tiers
            .iter()
            .map(|t| CompiledTier {
                tier: t.clone(),
                name: Arc::from(t.name.as_str()),
                approval: match &t.action {
                    TierAction::Approve(spec) => Some(Requirement::new(spec, ctx)),
                    _ => None,
                },
            })
            .collect();
        Self {
            prices: Prices::new(ctx.prices),
            canaries: rules.canaries.iter().copied().collect(),
            allow_addresses,
            allow_emails,
            block_addresses,
            block_emails,
            budgets,
            approval: rules.approval.as_ref().map(|a| Requirement::new(a, ctx)),
            tiers,
            rules,
        }
    }

    /// The budgets to reserve for a payment in `asset`.
    pub(crate) fn budgets(&self, asset: Asset) -> &Arc<[BudgetCap]> {
        // `Asset::tag` is 0..=2 by construction; the index cannot be out of range.
        &self.budgets[usize::from(asset.tag()) % 3]
    }
}

/// Asset windows (hour to month), then USD windows, then count windows (minute to month).
fn budgets_for(rules: &Rules, asset: Asset) -> Arc<[BudgetCap]> {
    let mut out = Vec::new();
    for (caps, window) in rules.rolling.iter().zip(WINDOWS) {
        if let Some(cap) = caps.get(&asset) {
            out.push(BudgetCap {
                rule: window.asset_rule,
                window_ms: window.ms,
                cap: *cap,
                measure: Measure::BaseUnits,
            });
        }
    }
    for (cap, window) in rules.usd_rolling.iter().zip(WINDOWS) {
        if let Some(cap) = cap {
            out.push(BudgetCap {
                rule: window.usd_rule,
                window_ms: window.ms,
                cap: *cap,
                measure: Measure::UsdMicros,
            });
        }
    }
    for (cap, (_, window_ms, rule)) in rules.payments.iter().zip(COUNT_WINDOWS) {
        if let Some(cap) = cap {
            out.push(BudgetCap {
                rule,
                window_ms,
                cap: *cap,
                measure: Measure::Count,
            });
        }
    }
    Arc::from(out)
}
