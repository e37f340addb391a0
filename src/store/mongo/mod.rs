//! MongoDB engine (the `mongodb` crate, rustls). Documents keep evtstore's
//! field names: events `{ stream, aggregateId, version, position, timestamp,
//! event }` with `event` a sub-document and `timestamp` a BSON date;
//! bookmarks `{ bookmark, position }`. `position` is a 64-bit integer.
//!
//! No transactions, no change streams and no server-filled Timestamps are
//! used (many MongoDB-compatible servers have none of them). Positions come
//! from one counter document beside the events (`<events>_positions`, see
//! `positions.rs`): a writer takes a range and marks it in flight in one
//! atomic update, inserts its events with one ordered `insertMany`, then
//! clears the mark. Handlers read only up to the lowest range still in
//! flight, so an event committed later with a lower position is never
//! skipped; a range left in flight longer than `abandonAfterMs` (a writer
//! that died) is abandoned by the reader that finds it, so handlers never
//! stall for ever.
//!
//! Handler leases live in `<bookmarks>_leases`, one document per (bookmark,
//! token), changed hands by insert (`lease.rs`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use mongodb::bson::{doc, Document, RawDocumentBuf};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection};
use napi_derive::napi;

use crate::error::{Result, StoreError};
use crate::store::head::{shared_head, Head};
use crate::store::lease::{leases_table, Lease, LeaseClaim};
use crate::store::names::Naming;
use crate::store::version_key::VersionIndexes;
use crate::store::{Engine, EventBatch, NewEvent, Tables, Wakeups};

mod append;
mod errors;
mod json;
mod lease;
mod migrate;
mod positions;
mod read;
#[cfg(test)]
pub(crate) mod scratch;
#[cfg(test)]
mod tests;

/// How often a waiting handler asks the counter document for appends made
/// by other processes (one lookup by `_id`).
const PROBE_EVERY: Duration = Duration::from_millis(20);

/// How long a range may stay in flight before a reader abandons it.
pub const DEFAULT_ABANDON_AFTER: Duration = Duration::from_secs(5);

/// What people call the engine in messages.
const ENGINE: &str = "MongoDB";

/// The options of a MongoDB store.
#[napi(object)]
#[derive(Debug, Clone, Default)]
pub struct MongoOptions {
    /// mongodb:// or mongodb+srv:// connection string.
    pub url: String,
    /// Database name (default: the one in the URL's path).
    pub database: Option<String>,
    /// Events collection (default "events").
    pub events: Option<String>,
    /// Bookmarks collection (default "bookmarks").
    pub bookmarks: Option<String>,
    /// How long (ms) a handler holds back at positions a writer took but
    /// has not finished inserting before treating them as abandoned (the
    /// writer died). Default 5000.
    pub abandon_after_ms: Option<f64>,
}

pub struct MongoEngine {
    client: Client,
    events: Collection<Document>,
    raw_events: Collection<RawDocumentBuf>,
    bookmarks: Collection<Document>,
    counter: Collection<Document>,
    /// `<bookmarks>_leases`: one document per (bookmark, token) (`lease.rs`).
    leases: Collection<Document>,
    events_name: String,
    /// The user the URL names, for connection errors.
    user: String,
    location: String,
    head: Arc<Head>,
    closed: AtomicBool,
    /// `migrate()` ran (checked before the first append).
    migrated: AtomicBool,
    /// The leases collection's index is known to exist.
    leases_ready: AtomicBool,
    positions: positions::Positions,
    /// Whether a unique index (by name) is the one over (stream,
    /// aggregateId, version), asked once per index name.
    version_indexes: VersionIndexes,
}

const COLLECTIONS: Naming = Naming {
    kind: "collections",
    validate: validate_collection_name,
    ignore_case: false,
};

/// A collection name MongoDB takes: not empty, no `$` or NUL, not a
/// system collection, and short enough for a namespace.
fn validate_collection_name(name: &str, what: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.contains('$')
        || name.contains('\0')
        || name.starts_with("system.")
        || name.len() > 100;
    if bad {
        return Err(StoreError::InvalidName(format!(
            "the {what} collection name \"{}\" is not allowed: use 1 to 100 characters without \"$\" or NUL, not starting with \"system.\"",
            name.escape_default()
        )));
    }
    Ok(())
}

fn validate_database_name(name: &str) -> Result<()> {
    let bad = name.is_empty()
        || name.len() > 63
        || name
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '.' | ' ' | '"' | '$' | '\0'));
    if bad {
        return Err(StoreError::InvalidName(format!(
            "the database name \"{}\" is not allowed: use 1 to 63 characters without / \\ . space \" $",
            name.escape_default()
        )));
    }
    Ok(())
}

impl MongoEngine {
    /// Parses the URL and makes the client (which connects lazily: the
    /// first operation reports a server that cannot be reached).
    pub async fn open(options: MongoOptions) -> Result<Self> {
        let (events_name, bookmarks_name) = COLLECTIONS.names(options.events, options.bookmarks)?;
        let abandon_after = match options.abandon_after_ms {
            None => DEFAULT_ABANDON_AFTER,
            Some(ms) if ms.is_finite() && (1.0..=86_400_000.0).contains(&ms) => {
                Duration::from_secs_f64(ms / 1000.0)
            }
            Some(ms) => {
                return Err(StoreError::invalid_argument(format!(
                    "abandonAfterMs must be a number of milliseconds from 1 to 86400000, got {ms}"
                )))
            }
        };
        let url = options.url;
        if !(url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")) {
            return Err(StoreError::invalid_argument(
                "the MongoDB url must start with mongodb:// or mongodb+srv://, like mongodb://127.0.0.1:27017/app",
            ));
        }
        let mut client_options = ClientOptions::parse(&url).await.map_err(|e| {
            StoreError::invalid_argument(format!("the MongoDB url cannot be read: {e}"))
        })?;
        let database = match options.database.or_else(|| client_options.default_database.clone()) {
            Some(db) => db,
            None => {
                return Err(StoreError::invalid_argument(
                    "no MongoDB database named: give `database`, or put it in the url's path (mongodb://host:27017/app)",
                ))
            }
        };
        validate_database_name(&database)?;
        if client_options.app_name.is_none() {
            client_options.app_name = Some("evtstore-rs".to_string());
        }
        let user = client_options
            .credential
            .as_ref()
            .and_then(|c| c.username.clone())
            .unwrap_or_else(|| "(none: no authentication)".to_string());
        let hosts: Vec<String> = client_options.hosts.iter().map(|h| h.to_string()).collect();
        let server = hosts.join(",");
        let client = Client::with_options(client_options).map_err(|e| {
            StoreError::invalid_argument(format!("the MongoDB url cannot be used: {e}"))
        })?;
        let db = client.database(&database);
        let counter_name = format!("{events_name}_positions");
        let location = format!("MongoDB {server}/{database}");
        let head = shared_head(ENGINE, format!("{server}\0{database}\0{events_name}"));
        Ok(MongoEngine {
            events: db.collection(&events_name),
            raw_events: db.collection(&events_name),
            bookmarks: db.collection(&bookmarks_name),
            counter: db.collection(&counter_name),
            leases: db.collection(&leases_table(&bookmarks_name)),
            client,
            user,
            events_name,
            location,
            head,
            closed: AtomicBool::new(false),
            migrated: AtomicBool::new(false),
            leases_ready: AtomicBool::new(false),
            positions: positions::Positions::new(abandon_after),
            version_indexes: VersionIndexes::default(),
        })
    }

    /// Fails with `STORE_CLOSED` once `close()` ran.
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    fn closed_error(&self) -> StoreError {
        StoreError::StoreClosed {
            location: self.location.clone(),
            reopen: "Store.open({ mongo })",
        }
    }

    /// How long a handler holds back at a range in flight.
    pub fn abandon_after(&self) -> Duration {
        self.positions.abandon_after
    }
}

#[async_trait]
impl Engine for MongoEngine {
    fn name(&self) -> &'static str {
        "mongo"
    }

    async fn migrate(&self, tables: Tables) -> Result<()> {
        self.check_open()?;
        self.migrate_collections(tables).await?;
        if tables.events {
            self.migrated.store(true, Ordering::Relaxed);
        }
        Ok(())
    }

    async fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            self.client.clone().shutdown().await;
        }
    }

    async fn append(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        self.check_open()?;
        if events.is_empty() {
            return Ok(Vec::new());
        }
        self.append_events(stream, aggregate_id, first_version, events)
            .await
    }

    async fn events_for(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Result<EventBatch> {
        self.check_open()?;
        self.read_aggregate(stream, aggregate_id, after_position)
            .await
    }

    async fn events_from(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Result<EventBatch> {
        self.check_open()?;
        self.read_streams(streams, after_position, limit).await
    }

    async fn last_event(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>> {
        self.check_open()?;
        self.read_last(streams, aggregate_id).await
    }

    async fn get_bookmark(&self, name: &str) -> Result<i64> {
        self.check_open()?;
        let found = self
            .bookmarks
            .find_one(doc! { "bookmark": name })
            .await
            .map_err(|e| self.db_error(e))?;
        match found {
            None => Ok(0),
            Some(d) => read::bookmark_position(&d, name, &self.location),
        }
    }

    async fn set_bookmark(&self, name: &str, position: i64) -> Result<()> {
        self.check_open()?;
        self.bookmarks
            .update_one(
                doc! { "bookmark": name },
                doc! { "$set": { "position": position } },
            )
            .upsert(true)
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    async fn bookmarks(&self) -> Result<Vec<(String, i64)>> {
        self.check_open()?;
        self.all_bookmarks().await
    }

    async fn count_after(&self, streams: &[String], after_position: i64) -> Result<i64> {
        self.check_open()?;
        self.count_events_after(streams, after_position).await
    }

    async fn leases(&self, name: Option<&str>) -> Result<Vec<Lease>> {
        self.check_open()?;
        self.read_leases(name).await
    }

    async fn claim_lease(&self, claim: &LeaseClaim<'_>) -> Result<Option<i64>> {
        self.check_open()?;
        self.claim(claim).await
    }

    async fn renew_lease(&self, name: &str, token: i64) -> Result<bool> {
        self.check_open()?;
        self.renew(name, token).await
    }

    async fn release_lease(&self, name: &str, token: i64) -> Result<()> {
        self.check_open()?;
        self.release_held(name, token).await
    }

    async fn set_bookmark_fenced(&self, name: &str, position: i64, token: i64) -> Result<bool> {
        self.check_open()?;
        self.bookmark_fenced(name, position, token).await
    }

    fn head(&self) -> &Arc<Head> {
        &self.head
    }

    fn wakeups(&self) -> Wakeups {
        Wakeups::probing(PROBE_EVERY)
    }

    /// The settled frontier: the highest position below every claim still
    /// open (giving up those open too long).
    async fn max_position(&self) -> Result<i64> {
        self.check_open()?;
        Ok(self.settled().await?.frontier)
    }
}
