//! Calendar arithmetic for date windows and time-of-day windows, on integers only.
//!
//! Days are counted from 1970-01-01 (a Thursday) in UTC. A time window is a set of weekdays and
//! a span of minutes in a fixed UTC offset. When `from` is later than `to` the window wraps
//! midnight and belongs to the day it starts on: `fri 22:00-02:00` covers Friday 22:00 to
//! Saturday 02:00 local time. `to` is exclusive and may be `24:00`.

use serde::Serialize;

/// Milliseconds in a day.
const DAY_MS: u64 = 86_400_000;
/// Minutes in a day.
const DAY_MINUTES: i64 = 1_440;
/// Weekday names, Monday first, as written in the policy file.
pub(crate) const WEEKDAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// A weekly time-of-day window in a fixed UTC offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct TimeWindow {
    /// Bit `i` set: weekday `i` (Monday = 0) is included.
    pub(crate) days: u8,
    /// Start, minutes after local midnight (inclusive).
    pub(crate) from: u16,
    /// End, minutes after local midnight (exclusive), up to 1440.
    pub(crate) to: u16,
    /// Local time minus UTC, in minutes.
    pub(crate) offset: i16,
}

impl TimeWindow {
    /// Whether the instant `at_ms` falls inside the window.
    pub(crate) fn contains(&self, at_ms: u64) -> bool {
        let local = i64::try_from(at_ms / 60_000).unwrap_or(i64::MAX / 2) + i64::from(self.offset);
        let day = local.div_euclid(DAY_MINUTES);
        let minute = local.rem_euclid(DAY_MINUTES);
        let (from, to) = (i64::from(self.from), i64::from(self.to));
        if from < to {
            return self.has_day(day) && (from..to).contains(&minute);
        }
        (self.has_day(day) && minute >= from) || (self.has_day(day - 1) && minute < to)
    }

    fn has_day(&self, day: i64) -> bool {
        self.days & (1 << weekday(day)) != 0
    }
}

/// Monday = 0 for the day number `day` (1970-01-01 was a Thursday).
fn weekday(day: i64) -> u32 {
    u32::try_from((day + 3).rem_euclid(7)).unwrap_or(0)
}

/// The UTC day number of the instant `at_ms`.
pub(crate) fn utc_day(at_ms: u64) -> i64 {
    i64::try_from(at_ms / DAY_MS).unwrap_or(i64::MAX)
}

/// Parses `YYYY-MM-DD` (a real calendar date) into a day number.
pub(crate) fn parse_date(text: &str) -> Result<i64, String> {
    const SHAPE: &str = "expected a date as YYYY-MM-DD";
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(SHAPE.into());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = &b[range];
        if !part.iter().all(u8::is_ascii_digit) {
            return Err(SHAPE.to_owned());
        }
        Ok(part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(format!("{text} is not a calendar date"));
    }
    Ok(days_from_civil(year, month, day))
}

/// Formats a day number as `YYYY-MM-DD`.
pub(crate) fn format_date(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Parses `HH:MM` (00:00 to 24:00) into minutes after midnight.
pub(crate) fn parse_clock(text: &str) -> Result<u16, String> {
    const SHAPE: &str = "expected a time as HH:MM, 00:00 to 24:00";
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' || ![0, 1, 3, 4].iter().all(|&i| b[i].is_ascii_digit()) {
        return Err(SHAPE.into());
    }
    let hours = u16::from(b[0] - b'0') * 10 + u16::from(b[1] - b'0');
    let minutes = u16::from(b[3] - b'0') * 10 + u16::from(b[4] - b'0');
    let total = hours * 60 + minutes;
    if minutes > 59 || total > 1_440 {
        return Err(SHAPE.into());
    }
    Ok(total)
}

/// Parses `+HH:MM` or `-HH:MM` (at most 14 hours) into minutes.
pub(crate) fn parse_offset(text: &str) -> Result<i16, String> {
    const SHAPE: &str = "expected a UTC offset as +HH:MM or -HH:MM";
    let (sign, rest) = match text.as_bytes().first() {
        Some(b'+') => (1, &text[1..]),
        Some(b'-') => (-1, &text[1..]),
        _ => return Err(SHAPE.into()),
    };
    let minutes = parse_clock(rest).map_err(|_| SHAPE.to_owned())?;
    if minutes > 14 * 60 {
        return Err("a UTC offset is at most 14 hours".into());
    }
    Ok(sign * i16::try_from(minutes).unwrap_or(0))
}

/// Parses a weekday name as written in the file (`mon` ... `sun`) into Monday = 0.
pub(crate) fn parse_weekday(text: &str) -> Result<u8, String> {
    WEEKDAYS
        .iter()
        .position(|d| *d == text)
        .and_then(|i| u8::try_from(i).ok())
        .ok_or_else(|| {
            format!(
                "unknown day {text:?}: expected one of {}",
                WEEKDAYS.join(", ")
            )
        })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the era-based civil-calendar method).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
#[path = "window_tests.rs"]
mod tests;
