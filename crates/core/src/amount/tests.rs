use proptest::prelude::*;

use super::*;

fn units(text: &str) -> u64 {
    Amount::parse(text).map(|a| a.base_units()).unwrap_or(0)
}

#[test]
fn parses_each_asset_at_its_precision() {
    assert_eq!(units("2.5 USDC"), 2_500_000);
    assert_eq!(units("1 SOL"), 1_000_000_000);
    assert_eq!(units("0.000000001 SOL"), 1);
    assert_eq!(units("0.00001 BONK"), 1);
    assert_eq!(units("  7\tBONK "), 700_000);
    assert_eq!(units("007.50 USDC"), 7_500_000);
}

#[test]
fn refuses_each_malformed_shape_with_its_own_error() {
    let cases: &[(&str, AmountError)] = &[
        ("", AmountError::Empty),
        ("   ", AmountError::Empty),
        ("1e3 USDC", AmountError::Exponent),
        ("1E3 USDC", AmountError::Exponent),
        ("-1 SOL", AmountError::Signed),
        ("+1 SOL", AmountError::Signed),
        ("1,000 USDC", AmountError::Separator),
        ("1_000 USDC", AmountError::Separator),
        ("1 000 USDC", AmountError::Separator),
        (".5 USDC", AmountError::MalformedDecimal),
        ("5. USDC", AmountError::MalformedDecimal),
        ("1.2.3 USDC", AmountError::MalformedDecimal),
        ("0 USDC", AmountError::Zero),
        ("0.000000 USDC", AmountError::Zero),
        ("12", AmountError::MissingAsset),
        ("12USDC", AmountError::InvalidCharacter('U')),
        ("0x10 SOL", AmountError::InvalidCharacter('x')),
        ("١ USDC", AmountError::InvalidCharacter('١')),
        ("５ USDC", AmountError::InvalidCharacter('５')),
        ("NaN SOL", AmountError::InvalidCharacter('N')),
        ("1 usdc", AmountError::UnknownAsset("usdc".into())),
        ("1 DOGE", AmountError::UnknownAsset("DOGE".into())),
    ];
    for (text, expected) in cases {
        assert_eq!(
            Amount::parse(text).as_ref(),
            Err(expected),
            "input {text:?}"
        );
    }
}

#[test]
fn refuses_more_decimals_than_the_asset_has() {
    assert_eq!(
        Amount::parse("0.0000001 USDC"),
        Err(AmountError::TooManyDecimals {
            asset: Asset::Usdc,
            decimals: 6,
            given: 7
        })
    );
    assert!(Amount::parse("0.000001 BONK").is_err());
    assert!(Amount::parse("0.0000000001 SOL").is_err());
}

#[test]
fn refuses_overflow_and_accepts_the_maximum() {
    assert_eq!(
        Amount::parse("18446744073.709551615 SOL").map(|a| a.base_units()),
        Ok(u64::MAX)
    );
    assert_eq!(
        Amount::parse("18446744073.709551616 SOL"),
        Err(AmountError::Overflow(Asset::Sol))
    );
    assert_eq!(
        Amount::parse("99999999999999999999999999 USDC"),
        Err(AmountError::Overflow(Asset::Usdc))
    );
}

#[test]
fn formats_without_trailing_zeros() {
    let a = Amount::from_base_units(Asset::Usdc, 2_500_000).map(|a| a.to_string());
    assert_eq!(a.as_deref(), Ok("2.5 USDC"));
    let b = Amount::from_base_units(Asset::Sol, 1).map(|a| a.to_string());
    assert_eq!(b.as_deref(), Ok("0.000000001 SOL"));
    let c = Amount::from_base_units(Asset::Bonk, 100_000).map(|a| a.to_string());
    assert_eq!(c.as_deref(), Ok("1 BONK"));
}

#[test]
fn error_echo_of_unknown_asset_is_bounded() {
    let long = format!("1 {}", "X".repeat(10_000));
    let message = Amount::parse(&long)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(message.len() < 120, "{message}");
}

fn any_asset() -> impl Strategy<Value = Asset> {
    prop_oneof![Just(Asset::Sol), Just(Asset::Usdc), Just(Asset::Bonk)]
}

proptest! {
    #[test]
    fn format_then_parse_is_identity(asset in any_asset(), units in 1u64..=u64::MAX) {
        let amount = Amount::from_base_units(asset, units)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(Amount::parse(&amount.to_string()), Ok(amount));
    }

    #[test]
    fn parse_never_panics(text in "\\PC{0,40}") {
        let _ = Amount::parse(&text);
    }

    #[test]
    fn accepted_text_matches_the_published_pattern(
        text in "[0-9.eE+,_ -]{0,12} ?(SOL|USDC|BONK)?",
    ) {
        if let Ok(amount) = Amount::parse(&text) {
            let t = text.trim();
            let (num, sym) = t.split_once(' ').unwrap_or((t, ""));
            prop_assert!(num.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            prop_assert_eq!(sym.trim(), amount.asset().symbol());
        }
    }
}
