//! The engines, registered in one place: the options of `Store.open()` have
//! one key per engine, and exactly one must be set.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use napi_derive::napi;

use crate::error::{Result, StoreError};
use crate::store::mongo::{MongoEngine, MongoOptions};
use crate::store::mysql::{MysqlEngine, MysqlOptions};
use crate::store::neo4j::{Neo4jEngine, Neo4jOptions};
use crate::store::postgres::{PostgresEngine, PostgresOptions};
use crate::store::sqlite::{SqliteEngine, SqliteOptions};
use crate::store::Engine;

/// The keys of [`StoreOptions`], for messages.
const ENGINES: [&str; 5] = ["sqlite", "postgres", "mysql", "mongo", "neo4j"];

/// What `Store.open()` takes: the options of one engine.
#[napi(object)]
pub struct StoreOptions {
    /// An SQLite database file (or ":memory:").
    pub sqlite: Option<SqliteOptions>,
    /// A PostgreSQL server.
    pub postgres: Option<PostgresOptions>,
    /// A MySQL or MariaDB server.
    pub mysql: Option<MysqlOptions>,
    /// A MongoDB server (or one speaking its protocol).
    pub mongo: Option<MongoOptions>,
    /// A Neo4j server (3.5, 4.4 or 5.x).
    #[napi(js_name = "neo4j")]
    pub neo4j: Option<Neo4jOptions>,
}

/// A store being opened.
pub type Opening = Pin<Box<dyn Future<Output = Result<Arc<dyn Engine>>> + Send>>;

pub fn opening<E: Engine + 'static>(
    open: impl Future<Output = Result<E>> + Send + 'static,
) -> Opening {
    Box::pin(async move { Ok(Arc::new(open.await?) as Arc<dyn Engine>) })
}

/// Each engine the options choose: its name and how to open it.
fn chosen(options: StoreOptions) -> Vec<(&'static str, Opening)> {
    let mut chosen = Vec::new();
    if let Some(o) = options.sqlite {
        chosen.push(("sqlite", opening(SqliteEngine::open(o))));
    }
    if let Some(o) = options.postgres {
        chosen.push(("postgres", opening(PostgresEngine::open(o))));
    }
    if let Some(o) = options.mysql {
        chosen.push(("mysql", opening(MysqlEngine::open(o))));
    }
    if let Some(o) = options.mongo {
        chosen.push(("mongo", opening(MongoEngine::open(o))));
    }
    if let Some(o) = options.neo4j {
        chosen.push(("neo4j", opening(Neo4jEngine::open(o))));
    }
    chosen
}

/// Opens the engine the options choose; also its name, for the errors
/// ("none" unless the options choose exactly one).
pub async fn open(options: StoreOptions) -> (&'static str, Result<Arc<dyn Engine>>) {
    let mut chosen = chosen(options);
    let count = chosen.len();
    match (chosen.pop(), count) {
        (Some((name, open)), 1) => (name, open.await),
        _ => (
            "none",
            Err(StoreError::invalid_argument(format!(
                "Store.open takes the options of exactly one engine ({}), got {count}",
                ENGINES.join(", ")
            ))),
        ),
    }
}

/// A throw-away store of every registered engine (an engine whose test
/// server is not running is left out, as its own tests say).
#[cfg(test)]
pub async fn scratch_engines() -> Vec<crate::store::scratch::Scratch> {
    let mut all = vec![
        crate::store::memory::json::scratch(),
        crate::store::sqlite::scratch::scratch().await,
    ];
    all.extend(crate::store::postgres::scratch::scratch().await);
    all.extend(crate::store::mysql::scratch::scratch().await);
    all.extend(crate::store::mongo::scratch::scratch().await);
    all.extend(crate::store::neo4j::scratch::scratch().await);
    all
}
