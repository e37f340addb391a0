//! `MemoryStore`: the in-memory engine's synchronous fast path.
//!
//! Kept beside the one async `Store` class because a hop to a tokio thread
//! and back (~30-45 us) costs more than the original's whole in-memory
//! command (~26 us): every method here answers on the JS thread. The
//! payloads stay JavaScript objects (provider/memory.js); this class keeps
//! the index (streams, aggregates, versions), the version check and the
//! head.

use std::sync::Arc;

use napi::bindgen_prelude::Float64ArraySlice;
use napi::Env;
use napi_derive::napi;

use super::reply::sync;
use super::waiter::Waiter;
use crate::store::head::HeadWaiter;
use crate::store::input::{to_first_version, to_limit, to_opt_position, to_position, to_streams};
use crate::store::memory::{Appended, MemoryEngine};

const ENGINE: &str = "memory";

/// Positions for JavaScript: null for none (most reads of a command on a
/// new aggregate), else a copy in a plain Float64Array. napi's owned arrays
/// are external buffers with a finalizer each, which cost the garbage
/// collector more than the copy does.
fn positions_array<'env>(
    env: &'env Env,
    positions: &[f64],
) -> napi::Result<Option<Float64ArraySlice<'env>>> {
    if positions.is_empty() {
        return Ok(None);
    }
    Float64ArraySlice::copy_from(env, positions).map(Some)
}

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
        env: Env,
        stream: String,
        aggregate_id: String,
        first_version: f64,
        count: f64,
    ) -> napi::Result<f64> {
        sync(
            &env,
            ENGINE,
            (|| {
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
            })(),
        )
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
    ) -> napi::Result<Option<Float64ArraySlice<'env>>> {
        let after = sync(
            env,
            ENGINE,
            to_opt_position(after_position, "afterPosition"),
        )?;
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
    ) -> napi::Result<Option<Float64ArraySlice<'env>>> {
        let (streams, after, limit) = sync(
            env,
            ENGINE,
            (|| {
                Ok((
                    to_streams(streams)?,
                    to_position(after_position, "afterPosition")?,
                    to_limit(limit)?,
                ))
            })(),
        )?;
        let positions = self.engine.positions_from_sync(&streams, after, limit);
        positions_array(env, &positions)
    }

    /// Position of the last event of `streams` (of that aggregate when
    /// given), 0 when there is none.
    #[napi]
    pub fn last_position(
        &self,
        env: Env,
        streams: Vec<String>,
        aggregate_id: Option<String>,
    ) -> napi::Result<f64> {
        sync(
            &env,
            ENGINE,
            (|| {
                let streams = to_streams(streams)?;
                Ok(self
                    .engine
                    .last_position_sync(&streams, aggregate_id.as_deref())
                    as f64)
            })(),
        )
    }

    /// Stored position of a bookmark, 0 when none.
    #[napi]
    pub fn get_bookmark(&self, env: Env, name: String) -> napi::Result<i64> {
        sync(&env, ENGINE, self.engine.get_bookmark_sync(&name))
    }

    /// Upserts a bookmark.
    #[napi]
    pub fn set_bookmark(&self, env: Env, name: String, position: f64) -> napi::Result<()> {
        sync(
            &env,
            ENGINE,
            (|| {
                let position = to_position(position, "the bookmark position")?;
                self.engine.set_bookmark_sync(&name, position)
            })(),
        )
    }

    /// The highest position stored.
    #[napi]
    pub fn head(&self) -> i64 {
        self.engine.head().get()
    }

    /// A waiter that resolves when this store's head moves.
    #[napi]
    pub fn create_waiter(&self) -> Waiter {
        Waiter::new(HeadWaiter::new(self.engine.head().clone()), ENGINE)
    }
}
