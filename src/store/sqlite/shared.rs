//! What all stores on one SQLite file in this process share.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use crate::store::head::Head;
use crate::store::shared::SharedMap;

/// What all stores on one SQLite file in this process share: the write lock
/// (so this process's writers queue in memory instead of in SQLite's busy
/// handler) and one head per events table.
pub(crate) struct SharedDb {
    pub write_lock: tokio::sync::Mutex<()>,
    heads: SharedMap<String, Head>,
}

impl SharedDb {
    pub fn new() -> Self {
        SharedDb {
            write_lock: tokio::sync::Mutex::new(()),
            heads: SharedMap::default(),
        }
    }

    /// The head of one events table of this database.
    pub fn head(&self, events_table: &str) -> Arc<Head> {
        self.heads.get_or_make(events_table.to_string(), Head::new)
    }
}

impl Default for SharedDb {
    fn default() -> Self {
        Self::new()
    }
}

/// The shared state of the database file at `canonical_path` (a canonical
/// path, so two spellings of one file meet).
pub(crate) fn shared_db(canonical_path: PathBuf) -> Arc<SharedDb> {
    static DBS: LazyLock<SharedMap<PathBuf, SharedDb>> = LazyLock::new(SharedMap::default);
    DBS.get_or_make(canonical_path, SharedDb::new)
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
