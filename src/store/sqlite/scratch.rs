//! Throw-away SQLite files for the tests (test builds only).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::store::scratch::{open_on, Scratch, Unmigrated};
use crate::store::sqlite::{SqliteEngine, SqliteOptions};
use crate::store::{Engine, Tables};

/// Removes the databases earlier test processes left behind (the stores
/// of the shared suite are dropped without knowing their file): each run
/// then leaves at most its own.
pub(crate) fn remove_stale_dbs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(rest) = name.strip_prefix("evtstore-rs-test-") else {
                continue;
            };
            let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
                continue;
            };
            let alive = pid == std::process::id()
                || !cfg!(target_os = "linux")
                || std::path::Path::new("/proc").join(pid.to_string()).exists();
            if !alive && entry.path().is_file() {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    });
}

pub(crate) fn temp_db(tag: &str) -> PathBuf {
    remove_stale_dbs();
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!(
        "evtstore-rs-test-{}-{tag}-{n}.sqlite",
        std::process::id()
    ));
    remove_db(&path);
    path
}

pub(crate) fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

pub(crate) async fn open_sqlite(path: &std::path::Path) -> SqliteEngine {
    SqliteEngine::open(SqliteOptions {
        file: path.display().to_string(),
        ..Default::default()
    })
    .await
    .expect("open")
}

/// A migrated store on a new file for the shared suite.
pub(crate) async fn scratch() -> Scratch {
    let path = temp_db("suite");
    let engine = Arc::new(open_sqlite(&path).await);
    engine.migrate(Tables::BOTH).await.expect("migrate");
    let location = std::fs::canonicalize(&path).expect("the file exists");
    let file = path.display().to_string();
    Scratch {
        name: "sqlite",
        engine: engine.clone(),
        open_on: open_on(move |events, bookmarks| {
            SqliteEngine::open(SqliteOptions {
                file: file.clone(),
                events: Some(events),
                bookmarks: Some(bookmarks),
                ..Default::default()
            })
        }),
        unused: ("ev".into(), "bm".into()),
        unmigrated: Unmigrated::Refused {
            location: location.display().to_string(),
        },
        finish: Box::pin(async move {
            engine.close().await;
            remove_db(&path);
        }),
    }
}
