//! The storage contract shared by every engine, plus what all engines need:
//! input parsing and validation, and the JSON text of stored events.

#[cfg(test)]
mod engine_tests;
pub mod group;
pub mod memory;
pub mod postgres;
pub mod sqlite;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{Result, StoreError};

/// The largest integer a JS number holds exactly (2^53 - 1).
pub const MAX_SAFE_INTEGER: i64 = 9_007_199_254_740_991;

/// The range of a JS `Date`, in milliseconds either side of the epoch.
const MAX_TIMESTAMP_MS: f64 = 8.64e15;

/// An event to append: its time and its JSON text (an object with a string
/// `type`), borrowed from the JSON the caller handed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewEvent<'a> {
    pub timestamp: i64,
    pub event: &'a str,
}

/// A stored event as the engines hand it to [`write_event`]. Columns are
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

/// One storage engine. Every method is atomic on its own; `append` is
/// version-checked: it stores all of its events or none.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Stores `events` with versions `first_version, first_version + 1, ...`
    /// and returns their positions. `VersionConflict` if any of those
    /// versions already exists for (stream, aggregate_id); nothing is stored
    /// then.
    async fn append(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>>;

    /// All events of one aggregate in version order (only those after
    /// `after_position` when given), as JSON columns in
    /// [`NO_EVENTS_OF_AGGREGATE`]'s shape: without the stream and id, which
    /// are the ones asked for.
    async fn events_for(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Result<EventBatch>;

    /// The events of any of `streams` after `after_position`, in position
    /// order, at most `limit`, as JSON columns in [`NO_EVENTS`]'s shape.
    async fn events_from(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Result<EventBatch>;

    /// JSON of the event with the highest position in `streams` (of that
    /// aggregate when given), or `None`.
    async fn last_event(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>>;

    /// Stored position of a bookmark, 0 when none.
    async fn get_bookmark(&self, name: &str) -> Result<i64>;

    /// Upserts a bookmark.
    async fn set_bookmark(&self, name: &str, position: i64) -> Result<()>;
}

// ---------------------------------------------------------------------------
// Input parsing and validation
// ---------------------------------------------------------------------------

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

/// A table name: `^[A-Za-z_][A-Za-z0-9_]{0,62}$` (safe to quote into SQL and
/// within PostgreSQL's 63-byte identifier limit).
pub fn validate_table_name(name: &str, what: &str) -> Result<()> {
    let bytes = name.as_bytes();
    let ok_first = bytes
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
    let ok_rest = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'_');
    if !ok_first || !ok_rest || bytes.len() > 63 {
        return Err(StoreError::InvalidName(format!(
            "the {what} table name {} is not allowed: use 1 to 63 letters, digits or underscores, not starting with a digit",
            quote(name)
        )));
    }
    Ok(())
}

/// A table name for SQLite: [`validate_table_name`], and not one SQLite keeps
/// for itself.
pub fn validate_sqlite_table_name(name: &str, what: &str) -> Result<()> {
    validate_table_name(name, what)?;
    if name.to_ascii_lowercase().starts_with("sqlite_") {
        return Err(StoreError::InvalidName(format!(
            "the {what} table name {} is reserved by SQLite: choose a name that does not start with \"sqlite_\"",
            quote(name)
        )));
    }
    Ok(())
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

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_str(&mut out, s);
    out
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

/// Appends one stored event as a JSON object (the `StoreEvent` shape with
/// `timestamp` in epoch ms). The event text is copied as is.
pub fn write_event(out: &mut String, ev: &EventRef<'_>) {
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
/// `{"e":[events],"s":[streams],"a":[aggregate ids],"v":[versions],"p":[positions],"t":[timestamps]}`.
/// `JSON.parse` of columns is about twice as fast as of one object per event
/// (no key is read 10,000 times), and the facade builds the StoreEvents.
/// The events come first: their column, by far the largest, is the start of
/// the output, and only the small ones are copied after it.
pub const NO_EVENTS: &str = r#"{"e":[],"s":[],"a":[],"v":[],"p":[],"t":[]}"#;

/// The columns of a read of one aggregate (`events_for`): no `"s"` and
/// `"a"`, which would repeat the stream and id asked for on every row (the
/// facade fills them in). Leaving them out of the SELECT and the JSON takes
/// about a fifth off a 10,000-event read on PostgreSQL.
pub const NO_EVENTS_OF_AGGREGATE: &str = r#"{"e":[],"v":[],"p":[],"t":[]}"#;

/// What a read of many events returns: the JSON columns, and the numbers
/// of each event outside the JSON when the engine sends them that way.
#[derive(Debug, Clone, PartialEq)]
pub struct EventBatch {
    /// `{"e":[...]}` with `"s"` and `"a"` unless the read was of one
    /// aggregate, and `"v"`, `"p"`, `"t"` unless `numbers` holds them.
    pub json: String,
    /// Version, position and timestamp (epoch ms) of each event in turn,
    /// NaN for NULL. `JSON.parse` need not read 30,000 numbers for 10,000
    /// events (~0.6 ms), nor Rust write them as text: PostgreSQL, whose
    /// rows are read here one by one, sends them this way.
    pub numbers: Option<Vec<f64>>,
}

impl EventBatch {
    /// Whether the read found no event.
    pub fn is_empty(&self) -> bool {
        self.json.starts_with(r#"{"e":[]"#)
    }
}

/// Builds the columns of [`NO_EVENTS`]'s shape (or, without names, of
/// [`NO_EVENTS_OF_AGGREGATE`]'s), one event at a time; with binary numbers,
/// the numeric columns go to [`EventBatch::numbers`] instead.
pub struct EventColumns {
    streams: String,
    ids: String,
    versions: String,
    positions: String,
    timestamps: String,
    events: String,
    numbers: Option<Vec<f64>>,
    names: bool,
    empty: bool,
}

impl EventColumns {
    /// `rows` events whose event texts take about `event_bytes` together.
    /// `names`: with the `"s"` and `"a"` columns (not for a read of one
    /// aggregate); `binary`: numbers in [`EventBatch::numbers`].
    pub fn new(rows: usize, event_bytes: usize, names: bool, binary: bool) -> Self {
        let names_capacity = if names { rows * 12 } else { 0 };
        let text_numbers = if binary { 0 } else { rows };
        EventColumns {
            streams: String::with_capacity(names_capacity),
            ids: String::with_capacity(names_capacity),
            versions: String::with_capacity(text_numbers * 4),
            positions: String::with_capacity(text_numbers * 6),
            timestamps: String::with_capacity(text_numbers * 14),
            events: {
                let mut out = String::with_capacity(event_bytes + rows * 48 + 64);
                out.push_str("{\"e\":[");
                out
            },
            numbers: binary.then(|| Vec::with_capacity(rows * 3)),
            names,
            empty: true,
        }
    }

    pub fn push(&mut self, ev: &EventRef<'_>) {
        if !self.empty {
            self.events.push(',');
            if self.names {
                self.streams.push(',');
                self.ids.push(',');
            }
            if self.numbers.is_none() {
                self.versions.push(',');
                self.positions.push(',');
                self.timestamps.push(',');
            }
        }
        self.empty = false;
        if self.names {
            push_opt_str(&mut self.streams, ev.stream);
            push_opt_str(&mut self.ids, ev.aggregate_id);
        }
        match &mut self.numbers {
            Some(numbers) => {
                let number = |v: Option<i64>| v.map_or(f64::NAN, |v| v as f64);
                numbers.push(number(ev.version));
                numbers.push(ev.position as f64);
                numbers.push(number(ev.timestamp));
            }
            None => {
                push_opt_int(&mut self.versions, ev.version);
                push_int(&mut self.positions, ev.position);
                push_opt_int(&mut self.timestamps, ev.timestamp);
            }
        }
        self.events.push_str(ev.event.unwrap_or("null"));
    }

    pub fn finish(self) -> EventBatch {
        let mut out = self.events;
        let names = [("],\"s\":[", &self.streams), ("],\"a\":[", &self.ids)];
        let numbers = [
            ("],\"v\":[", &self.versions),
            ("],\"p\":[", &self.positions),
            ("],\"t\":[", &self.timestamps),
        ];
        let names = if self.names { &names[..] } else { &[] };
        let numbers = if self.numbers.is_none() {
            &numbers[..]
        } else {
            &[]
        };
        for (key, column) in names.iter().chain(numbers.iter()) {
            out.push_str(key);
            out.push_str(column);
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
        #[serde(default)]
        v: Option<Vec<Option<i64>>>,
        #[serde(default)]
        p: Option<Vec<i64>>,
        #[serde(default)]
        t: Option<Vec<Option<i64>>>,
        e: Vec<serde_json::Value>,
    }
    let c: Columns = serde_json::from_str(&batch.json)?;
    let n = c.e.len();
    let missing = || serde::de::Error::custom("the event numbers are missing");
    let (v, p, t) = match &batch.numbers {
        Some(numbers) => {
            if numbers.len() != n * 3 || c.v.is_some() || c.p.is_some() || c.t.is_some() {
                return Err(serde::de::Error::custom(
                    "the event numbers do not match the events",
                ));
            }
            let number = |x: f64| (!x.is_nan()).then_some(x as i64);
            let triples = numbers.chunks_exact(3);
            (
                triples.clone().map(|x| number(x[0])).collect(),
                triples.clone().map(|x| x[1] as i64).collect(),
                triples.map(|x| number(x[2])).collect(),
            )
        }
        None => (
            c.v.ok_or_else(missing)?,
            c.p.ok_or_else(missing)?,
            c.t.ok_or_else(missing)?,
        ),
    };
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
    let mut columns = EventColumns::new(rows.len(), rows.len() * 64, names, false);
    let mut max = 0;
    for row in rows {
        let ev = event_ref(row)?;
        max = max.max(ev.position);
        columns.push(&ev);
    }
    Ok((columns.finish(), max))
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

/// Rough size of an event's JSON, for buffer capacity.
pub fn approx_len(stream: &str, aggregate_id: &str, event: &str) -> usize {
    96 + stream.len() + aggregate_id.len() + event.len()
}

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
    fn validates_streams_and_names() {
        assert!(to_streams(vec![]).is_err());
        assert_eq!(
            to_streams(vec!["a".into(), "b".into(), "a".into()]).expect("ok"),
            vec!["a".to_string(), "b".to_string()]
        );
        for ok in ["events", "_x", "E9_b", &"a".repeat(63)] {
            assert!(validate_sqlite_table_name(ok, "events").is_ok(), "{ok}");
            assert!(validate_table_name(ok, "events").is_ok(), "{ok}");
        }
        for bad in [
            "",
            "9a",
            "a-b",
            "a b",
            "a\"b",
            "évents",
            "sqlite_master",
            &"a".repeat(64),
        ] {
            let err = validate_sqlite_table_name(bad, "events").expect_err(bad);
            assert_eq!(err.code(), "INVALID_NAME");
        }
        assert!(validate_table_name("sqlite_master", "events").is_ok());
        assert!(validate_table_name("a-b", "events").is_err());
    }

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

    #[test]
    fn writes_escaped_json_columns_with_text_or_binary_numbers() {
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
        for binary in [false, true] {
            let mut columns = EventColumns::new(0, 0, true, binary);
            for row in &rows {
                columns.push(row);
            }
            let batch = columns.finish();
            assert_eq!(batch.numbers.is_some(), binary);
            assert_eq!(batch.json.contains(r#""v":["#), !binary, "{}", batch.json);
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
            let empty = EventColumns::new(0, 0, true, binary).finish();
            assert!(empty.is_empty() && decode_events(&empty).expect("empty").is_empty());
        }
        assert_eq!(
            EventColumns::new(0, 0, true, false).finish().json,
            NO_EVENTS
        );
        let text = |json: &str| EventBatch {
            json: json.to_string(),
            numbers: None,
        };
        assert!(decode_events(&text(r#"{"e":[],"s":[],"a":[],"v":[],"p":[1],"t":[]}"#)).is_err());
        let short = EventBatch {
            json: r#"{"e":[{}]}"#.to_string(),
            numbers: Some(vec![1.0, 2.0]),
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
            (
                EventBatch {
                    json: NO_EVENTS.to_string(),
                    numbers: None
                },
                0
            )
        );
        assert_eq!(
            rows_to_json(&[] as &[Row], false, ok).expect("no rows"),
            (
                EventBatch {
                    json: NO_EVENTS_OF_AGGREGATE.to_string(),
                    numbers: None
                },
                0
            )
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
