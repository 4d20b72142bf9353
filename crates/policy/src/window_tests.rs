use super::*;

/// Milliseconds of a UTC date and time.
fn at(date: &str, hour: u64, minute: u64) -> u64 {
    let day = parse_date(date).unwrap_or_else(|e| unreachable!("{e}"));
    let day = u64::try_from(day).unwrap_or_else(|_| unreachable!("after 1970"));
    day * DAY_MS + (hour * 60 + minute) * 60_000
}

fn window(days: &[&str], from: &str, to: &str, offset: &str) -> TimeWindow {
    let days = days.iter().fold(0u8, |acc, d| {
        acc | 1 << parse_weekday(d).unwrap_or_else(|e| unreachable!("{e}"))
    });
    TimeWindow {
        days,
        from: parse_clock(from).unwrap_or_else(|e| unreachable!("{e}")),
        to: parse_clock(to).unwrap_or_else(|e| unreachable!("{e}")),
        offset: parse_offset(offset).unwrap_or_else(|e| unreachable!("{e}")),
    }
}

#[test]
fn dates_round_trip_and_refuse_non_dates() {
    assert_eq!(parse_date("1970-01-01"), Ok(0));
    assert_eq!(parse_date("2000-03-01"), Ok(11_017));
    assert_eq!(format_date(11_017), "2000-03-01");
    for day in [-1000, 0, 59, 60, 10_000, 20_000, 50_000] {
        assert_eq!(parse_date(&format_date(day)), Ok(day));
    }
    assert!(parse_date("2024-02-29").is_ok(), "leap day");
    for bad in [
        "2023-02-29",
        "2026-13-01",
        "2026-00-10",
        "2026-1-01",
        "20260101",
        "２０２６-01-01",
    ] {
        assert!(parse_date(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn weekday_of_known_dates() {
    // 2026-01-05 is a Monday.
    let monday = window(&["mon"], "00:00", "24:00", "+00:00");
    assert!(monday.contains(at("2026-01-05", 0, 0)));
    assert!(monday.contains(at("2026-01-05", 23, 59)));
    assert!(!monday.contains(at("2026-01-06", 0, 0)));
    assert!(!monday.contains(at("2026-01-04", 23, 59)));
}

#[test]
fn offsets_shift_the_local_day_and_hour() {
    // Office hours in UTC+01:00: 08:00 local is 07:00 UTC.
    let office = window(
        &["mon", "tue", "wed", "thu", "fri"],
        "08:00",
        "18:00",
        "+01:00",
    );
    assert!(!office.contains(at("2026-01-05", 6, 59)));
    assert!(office.contains(at("2026-01-05", 7, 0)));
    assert!(office.contains(at("2026-01-05", 16, 59)));
    assert!(!office.contains(at("2026-01-05", 17, 0)), "to is exclusive");
    // Friday 23:30 UTC is Saturday 00:30 in UTC+01:00: outside.
    let late = window(&["fri"], "00:00", "24:00", "+01:00");
    assert!(!late.contains(at("2026-01-09", 23, 30)));
    // Monday 02:00 UTC is Sunday 21:00 in UTC-05:00.
    let sunday_west = window(&["sun"], "20:00", "22:00", "-05:00");
    assert!(sunday_west.contains(at("2026-01-12", 2, 0)));
}

#[test]
fn a_window_with_from_after_to_wraps_midnight_from_its_start_day() {
    let night = window(&["fri"], "22:00", "02:00", "+00:00");
    // 2026-01-09 is a Friday.
    assert!(night.contains(at("2026-01-09", 22, 0)));
    assert!(
        night.contains(at("2026-01-10", 1, 59)),
        "Saturday early belongs to Friday"
    );
    assert!(!night.contains(at("2026-01-10", 2, 0)));
    assert!(
        !night.contains(at("2026-01-09", 1, 0)),
        "Friday early belongs to Thursday"
    );
    assert!(
        !night.contains(at("2026-01-10", 22, 30)),
        "Saturday night is not listed"
    );
}

#[test]
fn clock_and_offset_parsers_are_strict() {
    assert_eq!(parse_clock("24:00"), Ok(1_440));
    for bad in ["24:01", "7:00", "07:60", "07-00", "0700", "+1:00"] {
        assert!(parse_clock(bad).is_err(), "accepted {bad:?}");
    }
    assert_eq!(parse_offset("-05:30"), Ok(-330));
    for bad in ["05:00", "+15:00", "+5:00", "Z"] {
        assert!(parse_offset(bad).is_err(), "accepted {bad:?}");
    }
}
