//! The one read format of every engine: the events of a read as JSON
//! columns, with their numbers beside them in binary ([`EventBatch`]).

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Result, StoreError};

/// optional because SQL tables written by other programs may hold NULLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRef<'a> {
    pub position: i64,
    pub version: Option<i64>,
    pub stream: Option<&'a str>,
    pub aggregate_id: Option<&'a str>,
    pub timestamp: Option<i64>,
    /// Raw JSON text of the event (already known to be valid JSON).
    pub event: Option<&'a str>,
}

/// A stored event parsed back from the JSON the engines return (used by
/// tests and by anyone who wants the data in Rust).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredEvent {
    pub stream: Option<String>,
    pub aggregate_id: Option<String>,
    pub version: Option<i64>,
    pub position: i64,
    pub timestamp: Option<i64>,
    pub event: serde_json::Value,
}

// ---------------------------------------------------------------------------
// JSON output
// ---------------------------------------------------------------------------

/// Appends `s` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0x08 => Some("\\b"),
            0x0c => Some("\\f"),
            0x00..=0x1f => None,
            _ => continue,
        };
        // `i` is at an ASCII byte, so both slices end on char boundaries.
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn push_int(out: &mut String, v: i64) {
    let mut buf = itoa::Buffer::new();
    out.push_str(buf.format(v));
}

fn push_opt_int(out: &mut String, v: Option<i64>) {
    match v {
        Some(v) => push_int(out, v),
        None => out.push_str("null"),
    }
}

fn push_opt_str(out: &mut String, v: Option<&str>) {
    match v {
        Some(v) => push_json_str(out, v),
        None => out.push_str("null"),
    }
}

/// One stored event as a JSON object (the `StoreEvent` shape with
/// `timestamp` in epoch ms; `lastEvent`'s answer). The event text is copied
/// as is.
pub fn event_json(ev: &EventRef<'_>) -> String {
    let mut out = String::with_capacity(
        96 + ev.stream.map_or(0, str::len)
            + ev.aggregate_id.map_or(0, str::len)
            + ev.event.map_or(0, str::len),
    );
    write_event(&mut out, ev);
    out
}

fn write_event(out: &mut String, ev: &EventRef<'_>) {
    out.push_str("{\"stream\":");
    push_opt_str(out, ev.stream);
    out.push_str(",\"aggregateId\":");
    push_opt_str(out, ev.aggregate_id);
    out.push_str(",\"version\":");
    push_opt_int(out, ev.version);
    out.push_str(",\"position\":");
    push_int(out, ev.position);
    out.push_str(",\"timestamp\":");
    push_opt_int(out, ev.timestamp);
    out.push_str(",\"event\":");
    out.push_str(ev.event.unwrap_or("null"));
    out.push('}');
}

/// The events of a read, as JSON text in columns:
/// `{"e":[events],"s":[streams],"a":[aggregate ids]}`, with the numbers of
/// each event beside it in binary ([`EventBatch::numbers`]). `JSON.parse`
/// of columns is about twice as fast as of one object per event (no key is
/// read 10,000 times), and the facade builds the StoreEvents. The events
/// come first: their column, by far the largest, is the start of the
/// output, and only the small ones are copied after it.
pub const NO_EVENTS: &str = r#"{"e":[],"s":[],"a":[]}"#;

/// The columns of a read of one aggregate (`events_for`): no `"s"` and
/// `"a"`, which would repeat the stream and id asked for on every row (the
/// facade fills them in). Leaving them out of the SELECT and the JSON takes
/// about a fifth off a 10,000-event read on PostgreSQL.
pub const NO_EVENTS_OF_AGGREGATE: &str = r#"{"e":[]}"#;

/// What every read of many events returns, from every engine: the JSON
/// columns, and the numbers of each event outside the JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    /// `{"e":[...]}` with `"s"` and `"a"` unless the read was of one
    /// aggregate.
    pub json: String,
    /// Version, position and timestamp (epoch ms) of each event in turn,
    /// NaN for NULL. `JSON.parse` need not read 30,000 numbers for 10,000
    /// events (~0.6 ms on the JavaScript thread), and the engines, which
    /// read them on a worker thread, copy them as they are.
    pub numbers: Vec<f64>,
}

impl EventBatch {
    /// No events: the empty columns of a read of many events, or of one
    /// aggregate without `names`.
    pub fn empty(names: bool) -> Self {
        let json = if names {
            NO_EVENTS
        } else {
            NO_EVENTS_OF_AGGREGATE
        };
        EventBatch {
            json: json.to_string(),
            numbers: Vec::new(),
        }
    }

    /// Whether the read found no event.
    pub fn is_empty(&self) -> bool {
        self.numbers.is_empty()
    }
}

/// Builds the columns of [`NO_EVENTS`]'s shape (or, without names, of
/// [`NO_EVENTS_OF_AGGREGATE`]'s) and their numbers, one event at a time.
pub struct EventColumns {
    streams: String,
    ids: String,
    events: String,
    numbers: Vec<f64>,
    names: bool,
}

impl EventColumns {
    /// `rows` events whose event texts take about `event_bytes` together.
    /// `names`: with the `"s"` and `"a"` columns (not for a read of one
    /// aggregate).
    pub fn new(rows: usize, event_bytes: usize, names: bool) -> Self {
        let names_capacity = if names { rows * 12 } else { 0 };
        EventColumns {
            streams: String::with_capacity(names_capacity),
            ids: String::with_capacity(names_capacity),
            events: {
                let mut out = String::with_capacity(event_bytes + rows * 48 + 64);
                out.push_str("{\"e\":[");
                out
            },
            numbers: Vec::with_capacity(rows * 3),
            names,
        }
    }

    pub fn push(&mut self, ev: &EventRef<'_>) {
        if !self.numbers.is_empty() {
            self.events.push(',');
            if self.names {
                self.streams.push(',');
                self.ids.push(',');
            }
        }
        if self.names {
            push_opt_str(&mut self.streams, ev.stream);
            push_opt_str(&mut self.ids, ev.aggregate_id);
        }
        let number = |v: Option<i64>| v.map_or(f64::NAN, |v| v as f64);
        self.numbers.push(number(ev.version));
        self.numbers.push(ev.position as f64);
        self.numbers.push(number(ev.timestamp));
        self.events.push_str(ev.event.unwrap_or("null"));
    }

    pub fn finish(self) -> EventBatch {
        let mut out = self.events;
        if self.names {
            for (key, column) in [("],\"s\":[", &self.streams), ("],\"a\":[", &self.ids)] {
                out.push_str(key);
                out.push_str(column);
            }
        }
        out.push_str("]}");
        EventBatch {
            json: out,
            numbers: self.numbers,
        }
    }
}

/// Reads an [`EventBatch`] back into rows (tests, and anyone who wants the
/// data in Rust).
pub fn decode_events(batch: &EventBatch) -> serde_json::Result<Vec<StoredEvent>> {
    #[derive(Deserialize)]
    struct Columns {
        #[serde(default)]
        s: Option<Vec<Option<String>>>,
        #[serde(default)]
        a: Option<Vec<Option<String>>>,
        e: Vec<serde_json::Value>,
    }
    let c: Columns = serde_json::from_str(&batch.json)?;
    let n = c.e.len();
    if batch.numbers.len() != n * 3 {
        return Err(serde::de::Error::custom(
            "the event numbers do not match the events",
        ));
    }
    let number = |x: f64| (!x.is_nan()).then_some(x as i64);
    let triples = batch.numbers.chunks_exact(3);
    let v: Vec<Option<i64>> = triples.clone().map(|x| number(x[0])).collect();
    let p: Vec<i64> = triples.clone().map(|x| x[1] as i64).collect();
    let t: Vec<Option<i64>> = triples.map(|x| number(x[2])).collect();
    // a read of one aggregate leaves the names out
    let s = c.s.unwrap_or_else(|| vec![None; n]);
    let a = c.a.unwrap_or_else(|| vec![None; n]);
    if [s.len(), a.len(), v.len(), p.len(), t.len()]
        .iter()
        .any(|&len| len != n)
    {
        return Err(serde::de::Error::custom(
            "the event columns differ in length",
        ));
    }
    Ok(s.into_iter()
        .zip(a)
        .zip(v)
        .zip(p)
        .zip(t)
        .zip(c.e)
        .map(
            |(((((stream, aggregate_id), version), position), timestamp), event)| StoredEvent {
                stream,
                aggregate_id,
                version,
                position,
                timestamp,
                event,
            },
        )
        .collect())
}

/// The events (in [`NO_EVENTS`]'s shape, or without `names` in
/// [`NO_EVENTS_OF_AGGREGATE`]'s) of rows read back from an events table,
/// and the highest position among them (0 when none) for the caller's head.
/// Shared by the SQL engines, which differ only in how a row becomes an
/// [`EventRef`].
pub fn rows_to_json<R>(
    rows: &[R],
    names: bool,
    event_ref: impl for<'r> Fn(&'r R) -> Result<EventRef<'r>>,
) -> Result<(EventBatch, i64)> {
    let mut columns = EventColumns::new(rows.len(), rows.len() * 64, names);
    let mut max = 0;
    for row in rows {
        let ev = event_ref(row)?;
        max = max.max(ev.position);
        columns.push(&ev);
    }
    Ok((columns.finish(), max))
}

/// [`rows_to_json`] for rows as a SQL server sends them: each is turned
/// into JSON as it arrives, so a large read never holds all of its rows at
/// once, and the numbers are copied out on the way. The outer error is the
/// connection's (the read may be run again on another one); the inner one
/// is a row that is no event, which is the read's answer.
pub async fn stream_to_json<R>(
    mut rows: impl futures_util::Stream<Item = std::result::Result<R, sqlx::Error>> + Unpin,
    names: bool,
    event_ref: impl for<'r> Fn(&'r R) -> Result<EventRef<'r>>,
) -> std::result::Result<Result<(EventBatch, i64)>, sqlx::Error> {
    use futures_util::TryStreamExt;
    let mut columns = EventColumns::new(64, 64 * 64, names);
    let mut max = 0;
    while let Some(row) = rows.try_next().await? {
        let ev = match event_ref(&row) {
            Ok(ev) => ev,
            Err(e) => return Ok(Err(e)),
        };
        max = max.max(ev.position);
        columns.push(&ev);
    }
    Ok(Ok((columns.finish(), max)))
}

/// One row of whole events, its columns in the order position, version,
/// timestamp, event, then stream and aggregate id unless the read was of one
/// aggregate (the SELECTs of both SQL engines), checking that the stored
/// event is JSON (another program may have written anything). Each engine
/// reads its own timestamp column kinds and classifies its own errors.
pub fn event_row<'r, R>(
    row: &'r R,
    read_timestamp: impl Fn(&'r R, usize) -> std::result::Result<Option<i64>, sqlx::Error>,
    db_error: impl Fn(sqlx::Error) -> StoreError,
    location: &str,
    events_table: &str,
) -> Result<EventRef<'r>>
where
    R: sqlx::Row,
    usize: sqlx::ColumnIndex<R>,
    i64: sqlx::Decode<'r, R::Database>,
    &'r str: sqlx::Decode<'r, R::Database>,
{
    let position: i64 = row.try_get_unchecked(0).map_err(&db_error)?;
    let version: Option<i64> = row.try_get_unchecked(1).map_err(&db_error)?;
    let timestamp = read_timestamp(row, 2).map_err(&db_error)?;
    let event: Option<&str> = row.try_get_unchecked(3).map_err(&db_error)?;
    let (stream, aggregate_id) = if row.len() > 4 {
        (
            row.try_get_unchecked(4).map_err(&db_error)?,
            row.try_get_unchecked(5).map_err(&db_error)?,
        )
    } else {
        (None, None)
    };
    check_stored_event(event, position, location, events_table)?;
    Ok(EventRef {
        position,
        version,
        stream,
        aggregate_id,
        timestamp,
        event,
    })
}

/// Checks that an event read back from a table is JSON: another program may
/// have written anything there, and it is copied verbatim into our output.
pub fn check_stored_event(
    event: Option<&str>,
    position: i64,
    location: &str,
    events_table: &str,
) -> Result<()> {
    match event {
        Some(text) if serde_json::from_str::<&RawValue>(text).is_err() => {
            Err(StoreError::Database {
                location: location.to_string(),
                reason: format!(
                    "the event at position {position} in table \"{events_table}\" is not valid JSON: fix or delete that row"
                ),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_escaped_json_columns_and_binary_numbers() {
        let rows = [
            EventRef {
                position: 7,
                version: Some(1),
                stream: Some("us\"ers\\\n\u{1}é"),
                aggregate_id: Some("u1"),
                timestamp: Some(1_795_704_751_488),
                event: Some(r#"{"type":"created"}"#),
            },
            EventRef {
                position: 8,
                version: None,
                stream: None,
                aggregate_id: None,
                timestamp: None,
                event: None,
            },
        ];
        let mut columns = EventColumns::new(0, 0, true);
        for row in &rows {
            columns.push(row);
        }
        let batch = columns.finish();
        assert!(!batch.json.contains(r#""v":["#), "{}", batch.json);
        let parsed = decode_events(&batch).expect("valid json");
        assert_eq!(parsed[0].stream.as_deref(), Some("us\"ers\\\n\u{1}é"));
        assert_eq!(parsed[0].position, 7);
        assert_eq!(parsed[0].version, Some(1));
        assert_eq!(parsed[0].timestamp, Some(1_795_704_751_488));
        assert_eq!(parsed[0].event["type"], "created");
        assert_eq!(parsed[1].event, serde_json::Value::Null);
        assert_eq!(parsed[1].position, 8);
        assert_eq!(parsed[1].version, None);
        assert_eq!(parsed[1].timestamp, None);
        let empty = EventColumns::new(0, 0, true).finish();
        assert!(empty.is_empty() && decode_events(&empty).expect("empty").is_empty());
        assert_eq!(empty, EventBatch::empty(true));
        assert_eq!(empty.json, NO_EVENTS);
        let short = EventBatch {
            json: r#"{"e":[{}]}"#.to_string(),
            numbers: vec![1.0, 2.0],
        };
        assert!(decode_events(&short).is_err());
    }

    #[test]
    fn rows_to_json_reports_the_highest_position_and_bad_events() {
        type Row = (i64, Option<&'static str>);
        fn ok(&(position, event): &Row) -> Result<EventRef<'_>> {
            check_stored_event(event, position, "db", "events")?;
            Ok(EventRef {
                position,
                version: None,
                stream: None,
                aggregate_id: None,
                timestamp: None,
                event,
            })
        }
        let rows = [(3, Some("{}")), (9, None), (5, Some(r#"{"a":1}"#))];
        let (text, max) = rows_to_json(&rows, true, ok).expect("valid rows");
        assert_eq!(max, 9);
        assert_eq!(decode_events(&text).expect("json").len(), 3);
        assert_eq!(
            rows_to_json(&[] as &[Row], true, ok).expect("no rows"),
            (EventBatch::empty(true), 0)
        );
        assert_eq!(
            rows_to_json(&[] as &[Row], false, ok).expect("no rows"),
            (EventBatch::empty(false), 0)
        );
        let (of_aggregate, _) = rows_to_json(&rows, false, ok).expect("valid rows");
        assert!(!of_aggregate.json.contains("\"s\":[") && !of_aggregate.json.contains("\"a\":["));
        assert_eq!(decode_events(&of_aggregate).expect("json").len(), 3);
        let err = rows_to_json(&[(4, Some("{oops"))], true, ok).expect_err("bad event");
        assert_eq!(
            err.to_string(),
            StoreError::Database {
                location: "db".to_string(),
                reason: "the event at position 4 in table \"events\" is not valid JSON: fix or delete that row".to_string(),
            }
            .to_string()
        );
    }
}
