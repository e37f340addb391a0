//! The statements of a store: the fixed ones, those built per call, and
//! how their parameters are bound.

use sqlx::Sqlite;

use super::SqliteEngine;
use crate::store::NewEvent;

pub(super) struct Statements {
    pub(super) select: String,
    pub(super) events_for: String,
    pub(super) events_for_json: String,
    pub(super) get_bookmark: String,
    pub(super) set_bookmark: String,
    pub(super) max_position: String,
}

impl SqliteEngine {
    pub(super) fn insert_sql(&self, rows: usize) -> String {
        let mut sql = format!(
            "INSERT INTO {} (\"version\", \"stream\", \"aggregate_id\", \"timestamp\", \"event\") VALUES ",
            quote_ident(&self.events_table)
        );
        for i in 0..rows {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str("(?, ?, ?, ?, ?)");
        }
        sql.push_str(" RETURNING \"position\", \"version\"");
        sql
    }

    pub(super) fn in_streams(n: usize) -> String {
        let mut s = String::with_capacity(16 + 3 * n);
        s.push_str("\"stream\" IN (");
        for i in 0..n {
            if i > 0 {
                s.push_str(", ");
            }
            s.push('?');
        }
        s.push(')');
        s
    }
}

pub(super) type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// A bound parameter of a read.
pub(super) enum Bind<'a> {
    Str(&'a str),
    Int(i64),
}

pub(super) fn apply<'q>(mut query: SqliteQuery<'q>, binds: &'q [Bind<'q>]) -> SqliteQuery<'q> {
    for b in binds {
        query = match b {
            Bind::Str(s) => query.bind(*s),
            Bind::Int(i) => query.bind(*i),
        };
    }
    query
}

/// Wraps a query of whole event rows (`rows_sql`) so that SQLite returns
/// one row for a read of many events: the JSON columns (`{"e":[...]}`,
/// with `"s"` and `"a"` when `names`), the number of rows whose timestamp is
/// text or blob (those are left to Rust), the highest position, and the
/// versions, positions and timestamps as three JSON arrays (NULL as `null`;
/// see [`numbers_of`]). SQLite writes arrays of integers faster than
/// strings concatenated per row (10,000 events: ~1 ms less).
///
/// Every column keeps the order of `rows_sql`: SQLite feeds an aggregate the
/// rows of an ordered FROM-subquery in order, and only drops a subquery's
/// ORDER BY when the outer query has its own ORDER BY or is a join (neither
/// here). An `ORDER BY` inside `json_group_array` would sort a second time
/// (a third of the cost of a 10,000-event read).
pub(super) fn json_array_sql(rows_sql: &str, names: bool) -> String {
    let names = if names {
        ", 's', json_group_array(\"stream\"), 'a', json_group_array(\"aggregate_id\")"
    } else {
        ""
    };
    let version =
        "CASE typeof(\"version\") WHEN 'integer' THEN \"version\" WHEN 'real' THEN \"version\" END";
    let timestamp = "CASE typeof(\"timestamp\") WHEN 'integer' THEN \"timestamp\" WHEN 'real' THEN CASE WHEN abs(\"timestamp\") <= 8.64e15 THEN CAST(round(\"timestamp\") AS INTEGER) END END";
    format!(
        "SELECT json_object('e', json_group_array(json(\"event\")){names}), count(CASE WHEN typeof(\"timestamp\") IN ('text', 'blob') THEN 1 END), max(\"position\"), json_group_array({version}), json_group_array(\"position\"), json_group_array({timestamp}) FROM ({rows_sql})"
    )
}

/// The numbers of an [`EventBatch`](crate::store::EventBatch) from the
/// three arrays of [`json_array_sql`]: version, position and timestamp of
/// each event in turn, NaN for `null`. `None` when the arrays differ in
/// length or are not arrays of numbers.
pub(super) fn numbers_of(versions: &str, positions: &str, timestamps: &str) -> Option<Vec<f64>> {
    let [v, p, t] = [versions, positions, timestamps].map(json_numbers);
    let (v, p, t) = (v?, p?, t?);
    if v.len() != p.len() || p.len() != t.len() {
        return None;
    }
    let mut out = Vec::with_capacity(v.len() * 3);
    for ((v, p), t) in v.into_iter().zip(p).zip(t) {
        out.extend([v, p, t]);
    }
    Some(out)
}

/// `[1,2,null,2.5]` -> its numbers, NaN for `null`. Nearly every item is an
/// integer, read here digit by digit (a float parse of each costs a few
/// percent of a 10,000-event read); anything else goes to the float parser.
fn json_numbers(text: &str) -> Option<Vec<f64>> {
    let items = text.strip_prefix('[')?.strip_suffix(']')?;
    if items.is_empty() {
        return Some(Vec::new());
    }
    items
        .split(',')
        .map(|item| match item {
            "null" => Some(f64::NAN),
            item => parse_integer(item).or_else(|| item.parse().ok()),
        })
        .collect()
}

/// An optional `-` and 1 to 15 digits (exact in an f64), else `None`.
fn parse_integer(field: &str) -> Option<f64> {
    let (negative, digits) = match field.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, field),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut value: i64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value * 10 + i64::from(b - b'0');
    }
    Some(if negative { -value } else { value } as f64)
}

/// Binds the 5 values of each row of an insert.
pub(super) fn bind_rows<'q>(
    mut query: SqliteQuery<'q>,
    stream: &'q str,
    aggregate_id: &'q str,
    first_version: i64,
    events: &'q [NewEvent<'q>],
) -> SqliteQuery<'q> {
    for (i, ev) in events.iter().enumerate() {
        query = query
            .bind(first_version + i as i64)
            .bind(stream)
            .bind(aggregate_id)
            .bind(ev.timestamp)
            .bind(ev.event);
    }
    query
}

pub(super) fn quote_ident(name: &str) -> String {
    // Names are validated to [A-Za-z0-9_] before they get here.
    format!("\"{name}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_number_arrays() {
        let numbers = numbers_of(
            "[1,null,2.5]",
            "[7,8,9]",
            "[1700000000000,-5,8640000000000000]",
        )
        .expect("three arrays");
        let expected = [1.0, 7.0, 1.7e12, f64::NAN, 8.0, -5.0, 2.5, 9.0, 8.64e15];
        assert_eq!(numbers.len(), expected.len());
        for (got, want) in numbers.iter().zip(expected) {
            assert!(
                got == &want || (got.is_nan() && want.is_nan()),
                "{got} != {want}"
            );
        }
        assert_eq!(numbers_of("[]", "[]", "[]"), Some(Vec::new()));
        assert_eq!(numbers_of("[1]", "[1,2]", "[3]"), None, "lengths differ");
        assert_eq!(numbers_of("[\"x\"]", "[1]", "[3]"), None, "not a number");
        assert_eq!(parse_integer("-0"), Some(0.0));
        assert_eq!(
            parse_integer("1234567890123456"),
            None,
            "16 digits go to the float parser"
        );
    }
}
