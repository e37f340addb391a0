//! Throw-away MongoDB databases for the tests (test builds only).
//!
//! They need a server: `EVTSTORE_TEST_MONGO_URL` (`scripts/ferretdb.sh
//! start` prints one). Each test gets a database of its own, dropped at the
//! end. Without the variable the tests pass after saying they were skipped,
//! except under `CI=true`, where they fail.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use mongodb::bson::Document;

use crate::store::mongo::{MongoEngine, MongoOptions};
use crate::store::registry::Scratch;
use crate::store::{Engine, Tables};

pub(crate) const URL_VAR: &str = "EVTSTORE_TEST_MONGO_URL";

/// The server URL, or `None` (after saying so once) when the tests are to be
/// skipped. Panics under CI, where a missing server is a failure.
pub(crate) fn server_url() -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "{URL_VAR} is missing: under CI the MongoDB tests must run; start a server (scripts/ferretdb.sh start) and set {URL_VAR} to its URL"
                );
            }
            static SAID: AtomicBool = AtomicBool::new(false);
            if !SAID.swap(true, Ordering::SeqCst) {
                let _ = writeln!(
                    std::io::stderr(),
                    "MongoDB tests skipped: {URL_VAR} is not set (scripts/ferretdb.sh start prints a URL to set it to)"
                );
            }
            None
        }
    }
}

/// A database made for one test and dropped by [`ScratchDb::finish`].
pub(crate) struct ScratchDb {
    pub url: String,
    pub name: String,
    client: mongodb::Client,
}

impl ScratchDb {
    pub(crate) async fn create() -> Option<ScratchDb> {
        let url = server_url()?;
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "evtstore_rs_t_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let client = mongodb::Client::with_uri_str(&url)
            .await
            .expect("EVTSTORE_TEST_MONGO_URL is a MongoDB url");
        Some(ScratchDb { url, name, client })
    }

    pub(crate) async fn open_with(&self, options: MongoOptions) -> Arc<MongoEngine> {
        Arc::new(
            MongoEngine::open(MongoOptions {
                url: self.url.clone(),
                database: Some(self.name.clone()),
                ..options
            })
            .await
            .expect("open"),
        )
    }

    pub(crate) async fn open_migrated(&self) -> Arc<MongoEngine> {
        let engine = self.open_with(MongoOptions::default()).await;
        engine.migrate(Tables::BOTH).await.expect("migrate");
        engine
    }

    /// A collection of the scratch database ("another program").
    pub(crate) fn collection(&self, name: &str) -> mongodb::Collection<Document> {
        self.client.database(&self.name).collection(name)
    }

    pub(crate) async fn finish(self) {
        let _ = self.client.database(&self.name).drop().await;
        self.client.shutdown().await;
    }
}

/// A migrated store on a scratch database for the shared suite, or `None`
/// without a server.
pub(crate) async fn scratch() -> Option<Scratch> {
    let db = ScratchDb::create().await?;
    let engine = db.open_migrated().await;
    Some(Scratch {
        name: "mongo",
        engine: engine.clone(),
        finish: Box::pin(async move {
            engine.close().await;
            db.finish().await;
        }),
    })
}
