//! Throw-away MongoDB databases for the tests (test builds only).
//!
//! They need a server: `EVTSTORE_TEST_MONGO_URL` (`scripts/ferretdb.sh
//! start` prints one). Each test gets a database of its own, dropped at the
//! end. Without the variable the tests pass after saying they were skipped,
//! except under `CI=true`, where they fail.

use std::sync::Arc;

use mongodb::bson::Document;

use crate::store::mongo::{MongoEngine, MongoOptions};
use crate::store::scratch::{open_on, test_server_url, unique_name, Scratch, Unmigrated};
use crate::store::{Engine, Tables};

pub(crate) const URL_VAR: &str = "EVTSTORE_TEST_MONGO_URL";

/// The server URL, or `None` (after saying so once) when the tests are to be
/// skipped. Panics under CI, where a missing server is a failure.
pub(crate) fn server_url() -> Option<String> {
    test_server_url(URL_VAR, "MongoDB", "scripts/ferretdb.sh start")
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
        let name = unique_name("evtstore_rs_t");
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
    let (url, database) = (db.url.clone(), db.name.clone());
    Some(Scratch {
        name: "mongo",
        engine: engine.clone(),
        open_on: open_on(move |events, bookmarks| {
            MongoEngine::open(MongoOptions {
                url: url.clone(),
                database: Some(database.clone()),
                events: Some(events),
                bookmarks: Some(bookmarks),
                ..Default::default()
            })
        }),
        unused: ("ev".into(), "bm".into()),
        unmigrated: Unmigrated::AppendsRefused {
            location: "MongoDB ".into(),
        },
        finish: Box::pin(async move {
            engine.close().await;
            db.finish().await;
        }),
    })
}
