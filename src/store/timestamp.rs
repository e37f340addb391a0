//! Timestamps that other programs wrote as text.

use std::str::FromStr;

use chrono::{FixedOffset, NaiveDate, NaiveTime};

use crate::store::input::MAX_TIMESTAMP_MS;

/// Epoch milliseconds of a timestamp stored as text: a number of
/// milliseconds, or an ISO 8601 / SQL date-time such as
/// `2024-05-06T07:08:09.123Z`, `2024-05-06 07:08:09` (no zone: UTC, as
/// SQLite's `CURRENT_TIMESTAMP`), `2024-05-06T07:08:09+02:00` or
/// `2024-05-06`. `None` when the text is none of these.
pub fn parse_timestamp_text(text: &str) -> Option<i64> {
    let s = text.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        && !looks_like_date(s)
    {
        let v: f64 = s.parse().ok()?;
        return (v.is_finite() && v.abs() <= MAX_TIMESTAMP_MS).then(|| v.round() as i64);
    }
    date_time_ms(s)
}

/// `YYYY-MM-DD`, then optionally `T` (or `t` or a space) and `HH:MM`,
/// `HH:MM:SS` or `HH:MM:SS.fff` (or `,fff`), then optionally `Z` or an
/// offset (`+02:00`, `-0200`), spaces allowed before it.
fn date_time_ms(s: &str) -> Option<i64> {
    let (date, rest) = NaiveDate::parse_and_remainder(s, "%Y-%m-%d").ok()?;
    if rest.is_empty() {
        return Some(date.and_time(NaiveTime::MIN).and_utc().timestamp_millis());
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?.replacen(',', ".", 1);
    let (time, zone) = NaiveTime::parse_and_remainder(&rest, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_and_remainder(&rest, "%H:%M"))
        .ok()?;
    let offset_ms = match zone.trim_start() {
        "" | "Z" | "z" => 0,
        zone => i64::from(FixedOffset::from_str(zone).ok()?.local_minus_utc()) * 1000,
    };
    // Milliseconds, the fraction cut as the original parser did (not rounded).
    let utc = date.and_time(time).and_utc();
    Some(utc.timestamp() * 1000 + i64::from(utc.timestamp_subsec_millis()) - offset_ms)
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10 && b[4] == b'-' && b[7] == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_timestamps() {
        let cases: [(&str, Option<i64>); 18] = [
            ("1700000000000", Some(1_700_000_000_000)),
            ("1700000000000.6", Some(1_700_000_000_001)),
            ("1970-01-01 00:00:00", Some(0)),
            ("2023-11-14 22:13:20", Some(1_700_000_000_000)),
            ("2023-11-14T22:13:20.123Z", Some(1_700_000_000_123)),
            ("2023-11-14T22:13:20.1234567Z", Some(1_700_000_000_123)),
            ("2023-11-15T00:13:20+02:00", Some(1_700_000_000_000)),
            ("2023-11-14T20:13:20-0200", Some(1_700_000_000_000)),
            ("2023-11-14 22:13", Some(1_699_999_980_000)),
            ("2000-02-29", Some(951_782_400_000)),
            ("1969-12-31T23:59:59.000Z", Some(-1000)),
            ("2023-11-14t22:13:20.5z", Some(1_700_000_000_500)),
            ("2023-11-14 22:13:20,123", Some(1_700_000_000_123)),
            ("2023-11-14 22:13:20 +02:00", Some(1_699_992_800_000)),
            ("2023-11-14T25:13:20Z", None),
            ("2023-02-29", None),
            ("yesterday", None),
            ("2023-11-14T22:13:20Zjunk", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_timestamp_text(text), want, "{text}");
        }
    }
}
