//! MySQL and MariaDB engine (sqlx, TLS through rustls), on evtstore 12.0.1's
//! knex tables. Each store has its own small pool of connections
//! ([`Conns`]); reads run again on a new connection when theirs broke.
//!
//! **No skipped events.** Auto-increment values are drawn when a row is
//! inserted, not when it commits, so without care a reader could see
//! position 8 committed before position 7 and move past 7 for ever. Every
//! append therefore takes a named lock (`GET_LOCK`, one per database and
//! events table) inside its INSERT, before any row exists, and releases it
//! after the INSERT has committed (each append is one autocommit
//! statement). Appends thus draw and commit their positions one at a time,
//! in order. A writer that dies holding the lock loses it with its
//! connection. Writers that do not take the lock (evtstore 12.0.1 itself)
//! lose that guarantee. Measured cost: see docs/providers/mysql.md.
//!
//! **Exact errors.** Only a duplicate key on a unique index over (stream,
//! aggregate_id, version) is a `VersionConflict` (the index's columns are
//! looked up, whatever its name); every other failure has its own code.
//!
//! **Handler leases** are rows of `<bookmarks>_leases`, and a fenced
//! bookmark write checks its lease under a shared row lock in the same
//! statement (see `lease.rs`).
//!
//! **Wake-ups.** MySQL has no LISTEN: a waiting handler probes the highest
//! position every [`PROBE_EVERY`]; appends of this process move the head
//! at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, Row};

use crate::error::{Result, StoreError};
use crate::store::batch::event_json;
use crate::store::conns::{retrying, Conns};
use crate::store::group::{dropped_by_leader, GroupQueue, QueuedAppend};
use crate::store::head::{shared_head, Head};
use crate::store::lease::{Lease, LeaseClaim};
use crate::store::names::TABLES;
use crate::store::server::max_connections;
use crate::store::version_key::VersionIndexes;
use crate::store::{Engine, EventBatch, NewEvent, Tables, Wakeups};
use errors::Table;
pub use options::MysqlOptions;
use options::{connect_error, target, Target, ENGINE};
pub use sql::lock_name;
use sql::Statements;

mod append;
mod errors;
mod lease;
mod migrate;
mod options;
mod read;
#[cfg(test)]
pub(crate) mod scratch;
mod sql;

/// How often a waiting handler asks for the highest position (an index
/// lookup): appends of other processes wake it within this.
const PROBE_EVERY: Duration = Duration::from_millis(20);

pub struct MysqlEngine {
    pub(crate) conns: Conns<MySqlConnection>,
    target: Target,
    events_table: String,
    bookmarks_table: String,
    location: String,
    head: Arc<Head>,
    lock_name: String,
    sql: Statements,
    lease_sql: lease::LeaseStatements,
    /// The leases table is known to exist.
    leases_ready: AtomicBool,
    /// The server may interleave auto-increment values of concurrent
    /// inserts (`innodb_autoinc_lock_mode = 2`): positions are read back.
    read_back_positions: bool,
    /// `auto_increment_increment`: the step between the positions of one
    /// INSERT.
    increment: i64,
    /// What the events table's columns keep, asked once the table exists.
    columns: tokio::sync::OnceCell<append::Columns>,
    /// `max_allowed_packet`: the largest statement the server takes.
    max_packet: usize,
    /// Names of unique indexes known to be (or not to be) the version check.
    version_indexes: VersionIndexes,
    /// Appends that arrive while one is written wait here and are written
    /// together (group commit, see `store/group.rs`).
    appends: GroupQueue<QueuedAppend, Result<Vec<i64>>>,
    closed: AtomicBool,
    /// Tests: how many group statements committed.
    #[cfg(test)]
    pub(crate) groups_written: std::sync::atomic::AtomicUsize,
    /// Tests: append without the lock (to show what it is for).
    #[cfg(test)]
    pub(crate) unlocked: AtomicBool,
}

/// `(major, minor, patch, mariadb)` of a `VERSION()` text such as
/// "8.0.36" or "10.11.6-MariaDB-0+deb12u1".
fn parse_version(text: &str) -> (u32, u32, u32, bool) {
    let mut parts = text
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = parts.next().unwrap_or(0);
    let minor = parts.next().unwrap_or(0);
    let patch = parts.next().unwrap_or(0);
    (major, minor, patch, text.contains("MariaDB"))
}

/// Whether the server has what the engine needs (`JSON_TABLE`).
fn supported(version: (u32, u32, u32, bool)) -> bool {
    match version {
        (major, minor, _, true) => (major, minor) >= (10, 6),
        (major, minor, patch, false) => (major, minor, patch) >= (8, 0, 4),
    }
}

impl MysqlEngine {
    /// Checks the options and table names, connects once (so that a wrong
    /// host, user, password or database is reported here, with its own
    /// code), checks the server version and opens the pool. Tables are
    /// not created here: call [`Engine::migrate`].
    pub async fn open(options: MysqlOptions) -> Result<Self> {
        let (events_table, bookmarks_table) =
            TABLES.names(options.events.clone(), options.bookmarks.clone())?;
        let max_connections = max_connections(options.max_connections)?;
        let target = target(&options)?;
        let mut conn: MySqlConnection = target.connect_first(|e| connect_error(&target, e)).await?;
        let settings = sqlx::query(
            "SELECT VERSION(), CAST(@@innodb_autoinc_lock_mode AS SIGNED), CAST(@@auto_increment_increment AS SIGNED), CAST(@@max_allowed_packet AS SIGNED)",
        )
        .fetch_one(&mut conn)
        .await
        .and_then(|row| {
            Ok((
                row.try_get::<String, _>(0)?,
                row.try_get::<Option<i64>, _>(1)?,
                row.try_get::<Option<i64>, _>(2)?,
                row.try_get::<Option<i64>, _>(3)?,
            ))
        });
        let location = target.location();
        let (version, lock_mode, increment, max_packet) =
            settings.map_err(|e| StoreError::Database {
                location: location.clone(),
                reason: format!("cannot read the server's version and settings: {e}"),
            })?;
        if !supported(parse_version(&version)) {
            let _ = conn.close().await;
            return Err(StoreError::Database {
                location,
                reason: format!(
                    "server version {version} is not supported: use MySQL 8.0.4 or later, or MariaDB 10.6 or later (JSON_TABLE is needed)"
                ),
            });
        }
        let max_packet = max_packet.unwrap_or(4 << 20).max(1 << 20) as usize;
        let conns = Conns::new(
            target.options.clone(),
            target.connect_timeout,
            max_connections,
            conn,
        );
        let head = shared_head(ENGINE, format!("{location}/{events_table}"));
        Ok(MysqlEngine {
            conns,
            lock_name: lock_name(&target.database, &events_table),
            sql: Statements::new(&events_table, &bookmarks_table),
            lease_sql: lease::LeaseStatements::new(&events_table, &bookmarks_table),
            leases_ready: AtomicBool::new(false),
            events_table,
            bookmarks_table,
            location,
            head,
            read_back_positions: lock_mode.unwrap_or(2) == 2,
            increment: increment.unwrap_or(1).max(1),
            columns: tokio::sync::OnceCell::new(),
            max_packet,
            version_indexes: VersionIndexes::default(),
            appends: GroupQueue::default(),
            closed: AtomicBool::new(false),
            #[cfg(test)]
            groups_written: std::sync::atomic::AtomicUsize::new(0),
            #[cfg(test)]
            unlocked: AtomicBool::new(false),
            target,
        })
    }

    /// `mysql://user@host:port/database` (no password), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether an error means the connection broke (for `retrying!`).
    fn is_lost(&self, err: &sqlx::Error) -> bool {
        errors::is_lost(err)
    }

    /// `retrying!`'s hooks around a statement: nothing to do on MySQL.
    async fn pin(&self, _conn: &mut MySqlConnection) -> std::result::Result<(), sqlx::Error> {
        Ok(())
    }

    async fn unpin<T>(
        &self,
        _conn: &mut MySqlConnection,
        done: std::result::Result<T, sqlx::Error>,
    ) -> std::result::Result<T, sqlx::Error> {
        done
    }
}

#[async_trait]
impl Engine for MysqlEngine {
    fn name(&self) -> &'static str {
        "mysql"
    }

    /// Creates the tables and unique indexes that are missing (evtstore
    /// 12.0.1's knex layout). Idempotent, never drops.
    async fn migrate(&self, tables: Tables) -> Result<()> {
        self.migrate_tables(tables).await
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.conns.close().await;
    }

    fn head(&self) -> &Arc<Head> {
        &self.head
    }

    fn wakeups(&self) -> Wakeups {
        Wakeups::probing(PROBE_EVERY)
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
        #[cfg(test)]
        if self.unlocked.load(Ordering::Relaxed) {
            // concurrent, as separate processes would be
            return self
                .append_alone(stream, aggregate_id, first_version, events)
                .await;
        }
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
        let sql = self.sql.events_from(streams.len());
        self.read_events(&sql, true, |q| {
            let q = streams.iter().fold(q, |q, s| q.bind(s));
            q.bind(after_position).bind(limit.unwrap_or(i64::MAX))
        })
        .await
    }

    async fn last_event(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>> {
        let sql = self.sql.last_event(streams.len(), aggregate_id.is_some());
        let rows = retrying!(self, Table::Events, |conn| {
            let q = streams.iter().fold(sqlx::query(&sql), |q, s| q.bind(s));
            let q = match aggregate_id {
                Some(id) => q.bind(id),
                None => q,
            };
            q.fetch_all(conn)
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
                .bind(position)
                .execute(conn)
        })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions() {
        assert!(supported(parse_version("10.11.6-MariaDB-0+deb12u1")));
        assert!(supported(parse_version("8.0.36")));
        assert!(supported(parse_version("8.4.0-commercial")));
        assert!(!supported(parse_version("5.7.44-log")));
        assert!(!supported(parse_version("10.5.22-MariaDB")));
        assert!(!supported(parse_version("8.0.3-rc")));
    }
}
