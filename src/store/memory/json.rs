//! The in-memory engine with JSON payloads, for the shared engine suite
//! only (the product keeps payloads in JavaScript: `napi::memory`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use super::{Appended, Inner, MemoryEngine};
use crate::error::{Result, StoreError};
use crate::store::batch::event_json;
use crate::store::head::Head;
use crate::store::lease::{now_ms, Lease, LeaseClaim};
use crate::store::scratch::{open_on, Scratch, Unmigrated};
use crate::store::{Engine, EventBatch, EventColumns, EventRef, NewEvent, Tables, Wakeups};

/// The index of [`MemoryEngine`] and, by position, each event's timestamp
/// and JSON. Appends and reads hold `payloads` around the index's own
/// lock, so a read never sees a position whose payload is not there yet.
#[derive(Default)]
pub struct MemoryJsonEngine {
    index: MemoryEngine,
    payloads: Mutex<Vec<(i64, Box<str>)>>,
    leases: Mutex<BTreeMap<String, Lease>>,
}

impl MemoryJsonEngine {
    pub fn new() -> Self {
        Self::default()
    }

    fn payloads(&self) -> MutexGuard<'_, Vec<(i64, Box<str>)>> {
        self.payloads.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lease_map(&self) -> MutexGuard<'_, BTreeMap<String, Lease>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The events at `indexes`, as JSON columns (with their names unless
    /// they are of one aggregate).
    fn columns(&self, indexes: &[usize], names: bool) -> EventBatch {
        let payloads = self.payloads();
        let inner = self.index.lock();
        let bytes: usize = indexes.iter().map(|&i| payloads[i].1.len()).sum();
        let mut columns = EventColumns::new(indexes.len(), bytes, names);
        for &i in indexes {
            columns.push(&event_ref(&inner, &payloads, i));
        }
        columns.finish()
    }
}

fn event_ref<'a>(inner: &'a Inner, payloads: &'a [(i64, Box<str>)], index: usize) -> EventRef<'a> {
    let ev = &inner.events[index];
    EventRef {
        position: index as i64 + 1,
        version: Some(ev.version),
        stream: Some(&inner.streams[ev.stream as usize].name),
        aggregate_id: Some(&ev.aggregate_id),
        timestamp: Some(payloads[index].0),
        event: Some(&payloads[index].1),
    }
}

#[async_trait]
impl Engine for MemoryJsonEngine {
    fn name(&self) -> &'static str {
        "memory"
    }

    async fn migrate(&self, _tables: Tables) -> Result<()> {
        Ok(())
    }

    async fn close(&self) {}

    async fn append(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut payloads = self.payloads();
        match self
            .index
            .append_versions_sync(stream, aggregate_id, first_version, events.len())?
        {
            Appended::Stored { first_position } => {
                payloads.extend(events.iter().map(|e| (e.timestamp, Box::from(e.event))));
                Ok((first_position..first_position + events.len() as i64).collect())
            }
            Appended::Conflict { existing_version } => Err(StoreError::VersionConflict {
                stream: stream.to_string(),
                aggregate_id: aggregate_id.to_string(),
                detail: format!("version {existing_version} already exists"),
            }),
        }
    }

    async fn events_for(
        &self,
        stream: &str,
        aggregate_id: &str,
        after_position: Option<i64>,
    ) -> Result<EventBatch> {
        let indexes = self
            .index
            .lock()
            .indexes_for(stream, aggregate_id, after_position);
        Ok(self.columns(&indexes, false))
    }

    async fn events_from(
        &self,
        streams: &[String],
        after_position: i64,
        limit: Option<i64>,
    ) -> Result<EventBatch> {
        let indexes = self
            .index
            .lock()
            .indexes_from(streams, after_position, limit);
        Ok(self.columns(&indexes, true))
    }

    async fn last_event(
        &self,
        streams: &[String],
        aggregate_id: Option<&str>,
    ) -> Result<Option<String>> {
        let payloads = self.payloads();
        let inner = self.index.lock();
        Ok(inner
            .last_index(streams, aggregate_id)
            .map(|i| event_json(&event_ref(&inner, &payloads, i))))
    }

    async fn get_bookmark(&self, name: &str) -> Result<i64> {
        self.index.get_bookmark_sync(name)
    }

    async fn set_bookmark(&self, name: &str, position: i64) -> Result<()> {
        self.index.set_bookmark_sync(name, position)
    }

    async fn bookmarks(&self) -> Result<Vec<(String, i64)>> {
        let mut all: Vec<_> = self.index.lock().bookmarks.clone().into_iter().collect();
        all.sort();
        Ok(all)
    }

    async fn count_after(&self, streams: &[String], after_position: i64) -> Result<i64> {
        let inner = self.index.lock();
        let count = inner
            .events
            .iter()
            .enumerate()
            .skip(after_position.max(0) as usize)
            .filter(|(_, e)| {
                streams
                    .iter()
                    .any(|s| *s == *inner.streams[e.stream as usize].name)
            })
            .count();
        Ok(count as i64)
    }

    async fn leases(&self, name: Option<&str>) -> Result<Vec<Lease>> {
        let leases = self.lease_map();
        Ok(leases
            .values()
            .filter(|l| name.is_none_or(|n| n == l.name))
            .cloned()
            .collect())
    }

    async fn claim_lease(&self, claim: &LeaseClaim<'_>) -> Result<Option<i64>> {
        let mut leases = self.lease_map();
        let current = leases.get(claim.name).map(|l| (l.token, l.beat));
        if current != claim.seen {
            return Ok(None);
        }
        let lease = Lease {
            name: claim.name.to_string(),
            owner: claim.owner.to_string(),
            token: claim.next_token(),
            beat: claim.seen.map_or(1, |(_, beat)| beat + 1),
            renewed_at: now_ms(),
            ttl_ms: claim.ttl_ms,
            streams: claim.streams.to_string(),
        };
        leases.insert(lease.name.clone(), lease);
        Ok(Some(claim.next_token()))
    }

    async fn renew_lease(&self, name: &str, token: i64) -> Result<bool> {
        let mut leases = self.lease_map();
        match leases.get_mut(name) {
            Some(l) if l.token == token => {
                l.beat += 1;
                l.renewed_at = now_ms();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_lease(&self, name: &str, token: i64) -> Result<()> {
        let mut leases = self.lease_map();
        if let Some(l) = leases.get_mut(name).filter(|l| l.token == token) {
            l.owner.clear();
            l.beat += 1;
        }
        Ok(())
    }

    async fn set_bookmark_fenced(&self, name: &str, position: i64, token: i64) -> Result<bool> {
        // the lease map stays locked over the write: no claim between
        let leases = self.lease_map();
        if leases.get(name).is_none_or(|l| l.token != token) {
            return Ok(false);
        }
        self.index.set_bookmark_sync(name, position)?;
        Ok(true)
    }

    fn head(&self) -> &Arc<Head> {
        self.index.head()
    }

    fn wakeups(&self) -> Wakeups {
        Wakeups {
            notified: false,
            probe_every: None,
        }
    }

    async fn max_position(&self) -> Result<i64> {
        Ok(self.index.len() as i64)
    }
}

/// An empty store for the shared suite.
pub(crate) fn scratch() -> Scratch {
    Scratch {
        name: "memory",
        engine: Arc::new(MemoryJsonEngine::new()),
        // no database to share, no tables: a new empty store
        open_on: open_on(|_, _| async { Ok(MemoryJsonEngine::new()) }),
        unused: ("events".into(), "bookmarks".into()),
        unmigrated: Unmigrated::Works,
        finish: Box::pin(async {}),
    }
}
