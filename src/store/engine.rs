//! The engine contract: the whole life of a store, from open to close.
//!
//! Every engine (one folder under `store/`) implements [`Engine`]; the one
//! native class (`napi::store::Store`) holds an `Arc<dyn Engine>` and never
//! knows which engine it has. Handlers on many processes coordinate through
//! the lease methods ([`crate::store::lease`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::Result;
use crate::store::batch::EventBatch;
use crate::store::head::Head;
use crate::store::input::NewEvent;
use crate::store::lease::{Lease, LeaseClaim};

/// A task an engine wants run in the background (e.g. a LISTEN loop); the
/// caller decides on which runtime.
pub type BoxTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Which tables (or collections) `migrate` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tables {
    pub events: bool,
    pub bookmarks: bool,
}

impl Tables {
    pub const BOTH: Tables = Tables {
        events: true,
        bookmarks: true,
    };
}

/// How a waiting handler learns of appends made by other processes (appends
/// made through this process move the [`Head`] at once, on every engine).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wakeups {
    /// The engine pushes them to the head itself once [`Engine::listen`]
    /// has run (PostgreSQL's LISTEN/NOTIFY).
    pub notified: bool,
    /// While a wait is pending, the waiter asks [`Engine::max_position`]
    /// this often (SQLite: an index lookup).
    pub probe_every: Option<Duration>,
}

impl Wakeups {
    /// An engine without notifications: a waiter probes this often.
    pub const fn probing(every: Duration) -> Wakeups {
        Wakeups {
            notified: false,
            probe_every: Some(every),
        }
    }
}

/// One storage engine. Every method is atomic on its own; `append` is
/// version-checked: it stores all of its events or none.
#[async_trait]
pub trait Engine: Send + Sync {
    /// The engine's name as JavaScript sees it on the store and on its
    /// errors: "sqlite", "postgres", ...
    fn name(&self) -> &'static str;

    /// Creates the missing tables and indexes; idempotent, never drops.
    async fn migrate(&self, tables: Tables) -> Result<()>;

    /// Releases connections; later calls fail with `STORE_CLOSED`.
    async fn close(&self);

    /// Stores `events` with versions `first_version, first_version + 1, ...`
    /// and returns their positions. `VersionConflict` if any of those
    /// versions already exists for (stream, aggregate_id); nothing is stored
    /// then.
    async fn append(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>>;

    /// All events of one aggregate in version order (only those after
    /// `after_position` when given), without the stream and id columns,
    /// which are the ones asked for.
    async fn events_for(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Result<EventBatch>;

    /// The events of any of `streams` after `after_position`, in position
    /// order, at most `limit`.
    async fn events_from(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Result<EventBatch>;

    /// JSON of the event with the highest position in `streams` (of that
    /// aggregate when given), or `None`.
    async fn last_event(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>>;

    /// Stored position of a bookmark, 0 when none.
    async fn get_bookmark(&self, name: &str) -> Result<i64>;

    /// Upserts a bookmark.
    async fn set_bookmark(&self, name: &str, position: i64) -> Result<()>;

    /// Every stored bookmark and its position, by name.
    async fn bookmarks(&self) -> Result<Vec<(String, i64)>>;

    /// How many events of `streams` come after `after_position` (a
    /// handler's lag).
    async fn count_after(&self, streams: &[String], after_position: i64) -> Result<i64>;

    /// The lease of one bookmark, or `None` when it never had one; every
    /// lease (by name) when `name` is `None`.
    async fn leases(&self, name: Option<&str>) -> Result<Vec<Lease>>;

    /// Takes the lease when it still is what the claimer saw (no lease, or
    /// the same token and beat): atomically, so of two claims on one lease
    /// at most one succeeds. Returns the new token ([`LeaseClaim::next_token`]),
    /// `None` when the lease moved.
    async fn claim_lease(&self, claim: &LeaseClaim<'_>) -> Result<Option<i64>>;

    /// Raises the beat of a lease held with `token`; false when the lease
    /// changed hands (nothing written then).
    async fn renew_lease(&self, name: &str, token: i64) -> Result<bool>;

    /// Gives up a lease held with `token` (owner emptied, token kept, beat
    /// raised): a waiting instance takes it at once.
    async fn release_lease(&self, name: &str, token: i64) -> Result<()>;

    /// [`Engine::set_bookmark`] only while the bookmark's lease carries
    /// `token`, checked in the same statement; false (nothing written)
    /// once another instance took the lease.
    async fn set_bookmark_fenced(&self, name: &str, position: i64, token: i64) -> Result<bool>;

    /// The highest position this process has seen committed to this
    /// database (shared by every store on it).
    fn head(&self) -> &Arc<Head>;

    /// How appends of other processes reach the head.
    fn wakeups(&self) -> Wakeups;

    /// The highest position stored, asked of the database (probing).
    async fn max_position(&self) -> Result<i64>;

    /// Starts pushing other processes' appends to the head, when the
    /// engine can ([`Wakeups::notified`]); `spawn` runs its task. Called
    /// for every new waiter: an engine starts its listener once.
    fn listen(&self, spawn: &dyn Fn(BoxTask)) {
        let _ = spawn;
    }
}
