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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use sqlx::postgres::{
    PgConnectOptions, PgConnection, PgDatabaseError, PgListener, PgPoolOptions, PgRow,
};
use sqlx::{Connection, Decode, Postgres, Row, TypeInfo, ValueRef};
use tokio::sync::watch;

use crate::error::{Result, StoreError};
use crate::store::batch::{event_row, write_event};
use crate::store::group::{Entry, GroupQueue, Turn, Waiting};
use crate::store::head::Head;
use crate::store::names::validate_table_name;
use crate::store::timestamp::parse_timestamp_text;
use crate::store::{
    BoxTask, Engine, EventBatch, EventColumns, EventRef, NewEvent, Tables, Wakeups,
};
pub use options::PostgresOptions;
use options::{connect_error, target, Target, ENGINE};

mod options;

/// Connections of a pool unless `maxConnections` says otherwise (what pg and
/// postgres.js use).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// The most connections one store may open.
pub const MAX_CONNECTIONS: u32 = 1000;
/// How long the first connection may take, unless the URL has
/// `connect_timeout`.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an operation waits for a free connection of the pool.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts of an operation whose connection broke (idle connections are
/// stale after a server restart: on the first broken one they are all
/// discarded, and the next attempt opens a new connection).
const MAX_ATTEMPTS: usize = 3;
/// Back-off of the LISTEN connection between reconnection attempts.
const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(100);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// `timestamptz` counts microseconds from 2000-01-01T00:00:00Z.
const PG_EPOCH_MS: i64 = 946_684_800_000;
/// `application_name` of our connections when the URL sets none.
const APPLICATION_NAME: &str = "evtstore-rs";
/// `application_name` of the LISTEN connection.
const LISTENER_APPLICATION_NAME: &str = "evtstore-rs listener";

/// How an append is written (only the default is used outside tests and
/// measurements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendMode {
    /// One statement: lock, insert, notify (the default).
    Locked = 0,
    /// `BEGIN`, `SELECT pg_advisory_xact_lock`, insert + notify, `COMMIT`:
    /// the same guarantee in four round trips (for comparison).
    TwoStatements = 1,
    /// No lock at all: concurrent appends may become visible out of
    /// position order (to show what the lock is for).
    Unlocked = 2,
}

/// Which table an operation works on (for `MISSING_TABLE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    Events,
    Bookmarks,
}

struct Statements {
    append_locked: String,
    append_unlocked: String,
    append_group: String,
    events_for_rows: String,
    events_from_rows: String,
    last_event_any: String,
    last_event_of: String,
    get_bookmark: String,
    set_bookmark: String,
    stored_versions: String,
    max_position: String,
}

/// Runs `$body` (a future using `$conn: &mut PgConnection`) on a
/// connection of the store, again on another one when its connection broke
/// (up to [`MAX_ATTEMPTS`] times; only for operations safe to repeat).
/// Evaluates to `Result<T>`.
macro_rules! retrying {
    ($self:expr, $table:expr, |$conn:ident| $body:expr) => {{
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut guard = match $self.conns.acquire().await {
                Ok(g) => g,
                Err(e) => break Err($self.acquire_error(e)),
            };
            let result = {
                let $conn: &mut PgConnection = guard.conn();
                $body.await
            };
            match result {
                Ok(v) => {
                    guard.healthy();
                    break Ok(v);
                }
                Err(e) if is_lost(&e) => {
                    // A server restart breaks every idle connection too.
                    $self.conns.discard_idle();
                    if attempt < MAX_ATTEMPTS {
                        continue;
                    }
                    break Err($self.db_error(e, $table));
                }
                Err(e) => {
                    guard.healthy();
                    break Err($self.db_error(e, $table));
                }
            }
        }
    }};
}

/// Why no connection could be had.
#[derive(Debug)]
enum AcquireError {
    Closed,
    TimedOut,
    ConnectTimedOut(Duration),
    Connect(sqlx::Error),
}

/// The store's connections: at most `max`, idle ones reused most recent
/// first, new ones opened on demand. (sqlx's pool was measured to add about
/// 100 us to every statement: it spawns a task and pings the server each
/// time a connection is handed back.)
struct Conns {
    options: PgConnectOptions,
    connect_timeout: Option<Duration>,
    max: usize,
    permits: tokio::sync::Semaphore,
    idle: Mutex<Vec<PgConnection>>,
    closed: AtomicBool,
}

/// A connection lent out by [`Conns`]. It goes back to the idle list only
/// when marked [`ConnGuard::healthy`] (the statement ran to its end, so the
/// connection is in a known state); otherwise it is closed.
struct ConnGuard<'a> {
    conns: &'a Conns,
    conn: Option<PgConnection>,
    healthy: bool,
    _permit: tokio::sync::SemaphorePermit<'a>,
}

impl Conns {
    fn new(target: &Target, max: usize, first: PgConnection) -> Self {
        Conns {
            options: target.options.clone(),
            connect_timeout: target.connect_timeout,
            max,
            permits: tokio::sync::Semaphore::new(max),
            idle: Mutex::new(vec![first]),
            closed: AtomicBool::new(false),
        }
    }

    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<PgConnection>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn acquire(&self) -> std::result::Result<ConnGuard<'_>, AcquireError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(AcquireError::Closed);
        }
        let permit = match tokio::time::timeout(ACQUIRE_TIMEOUT, self.permits.acquire()).await {
            Err(_) => return Err(AcquireError::TimedOut),
            Ok(Err(_)) => return Err(AcquireError::Closed),
            Ok(Ok(p)) => p,
        };
        let idle = self.idle().pop();
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let connect = PgConnection::connect_with(&self.options);
                match self.connect_timeout {
                    Some(limit) => tokio::time::timeout(limit, connect)
                        .await
                        .map_err(|_| AcquireError::ConnectTimedOut(limit))?,
                    None => connect.await,
                }
                .map_err(AcquireError::Connect)?
            }
        };
        Ok(ConnGuard {
            conns: self,
            conn: Some(conn),
            healthy: false,
            _permit: permit,
        })
    }

    /// Forgets the idle connections (after one turned out broken).
    fn discard_idle(&self) {
        let idle = std::mem::take(&mut *self.idle());
        drop(idle);
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        let idle = std::mem::take(&mut *self.idle());
        for conn in idle {
            let _ = conn.close().await;
        }
    }
}

impl ConnGuard<'_> {
    fn conn(&mut self) -> &mut PgConnection {
        match self.conn.as_mut() {
            Some(conn) => conn,
            // Only `drop` takes it out.
            None => unreachable!("a lent connection is there until dropped"),
        }
    }

    fn healthy(&mut self) {
        self.healthy = true;
    }
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if self.healthy && !self.conns.is_closed() {
            self.conns.idle().push(conn);
        } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
            // Say goodbye to the server instead of just dropping the socket.
            rt.spawn(async move {
                let _ = conn.close().await;
            });
        }
    }
}

/// An append waiting for its group: owned copies of what the caller passed.
struct QueuedAppend {
    stream: String,
    aggregate_id: String,
    first_version: i64,
    timestamps: Vec<i64>,
    texts: Vec<String>,
}

/// A queued append, as the writer of its group holds it.
type WaitingAppend = Waiting<QueuedAppend, Result<Vec<i64>>>;

/// Most appends, and most events, written by one group statement (the rest
/// wait for the next group).
const GROUP_MAX_APPENDS: usize = 500;
const GROUP_MAX_EVENTS: usize = 5_000;

pub struct PostgresEngine {
    conns: Conns,
    target: Target,
    events_table: String,
    bookmarks_table: String,
    location: String,
    hub: Arc<Hub>,
    head: Arc<Head>,
    lock_key: i64,
    channel: String,
    sql: Statements,
    append_mode: AtomicU8,
    closed: AtomicBool,
    /// Names of unique indexes known to be (or not to be) the version check.
    version_indexes: Mutex<HashMap<String, bool>>,
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
        let events_table = options
            .events
            .clone()
            .unwrap_or_else(|| "events".to_string());
        let bookmarks_table = options
            .bookmarks
            .clone()
            .unwrap_or_else(|| "bookmarks".to_string());
        validate_table_name(&events_table, "events")?;
        validate_table_name(&bookmarks_table, "bookmarks")?;
        if events_table == bookmarks_table {
            return Err(StoreError::InvalidName(format!(
                "the events and bookmarks tables are both named \"{events_table}\": give them different names"
            )));
        }
        let max_connections = match options.max_connections {
            None => DEFAULT_MAX_CONNECTIONS,
            Some(n) if n.fract() == 0.0 && (1.0..=f64::from(MAX_CONNECTIONS)).contains(&n) => {
                n as u32
            }
            Some(n) => {
                return Err(StoreError::invalid_argument(format!(
                    "maxConnections must be an integer from 1 to {MAX_CONNECTIONS}, got {n}"
                )))
            }
        };
        let target = target(&options)?;

        // One connection first: it reports a refused connection, a wrong
        // password or an unknown database at once (the pool would retry a
        // refused connection until its acquire timeout), and tells the
        // server version.
        let connect = PgConnection::connect_with(&target.options);
        let connected = match target.connect_timeout {
            Some(limit) => match tokio::time::timeout(limit, connect).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(StoreError::CannotConnect {
                        engine: ENGINE,
                        tls: false,
                        server: target.server.clone(),
                        user: target.user.clone(),
                        reason: format!(
                            "no answer within {} s: check the host and port, and that no firewall drops the connection",
                            limit.as_secs_f64()
                        ),
                    })
                }
            },
            None => connect.await,
        };
        let conn = connected.map_err(|e| connect_error(&target, e))?;
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

        let conns = Conns::new(&target, max_connections as usize, conn);

        let location = target.location();
        let hub = hub_for(&target, &events_table);
        hub.store_opened();
        let head = hub.head.clone();
        let sql = Statements::new(&events_table, &bookmarks_table);
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
            append_mode: AtomicU8::new(AppendMode::Locked as u8),
            closed: AtomicBool::new(false),
            version_indexes: Mutex::new(HashMap::new()),
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

    /// Starts the LISTEN connection of this database and events table if it
    /// is not running yet (`spawn` runs its task: on the napi runtime from
    /// JS, on the test's runtime in tests). It runs until the last store on
    /// the same database and table is closed or dropped.
    pub fn ensure_listener(&self, spawn: &dyn Fn(BoxTask)) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.hub.lock();
        if state.listener.is_some() || state.open_stores == 0 {
            return;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        state.listener = Some(stop_tx);
        drop(state);
        let mut options = self.target.options.clone();
        if self.target.options.get_application_name() == Some(APPLICATION_NAME) {
            options = options.application_name(LISTENER_APPLICATION_NAME);
        }
        let task = listen_loop(
            options,
            self.channel.clone(),
            self.sql.max_position.clone(),
            self.head.clone(),
            self.target
                .connect_timeout
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            stop_rx,
        );
        spawn(Box::pin(task));
    }

    /// Whether a LISTEN connection runs for this database and table.
    pub fn is_listening(&self) -> bool {
        self.hub.lock().listener.is_some()
    }

    /// [`Engine::migrate`], retried on a broken connection.
    async fn migrate_tables(&self, tables: Tables) -> Result<()> {
        retrying!(self, Table::Events, |conn| self.migrate_once(conn, tables))
    }

    async fn migrate_once(
        &self,
        conn: &mut PgConnection,
        tables: Tables,
    ) -> std::result::Result<(), sqlx::Error> {
        let t = quote_ident(&self.events_table);
        let b = quote_ident(&self.bookmarks_table);
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(migrate_lock_key())
            .execute(&mut *tx)
            .await?;
        if tables.bookmarks {
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {b} (bookmark text PRIMARY KEY, position bigint)"
            ))
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        }
        if !tables.events {
            return tx.commit().await;
        }
        sqlx::query(&format!(
            "CREATE TABLE IF NOT EXISTS {t} (position BIGSERIAL PRIMARY KEY, version integer, stream text, aggregate_id text, timestamp timestamptz, event text)"
        ))
        .persistent(false)
        .execute(&mut *tx)
        .await?;
        for columns in [
            &["stream", "position"][..],
            &["stream", "aggregate_id", "version"][..],
        ] {
            let present: bool = sqlx::query_scalar(HAS_UNIQUE_INDEX_SQL)
                .bind(&t)
                .bind(columns)
                .fetch_one(&mut *tx)
                .await?;
            if present {
                continue;
            }
            let base = truncate_ident(&format!(
                "{}_{}_unique",
                self.events_table,
                columns.join("_")
            ));
            let mut name = base.clone();
            for n in 2..100 {
                let free: bool = sqlx::query_scalar(NAME_IS_FREE_SQL)
                    .bind(&name)
                    .bind(&t)
                    .fetch_one(&mut *tx)
                    .await?;
                if free {
                    break;
                }
                let suffix = format!("_{n}");
                name = format!("{}{suffix}", truncate_ident_to(&base, 63 - suffix.len()));
            }
            let cols: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
            sqlx::query(&format!(
                "CREATE UNIQUE INDEX {} ON {t} ({})",
                quote_ident(&name),
                cols.join(", ")
            ))
            .persistent(false)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }

    pub fn is_closed(&self) -> bool {
        self.conns.is_closed()
    }

    fn release(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.hub.store_closed();
        }
    }

    /// Chooses how appends are written (tests and measurements).
    pub fn set_append_mode(&self, mode: AppendMode) {
        self.append_mode.store(mode as u8, Ordering::Relaxed);
    }

    fn append_mode(&self) -> AppendMode {
        match self.append_mode.load(Ordering::Relaxed) {
            1 => AppendMode::TwoStatements,
            2 => AppendMode::Unlocked,
            _ => AppendMode::Locked,
        }
    }

    /// Classifies a failure to get a connection.
    fn acquire_error(&self, err: AcquireError) -> StoreError {
        match err {
            AcquireError::Closed => StoreError::StoreClosed {
                location: self.location.clone(),
                reopen: "PostgresStore.open()",
            },
            AcquireError::TimedOut => StoreError::Timeout {
                location: self.location.clone(),
                reason: format!(
                    "no connection of the pool became free within {} s: all {} of them stayed busy (raise maxConnections, or look for slow statements)",
                    ACQUIRE_TIMEOUT.as_secs(),
                    self.conns.max
                ),
            },
            AcquireError::ConnectTimedOut(limit) => StoreError::CannotConnect {
                engine: ENGINE,
                tls: false,
                server: self.target.server.clone(),
                user: self.target.user.clone(),
                reason: format!(
                    "no answer within {} s: check the host and port, and that no firewall drops the connection",
                    limit.as_secs_f64()
                ),
            },
            AcquireError::Connect(e) => connect_error(&self.target, e),
        }
    }

    /// The error of an append whose connection broke after the statement
    /// was sent and whose retry then failed: the first attempt may have
    /// committed, and nobody can tell until the server is reachable again.
    fn outcome_unknown(&self, err: StoreError) -> StoreError {
        StoreError::ConnectionLost {
            location: self.location.clone(),
            reason: format!(
                "the connection broke while an append was being sent, and trying again failed ({err}): the events may have been stored; reload the aggregate before retrying the command"
            ),
        }
    }

    /// Classifies a database failure (a version conflict is told apart by
    /// the append itself).
    fn db_error(&self, err: sqlx::Error, table: Table) -> StoreError {
        let location = self.location.clone();
        let table_name = match table {
            Table::Events => &self.events_table,
            Table::Bookmarks => &self.bookmarks_table,
        };
        match err {
            sqlx::Error::Database(db) => {
                let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
                let message = db.message().to_string();
                let detail = db
                    .try_downcast_ref::<PgDatabaseError>()
                    .and_then(|e| e.detail())
                    .map(|d| format!(" ({})", shorten(d, 200)))
                    .unwrap_or_default();
                match code.as_str() {
                    "42P01" => StoreError::MissingTable {
                        table: table_name.clone(),
                        location,
                    },
                    c if c.starts_with("23") => StoreError::ConstraintViolation {
                        location,
                        table: table_name.clone(),
                        reason: format!("{message}{detail} (SQLSTATE {c})"),
                    },
                    "57014" => StoreError::Timeout {
                        location,
                        reason: format!(
                            "{message} (SQLSTATE 57014: statement_timeout, or the query was cancelled)"
                        ),
                    },
                    "55P03" | "40P01" | "40001" | "53300" => StoreError::DatabaseBusy {
                        location,
                        reason: format!("{message} (SQLSTATE {code})"),
                    },
                    "3D000" => StoreError::UnknownDatabase {
                        engine: ENGINE,
                        server: self.target.server.clone(),
                        user: self.target.user.clone(),
                        database: self.target.database.clone(),
                    },
                    c if c.starts_with("28") => StoreError::AuthFailed {
                        engine: ENGINE,
                        server: self.target.server.clone(),
                        user: self.target.user.clone(),
                        database: self.target.database.clone(),
                        reason: format!("{message} (SQLSTATE {c})"),
                    },
                    c if c.starts_with("08") || c.starts_with("57P") => {
                        StoreError::ConnectionLost {
                            location,
                            reason: format!("{message} (SQLSTATE {c})"),
                        }
                    }
                    c => {
                        let hint = if matches!(c, "42703" | "42804" | "42883" | "42P10") {
                            format!(
                                " (table \"{table_name}\" does not have the layout that migrate() creates)"
                            )
                        } else {
                            String::new()
                        };
                        StoreError::Database {
                            location,
                            reason: format!("{message}{detail}{hint} (SQLSTATE {c})"),
                        }
                    }
                }
            }
            sqlx::Error::PoolClosed => StoreError::StoreClosed {
                location,
                reopen: "PostgresStore.open()",
            },
            sqlx::Error::PoolTimedOut => StoreError::Timeout {
                location,
                reason: format!(
                    "no connection of the pool became free within {} s: all of them stayed busy, or the server at {} did not accept new ones",
                    ACQUIRE_TIMEOUT.as_secs(),
                    self.target.server
                ),
            },
            sqlx::Error::Io(e) => StoreError::ConnectionLost {
                location,
                reason: format!("{e}; retry when the server is reachable again"),
            },
            sqlx::Error::Protocol(e) => StoreError::ConnectionLost {
                location,
                reason: format!("protocol error: {e}"),
            },
            sqlx::Error::Tls(e) => StoreError::CannotConnect {
                engine: ENGINE,
                tls: true,
                server: self.target.server.clone(),
                user: self.target.user.clone(),
                reason: format!("TLS failed: {e}"),
            },
            other => StoreError::Database {
                location,
                reason: other.to_string(),
            },
        }
    }

    /// Whether a unique index is one over (stream, aggregate_id, version),
    /// in any column order, whatever its name (asked once per index).
    async fn is_version_index(&self, conn: &mut PgConnection, err: &PgDatabaseError) -> bool {
        let Some(name) = err.constraint() else {
            return false;
        };
        let schema = err.schema().unwrap_or("");
        let key = format!("{schema}.{name}");
        if let Some(known) = self.lock_versions().get(&key) {
            return *known;
        }
        let columns: std::result::Result<Option<Vec<String>>, sqlx::Error> =
            sqlx::query_scalar(INDEX_COLUMNS_SQL)
                .bind(name)
                .bind(schema)
                .fetch_optional(conn)
                .await
                .map(Option::flatten);
        match columns {
            Ok(Some(mut cols)) => {
                cols.sort();
                let yes = cols == ["aggregate_id", "stream", "version"];
                self.lock_versions().insert(key, yes);
                yes
            }
            // The catalog could not be asked: fall back on the names.
            _ => name.contains("aggregate") && name.contains("version"),
        }
    }

    fn lock_versions(&self) -> std::sync::MutexGuard<'_, HashMap<String, bool>> {
        self.version_indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
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
        if mode == AppendMode::TwoStatements {
            let mut tx = conn.begin().await?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(self.lock_key)
                .execute(&mut *tx)
                .await?;
            let rows = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            Ok(rows)
        } else {
            query.fetch_all(conn).await
        }
    }

    /// Writes a group led by its first request and answers the others;
    /// returns the leader's own result. Requests on an aggregate that is
    /// already in the group, and those over the group's size, wait for the
    /// next group (so versions are checked against what is stored).
    async fn write_group(&self, group: Vec<WaitingAppend>) -> Result<Vec<i64>> {
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
                let last = r.first_version + r.texts.len() as i64 - 1;
                let conflict = version_conflict(&r.stream, &r.aggregate_id, r.first_version, last);
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
        let result = sqlx::query(&self.sql.append_group)
            .bind(self.lock_key)
            .bind(&streams)
            .bind(&ids)
            .bind(&versions)
            .bind(&timestamps)
            .bind(&texts)
            .bind(&self.channel)
            .fetch_all(guard.conn())
            .await;
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
            let last = r.first_version + r.texts.len() as i64 - 1;
            match stored.remove(&(r.stream.clone(), r.aggregate_id.clone())) {
                Some(mut got) if got.len() == r.texts.len() => {
                    got.sort_unstable();
                    results.push(Ok(got.into_iter().map(|(_, p)| p).collect()));
                }
                None => results.push(Err(version_conflict(
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
    async fn append_one(
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
            let result = self
                .insert(
                    guard.conn(),
                    mode,
                    stream,
                    aggregate_id,
                    first_version,
                    timestamps,
                    texts,
                )
                .await;
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
                    let err = self
                        .append_error(
                            guard.conn(),
                            e,
                            stream,
                            aggregate_id,
                            first_version,
                            last_version,
                        )
                        .await;
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
                        return version_conflict(stream, aggregate_id, first, last);
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

    /// Reads whole events and writes their JSON here. (Letting PostgreSQL
    /// build the JSON text with `string_agg` was measured slower: 37 ms
    /// against 22 ms for 10,000 events, 250 us against 194 us for 50.)
    ///
    /// Rows are turned into JSON as they arrive, so a large read never
    /// holds all of its rows at once. (10,000 events of one aggregate: ~8.5
    /// ms on a 2-core machine, with ~6 ms of CPU in the server's backend and
    /// ~4.5 ms in the tokio workers, half of it sqlx's per-row work.)
    async fn read_events<'q, B>(&self, sql: &'q str, names: bool, bind: B) -> Result<EventBatch>
    where
        B: Fn(PgQuery<'q>) -> PgQuery<'q>,
    {
        let built = retrying!(self, Table::Events, |conn| async {
            let mut rows = bind(sqlx::query(sql)).fetch(conn);
            // numbers outside the JSON: rows are read one by one here anyway
            let mut columns = EventColumns::new(64, 64 * 64, names);
            let mut max = 0;
            while let Some(row) = rows.try_next().await? {
                // a row that is no event is this read's answer: no retry
                let ev = match self.event_ref(&row) {
                    Ok(ev) => ev,
                    Err(e) => return Ok(Err(e)),
                };
                max = max.max(ev.position);
                columns.push(&ev);
            }
            Ok(Ok((columns.finish(), max)))
        })?;
        let (json, max) = built?;
        self.head.publish(max);
        Ok(json)
    }

    /// One row of [`ROW_COLUMNS`] or [`AGGREGATE_ROW_COLUMNS`] (see
    /// [`event_row`]).
    fn event_ref<'r>(&self, row: &'r PgRow) -> Result<EventRef<'r>> {
        event_row(
            row,
            read_timestamp,
            |e| self.db_error(e, Table::Events),
            &self.location,
            &self.events_table,
        )
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
        let entry = self.appends.enter(|| QueuedAppend {
            stream: stream.to_string(),
            aggregate_id: aggregate_id.to_string(),
            first_version,
            timestamps: timestamps.clone(),
            texts: texts.iter().map(|t| t.to_string()).collect(),
        });
        match entry {
            Entry::Alone => {
                let out = self
                    .append_one(stream, aggregate_id, first_version, &timestamps, &texts, false)
                    .await;
                self.appends.hand_off();
                out
            }
            Entry::Queued(turn) => match turn.await {
                Ok(Turn::Done(out)) => out,
                Ok(Turn::Lead(group)) => {
                    let out = self.write_group(group).await;
                    self.appends.hand_off();
                    out
                }
                Err(_) => Err(StoreError::Database {
                    location: self.location.clone(),
                    reason: "the append was dropped by the writer of its group before it was written; nothing was stored by it, retry".to_string(),
                }),
            },
        }
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
        match rows.first() {
            None => Ok(None),
            Some(row) => {
                let ev = self.event_ref(row)?;
                self.head.publish(ev.position);
                let mut out = String::with_capacity(256);
                write_event(&mut out, &ev);
                Ok(Some(out))
            }
        }
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
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

// ---------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------

/// The columns every read of whole events selects, from `e`, in the order
/// [`PostgresEngine::event_ref`] reads them. The casts are no-ops on the
/// layout migrate() creates and make other compatible column types read the
/// same.
const ROW_COLUMNS: &str = "e.\"position\"::int8 AS p, e.\"version\"::int8 AS v, e.\"timestamp\" AS t, e.\"event\"::text AS ev, e.\"stream\"::text AS s, e.\"aggregate_id\"::text AS a";

/// [`ROW_COLUMNS`] without the stream and id, for a read of one aggregate
/// (they are the ones asked for; sending them takes a fifth of the time
/// of a 10,000-event read).
const AGGREGATE_ROW_COLUMNS: &str = "e.\"position\"::int8 AS p, e.\"version\"::int8 AS v, e.\"timestamp\" AS t, e.\"event\"::text AS ev";

/// Whether the table (`$1`, a quoted name) has a valid unique index, without
/// predicate or expressions, whose key columns are exactly `$2` in order.
const HAS_UNIQUE_INDEX_SQL: &str = "SELECT EXISTS (SELECT 1 FROM pg_index x WHERE x.indrelid = to_regclass($1) AND x.indisunique AND x.indisvalid AND x.indpred IS NULL AND x.indexprs IS NULL AND x.indnkeyatts = cardinality($2::text[]) AND ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, i) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum WHERE k.i <= x.indnkeyatts ORDER BY k.i) = $2::text[])";

/// Whether no relation named `$1` exists in the schema of table `$2`.
const NAME_IS_FREE_SQL: &str = "SELECT NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.relname = $1 AND c.relnamespace = (SELECT t.relnamespace FROM pg_class t WHERE t.oid = to_regclass($2)))";

/// The key columns of the unique index `$1` in schema `$2` (any schema when
/// empty).
const INDEX_COLUMNS_SQL: &str = "SELECT ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, i) JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum WHERE k.i <= x.indnkeyatts ORDER BY k.i) FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname = $1 AND ($2 = '' OR n.nspname = $2) AND x.indisunique LIMIT 1";

impl Statements {
    fn new(events: &str, bookmarks: &str) -> Self {
        let t = quote_ident(events);
        let b = quote_ident(bookmarks);
        // The INSERT reads its rows from a join with the lock's row, so no
        // row exists (and no position is drawn from the sequence) before
        // the lock is held. `$1` lock key, `$2` first version, `$3` stream,
        // `$4` aggregate id, `$5` epoch ms, `$6` event texts, `$7` channel.
        let insert = |lock: bool, n: usize| {
            let p = |i: usize| format!("${}", i + n);
            let from = if lock { "\"lock\" CROSS JOIN " } else { "" };
            format!(
                "INSERT INTO {t} (\"version\", \"stream\", \"aggregate_id\", \"timestamp\", \"event\") \
                 SELECT {v} + u.o - 1, {s}, {a}, to_timestamp(u.ms / 1000) + (u.ms % 1000) * interval '1 millisecond', u.ev \
                 FROM {from}unnest({ms}::int8[], {ev}::text[]) WITH ORDINALITY AS u(ms, ev, o) \
                 RETURNING \"position\", \"version\"",
                v = p(0),
                s = p(1),
                a = p(2),
                ms = p(3),
                ev = p(4),
            )
        };
        let tail = |channel: &str| {
            format!(
                "\"note\" AS (SELECT pg_notify({channel}, max(\"position\")::text) FROM \"new\") \
                 SELECT \"new\".\"position\"::int8, \"new\".\"version\"::int8 FROM \"new\" CROSS JOIN \"note\""
            )
        };
        let append_locked = format!(
            "WITH \"lock\" AS (SELECT pg_advisory_xact_lock($1)), \"new\" AS ({}), {}",
            insert(true, 2),
            tail("$7")
        );
        let append_unlocked = format!("WITH \"new\" AS ({}), {}", insert(false, 1), tail("$6"));
        // A group of appends on distinct aggregates: `$1` lock key, then one
        // array element per event: `$2` stream, `$3` aggregate id, `$4`
        // version, `$5` epoch ms, `$6` event text; `$7` channel. "taken"
        // names the aggregates whose versions are stored already: none of
        // their events is inserted (a version conflict for that append).
        // It reads the statement's snapshot, which within this process is
        // exact (our appends to the table are written one group at a
        // time); a writer in another process that commits between the
        // snapshot and the lock makes the unique index refuse the insert,
        // and the group is then written one append at a time.
        let append_group = format!(
            "WITH \"lock\" AS (SELECT pg_advisory_xact_lock($1)), \
             \"input\" AS (SELECT * FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[]) WITH ORDINALITY AS u(s, a, v, ms, ev, o)), \
             \"taken\" AS (SELECT DISTINCT u.s, u.a FROM \"input\" u JOIN {t} e ON e.\"stream\" = u.s AND e.\"aggregate_id\" = u.a AND e.\"version\" = u.v), \
             \"new\" AS (INSERT INTO {t} (\"version\", \"stream\", \"aggregate_id\", \"timestamp\", \"event\") \
             SELECT u.v, u.s, u.a, to_timestamp(u.ms / 1000) + (u.ms % 1000) * interval '1 millisecond', u.ev \
             FROM \"lock\" CROSS JOIN \"input\" u \
             WHERE NOT EXISTS (SELECT 1 FROM \"taken\" k WHERE k.s = u.s AND k.a = u.a) ORDER BY u.o \
             RETURNING \"position\", \"version\", \"stream\", \"aggregate_id\"), \
             \"note\" AS (SELECT pg_notify($7, max(\"position\")::text) FROM \"new\" HAVING count(*) > 0) \
             SELECT n.\"position\"::int8, n.\"version\"::int8, n.\"stream\"::text, n.\"aggregate_id\"::text \
             FROM \"new\" n CROSS JOIN \"note\""
        );

        let select = format!("SELECT {ROW_COLUMNS} FROM {t} AS e");
        // Ordered by version alone: the unique index on (stream,
        // aggregate_id, version) yields that order without a sort (a sort
        // by version, position took half the server's time for 10,000
        // events). Equal versions exist only as NULLs written by another
        // program; they come in index order.
        let events_for_rows = format!(
            "SELECT {AGGREGATE_ROW_COLUMNS} FROM {t} AS e WHERE e.\"stream\" = $1 AND e.\"aggregate_id\" = $2 AND e.\"position\" > $3 ORDER BY e.\"version\""
        );
        let events_from_rows = format!(
            "{select} WHERE e.\"stream\" = ANY($1) AND e.\"position\" > $2 ORDER BY e.\"position\" LIMIT $3"
        );
        // The highest position per stream, each found on an index: on
        // (stream, position) without an id; with one, on the aggregate's
        // entries of (stream, aggregate_id, version) (`+ 0` keeps the
        // planner from walking the stream backwards instead).
        let last = |per_stream: &str| {
            format!(
                "{select} WHERE e.\"position\" = (SELECT max(m.p) FROM unnest($1::text[]) AS s(name) CROSS JOIN LATERAL ({per_stream}) AS m)"
            )
        };
        Statements {
            events_for_rows,
            events_from_rows,
            last_event_any: last(&format!(
                "SELECT max(x.\"position\") AS p FROM {t} AS x WHERE x.\"stream\" = s.name"
            )),
            last_event_of: last(&format!(
                "SELECT max(x.\"position\" + 0) AS p FROM {t} AS x WHERE x.\"stream\" = s.name AND x.\"aggregate_id\" = $2"
            )),
            get_bookmark: format!("SELECT \"position\"::int8 FROM {b} WHERE \"bookmark\" = $1"),
            set_bookmark: format!(
                "INSERT INTO {b} (\"bookmark\", \"position\") VALUES ($1, $2) ON CONFLICT (\"bookmark\") DO UPDATE SET \"position\" = excluded.\"position\""
            ),
            stored_versions: format!(
                "SELECT e.\"position\"::int8, e.\"event\"::text, e.\"timestamp\" FROM {t} AS e WHERE e.\"stream\" = $1 AND e.\"aggregate_id\" = $2 AND e.\"version\" BETWEEN $3 AND $4 ORDER BY e.\"version\""
            ),
            max_position: format!("SELECT max(\"position\")::int8 FROM {t}"),
            append_locked,
            append_unlocked,
            append_group,
        }
    }
}

/// At most `max` bytes of `text` (a detail may quote a whole event).
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    format!("{}...", truncate_ident_to(text, max))
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// At most 63 bytes (PostgreSQL's identifier limit); names here are ASCII.
fn truncate_ident(name: &str) -> String {
    truncate_ident_to(name, 63)
}

fn truncate_ident_to(name: &str, max: usize) -> String {
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// FNV-1a, 64 bits: stable across processes, platforms and versions.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The advisory lock key of appends to an events table.
pub fn lock_key(events_table: &str) -> i64 {
    fnv1a(&[b"evtstore-rs:append:", events_table.as_bytes()]) as i64
}

/// The advisory lock key of migrate() (one for the whole database, so that
/// concurrent CREATE TABLEs never race in the catalog).
pub fn migrate_lock_key() -> i64 {
    fnv1a(&[b"evtstore-rs:migrate"]) as i64
}

/// The notification channel of an events table: `evtstore_<table>`, or,
/// past PostgreSQL's 63-byte limit, a prefix of it plus a hash.
pub fn channel_name(events_table: &str) -> String {
    let name = format!("evtstore_{events_table}");
    if name.len() <= 63 {
        return name;
    }
    let hash = fnv1a(&[events_table.as_bytes()]);
    format!("{}_{hash:016x}", truncate_ident_to(&name, 63 - 17))
}

fn version_conflict(stream: &str, aggregate_id: &str, first: i64, last: i64) -> StoreError {
    let detail = if first == last {
        format!("version {first} already exists")
    } else {
        format!("one of versions {first} to {last} already exists")
    };
    StoreError::VersionConflict {
        stream: stream.to_string(),
        aggregate_id: aggregate_id.to_string(),
        detail,
    }
}

/// Whether an error means the connection broke (so the operation may be
/// run again on another one).
fn is_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// `timestamp` as epoch ms, whatever its column type: `timestamptz` or
/// `timestamp` (read exactly, as microseconds), an integer of ms, or text.
/// `None` for NULL, infinity, or anything unreadable.
fn read_timestamp(row: &PgRow, index: usize) -> std::result::Result<Option<i64>, sqlx::Error> {
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
        "TIMESTAMPTZ" | "TIMESTAMP" => {
            let micros = <i64 as Decode<Postgres>>::decode(raw).map_err(decode_err)?;
            if micros == i64::MAX || micros == i64::MIN {
                None
            } else {
                Some(micros.div_euclid(1000) + PG_EPOCH_MS)
            }
        }
        "INT8" | "INT4" | "INT2" => {
            Some(<i64 as Decode<Postgres>>::decode(raw).map_err(decode_err)?)
        }
        "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" => {
            parse_timestamp_text(<&str as Decode<Postgres>>::decode(raw).map_err(decode_err)?)
        }
        _ => None,
    })
}

// ---------------------------------------------------------------------------
// Shared per database and events table: the head and the LISTEN connection
// ---------------------------------------------------------------------------

struct HubState {
    open_stores: usize,
    /// Set while a LISTEN task runs; sending `true` (or dropping it) stops it.
    listener: Option<watch::Sender<bool>>,
}

/// What every store of this process on one database and events table
/// shares.
struct Hub {
    head: Arc<Head>,
    state: Mutex<HubState>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn store_opened(&self) {
        self.lock().open_stores += 1;
    }

    fn store_closed(&self) {
        let mut state = self.lock();
        state.open_stores = state.open_stores.saturating_sub(1);
        if state.open_stores == 0 {
            if let Some(stop) = state.listener.take() {
                let _ = stop.send(true);
            }
        }
    }
}

type HubRegistry = Mutex<HashMap<String, Weak<Hub>>>;

fn hubs() -> &'static HubRegistry {
    static HUBS: OnceLock<HubRegistry> = OnceLock::new();
    HUBS.get_or_init(|| Mutex::new(HashMap::new()))
}

fn hub_for(target: &Target, events_table: &str) -> Arc<Hub> {
    let key = format!(
        "{}/{}/{}",
        target.server.to_ascii_lowercase(),
        target.database,
        events_table
    );
    let mut map = hubs().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(hub) = map.get(&key).and_then(Weak::upgrade) {
        return hub;
    }
    map.retain(|_, h| h.strong_count() > 0);
    let hub = Arc::new(Hub {
        head: Arc::new(Head::new()),
        state: Mutex::new(HubState {
            open_stores: 0,
            listener: None,
        }),
    });
    map.insert(key, Arc::downgrade(&hub));
    hub
}

/// The LISTEN loop: publishes every notified position to `head`, and after
/// each (re)connection the highest stored position, so that nothing
/// committed while it was away is missed. Reconnects with back-off until
/// `stop` says so; owns its one connection.
async fn listen_loop(
    options: PgConnectOptions,
    channel: String,
    max_sql: String,
    head: Arc<Head>,
    connect_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // One connection is used; the second slot lets a reconnection start
    // while the broken one is still being closed.
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(connect_timeout)
        .connect_lazy_with(options);
    let mut backoff = LISTEN_BACKOFF_MIN;
    let stopped = |rx: &watch::Receiver<bool>| *rx.borrow() || rx.has_changed().is_err();
    'outer: while !stopped(&stop) {
        let connect = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = stop.changed() => break,
            r = connect => match r {
                Ok(l) => l,
                Err(_) => {
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
                    continue;
                }
            }
        };
        backoff = LISTEN_BACKOFF_MIN;
        publish_max(&mut listener, &max_sql, &head).await;
        loop {
            tokio::select! {
                _ = stop.changed() => break 'outer,
                r = listener.try_recv() => match r {
                    Ok(Some(note)) => {
                        if let Ok(p) = note.payload().trim().parse::<i64>() {
                            head.publish(p);
                        }
                    }
                    // Lost and already reconnected (LISTEN again).
                    Ok(None) => publish_max(&mut listener, &max_sql, &head).await,
                    Err(_) => continue 'outer,
                }
            }
        }
    }
    pool.close().await;
}

async fn publish_max(listener: &mut PgListener, max_sql: &str, head: &Head) {
    let max: std::result::Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar(max_sql).fetch_one(&mut *listener).await;
    if let Ok(Some(max)) = max {
        head.publish(max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_channels_are_stable_and_fit() {
        assert_eq!(lock_key("events"), lock_key("events"));
        assert_ne!(lock_key("events"), lock_key("Events"));
        assert_ne!(lock_key("events"), migrate_lock_key());
        // FNV-1a test vector: stable across versions and platforms.
        assert_eq!(fnv1a(&[b"a"]), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(channel_name("events"), "evtstore_events");
        let long = "e".repeat(63);
        let ch = channel_name(&long);
        assert_eq!(ch.len(), 63);
        assert_ne!(ch, channel_name(&"e".repeat(62)));
        assert_eq!(
            truncate_ident(&format!("{long}_stream_position_unique")).len(),
            63
        );
    }

    #[test]
    fn builds_one_statement_appends() {
        let s = Statements::new("events", "bookmarks");
        assert!(s.append_locked.starts_with(
            "WITH \"lock\" AS (SELECT pg_advisory_xact_lock($1)), \"new\" AS (INSERT INTO \"events\""
        ));
        assert!(s
            .append_locked
            .contains("FROM \"lock\" CROSS JOIN unnest($5::int8[], $6::text[])"));
        assert!(s.append_locked.contains("pg_notify($7,"));
        assert!(!s.append_unlocked.contains("lock"));
        assert!(s.append_unlocked.contains("pg_notify($6,"));
    }
}
