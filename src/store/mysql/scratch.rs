//! Throw-away MySQL/MariaDB databases for the tests (test builds only).
//!
//! They need a server: `EVTSTORE_TEST_MYSQL_URL` (a user that may create
//! and drop databases; each test makes its own). Without it the tests pass
//! after saying they were skipped, except under `CI=true`, where they fail.

use std::future::Future;

use sqlx::mysql::MySqlConnection;

use crate::error::Result;
use crate::store::mysql::{MysqlEngine, MysqlOptions};
use crate::store::scratch::{Choice, Scratch, ScratchServer, ServerDbs};

impl ScratchServer for MySqlConnection {
    type Engine = MysqlEngine;

    const DBS: ServerDbs = ServerDbs {
        var: "EVTSTORE_TEST_MYSQL_URL",
        engine: "MySQL",
        start: "scripts/mariadb.sh start",
        list: "SELECT CAST(SCHEMA_NAME AS CHAR) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE 'evtstore\\_rs\\_t\\_%'",
        create: |name| format!("CREATE DATABASE `{name}` DEFAULT CHARSET utf8mb4"),
        drop: |name| format!("DROP DATABASE IF EXISTS `{name}`"),
    };

    fn open(
        url: String,
        choice: Choice,
    ) -> impl Future<Output = Result<MysqlEngine>> + Send + 'static {
        MysqlEngine::open(MysqlOptions {
            events: choice.events,
            bookmarks: choice.bookmarks,
            max_connections: choice.max_connections,
            ..MysqlOptions::from_test_url(&url)
        })
    }
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

pub(crate) type ScratchDb = crate::store::scratch::ScratchDb<MySqlConnection>;

/// A migrated store on a scratch database for the shared suite, or `None`
/// without a server.
pub(crate) async fn scratch() -> Option<Scratch> {
    let db = ScratchDb::create().await?;
    Some(db.into_scratch("mysql", "mysql://").await)
}
