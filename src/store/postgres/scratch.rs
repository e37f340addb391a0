//! Throw-away PostgreSQL databases for the tests (test builds only).
//!
//! They need a server: `EVTSTORE_TEST_PG_URL` (a superuser URL; each test
//! creates and drops its own database). Without it the tests pass after
//! saying they were skipped, except under `CI=true`, where they fail.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::{Connection, Executor, PgConnection};

use crate::store::postgres::{PostgresEngine, PostgresOptions};
use crate::store::registry::{test_server_url, Scratch};
use crate::store::{Engine, Tables};

pub(crate) const URL_VAR: &str = "EVTSTORE_TEST_PG_URL";

/// The server URL, or `None` (after saying so once) when the tests are to be
/// skipped. Panics under CI, where a missing server is a failure.
pub(crate) fn server_url() -> Option<String> {
    static SAID: AtomicBool = AtomicBool::new(false);
    test_server_url(URL_VAR, "PostgreSQL", "scripts/postgres.sh", &SAID)
}

fn with_database(url: &str, database: &str) -> String {
    let mut u = url::Url::parse(url).expect("EVTSTORE_TEST_PG_URL is a URL");
    u.set_path(&format!("/{database}"));
    u.to_string()
}

/// A database made for one test and dropped by [`ScratchDb::finish`]. One
/// left behind by a failed test is dropped by a later run.
pub(crate) struct ScratchDb {
    pub server: String,
    pub name: String,
    pub url: String,
}

impl ScratchDb {
    pub(crate) async fn create() -> Option<ScratchDb> {
        let server = server_url()?;
        static N: AtomicUsize = AtomicUsize::new(0);
        let pid = std::process::id();
        let name = format!("evtstore_rs_t_{pid}_{}", N.fetch_add(1, Ordering::SeqCst));
        let mut admin = PgConnection::connect(&server)
            .await
            .expect("connect to EVTSTORE_TEST_PG_URL");
        static SWEPT: AtomicBool = AtomicBool::new(false);
        if !SWEPT.swap(true, Ordering::SeqCst) {
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT datname::text FROM pg_database WHERE datname LIKE 'evtstore\\_rs\\_t\\_%'",
            )
            .fetch_all(&mut admin)
            .await
            .expect("list scratch databases");
            for db in stale {
                let owner = db.split('_').nth(3).and_then(|p| p.parse::<u32>().ok());
                let alive = owner.is_some_and(|p| {
                    p == pid || std::path::Path::new(&format!("/proc/{p}")).exists()
                });
                if !alive {
                    let _ = admin
                        .execute(&*format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                        .await;
                }
            }
        }
        admin
            .execute(&*format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create a scratch database");
        let _ = admin.close().await;
        Some(ScratchDb {
            url: with_database(&server, &name),
            server,
            name,
        })
    }

    pub(crate) async fn open_with(&self, options: PostgresOptions) -> Arc<PostgresEngine> {
        Arc::new(
            PostgresEngine::open(PostgresOptions {
                events: options.events,
                bookmarks: options.bookmarks,
                max_connections: options.max_connections,
                ..PostgresOptions::from_test_url(&self.url)
            })
            .await
            .expect("open"),
        )
    }

    pub(crate) async fn open(&self) -> Arc<PostgresEngine> {
        self.open_with(PostgresOptions::default()).await
    }

    pub(crate) async fn open_migrated(&self) -> Arc<PostgresEngine> {
        let engine = self.open().await;
        engine.migrate(Tables::BOTH).await.expect("migrate");
        engine
    }

    /// A plain connection to the scratch database ("another program").
    pub(crate) async fn conn(&self) -> PgConnection {
        PgConnection::connect(&self.url)
            .await
            .expect("connect to the scratch database")
    }

    pub(crate) async fn finish(self) {
        let mut admin = PgConnection::connect(&self.server)
            .await
            .expect("connect to EVTSTORE_TEST_PG_URL");
        admin
            .execute(&*format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await
            .expect("drop the scratch database");
        let _ = admin.close().await;
    }
}

/// A migrated store on a scratch database for the shared suite, or `None`
/// without a server.
pub(crate) async fn scratch() -> Option<Scratch> {
    let db = ScratchDb::create().await?;
    let engine = db.open_migrated().await;
    Some(Scratch {
        name: "postgres",
        engine: engine.clone(),
        finish: Box::pin(async move {
            engine.close().await;
            db.finish().await;
        }),
    })
}
