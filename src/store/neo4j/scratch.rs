//! Throw-away labels on the test servers (test builds only).
//!
//! Each running server is named by a URL variable (scripts/neo4j.sh start
//! prints it). Without them the tests pass after saying they were skipped,
//! except under `CI=true`, where they fail.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::packstream::Value;
use super::{Neo4jEngine, Neo4jOptions};
use crate::store::registry::Scratch;
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
        match std::env::var(var) {
            Ok(url) if !url.trim().is_empty() => urls.push((url, name)),
            _ => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{var} is missing: under CI the Neo4j tests must run; start the server (scripts/neo4j.sh start {}) and set {var} to its URL", &name[6..]);
                }
                static SAID: AtomicBool = AtomicBool::new(false);
                if !SAID.swap(true, Ordering::SeqCst) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "Neo4j tests skipped where a server is missing: {var} is not set (scripts/neo4j.sh start {} prints a URL to set it to)",
                        &name[6..]
                    );
                }
            }
        }
    }
    urls
}

/// Labels no other test uses: `<prefix>_<pid>_<n>`.
pub(crate) fn labels() -> (String, String) {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    (format!("ev_t_{pid}_{n}"), format!("bm_t_{pid}_{n}"))
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

    /// Deletes the nodes of this store's labels and its counter.
    pub(crate) async fn remove_all(&self) {
        for label in [&self.events_label, &self.bookmarks_label] {
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
        all.push(Scratch {
            name,
            engine: engine.clone(),
            finish: Box::pin(async move {
                engine.remove_all().await;
                engine.close().await;
            }),
        });
    }
    all
}
