//! Throw-away MySQL/MariaDB databases for the tests (test builds only).
//!
//! They need a server: `EVTSTORE_TEST_MYSQL_URL` (a user that may create
//! and drop databases; each test makes its own). Without it the tests pass
//! after saying they were skipped, except under `CI=true`, where they fail.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use sqlx::mysql::MySqlConnection;
use sqlx::{Connection, Executor};

use crate::store::mysql::{MysqlEngine, MysqlOptions};
use crate::store::registry::{test_server_url, Scratch};
use crate::store::{Engine, Tables};

pub(crate) const URL_VAR: &str = "EVTSTORE_TEST_MYSQL_URL";

/// The server URL, or `None` (after saying so once) when the tests are to be
/// skipped. Panics under CI, where a missing server is a failure.
pub(crate) fn server_url() -> Option<String> {
    static SAID: AtomicBool = AtomicBool::new(false);
    test_server_url(URL_VAR, "MySQL", "scripts/mariadb.sh", &SAID)
}

impl MysqlOptions {
    /// The options of a `mysql://user:password@host:port/database` URL
    /// (tests only; the JavaScript adapter reads users' URLs).
    pub(crate) fn from_test_url(url: &str) -> MysqlOptions {
        let u = url::Url::parse(url).expect("a mysql:// URL");
        MysqlOptions {
            host: u.host_str().unwrap_or("127.0.0.1").to_string(),
            port: f64::from(u.port().unwrap_or(3306)),
            user: u.username().to_string(),
            password: u.password().map(str::to_string),
            database: u.path().trim_start_matches('/').to_string(),
            ..MysqlOptions::default()
        }
    }
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
        let mut admin = MySqlConnection::connect(&server)
            .await
            .expect("connect to EVTSTORE_TEST_MYSQL_URL");
        static SWEPT: AtomicBool = AtomicBool::new(false);
        if !SWEPT.swap(true, Ordering::SeqCst) {
            let stale: Vec<String> = sqlx::query_scalar(
                "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'evtstore\\_rs\\_t\\_%'",
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
                        .execute(&*format!("DROP DATABASE IF EXISTS `{db}`"))
                        .await;
                }
            }
        }
        admin
            .execute(&*format!(
                "CREATE DATABASE `{name}` DEFAULT CHARSET utf8mb4"
            ))
            .await
            .expect("create a scratch database");
        let _ = admin.close().await;
        let mut u = url::Url::parse(&server).expect("EVTSTORE_TEST_MYSQL_URL is a URL");
        u.set_path(&format!("/{name}"));
        Some(ScratchDb {
            url: u.to_string(),
            server,
            name,
        })
    }

    pub(crate) async fn open_with(&self, options: MysqlOptions) -> Arc<MysqlEngine> {
        Arc::new(
            MysqlEngine::open(MysqlOptions {
                events: options.events,
                bookmarks: options.bookmarks,
                max_connections: options.max_connections,
                ..MysqlOptions::from_test_url(&self.url)
            })
            .await
            .expect("open"),
        )
    }

    pub(crate) async fn open_migrated(&self) -> Arc<MysqlEngine> {
        let engine = self.open_with(MysqlOptions::default()).await;
        engine.migrate(Tables::BOTH).await.expect("migrate");
        engine
    }

    /// A plain connection to the scratch database ("another program").
    pub(crate) async fn conn(&self) -> MySqlConnection {
        MySqlConnection::connect(&self.url)
            .await
            .expect("connect to the scratch database")
    }

    pub(crate) async fn finish(self) {
        let mut admin = MySqlConnection::connect(&self.server)
            .await
            .expect("connect to EVTSTORE_TEST_MYSQL_URL");
        admin
            .execute(&*format!("DROP DATABASE IF EXISTS `{}`", self.name))
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
        name: "mysql",
        engine: engine.clone(),
        finish: Box::pin(async move {
            engine.close().await;
            db.finish().await;
        }),
    })
}
