//! Reads of whole events: the JSON SQLite builds, or the rows written as
//! JSON here, and timestamps whatever another writer stored.

use std::sync::atomic::Ordering;

use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, TypeInfo, ValueRef};

use super::sql::{apply, numbers_of, Bind, SqliteQuery};
use super::SqliteEngine;
use crate::error::{Result, StoreError};
use crate::store::batch::{event_row, rows_to_json};
use crate::store::timestamp::parse_timestamp_text;
use crate::store::{EventBatch, EventRef};

impl SqliteEngine {
    /// Makes reads build their JSON in Rust, row by row (the path taken
    /// when a row needs it), so tests can compare both paths.
    #[cfg(test)]
    pub(crate) fn use_sql_json(&self, on: bool) {
        self.sql_json.store(on, Ordering::Relaxed);
    }

    /// Runs a read of whole events. SQLite builds the JSON array itself
    /// (`json_sql`, one row, no per-row hand-over between threads); when a
    /// row needs what only Rust does (a text timestamp, an event column that
    /// is not JSON, ...) the plain rows (`rows_sql`) are read and written
    /// here instead.
    pub(super) async fn read_events(
        &self,
        rows_sql: &str,
        json_sql: &str,
        binds: &[Bind<'_>],
        names: bool,
    ) -> Result<EventBatch> {
        let json_read = if self.sql_json.load(Ordering::Relaxed) {
            Some(
                apply(sqlx::query(json_sql), binds)
                    .fetch_one(&self.pool)
                    .await,
            )
        } else {
            None
        };
        match json_read {
            None => {}
            Some(Ok(row)) => {
                let odd: i64 = row.try_get_unchecked(1).map_err(|e| self.db_error(e))?;
                if odd == 0 {
                    let text = |i: usize| -> Result<Option<&str>> {
                        row.try_get_unchecked(i).map_err(|e| self.db_error(e))
                    };
                    let max: Option<i64> =
                        row.try_get_unchecked(2).map_err(|e| self.db_error(e))?;
                    let numbers = match (text(3)?, text(4)?, text(5)?) {
                        (Some(v), Some(p), Some(t)) => numbers_of(v, p, t),
                        _ => None,
                    };
                    // numbers it cannot read: the rows path below says why
                    if let (Some(json), Some(numbers)) = (text(0)?, numbers) {
                        if let Some(max) = max {
                            self.head.publish(max);
                        }
                        return Ok(EventBatch {
                            json: json.to_string(),
                            numbers,
                        });
                    }
                }
            }
            Some(Err(e)) => match self.db_error(e) {
                StoreError::Database { .. } => {}
                other => return Err(other),
            },
        }
        let rows = self.fetch(apply(sqlx::query(rows_sql), binds)).await?;
        self.rows_to_json(&rows, names)
    }

    pub(super) async fn fetch<'q>(&self, query: SqliteQuery<'q>) -> Result<Vec<SqliteRow>> {
        query
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.db_error(e))
    }

    fn rows_to_json(&self, rows: &[SqliteRow], names: bool) -> Result<EventBatch> {
        let (json, max) = rows_to_json(rows, names, |row| self.event_ref(row))?;
        self.head.publish(max);
        Ok(json)
    }

    /// One row of the events table (see [`event_row`]).
    pub(super) fn event_ref<'r>(&self, row: &'r SqliteRow) -> Result<EventRef<'r>> {
        event_row(
            row,
            read_timestamp,
            |e| self.db_error(e),
            &self.location,
            &self.events_table,
        )
    }
}

/// `timestamp` as epoch ms, whatever another writer stored: integer ms,
/// real ms, or text (ISO 8601, SQL date-time, or a number). `None` for NULL
/// or for anything unreadable.
fn read_timestamp(row: &SqliteRow, index: usize) -> std::result::Result<Option<i64>, sqlx::Error> {
    let raw = row.try_get_raw(index)?;
    if raw.is_null() {
        return Ok(None);
    }
    let info = raw.type_info();
    let kind = info.name();
    let decode_err = |e| sqlx::Error::ColumnDecode {
        index: "timestamp".to_string(),
        source: e,
    };
    Ok(match kind {
        "INTEGER" => Some(<i64 as Decode<Sqlite>>::decode(raw).map_err(decode_err)?),
        "REAL" => {
            let v = <f64 as Decode<Sqlite>>::decode(raw).map_err(decode_err)?;
            (v.is_finite() && v.abs() <= 8.64e15).then(|| v.round() as i64)
        }
        "TEXT" => parse_timestamp_text(<&str as Decode<Sqlite>>::decode(raw).map_err(decode_err)?),
        _ => None,
    })
}
