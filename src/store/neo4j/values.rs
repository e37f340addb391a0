//! What a stored property becomes: positions and timestamps as epoch
//! milliseconds (integers as they are, DateTimes converted, text parsed).

use super::packstream::Value;
use crate::store::timestamp::parse_timestamp_text;

/// PackStream tags of the temporal structures Bolt 3 and 4 send.
const DATE_TIME_OFFSET: u8 = b'F';
const DATE_TIME_ZONE: u8 = b'f';
const LOCAL_DATE_TIME: u8 = b'd';
/// Bolt 5's (UTC seconds), should a server ever send them.
const DATE_TIME_OFFSET_UTC: u8 = b'I';
const DATE_TIME_ZONE_UTC: u8 = b'i';

/// Zone names that are UTC (the only zone a Bolt 3/4 zone-id DateTime can
/// be converted without a time-zone database).
fn is_utc(zone: &str) -> bool {
    matches!(
        zone,
        "UTC" | "Z" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Etc/Universal" | "Universal"
    )
}

fn millis(seconds: i64, nanos: i64) -> i64 {
    seconds * 1000 + nanos.div_euclid(1_000_000)
}

/// Epoch milliseconds of a stored position or timestamp, `None` for null
/// or a value that is no point in time.
pub fn epoch_millis(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        Value::Float(f) if f.is_finite() => Some(*f as i64),
        Value::String(s) => parse_timestamp_text(s),
        Value::Struct(tag, fields) => {
            let int = |i: usize| fields.get(i).and_then(Value::as_int);
            let (seconds, nanos) = (int(0)?, int(1)?);
            match *tag {
                // Bolt 3/4: seconds are the local time's
                DATE_TIME_OFFSET => Some(millis(seconds - int(2)?, nanos)),
                DATE_TIME_ZONE if fields.get(2).and_then(Value::as_str).is_some_and(is_utc) => {
                    Some(millis(seconds, nanos))
                }
                LOCAL_DATE_TIME => Some(millis(seconds, nanos)),
                DATE_TIME_OFFSET_UTC | DATE_TIME_ZONE_UTC => Some(millis(seconds, nanos)),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_of_time() {
        let dt = |tag: u8, s: i64, n: i64, third: Value| {
            Value::Struct(tag, vec![Value::Int(s), Value::Int(n), third])
        };
        assert_eq!(epoch_millis(&Value::Int(42)), Some(42));
        assert_eq!(
            epoch_millis(&dt(b'F', 100, 5_000_000, Value::Int(0))),
            Some(100_005)
        );
        // 01:00:00+01:00 is midnight UTC
        assert_eq!(epoch_millis(&dt(b'F', 3600, 0, Value::Int(3600))), Some(0));
        assert_eq!(
            epoch_millis(&dt(b'f', 7, 999_999, "UTC".into())),
            Some(7000)
        );
        assert_eq!(epoch_millis(&dt(b'f', 7, 0, "Europe/Paris".into())), None);
        assert_eq!(
            epoch_millis(&Value::String("1970-01-01T00:00:01.5Z".into())),
            Some(1500)
        );
        assert_eq!(epoch_millis(&Value::Null), None);
    }
}
