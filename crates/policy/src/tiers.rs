//! Checking `[[tiers]]`: names, bounds and the approval each `approve` tier needs.

use std::collections::BTreeSet;

use crate::error::Bad;
use crate::file::{Context, shorten};
use crate::model::{Tier, TierAction};
use crate::raw::{RawApproval, RawTier, TierActionKind};
use crate::rules::{asset_amounts, opt_usd, requirement};

/// Checks the ordered tier list under `{prefix}.tiers[i]`. An `approve` tier takes its group,
/// approvals and timeout from its own keys, each falling back to the `approval` table's.
pub(crate) fn check_tiers(
    raw: Option<&[RawTier]>,
    approval: Option<&RawApproval>,
    prefix: &str,
    ctx: &Context<'_>,
) -> Result<Vec<Tier>, Bad> {
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (i, tier) in raw.unwrap_or_default().iter().enumerate() {
        let field = format!("{prefix}.tiers[{i}]");
        let name_ok = !tier.name.is_empty()
            && tier.name.len() <= 64
            && tier
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !name_ok {
            return Err(Bad::new(
                format!("{field}.name"),
                "a tier name is 1 to 64 letters, digits, '_', '-' or '.'",
            ));
        }
        if !names.insert(tier.name.as_str()) {
            return Err(Bad::new(
                format!("{field}.name"),
                format!("duplicate tier name {:?}", shorten(&tier.name)),
            ));
        }

        let up_to = asset_amounts(tier.up_to.as_ref(), &format!("{field}.up_to"))?;
        if tier.up_to.as_ref().is_some_and(|m| m.is_empty()) {
            return Err(Bad::new(
                format!("{field}.up_to"),
                "an empty bound; leave up_to out for a catch-all tier",
            ));
        }
        let up_to_usd = opt_usd(tier.up_to_usd.as_deref(), &format!("{field}.up_to_usd"))?;

        let action = match tier.action {
            TierActionKind::Allow | TierActionKind::Deny => {
                if let Some(key) = [
                    tier.group.as_ref().map(|_| "group"),
                    tier.approvals.map(|_| "approvals"),
                    tier.timeout.as_ref().map(|_| "timeout"),
                ]
                .into_iter()
                .flatten()
                .next()
                {
                    return Err(Bad::new(
                        format!("{field}.{key}"),
                        "only a tier with action = \"approve\" takes approvers",
                    ));
                }
                if tier.action == TierActionKind::Allow {
                    TierAction::Allow
                } else {
                    TierAction::Deny
                }
            }
            TierActionKind::Approve => {
                let Some(group) = tier.group.as_deref().or(approval.map(|a| a.group.as_str()))
                else {
                    return Err(Bad::new(
                        format!("{field}.group"),
                        "an approve tier needs a group (here or in the approval table)",
                    ));
                };
                let approvals = tier.approvals.or(approval.and_then(|a| a.approvals));
                let timeout = tier
                    .timeout
                    .as_deref()
                    .or(approval.and_then(|a| a.timeout.as_deref()));
                TierAction::Approve(requirement(group, approvals, timeout, &field, ctx)?)
            }
        };

        out.push(Tier {
            name: tier.name.clone(),
            up_to,
            up_to_usd,
            action,
        });
    }
    Ok(out)
}
