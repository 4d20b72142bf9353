//! From the raw file to the checked [`Spec`]: top-level keys, prices, groups and agents.
//!
//! The defaults are checked first under `defaults.`; each agent's override is then merged into
//! the raw defaults and the result checked under `agents.<id>.`, so an error names the first
//! place a reader has to look.

use std::collections::{BTreeMap, BTreeSet};

use clawfirst_core::{Address, AgentId, Asset};

use crate::decimal::{PRICE_SCALE, format_scaled, parse_price};
use crate::error::{Bad, PolicyFileError, syntax};
use crate::model::Spec;
use crate::raw::RawFile;
use crate::rules::check_rules;
use crate::usd::ONE_DOLLAR_NANOS;

/// What the rule checker needs from the top level.
pub(crate) struct Context<'a> {
    pub(crate) prices: &'a BTreeMap<Asset, u64>,
    pub(crate) groups: &'a BTreeMap<String, Vec<String>>,
    pub(crate) canaries: &'a BTreeSet<Address>,
}

/// Parses and checks a policy file's text.
pub(crate) fn parse(text: &str, origin: &str) -> Result<Spec, PolicyFileError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| syntax(&e, text, origin))?;
    check(raw).map_err(|bad| bad.into_error(origin))
}

fn check(raw: RawFile) -> Result<Spec, Bad> {
    let networks = match raw.networks {
        None => None,
        Some(list) => Some(check_networks(&list)?),
    };
    let prices = check_prices(&raw.prices)?;
    let groups = check_groups(&raw.groups)?;
    let canaries = check_addresses(&raw.canaries, "canaries")?;
    let ctx = Context {
        prices: &prices,
        groups: &groups,
        canaries: &canaries,
    };

    let defaults = check_rules(&raw.defaults, "defaults", &ctx)?;
    let mut agents = BTreeMap::new();
    for (id, own) in &raw.agents {
        let prefix = format!("agents.{}", shorten(id));
        let agent = AgentId::new(id.as_str()).map_err(|e| Bad::new(&prefix, e.to_string()))?;
        let merged = raw.defaults.merged(own);
        agents.insert(agent, check_rules(&merged, &prefix, &ctx)?);
    }

    Ok(Spec {
        networks,
        prices,
        groups,
        defaults,
        agents,
    })
}

/// Shortens an untrusted key before it is echoed in an error.
pub(crate) fn shorten(text: &str) -> String {
    if text.chars().count() <= 64 {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(64).collect();
    out.push('…');
    out
}

fn check_networks(list: &[String]) -> Result<BTreeSet<String>, Bad> {
    let mut out = BTreeSet::new();
    for (i, name) in list.iter().enumerate() {
        let field = format!("networks[{i}]");
        let valid = !name.is_empty()
            && name.len() <= 32
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(Bad::new(
                field,
                "a network name is 1 to 32 characters of a-z, 0-9 and '-'",
            ));
        }
        if !out.insert(name.clone()) {
            return Err(Bad::new(field, format!("{name} is listed twice")));
        }
    }
    Ok(out)
}

/// Parses an asset name written as a map key.
pub(crate) fn check_asset(name: &str, field: &str) -> Result<Asset, Bad> {
    name.parse::<Asset>()
        .map_err(|e| Bad::new(field, e.to_string()))
}

fn check_prices(raw: &BTreeMap<String, String>) -> Result<BTreeMap<Asset, u64>, Bad> {
    let mut out = BTreeMap::new();
    for (name, text) in raw {
        let field = format!("prices.{}", shorten(name));
        let asset = check_asset(name, &field)?;
        let price = parse_price(text).map_err(|p| Bad::new(&field, p))?;
        if asset == Asset::Usdc {
            if price != ONE_DOLLAR_NANOS {
                return Err(Bad::new(
                    field,
                    format!(
                        "USDC is always worth 1 USD; remove this price (got {})",
                        format_scaled(price, PRICE_SCALE)
                    ),
                ));
            }
            continue;
        }
        out.insert(asset, price);
    }
    Ok(out)
}

/// A name of a group or an approver: 1 to 64 characters of letters, digits, `.`, `_`, `-`, `@`.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

fn check_groups(raw: &BTreeMap<String, Vec<String>>) -> Result<BTreeMap<String, Vec<String>>, Bad> {
    let mut out = BTreeMap::new();
    for (name, members) in raw {
        let field = format!("groups.{}", shorten(name));
        if !valid_name(name) {
            return Err(Bad::new(
                field,
                "a group name is 1 to 64 letters, digits, '.', '_', '-' or '@'",
            ));
        }
        if members.is_empty() {
            return Err(Bad::new(field, "a group needs at least one approver"));
        }
        let mut seen = BTreeSet::new();
        for (i, member) in members.iter().enumerate() {
            let field = format!("{field}[{i}]");
            if !valid_name(member) {
                return Err(Bad::new(
                    field,
                    "an approver name is 1 to 64 letters, digits, '.', '_', '-' or '@'",
                ));
            }
            if !seen.insert(member) {
                return Err(Bad::new(field, format!("{member} is listed twice")));
            }
        }
        out.insert(name.clone(), members.clone());
    }
    Ok(out)
}

/// Parses a list of base58 addresses; duplicates are refused.
pub(crate) fn check_addresses(list: &[String], field: &str) -> Result<BTreeSet<Address>, Bad> {
    let mut out = BTreeSet::new();
    for (i, text) in list.iter().enumerate() {
        let field = format!("{field}[{i}]");
        let address = Address::parse(text).map_err(|e| Bad::new(&field, e.to_string()))?;
        if !out.insert(address) {
            return Err(Bad::new(field, format!("{address} is listed twice")));
        }
    }
    Ok(out)
}
