//! Strict parsers for the numbers of a policy file: prices, USD values, whole-unit amounts and
//! durations.
//!
//! Every parser accepts exactly one shape and refuses everything else: no floating point, no
//! exponent, no sign, no digit separators, no whitespace, ASCII digits only. Values become
//! integers at a fixed scale, so nothing downstream ever rounds.

use clawfirst_core::{Amount, Asset};

/// Decimal places of a price: prices are integer nano-USD per whole unit.
pub(crate) const PRICE_SCALE: u8 = 9;
/// Decimal places of a USD value: USD values are integer micro-USD.
pub(crate) const USD_SCALE: u8 = 6;

/// Parses `DIGITS[.DIGITS]` into an integer scaled by `10^scale`.
///
/// Zero is accepted here; callers that need a positive value say so.
pub(crate) fn parse_scaled(text: &str, scale: u8) -> Result<u64, String> {
    if text.is_empty() {
        return Err("expected a decimal number such as \"12.5\", got an empty string".into());
    }
    if let Some(bad) = text.chars().find(|c| !c.is_ascii_digit() && *c != '.') {
        return Err(match bad {
            '+' | '-' => "a sign is not allowed".to_owned(),
            'e' | 'E' => "an exponent is not allowed".to_owned(),
            ',' | '_' | '\'' | ' ' => "digit separators are not allowed".to_owned(),
            other => format!("{other:?} is not an ASCII digit or decimal point"),
        });
    }
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty() || frac.contains('.') || (text.contains('.') && frac.is_empty()) {
        return Err("expected digits on both sides of a single decimal point".into());
    }
    if frac.len() > usize::from(scale) {
        return Err(format!("at most {scale} decimal places are allowed"));
    }

    let padding = usize::from(scale) - frac.len();
    let digits = whole
        .bytes()
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', padding));
    let mut value: u64 = 0;
    for d in digits {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| "the number is too large".to_owned())?;
    }
    Ok(value)
}

/// Formats an integer scaled by `10^scale` as the shortest decimal, e.g. `12500000, 6 -> 12.5`.
pub(crate) fn format_scaled(value: u64, scale: u8) -> String {
    let scale = usize::from(scale);
    let digits = format!("{value:0>width$}", width = scale + 1);
    let (whole, frac) = digits.split_at(digits.len() - scale);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        whole.to_owned()
    } else {
        format!("{whole}.{frac}")
    }
}

/// A positive USD value in micro-USD.
pub(crate) fn parse_usd(text: &str) -> Result<u64, String> {
    match parse_scaled(text, USD_SCALE)? {
        0 => Err("must be greater than zero".into()),
        v => Ok(v),
    }
}

/// A USD value for messages, e.g. `500 USD`.
pub(crate) fn format_usd(micros: u64) -> String {
    format!("{} USD", format_scaled(micros, USD_SCALE))
}

/// A positive price in nano-USD per whole unit.
pub(crate) fn parse_price(text: &str) -> Result<u64, String> {
    match parse_scaled(text, PRICE_SCALE)? {
        0 => Err("a price must be greater than zero".into()),
        v => Ok(v),
    }
}

/// A positive whole-unit amount of `asset` (`"2.5"` for 2.5 USDC), in base units.
///
/// The number follows [`Amount::parse`]'s rules; the asset comes from the map key.
pub(crate) fn parse_amount(text: &str, asset: Asset) -> Result<u64, String> {
    if text.is_empty() || text.contains(|c: char| c.is_whitespace()) {
        return Err("expected a decimal number such as \"12.5\" with no whitespace".into());
    }
    Amount::parse(&format!("{text} {asset}"))
        .map(|a| a.base_units())
        .map_err(|e| e.to_string())
}

/// Formats base units of `asset` for messages, e.g. `100 USDC`.
pub(crate) fn format_amount(asset: Asset, base_units: u64) -> String {
    format!("{} {asset}", format_scaled(base_units, asset.decimals()))
}

/// A positive duration such as `90s`, `30m`, `1h` or `2d`, in milliseconds.
pub(crate) fn parse_duration(text: &str) -> Result<u64, String> {
    const SHAPE: &str = "expected a whole number and a unit s, m, h or d, e.g. \"30m\"";
    let Some(unit) = text.chars().last() else {
        return Err(SHAPE.into());
    };
    let unit_ms: u64 = match unit {
        's' => 1_000,
        'm' => 60_000,
        'h' => 3_600_000,
        'd' => 86_400_000,
        _ => return Err(SHAPE.into()),
    };
    let number = &text[..text.len() - 1];
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) || number.len() > 12 {
        return Err(SHAPE.into());
    }
    let mut n: u64 = 0;
    for d in number.bytes() {
        n = n * 10 + u64::from(d - b'0');
    }
    match n.checked_mul(unit_ms) {
        Some(0) => Err("must be greater than zero".into()),
        Some(ms) => Ok(ms),
        None => Err("the duration is too long".into()),
    }
}

#[cfg(test)]
#[path = "decimal_tests.rs"]
mod tests;
