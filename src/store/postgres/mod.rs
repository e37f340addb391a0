//! PostgreSQL engine (sqlx, TLS through rustls), opened on a `postgres://`
//! URL; the tables are evtstore 12.0.1's. Each store has its own small pool
//! of connections ([`Conns`]); an operation whose connection broke (a server
//! restart, a killed backend) runs again on a new one, an append included:
//! if its first attempt did commit, the retry meets its own rows, which are
//! recognised (same versions, event texts and timestamps) and returned.
//!
//! **No skipped events.** An append is one statement (so one round trip and
//! its own transaction): a first CTE takes `pg_advisory_xact_lock` on a key
//! derived from the events table name, the INSERT draws its positions from
//! the sequence only for rows joined with that lock's row (so after the lock
//! is held), and the lock is released when the transaction has committed and
//! become visible. Positions therefore become visible in increasing order,
//! and a reader that read up to position P can never later find a committed
//! event below P. Writers that do not take the lock (evtstore 12.0.1 itself)
//! lose that guarantee.
//!
//! **Exact errors.** Only a unique violation on a unique index over (stream,
//! aggregate_id, version) is a `VersionConflict` (the index is looked up in
//! the catalog, whatever its name); every other failure has its own code.
//!
//! **Wake-ups.** Each append runs `pg_notify(<channel of the table>, <last
//! position>)` in its transaction. One `LISTEN` connection per database and
//! events table in the process (started by the first `createWaiter()`, ended
//! with the last open store) feeds the shared [`Head`]; after it reconnects
//! it reads the highest position, so nothing committed while it was away is
//! missed.
//!
//! Reads of whole events read the rows and write the JSON here (having
//! PostgreSQL build the JSON text was measured slower). Columns are cast so
//! that tables with other compatible column types read the same.

#[cfg(test)]
use std::sync::atomic::AtomicU8;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::postgres::PgConnection;
use sqlx::Connection;

use crate::error::{Result, StoreError};
use crate::store::batch::event_json;
use crate::store::conns::{retrying, Conns};
use crate::store::group::{dropped_by_leader, GroupQueue, QueuedAppend};
use crate::store::head::Head;
use crate::store::lease::{Lease, LeaseClaim};
use crate::store::names::TABLES;
use crate::store::server::max_connections;
use crate::store::version_key::VersionIndexes;
use crate::store::{BoxTask, Engine, EventBatch, NewEvent, Tables, Wakeups};
pub use append::AppendMode;
use errors::Table;
use listen::{hub_for, Hub};
pub use options::PostgresOptions;
use options::{connect_error, target, Target};
use sql::Statements;
pub use sql::{channel_name, lock_key, migrate_lock_key};

mod append;
mod errors;
mod lease;
mod listen;
mod migrate;
mod options;
mod read;
#[cfg(test)]
pub(crate) mod scratch;
mod sql;

/// How often a waiter behind a transaction-mode pooler asks for the
/// highest position (an index lookup).
const POOLED_PROBE_EVERY: std::time::Duration = std::time::Duration::from_millis(50);

pub struct PostgresEngine {
    conns: Conns<PgConnection>,
    target: Target,
    events_table: String,
    bookmarks_table: String,
    location: String,
    hub: Arc<Hub>,
    head: Arc<Head>,
    lock_key: i64,
    channel: String,
    sql: Statements,
    lease_sql: lease::LeaseStatements,
    /// The leases table is known to exist.
    leases_ready: AtomicBool,
    /// Behind a transaction-mode pooler: no LISTEN, waiters probe.
    pooled: bool,
    #[cfg(test)]
    append_mode: AtomicU8,
    closed: AtomicBool,
    /// Names of unique indexes known to be (or not to be) the version check.
    version_indexes: VersionIndexes,
    /// Appends that arrive while one is written wait here and are written
    /// together (group commit, see `store/group.rs`).
    appends: GroupQueue<QueuedAppend, Result<Vec<i64>>>,
    /// Tests: make the next append attempt look like a broken connection,
    /// before it runs (1) or after it committed (2).
    #[cfg(test)]
    pub(crate) inject_lost: AtomicU8,
    /// Tests: how many group statements committed.
    #[cfg(test)]
    pub(crate) groups_written: std::sync::atomic::AtomicUsize,
}

impl PostgresEngine {
    /// Checks the URL and the table names, connects once (so that a wrong
    /// host, user, password or database is reported here, with its own
    /// code), and opens the pool. Tables are not created here: call
    /// [`PostgresEngine::migrate`].
    pub async fn open(options: PostgresOptions) -> Result<Self> {
        let (events_table, bookmarks_table) =
            TABLES.names(options.events.clone(), options.bookmarks.clone())?;
        let max_connections = max_connections(options.max_connections)?;
        let target = target(&options)?;

        // One connection first (the pool would retry a refused connection
        // until its acquire timeout); it also tells the server version.
        let conn: PgConnection = target.connect_first(|e| connect_error(&target, e)).await?;
        let version = conn.server_version_num().unwrap_or(0);
        if version != 0 && version < 110_000 {
            let _ = conn.close().await;
            return Err(StoreError::Database {
                location: target.location(),
                reason: format!(
                    "PostgreSQL {}.{} is not supported: use version 11 or later",
                    version / 10_000,
                    version % 10_000
                ),
            });
        }

        let conns = Conns::new(
            target.options.clone(),
            target.connect_timeout,
            max_connections,
            conn,
        );

        let location = target.location();
        let hub = hub_for(&target, &events_table);
        hub.store_opened();
        let head = hub.head.clone();
        let sql = Statements::new(&events_table, &bookmarks_table);
        let lease_sql = lease::LeaseStatements::new(&bookmarks_table);
        Ok(PostgresEngine {
            conns,
            events_table: events_table.clone(),
            bookmarks_table,
            location,
            hub,
            head,
            lock_key: lock_key(&events_table),
            channel: channel_name(&events_table),
            sql,
            lease_sql,
            leases_ready: AtomicBool::new(false),
            pooled: options.pgbouncer == Some(true),
            #[cfg(test)]
            append_mode: AtomicU8::new(AppendMode::Locked as u8),
            closed: AtomicBool::new(false),
            version_indexes: VersionIndexes::default(),
            appends: GroupQueue::default(),
            #[cfg(test)]
            inject_lost: AtomicU8::new(0),
            #[cfg(test)]
            groups_written: std::sync::atomic::AtomicUsize::new(0),
            target,
        })
    }

    /// `postgres://user@host:port/database` (no password), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// The notification channel of the events table.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The advisory lock key every append takes.
    pub fn lock_key(&self) -> i64 {
        self.lock_key
    }

    pub fn is_closed(&self) -> bool {
        self.conns.is_closed()
    }

    /// Whether an error means the connection broke (for `retrying!`).
    fn is_lost(&self, err: &sqlx::Error) -> bool {
        errors::is_lost(err)
    }

    /// Behind a transaction-mode pooler, opens a transaction for what runs
    /// next on `conn`: sqlx prepares a statement (Parse, Sync) apart from
    /// running it (Bind, Execute, Sync), and only a transaction keeps both
    /// on one server connection. Prepared statements left on that server
    /// connection by an earlier client (sqlx names them even without a
    /// cache) are dropped first.
    pub(super) async fn pin(
        &self,
        conn: &mut PgConnection,
    ) -> std::result::Result<(), sqlx::Error> {
        if self.pooled {
            sqlx::Executor::execute(&mut *conn, "BEGIN; DEALLOCATE ALL").await?;
        }
        Ok(())
    }

    /// Ends what [`PostgresEngine::pin`] opened: commits after success,
    /// rolls back after a failure (whose error is the one returned).
    pub(super) async fn unpin<T>(
        &self,
        conn: &mut PgConnection,
        done: std::result::Result<T, sqlx::Error>,
    ) -> std::result::Result<T, sqlx::Error> {
        if !self.pooled {
            return done;
        }
        match done {
            Ok(value) => {
                sqlx::Executor::execute(&mut *conn, "COMMIT").await?;
                Ok(value)
            }
            Err(e) => {
                let _ = sqlx::Executor::execute(&mut *conn, "ROLLBACK").await;
                Err(e)
            }
        }
    }

    fn release(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.hub.store_closed();
        }
    }
}

impl Drop for PostgresEngine {
    fn drop(&mut self) {
        // The pool's connections close with it (they live on the tokio
        // runtime, never on Node's event loop); the LISTEN connection ends
        // with the last store of its database and table.
        self.release();
    }
}

#[async_trait]
impl Engine for PostgresEngine {
    fn name(&self) -> &'static str {
        "postgres"
    }

    /// Creates the tables and unique indexes that are missing (evtstore
    /// 12.0.1's layout). Idempotent, never drops; an existing unique index
    /// on the same columns, whatever its name, counts as present. Runs
    /// under an advisory lock, so concurrent migrations (other processes)
    /// wait for each other.
    async fn migrate(&self, tables: Tables) -> Result<()> {
        self.migrate_tables(tables).await
    }

    /// Closes the pool (later calls fail with `STORE_CLOSED`); the LISTEN
    /// connection ends with the last open store of its database and table.
    async fn close(&self) {
        self.release();
        self.conns.close().await;
    }

    /// The head shared by every store of this process on this database and
    /// events table.
    fn head(&self) -> &Arc<Head> {
        &self.head
    }

    fn wakeups(&self) -> Wakeups {
        if self.pooled {
            // a pooler does not carry LISTEN: look for appends instead
            return Wakeups::probing(POOLED_PROBE_EVERY);
        }
        Wakeups {
            notified: true,
            probe_every: None,
        }
    }

    async fn max_position(&self) -> Result<i64> {
        let sql = &self.sql.max_position;
        retrying!(self, Table::Events, |conn| async move {
            sqlx::query_scalar::<_, Option<i64>>(sql)
                .fetch_one(conn)
                .await
        })
        .map(|max| max.unwrap_or(0))
    }

    fn listen(&self, spawn: &dyn Fn(BoxTask)) {
        self.ensure_listener(spawn);
    }

    async fn append(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let timestamps: Vec<i64> = events.iter().map(|e| e.timestamp).collect();
        let texts: Vec<&str> = events.iter().map(|e| e.event).collect();
        if self.append_mode() != AppendMode::Locked {
            return self
                .append_one(
                    stream,
                    aggregate_id,
                    first_version,
                    &timestamps,
                    &texts,
                    false,
                )
                .await;
        }
        let queued = || QueuedAppend::new(stream, aggregate_id, first_version, events);
        self.appends
            .write(
                queued,
                || {
                    self.append_one(
                        stream,
                        aggregate_id,
                        first_version,
                        &timestamps,
                        &texts,
                        false,
                    )
                },
                |group| self.write_group(group),
                || Err(dropped_by_leader(&self.location)),
            )
            .await
    }

    async fn events_for(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Result<EventBatch> {
        let after = after_position.unwrap_or(i64::MIN);
        self.read_events(&self.sql.events_for_rows, false, |q| {
            q.bind(stream).bind(aggregate_id).bind(after)
        })
        .await
    }

    async fn events_from(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Result<EventBatch> {
        self.read_events(&self.sql.events_from_rows, true, |q| {
            q.bind(streams).bind(after_position).bind(limit)
        })
        .await
    }

    async fn last_event(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>> {
        let rows = retrying!(self, Table::Events, |conn| {
            let query = match aggregate_id {
                Some(id) => sqlx::query(&self.sql.last_event_of).bind(streams).bind(id),
                None => sqlx::query(&self.sql.last_event_any).bind(streams),
            };
            query.fetch_all(conn)
        })?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let ev = self.event_ref(row)?;
        self.head.publish(ev.position);
        Ok(Some(event_json(&ev)))
    }

    async fn get_bookmark(&self, name: &str) -> Result<i64> {
        let position: Option<Option<i64>> = retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query_scalar(&self.sql.get_bookmark)
                .bind(name)
                .fetch_optional(conn)
        })?;
        Ok(position.flatten().unwrap_or(0))
    }

    async fn set_bookmark(&self, name: &str, position: i64) -> Result<()> {
        retrying!(self, Table::Bookmarks, |conn| {
            sqlx::query(&self.sql.set_bookmark)
                .bind(name)
                .bind(position)
                .execute(conn)
        })?;
        Ok(())
    }

    async fn bookmarks(&self) -> Result<Vec<(String, i64)>> {
        self.all_bookmarks().await
    }

    async fn count_after(&self, streams: &[String], after_position: i64) -> Result<i64> {
        retrying!(self, Table::Events, |conn| {
            sqlx::query_scalar(&self.sql.count_after)
                .bind(streams)
                .bind(after_position)
                .fetch_one(conn)
        })
    }

    async fn leases(&self, name: Option<&str>) -> Result<Vec<Lease>> {
        self.read_leases(name).await
    }

    async fn claim_lease(&self, claim: &LeaseClaim<'_>) -> Result<Option<i64>> {
        self.claim(claim).await
    }

    async fn renew_lease(&self, name: &str, token: i64) -> Result<bool> {
        self.renew(name, token).await
    }

    async fn release_lease(&self, name: &str, token: i64) -> Result<()> {
        self.release_held(name, token).await
    }

    async fn set_bookmark_fenced(&self, name: &str, position: i64, token: i64) -> Result<bool> {
        self.bookmark_fenced(name, position, token).await
    }
}
