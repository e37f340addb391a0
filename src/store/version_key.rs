//! Which unique index is the version check. Only a duplicate on a unique
//! index over (stream, aggregate id, version), whatever its name and
//! column order, is a version conflict; any other duplicate is a
//! constraint violation. The engines ask their catalog once per index.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

/// What the catalog said of each index asked about: whether it is the
/// version check.
#[derive(Default)]
pub struct VersionIndexes {
    known: Mutex<HashMap<String, bool>>,
}

impl VersionIndexes {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, bool>> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What was found of the index `name` before, if it was asked about.
    pub fn known(&self, name: &str) -> Option<bool> {
        self.lock().get(name).copied()
    }

    /// Remembers whether the index `name` is the version check; returns
    /// that.
    pub fn remember(&self, name: &str, is_version: bool) -> bool {
        self.lock().insert(name.to_string(), is_version);
        is_version
    }
}

/// Whether an index's columns (or keys), in any order, are `stream`, the
/// aggregate id's (`aggregate_id`; MongoDB's `aggregateId`) and `version`.
pub fn is_version_key(columns: &[String], aggregate_id: &str) -> bool {
    let mut columns: Vec<&str> = columns.iter().map(String::as_str).collect();
    columns.sort_unstable();
    let mut key = [aggregate_id, "stream", "version"];
    key.sort_unstable();
    columns == key
}

/// The guess from an index's name when its columns cannot be asked.
pub fn named_like_version_index(name: &str) -> bool {
    name.contains("aggregate") && name.contains("version")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_the_version_key_in_any_order() {
        let cols = |c: &[&str]| c.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_version_key(
            &cols(&["version", "stream", "aggregate_id"]),
            "aggregate_id"
        ));
        assert!(is_version_key(
            &cols(&["stream", "aggregateId", "version"]),
            "aggregateId"
        ));
        assert!(!is_version_key(
            &cols(&["stream", "position"]),
            "aggregate_id"
        ));
        assert!(!is_version_key(
            &cols(&["stream", "aggregate_id", "version", "event"]),
            "aggregate_id"
        ));
        let known = VersionIndexes::default();
        assert_eq!(known.known("i"), None);
        assert!(known.remember("i", true));
        assert_eq!(known.known("i"), Some(true));
        assert!(named_like_version_index(
            "events_stream_aggregate_id_version_unique"
        ));
    }
}
