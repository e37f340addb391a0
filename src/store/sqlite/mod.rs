//! SQLite engine (sqlx). One pool per store; a file is opened in WAL mode
//! (readers never wait for the writer; `journalMode: 'delete'` keeps the
//! rollback journal) with `synchronous = FULL` (an append that resolved was
//! synced to disk; `synchronous: 'normal'` trades that for speed) and a 5 s
//! busy timeout; `:memory:` is one private database on one connection kept
//! open until `close()`. Appends that arrive while one is being written are
//! written together, in one transaction and one sync (`append.rs`).
//!
//! Writes (append, bookmarks, migrate) of this process queue on one
//! in-memory lock per database file, so they never spin in SQLite's busy
//! handler against each other; writers in other processes are serialised by
//! SQLite's write lock (busy timeout). An append of up to 100 events is one
//! `INSERT ... RETURNING` in autocommit mode (atomic, and it takes the write
//! lock before reading anything); a bigger one runs in `BEGIN IMMEDIATE`.
//! The version check is the unique index on (stream, aggregate_id, version):
//! only its violation is a `VersionConflict`.
//!
//! Reads of whole events let SQLite build the JSON array (one row instead
//! of one hand-over per row between the worker thread and us); rows that need
//! Rust (text timestamps, an event column that is not JSON) fall back to
//! reading the rows and writing the JSON here.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::Row;

use napi_derive::napi;

use crate::error::{Result, StoreError};
use crate::store::group::{GroupQueue, QueuedAppend};
use crate::store::head::Head;
use crate::store::lease::{Lease, LeaseClaim};
use crate::store::names::SQLITE_TABLES;
use crate::store::{Engine, EventBatch, NewEvent, Tables, Wakeups};
use errors::{absolute, describe_open_error, display_path};
use shared::{shared_db, SharedDb};
use sql::{bind_rows, json_array_sql, quote_ident, Bind, Statements};

mod append;
mod errors;
mod lease;
mod read;
#[cfg(test)]
pub(crate) mod scratch;
mod shared;
mod sql;

/// How often a waiting waiter asks the file for appends made by other
/// processes (an index lookup, ~30 us).
const PROBE_EVERY: Duration = Duration::from_millis(20);

/// How long SQLite waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows per INSERT statement (5 parameters each, far below SQLite's limit).
const INSERT_CHUNK: usize = 100;
/// Rows the SQLite worker thread may queue for us.
const ROW_BUFFER: usize = 4096;
/// Up to this many streams, `last_event` asks each stream's index apart.
const MAX_UNION_STREAMS: usize = 200;
/// Connections of a file pool (readers run in parallel in WAL mode).
const FILE_POOL_SIZE: u32 = 4;

/// The options of an SQLite store.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct SqliteOptions {
    /// Path of the database file (created when missing), or ":memory:".
    pub file: String,
    /// Events table name (default "events").
    pub events: Option<String>,
    /// Bookmarks table name (default "bookmarks").
    pub bookmarks: Option<String>,
    /// "full" (default): an append or bookmark write resolves only once
    /// SQLite synced it to disk. "normal": faster; in WAL mode, writes that
    /// resolved may be lost on a power cut or an OS crash (never on a crash
    /// of the process).
    pub synchronous: Option<String>,
    /// "wal" (default; stays with the file: other programs see `-wal` and
    /// `-shm` files, and a file on a network share is not safe) or "delete"
    /// (SQLite's rollback journal: readers and the writer wait for each
    /// other).
    pub journal_mode: Option<String>,
}

/// [`SqliteOptions::synchronous`] and [`SqliteOptions::journal_mode`],
/// checked.
fn durability(options: &SqliteOptions) -> Result<(SqliteSynchronous, SqliteJournalMode)> {
    let synchronous = match options.synchronous.as_deref() {
        None | Some("full") => SqliteSynchronous::Full,
        Some("normal") => SqliteSynchronous::Normal,
        Some(other) => {
            return Err(StoreError::invalid_argument(format!(
                "synchronous must be \"full\" (the default: every write is on disk when it resolves) or \"normal\" (faster; a power cut or OS crash may lose writes that resolved), got \"{other}\""
            )))
        }
    };
    let journal = match options.journal_mode.as_deref() {
        None | Some("wal") => SqliteJournalMode::Wal,
        Some("delete") => SqliteJournalMode::Delete,
        Some(other) => {
            return Err(StoreError::invalid_argument(format!(
                "journalMode must be \"wal\" (the default) or \"delete\" (the rollback journal), got \"{other}\""
            )))
        }
    };
    Ok((synchronous, journal))
}

pub struct SqliteEngine {
    pool: SqlitePool,
    events_table: String,
    bookmarks_table: String,
    location: String,
    shared: Arc<SharedDb>,
    head: Arc<Head>,
    sql: Statements,
    lease_sql: lease::LeaseStatements,
    /// The leases table is known to exist.
    leases_ready: AtomicBool,
    /// Let SQLite build the JSON of reads (off only in tests, to compare).
    sql_json: AtomicBool,
    /// Appends waiting for the one being written (group commit).
    appends: GroupQueue<QueuedAppend, Result<Vec<i64>>>,
    /// Groups written together (tests: that group commit happens).
    #[cfg(test)]
    pub(crate) groups_written: std::sync::atomic::AtomicUsize,
}

impl SqliteEngine {
    /// Opens (and creates when missing) the database. Tables are not
    /// created here: call [`SqliteEngine::migrate`].
    pub async fn open(options: SqliteOptions) -> Result<Self> {
        let (synchronous, journal) = durability(&options)?;
        let (events_table, bookmarks_table) =
            SQLITE_TABLES.names(options.events, options.bookmarks)?;
        let file = options.file;
        if file.is_empty() {
            return Err(StoreError::invalid_argument(
                "the SQLite file name is empty: pass a path, or \":memory:\" for a private in-memory database",
            ));
        }
        if file.contains('\0') {
            return Err(StoreError::invalid_argument(
                "the SQLite file name contains a NUL character",
            ));
        }
        let in_memory = file == ":memory:";

        let connect = SqliteConnectOptions::new()
            .busy_timeout(BUSY_TIMEOUT)
            .statement_cache_capacity(INSERT_CHUNK + 50)
            // Let the worker thread run ahead of us on big reads instead of
            // handing rows over 50 at a time.
            .row_buffer_size(ROW_BUFFER);
        let (connect, pool) = if in_memory {
            (
                connect.filename(":memory:").in_memory(true),
                SqlitePoolOptions::new().max_connections(1),
            )
        } else {
            (
                connect
                    .filename(&file)
                    .create_if_missing(true)
                    .journal_mode(journal)
                    .synchronous(synchronous),
                SqlitePoolOptions::new().max_connections(FILE_POOL_SIZE),
            )
        };
        // No idle timeout and no max lifetime: no reaper task, and a
        // `:memory:` database lives exactly as long as its one connection,
        // which is only closed by `close()`.
        let pool = pool
            .min_connections(0)
            .idle_timeout(None)
            .max_lifetime(None)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::CannotOpen {
                engine: "SQLite",
                location: display_path(&file),
                reason: describe_open_error(&e),
            })?;

        let (location, shared) = if in_memory {
            (":memory:".to_string(), Arc::new(SharedDb::new()))
        } else {
            let canonical =
                std::fs::canonicalize(&file).unwrap_or_else(|_| absolute(Path::new(&file)));
            (canonical.display().to_string(), shared_db(canonical))
        };
        let head = shared.head(&events_table.to_ascii_lowercase());

        let t = quote_ident(&events_table);
        let b = quote_ident(&bookmarks_table);
        // the column order event_row reads
        let columns = "\"position\", \"version\", \"timestamp\", \"event\"";
        let select = format!("SELECT {columns}, \"stream\", \"aggregate_id\" FROM {t}");
        // `+position`: find the aggregate on its index, never by walking
        // the stream's positions. No stream and id columns: they are the
        // ones asked for.
        let events_for = format!(
            "SELECT {columns} FROM {t} WHERE \"stream\" = ? AND \"aggregate_id\" = ? AND +\"position\" > ? ORDER BY \"version\", \"position\""
        );
        let sql = Statements {
            events_for_json: json_array_sql(&events_for, false),
            events_for,
            select,
            get_bookmark: format!("SELECT \"position\" FROM {b} WHERE \"bookmark\" = ?"),
            set_bookmark: format!(
                "INSERT INTO {b} (\"bookmark\", \"position\") VALUES (?, ?) ON CONFLICT (\"bookmark\") DO UPDATE SET \"position\" = excluded.\"position\""
            ),
            max_position: format!("SELECT coalesce(max(\"position\"), 0) FROM {t}"),
        };

        let lease_sql = lease::LeaseStatements::new(&events_table, &bookmarks_table);
        Ok(SqliteEngine {
            pool,
            events_table,
            bookmarks_table,
            location,
            shared,
            head,
            sql,
            lease_sql,
            leases_ready: AtomicBool::new(false),
            sql_json: AtomicBool::new(true),
            appends: GroupQueue::default(),
            #[cfg(test)]
            groups_written: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Where the database is, for messages (canonical path or `:memory:`).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Creates the missing tables (only those asked for) and indexes, in
    /// the layout evtstore 12.0.1 creates through knex (whose migrate
    /// creates only the tables it is given names of). Idempotent; never
    /// drops anything.
    async fn migrate_tables(&self, tables: Tables) -> Result<()> {
        let t = quote_ident(&self.events_table);
        let b = quote_ident(&self.bookmarks_table);
        let lower = self.events_table.to_ascii_lowercase();
        let events_statements = [
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (\"position\" integer not null primary key autoincrement, \"version\" integer, \"stream\" varchar(255), \"aggregate_id\" varchar(255), \"timestamp\" datetime, \"event\" text)"
            ),
            format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {t} (\"stream\", \"position\")",
                quote_ident(&format!("{lower}_stream_position_unique"))
            ),
            format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {t} (\"stream\", \"aggregate_id\", \"version\")",
                quote_ident(&format!("{lower}_stream_aggregate_id_version_unique"))
            ),
        ];
        let bookmarks_statement = format!(
            "CREATE TABLE IF NOT EXISTS {b} (\"bookmark\" varchar(255), \"position\" bigint, primary key (\"bookmark\"))"
        );
        let mut statements: Vec<&str> = Vec::new();
        if tables.events {
            statements.extend(events_statements.iter().map(String::as_str));
        }
        if tables.bookmarks {
            statements.push(&bookmarks_statement);
            // the handler leases live beside the bookmarks
            statements.push(&self.lease_sql.create);
        }
        let _write = self.shared.write_lock.lock().await;
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|e| self.db_error(e))?;
        for sql in statements {
            sqlx::query(sql)
                .persistent(false)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.db_error(e))?;
        }
        tx.commit().await.map_err(|e| self.db_error(e))
    }

    /// A pragma's value on one of the engine's connections (tests).
    #[cfg(test)]
    pub(crate) async fn pragma(&self, name: &str) -> String {
        let row = sqlx::query(&format!("PRAGMA {name}"))
            .fetch_one(&self.pool)
            .await
            .expect("pragma");
        match row.try_get::<String, _>(0) {
            Ok(text) => text,
            Err(_) => row
                .try_get::<i64, _>(0)
                .expect("a pragma value")
                .to_string(),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Positions of the rows an INSERT ... RETURNING gave back, in version
    /// order (RETURNING promises no order).
    fn collect_positions(&self, rows: &[SqliteRow], positions: &mut Vec<i64>) -> Result<()> {
        let mut got = Vec::with_capacity(rows.len());
        for row in rows {
            let position: i64 = row.try_get(0).map_err(|e| self.db_error(e))?;
            let version: i64 = row.try_get(1).map_err(|e| self.db_error(e))?;
            got.push((version, position));
        }
        got.sort_unstable();
        positions.extend(got.into_iter().map(|(_, p)| p));
        Ok(())
    }
}

impl SqliteEngine {
    /// One append written on its own: up to 100 events in one `INSERT ...
    /// RETURNING` in autocommit mode (atomic, and it takes the write lock
    /// before reading anything), more in `BEGIN IMMEDIATE`.
    pub(super) async fn append_alone(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let last_version = first_version + events.len() as i64 - 1;
        let to_error = |e| self.append_error(e, stream, aggregate_id, first_version, last_version);
        let mut positions = Vec::with_capacity(events.len());
        {
            let _write = self.shared.write_lock.lock().await;
            if events.len() <= INSERT_CHUNK {
                // One statement in autocommit mode is atomic on its own and
                // takes the write lock up front: one round trip.
                let sql = self.insert_sql(events.len());
                let query = bind_rows(
                    sqlx::query(&sql),
                    stream,
                    aggregate_id,
                    first_version,
                    events,
                );
                let rows = query.fetch_all(&self.pool).await.map_err(to_error)?;
                self.collect_positions(&rows, &mut positions)?;
            } else {
                let mut tx = self
                    .pool
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(|e| self.db_error(e))?;
                positions = self
                    .insert_chunks(&mut tx, stream, aggregate_id, first_version, events)
                    .await?;
                tx.commit().await.map_err(|e| self.db_error(e))?;
            }
        }
        if let Some(max) = positions.iter().max() {
            self.head.publish(*max);
        }
        Ok(positions)
    }
}

#[async_trait]
impl Engine for SqliteEngine {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn migrate(&self, tables: Tables) -> Result<()> {
        self.migrate_tables(tables).await
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    /// The head shared by every store of this process on this database and
    /// events table.
    fn head(&self) -> &Arc<Head> {
        &self.head
    }

    fn wakeups(&self) -> Wakeups {
        Wakeups::probing(PROBE_EVERY)
    }

    /// The highest position in the events table (0 when empty): what a
    /// waiter asks for to see appends made by other processes.
    async fn max_position(&self) -> Result<i64> {
        let max: i64 = sqlx::query_scalar(&self.sql.max_position)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(max)
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
        self.append_grouped(stream, aggregate_id, first_version, events)
            .await
    }

    async fn events_for(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Result<EventBatch> {
        let after = after_position.unwrap_or(i64::MIN);
        let binds = [Bind::Str(stream), Bind::Str(aggregate_id), Bind::Int(after)];
        self.read_events(
            &self.sql.events_for,
            &self.sql.events_for_json,
            &binds,
            false,
        )
        .await
    }

    async fn events_from(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Result<EventBatch> {
        let rows_sql = format!(
            "{} WHERE {} AND \"position\" > ? ORDER BY \"position\" LIMIT ?",
            self.sql.select,
            Self::in_streams(streams.len())
        );
        let json_sql = json_array_sql(&rows_sql, true);
        let mut binds: Vec<Bind<'_>> = streams.iter().map(|s| Bind::Str(s)).collect();
        binds.push(Bind::Int(after_position));
        binds.push(Bind::Int(limit.unwrap_or(-1)));
        self.read_events(&rows_sql, &json_sql, &binds, true).await
    }

    async fn last_event(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>> {
        // The highest position per stream, each found on an index: on
        // (stream, position) without an id, on the aggregate's entries of
        // (stream, aggregate_id, version) with one (the `+` keeps SQLite
        // from walking the whole stream backwards instead).
        let t = quote_ident(&self.events_table);
        let per_stream = if aggregate_id.is_some() {
            format!("SELECT max(+\"position\") AS p FROM {t} WHERE \"stream\" = ? AND \"aggregate_id\" = ?")
        } else {
            format!("SELECT max(\"position\") AS p FROM {t} WHERE \"stream\" = ?")
        };
        let sql = if streams.len() <= MAX_UNION_STREAMS {
            let union = vec![per_stream.as_str(); streams.len()].join(" UNION ALL ");
            format!(
                "{} WHERE \"position\" = (SELECT max(p) FROM ({union}))",
                self.sql.select
            )
        } else {
            // SQLite caps a compound SELECT at 500 terms.
            let id_filter = if aggregate_id.is_some() {
                " AND \"aggregate_id\" = ?"
            } else {
                ""
            };
            format!(
                "{} WHERE {}{id_filter} ORDER BY \"position\" DESC LIMIT 1",
                self.sql.select,
                Self::in_streams(streams.len())
            )
        };
        let mut query = sqlx::query(&sql);
        if streams.len() <= MAX_UNION_STREAMS {
            for s in streams {
                query = query.bind(s.as_str());
                if let Some(id) = aggregate_id {
                    query = query.bind(id);
                }
            }
        } else {
            for s in streams {
                query = query.bind(s.as_str());
            }
            if let Some(id) = aggregate_id {
                query = query.bind(id);
            }
        }
        let rows = self.fetch(query).await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let ev = self.event_ref(row)?;
        self.head.publish(ev.position);
        Ok(Some(crate::store::batch::event_json(&ev)))
    }

    async fn get_bookmark(&self, name: &str) -> Result<i64> {
        let row = sqlx::query(&self.sql.get_bookmark)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.db_error(e))?;
        match row {
            None => Ok(0),
            Some(row) => {
                let position: Option<i64> =
                    row.try_get_unchecked(0).map_err(|e| self.db_error(e))?;
                Ok(position.unwrap_or(0))
            }
        }
    }

    async fn set_bookmark(&self, name: &str, position: i64) -> Result<()> {
        let _write = self.shared.write_lock.lock().await;
        sqlx::query(&self.sql.set_bookmark)
            .bind(name)
            .bind(position)
            .execute(&self.pool)
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    async fn bookmarks(&self) -> Result<Vec<(String, i64)>> {
        self.all_bookmarks().await
    }

    async fn count_after(&self, streams: &[String], after_position: i64) -> Result<i64> {
        self.count_events_after(streams, after_position).await
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
