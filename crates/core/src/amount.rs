//! Strict parsing and lossless formatting of payment amounts.
//!
//! An amount arrives from an agent as text such as `2.5 USDC`. It is parsed into an integer
//! number of the asset's base units, with no floating point at any step, and every input that is
//! not exactly `DIGITS[.DIGITS] WHITESPACE ASSET` is refused with an error naming the problem.
//! Formatting gives back the shortest decimal form, so `parse(format(a)) == a` for every amount.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::asset::{Asset, truncate_for_error};

/// A positive quantity of one asset, in the asset's base units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Amount {
    asset: Asset,
    base_units: u64,
}

/// Why an amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AmountError {
    /// The text was empty or only whitespace.
    #[error("amount is empty: expected a decimal number, a space and an asset, e.g. \"2.5 USDC\"")]
    Empty,
    /// No whitespace separated the number from the asset.
    #[error("amount must be a number, whitespace, then SOL, USDC or BONK, e.g. \"2.5 USDC\"")]
    MissingAsset,
    /// A sign was written before the number.
    #[error("amount must not carry a sign")]
    Signed,
    /// The number used an exponent such as `1e3`.
    #[error("amount must not use an exponent")]
    Exponent,
    /// The number contained a digit-group separator (`,`, `_`, `'` or a space inside it).
    #[error("amount must not contain digit separators")]
    Separator,
    /// A character other than an ASCII digit or one decimal point appeared in the number.
    #[error("amount contains {0:?}, which is not an ASCII digit or decimal point")]
    InvalidCharacter(char),
    /// The number started or ended with the decimal point, or had more than one.
    #[error("amount must have digits on both sides of a single decimal point")]
    MalformedDecimal,
    /// More fractional digits than the asset has decimals.
    #[error("{asset} has {decimals} decimals but the amount has {given}")]
    TooManyDecimals {
        /// The asset named.
        asset: Asset,
        /// Its number of decimals.
        decimals: u8,
        /// How many fractional digits were given.
        given: usize,
    },
    /// The amount was zero.
    #[error("amount must be greater than zero")]
    Zero,
    /// The amount does not fit in 64 bits of base units.
    #[error("amount is too large for {0}")]
    Overflow(Asset),
    /// The asset symbol was not recognised.
    #[error("unknown asset {0:?}: expected SOL, USDC or BONK")]
    UnknownAsset(String),
}

impl Amount {
    /// An amount of `base_units` of `asset`, refusing zero.
    ///
    /// # Errors
    /// [`AmountError::Zero`] when `base_units` is zero.
    pub fn from_base_units(asset: Asset, base_units: u64) -> Result<Self, AmountError> {
        if base_units == 0 {
            return Err(AmountError::Zero);
        }
        Ok(Self { asset, base_units })
    }

    /// The asset.
    pub const fn asset(&self) -> Asset {
        self.asset
    }

    /// The quantity in base units (lamports for SOL).
    pub const fn base_units(&self) -> u64 {
        self.base_units
    }

    /// Parses `"<number> <ASSET>"`, e.g. `"2.5 USDC"`.
    ///
    /// # Errors
    /// An [`AmountError`] naming the first problem found.
    pub fn parse(text: &str) -> Result<Self, AmountError> {
        let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
        if trimmed.is_empty() {
            return Err(AmountError::Empty);
        }

        let Some(split) = trimmed.find(|c: char| c.is_ascii_whitespace()) else {
            check_number_chars(trimmed)?;
            return Err(AmountError::MissingAsset);
        };
        let number = &trimmed[..split];
        let symbol = trimmed[split..].trim_start_matches(|c: char| c.is_ascii_whitespace());
        if symbol.contains(|c: char| c.is_ascii_whitespace()) {
            // "1 000 USDC": whitespace inside the number.
            let first = symbol.split(|c: char| c.is_ascii_whitespace()).next();
            if first.is_some_and(|w| w.bytes().all(|b| b.is_ascii_digit())) {
                return Err(AmountError::Separator);
            }
            return Err(AmountError::UnknownAsset(truncate_for_error(symbol)));
        }

        let base_units = parse_number(number, symbol)?;
        Amount::from_base_units(base_units.0, base_units.1)
    }

    /// The decimal number without the asset, e.g. `"2.5"`.
    pub fn decimal_string(&self) -> String {
        let decimals = usize::from(self.asset.decimals());
        let digits = self.base_units.to_string();
        let (whole, frac) = if digits.len() > decimals {
            let (w, f) = digits.split_at(digits.len() - decimals);
            (w.to_owned(), f.to_owned())
        } else {
            ("0".to_owned(), format!("{digits:0>decimals$}"))
        };
        let frac = frac.trim_end_matches('0');
        if frac.is_empty() {
            whole
        } else {
            format!("{whole}.{frac}")
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal_string(), self.asset)
    }
}

impl std::str::FromStr for Amount {
    type Err = AmountError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Amount::parse(s)
    }
}

/// Classifies the first character that may not appear in a number.
fn check_number_chars(number: &str) -> Result<(), AmountError> {
    for (i, c) in number.char_indices() {
        match c {
            '0'..='9' | '.' => {}
            '+' | '-' if i == 0 => return Err(AmountError::Signed),
            'e' | 'E' if i > 0 => return Err(AmountError::Exponent),
            ',' | '_' | '\'' => return Err(AmountError::Separator),
            other => return Err(AmountError::InvalidCharacter(other)),
        }
    }
    Ok(())
}

/// Parses the number part against the asset's precision, returning the asset and base units.
fn parse_number(number: &str, symbol: &str) -> Result<(Asset, u64), AmountError> {
    check_number_chars(number)?;
    let asset: Asset = symbol
        .parse()
        .map_err(|_| AmountError::UnknownAsset(truncate_for_error(symbol)))?;

    let mut parts = number.split('.');
    let whole = parts.next().unwrap_or_default();
    let frac = parts.next();
    if parts.next().is_some() || whole.is_empty() || frac.is_some_and(str::is_empty) {
        return Err(AmountError::MalformedDecimal);
    }
    let frac = frac.unwrap_or_default();

    let decimals = asset.decimals();
    if frac.len() > usize::from(decimals) {
        return Err(AmountError::TooManyDecimals {
            asset,
            decimals,
            given: frac.len(),
        });
    }

    let mut units: u64 = 0;
    let padding = usize::from(decimals) - frac.len();
    let digits = whole
        .bytes()
        .chain(frac.bytes())
        .chain(std::iter::repeat_n(b'0', padding));
    for d in digits {
        units = units
            .checked_mul(10)
            .and_then(|u| u.checked_add(u64::from(d - b'0')))
            .ok_or(AmountError::Overflow(asset))?;
    }
    Ok((asset, units))
}

#[cfg(test)]
mod tests;
