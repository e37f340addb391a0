//! The engines, registered in one place: the options of `Store.open()` have
//! one key per engine, and exactly one must be set.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use napi_derive::napi;

use crate::error::{Result, StoreError};
use crate::store::postgres::{PostgresEngine, PostgresOptions};
use crate::store::sqlite::{SqliteEngine, SqliteOptions};
use crate::store::Engine;

/// The keys of [`StoreOptions`], for messages.
const ENGINES: [&str; 2] = ["sqlite", "postgres"];

/// What `Store.open()` takes: the options of one engine.
#[napi(object)]
pub struct StoreOptions {
    /// An SQLite database file (or ":memory:").
    pub sqlite: Option<SqliteOptions>,
    /// A PostgreSQL server.
    pub postgres: Option<PostgresOptions>,
}

type Opening = Pin<Box<dyn Future<Output = Result<Arc<dyn Engine>>> + Send>>;

fn opening<E: Engine + 'static>(open: impl Future<Output = Result<E>> + Send + 'static) -> Opening {
    Box::pin(async move { Ok(Arc::new(open.await?) as Arc<dyn Engine>) })
}

/// How to open each engine the options choose.
fn chosen(options: StoreOptions) -> Vec<Opening> {
    let mut chosen = Vec::new();
    if let Some(o) = options.sqlite {
        chosen.push(opening(SqliteEngine::open(o)));
    }
    if let Some(o) = options.postgres {
        chosen.push(opening(PostgresEngine::open(o)));
    }
    chosen
}

/// The name of the engine the options choose (for the errors of `open`),
/// "none" unless they choose exactly one.
pub fn engine_name(options: &StoreOptions) -> &'static str {
    match (&options.sqlite, &options.postgres) {
        (Some(_), None) => "sqlite",
        (None, Some(_)) => "postgres",
        _ => "none",
    }
}

/// Opens the engine the options choose.
pub async fn open(options: StoreOptions) -> Result<Arc<dyn Engine>> {
    let mut chosen = chosen(options);
    let count = chosen.len();
    match (chosen.pop(), count) {
        (Some(open), 1) => open.await,
        _ => Err(StoreError::invalid_argument(format!(
            "Store.open takes the options of exactly one engine ({}), got {count}",
            ENGINES.join(", ")
        ))),
    }
}

/// A throw-away store of one registered engine, for the shared suites
/// (test builds only).
#[cfg(test)]
pub struct Scratch {
    pub name: &'static str,
    pub engine: Arc<dyn Engine>,
    /// Closes the store and removes what it made.
    pub finish: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// A throw-away store of every registered engine (an engine whose test
/// server is not running is left out, as its own tests say).
#[cfg(test)]
pub async fn scratch_engines() -> Vec<Scratch> {
    let mut all = vec![
        crate::store::memory::json::scratch(),
        crate::store::sqlite::scratch::scratch().await,
    ];
    all.extend(crate::store::postgres::scratch::scratch().await);
    all
}
