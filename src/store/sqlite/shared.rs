//! What all stores on one SQLite file in this process share.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::store::head::Head;

/// What all stores on one SQLite file in this process share: the write lock
/// (so this process's writers queue in memory instead of in SQLite's busy
/// handler) and one head per events table.
pub(crate) struct SharedDb {
    pub write_lock: tokio::sync::Mutex<()>,
    heads: Mutex<HashMap<String, Weak<Head>>>,
}

impl SharedDb {
    pub fn new() -> Self {
        SharedDb {
            write_lock: tokio::sync::Mutex::new(()),
            heads: Mutex::new(HashMap::new()),
        }
    }

    /// The head of one events table of this database.
    pub fn head(&self, events_table: &str) -> Arc<Head> {
        let mut heads = self.heads.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(head) = heads.get(events_table).and_then(Weak::upgrade) {
            return head;
        }
        heads.retain(|_, h| h.strong_count() > 0);
        let head = Arc::new(Head::new());
        heads.insert(events_table.to_string(), Arc::downgrade(&head));
        head
    }
}

impl Default for SharedDb {
    fn default() -> Self {
        Self::new()
    }
}

type Registry = Mutex<HashMap<PathBuf, Weak<SharedDb>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The shared state of the database file at `canonical_path` (a canonical
/// path, so two spellings of one file meet).
pub(crate) fn shared_db(canonical_path: PathBuf) -> Arc<SharedDb> {
    let mut map = registry().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(db) = map.get(&canonical_path).and_then(Weak::upgrade) {
        return db;
    }
    map.retain(|_, db| db.strong_count() > 0);
    let db = Arc::new(SharedDb::new());
    map.insert(canonical_path, Arc::downgrade(&db));
    db
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_shares_one_db_per_path() {
        let a = shared_db(PathBuf::from("/nonexistent/evtstore-test-a"));
        let b = shared_db(PathBuf::from("/nonexistent/evtstore-test-a"));
        assert!(Arc::ptr_eq(&a, &b));
        let h1 = a.head("events");
        let h2 = b.head("events");
        assert!(Arc::ptr_eq(&h1, &h2));
        assert!(!Arc::ptr_eq(&h1, &a.head("other")));
    }
}
