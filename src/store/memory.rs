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

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{approx_len, EventRef, EventStore, JsonArray, NewEvent};
use crate::error::{Result, StoreError};
use crate::notify::Head;

struct MemEvent {
    version: i64,
    stream: u32,
    aggregate_id: Arc<str>,
    timestamp: i64,
    event: Box<str>,
}

#[derive(Default)]
struct Aggregate {
    /// Indexes into `events`, sorted by version.
    by_version: Vec<usize>,
    /// Index of the event with the highest position.
    last: usize,
}

struct Stream {
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
    fn event_ref(&self, index: usize) -> EventRef<'_> {
        let ev = &self.events[index];
        EventRef {
            position: index as i64 + 1,
            version: Some(ev.version),
            stream: Some(&self.streams[ev.stream as usize].name),
            aggregate_id: Some(&ev.aggregate_id),
            timestamp: Some(ev.timestamp),
            event: Some(&ev.event),
        }
    }

    fn push_json(&self, arr: &mut JsonArray, index: usize) {
        arr.push(&self.event_ref(index));
    }

    fn approx(&self, index: usize) -> usize {
        let ev = &self.events[index];
        approx_len(
            &self.streams[ev.stream as usize].name,
            &ev.aggregate_id,
            &ev.event,
        )
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

    pub fn append_sync(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let last_version = first_version + events.len() as i64 - 1;
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
                    return Err(StoreError::VersionConflict {
                        stream: stream.to_string(),
                        aggregate_id: aggregate_id.to_string(),
                        detail: format!("version {existing} already exists"),
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
        inner.events.reserve(events.len());
        for (i, ev) in events.iter().enumerate() {
            inner.events.push(MemEvent {
                version: first_version + i as i64,
                stream: sid,
                aggregate_id: agg_key.clone(),
                timestamp: ev.timestamp,
                event: Box::from(ev.event),
            });
        }
        let new_indexes = base..base + events.len();

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
            agg.by_version.extend(new_indexes.clone());
        } else {
            agg.by_version.splice(at..at, new_indexes.clone());
        }
        agg.last = base + events.len() - 1;

        let positions: Vec<i64> = new_indexes.map(|i| i as i64 + 1).collect();
        let last_position = (base + events.len()) as i64;
        drop(guard);
        self.head.publish(last_position);
        Ok(positions)
    }

    pub fn events_for_sync(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Result<String> {
        let inner = self.lock();
        let Some(agg) = inner
            .stream(stream)
            .and_then(|s| s.aggregates.get(aggregate_id))
        else {
            return Ok("[]".to_string());
        };
        let after = after_position.unwrap_or(i64::MIN);
        let size: usize = agg.by_version.iter().map(|&i| inner.approx(i)).sum();
        let mut arr = JsonArray::with_capacity(size);
        for &i in &agg.by_version {
            if i as i64 + 1 > after {
                inner.push_json(&mut arr, i);
            }
        }
        Ok(arr.finish())
    }

    pub fn events_from_sync(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Result<String> {
        let inner = self.lock();
        let limit = limit.map_or(usize::MAX, |l| l.max(0) as usize);
        // Index of the first event with position > after.
        let start = after_position.clamp(0, inner.events.len() as i64) as usize;

        // One cursor per named stream that exists, at its first event past
        // `start`.
        let mut ids: Vec<u32> = streams
            .iter()
            .filter_map(|name| inner.stream_ids.get(name.as_str()).copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut cursors: Vec<&[usize]> = ids
            .iter()
            .map(|&id| &inner.streams[id as usize])
            .map(|s| {
                let at = s.events.partition_point(|&i| i < start);
                &s.events[at..]
            })
            .filter(|rest| !rest.is_empty())
            .collect();

        let mut arr = JsonArray::with_capacity(256);
        let mut count = 0usize;
        if cursors.len() == 1 {
            for &i in cursors[0].iter().take(limit) {
                inner.push_json(&mut arr, i);
            }
            return Ok(arr.finish());
        }
        while count < limit {
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
            let i = cursors[b][0];
            cursors[b] = &cursors[b][1..];
            inner.push_json(&mut arr, i);
            count += 1;
        }
        Ok(arr.finish())
    }

    pub fn last_event_sync(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>> {
        let inner = self.lock();
        let mut best: Option<usize> = None;
        for s in streams.iter().filter_map(|name| inner.stream(name)) {
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
        Ok(best.map(|i| {
            let mut out = String::with_capacity(inner.approx(i));
            super::write_event(&mut out, &inner.event_ref(i));
            out
        }))
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

#[async_trait]
impl EventStore for MemoryEngine {
    async fn append(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        self.append_sync(stream, aggregate_id, first_version, events)
    }

    async fn events_for(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Result<String> {
        self.events_for_sync(stream, aggregate_id, after_position)
    }

    async fn events_from(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Result<String> {
        self.events_from_sync(streams, after_position, limit)
    }

    async fn last_event(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>> {
        self.last_event_sync(streams, aggregate_id)
    }

    async fn get_bookmark(&self, name: &str) -> Result<i64> {
        self.get_bookmark_sync(name)
    }

    async fn set_bookmark(&self, name: &str, position: i64) -> Result<()> {
        self.set_bookmark_sync(name, position)
    }
}
