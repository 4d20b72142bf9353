//! The static check behind `clawfirst policy check`: rules that can never fire or are shadowed.
//!
//! Warnings do not stop a policy from loading; they tell the operator that what the file says
//! is not what it does. An agent's effective rules are checked too, but a warning it inherits
//! unchanged from `[defaults]` is reported once, under `defaults`.

use std::collections::BTreeSet;

use crate::decimal::{format_amount, format_usd};
use crate::model::{Payee, Rules, Spec, Tier, TierAction};
use crate::policy::Warning;
use crate::rule::WINDOWS;

/// Every warning for a checked policy, defaults first, then agents in id order.
pub(crate) fn lint(spec: &Spec) -> Vec<Warning> {
    let defaults = rule_warnings(&spec.defaults);
    let mut out: Vec<Warning> = defaults
        .iter()
        .map(|(field, message)| Warning {
            field: format!("defaults.{field}"),
            message: message.clone(),
        })
        .collect();

    for (id, rules) in &spec.agents {
        if *rules == spec.defaults {
            out.push(Warning {
                field: format!("agents.{id}"),
                message: "this override changes nothing: the agent's rules equal the defaults"
                    .into(),
            });
            continue;
        }
        for (field, message) in rule_warnings(rules) {
            if !defaults.iter().any(|(f, m)| *f == field && *m == message) {
                out.push(Warning {
                    field: format!("agents.{id}.{field}"),
                    message,
                });
            }
        }
    }

    let mut used = BTreeSet::new();
    for rules in std::iter::once(&spec.defaults).chain(spec.agents.values()) {
        used.extend(rules.approval.iter().map(|a| a.group.as_str()));
        for tier in &rules.tiers {
            if let TierAction::Approve(a) = &tier.action {
                used.insert(a.group.as_str());
            }
        }
    }
    for name in spec.groups.keys() {
        if !used.contains(name.as_str()) {
            out.push(Warning {
                field: format!("groups.{name}"),
                message: "no approval table or tier refers to this group".into(),
            });
        }
    }
    out
}

/// Warnings for one rule set, as (field relative to the rule set, message).
fn rule_warnings(rules: &Rules) -> Vec<(String, String)> {
    let mut out = Vec::new();
    tier_warnings(rules, &mut out);

    for (asset, limit) in &rules.purpose_above {
        if let Some(cap) = rules.per_transaction.get(asset).filter(|cap| limit >= *cap) {
            out.push((
                format!("purpose_required_above.{asset}"),
                format!(
                    "never fires: at or above the per-transaction cap of {}",
                    format_amount(*asset, *cap)
                ),
            ));
        }
    }
    if let (Some(limit), Some(cap)) = (rules.purpose_above_usd, rules.usd_per_transaction)
        && limit >= cap
    {
        out.push((
            "purpose_required_above_usd".into(),
            format!(
                "never fires: at or above the per-transaction cap of {}",
                format_usd(cap)
            ),
        ));
    }

    for payee in &rules.allow {
        if rules.block.contains(payee) {
            out.push((
                "recipients.allow".into(),
                format!("{payee} is also blocked, and the blocklist wins"),
            ));
        }
        if let Payee::Address(a) = payee
            && rules.canaries.contains(a)
        {
            out.push((
                "recipients.allow".into(),
                format!("{payee} is a canary payee: paying it is always denied"),
            ));
        }
    }

    let mut maps = vec![
        ("per_transaction", &rules.per_transaction),
        ("purpose_required_above", &rules.purpose_above),
    ];
    for (map, window) in rules.rolling.iter().zip(WINDOWS) {
        maps.push((window.key, map));
    }
    for (key, map) in maps {
        for asset in map.keys().filter(|a| !rules.assets.contains(a)) {
            out.push((
                format!("{key}.{asset}"),
                format!("never applies: {asset} is not in the asset allowlist"),
            ));
        }
    }
    out
}

fn tier_warnings(rules: &Rules, out: &mut Vec<(String, String)>) {
    let mut catch_all: Option<&str> = None;
    for (i, tier) in rules.tiers.iter().enumerate() {
        let field = format!("tiers[{i}]");
        if let Some(name) = catch_all {
            out.push((
                field,
                format!("never applies: it comes after the catch-all tier {name}"),
            ));
            continue;
        }
        if tier.is_catch_all() {
            catch_all = Some(&tier.name);
            continue;
        }
        if let Some(earlier) = rules.tiers[..i].iter().find(|e| covers(e, tier)) {
            out.push((
                field,
                format!(
                    "never applies: tier {} covers every amount it covers",
                    earlier.name
                ),
            ));
            continue;
        }

        let above_every_cap = !tier.up_to.is_empty()
            && tier.up_to.iter().all(|(asset, bound)| {
                rules
                    .per_transaction
                    .get(asset)
                    .is_some_and(|cap| bound > cap)
            });
        if above_every_cap {
            out.push((
                format!("{field}.up_to"),
                "the bound is above the per-transaction cap of every asset it names; \
                 the part above the cap can never be reached"
                    .into(),
            ));
        }
        if let (Some(bound), Some(cap)) = (tier.up_to_usd, rules.usd_per_transaction)
            && bound > cap
        {
            out.push((
                format!("{field}.up_to_usd"),
                format!(
                    "the bound is above the per-transaction cap of {}; the part above it can \
                     never be reached",
                    format_usd(cap)
                ),
            ));
        }
    }
}

/// Whether every payment that fits `later` also fits `earlier` (a sufficient condition).
fn covers(earlier: &Tier, later: &Tier) -> bool {
    if earlier.is_catch_all() {
        return true;
    }
    let assets_covered = earlier.up_to.is_empty()
        || (!later.up_to.is_empty()
            && later
                .up_to
                .iter()
                .all(|(asset, bound)| earlier.up_to.get(asset).is_some_and(|e| e >= bound)));
    let usd_covered = match earlier.up_to_usd {
        None => true,
        Some(e) => later.up_to_usd.is_some_and(|l| l <= e),
    };
    assets_covered && usd_covered
}
