//! `migrate`: the unique indexes (evtstore's, by evtstore's names), an index
//! on `position` alone, evtstore's BSON Timestamp positions turned into
//! integers, and where readers start (`positions.rs`). Idempotent; never
//! drops anything.
//!
//! Converting keeps the order: the events with a Timestamp position get
//! `highest integer position + 1, + 2, ...` in Timestamp order, and a
//! bookmark at Timestamp T the integer of the last event at or before T.
//! Bookmarks go first and events one at a time in Timestamp order, so a
//! migrate that stopped half-way (a crash, a lost connection) gives the same
//! numbers when run again. The old Timestamp is kept in `evtstorePosition`
//! (the way back: docs/providers/mongo.md).

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document, Timestamp};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;

use super::append::{is_version_key, VERSION_INDEX};
use super::positions::as_i64;
use super::MongoEngine;
use crate::error::Result;
use crate::store::Tables;

/// Where `migrate` keeps a converted event's or bookmark's old position.
pub(super) const OLD_POSITION: &str = "evtstorePosition";

/// The index on `position` alone (ours: reads across many streams, and
/// removing an abandoned range, whatever its stream).
const POSITION_INDEX: &str = "position-index";

impl MongoEngine {
    pub(super) async fn migrate_collections(&self, tables: Tables) -> Result<()> {
        if tables.bookmarks {
            self.ensure_index(
                &self.bookmarks,
                "bookmark-index",
                doc! { "bookmark": 1 },
                true,
            )
            .await?;
            // the handler leases live beside the bookmarks
            self.create_lease_indexes().await?;
        }
        if tables.events {
            self.ensure_index(
                &self.events,
                "stream-position-index",
                doc! { "stream": 1, "position": 1 },
                true,
            )
            .await?;
            self.ensure_index(
                &self.events,
                VERSION_INDEX,
                doc! { "stream": 1, "aggregateId": 1, "version": 1 },
                true,
            )
            .await?;
            self.convert_timestamps(tables.bookmarks).await?;
            self.ensure_index(&self.events, POSITION_INDEX, doc! { "position": 1 }, false)
                .await?;
            self.ensure_index(
                &self.counter,
                "abandoned-index",
                doc! { "abandoned": 1 },
                false,
            )
            .await?;
            self.start_after_stored().await?;
        }
        Ok(())
    }

    /// Creates an index unless one on the same keys exists (under any name:
    /// MongoDB refuses a second one).
    pub(super) async fn ensure_index(
        &self,
        collection: &mongodb::Collection<Document>,
        name: &str,
        keys: Document,
        unique: bool,
    ) -> Result<()> {
        let existing: Vec<Document> = self
            .index_models(collection)
            .await?
            .into_iter()
            .map(|m| m.keys)
            .collect();
        if existing.iter().any(|k| same_keys(k, &keys)) {
            return Ok(());
        }
        let options = IndexOptions::builder()
            .name(name.to_string())
            .unique(unique.then_some(true))
            .build();
        collection
            .create_index(IndexModel::builder().keys(keys).options(options).build())
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    /// The indexes of a collection (none when it does not exist yet).
    async fn index_models(
        &self,
        collection: &mongodb::Collection<Document>,
    ) -> Result<Vec<IndexModel>> {
        let list = match collection.list_indexes().await {
            Ok(cursor) => cursor.try_collect::<Vec<IndexModel>>().await,
            Err(e) => Err(e),
        };
        match list {
            Ok(models) => Ok(models),
            // NamespaceNotFound
            Err(e) if matches!(*e.kind, mongodb::error::ErrorKind::Command(ref c) if c.code == 26) => {
                Ok(Vec::new())
            }
            Err(e) => Err(self.db_error(e)),
        }
    }

    /// The indexes of the events collection: name, key names, unique.
    pub(super) async fn index_keys(&self) -> Result<Vec<(String, Vec<String>, bool)>> {
        Ok(self
            .index_models(&self.events)
            .await?
            .into_iter()
            .map(|m| {
                let options = m.options.unwrap_or_default();
                (
                    options.name.unwrap_or_default(),
                    m.keys.keys().cloned().collect(),
                    options.unique == Some(true),
                )
            })
            .collect())
    }

    /// Whether `migrate()` ran: the version index and ours on position.
    pub(super) async fn has_migrated_indexes(&self) -> Result<bool> {
        let indexes = self.index_keys().await?;
        let version = indexes.iter().any(|(_, k, u)| *u && is_version_key(k));
        let position = indexes.iter().any(|(_, k, _)| k == &["position"]);
        Ok(version && position)
    }

    /// The highest integer position stored (0 when none).
    pub(super) async fn highest_stored_position(&self) -> Result<i64> {
        let found = self
            .events
            .find_one(doc! { "position": { "$type": ["int", "long", "double"] } })
            .sort(doc! { "position": -1 })
            .projection(doc! { "position": 1, "_id": 0 })
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(found
            .as_ref()
            .and_then(|d| d.get("position"))
            .and_then(as_i64)
            .unwrap_or(0))
    }

    async fn convert_timestamps(&self, bookmarks_too: bool) -> Result<()> {
        let old: Vec<(Bson, Timestamp)> = self
            .events
            .find(doc! { "position": { "$type": "timestamp" } })
            .sort(doc! { "position": 1 })
            .projection(doc! { "position": 1 })
            .await
            .map_err(|e| self.db_error(e))?
            .try_collect::<Vec<Document>>()
            .await
            .map_err(|e| self.db_error(e))?
            .into_iter()
            .filter_map(|d| Some((d.get("_id")?.clone(), d.get_timestamp("position").ok()?)))
            .collect();
        let base = self.highest_stored_position().await?;
        if bookmarks_too {
            self.convert_bookmarks(base, &old).await?;
        }
        for (rank, (id, ts)) in old.iter().enumerate() {
            self.events
                // by `_id` alone: the one filter FerretDB v1 does not scan for
                .update_one(
                    doc! { "_id": id.clone() },
                    doc! { "$set": { "position": base + rank as i64 + 1, OLD_POSITION: *ts } },
                )
                .await
                .map_err(|e| self.db_error(e))?;
        }
        Ok(())
    }

    /// A bookmark at Timestamp T: the integer of the last event at or
    /// before T (events are `old`, sorted).
    async fn convert_bookmarks(&self, base: i64, old: &[(Bson, Timestamp)]) -> Result<()> {
        let marks: Vec<Document> = self
            .bookmarks
            .find(doc! { "position": { "$type": "timestamp" } })
            .await
            .map_err(|e| self.db_error(e))?
            .try_collect()
            .await
            .map_err(|e| self.db_error(e))?;
        for mark in marks {
            let (Some(id), Ok(ts)) = (mark.get("_id"), mark.get_timestamp("position")) else {
                continue;
            };
            let at_or_before =
                old.partition_point(|(_, t)| (t.time, t.increment) <= (ts.time, ts.increment));
            self.bookmarks
                .update_one(
                    doc! { "_id": id.clone() },
                    doc! { "$set": { "position": base + at_or_before as i64, OLD_POSITION: ts } },
                )
                .await
                .map_err(|e| self.db_error(e))?;
        }
        Ok(())
    }
}

fn same_keys(a: &Document, b: &Document) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b.iter())
            .all(|((ka, va), (kb, vb))| ka == kb && as_i64(va) == as_i64(vb))
}
