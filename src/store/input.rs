//! What JavaScript hands the core, checked: the events of an append, and
//! positions, versions, limits and stream lists.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Result, StoreError};

/// The largest integer a JS number holds exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// The range of a JS `Date`, in milliseconds either side of the epoch.
pub(crate) const MAX_TIMESTAMP_MS: f64 = 8.64e15;

/// An event to append: its time and its JSON text (an object with a string
/// `type`), borrowed from the JSON the caller handed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEvent<'a> {
    pub timestamp: i64,
    pub event: &'a str,
}

#[derive(Deserialize)]
struct IncomingEvent<'a> {
    timestamp: Option<f64>,
    #[serde(borrow)]
    event: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct EventHead<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<&'a RawValue>,
}

/// Parses the `eventsJson` argument of `append`:
/// `[{"timestamp": ms, "event": {"type": "...", ...}}, ...]`.
/// The event texts are borrowed from `json`, never re-serialised.
pub fn parse_new_events(json: &str) -> Result<Vec<NewEvent<'_>>> {
    let items: Vec<&RawValue> = serde_json::from_str(json).map_err(|e| {
        StoreError::invalid_event(format!(
            "the events are not a valid JSON array ({e}): pass a JSON array of {{\"timestamp\": ms, \"event\": {{\"type\": \"...\"}}}}"
        ))
    })?;
    let mut out = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        out.push(parse_one(index, item)?);
    }
    Ok(out)
}

fn parse_one(index: usize, item: &RawValue) -> Result<NewEvent<'_>> {
    let bad = |what: &str| {
        StoreError::invalid_event(format!(
            "event at index {index} {what}: every event must be an object with a string \"type\", like {{\"type\": \"userCreated\"}}"
        ))
    };
    if !starts_with_brace(item.get()) {
        return Err(bad(
            "is not wrapped as {\"timestamp\": ms, \"event\": {...}}",
        ));
    }
    let incoming: IncomingEvent<'_> =
        serde_json::from_str(item.get()).map_err(|e| bad(&format!("cannot be read ({e})")))?;
    let event = incoming.event.ok_or_else(|| bad("is missing"))?;
    let text = event.get();
    if !starts_with_brace(text) {
        return Err(bad("is not an object"));
    }
    let head: EventHead<'_> =
        serde_json::from_str(text).map_err(|e| bad(&format!("cannot be read ({e})")))?;
    match head.kind {
        Some(kind) if kind.get().starts_with('"') => {}
        Some(_) => return Err(bad("has a \"type\" that is not a string")),
        None => return Err(bad("has no \"type\"")),
    }
    let timestamp = match incoming.timestamp {
        Some(ts) if ts.is_finite() && ts.abs() <= MAX_TIMESTAMP_MS => ts.floor() as i64,
        Some(ts) => {
            return Err(StoreError::invalid_event(format!(
                "event at index {index} has timestamp {ts}, which is not a valid time: pass epoch milliseconds (Date.getTime())"
            )))
        }
        None => {
            return Err(StoreError::invalid_event(format!(
                "event at index {index} has no numeric \"timestamp\": pass epoch milliseconds (Date.getTime())"
            )))
        }
    };
    Ok(NewEvent {
        timestamp,
        event: text,
    })
}

fn starts_with_brace(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// A position or other non-negative integer from JS (`f64`), checked so that
/// 1.5, NaN, -1 or 2^60 get a clear error instead of silent truncation.
pub fn to_position(value: f64, what: &str) -> Result<i64> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE_INTEGER as f64
    {
        Ok(value as i64)
    } else {
        Err(StoreError::invalid_argument(format!(
            "{what} must be a non-negative integer, got {}",
            show_number(value)
        )))
    }
}

/// An optional position: `None` stays `None`.
pub fn to_opt_position(value: Option<f64>, what: &str) -> Result<Option<i64>> {
    value.map(|v| to_position(v, what)).transpose()
}

/// A `limit` from JS: a positive integer, or `None` for no limit.
pub fn to_limit(value: Option<f64>) -> Result<Option<i64>> {
    match value {
        None => Ok(None),
        Some(v)
            if v.is_finite() && v >= 1.0 && v.fract() == 0.0 && v <= MAX_SAFE_INTEGER as f64 =>
        {
            Ok(Some(v as i64))
        }
        Some(v) => Err(StoreError::invalid_argument(format!(
            "limit must be a positive integer, got {}",
            show_number(v)
        ))),
    }
}

/// The first version of an append: a non-negative integer such that every
/// version of the batch stays a safe integer.
pub fn to_first_version(value: f64, count: usize) -> Result<i64> {
    let first = to_position(value, "the version")?;
    let last = first.checked_add(count as i64);
    match last {
        Some(last) if last <= MAX_SAFE_INTEGER => Ok(first),
        _ => Err(StoreError::invalid_argument(format!(
            "the version {first} plus {count} events exceeds the largest safe integer"
        ))),
    }
}

/// A stream list: non-empty, duplicates removed (first occurrence kept).
pub fn to_streams(streams: Vec<String>) -> Result<Vec<String>> {
    if streams.is_empty() {
        return Err(StoreError::invalid_argument(
            "the stream list is empty: pass at least one stream name",
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(streams.len());
    for s in streams {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}

fn show_number(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.to_string()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_and_borrows_payloads() {
        let json = r#"[{"timestamp": 1700000000000, "event": {"type":"a","x":[1,2]}},
                       {"event": {"type":"b"}, "timestamp": 5.7}]"#;
        let evs = parse_new_events(json).expect("valid");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].timestamp, 1_700_000_000_000);
        assert_eq!(evs[0].event, r#"{"type":"a","x":[1,2]}"#);
        assert_eq!(evs[1].timestamp, 5);
        assert_eq!(evs[1].event, r#"{"type":"b"}"#);
        assert!(parse_new_events("[]").expect("empty").is_empty());
    }

    #[test]
    fn rejects_bad_events_naming_the_index() {
        let cases = [
            (
                r#"[{"timestamp":1,"event":{"type":"a"}},{"timestamp":1,"event":{"type":2}}]"#,
                "index 1",
            ),
            (r#"[{"timestamp":1,"event":{"name":"a"}}]"#, "index 0"),
            (r#"[{"timestamp":1,"event":["type","a"]}]"#, "index 0"),
            (r#"[{"timestamp":1,"event":"a"}]"#, "index 0"),
            (r#"[{"timestamp":1}]"#, "index 0"),
            (r#"[{"event":{"type":"a"}}]"#, "index 0"),
            (r#"[{"timestamp":"2020","event":{"type":"a"}}]"#, "index 0"),
            (r#"[{"timestamp":1e300,"event":{"type":"a"}}]"#, "index 0"),
            (r#"[{"timestamp":1,"event":{"type":null}}]"#, "index 0"),
            (r#"[1]"#, "index 0"),
            (r#"{"type":"a"}"#, "not a valid JSON array"),
            (
                r#"[{"timestamp":1,"event":{"type":"a"}"#,
                "not a valid JSON array",
            ),
        ];
        for (json, needle) in cases {
            let err = parse_new_events(json).expect_err(json);
            assert_eq!(err.code(), "INVALID_EVENT", "{json}");
            assert!(err.to_string().contains(needle), "{json}: {err}");
        }
    }

    #[test]
    fn validates_numbers() {
        assert_eq!(to_position(0.0, "p"), Ok(0));
        assert_eq!(to_position(42.0, "p"), Ok(42));
        for bad in [1.5, -1.0, f64::NAN, f64::INFINITY, 1e300] {
            let err = to_position(bad, "the position").expect_err("bad");
            assert_eq!(err.code(), "INVALID_ARGUMENT");
            assert!(err.to_string().starts_with("the position must be"));
        }
        assert_eq!(to_limit(None), Ok(None));
        assert_eq!(to_limit(Some(3.0)), Ok(Some(3)));
        for bad in [0.0, -2.0, 2.5, f64::NAN] {
            assert_eq!(
                to_limit(Some(bad)).expect_err("bad").code(),
                "INVALID_ARGUMENT"
            );
        }
        assert!(to_first_version(MAX_SAFE_INTEGER as f64, 2).is_err());
    }

    #[test]
    fn validates_streams() {
        assert!(to_streams(vec![]).is_err());
        assert_eq!(
            to_streams(vec!["a".into(), "b".into(), "a".into()]).expect("ok"),
            vec!["a".to_string(), "b".to_string()]
        );
    }
}
