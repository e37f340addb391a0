//! Neo4j engine: our own Bolt client (`bolt.rs`, `packstream.rs`, a small
//! pool) speaking Bolt 3 to Neo4j 3.5 and Bolt 4.4 to Neo4j 4.4 and 5.x.
//!
//! Every operation is one Cypher statement in its own (auto-commit)
//! transaction, sent with its PULL in one round trip. An append locks its
//! label's counter node, takes the next positions from it and creates the
//! event nodes (`cypher.rs`): positions are dense and rise in commit order,
//! so a handler reading "after my bookmark" never skips an event that
//! commits late. The version check is evtstore's unique `_streamIdVersion`;
//! only its violation is a `VersionConflict`.
//!
//! Neo4j has no notifications: a waiting handler probes the counter node
//! (`Wakeups::probe_every`).
//!
//! Handler leases (`lease.rs`) are nodes labelled `<bookmarks>_leases`; each
//! lease statement locks its node before it reads the token, so claims,
//! renewals and fenced bookmark writes of one lease are serialised.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use napi_derive::napi;

use crate::error::{Result, StoreError};
use crate::store::batch::{check_stored_event, event_json, rows_to_json, EventRef};
use crate::store::head::{shared_head, Head};
use crate::store::lease::{leases_table, Lease, LeaseClaim};
use crate::store::names::LABELS;
use crate::store::{Engine, EventBatch, NewEvent, Tables, Wakeups};
use bolt::{BoltError, Login, Rows};
use cypher::{SchemaSyntax, Statements};
use packstream::Value;
use pool::Pool;
use values::epoch_millis;

mod bolt;
mod cypher;
mod errors;
mod lease;
mod packstream;
mod pool;
#[cfg(test)]
pub(crate) mod scratch;
#[cfg(test)]
mod tests;
mod values;

/// The engine's name for people, in messages.
pub(crate) const ENGINE: &str = "Neo4j";

/// How often a waiting handler asks the counter for appends of other
/// processes (one small read, ~1 ms).
const PROBE_EVERY: Duration = Duration::from_millis(20);
/// Connections of a store's pool unless `maxConnections` says otherwise.
const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// What a schema statement fails with when a concurrent one created the same
/// index or constraint first.
const SCHEMA_EXISTS: [&str; 3] = [
    "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists",
    "Neo.ClientError.Schema.IndexAlreadyExists",
    "Neo.ClientError.Schema.ConstraintAlreadyExists",
];
/// Runs of a statement after a transient failure (10 to 320 ms apart).
const TRANSIENT_RETRIES: u32 = 6;

/// The options of a Neo4j store.
#[napi(object, js_name = "Neo4jOptions")]
#[derive(Debug, Clone, Default)]
pub struct Neo4jOptions {
    /// `bolt://host:port` or `neo4j://host:port` (the one server is used
    /// directly; no routing). User and password may be in it.
    pub url: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The database (Neo4j 4 and later; the server's default when absent).
    pub database: Option<String>,
    /// Events label (default "events").
    pub events: Option<String>,
    /// Bookmarks label (default "bookmarks").
    pub bookmarks: Option<String>,
    /// Most connections open at once (default 10).
    pub max_connections: Option<u32>,
}

pub struct Neo4jEngine {
    pool: Pool,
    user: Option<String>,
    database: Option<String>,
    events_label: String,
    bookmarks_label: String,
    /// "Neo4j at host:port[/database]", for messages.
    location: String,
    head: Arc<Head>,
    sql: Statements,
    /// The label of the handler leases (`<bookmarks>_leases`).
    leases_label: String,
    lease_sql: lease::LeaseStatements,
    /// The leases' unique constraint is known to exist.
    leases_ready: AtomicBool,
}

/// What a Bolt URL says.
struct UrlParts {
    /// host:port
    address: String,
    user: Option<String>,
    password: Option<String>,
    database: Option<String>,
}

/// host:port of a Bolt URL, and the user, password and database in it.
fn parse_url(text: &str) -> Result<UrlParts> {
    let bad = |why: String| {
        StoreError::invalid_argument(format!(
            "the Neo4j url {why}: expected bolt://host:7687 or neo4j://user:password@host:7687"
        ))
    };
    let url = url::Url::parse(text).map_err(|e| bad(format!("cannot be read ({e})")))?;
    match url.scheme() {
        "bolt" | "neo4j" => {}
        s if s.ends_with("+s") || s.ends_with("+ssc") => {
            return Err(bad(format!(
                "asks for TLS (\"{s}\"), which evtstore-rs does not speak to Neo4j yet"
            )))
        }
        s => return Err(bad(format!("has the scheme \"{s}\""))),
    }
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("names no host".into()))?;
    let port = url.port().unwrap_or(7687);
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let user = (!url.username().is_empty()).then(|| decode(url.username()));
    let password = url.password().map(decode);
    let database = url.path().trim_start_matches('/');
    let database = (!database.is_empty()).then(|| database.to_string());
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    Ok(UrlParts {
        address: format!("{host}:{port}"),
        user,
        password,
        database,
    })
}

impl Neo4jEngine {
    /// Checks the options and reaches the server once (so a wrong address,
    /// login or protocol version is told at open).
    pub async fn open(options: Neo4jOptions) -> Result<Self> {
        let (events_label, bookmarks_label) = LABELS.names(options.events, options.bookmarks)?;
        let UrlParts {
            address,
            user: url_user,
            password: url_password,
            database: url_database,
        } = parse_url(&options.url)?;
        let user = options.user.or(url_user).filter(|u| !u.is_empty());
        let password = options.password.or(url_password);
        let database = options.database.or(url_database).filter(|d| !d.is_empty());
        let max = options.max_connections.unwrap_or(DEFAULT_MAX_CONNECTIONS);
        if max == 0 {
            return Err(StoreError::invalid_argument(
                "maxConnections must be at least 1",
            ));
        }
        let location = match &database {
            Some(db) => format!("{ENGINE} at {address} (database \"{db}\")"),
            None => format!("{ENGINE} at {address}"),
        };
        let head = shared_head(
            ENGINE,
            format!(
                "{address}\0{}\0{events_label}",
                database.as_deref().unwrap_or("")
            ),
        );
        let login = Login {
            user: user.clone(),
            password,
            database: database.clone(),
        };
        let leases_label = leases_table(&bookmarks_label);
        let engine = Neo4jEngine {
            pool: Pool::new(address, login, max as usize),
            user,
            database,
            sql: Statements::new(&events_label, &bookmarks_label),
            lease_sql: lease::LeaseStatements::new(&events_label, &bookmarks_label, &leases_label),
            leases_label,
            leases_ready: AtomicBool::new(false),
            events_label,
            bookmarks_label,
            location,
            head,
        };
        // the first connection: refused, unknown protocol and bad logins
        // are told here
        engine
            .pool
            .get()
            .await
            .map_err(|e| engine.acquire_error(e))?;
        Ok(engine)
    }

    /// Runs one statement. A connection that had been idle is tried once
    /// more on a new one when it turns out broken (e.g. the server
    /// restarted), unless the statement may have taken effect (`retry`).
    /// A transient failure (a deadlock, schema changed by a concurrent
    /// migrate) rolled the transaction back: it is run again a few times,
    /// as Neo4j's drivers do.
    async fn run(
        &self,
        query: &str,
        params: Value,
        retry: bool,
    ) -> std::result::Result<Rows, RunError> {
        let mut attempt = 0;
        loop {
            match self.run_once(query, params.clone(), retry).await {
                Err(RunError::Bolt(BoltError::Failure { code, .. }))
                    if code.starts_with("Neo.TransientError.") && attempt < TRANSIENT_RETRIES =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(5 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn run_once(
        &self,
        query: &str,
        params: Value,
        retry: bool,
    ) -> std::result::Result<Rows, RunError> {
        let mut conn = self.pool.get().await.map_err(RunError::Acquire)?;
        match conn.run(query, params.clone()).await {
            Err(BoltError::Io(_)) if retry && conn.reused => {
                drop(conn);
                let mut fresh = self.pool.get().await.map_err(RunError::Acquire)?;
                fresh.run(query, params).await.map_err(RunError::Bolt)
            }
            other => other.map_err(RunError::Bolt),
        }
    }

    /// [`Self::run`] for statements whose errors need no special reading.
    async fn query(&self, query: &str, params: Value, label: &str) -> Result<Rows> {
        self.run(query, params, true).await.map_err(|e| match e {
            RunError::Acquire(e) => self.acquire_error(e),
            RunError::Bolt(e) => self.db_error(e, label),
        })
    }

    /// The schema syntax of the server (asked on a connection).
    async fn schema_syntax(&self) -> Result<SchemaSyntax> {
        let conn = self.pool.get().await.map_err(|e| self.acquire_error(e))?;
        Ok(if conn.server_major() >= 4 {
            SchemaSyntax::Named
        } else {
            SchemaSyntax::V3
        })
    }

    /// Runs schema statements, each in its own transaction (as Neo4j wants
    /// schema changes); failures are told as of `label`.
    async fn run_schema(&self, statements: &[String], label: &str) -> Result<()> {
        for s in statements {
            match self.run(s, Value::Map(Vec::new()), true).await {
                Ok(_) => {}
                // another migrate (another process's) created it between
                // our IF NOT EXISTS check and our creation: what we wanted
                Err(RunError::Bolt(BoltError::Failure { code, .. }))
                    if SCHEMA_EXISTS.contains(&code.as_str()) => {}
                Err(RunError::Acquire(e)) => return Err(self.acquire_error(e)),
                Err(RunError::Bolt(e)) => return Err(self.db_error(e, label)),
            }
        }
        Ok(())
    }

    /// The counter's value: the last position given out, every one up to it
    /// committed. `None` before the first append or migrate.
    async fn counter(&self) -> Result<Option<i64>> {
        let params = packstream::map([("label", self.events_label.as_str().into())]);
        let rows = self
            .query(&self.sql.max_position, params, &self.events_label)
            .await?;
        Ok(rows.first().and_then(|r| r.first()).and_then(Value::as_int))
    }

    fn events_of(&self, rows: &Rows, names: bool) -> Result<EventBatch> {
        let (batch, max) = rows_to_json(rows, names, |row| self.event_ref(row))?;
        self.head.publish(max);
        Ok(batch)
    }

    /// One row of [`cypher`]'s read columns.
    fn event_ref<'r>(&self, row: &'r [Value]) -> Result<EventRef<'r>> {
        let position = row.first().and_then(epoch_millis).ok_or_else(|| StoreError::Database {
            location: self.location.clone(),
            reason: format!(
                "an event of label \"{}\" has a position that is neither an integer nor a DateTime ({:?})",
                self.events_label,
                row.first()
            ),
        })?;
        let text = |i: usize| row.get(i).and_then(Value::as_str);
        let event = text(3);
        check_stored_event(event, position, &self.location, &self.events_label)?;
        Ok(EventRef {
            position,
            // neo4j-driver sends JS numbers as floats: evtstore's versions are
            version: row.get(1).and_then(whole_number),
            timestamp: row.get(2).and_then(epoch_millis),
            event,
            stream: text(4),
            aggregate_id: text(5),
        })
    }
}

/// Why a statement failed: no connection, or the exchange.
enum RunError {
    Acquire(pool::AcquireError),
    Bolt(BoltError),
}

/// An integer, or a float without a fraction (as neo4j-driver writes a JS
/// number).
fn whole_number(value: &Value) -> Option<i64> {
    match value {
        Value::Int(i) => Some(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Some(*f as i64),
        _ => None,
    }
}

fn string_list(items: &[String]) -> Value {
    Value::List(items.iter().map(|s| Value::from(s.as_str())).collect())
}

#[async_trait]
impl Engine for Neo4jEngine {
    fn name(&self) -> &'static str {
        "neo4j"
    }

    /// Creates the constraints and indexes the server's syntax allows
    /// (each in its own transaction, as Neo4j wants schema changes), then
    /// the counter node, started above the highest position already stored
    /// (evtstore's DateTimes count as their epoch milliseconds).
    async fn migrate(&self, tables: Tables) -> Result<()> {
        let syntax = self.schema_syntax().await?;
        let mut statements = Vec::new();
        if tables.events {
            statements.extend(cypher::events_schema(syntax, &self.events_label));
        }
        if tables.bookmarks {
            statements.extend(cypher::bookmarks_schema(syntax, &self.bookmarks_label));
            // the handler leases live beside the bookmarks
            statements.extend(cypher::leases_schema(syntax, &self.leases_label));
        }
        self.run_schema(&statements, &self.events_label).await?;
        if tables.bookmarks {
            self.leases_ready.store(true, Ordering::Release);
        }
        if tables.events {
            let last = self
                .query(
                    &self.sql.last_stored_position,
                    Value::Map(Vec::new()),
                    &self.events_label,
                )
                .await?;
            let start = last
                .first()
                .and_then(|r| r.first())
                .and_then(epoch_millis)
                .unwrap_or(0);
            let params = packstream::map([
                ("label", self.events_label.as_str().into()),
                ("start", start.into()),
            ]);
            self.query(&self.sql.create_counter, params, &self.events_label)
                .await?;
        }
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
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
        let list = events
            .iter()
            .map(|e| Value::List(vec![Value::Int(e.timestamp), Value::from(e.event)]))
            .collect();
        let params = packstream::map([
            ("label", self.events_label.as_str().into()),
            ("stream", stream.into()),
            ("id", aggregate_id.into()),
            ("version", first_version.into()),
            ("events", Value::List(list)),
        ]);
        let run_append = || async {
            // never retried on a lost connection: it may have committed
            self.run(&self.sql.append, params.clone(), false)
                .await
                .map_err(|e| match e {
                    RunError::Acquire(e) => self.acquire_error(e),
                    RunError::Bolt(e) => self.append_error(e, stream, aggregate_id),
                })
        };
        let mut rows = run_append().await?;
        if rows.is_empty() {
            // No counter node: nothing was written. evtstore's Neo4j
            // providers work without migrate(), so the events part of it
            // runs here once (the version key's constraint first, which
            // also makes the version check hold), then the append again.
            self.migrate(Tables {
                events: true,
                bookmarks: false,
            })
            .await?;
            rows = run_append().await?;
            if rows.is_empty() {
                return Err(self.missing(&self.events_label));
            }
        }
        let positions: Vec<i64> = rows
            .iter()
            .filter_map(|r| r.first().and_then(Value::as_int))
            .collect();
        if let Some(&last) = positions.iter().max() {
            self.head.publish(last);
        }
        Ok(positions)
    }

    async fn events_for(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Result<EventBatch> {
        let (query, mut params) = match after_position {
            Some(after) => (
                &self.sql.events_for_after,
                vec![("after".to_string(), Value::Int(after))],
            ),
            None => (&self.sql.events_for, Vec::new()),
        };
        params.push(("stream".into(), stream.into()));
        params.push(("id".into(), aggregate_id.into()));
        // as in events_from: only what had committed before the scan began
        let horizon = self.counter().await?.unwrap_or(i64::MAX);
        params.push(("horizon".into(), Value::Int(horizon)));
        let rows = self
            .query(query, Value::Map(params), &self.events_label)
            .await?;
        self.events_of(&rows, false)
    }

    async fn events_from(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Result<EventBatch> {
        // first the counter, then the scan (see cypher::AFTER_UP_TO_HORIZON);
        // no counter: nothing of ours stored, no horizon
        let horizon = self.counter().await?.unwrap_or(i64::MAX);
        let mut params = vec![
            ("streams".to_string(), string_list(streams)),
            ("after".to_string(), Value::Int(after_position)),
            ("horizon".to_string(), Value::Int(horizon)),
        ];
        let query = match limit {
            Some(limit) => {
                params.push(("limit".into(), Value::Int(limit)));
                &self.sql.events_from_limit
            }
            None => &self.sql.events_from,
        };
        let rows = self
            .query(query, Value::Map(params), &self.events_label)
            .await?;
        self.events_of(&rows, true)
    }

    async fn last_event(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>> {
        let mut params = vec![("streams".to_string(), string_list(streams))];
        let query = match aggregate_id {
            Some(id) => {
                params.push(("id".into(), id.into()));
                &self.sql.last_event_of
            }
            None => &self.sql.last_event,
        };
        let rows = self
            .query(query, Value::Map(params), &self.events_label)
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(event_json(&self.event_ref(row)?)))
    }

    async fn get_bookmark(&self, name: &str) -> Result<i64> {
        let params = packstream::map([("name", name.into())]);
        let rows = self
            .query(&self.sql.get_bookmark, params, &self.bookmarks_label)
            .await?;
        // evtstore kept ISO text (or a DateTime): its epoch milliseconds
        Ok(rows
            .first()
            .and_then(|r| r.first())
            .and_then(epoch_millis)
            .unwrap_or(0))
    }

    async fn set_bookmark(&self, name: &str, position: i64) -> Result<()> {
        let params = packstream::map([("name", name.into()), ("position", position.into())]);
        // MERGE of a new name by two writers at once: the unique constraint
        // lets one create it; the other's retry then finds it
        match self
            .query(
                &self.sql.set_bookmark,
                params.clone(),
                &self.bookmarks_label,
            )
            .await
        {
            Err(StoreError::ConstraintViolation { .. }) => {
                self.query(&self.sql.set_bookmark, params, &self.bookmarks_label)
                    .await?;
            }
            other => {
                other?;
            }
        }
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

    fn head(&self) -> &Arc<Head> {
        &self.head
    }

    fn wakeups(&self) -> Wakeups {
        Wakeups::probing(PROBE_EVERY)
    }

    async fn max_position(&self) -> Result<i64> {
        Ok(self.counter().await?.unwrap_or(0))
    }
}
