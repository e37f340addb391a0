//! In-memory engine. Every operation costs in proportion to what it touches
//! (the events it returns, the streams it names, the events of one
//! aggregate), never to the number of events in the store:
//!
//! - `events`: every event in position order (position = index + 1);
//! - per stream: the indexes of its events (ascending), so reading one
//!   stream among many is a binary search plus a walk over that stream only;
//!   several streams are merged by position;
//! - per (stream, aggregate id): the indexes of its events in version order
//!   plus the index of its latest one, for `events_for`, `last_event` by
//!   aggregate and the version check.
//!
//! Everything sits behind one mutex, so the version check and the insert of
//! an append are one atomic step.
//!
//! The napi `MemoryStore` uses it without payloads (`append_versions_sync`,
//! `positions_*`): they stay JavaScript objects on the JS side, and a read
//! is a lookup there. Tests run the shared engine suite on it through
//! `json::MemoryJsonEngine`, which keeps JSON payloads beside the index.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::error::{Result, StoreError};
use crate::store::head::Head;

#[cfg(test)]
pub mod json;

struct MemEvent {
    version: i64,
    #[cfg(test)] // read by the JSON engine of the tests only
    stream: u32,
    #[cfg(test)] // read by the JSON engine of the tests only
    aggregate_id: Arc<str>,
}

/// What an index-only append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored at positions first_position, first_position + 1, ...
    Stored { first_position: i64 },
    /// Nothing stored: this version of the aggregate exists already.
    Conflict { existing_version: i64 },
}

#[derive(Default)]
struct Aggregate {
    /// Indexes into `events`, sorted by version.
    by_version: Vec<usize>,
    /// Index of the event with the highest position.
    last: usize,
}

struct Stream {
    #[cfg(test)] // read by the JSON engine of the tests only
    name: Arc<str>,
    /// Indexes into `events`, ascending.
    events: Vec<usize>,
    aggregates: HashMap<Arc<str>, Aggregate>,
}

#[derive(Default)]
struct Inner {
    events: Vec<MemEvent>,
    streams: Vec<Stream>,
    stream_ids: HashMap<Arc<str>, u32>,
    bookmarks: HashMap<String, i64>,
}

impl Inner {
    /// Indexes of one aggregate's events in version order, only those with
    /// a position above `after_position` when given.
    fn indexes_for(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Vec<usize> {
        let Some(agg) = self
            .stream(stream)
            .and_then(|s| s.aggregates.get(aggregate_id))
        else {
            return Vec::new();
        };
        match after_position {
            None => agg.by_version.clone(),
            Some(after) => agg
                .by_version
                .iter()
                .copied()
                .filter(|&i| i as i64 + 1 > after)
                .collect(),
        }
    }

    /// Indexes of the events of `streams` with a position above
    /// `after_position`, in position order, at most `limit`.
    fn indexes_from(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Vec<usize> {
        let limit = limit.map_or(usize::MAX, |l| l.max(0) as usize);
        // Index of the first event with position > after.
        let start = after_position.clamp(0, self.events.len() as i64) as usize;

        // One cursor per named stream that exists, at its first event past
        // `start`.
        let mut ids: Vec<u32> = streams
            .iter()
            .filter_map(|name| self.stream_ids.get(name.as_str()).copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut cursors: Vec<&[usize]> = ids
            .iter()
            .map(|&id| &self.streams[id as usize])
            .map(|s| {
                let at = s.events.partition_point(|&i| i < start);
                &s.events[at..]
            })
            .filter(|rest| !rest.is_empty())
            .collect();

        if cursors.len() == 1 {
            return cursors[0].iter().take(limit).copied().collect();
        }
        let mut out = Vec::new();
        while out.len() < limit {
            // Pick the cursor whose next event has the lowest position. The
            // number of streams is small, so a linear pick beats a heap.
            let mut best: Option<usize> = None;
            for (c, rest) in cursors.iter().enumerate() {
                if let Some(&i) = rest.first() {
                    if best.is_none_or(|b| i < cursors[b][0]) {
                        best = Some(c);
                    }
                }
            }
            let Some(b) = best else { break };
            out.push(cursors[b][0]);
            cursors[b] = &cursors[b][1..];
        }
        out
    }

    /// Index of the event with the highest position in `streams` (of that
    /// aggregate when given).
    fn last_index(&self, streams: &[String], aggregate_id: Option<&str>) -> Option<usize> {
        let mut best: Option<usize> = None;
        for s in streams.iter().filter_map(|name| self.stream(name)) {
            let last = match aggregate_id {
                Some(id) => s.aggregates.get(id).map(|a| a.last),
                None => s.events.last().copied(),
            };
            if let Some(i) = last {
                if best.is_none_or(|b| i > b) {
                    best = Some(i);
                }
            }
        }
        best
    }

    fn stream(&self, name: &str) -> Option<&Stream> {
        self.stream_ids
            .get(name)
            .map(|id| &self.streams[*id as usize])
    }

    fn stream_id_or_insert(&mut self, name: &str) -> u32 {
        if let Some(id) = self.stream_ids.get(name) {
            return *id;
        }
        let id = self.streams.len() as u32;
        let name: Arc<str> = Arc::from(name);
        self.streams.push(Stream {
            #[cfg(test)] // read by the JSON engine of the tests only
            name: name.clone(),
            events: Vec::new(),
            aggregates: HashMap::new(),
        });
        self.stream_ids.insert(name, id);
        id
    }
}

/// The in-memory store. All methods are synchronous; the `EventStore` trait
/// impl simply calls them.
pub struct MemoryEngine {
    inner: Mutex<Inner>,
    head: Arc<Head>,
}

impl Default for MemoryEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryEngine {
    pub fn new() -> Self {
        MemoryEngine {
            inner: Mutex::new(Inner::default()),
            head: Arc::new(Head::new()),
        }
    }

    /// The head position of this store (shared with its waiters).
    pub fn head(&self) -> &Arc<Head> {
        &self.head
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock, but never let a poisoned
        // lock turn into a panic of ours.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `count` events of one aggregate by their versions only (the
    /// napi store keeps the payloads on the JavaScript side, by position).
    /// A conflict is an outcome, not an error: the caller builds the one
    /// error the user sees.
    pub fn append_versions_sync(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        count: usize,
    ) -> Result<Appended> {
        if count == 0 {
            return Ok(Appended::Stored {
                first_position: self.lock().events.len() as i64 + 1,
            });
        }
        self.insert(stream, aggregate_id, first_version, count)
    }

    /// The version check and the insert, under one lock.
    fn insert(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        count: usize,
    ) -> Result<Appended> {
        let last_version = first_version + count as i64 - 1;
        let mut guard = self.lock();
        let inner = &mut *guard;

        // Version check: any existing version in [first, last] is a conflict.
        if let Some(agg) = inner
            .stream(stream)
            .and_then(|s| s.aggregates.get(aggregate_id))
        {
            let at = agg
                .by_version
                .partition_point(|&i| inner.events[i].version < first_version);
            if let Some(&i) = agg.by_version.get(at) {
                let existing = inner.events[i].version;
                if existing <= last_version {
                    return Ok(Appended::Conflict {
                        existing_version: existing,
                    });
                }
            }
        }

        let sid = inner.stream_id_or_insert(stream);
        let base = inner.events.len();
        let agg_key: Arc<str> = match inner.streams[sid as usize]
            .aggregates
            .get_key_value(aggregate_id)
        {
            Some((k, _)) => k.clone(),
            None => Arc::from(aggregate_id),
        };
        // A count the memory cannot hold is an error, not an abort of Node.
        inner.events.try_reserve(count).map_err(|_| {
            StoreError::invalid_argument(format!(
                "cannot store {count} events in one append: not enough memory"
            ))
        })?;
        for i in 0..count {
            inner.events.push(MemEvent {
                version: first_version + i as i64,
                #[cfg(test)] // read by the JSON engine of the tests only
                stream: sid,
                #[cfg(test)] // read by the JSON engine of the tests only
                aggregate_id: agg_key.clone(),
            });
        }
        let new_indexes = base..base + count;

        // Index by version: usually the new versions come after every stored
        // one; otherwise (a gap was filled) insert them at their place.
        let Inner {
            events: all,
            streams,
            ..
        } = inner;
        let s = &mut streams[sid as usize];
        s.events.extend(new_indexes.clone());
        let agg = s.aggregates.entry(agg_key).or_default();
        let at = agg
            .by_version
            .partition_point(|&i| all[i].version < first_version);
        if at == agg.by_version.len() {
            agg.by_version.extend(new_indexes);
        } else {
            agg.by_version.splice(at..at, new_indexes);
        }
        agg.last = base + count - 1;

        let last_position = (base + count) as i64;
        drop(guard);
        self.head.publish(last_position);
        Ok(Appended::Stored {
            first_position: base as i64 + 1,
        })
    }

    /// Positions of the aggregate's events in version order (after
    /// `after_position` when given).
    pub fn positions_for_sync(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Vec<f64> {
        let inner = self.lock();
        let indexes = inner.indexes_for(stream, aggregate_id, after_position);
        indexes.into_iter().map(|i| (i + 1) as f64).collect()
    }

    /// Positions of the events of `streams` after `after_position`, in
    /// position order, at most `limit`.
    pub fn positions_from_sync(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Vec<f64> {
        let inner = self.lock();
        let indexes = inner.indexes_from(streams, after_position, limit);
        indexes.into_iter().map(|i| (i + 1) as f64).collect()
    }

    /// Position of the last event of `streams` (of that aggregate when
    /// given), 0 when there is none.
    pub fn last_position_sync(&self, streams: &[String], aggregate_id: Option<&str>) -> i64 {
        let inner = self.lock();
        inner
            .last_index(streams, aggregate_id)
            .map_or(0, |i| i as i64 + 1)
    }

    pub fn get_bookmark_sync(&self, name: &str) -> Result<i64> {
        Ok(self.lock().bookmarks.get(name).copied().unwrap_or(0))
    }

    pub fn set_bookmark_sync(&self, name: &str, position: i64) -> Result<()> {
        let mut inner = self.lock();
        match inner.bookmarks.get_mut(name) {
            Some(p) => *p = position,
            None => {
                inner.bookmarks.insert(name.to_string(), position);
            }
        }
        Ok(())
    }

    /// Number of stored events.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod index_only_tests {
    //! The napi store's index-only methods (payloads kept in JS).
    use super::{Appended, MemoryEngine};

    fn streams(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn appends_return_consecutive_first_positions_and_a_conflict_stores_nothing() {
        let store = MemoryEngine::new();
        assert_eq!(
            store.append_versions_sync("s", "a", 1, 2).expect("append"),
            Appended::Stored { first_position: 1 }
        );
        assert_eq!(
            store.append_versions_sync("t", "b", 1, 1).expect("append"),
            Appended::Stored { first_position: 3 }
        );
        // versions 2..3 overlap the stored version 2
        assert_eq!(
            store.append_versions_sync("s", "a", 2, 2).expect("append"),
            Appended::Conflict {
                existing_version: 2
            }
        );
        assert_eq!(store.len(), 3);
        assert_eq!(store.head().get(), 3);
        assert_eq!(
            store.append_versions_sync("s", "a", 3, 1).expect("append"),
            Appended::Stored { first_position: 4 }
        );
    }

    #[test]
    fn positions_follow_versions_streams_and_limits() {
        let store = MemoryEngine::new();
        store.append_versions_sync("s", "a", 1, 2).expect("append"); // 1, 2
        store.append_versions_sync("t", "b", 1, 1).expect("append"); // 3
        store.append_versions_sync("s", "c", 1, 1).expect("append"); // 4
        store.append_versions_sync("s", "a", 3, 1).expect("append"); // 5

        assert_eq!(
            store.positions_for_sync("s", "a", None),
            vec![1.0, 2.0, 5.0]
        );
        assert_eq!(store.positions_for_sync("s", "a", Some(2)), vec![5.0]);
        assert!(store.positions_for_sync("s", "zz", None).is_empty());

        assert_eq!(
            store.positions_from_sync(&streams(&["s", "t"]), 0, None),
            vec![1.0, 2.0, 3.0, 4.0, 5.0]
        );
        assert_eq!(
            store.positions_from_sync(&streams(&["s"]), 2, Some(1)),
            vec![4.0]
        );
        assert_eq!(
            store.positions_from_sync(&streams(&["t", "s"]), 1, Some(2)),
            vec![2.0, 3.0]
        );

        assert_eq!(store.last_position_sync(&streams(&["s"]), None), 5);
        assert_eq!(store.last_position_sync(&streams(&["s"]), Some("c")), 4);
        assert_eq!(store.last_position_sync(&streams(&["t", "x"]), None), 3);
        assert_eq!(store.last_position_sync(&streams(&["x"]), None), 0);
    }
}
