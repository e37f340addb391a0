//! What the stores of one process share, found by a key (a database file,
//! a server's database and events table): an entry lives as long as some
//! store holds it, and the next store opened after the last one closed
//! makes a new one.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, Weak};

pub struct SharedMap<K, T> {
    entries: Mutex<HashMap<K, Weak<T>>>,
}

impl<K, T> Default for SharedMap<K, T> {
    fn default() -> Self {
        SharedMap {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, T> SharedMap<K, T> {
    /// The entry of `key` while a store holds it, else a new one from `make`.
    pub fn get_or_make(&self, key: K, make: impl FnOnce() -> T) -> Arc<T> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = entries.get(&key).and_then(Weak::upgrade) {
            return entry;
        }
        // forget the entries whose stores have all gone since
        entries.retain(|_, e| e.strong_count() > 0);
        let entry = Arc::new(make());
        entries.insert(key, Arc::downgrade(&entry));
        entry
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_shared_while_held_and_made_anew_after() {
        let map: SharedMap<&str, u32> = SharedMap::default();
        let a = map.get_or_make("k", || 1);
        let b = map.get_or_make("k", || 2);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*map.get_or_make("other", || 3), 3);
        drop((a, b));
        assert_eq!(*map.get_or_make("k", || 4), 4);
    }
}
