use proptest::prelude::*;

use super::*;

#[test]
fn parses_scaled_decimals_exactly() {
    assert_eq!(parse_scaled("150.25", 9), Ok(150_250_000_000));
    assert_eq!(parse_scaled("0.0000231", 9), Ok(23_100));
    assert_eq!(parse_scaled("1", 6), Ok(1_000_000));
    assert_eq!(parse_scaled("007.5", 6), Ok(7_500_000));
    assert_eq!(parse_scaled("18446744073709.551615", 6), Ok(u64::MAX));
}

#[test]
fn refuses_every_other_shape() {
    for bad in [
        "",
        "-1",
        "+1",
        "1e3",
        "1E3",
        "1_000",
        "1,000",
        "1 000",
        ".5",
        "5.",
        "1.2.3",
        "١",
        "５",
        "0x10",
        "NaN",
        "inf",
        " 1",
        "1 ",
        "0.0000001",
        "18446744073709.551616",
    ] {
        assert!(parse_scaled(bad, 6).is_err(), "accepted {bad:?}");
    }
    assert_eq!(parse_usd("0"), Err("must be greater than zero".into()));
    assert!(parse_price("0.0000000001").is_err(), "10 decimals");
}

#[test]
fn parses_durations() {
    assert_eq!(parse_duration("30m"), Ok(1_800_000));
    assert_eq!(parse_duration("1h"), Ok(3_600_000));
    assert_eq!(parse_duration("2d"), Ok(172_800_000));
    assert_eq!(parse_duration("90s"), Ok(90_000));
    for bad in [
        "",
        "h",
        "0m",
        "1.5h",
        "-1h",
        "1H",
        "1 h",
        "1w",
        "999999999999999d",
    ] {
        assert!(parse_duration(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn amounts_follow_the_core_parser() {
    assert_eq!(parse_amount("2.5", Asset::Usdc), Ok(2_500_000));
    assert_eq!(parse_amount("0.000000001", Asset::Sol), Ok(1));
    for bad in ["0", " 1", "1 ", "1e2", "-1", "0.0000001", "1 000"] {
        assert!(parse_amount(bad, Asset::Usdc).is_err(), "accepted {bad:?}");
    }
    assert_eq!(format_amount(Asset::Usdc, 100_000_000), "100 USDC");
}

proptest! {
    #[test]
    fn format_then_parse_is_identity(value in any::<u64>(), scale in 0u8..=9) {
        prop_assert_eq!(parse_scaled(&format_scaled(value, scale), scale), Ok(value));
    }

    #[test]
    fn accepts_only_ascii_digits_and_one_point(text in "\\PC{0,24}") {
        if parse_scaled(&text, 9).is_ok() {
            prop_assert!(text.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
            prop_assert!(text.matches('.').count() <= 1);
            prop_assert!(!text.starts_with('.') && !text.ends_with('.'));
        }
        let _ = parse_duration(&text);
        let _ = parse_amount(&text, Asset::Bonk);
    }

    #[test]
    fn rejects_signs_exponents_and_separators(
        digits in "[0-9]{1,6}",
        junk in prop_oneof![Just("-"), Just("+"), Just("e"), Just("E"), Just("_"), Just(","),
            Just("٣"), Just("３"), Just(" ")],
        at_start in any::<bool>(),
    ) {
        let text = if at_start { format!("{junk}{digits}") } else { format!("{digits}{junk}1") };
        prop_assert!(parse_scaled(&text, 6).is_err(), "accepted {:?}", text);
    }
}
