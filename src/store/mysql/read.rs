//! Reads of whole events: rows to the batched JSON form.

use sqlx::mysql::{MySqlArguments, MySqlRow};
use sqlx::{MySql, Row};

use super::errors::Table;
use super::MysqlEngine;
use crate::error::Result;
use crate::store::batch::{event_row, stream_to_json};
use crate::store::conns::retrying;
use crate::store::{EventBatch, EventRef};

pub(super) type MyQuery<'q> = sqlx::query::Query<'q, MySql, MySqlArguments>;

impl MysqlEngine {
    /// Reads whole events (the columns of `sql::ROW_COLUMNS`, or without
    /// `names` those of `sql::AGGREGATE_ROW_COLUMNS`) and writes their JSON
    /// as the rows arrive, so a large read never holds all of its rows.
    pub(super) async fn read_events<'q, B>(
        &self,
        sql: &'q str,
        names: bool,
        bind: B,
    ) -> Result<EventBatch>
    where
        B: Fn(MyQuery<'q>) -> MyQuery<'q>,
    {
        let built = retrying!(self, Table::Events, |conn| {
            let rows = bind(sqlx::query(sql)).fetch(conn);
            stream_to_json(rows, names, |row| self.event_ref(row))
        })?;
        let (json, max) = built?;
        self.head.publish(max);
        Ok(json)
    }

    /// One row of whole events; the timestamp comes as epoch ms (computed
    /// in SQL).
    pub(super) fn event_ref<'r>(&self, row: &'r MySqlRow) -> Result<EventRef<'r>> {
        event_row(
            row,
            |row, i| row.try_get_unchecked::<Option<i64>, _>(i),
            |e| self.db_error(e, Table::Events),
            &self.location,
            &self.events_table,
        )
    }
}
