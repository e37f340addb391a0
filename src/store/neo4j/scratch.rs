//! Throw-away labels on the test servers (test builds only).
//!
//! Each running server is named by a URL variable (scripts/neo4j.sh start
//! prints it). Without them the tests pass after saying they were skipped,
//! except under `CI=true`, where they fail.

use std::sync::Arc;

use super::packstream::Value;
use super::{Neo4jEngine, Neo4jOptions};
use crate::store::scratch::{open_on, test_server_url, unique_name, Scratch, Unmigrated};
use crate::store::{Engine, Tables};

/// The URL variable of each server version, and the suite's name for it.
pub(crate) const SERVERS: [(&str, &str); 3] = [
    ("EVTSTORE_TEST_NEO4J35_URL", "neo4j 3.5"),
    ("EVTSTORE_TEST_NEO4J44_URL", "neo4j 4.4"),
    ("EVTSTORE_TEST_NEO4J5_URL", "neo4j 5"),
];

/// The URLs of the servers that run, each with its name. Panics under CI
/// when one is missing.
pub(crate) fn server_urls() -> Vec<(String, &'static str)> {
    let mut urls = Vec::new();
    for (var, name) in SERVERS {
        let version = &name[6..];
        let start = format!("scripts/neo4j.sh start {version}");
        if let Some(url) = test_server_url(var, &format!("Neo4j {version}"), &start) {
            urls.push((url, name));
        }
    }
    urls
}

/// Labels no other test uses: `ev_t_<pid>_<n>` and `bm_t_<pid>_<n>`.
pub(crate) fn labels() -> (String, String) {
    let n = unique_name("t");
    (format!("ev_{n}"), format!("bm_{n}"))
}

pub(crate) async fn open_labels(url: &str, events: &str, bookmarks: &str) -> Arc<Neo4jEngine> {
    Arc::new(
        Neo4jEngine::open(Neo4jOptions {
            url: url.to_string(),
            events: Some(events.to_string()),
            bookmarks: Some(bookmarks.to_string()),
            ..Default::default()
        })
        .await
        .expect("open the Neo4j test server"),
    )
}

impl Neo4jEngine {
    /// Runs any statement (tests: "another program").
    pub(crate) async fn cypher(
        &self,
        query: &str,
        params: Value,
    ) -> crate::error::Result<super::Rows> {
        self.query(query, params, &self.events_label).await
    }

    /// Deletes the nodes of this store's labels (its leases too) and its
    /// counter.
    pub(crate) async fn remove_all(&self) {
        for label in [
            &self.events_label,
            &self.bookmarks_label,
            &self.leases_label,
        ] {
            let q = format!("MATCH (n:`{label}`) DETACH DELETE n");
            self.cypher(&q, Value::Map(Vec::new()))
                .await
                .expect("delete test nodes");
        }
        let q = format!(
            "MATCH (c:{} {{label: $label}}) DELETE c",
            super::cypher::COUNTER_LABEL
        );
        let params = super::packstream::map([("label", self.events_label.as_str().into())]);
        self.cypher(&q, params).await.expect("delete the counter");
    }
}

/// A migrated store on new labels of every running server.
pub(crate) async fn scratch() -> Vec<Scratch> {
    let mut all = Vec::new();
    for (url, name) in server_urls() {
        let (events, bookmarks) = labels();
        let engine = open_labels(&url, &events, &bookmarks).await;
        engine.migrate(Tables::BOTH).await.expect("migrate");
        let unused = labels();
        let (on, unused_labels) = (url.clone(), unused.clone());
        all.push(Scratch {
            name,
            engine: engine.clone(),
            open_on: open_on(move |events, bookmarks| {
                Neo4jEngine::open(Neo4jOptions {
                    url: on.clone(),
                    events: Some(events),
                    bookmarks: Some(bookmarks),
                    ..Default::default()
                })
            }),
            unused,
            unmigrated: Unmigrated::Works,
            finish: Box::pin(async move {
                // on a store of its own: the behaviour may have closed this one
                engine.close().await;
                let mine = open_labels(&url, &engine.events_label, &engine.bookmarks_label).await;
                mine.remove_all().await;
                mine.close().await;
                // what a test's first append on the unused labels made
                let other = open_labels(&url, &unused_labels.0, &unused_labels.1).await;
                other.remove_all().await;
                other.close().await;
            }),
        });
    }
    all
}
