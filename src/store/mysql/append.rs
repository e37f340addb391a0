//! Appends: one INSERT each, or one for a group of appends that arrived
//! while another was written (group commit); and, after a broken
//! connection, finding out whether the append was stored.

use std::fmt::Write as _;

use chrono::DateTime;
use sqlx::mysql::MySqlConnection;
use sqlx::Row;

use super::errors::{is_lost, Table};
use super::MysqlEngine;
use crate::error::{Result, StoreError};
use crate::store::batch::push_json_str;
use crate::store::conns::{retrying, MAX_ATTEMPTS};
use crate::store::group::WaitingAppend;
use crate::store::NewEvent;

/// Most appends, and most events, one group writes (the rest wait for the
/// next group).
const GROUP_MAX_APPENDS: usize = 500;
const GROUP_MAX_EVENTS: usize = 5_000;
/// Seconds an append waits for the append lock before it gives up.
const LOCK_WAIT_SECS: i64 = 30;

/// What a timestamp column keeps of epoch ms `ms`: all of it, or (evtstore's
/// DATETIME) whole seconds, cut here so that MySQL (which would round) and
/// MariaDB (which truncates) store the same.
fn kept_ms(ms: i64, keeps_ms: bool) -> i64 {
    if keeps_ms {
        ms
    } else {
        ms.div_euclid(1000) * 1000
    }
}

/// `YYYY-MM-DD HH:MM:SS.fff` in UTC.
fn datetime_text(ms: i64) -> String {
    match DateTime::from_timestamp_millis(ms) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
        None => ms.to_string(),
    }
}

/// Adds one append's rows to the JSON array the INSERT reads (see
/// `sql::INPUT_ROWS`); `out` holds `[` and rows so far.
fn push_rows(
    out: &mut String,
    stream: &str,
    aggregate_id: &str,
    first_version: i64,
    events: &[NewEvent<'_>],
    keeps_ms: bool,
) {
    for (i, ev) in events.iter().enumerate() {
        if out.len() > 1 {
            out.push(',');
        }
        out.push('[');
        push_json_str(out, stream);
        out.push(',');
        push_json_str(out, aggregate_id);
        let _ = write!(
            out,
            ",{},\"{}\",",
            first_version + i as i64,
            datetime_text(kept_ms(ev.timestamp, keeps_ms))
        );
        push_json_str(out, ev.event);
        out.push(']');
    }
}

/// What a failed insert left: the statement's error, or the append lock
/// not had in time.
enum InsertError {
    Sql(sqlx::Error),
    LockTimeout,
}

/// What the events table's columns keep.
#[derive(Debug, Clone, Copy)]
pub(super) struct Columns {
    /// `timestamp` keeps milliseconds (DATETIME(3)), not whole seconds.
    keeps_ms: bool,
    /// The most bytes `event` holds.
    event_bytes: usize,
}

impl Columns {
    /// evtstore's knex layout: DATETIME and TEXT.
    const EVTSTORE: Columns = Columns {
        keeps_ms: false,
        event_bytes: 65_535,
    };
}

/// Why a group's INSERT stored nothing (or maybe everything).
enum GroupFailure {
    /// A version was taken: nothing was stored.
    Clash,
    /// The connection broke: it may have committed.
    Lost,
    /// Anything else: nothing was stored.
    Other,
}

/// After a broken connection: what is stored under the append's versions.
enum Found {
    /// Our events: the first attempt committed; these are their positions.
    Ours(Vec<i64>),
    Nothing,
    /// Someone else's events.
    Others,
}

impl MysqlEngine {
    /// Takes the append lock, inserts the rows of `rows_json` (`count` of
    /// them) in one autocommit statement, releases the lock, and returns
    /// their positions. `Ok((positions, healthy))`: releasing may fail
    /// after the commit, and the connection is then not reused (the server
    /// frees the lock with it).
    async fn insert_rows(
        &self,
        conn: &mut MySqlConnection,
        rows_json: &str,
        count: usize,
    ) -> std::result::Result<(Vec<i64>, bool), InsertError> {
        #[cfg(test)]
        if self.unlocked.load(std::sync::atomic::Ordering::Relaxed) {
            let q = (0..5).fold(sqlx::query(&self.sql.append_unlocked), |q, _| {
                q.bind(rows_json)
            });
            let done = q.execute(&mut *conn).await.map_err(InsertError::Sql)?;
            return Ok((vec![done.last_insert_id() as i64], true));
        }
        let sql = &self.sql.append;
        let inserted = sqlx::query(sql)
            .bind(&self.lock_name)
            .bind(LOCK_WAIT_SECS)
            .bind(rows_json)
            .execute(&mut *conn)
            .await;
        // The lock is held even when the INSERT failed after taking it.
        let released = sqlx::query("SELECT RELEASE_ALL_LOCKS()")
            .execute(&mut *conn)
            .await;
        let done = match inserted {
            Ok(done) => done,
            Err(e) => return Err(InsertError::Sql(e)),
        };
        if done.rows_affected() != count as u64 {
            // GET_LOCK gave up: no row was inserted.
            return Err(InsertError::LockTimeout);
        }
        let first = done.last_insert_id() as i64;
        let positions = if self.read_back_positions {
            match sqlx::query_scalar::<_, i64>(&self.sql.positions_of)
                .bind(rows_json)
                .fetch_all(&mut *conn)
                .await
            {
                Ok(positions) if positions.len() == count => positions,
                Ok(_) => (0..count as i64)
                    .map(|i| first + i * self.increment)
                    .collect(),
                Err(e) => return Err(InsertError::Sql(e)),
            }
        } else {
            (0..count as i64)
                .map(|i| first + i * self.increment)
                .collect()
        };
        Ok((positions, released.is_ok()))
    }

    fn lock_timeout(&self) -> StoreError {
        StoreError::Timeout {
            location: self.location.clone(),
            reason: format!(
                "the append lock \"{}\" stayed held by another connection for {LOCK_WAIT_SECS} s; nothing was stored, retry",
                self.lock_name
            ),
        }
    }

    /// One append on its own, retried when its connection broke (after
    /// finding out whether the broken attempt stored it). `lost_before`:
    /// an earlier attempt (of a group) may have stored it.
    pub(super) async fn append_alone(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        self.append_checked(stream, aggregate_id, first_version, events, false)
            .await
    }

    async fn append_checked(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
        lost_before: bool,
    ) -> Result<Vec<i64>> {
        let last_version = first_version + events.len() as i64 - 1;
        let conflict =
            || StoreError::version_conflict(stream, aggregate_id, first_version, last_version);
        let mut rows =
            String::with_capacity(2 + events.iter().map(|e| e.event.len() + 64).sum::<usize>());
        rows.push('[');
        let columns = self.columns().await;
        push_rows(
            &mut rows,
            stream,
            aggregate_id,
            first_version,
            events,
            columns.keeps_ms,
        );
        rows.push(']');
        self.check_sizes(events, columns, rows.len())?;
        let mut check_first = lost_before;
        let mut attempt = 0;
        loop {
            attempt += 1;
            if check_first {
                match self
                    .find_stored(stream, aggregate_id, first_version, events)
                    .await
                {
                    Ok(Found::Ours(positions)) => {
                        self.publish(&positions);
                        return Ok(positions);
                    }
                    Ok(Found::Others) => return Err(conflict()),
                    Ok(Found::Nothing) if attempt <= MAX_ATTEMPTS => {}
                    Ok(Found::Nothing) => {
                        return Err(self.outcome_unknown(StoreError::ConnectionLost {
                            location: self.location.clone(),
                            reason: "the connection kept breaking".into(),
                        }))
                    }
                    Err(e) => return Err(self.outcome_unknown(e)),
                }
            }
            let mut guard = match self.conns.acquire().await {
                Ok(guard) => guard,
                Err(e) if check_first => return Err(self.outcome_unknown(self.acquire_error(e))),
                Err(e) => return Err(self.acquire_error(e)),
            };
            match self.insert_rows(guard.conn(), &rows, events.len()).await {
                Ok((positions, healthy)) => {
                    if healthy {
                        guard.healthy();
                    }
                    self.publish(&positions);
                    return Ok(positions);
                }
                Err(InsertError::LockTimeout) => {
                    guard.healthy();
                    return Err(self.lock_timeout());
                }
                Err(InsertError::Sql(e)) if is_lost(&e) => {
                    // It may or may not have committed: look before trying
                    // again (the unique versions forbid a double append).
                    self.conns.discard_idle();
                    drop(guard);
                    check_first = true;
                }
                Err(InsertError::Sql(e)) => {
                    guard.healthy();
                    if self.is_version_duplicate(guard.conn(), &e).await {
                        return Err(conflict());
                    }
                    return Err(self.db_error(e, Table::Events));
                }
            }
        }
    }

    /// What the events table's columns keep (asked once the table is
    /// there; evtstore's layout until then).
    async fn columns(&self) -> Columns {
        if let Some(known) = self.columns.get() {
            return *known;
        }
        let found = retrying!(self, Table::Events, |conn| {
            sqlx::query_as::<_, (Option<i64>, Option<i64>)>(self.sql.event_columns)
                .bind(&self.events_table)
                .fetch_one(conn)
        });
        match found {
            Ok((Some(digits), bytes)) => {
                let columns = Columns {
                    keeps_ms: digits >= 3,
                    event_bytes: bytes.unwrap_or(i64::MAX).max(0) as usize,
                };
                *self.columns.get_or_init(|| async move { columns }).await
            }
            _ => Columns::EVTSTORE,
        }
    }

    /// Refuses, before sending anything, events the table cannot hold and an
    /// append larger than the server takes in one statement.
    fn check_sizes(
        &self,
        events: &[NewEvent<'_>],
        columns: Columns,
        rows_bytes: usize,
    ) -> Result<()> {
        if let Some((i, ev)) = events
            .iter()
            .enumerate()
            .find(|(_, e)| e.event.len() > columns.event_bytes)
        {
            return Err(StoreError::Database {
                location: self.location.clone(),
                reason: format!(
                    "the event at index {i} is {} bytes of JSON, more than the {} bytes column \"event\" of table \"{}\" holds (evtstore's layout keeps events in TEXT); nothing was stored. For larger events run ALTER TABLE `{}` MODIFY `event` LONGTEXT, which both evtstore and evtstore-rs read",
                    ev.event.len(),
                    columns.event_bytes,
                    self.events_table,
                    self.events_table
                ),
            });
        }
        if rows_bytes + 4096 > self.max_packet {
            return Err(StoreError::Database {
                location: self.location.clone(),
                reason: format!(
                    "the append is {rows_bytes} bytes, more than the server takes in one statement (max_allowed_packet = {}); nothing was stored. Raise max_allowed_packet on the server, or store smaller events",
                    self.max_packet
                ),
            });
        }
        Ok(())
    }

    fn publish(&self, positions: &[i64]) {
        if let Some(max) = positions.iter().max() {
            self.head.publish(*max);
        }
    }

    /// Whether the append's versions hold exactly its events (same texts,
    /// same seconds), nothing, or someone else's events.
    async fn find_stored(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Found> {
        let last = first_version + events.len() as i64 - 1;
        let rows = retrying!(self, Table::Events, |conn| {
            sqlx::query(&self.sql.stored_versions)
                .bind(stream)
                .bind(aggregate_id)
                .bind(first_version)
                .bind(last)
                .fetch_all(conn)
        })?;
        if rows.is_empty() {
            return Ok(Found::Nothing);
        }
        if rows.len() != events.len() {
            return Ok(Found::Others);
        }
        let keeps_ms = self.columns().await.keeps_ms;
        let mut positions = Vec::with_capacity(rows.len());
        for (row, ev) in rows.iter().zip(events) {
            let read = (|| -> std::result::Result<_, sqlx::Error> {
                Ok((
                    row.try_get_unchecked::<i64, _>(0)?,
                    row.try_get_unchecked::<Option<i64>, _>(2)?,
                    row.try_get_unchecked::<Option<&str>, _>(3)?,
                ))
            })();
            let (position, ms, text) = read.map_err(|e| self.db_error(e, Table::Events))?;
            if text != Some(ev.event) || ms != Some(kept_ms(ev.timestamp, keeps_ms)) {
                return Ok(Found::Others);
            }
            positions.push(position);
        }
        Ok(Found::Ours(positions))
    }

    /// Writes a group led by its first request and answers the others;
    /// returns the leader's own result. A second append on an aggregate
    /// already in the group, and those over the group's size, wait for the
    /// next group (so versions are checked against what is stored).
    pub(super) async fn write_group(&self, group: Vec<WaitingAppend>) -> Result<Vec<i64>> {
        let mut taken: Vec<WaitingAppend> = Vec::new();
        let mut later = Vec::new();
        let mut events = 0usize;
        let mut bytes = 0usize;
        for w in group {
            let r = &w.request;
            let size: usize = r
                .texts
                .iter()
                .map(|t| t.len() + 2 * r.aggregate_id.len() + 64)
                .sum();
            let repeat = taken
                .iter()
                .any(|t| t.request.stream == r.stream && t.request.aggregate_id == r.aggregate_id);
            let fits = taken.len() < GROUP_MAX_APPENDS
                && events + r.texts.len() <= GROUP_MAX_EVENTS
                && bytes + size <= self.max_packet / 2;
            if taken.is_empty() || (!repeat && fits) {
                events += r.texts.len();
                bytes += size;
                taken.push(w);
            } else {
                later.push(w);
            }
        }
        if !later.is_empty() {
            self.appends.defer(later);
        }
        let results = self.write_taken(&taken).await;
        let mut answers = taken.into_iter().zip(results);
        // The leader's own request comes first (a group is never empty).
        let own = answers.next().map(|(_, own)| own);
        for (waiting, result) in answers {
            waiting.answer(result);
        }
        own.unwrap_or(Ok(Vec::new()))
    }

    /// The results of a group's appends: one INSERT for all; when a version
    /// clash stopped it (nothing was stored), the clashing appends are found
    /// with one query and the others written together again; when the
    /// connection broke (maybe everything was stored) or anything else
    /// failed, each append on its own, which tells which.
    async fn write_taken(&self, taken: &[WaitingAppend]) -> Vec<Result<Vec<i64>>> {
        let mut results: Vec<Option<Result<Vec<i64>>>> = taken.iter().map(|_| None).collect();
        let mut going: Vec<usize> = (0..taken.len()).collect();
        let mut lost = false;
        for round in 0..2 {
            let group: Vec<&WaitingAppend> = going.iter().map(|&i| &taken[i]).collect();
            match self.insert_group(&group).await {
                Ok(positions) => {
                    for (&i, p) in going.iter().zip(positions) {
                        results[i] = Some(Ok(p));
                    }
                    going.clear();
                    break;
                }
                Err(GroupFailure::Clash) if round == 0 => {
                    let Ok(stored) = self.stored_aggregates(&group).await else {
                        break;
                    };
                    going.retain(|&i| {
                        let r = &taken[i].request;
                        if stored.contains(&(r.stream.clone(), r.aggregate_id.clone())) {
                            let last = r.last_version();
                            results[i] = Some(Err(StoreError::version_conflict(
                                &r.stream,
                                &r.aggregate_id,
                                r.first_version,
                                last,
                            )));
                            false
                        } else {
                            true
                        }
                    });
                    if going.is_empty() {
                        break;
                    }
                }
                Err(GroupFailure::Lost) => {
                    lost = true;
                    break;
                }
                Err(_) => break,
            }
        }
        for i in going {
            let r = &taken[i].request;
            results[i] = Some(
                self.append_checked(
                    &r.stream,
                    &r.aggregate_id,
                    r.first_version,
                    &r.events(),
                    lost,
                )
                .await,
            );
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Ok(Vec::new())))
            .collect()
    }

    /// The aggregates of a group with any of their versions stored.
    async fn stored_aggregates(
        &self,
        group: &[&WaitingAppend],
    ) -> Result<std::collections::HashSet<(String, String)>> {
        let mut keys = String::from("[");
        for w in group {
            let r = &w.request;
            for i in 0..r.texts.len() {
                if keys.len() > 1 {
                    keys.push(',');
                }
                keys.push('[');
                push_json_str(&mut keys, &r.stream);
                keys.push(',');
                push_json_str(&mut keys, &r.aggregate_id);
                let _ = write!(keys, ",{}]", r.first_version + i as i64);
            }
        }
        keys.push(']');
        let rows: Vec<(String, String)> = retrying!(self, Table::Events, |conn| {
            sqlx::query_as(&self.sql.stored_aggregates)
                .bind(&keys)
                .fetch_all(conn)
        })?;
        Ok(rows.into_iter().collect())
    }

    /// One INSERT for the appends of a group (more than one): their
    /// positions in order, or why nothing (or, when the connection broke,
    /// maybe everything) was stored.
    async fn insert_group(
        &self,
        group: &[&WaitingAppend],
    ) -> std::result::Result<Vec<Vec<i64>>, GroupFailure> {
        if group.len() < 2 {
            return Err(GroupFailure::Other);
        }
        let keeps_ms = self.columns().await.keeps_ms;
        let mut rows = String::from("[");
        let mut count = 0;
        for w in group {
            let r = &w.request;
            push_rows(
                &mut rows,
                &r.stream,
                &r.aggregate_id,
                r.first_version,
                &r.events(),
                keeps_ms,
            );
            count += r.texts.len();
        }
        rows.push(']');
        let Ok(mut guard) = self.conns.acquire().await else {
            return Err(GroupFailure::Other);
        };
        let positions = match self.insert_rows(guard.conn(), &rows, count).await {
            Ok((positions, healthy)) => {
                if healthy {
                    guard.healthy();
                }
                positions
            }
            Err(InsertError::Sql(e)) if is_lost(&e) => {
                self.conns.discard_idle();
                return Err(GroupFailure::Lost);
            }
            Err(InsertError::Sql(e)) => {
                guard.healthy();
                if self.is_version_duplicate(guard.conn(), &e).await {
                    return Err(GroupFailure::Clash);
                }
                return Err(GroupFailure::Other);
            }
            Err(InsertError::LockTimeout) => {
                guard.healthy();
                return Err(GroupFailure::Other);
            }
        };
        #[cfg(test)]
        self.groups_written
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.publish(&positions);
        let mut rest = positions.as_slice();
        let mut results = Vec::with_capacity(group.len());
        for w in group {
            let (own, tail) = rest.split_at(w.request.texts.len());
            results.push(own.to_vec());
            rest = tail;
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_json_arrays_with_whole_seconds() {
        let events = [
            NewEvent {
                timestamp: 1_700_000_000_999,
                event: r#"{"type":"a","s":"x\"y"}"#,
            },
            NewEvent {
                timestamp: -1,
                event: r#"{"type":"b"}"#,
            },
        ];
        let mut out = String::from("[");
        push_rows(&mut out, "s\u{1F600}", "id", 3, &events, false);
        out.push(']');
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed[0][0], "s\u{1F600}");
        assert_eq!(parsed[0][2], 3);
        assert_eq!(parsed[0][3], "2023-11-14 22:13:20.000");
        assert_eq!(parsed[0][4], r#"{"type":"a","s":"x\"y"}"#);
        assert_eq!(parsed[1][2], 4);
        assert_eq!(parsed[1][3], "1969-12-31 23:59:59.000");
        let mut kept = String::from("[");
        push_rows(&mut kept, "s", "id", 1, &events[..1], true);
        assert!(kept.contains("\"2023-11-14 22:13:20.999\""), "{kept}");
    }
}
