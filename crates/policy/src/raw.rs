//! The policy file as written: the serde layer, every field optional, unknown keys refused.
//!
//! Nothing here is trusted; `file.rs` turns it into the checked model.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub(crate) networks: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) canaries: Vec<String>,
    #[serde(default)]
    pub(crate) prices: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) groups: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub(crate) defaults: RawRules,
    #[serde(default)]
    pub(crate) agents: BTreeMap<String, RawRules>,
}

/// Asset name to whole-unit decimal string.
pub(crate) type AssetMap = BTreeMap<String, String>;

/// The rules of `[defaults]` or of one `[agents."id"]` override.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRules {
    pub(crate) assets: Option<Vec<String>>,
    pub(crate) per_transaction: Option<AssetMap>,
    pub(crate) hourly: Option<AssetMap>,
    pub(crate) daily: Option<AssetMap>,
    pub(crate) weekly: Option<AssetMap>,
    pub(crate) monthly: Option<AssetMap>,
    pub(crate) usd: Option<RawUsd>,
    pub(crate) payments: Option<RawPayments>,
    pub(crate) recipients: Option<RawRecipients>,
    pub(crate) purpose_required_above: Option<AssetMap>,
    pub(crate) purpose_required_above_usd: Option<String>,
    pub(crate) time_windows: Option<Vec<RawTimeWindow>>,
    pub(crate) active_from: Option<String>,
    pub(crate) active_until: Option<String>,
    pub(crate) approval: Option<RawApproval>,
    pub(crate) tiers: Option<Vec<RawTier>>,
    pub(crate) canaries: Option<Vec<String>>,
}

/// `usd = { ... }`: caps in USD over all assets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUsd {
    pub(crate) per_transaction: Option<String>,
    pub(crate) hourly: Option<String>,
    pub(crate) daily: Option<String>,
    pub(crate) weekly: Option<String>,
    pub(crate) monthly: Option<String>,
}

/// `payments = { ... }`: transaction-count caps over all assets.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPayments {
    pub(crate) per_minute: Option<u64>,
    pub(crate) per_hour: Option<u64>,
    pub(crate) per_day: Option<u64>,
    pub(crate) per_week: Option<u64>,
    pub(crate) per_month: Option<u64>,
}

/// `recipients = { ... }`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRecipients {
    pub(crate) allow: Option<Vec<String>>,
    pub(crate) block: Option<Vec<String>>,
    pub(crate) first_time: Option<FirstTime>,
}

/// What happens to a payment to a recipient the agent never paid before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum FirstTime {
    /// No special treatment.
    #[default]
    Allow,
    /// Needs approval by the agent's `approval` group.
    Approve,
    /// Denied.
    Deny,
}

/// One entry of `time_windows`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeWindow {
    pub(crate) days: Vec<String>,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) utc_offset: Option<String>,
}

/// `approval = { ... }`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawApproval {
    pub(crate) group: String,
    pub(crate) approvals: Option<u32>,
    pub(crate) timeout: Option<String>,
}

/// One `[[tiers]]` entry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTier {
    pub(crate) name: String,
    pub(crate) up_to: Option<AssetMap>,
    pub(crate) up_to_usd: Option<String>,
    pub(crate) action: TierActionKind,
    pub(crate) group: Option<String>,
    pub(crate) approvals: Option<u32>,
    pub(crate) timeout: Option<String>,
}

/// `action` of a tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TierActionKind {
    Allow,
    Approve,
    Deny,
}

fn merge_map(base: &Option<AssetMap>, own: &Option<AssetMap>) -> Option<AssetMap> {
    match (base, own) {
        (Some(b), Some(o)) => {
            let mut out = b.clone();
            out.extend(o.iter().map(|(k, v)| (k.clone(), v.clone())));
            Some(out)
        }
        (b, o) => o.clone().or_else(|| b.clone()),
    }
}

fn pick<T: Clone>(base: &Option<T>, own: &Option<T>) -> Option<T> {
    own.clone().or_else(|| base.clone())
}

impl RawRules {
    /// An agent's effective rules: per-asset maps and the `usd`, `payments` and `recipients`
    /// tables merge key by key, `canaries` add up, every other key replaces the default.
    pub(crate) fn merged(&self, own: &RawRules) -> RawRules {
        let usd = match (&self.usd, &own.usd) {
            (Some(b), Some(o)) => Some(RawUsd {
                per_transaction: pick(&b.per_transaction, &o.per_transaction),
                hourly: pick(&b.hourly, &o.hourly),
                daily: pick(&b.daily, &o.daily),
                weekly: pick(&b.weekly, &o.weekly),
                monthly: pick(&b.monthly, &o.monthly),
            }),
            (b, o) => pick(b, o),
        };
        let payments = match (&self.payments, &own.payments) {
            (Some(b), Some(o)) => Some(RawPayments {
                per_minute: o.per_minute.or(b.per_minute),
                per_hour: o.per_hour.or(b.per_hour),
                per_day: o.per_day.or(b.per_day),
                per_week: o.per_week.or(b.per_week),
                per_month: o.per_month.or(b.per_month),
            }),
            (b, o) => pick(b, o),
        };
        let recipients = match (&self.recipients, &own.recipients) {
            (Some(b), Some(o)) => Some(RawRecipients {
                allow: pick(&b.allow, &o.allow),
                block: pick(&b.block, &o.block),
                first_time: o.first_time.or(b.first_time),
            }),
            (b, o) => pick(b, o),
        };
        let canaries = match (&self.canaries, &own.canaries) {
            (Some(b), Some(o)) => Some(b.iter().chain(o).cloned().collect()),
            (b, o) => pick(b, o),
        };
        RawRules {
            assets: pick(&self.assets, &own.assets),
            per_transaction: merge_map(&self.per_transaction, &own.per_transaction),
            hourly: merge_map(&self.hourly, &own.hourly),
            daily: merge_map(&self.daily, &own.daily),
            weekly: merge_map(&self.weekly, &own.weekly),
            monthly: merge_map(&self.monthly, &own.monthly),
            usd,
            payments,
            recipients,
            purpose_required_above: merge_map(
                &self.purpose_required_above,
                &own.purpose_required_above,
            ),
            purpose_required_above_usd: pick(
                &self.purpose_required_above_usd,
                &own.purpose_required_above_usd,
            ),
            time_windows: pick(&self.time_windows, &own.time_windows),
            active_from: pick(&self.active_from, &own.active_from),
            active_until: pick(&self.active_until, &own.active_until),
            approval: pick(&self.approval, &own.approval),
            tiers: pick(&self.tiers, &own.tiers),
            canaries,
        }
    }
}
