//! Throw-away test stores (test builds only): [`Scratch`], the store the
//! shared suite runs each behaviour on, and what the engines' own scratch
//! stores share: the test servers' URLs, names no other test process uses,
//! and a SQL server's scratch databases ([`ScratchDb`]).

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Write;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::{Connection, Executor, Row};

use crate::error::Result;
use crate::store::registry::{opening, Opening};
use crate::store::{Engine, Tables};

/// Opens a store on given events and bookmarks table names.
pub type OpenOn = Box<dyn Fn(&str, &str) -> Opening + Send + Sync>;

/// A throw-away store of one registered engine, for the shared suite.
pub struct Scratch {
    pub name: &'static str,
    /// Migrated, empty.
    pub engine: Arc<dyn Engine>,
    /// Opens another store, not migrated, on the same database (file,
    /// server) with these table names (collections, labels); the memory
    /// engine, which has neither, opens a new empty store.
    pub open_on: OpenOn,
    /// Table names of that database that no store uses.
    pub unused: (String, String),
    /// What a store does on tables nobody migrated.
    pub unmigrated: Unmigrated,
    /// Closes the store and removes what it, and the stores `open_on`
    /// opened on the `unused` names, made.
    pub finish: Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// What an engine does on tables nobody migrated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unmigrated {
    /// Every operation fails with `MISSING_TABLE`, naming the table and the
    /// store's location, which starts with `location`.
    Refused { location: String },
    /// Appends fail so; reads find nothing (MongoDB: a collection is there
    /// once written to, but an append needs the version index that
    /// migrate() makes).
    AppendsRefused { location: String },
    /// The store works without migrate(): Neo4j's first append sets its
    /// labels up, as evtstore's Neo4j providers do; the memory engine has
    /// no tables.
    Works,
}

/// [`OpenOn`] of an engine whose `open(events, bookmarks)` is `open`.
pub fn open_on<E, F>(open: impl Fn(String, String) -> F + Send + Sync + 'static) -> OpenOn
where
    E: Engine + 'static,
    F: Future<Output = Result<E>> + Send + 'static,
{
    Box::new(move |events, bookmarks| opening(open(events.to_string(), bookmarks.to_string())))
}

/// The value of `$e`, an `Option`, or a return from the test: its server is
/// not running (which [`test_server_url`] said once, and which fails the
/// test under CI).
macro_rules! or_skip {
    ($e:expr) => {
        match $e {
            Some(value) => value,
            None => return,
        }
    };
}
pub(crate) use or_skip;

/// Whether this is the first time `what` is asked for in this process.
fn first_time(what: String) -> bool {
    static DONE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    DONE.lock().unwrap_or_else(|e| e.into_inner()).insert(what)
}

/// The URL of a test server from the variable `var`, or `None` (after saying
/// once that `engine`'s tests are skipped and that `start` starts one).
/// Panics under `CI=true`, where a missing server is a failure.
pub fn test_server_url(var: &str, engine: &str, start: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{var} is missing: under CI the {engine} tests must run; start a server ({start}) and set {var} to its URL"
                );
            }
            if first_time(format!("say {var}")) {
                // Straight to stderr: the test harness captures eprintln!.
                let _ = writeln!(
                    std::io::stderr(),
                    "{engine} tests skipped: {var} is not set ({start} prints a URL to set it to)"
                );
            }
            None
        }
    }
}

/// A name no other test uses, of this process or another:
/// `<prefix>_<pid>_<n>`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// The prefix of [`ScratchDb`]'s database names.
const DB_PREFIX: &str = "evtstore_rs_t";

/// Whether a database of [`unique_name`]`(DB_PREFIX)` was left by a test
/// process that has ended (a failed test does not drop its own).
fn left_over(name: &str) -> bool {
    let owner = name
        .strip_prefix(DB_PREFIX)
        .and_then(|rest| rest.split('_').nth(1))
        .and_then(|pid| pid.parse::<u32>().ok());
    !owner.is_some_and(|pid| {
        pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists()
    })
}

/// How a SQL server's scratch databases are found, made and dropped.
pub struct ServerDbs {
    /// The variable of the server's URL (one that may create databases).
    pub var: &'static str,
    pub engine: &'static str,
    /// The command that starts a test server.
    pub start: &'static str,
    /// The names of the scratch databases (`evtstore\_rs\_t\_%`).
    pub list: &'static str,
    pub create: fn(&str) -> String,
    pub drop: fn(&str) -> String,
}

impl ServerDbs {
    pub fn server_url(&self) -> Option<String> {
        test_server_url(self.var, self.engine, self.start)
    }
}

/// What a store on a scratch database may choose; the rest comes from the
/// database's URL.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    pub events: Option<String>,
    pub bookmarks: Option<String>,
    pub max_connections: Option<f64>,
}

impl Choice {
    /// A pool of `max_connections`.
    pub fn pool(max_connections: f64) -> Choice {
        Choice {
            max_connections: Some(max_connections),
            ..Choice::default()
        }
    }
}

/// The connection of a SQL server: how it makes scratch databases, and its
/// engine's stores on them.
pub trait ScratchServer: Connection {
    type Engine: Engine + 'static;
    const DBS: ServerDbs;
    /// Opens a store on the database at `url` as `choice` says.
    fn open(
        url: String,
        choice: Choice,
    ) -> impl Future<Output = Result<Self::Engine>> + Send + 'static;
}

/// A database made for one test and dropped by [`ScratchDb::finish`]. One
/// left behind by a failed test is dropped by a later run.
pub struct ScratchDb<C> {
    pub server: String,
    pub name: String,
    pub url: String,
    conn: PhantomData<fn() -> C>,
}

impl<C> ScratchDb<C>
where
    C: ScratchServer,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
    for<'r> String: sqlx::Decode<'r, C::Database> + sqlx::Type<C::Database>,
    usize: sqlx::ColumnIndex<<C::Database as sqlx::Database>::Row>,
{
    /// A new database, or `None` without a server.
    pub async fn create() -> Option<Self> {
        let dbs = C::DBS;
        let server = dbs.server_url()?;
        let name = unique_name(DB_PREFIX);
        let mut admin = C::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", dbs.var));
        // what failed tests of ended processes left, once per process
        if first_time(format!("sweep {}", dbs.var)) {
            let stale = admin
                .fetch_all(dbs.list)
                .await
                .expect("list scratch databases");
            for row in stale {
                let db: String = row.get(0);
                if left_over(&db) {
                    let _ = admin.execute(&*(dbs.drop)(&db)).await;
                }
            }
        }
        admin
            .execute(&*(dbs.create)(&name))
            .await
            .expect("create a scratch database");
        let _ = admin.close().await;
        let mut url = url::Url::parse(&server).expect("the test server's URL");
        url.set_path(&format!("/{name}"));
        Some(ScratchDb {
            url: url.to_string(),
            server,
            name,
            conn: PhantomData,
        })
    }

    /// Runs `sql` on the scratch database ("another program").
    pub async fn run(&self, sql: &str) {
        let mut conn = self.conn().await;
        conn.execute(sql).await.expect(sql);
        let _ = conn.close().await;
    }

    pub async fn finish(self) {
        let dbs = C::DBS;
        let mut admin = C::connect(&self.server)
            .await
            .unwrap_or_else(|e| panic!("connect to {}: {e}", dbs.var));
        admin
            .execute(&*(dbs.drop)(&self.name))
            .await
            .expect("drop the scratch database");
        let _ = admin.close().await;
    }

    /// The shared suite's store on this database (`name`: the engine's;
    /// `location`: how its locations start).
    pub async fn into_scratch(self, name: &'static str, location: &str) -> Scratch
    where
        C: 'static,
    {
        let engine = self.open_migrated().await;
        let url = self.url.clone();
        Scratch {
            name,
            engine: engine.clone(),
            open_on: open_on(move |events, bookmarks| {
                let choice = Choice {
                    events: Some(events),
                    bookmarks: Some(bookmarks),
                    ..Choice::default()
                };
                C::open(url.clone(), choice)
            }),
            unused: ("ev".into(), "bm".into()),
            unmigrated: Unmigrated::Refused {
                location: location.into(),
            },
            finish: Box::pin(async move {
                engine.close().await;
                self.finish().await;
            }),
        }
    }
}

impl<C: ScratchServer> ScratchDb<C> {
    pub async fn open_with(&self, choice: Choice) -> Arc<C::Engine> {
        Arc::new(C::open(self.url.clone(), choice).await.expect("open"))
    }

    pub async fn open(&self) -> Arc<C::Engine> {
        self.open_with(Choice::default()).await
    }

    pub async fn open_migrated(&self) -> Arc<C::Engine> {
        self.open_migrated_with(Choice::default()).await
    }

    pub async fn open_migrated_with(&self, choice: Choice) -> Arc<C::Engine> {
        let engine = self.open_with(choice).await;
        engine.migrate(Tables::BOTH).await.expect("migrate");
        engine
    }

    /// A plain connection to the scratch database ("another program").
    pub async fn conn(&self) -> C {
        C::connect(&self.url)
            .await
            .expect("connect to the scratch database")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_of_an_ended_process_is_left_over() {
        assert!(!left_over(&unique_name(DB_PREFIX)));
        // pid 0 is never a test process
        assert!(left_over("evtstore_rs_t_0_3"));
        assert!(left_over("evtstore_rs_t_x"));
    }
}
