//! Checking one set of raw rules (`[defaults]` or an agent's merged override).

use std::collections::{BTreeMap, BTreeSet};

use clawfirst_core::Asset;
use clawfirst_core::recipient::Recipient;

use crate::decimal::{format_amount, format_usd, parse_amount, parse_duration, parse_usd};
use crate::error::Bad;
use crate::file::{Context, check_addresses, check_asset, shorten};
use crate::model::{ApprovalSpec, Payee, Rules};
use crate::raw::{AssetMap, FirstTime, RawApproval, RawRules, RawTimeWindow};
use crate::rule::{COUNT_WINDOWS, WINDOWS};
use crate::tiers::check_tiers;
use crate::window::{TimeWindow, parse_clock, parse_date, parse_offset, parse_weekday};

/// The approval timeout when none is written.
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 60 * 60 * 1000;

/// Checks one set of rules under the dotted `prefix`.
pub(crate) fn check_rules(raw: &RawRules, prefix: &str, ctx: &Context<'_>) -> Result<Rules, Bad> {
    let field = |key: &str| format!("{prefix}.{key}");

    let per_transaction = asset_amounts(raw.per_transaction.as_ref(), &field("per_transaction"))?;
    let mut rolling: [BTreeMap<Asset, u64>; 4] = Default::default();
    for (slot, window) in rolling.iter_mut().zip(WINDOWS) {
        let map = match window.key {
            "hourly" => raw.hourly.as_ref(),
            "daily" => raw.daily.as_ref(),
            "weekly" => raw.weekly.as_ref(),
            _ => raw.monthly.as_ref(),
        };
        *slot = asset_amounts(map, &field(window.key))?;
        for (asset, cap) in slot.iter() {
            if let Some(per_tx) = per_transaction.get(asset).filter(|p| *p > cap) {
                return Err(Bad::new(
                    format!("{}.{asset}", field("per_transaction")),
                    format!(
                        "the per-transaction cap of {} is above the {} cap of {}",
                        format_amount(*asset, *per_tx),
                        window.key,
                        format_amount(*asset, *cap),
                    ),
                ));
            }
        }
    }

    let assets = check_assets(raw.assets.as_deref(), &per_transaction, &field("assets"))?;

    let usd = raw.usd.clone().unwrap_or_default();
    let usd_per_transaction = opt_usd(
        usd.per_transaction.as_deref(),
        &field("usd.per_transaction"),
    )?;
    let mut usd_rolling = [None; 4];
    for (slot, window) in usd_rolling.iter_mut().zip(WINDOWS) {
        let text = match window.key {
            "hourly" => usd.hourly.as_deref(),
            "daily" => usd.daily.as_deref(),
            "weekly" => usd.weekly.as_deref(),
            _ => usd.monthly.as_deref(),
        };
        *slot = opt_usd(text, &format!("{prefix}.usd.{}", window.key))?;
        if let (Some(per_tx), Some(cap)) = (usd_per_transaction, *slot)
            && per_tx > cap
        {
            return Err(Bad::new(
                field("usd.per_transaction"),
                format!(
                    "the per-transaction cap of {} is above the {} cap of {}",
                    format_usd(per_tx),
                    window.key,
                    format_usd(cap)
                ),
            ));
        }
    }

    let counts = raw.payments.clone().unwrap_or_default();
    let mut payments = [None; 5];
    for (slot, (key, _, _)) in payments.iter_mut().zip(COUNT_WINDOWS) {
        *slot = match key {
            "per_minute" => counts.per_minute,
            "per_hour" => counts.per_hour,
            "per_day" => counts.per_day,
            "per_week" => counts.per_week,
            _ => counts.per_month,
        };
        if *slot == Some(0) {
            return Err(Bad::new(
                format!("{prefix}.payments.{key}"),
                "a count cap of zero would deny every payment; remove the asset or agent instead",
            ));
        }
    }

    let recipients = raw.recipients.clone().unwrap_or_default();
    let allow = payees(recipients.allow.as_deref(), &field("recipients.allow"))?;
    let block = payees(recipients.block.as_deref(), &field("recipients.block"))?;
    let first_time = recipients.first_time.unwrap_or_default();

    let purpose_above = asset_amounts(
        raw.purpose_required_above.as_ref(),
        &field("purpose_required_above"),
    )?;
    let purpose_above_usd = opt_usd(
        raw.purpose_required_above_usd.as_deref(),
        &field("purpose_required_above_usd"),
    )?;

    let time_windows = match &raw.time_windows {
        None => Vec::new(),
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, w)| time_window(w, &format!("{prefix}.time_windows[{i}]")))
            .collect::<Result<_, _>>()?,
    };
    let active_from = opt_date(raw.active_from.as_deref(), &field("active_from"))?;
    let active_until = opt_date(raw.active_until.as_deref(), &field("active_until"))?;
    if let (Some(from), Some(until)) = (active_from, active_until)
        && from > until
    {
        return Err(Bad::new(
            field("active_from"),
            "active_from is after active_until",
        ));
    }

    let approval = match &raw.approval {
        None => None,
        Some(a) => Some(approval_spec(a, &field("approval"), ctx)?),
    };
    if first_time == FirstTime::Approve && approval.is_none() {
        return Err(Bad::new(
            field("recipients.first_time"),
            "\"approve\" needs an approval table naming the approver group",
        ));
    }
    let tiers = check_tiers(raw.tiers.as_deref(), raw.approval.as_ref(), prefix, ctx)?;

    let mut canaries = ctx.canaries.clone();
    canaries.extend(check_addresses(
        raw.canaries.as_deref().unwrap_or_default(),
        &field("canaries"),
    )?);

    let rules = Rules {
        assets,
        per_transaction,
        rolling,
        usd_per_transaction,
        usd_rolling,
        payments,
        allow,
        block,
        first_time,
        purpose_above,
        purpose_above_usd,
        time_windows,
        active_from,
        active_until,
        approval,
        tiers,
        canaries,
    };
    if rules.uses_usd()
        && let Some(asset) = rules
            .assets
            .iter()
            .find(|a| **a != Asset::Usdc && !ctx.prices.contains_key(a))
    {
        return Err(Bad::new(
            format!("prices.{asset}"),
            format!("{prefix} has USD rules and allows {asset}, so {asset} needs a price"),
        ));
    }
    Ok(rules)
}

/// Parses a map of asset name to positive whole-unit amount.
pub(crate) fn asset_amounts(
    map: Option<&AssetMap>,
    field: &str,
) -> Result<BTreeMap<Asset, u64>, Bad> {
    let mut out = BTreeMap::new();
    for (name, text) in map.into_iter().flatten() {
        let field = format!("{field}.{}", shorten(name));
        let asset = check_asset(name, &field)?;
        let units = parse_amount(text, asset).map_err(|p| Bad::new(&field, p))?;
        out.insert(asset, units);
    }
    Ok(out)
}

fn check_assets(
    list: Option<&[String]>,
    per_transaction: &BTreeMap<Asset, u64>,
    field: &str,
) -> Result<BTreeSet<Asset>, Bad> {
    let Some(list) = list else {
        return Ok(per_transaction.keys().copied().collect());
    };
    let mut out = BTreeSet::new();
    for (i, name) in list.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let asset = check_asset(name, &field)?;
        if !per_transaction.contains_key(&asset) {
            return Err(Bad::new(
                field,
                format!("{asset} is allowed but has no per_transaction cap; add one"),
            ));
        }
        if !out.insert(asset) {
            return Err(Bad::new(field, format!("{asset} is listed twice")));
        }
    }
    Ok(out)
}

pub(crate) fn opt_usd(text: Option<&str>, field: &str) -> Result<Option<u64>, Bad> {
    text.map(|t| parse_usd(t).map_err(|p| Bad::new(field, p)))
        .transpose()
}

fn opt_date(text: Option<&str>, field: &str) -> Result<Option<i64>, Bad> {
    text.map(|t| parse_date(t).map_err(|p| Bad::new(field, p)))
        .transpose()
}

fn payees(list: Option<&[String]>, field: &str) -> Result<BTreeSet<Payee>, Bad> {
    let mut out = BTreeSet::new();
    for (i, text) in list.unwrap_or_default().iter().enumerate() {
        let field = format!("{field}[{i}]");
        let payee = match Recipient::parse(text) {
            Ok(Recipient::Address(a)) => Payee::Address(a),
            Ok(Recipient::Email(e)) => Payee::Email(e),
            Err(e) => return Err(Bad::new(field, e.to_string())),
        };
        if !out.insert(payee) {
            return Err(Bad::new(field, "listed twice"));
        }
    }
    Ok(out)
}

fn time_window(raw: &RawTimeWindow, field: &str) -> Result<TimeWindow, Bad> {
    if raw.days.is_empty() {
        return Err(Bad::new(format!("{field}.days"), "name at least one day"));
    }
    let mut days = 0u8;
    for (i, day) in raw.days.iter().enumerate() {
        let field = format!("{field}.days[{i}]");
        let bit = 1u8 << parse_weekday(day).map_err(|p| Bad::new(&field, p))?;
        if days & bit != 0 {
            return Err(Bad::new(field, format!("{day} is listed twice")));
        }
        days |= bit;
    }
    let from = parse_clock(&raw.from).map_err(|p| Bad::new(format!("{field}.from"), p))?;
    let to = parse_clock(&raw.to).map_err(|p| Bad::new(format!("{field}.to"), p))?;
    if from == to {
        return Err(Bad::new(
            format!("{field}.to"),
            "from and to are equal: the window would be empty (use 00:00 to 24:00 for a whole day)",
        ));
    }
    if from == 1_440 {
        return Err(Bad::new(
            format!("{field}.from"),
            "a window cannot start at 24:00",
        ));
    }
    let offset = match &raw.utc_offset {
        None => 0,
        Some(text) => parse_offset(text).map_err(|p| Bad::new(format!("{field}.utc_offset"), p))?,
    };
    Ok(TimeWindow {
        days,
        from,
        to,
        offset,
    })
}

/// Checks an approval requirement: a known group and 1 ..= members approvals.
pub(crate) fn approval_spec(
    raw: &RawApproval,
    field: &str,
    ctx: &Context<'_>,
) -> Result<ApprovalSpec, Bad> {
    requirement(
        &raw.group,
        raw.approvals,
        raw.timeout.as_deref(),
        field,
        ctx,
    )
}

/// Checks group, approvals and timeout, each under `field`.
pub(crate) fn requirement(
    group: &str,
    approvals: Option<u32>,
    timeout: Option<&str>,
    field: &str,
    ctx: &Context<'_>,
) -> Result<ApprovalSpec, Bad> {
    let Some(members) = ctx.groups.get(group) else {
        return Err(Bad::new(
            format!("{field}.group"),
            format!(
                "unknown group {:?}; define it under [groups]",
                shorten(group)
            ),
        ));
    };
    let approvals = approvals.unwrap_or(1);
    if approvals == 0 || usize::try_from(approvals).map_or(true, |n| n > members.len()) {
        return Err(Bad::new(
            format!("{field}.approvals"),
            format!(
                "must be between 1 and the {} member(s) of group {group}",
                members.len()
            ),
        ));
    }
    let timeout_ms = match timeout {
        None => DEFAULT_TIMEOUT_MS,
        Some(t) => parse_duration(t).map_err(|p| Bad::new(format!("{field}.timeout"), p))?,
    };
    Ok(ApprovalSpec {
        group: group.to_owned(),
        approvals,
        timeout_ms,
    })
}
