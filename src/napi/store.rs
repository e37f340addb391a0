//! `Store`: the one native store class, over any engine.
//!
//! It holds an `Arc<dyn Engine>` and never asks which engine it has: the
//! options say which engine to open ([`crate::store::registry`]), every read
//! comes back as `{ json, numbers }`, every error carries its `engine`.

use std::sync::Arc;

use napi_derive::napi;

use super::reply::Reply;
use super::waiter::Waiter;
use crate::store::head::{HeadWaiter, Probe};
use crate::store::input::{
    parse_new_events, to_first_version, to_limit, to_opt_position, to_position, to_streams,
};
use crate::store::registry::{self, StoreOptions};
use crate::store::{Engine, EventBatch, Tables};

/// An event store on one database and pair of tables; every method returns
/// a Promise except `engine`, `head()` and `createWaiter()`.
#[napi]
pub struct Store {
    pub(super) engine: Arc<dyn Engine>,
}

#[napi]
impl Store {
    /// Opens the engine whose key is set in `options` (exactly one): checks
    /// the options and table names, connects once (a wrong host, user,
    /// password or database rejects here with its own code) and opens a
    /// pool. Tables are not created: call `migrate()`.
    #[napi(ts_return_type = "Promise<Store>")]
    pub async fn open(options: StoreOptions) -> Reply<Store> {
        let (name, opened) = registry::open(options).await;
        Reply::new(name, opened.map(|engine| Store { engine }))
    }

    /// The engine's name: "sqlite", "postgres", ...
    #[napi(getter)]
    pub fn engine(&self) -> &'static str {
        self.engine.name()
    }

    /// Creates the missing tables and indexes (idempotent, never drops):
    /// both tables, or only those whose flag is not false.
    #[napi(ts_return_type = "Promise<void>")]
    pub async fn migrate(&self, events: Option<bool>, bookmarks: Option<bool>) -> Reply<()> {
        let tables = Tables {
            events: events.unwrap_or(true),
            bookmarks: bookmarks.unwrap_or(true),
        };
        Reply::new(self.engine.name(), self.engine.migrate(tables).await)
    }

    /// Releases the pool; later calls reject with code STORE_CLOSED.
    #[napi]
    pub async fn close(&self) {
        self.engine.close().await;
    }

    /// Stores the events of `eventsJson` (a JSON array of `{"timestamp": ms,
    /// "event": {...}}`) atomically with versions firstVersion,
    /// firstVersion + 1, ...; resolves with their positions. Rejects with
    /// VERSION_CONFLICT when one of those versions exists (nothing stored).
    #[napi(ts_return_type = "Promise<number[]>")]
    pub async fn append(
        &self,
        stream: String,
        aggregate_id: String,
        first_version: f64,
        events_json: String,
    ) -> Reply<Vec<i64>> {
        let engine = self.engine.clone();
        let result = async move {
            let events = parse_new_events(&events_json)?;
            let first = to_first_version(first_version, events.len())?;
            engine.append(&stream, &aggregate_id, first, &events).await
        };
        Reply::new(self.engine.name(), result.await)
    }

    /// All events of one aggregate in version order (only those after
    /// `afterPosition` when given), without the stream and id columns.
    #[napi(ts_return_type = "Promise<{ json: string, numbers: Float64Array }>")]
    pub async fn events_for(
        &self,
        stream: String,
        aggregate_id: String,
        after_position: Option<f64>,
    ) -> Reply<EventBatch> {
        let engine = self.engine.clone();
        let result = async move {
            let after = to_opt_position(after_position, "afterPosition")?;
            engine.events_for(&stream, &aggregate_id, after).await
        };
        Reply::new(self.engine.name(), result.await)
    }

    /// The events of any of `streams` after `afterPosition`, in position
    /// order, at most `limit`.
    #[napi(ts_return_type = "Promise<{ json: string, numbers: Float64Array }>")]
    pub async fn events_from(
        &self,
        streams: Vec<String>,
        after_position: f64,
        limit: Option<f64>,
    ) -> Reply<EventBatch> {
        let engine = self.engine.clone();
        let result = async move {
            let streams = to_streams(streams)?;
            let after = to_position(after_position, "afterPosition")?;
            let limit = to_limit(limit)?;
            engine.events_from(&streams, after, limit).await
        };
        Reply::new(self.engine.name(), result.await)
    }

    /// JSON text of the event with the highest position in `streams` (of
    /// that aggregate when given), or null.
    #[napi(ts_return_type = "Promise<string | null>")]
    pub async fn last_event(
        &self,
        streams: Vec<String>,
        aggregate_id: Option<String>,
    ) -> Reply<Option<String>> {
        let engine = self.engine.clone();
        let result = async move {
            let streams = to_streams(streams)?;
            engine.last_event(&streams, aggregate_id.as_deref()).await
        };
        Reply::new(self.engine.name(), result.await)
    }

    /// Stored position of a bookmark, 0 when none.
    #[napi(ts_return_type = "Promise<number>")]
    pub async fn get_bookmark(&self, name: String) -> Reply<i64> {
        Reply::new(self.engine.name(), self.engine.get_bookmark(&name).await)
    }

    /// Upserts a bookmark.
    #[napi(ts_return_type = "Promise<void>")]
    pub async fn set_bookmark(&self, name: String, position: f64) -> Reply<()> {
        let engine = self.engine.clone();
        let result = async move {
            let position = to_position(position, "the bookmark position")?;
            engine.set_bookmark(&name, position).await
        };
        Reply::new(self.engine.name(), result.await)
    }

    /// The highest position this process has seen committed to this
    /// database and events table (through any store on it).
    #[napi]
    pub fn head(&self) -> i64 {
        self.engine.head().get()
    }

    /// A waiter that resolves when this database's head moves: at once for
    /// appends made in this process; for those of other processes, as the
    /// engine learns of them (notifications, or probing while it waits).
    #[napi]
    pub fn create_waiter(&self) -> Waiter {
        let wakeups = self.engine.wakeups();
        if wakeups.notified {
            self.engine.listen(&|task| {
                napi::bindgen_prelude::spawn(task);
            });
        }
        let head = self.engine.head().clone();
        let waiter = match wakeups.probe_every {
            Some(every) => {
                let engine = self.engine.clone();
                let probe: Probe = Arc::new(move || {
                    let engine = engine.clone();
                    Box::pin(async move { engine.max_position().await.ok() })
                });
                HeadWaiter::with_probe(head, probe, every)
            }
            None => HeadWaiter::new(head),
        };
        Waiter::new(waiter, self.engine.name())
    }
}
