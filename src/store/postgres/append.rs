//! Appends: one statement each, or one for a group of appends that arrived
//! while another was written (group commit), and the recognition of our
//! own rows after a broken connection.

use std::collections::HashMap;
#[cfg(test)]
use std::sync::atomic::Ordering;

use sqlx::postgres::{PgConnection, PgDatabaseError, PgRow};
#[cfg(test)]
use sqlx::Connection;
use sqlx::Row;

use super::errors::{is_lost, Table};
use super::read::read_timestamp;
use super::PostgresEngine;
use crate::error::{Result, StoreError};
use crate::store::conns::{retrying, MAX_ATTEMPTS};
use crate::store::group::{QueuedAppend, WaitingAppend};

/// How an append is written: the product knows only `Locked`; the others
/// exist in test builds, for comparison and to show what the lock is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendMode {
    /// One statement: lock, insert, notify.
    Locked = 0,
    /// `BEGIN`, `SELECT pg_advisory_xact_lock`, insert + notify, `COMMIT`:
    /// the same guarantee in four round trips (for comparison).
    #[cfg(test)]
    TwoStatements = 1,
    /// No lock at all: concurrent appends may become visible out of
    /// position order (to show what the lock is for).
    #[cfg(test)]
    Unlocked = 2,
}

/// Most appends, and most events, written by one group statement (the rest
/// wait for the next group).
const GROUP_MAX_APPENDS: usize = 500;
const GROUP_MAX_EVENTS: usize = 5_000;

impl PostgresEngine {
    /// Chooses how appends are written (tests and measurements).
    #[cfg(test)]
    pub fn set_append_mode(&self, mode: AppendMode) {
        self.append_mode.store(mode as u8, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(super) fn append_mode(&self) -> AppendMode {
        match self.append_mode.load(Ordering::Relaxed) {
            1 => AppendMode::TwoStatements,
            2 => AppendMode::Unlocked,
            _ => AppendMode::Locked,
        }
    }

    #[cfg(not(test))]
    pub(super) fn append_mode(&self) -> AppendMode {
        AppendMode::Locked
    }

    #[allow(clippy::too_many_arguments)]
    async fn insert(
        &self,
        conn: &mut PgConnection,
        mode: AppendMode,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        timestamps: &[i64],
        texts: &[&str],
    ) -> std::result::Result<Vec<PgRow>, sqlx::Error> {
        let sql = match mode {
            AppendMode::Locked => &self.sql.append_locked,
            #[cfg(test)]
            AppendMode::TwoStatements | AppendMode::Unlocked => &self.sql.append_unlocked,
        };
        let query = sqlx::query(sql);
        let query = if mode == AppendMode::Locked {
            query.bind(self.lock_key)
        } else {
            query
        };
        let query = query
            .bind(first_version)
            .bind(stream)
            .bind(aggregate_id)
            .bind(timestamps)
            .bind(texts)
            .bind(&self.channel);
        #[cfg(test)]
        if mode == AppendMode::TwoStatements {
            let mut tx = conn.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(self.lock_key)
                .execute(&mut *tx)
                .await?;
            let rows = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            return Ok(rows);
        }
        query.fetch_all(conn).await
    }

    /// Writes a group led by its first request and answers the others;
    /// returns the leader's own result. Requests on an aggregate that is
    /// already in the group, and those over the group's size, wait for the
    /// next group (so versions are checked against what is stored).
    pub(super) async fn write_group(&self, group: Vec<WaitingAppend>) -> Result<Vec<i64>> {
        enum Place {
            Now,
            /// The same versions of the same aggregate as the request that
            /// goes now at this index: whatever that one meets, this one is
            /// a conflict (its versions are then stored, by the other or
            /// from before), unless that one fails otherwise.
            Behind(usize),
            Later,
        }
        // Which requests go now is decided on borrowed keys first.
        let mut places = Vec::with_capacity(group.len());
        {
            let mut going: HashMap<(&str, &str), (usize, i64, usize)> = HashMap::new();
            let mut events = 0usize;
            for (i, w) in group.iter().enumerate() {
                let r = &w.request;
                let key = (r.stream.as_str(), r.aggregate_id.as_str());
                let place = match going.get(&key) {
                    Some(&(at, first, count))
                        if first == r.first_version && count == r.texts.len() =>
                    {
                        Place::Behind(at)
                    }
                    Some(_) => Place::Later,
                    None if i == 0
                        || (going.len() < GROUP_MAX_APPENDS
                            && events + r.texts.len() <= GROUP_MAX_EVENTS) =>
                    {
                        events += r.texts.len();
                        going.insert(key, (going.len(), r.first_version, r.texts.len()));
                        Place::Now
                    }
                    None => Place::Later,
                };
                places.push(place);
            }
        }
        let mut taken: Vec<WaitingAppend> = Vec::new();
        let mut behind: Vec<(usize, WaitingAppend)> = Vec::new();
        let mut later = Vec::new();
        for (w, place) in group.into_iter().zip(places) {
            match place {
                Place::Now => taken.push(w),
                Place::Behind(at) => behind.push((at, w)),
                Place::Later => later.push(w),
            }
        }

        let results = if taken.len() == 1 {
            vec![self.append_queued(&taken[0].request, false).await]
        } else {
            match self.insert_group(&taken).await {
                Ok(results) => results,
                // The statement wrote nothing (or, when its connection broke,
                // maybe everything): each append again on its own, which
                // tells stored from not stored.
                Err(lost) => {
                    let mut results = Vec::with_capacity(taken.len());
                    for w in &taken {
                        results.push(self.append_queued(&w.request, lost).await);
                    }
                    results
                }
            }
        };
        for (at, w) in behind {
            let settled = match &results[at] {
                Ok(_) => true,
                Err(e) => e.code() == "VERSION_CONFLICT",
            };
            if settled {
                let r = &w.request;
                let last = r.last_version();
                let conflict =
                    StoreError::version_conflict(&r.stream, &r.aggregate_id, r.first_version, last);
                w.answer(Err(conflict));
            } else {
                later.push(w);
            }
        }
        if !later.is_empty() {
            self.appends.defer(later);
        }
        let mut own = None;
        for (w, out) in taken.into_iter().zip(results) {
            if own.is_none() {
                own = Some(out);
            } else {
                w.answer(out);
            }
        }
        own.unwrap_or_else(|| Ok(Vec::new()))
    }

    async fn append_queued(&self, r: &QueuedAppend, lost_before: bool) -> Result<Vec<i64>> {
        let texts: Vec<&str> = r.texts.iter().map(String::as_str).collect();
        self.append_one(
            &r.stream,
            &r.aggregate_id,
            r.first_version,
            &r.timestamps,
            &texts,
            lost_before,
        )
        .await
    }

    /// One statement for a group of appends on distinct aggregates: under
    /// the lock, the appends with none of their versions stored are
    /// inserted, the others are version conflicts. `Err(lost)` when the
    /// statement failed: `lost` says its connection broke (it may have
    /// committed).
    async fn insert_group(
        &self,
        group: &[WaitingAppend],
    ) -> std::result::Result<Vec<Result<Vec<i64>>>, bool> {
        let events: usize = group.iter().map(|w| w.request.texts.len()).sum();
        let mut streams: Vec<&str> = Vec::with_capacity(events);
        let mut ids: Vec<&str> = Vec::with_capacity(events);
        let mut versions: Vec<i64> = Vec::with_capacity(events);
        let mut timestamps: Vec<i64> = Vec::with_capacity(events);
        let mut texts: Vec<&str> = Vec::with_capacity(events);
        for w in group {
            let r = &w.request;
            for (i, (text, ms)) in r.texts.iter().zip(&r.timestamps).enumerate() {
                streams.push(&r.stream);
                ids.push(&r.aggregate_id);
                versions.push(r.first_version + i as i64);
                timestamps.push(*ms);
                texts.push(text);
            }
        }
        let Ok(mut guard) = self.conns.acquire().await else {
            return Err(false);
        };
        let conn = guard.conn();
        let result = match self.pin(&mut *conn).await {
            Err(e) => Err(e),
            Ok(()) => {
                let done = sqlx::query(&self.sql.append_group)
                    .bind(self.lock_key)
                    .bind(&streams)
                    .bind(&ids)
                    .bind(&versions)
                    .bind(&timestamps)
                    .bind(&texts)
                    .bind(&self.channel)
                    .fetch_all(&mut *conn)
                    .await;
                self.unpin(&mut *conn, done).await
            }
        };
        let rows = match result {
            Ok(rows) => {
                guard.healthy();
                rows
            }
            Err(e) if is_lost(&e) => {
                self.conns.discard_idle();
                return Err(true);
            }
            Err(_) => {
                guard.healthy();
                return Err(false);
            }
        };
        drop(guard);
        #[cfg(test)]
        self.groups_written.fetch_add(1, Ordering::Relaxed);
        // (stream, aggregate id) -> (version, position) of what was stored
        let mut stored: HashMap<(String, String), Vec<(i64, i64)>> = HashMap::new();
        let mut max = 0;
        for row in &rows {
            let read = (|| -> std::result::Result<_, sqlx::Error> {
                let position: i64 = row.try_get_unchecked(0)?;
                let version: i64 = row.try_get_unchecked(1)?;
                let stream: String = row.try_get_unchecked(2)?;
                let id: String = row.try_get_unchecked(3)?;
                Ok((position, version, stream, id))
            })();
            // The rows are committed: an unreadable answer must not turn
            // into "nothing stored", so each append is checked on its own.
            let Ok((position, version, stream, id)) = read else {
                return Err(true);
            };
            max = max.max(position);
            stored
                .entry((stream, id))
                .or_default()
                .push((version, position));
        }
        if max > 0 {
            self.head.publish(max);
        }
        let mut results = Vec::with_capacity(group.len());
        for w in group {
            let r = &w.request;
            let last = r.last_version();
            match stored.remove(&(r.stream.clone(), r.aggregate_id.clone())) {
                Some(mut got) if got.len() == r.texts.len() => {
                    got.sort_unstable();
                    results.push(Ok(got.into_iter().map(|(_, p)| p).collect()));
                }
                None => results.push(Err(StoreError::version_conflict(
                    &r.stream,
                    &r.aggregate_id,
                    r.first_version,
                    last,
                ))),
                // Never expected (an append is inserted whole or not at
                // all): let the single-append path find out what is stored.
                Some(_) => return Err(true),
            }
        }
        Ok(results)
    }

    /// One append on its own: the version check, the lock, the insert and
    /// the notification in one statement, retried on a broken connection.
    /// `lost_before`: an earlier attempt (of a group) may have committed.
    pub(super) async fn append_one(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        timestamps: &[i64],
        texts: &[&str],
        lost_before: bool,
    ) -> Result<Vec<i64>> {
        let last_version = first_version + texts.len() as i64 - 1;
        let mode = self.append_mode();
        let mut lost_before = lost_before;
        let mut attempt = 0;
        let rows = loop {
            attempt += 1;
            let mut guard = match self.conns.acquire().await {
                Ok(guard) => guard,
                Err(e) if lost_before => return Err(self.outcome_unknown(self.acquire_error(e))),
                Err(e) => return Err(self.acquire_error(e)),
            };
            #[cfg(test)]
            let inject = self.inject_lost.swap(0, Ordering::Relaxed);
            #[cfg(test)]
            if inject == 1 {
                lost_before = true;
                continue;
            }
            let conn = guard.conn();
            let result = match self.pin(&mut *conn).await {
                Err(e) => Err(e),
                Ok(()) => {
                    let done = self
                        .insert(
                            &mut *conn,
                            mode,
                            stream,
                            aggregate_id,
                            first_version,
                            timestamps,
                            texts,
                        )
                        .await;
                    self.unpin(&mut *conn, done).await
                }
            };
            #[cfg(test)]
            let result = match result {
                Ok(_) if inject == 2 => {
                    Err(sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()))
                }
                other => other,
            };
            match result {
                Ok(rows) => {
                    guard.healthy();
                    break rows;
                }
                Err(e) if is_lost(&e) => {
                    self.conns.discard_idle();
                    if attempt < MAX_ATTEMPTS {
                        // The statement may or may not have committed: try
                        // again; the unique versions make a double append
                        // impossible, and a conflict is checked below.
                        lost_before = true;
                        continue;
                    }
                    return Err(self.outcome_unknown(self.db_error(e, Table::Events)));
                }
                Err(e) => {
                    guard.healthy();
                    let conn = guard.conn();
                    let pinned = self.pin(&mut *conn).await;
                    let err = self
                        .append_error(
                            &mut *conn,
                            e,
                            stream,
                            aggregate_id,
                            first_version,
                            last_version,
                        )
                        .await;
                    if pinned.is_ok() {
                        let _ = self.unpin(&mut *conn, Ok(())).await;
                    }
                    drop(guard);
                    if lost_before && err.code() == "VERSION_CONFLICT" {
                        if let Some(positions) = self
                            .stored_by_us(stream, aggregate_id, first_version, timestamps, texts)
                            .await
                        {
                            if let Some(max) = positions.iter().max() {
                                self.head.publish(*max);
                            }
                            return Ok(positions);
                        }
                    }
                    if lost_before && err.code() != "VERSION_CONFLICT" {
                        return Err(self.outcome_unknown(err));
                    }
                    return Err(err);
                }
            }
        };
        let mut got = Vec::with_capacity(rows.len());
        for row in &rows {
            let position: i64 = row
                .try_get_unchecked(0)
                .map_err(|e| self.db_error(e, Table::Events))?;
            let version: i64 = row
                .try_get_unchecked(1)
                .map_err(|e| self.db_error(e, Table::Events))?;
            got.push((version, position));
        }
        // RETURNING promises no order.
        got.sort_unstable();
        let positions: Vec<i64> = got.into_iter().map(|(_, p)| p).collect();
        if let Some(max) = positions.iter().max() {
            self.head.publish(*max);
        }
        Ok(positions)
    }

    /// After a connection broke during an append and the retry met a
    /// version conflict: the first attempt may have committed. If the
    /// stored versions hold exactly our events, it did, and these are our
    /// positions.
    async fn stored_by_us(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        timestamps: &[i64],
        texts: &[&str],
    ) -> Option<Vec<i64>> {
        let last = first_version + texts.len() as i64 - 1;
        let rows: Vec<PgRow> = retrying!(self, Table::Events, |conn| {
            sqlx::query(&self.sql.stored_versions)
                .bind(stream)
                .bind(aggregate_id)
                .bind(first_version)
                .bind(last)
                .fetch_all(conn)
        })
        .ok()?;
        if rows.len() != texts.len() {
            return None;
        }
        let mut positions = Vec::with_capacity(rows.len());
        for ((row, text_sent), ms) in rows.iter().zip(texts).zip(timestamps) {
            let position: i64 = row.try_get_unchecked(0).ok()?;
            let text: Option<&str> = row.try_get_unchecked(1).ok()?;
            let timestamp = read_timestamp(row, 2).ok()?;
            if text != Some(*text_sent) || timestamp != Some(*ms) {
                return None;
            }
            positions.push(position);
        }
        Some(positions)
    }

    async fn append_error(
        &self,
        conn: &mut PgConnection,
        err: sqlx::Error,
        stream: &str,
        aggregate_id: &str,
        first: i64,
        last: i64,
    ) -> StoreError {
        if let sqlx::Error::Database(db) = &err {
            if let Some(pg) = db.try_downcast_ref::<PgDatabaseError>() {
                match pg.code() {
                    "23505" if self.is_version_index(conn, pg).await => {
                        return StoreError::version_conflict(stream, aggregate_id, first, last);
                    }
                    "22003" => {
                        return StoreError::invalid_argument(format!(
                            "a version from {first} to {last} does not fit the \"version\" column of table \"{}\" ({}); nothing was stored",
                            self.events_table,
                            pg.message()
                        ))
                    }
                    "22008" => {
                        return StoreError::invalid_event(format!(
                            "an event timestamp is outside the range PostgreSQL stores ({}); nothing was stored",
                            pg.message()
                        ))
                    }
                    _ => {}
                }
            }
        }
        self.db_error(err, Table::Events)
    }
}
