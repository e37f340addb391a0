//! Timestamps that other programs wrote as text.

use crate::store::input::MAX_TIMESTAMP_MS;

// ---------------------------------------------------------------------------
// Timestamps written as text by other programs
// ---------------------------------------------------------------------------

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
    let b = s.as_bytes();
    let mut p = Cursor { b, i: 0 };
    let year = p.digits(4)? as i64;
    p.expect(b'-')?;
    let month = p.digits(2)?;
    p.expect(b'-')?;
    let day = p.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut ms_of_day: i64 = 0;
    let mut offset_min: i64 = 0;
    if !p.done() {
        match p.next()? {
            b'T' | b't' | b' ' => {}
            _ => return None,
        }
        let hour = p.digits(2)? as i64;
        p.expect(b':')?;
        let minute = p.digits(2)? as i64;
        let mut second = 0i64;
        let mut millis = 0i64;
        if p.peek() == Some(b':') {
            p.i += 1;
            second = p.digits(2)? as i64;
            if p.peek() == Some(b'.') || p.peek() == Some(b',') {
                p.i += 1;
                let start = p.i;
                let mut frac = 0i64;
                let mut n = 0;
                while let Some(d) = p.peek().filter(u8::is_ascii_digit) {
                    if n < 3 {
                        frac = frac * 10 + i64::from(d - b'0');
                        n += 1;
                    }
                    p.i += 1;
                }
                if p.i == start {
                    return None;
                }
                while n < 3 {
                    frac *= 10;
                    n += 1;
                }
                millis = frac;
            }
        }
        if hour > 24
            || minute > 59
            || second > 60
            || (hour == 24 && (minute, second, millis) != (0, 0, 0))
        {
            return None;
        }
        ms_of_day = ((hour * 60 + minute) * 60 + second) * 1000 + millis;
        while p.peek() == Some(b' ') {
            p.i += 1;
        }
        match p.peek() {
            None => {}
            Some(b'Z') | Some(b'z') => {
                p.i += 1;
            }
            Some(sign @ (b'+' | b'-')) => {
                p.i += 1;
                let oh = p.digits(2)? as i64;
                let mut om = 0i64;
                if p.peek() == Some(b':') {
                    p.i += 1;
                    om = p.digits(2)? as i64;
                } else if !p.done() {
                    om = p.digits(2)? as i64;
                }
                if oh > 23 || om > 59 {
                    return None;
                }
                offset_min = (oh * 60 + om) * if sign == b'+' { 1 } else { -1 };
            }
            Some(_) => return None,
        }
        if !p.done() {
            return None;
        }
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400_000 + ms_of_day - offset_min * 60_000)
}

fn looks_like_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 10 && b[4] == b'-' && b[7] == b'-'
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }
    fn next(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.i += 1;
        Some(c)
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }
    fn digits(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let d = self.next()?;
            if !d.is_ascii_digit() {
                return None;
            }
            v = v * 10 + u32::from(d - b'0');
        }
        Some(v)
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_text_timestamps() {
        let cases: [(&str, Option<i64>); 14] = [
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
            ("2023-02-29", None),
            ("yesterday", None),
            ("2023-11-14T22:13:20Zjunk", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_timestamp_text(text), want, "{text}");
        }
    }
}
