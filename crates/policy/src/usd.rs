//! Exact conversion of a payment to US dollars with operator-configured prices.
//!
//! There is no live oracle: the operator writes a price per whole unit in the policy file, and
//! USDC is always worth exactly one dollar. A price is held as integer nano-USD per whole unit and
//! a USD value as integer micro-USD; the conversion multiplies in `u128` (which cannot overflow
//! for two `u64` factors) and divides rounding up, so a payment is never valued below its true
//! worth and a USD cap is never passed by rounding. A value that does not fit in `u64` micro-USD
//! is refused (`None`), and every rule that needs it then denies.

use std::collections::BTreeMap;

use clawfirst_core::Asset;

use crate::decimal::{PRICE_SCALE, USD_SCALE};

/// One dollar in nano-USD: the fixed price of USDC.
pub(crate) const ONE_DOLLAR_NANOS: u64 = 1_000_000_000;

/// Prices in nano-USD per whole unit, indexed by [`Asset::tag`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Prices([Option<u64>; 3]);

impl Prices {
    /// Prices from the checked map, with USDC fixed at one dollar.
    pub(crate) fn new(configured: &BTreeMap<Asset, u64>) -> Self {
        let mut out = [None; 3];
        for (asset, price) in configured {
            out[usize::from(asset.tag())] = Some(*price);
        }
        out[usize::from(Asset::Usdc.tag())] = Some(ONE_DOLLAR_NANOS);
        Self(out)
    }

    /// The price of one whole unit of `asset`, if known.
    pub(crate) fn price(&self, asset: Asset) -> Option<u64> {
        self.0.get(usize::from(asset.tag())).copied().flatten()
    }

    /// The USD value of `base_units` of `asset` in micro-USD, rounded up; `None` without a
    /// price or when the value does not fit in `u64`.
    pub(crate) fn usd_micros(&self, asset: Asset, base_units: u64) -> Option<u64> {
        to_usd_micros(base_units, asset.decimals(), self.price(asset)?)
    }
}

/// `ceil(base_units * price_nanos / 10^(decimals + PRICE_SCALE - USD_SCALE))`.
pub(crate) fn to_usd_micros(base_units: u64, decimals: u8, price_nanos: u64) -> Option<u64> {
    let product = u128::from(base_units) * u128::from(price_nanos);
    let exponent = u32::from(decimals) + u32::from(PRICE_SCALE - USD_SCALE);
    let divisor = 10u128.checked_pow(exponent)?;
    let micros = product.div_ceil(divisor);
    u64::try_from(micros).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn usdc_is_exact_and_one_to_one() {
        let prices = Prices::new(&BTreeMap::new());
        assert_eq!(prices.usd_micros(Asset::Usdc, 2_500_000), Some(2_500_000));
        assert_eq!(prices.usd_micros(Asset::Usdc, u64::MAX), Some(u64::MAX));
        assert_eq!(
            prices.usd_micros(Asset::Sol, 1),
            None,
            "no SOL price configured"
        );
    }

    #[test]
    fn rounds_up_to_the_next_micro_dollar() {
        // 1 lamport at 150.25 USD/SOL is 0.00000015025 USD: rounds up to 1 micro-USD.
        assert_eq!(to_usd_micros(1, 9, 150_250_000_000), Some(1));
        // 1 SOL at 150.25 is exact.
        assert_eq!(
            to_usd_micros(1_000_000_000, 9, 150_250_000_000),
            Some(150_250_000)
        );
        // 1 BONK base unit (0.00001 BONK) at 0.0000231 USD: 2.31e-10 USD -> 1 micro-USD.
        assert_eq!(to_usd_micros(1, 5, 23_100), Some(1));
        // 1,000,000 BONK = 23.1 USD exactly.
        assert_eq!(to_usd_micros(100_000_000_000, 5, 23_100), Some(23_100_000));
    }

    #[test]
    fn refuses_values_beyond_u64() {
        assert_eq!(to_usd_micros(u64::MAX, 9, u64::MAX), None);
        assert_eq!(to_usd_micros(u64::MAX, 6, 2 * ONE_DOLLAR_NANOS), None);
    }

    proptest! {
        #[test]
        fn never_undervalues(units in 1u64.., decimals in 0u8..=9, price in 1u64..) {
            if let Some(micros) = to_usd_micros(units, decimals, price) {
                let exact = u128::from(units) * u128::from(price);
                let divisor = 10u128.pow(u32::from(decimals) + 3);
                prop_assert!(u128::from(micros) * divisor >= exact);
                prop_assert!((u128::from(micros) - 1) * divisor < exact);
            }
        }
    }
}
