//! Throw-away PostgreSQL databases for the tests (test builds only).
//!
//! They need a server: `EVTSTORE_TEST_PG_URL` (a superuser URL; each test
//! creates and drops its own database). Without it the tests pass after
//! saying they were skipped, except under `CI=true`, where they fail.

use std::future::Future;

use sqlx::PgConnection;

use crate::error::Result;
use crate::store::postgres::{PostgresEngine, PostgresOptions};
use crate::store::scratch::{Choice, Scratch, ScratchServer, ServerDbs};

pub(crate) const URL_VAR: &str = "EVTSTORE_TEST_PG_URL";

impl ScratchServer for PgConnection {
    type Engine = PostgresEngine;

    const DBS: ServerDbs = ServerDbs {
        var: URL_VAR,
        engine: "PostgreSQL",
        start: "scripts/postgres.sh start",
        list: "SELECT datname::text FROM pg_database WHERE datname LIKE 'evtstore\\_rs\\_t\\_%'",
        create: |name| format!("CREATE DATABASE \"{name}\""),
        drop: |name| format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
    };

    fn open(
        url: String,
        choice: Choice,
    ) -> impl Future<Output = Result<PostgresEngine>> + Send + 'static {
        PostgresEngine::open(PostgresOptions {
            events: choice.events,
            bookmarks: choice.bookmarks,
            max_connections: choice.max_connections,
            ..PostgresOptions::from_test_url(&url)
        })
    }
}

/// The server URL, or `None` (after saying so once) when the tests are to be
/// skipped. Panics under CI, where a missing server is a failure.
pub(crate) fn server_url() -> Option<String> {
    PgConnection::DBS.server_url()
}

pub(crate) type ScratchDb = crate::store::scratch::ScratchDb<PgConnection>;

/// A migrated store on a scratch database for the shared suite, or `None`
/// without a server.
pub(crate) async fn scratch() -> Option<Scratch> {
    let db = ScratchDb::create().await?;
    Some(db.into_scratch("postgres", "postgres://").await)
}
