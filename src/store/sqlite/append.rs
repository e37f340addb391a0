//! Group commit: an append that finds nobody writing goes alone
//! ([`SqliteEngine::append_alone`]); those that arrive meanwhile wait, and
//! the first of them then writes all of them in one `BEGIN IMMEDIATE`
//! transaction, each inside a savepoint, and commits once. With
//! `synchronous = FULL` that is one sync for the whole group instead of one
//! per append. A version clash rolls back only its own savepoint: the
//! others of the group are stored, and each append stays all or none.

use sqlx::sqlite::SqliteConnection;

use super::sql::bind_rows;
use super::{SqliteEngine, INSERT_CHUNK};
use crate::error::{Result, StoreError};
use crate::store::group::{dropped_by_leader, QueuedAppend, WaitingAppend};
use crate::store::NewEvent;

/// Most events one group writes (the rest wait for the next group).
const GROUP_MAX_EVENTS: usize = 5_000;

impl SqliteEngine {
    /// Writes the append alone, or queues it for the next group.
    pub(super) async fn append_grouped(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        let queued = || QueuedAppend::new(stream, aggregate_id, first_version, events);
        self.appends
            .write(
                queued,
                || self.append_alone(stream, aggregate_id, first_version, events),
                |group| self.write_group(group),
                || Err(dropped_by_leader(&self.location)),
            )
            .await
    }

    /// Writes a group led by its first request, answers the others and
    /// returns the leader's own result.
    async fn write_group(&self, mut group: Vec<WaitingAppend>) -> Result<Vec<i64>> {
        let mut events = 0;
        let keep = group
            .iter()
            .take_while(|w| {
                events += w.request.texts.len();
                events <= GROUP_MAX_EVENTS
            })
            .count()
            .max(1);
        self.appends.defer(group.split_off(keep));
        let results = match self.write_together(&group).await {
            Ok(results) => results,
            // Anything but a version clash (a missing table, a lock held by
            // another process too long, ...): each append on its own, so
            // that each gets its own answer.
            Err(_) => {
                let mut results = Vec::with_capacity(group.len());
                for w in &group {
                    let r = &w.request;
                    results.push(
                        self.append_alone(&r.stream, &r.aggregate_id, r.first_version, &r.events())
                            .await,
                    );
                }
                results
            }
        };
        let mut answers = group.into_iter().zip(results);
        // The leader's own request comes first (a group is never empty).
        let own = answers.next().map(|(_, own)| own);
        for (waiting, result) in answers {
            waiting.answer(result);
        }
        own.unwrap_or(Ok(Vec::new()))
    }

    /// The appends of a group in one transaction, a savepoint each; their
    /// results in order, or the error that stopped the whole group
    /// (nothing of it is stored then).
    async fn write_together(&self, group: &[WaitingAppend]) -> Result<Vec<Result<Vec<i64>>>> {
        let _write = self.shared.write_lock.lock().await;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.db_error(e))?;
        let mut results = Vec::with_capacity(group.len());
        for w in group {
            let r = &w.request;
            self.execute(&mut tx, "SAVEPOINT \"append\"").await?;
            let inserted = self
                .insert_chunks(
                    &mut tx,
                    &r.stream,
                    &r.aggregate_id,
                    r.first_version,
                    &r.events(),
                )
                .await;
            match inserted {
                Ok(positions) => {
                    self.execute(&mut tx, "RELEASE \"append\"").await?;
                    results.push(Ok(positions));
                }
                Err(conflict @ StoreError::VersionConflict { .. }) => {
                    self.execute(&mut tx, "ROLLBACK TO \"append\"").await?;
                    self.execute(&mut tx, "RELEASE \"append\"").await?;
                    results.push(Err(conflict));
                }
                Err(other) => return Err(other),
            }
        }
        tx.commit().await.map_err(|e| self.db_error(e))?;
        #[cfg(test)]
        self.groups_written
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let max = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .flatten()
            .max();
        if let Some(max) = max {
            self.head.publish(*max);
        }
        Ok(results)
    }

    async fn execute(&self, conn: &mut SqliteConnection, sql: &str) -> Result<()> {
        sqlx::query(sql)
            .execute(conn)
            .await
            .map(|_| ())
            .map_err(|e| self.db_error(e))
    }

    /// One append's rows in chunks of [`INSERT_CHUNK`], inside a
    /// transaction (a group's, or a lone append's of more than one chunk).
    pub(super) async fn insert_chunks(
        &self,
        conn: &mut SqliteConnection,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        let last_version = first_version + events.len() as i64 - 1;
        let mut positions = Vec::with_capacity(events.len());
        for (c, chunk) in events.chunks(INSERT_CHUNK).enumerate() {
            let sql = self.insert_sql(chunk.len());
            let base = first_version + (c * INSERT_CHUNK) as i64;
            let query = bind_rows(sqlx::query(&sql), stream, aggregate_id, base, chunk);
            let rows = query.fetch_all(&mut *conn).await.map_err(|e| {
                self.append_error(e, stream, aggregate_id, first_version, last_version)
            })?;
            self.collect_positions(&rows, &mut positions)?;
        }
        Ok(positions)
    }
}
