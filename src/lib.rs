//! napi glue only: the classes `MemoryStore`, `SqliteStore`, `PostgresStore`
//! and `Waiter`
//! described in docs/ARCHITECTURE.md. Storage logic lives in `store/`.
//!
//! Errors: every method rejects/throws a JS `Error` whose `code` is the
//! stable code of [`StoreError`] and whose `message` says what to do.

#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod error;
pub mod notify;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use napi::bindgen_prelude::{Float64ArraySlice, JsError, ToNapiValue, TypeName, Unknown};
use napi::sys;
use napi::Env;
use napi_derive::napi;

use crate::error::StoreError;
use crate::notify::{Head, HeadWaiter, Probe};

/// How often a waiting SQLite waiter asks the file for appends made by
/// other processes (an index lookup, ~30 µs).
const SQLITE_PROBE_EVERY: Duration = Duration::from_millis(20);
use crate::store::memory::{Appended, MemoryEngine};
use crate::store::postgres::{PostgresEngine, PostgresOptions};
use crate::store::sqlite::{SqliteEngine, SqliteOptions};
use crate::store::{
    parse_new_events, to_first_version, to_limit, to_opt_position, to_position, to_streams,
    EventBatch, EventStore,
};

/// A synchronous method's result: the error becomes a thrown JS `Error`
/// whose `code` is the `StoreError` code (napi's `Error<S>` uses `S` as the
/// JS `code`).
fn sync<T>(r: Result<T, StoreError>) -> napi::Result<T, &'static str> {
    r.map_err(napi::Error::from)
}

/// Positions for JavaScript: null for none (most reads of a command on a
/// new aggregate), else a copy in a plain Float64Array. napi's owned arrays
/// are external buffers with a finalizer each, which cost the garbage
/// collector more than the copy does.
fn positions_array<'env>(
    env: &'env Env,
    positions: &[f64],
) -> napi::Result<Option<Float64ArraySlice<'env>>, &'static str> {
    if positions.is_empty() {
        return Ok(None);
    }
    Float64ArraySlice::copy_from(env, positions)
        .map(Some)
        .map_err(|e| napi::Error::new("INTERNAL", e.reason.clone()))
}

/// A read for JavaScript: the JSON text alone when the numbers are in it,
/// else `{ json, numbers }` with the numbers copied into a plain
/// Float64Array (see [`positions_array`] for why a copy).
impl ToNapiValue for EventBatch {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let json = unsafe { String::to_napi_value(env, val.json)? };
        let Some(numbers) = val.numbers else {
            return Ok(json);
        };
        let array = Float64ArraySlice::copy_from(&Env::from_raw(env), &numbers)?;
        let array = unsafe { Float64ArraySlice::to_napi_value(env, array)? };
        let mut object = std::ptr::null_mut();
        unsafe {
            napi::check_status!(sys::napi_create_object(env, &mut object))?;
            napi::check_status!(sys::napi_set_named_property(
                env,
                object,
                c"json".as_ptr(),
                json
            ))?;
            napi::check_status!(sys::napi_set_named_property(
                env,
                object,
                c"numbers".as_ptr(),
                array
            ))?;
        }
        Ok(object)
    }
}

impl TypeName for EventBatch {
    fn type_name() -> &'static str {
        "EventBatch"
    }
    fn value_type() -> napi::ValueType {
        napi::ValueType::Object
    }
}

/// An async method's result. napi's async bridge only rejects with its own
/// `Status` codes, so the error is turned into a JS `Error` with our `code`
/// here, on the JS thread, and handed back as the rejection value.
pub struct Reply<T>(Result<T, StoreError>);

impl<T> From<Result<T, StoreError>> for Reply<T> {
    fn from(r: Result<T, StoreError>) -> Self {
        Reply(r)
    }
}

impl<T: TypeName> TypeName for Reply<T> {
    fn type_name() -> &'static str {
        T::type_name()
    }
    fn value_type() -> napi::ValueType {
        T::value_type()
    }
}

impl<T: ToNapiValue> ToNapiValue for Reply<T> {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        match val.0 {
            Ok(v) => unsafe { T::to_napi_value(env, v) },
            Err(e) => {
                let message = e.to_string();
                let js_error = unsafe { JsError::from(napi::Error::from(e)).into_value(env) };
                if js_error.is_null() {
                    return Err(napi::Error::new(napi::Status::GenericFailure, message));
                }
                // Rejecting with an error that references a JS value makes
                // napi reject with that very value.
                Err(napi::Error::from(unsafe {
                    Unknown::from_raw_unchecked(env, js_error)
                }))
            }
        }
    }
}

fn timeout_from_ms(ms: f64) -> Result<Option<Duration>, StoreError> {
    if ms.is_nan() || ms < 0.0 {
        return Err(StoreError::invalid_argument(format!(
            "timeoutMs must be a non-negative number of milliseconds (or Infinity), got {ms}"
        )));
    }
    if ms.is_infinite() || ms > 1e12 {
        return Ok(None);
    }
    Ok(Some(Duration::from_secs_f64(ms / 1000.0)))
}

// ---------------------------------------------------------------------------
// Waiter
// ---------------------------------------------------------------------------

/// Waits for the head position of a store's database to move.
#[napi]
pub struct Waiter {
    inner: Arc<HeadWaiter>,
}

#[napi]
impl Waiter {
    fn from_head(head: Arc<Head>) -> Self {
        Waiter {
            inner: Arc::new(HeadWaiter::new(head)),
        }
    }

    /// Resolves "changed" as soon as the head exceeds `knownHead`
    /// (immediately if it already does), "timeout" after `timeoutMs`
    /// (Infinity: never), or "cancelled" when `cancel()` is called.
    /// After `cancel()`, every wait resolves "cancelled" until `reset()`.
    #[napi(ts_return_type = "Promise<'changed' | 'timeout' | 'cancelled'>")]
    pub async fn wait(&self, known_head: f64, timeout_ms: f64) -> Reply<String> {
        let inner = self.inner.clone();
        let result = async move {
            let known = to_position(known_head, "knownHead")?;
            let timeout = timeout_from_ms(timeout_ms)?;
            Ok(inner.wait(known, timeout).await.as_str().to_string())
        };
        Reply(result.await)
    }

    /// Makes the pending wait, and every later one until `reset()`, resolve
    /// "cancelled".
    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel();
    }

    /// Clears a `cancel()`.
    #[napi]
    pub fn reset(&self) {
        self.inner.reset();
    }
}

// ---------------------------------------------------------------------------
// MemoryStore
// ---------------------------------------------------------------------------

/// In-memory event store; every method is synchronous.
#[napi]
pub struct MemoryStore {
    engine: Arc<MemoryEngine>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

#[napi]
impl MemoryStore {
    #[napi(constructor)]
    pub fn new() -> Self {
        MemoryStore {
            engine: Arc::new(MemoryEngine::new()),
        }
    }

    /// Records `count` events of one aggregate with versions firstVersion,
    /// firstVersion+1, ... (the payloads stay in JS, by position) and returns
    /// the position of the first one; or, when one of those versions exists
    /// already, stores nothing and returns minus that version.
    #[napi]
    pub fn append_versions(
        &self,
        stream: String,
        aggregate_id: String,
        first_version: f64,
        count: f64,
    ) -> napi::Result<f64, &'static str> {
        sync((|| {
            // a number, not u32: napi would wrap -1 into 4294967295
            let count = to_position(count, "count")? as usize;
            let first = to_first_version(first_version, count)?;
            Ok(
                match self
                    .engine
                    .append_versions_sync(&stream, &aggregate_id, first, count)?
                {
                    Appended::Stored { first_position } => first_position as f64,
                    Appended::Conflict { existing_version } => -(existing_version as f64),
                },
            )
        })())
    }

    /// Positions of the aggregate's events in version order, only those
    /// after `afterPosition` when given; null when there are none.
    #[napi(ts_return_type = "Float64Array | null")]
    pub fn positions_for<'env>(
        &self,
        env: &'env Env,
        stream: String,
        aggregate_id: String,
        after_position: Option<f64>,
    ) -> napi::Result<Option<Float64ArraySlice<'env>>, &'static str> {
        let after = sync(to_opt_position(after_position, "afterPosition"))?;
        let positions = self
            .engine
            .positions_for_sync(&stream, &aggregate_id, after);
        positions_array(env, &positions)
    }

    /// Positions of the events of `streams` after `afterPosition`, in
    /// position order, at most `limit`; null when there are none.
    #[napi(ts_return_type = "Float64Array | null")]
    pub fn positions_from<'env>(
        &self,
        env: &'env Env,
        streams: Vec<String>,
        after_position: f64,
        limit: Option<f64>,
    ) -> napi::Result<Option<Float64ArraySlice<'env>>, &'static str> {
        let (streams, after, limit) = sync((|| {
            Ok((
                to_streams(streams)?,
                to_position(after_position, "afterPosition")?,
                to_limit(limit)?,
            ))
        })())?;
        let positions = self.engine.positions_from_sync(&streams, after, limit);
        positions_array(env, &positions)
    }

    /// Position of the last event of `streams` (of that aggregate when
    /// given), 0 when there is none.
    #[napi]
    pub fn last_position(
        &self,
        streams: Vec<String>,
        aggregate_id: Option<String>,
    ) -> napi::Result<f64, &'static str> {
        sync((|| {
            let streams = to_streams(streams)?;
            Ok(self
                .engine
                .last_position_sync(&streams, aggregate_id.as_deref()) as f64)
        })())
    }

    /// Stored position of a bookmark, 0 when none.
    #[napi]
    pub fn get_bookmark(&self, name: String) -> napi::Result<i64, &'static str> {
        sync(self.engine.get_bookmark_sync(&name))
    }

    /// Upserts a bookmark.
    #[napi]
    pub fn set_bookmark(&self, name: String, position: f64) -> napi::Result<(), &'static str> {
        sync((|| {
            let position = to_position(position, "the bookmark position")?;
            self.engine.set_bookmark_sync(&name, position)
        })())
    }

    /// The highest position stored.
    #[napi]
    pub fn head(&self) -> i64 {
        self.engine.head().get()
    }

    /// A waiter that resolves when this store's head moves.
    #[napi]
    pub fn create_waiter(&self) -> Waiter {
        Waiter::from_head(self.engine.head().clone())
    }
}

/// The `#[napi] impl` block of the methods SqliteStore and PostgresStore
/// share word for word (both hold `engine: Arc<E>` with `E: EventStore`).
/// Their own methods stay in ordinary impl blocks around it: doc comments
/// passed through `macro_rules!` reach napi as raw strings (`r"..."`), which
/// its typedef generation copies verbatim into native.d.ts, so none of the
/// shared methods has a doc comment.
macro_rules! async_store_methods {
    ($class:ident) => {
        #[napi]
        impl $class {
            #[napi(ts_return_type = "Promise<number[]>")]
            pub async fn append(
                &self,
                stream: String,
                aggregate_id: String,
                first_version: f64,
                events_json: String,
            ) -> Reply<Vec<i64>> {
                let engine = self.engine.clone();
                Reply(
                    async move {
                        let events = parse_new_events(&events_json)?;
                        let first = to_first_version(first_version, events.len())?;
                        engine.append(&stream, &aggregate_id, first, &events).await
                    }
                    .await,
                )
            }

            #[napi(ts_return_type = "Promise<string | { json: string, numbers: Float64Array }>")]
            pub async fn events_for(
                &self,
                stream: String,
                aggregate_id: String,
                after_position: Option<f64>,
            ) -> Reply<EventBatch> {
                let engine = self.engine.clone();
                Reply(
                    async move {
                        let after = to_opt_position(after_position, "afterPosition")?;
                        engine.events_for(&stream, &aggregate_id, after).await
                    }
                    .await,
                )
            }

            #[napi(ts_return_type = "Promise<string | { json: string, numbers: Float64Array }>")]
            pub async fn events_from(
                &self,
                streams: Vec<String>,
                after_position: f64,
                limit: Option<f64>,
            ) -> Reply<EventBatch> {
                let engine = self.engine.clone();
                Reply(
                    async move {
                        let streams = to_streams(streams)?;
                        let after = to_position(after_position, "afterPosition")?;
                        let limit = to_limit(limit)?;
                        engine.events_from(&streams, after, limit).await
                    }
                    .await,
                )
            }

            #[napi(ts_return_type = "Promise<string | null>")]
            pub async fn last_event(
                &self,
                streams: Vec<String>,
                aggregate_id: Option<String>,
            ) -> Reply<Option<String>> {
                let engine = self.engine.clone();
                Reply(
                    async move {
                        let streams = to_streams(streams)?;
                        engine.last_event(&streams, aggregate_id.as_deref()).await
                    }
                    .await,
                )
            }

            #[napi(ts_return_type = "Promise<number>")]
            pub async fn get_bookmark(&self, name: String) -> Reply<i64> {
                Reply(self.engine.get_bookmark(&name).await)
            }

            #[napi(ts_return_type = "Promise<void>")]
            pub async fn set_bookmark(&self, name: String, position: f64) -> Reply<()> {
                let engine = self.engine.clone();
                Reply(
                    async move {
                        let position = to_position(position, "the bookmark position")?;
                        engine.set_bookmark(&name, position).await
                    }
                    .await,
                )
            }
        }
    };
}

// ---------------------------------------------------------------------------
// SqliteStore
// ---------------------------------------------------------------------------

/// Options of `SqliteStore.open()`.
#[napi(object)]
pub struct SqliteOpenOptions {
    /// Path of the database file (created when missing), or ":memory:".
    pub file: String,
    /// Events table name (default "events").
    pub events: Option<String>,
    /// Bookmarks table name (default "bookmarks").
    pub bookmarks: Option<String>,
}

/// SQLite event store; every method returns a Promise except `head()` and
/// `createWaiter()`.
#[napi]
pub struct SqliteStore {
    engine: Arc<SqliteEngine>,
}

#[napi]
impl SqliteStore {
    /// Opens a pool on a file (WAL; created when missing) or on ":memory:".
    #[napi(ts_return_type = "Promise<SqliteStore>")]
    pub async fn open(options: SqliteOpenOptions) -> Reply<SqliteStore> {
        let options = SqliteOptions {
            file: options.file,
            events: options.events,
            bookmarks: options.bookmarks,
        };
        Reply(SqliteEngine::open(options).await.map(|engine| SqliteStore {
            engine: Arc::new(engine),
        }))
    }

    /// Creates the missing tables and indexes (idempotent, never drops):
    /// both tables, or only those whose flag is not false.
    #[napi(ts_return_type = "Promise<void>")]
    pub async fn migrate(&self, events: Option<bool>, bookmarks: Option<bool>) -> Reply<()> {
        Reply(
            self.engine
                .migrate_tables(events.unwrap_or(true), bookmarks.unwrap_or(true))
                .await,
        )
    }

    /// Releases the pool; later calls reject with code STORE_CLOSED.
    #[napi]
    pub async fn close(&self) {
        self.engine.close().await;
    }
}

// Between the class's own impl blocks, so that native.d.ts keeps its order.
async_store_methods!(SqliteStore);

#[napi]
impl SqliteStore {
    /// The highest position this process has seen committed to this
    /// database (through any store on it).
    #[napi]
    pub fn head(&self) -> i64 {
        self.engine.head().get()
    }

    /// A waiter that resolves when this database's head moves: at once for
    /// appends made in this process, within about 20 ms for those made by
    /// other processes (it asks the file for its highest position while it
    /// waits).
    #[napi]
    pub fn create_waiter(&self) -> Waiter {
        let engine = self.engine.clone();
        let probe: Probe = Arc::new(move || {
            let engine = engine.clone();
            Box::pin(async move { engine.max_position().await.ok() })
        });
        Waiter {
            inner: Arc::new(HeadWaiter::with_probe(
                self.engine.head().clone(),
                probe,
                SQLITE_PROBE_EVERY,
            )),
        }
    }
}

// ---------------------------------------------------------------------------
// PostgresStore
// ---------------------------------------------------------------------------

/// Options of `PostgresStore.open()`.
#[napi(object)]
pub struct PostgresOpenOptions {
    /// `postgres://user:password@host:port/database?sslmode=...` (TLS through
    /// rustls). Also understood: `connect_timeout` (seconds, default 10),
    /// `application_name`, `options`, `sslrootcert`, `sslcert`, `sslkey`,
    /// `host` (a socket directory).
    pub url: String,
    /// Events table name (default "events").
    pub events: Option<String>,
    /// Bookmarks table name (default "bookmarks").
    pub bookmarks: Option<String>,
    /// Connections of the pool (default 10).
    pub max_connections: Option<f64>,
}

/// PostgreSQL event store; every method returns a Promise except `head()` and
/// `createWaiter()`.
#[napi]
pub struct PostgresStore {
    engine: Arc<PostgresEngine>,
}

fn to_max_connections(value: Option<f64>) -> Result<Option<u32>, StoreError> {
    match value {
        None => Ok(None),
        Some(v)
            if v.fract() == 0.0
                && v >= 1.0
                && v <= f64::from(crate::store::postgres::MAX_CONNECTIONS) =>
        {
            Ok(Some(v as u32))
        }
        Some(v) => Err(StoreError::invalid_argument(format!(
            "maxConnections must be an integer from 1 to {}, got {v}",
            crate::store::postgres::MAX_CONNECTIONS
        ))),
    }
}

#[napi]
impl PostgresStore {
    /// Connects once (a wrong host, user, password or database rejects here
    /// with code CANNOT_CONNECT, AUTH_FAILED or UNKNOWN_DATABASE; a malformed
    /// URL with INVALID_ARGUMENT) and opens a pool.
    #[napi(ts_return_type = "Promise<PostgresStore>")]
    pub async fn open(options: PostgresOpenOptions) -> Reply<PostgresStore> {
        let result = async move {
            let options = PostgresOptions {
                url: options.url,
                events: options.events,
                bookmarks: options.bookmarks,
                max_connections: to_max_connections(options.max_connections)?,
            };
            PostgresEngine::open(options).await
        };
        Reply(result.await.map(|engine| PostgresStore {
            engine: Arc::new(engine),
        }))
    }

    /// Creates the missing tables and indexes (idempotent, never drops; safe
    /// to run from several processes at once).
    #[napi(ts_return_type = "Promise<void>")]
    pub async fn migrate(&self) -> Reply<()> {
        Reply(self.engine.migrate().await)
    }

    /// Releases the pool (and, with the last store on this database and
    /// table, the LISTEN connection); later calls reject with code
    /// STORE_CLOSED.
    #[napi]
    pub async fn close(&self) {
        self.engine.close().await;
    }
}

// Between the class's own impl blocks, so that native.d.ts keeps its order.
async_store_methods!(PostgresStore);

#[napi]
impl PostgresStore {
    /// The highest position this process has seen committed to this
    /// database and events table (its own appends and reads, and, once a
    /// waiter exists, every append notified by other processes).
    #[napi]
    pub fn head(&self) -> i64 {
        self.engine.head().get()
    }

    /// A waiter that resolves when this database's head moves. The first
    /// one starts the LISTEN connection of this database and events table.
    #[napi]
    pub fn create_waiter(&self) -> Waiter {
        self.engine.ensure_listener(|task| {
            napi::bindgen_prelude::spawn(task);
        });
        Waiter::from_head(self.engine.head().clone())
    }
}
