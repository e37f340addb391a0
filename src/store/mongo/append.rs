//! An append: positions claimed, one ordered `insertMany` of consecutive
//! versions, the claim ended (`positions.rs`).
//!
//! All or none without a transaction: an ordered insert stops at the first
//! failing document, so when the server refuses one (a duplicate version,
//! or anything else) the documents before it were stored. The writer
//! deletes them by their positions, which no other writer has, before it
//! clears its mark and reports the error; handlers read only below ranges
//! in flight, so they never see them. When the outcome is unknown (the
//! connection broke during the insert) the range is left in flight: a
//! reader abandons it after the bound and deletes whatever of it landed.

use std::sync::atomic::Ordering;

use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use mongodb::error::Error;

use super::errors::{duplicate_keys, index_named, outcome_known};
use super::json::event_document;
use super::positions::End;
use super::MongoEngine;
use crate::error::{Result, StoreError};
use crate::store::NewEvent;

/// The name evtstore's migrate gives the version index (ours too).
pub(super) const VERSION_INDEX: &str = "stream-id-version-index";

impl MongoEngine {
    pub(super) async fn append_events(
        &self,
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<i64>> {
        self.check_migrated().await?;
        let payloads = events
            .iter()
            .map(|e| event_document(e.event))
            .collect::<Result<Vec<Document>>>()?;
        let n = events.len() as i64;
        for (i, doc) in payloads.iter().enumerate() {
            check_size(
                i,
                events[i].event.len(),
                doc,
                stream.len() + aggregate_id.len() + 256,
            )?;
        }
        let (from, to) = self.take_positions(n).await?;
        let docs: Vec<Document> = events
            .iter()
            .zip(payloads)
            .enumerate()
            .map(|(i, (e, payload))| {
                doc! {
                    "_id": ObjectId::new(),
                    "stream": stream,
                    "aggregateId": aggregate_id,
                    "version": first_version + i as i64,
                    "position": from + i as i64,
                    "timestamp": DateTime::from_millis(e.timestamp),
                    "event": payload,
                }
            })
            .collect();
        let inserted = self.events.insert_many(&docs).ordered(true).await;
        let last_version = first_version + n - 1;
        match inserted {
            Ok(_) => match self
                .end_positions(from, to)
                .await
                .map_err(|e| self.end_unknown(e))?
            {
                End::Done => Ok((from..=to).collect()),
                // a reader gave the range up while we inserted
                End::Abandoned => {
                    self.remove_range(stream, from, to).await?;
                    Err(self.abandoned_error())
                }
            },
            Err(e) if outcome_known(&e) => {
                let error = self
                    .append_error(&e, stream, aggregate_id, first_version, last_version, (from, to))
                    .await;
                // nothing of it is left, so the range ends (as done: no
                // event of it will ever be read)
                self.remove_range(stream, from, to).await?;
                self.end_positions(from, to).await?;
                Err(error)
            }
            Err(e) => Err(StoreError::ConnectionLost {
                location: self.location.clone(),
                reason: format!(
                    "{}; the append's outcome is unknown, so its positions stay marked in flight: handlers give them up after abandonAfterMs ({} ms) and remove whatever of it was stored, so it will not be read; retry the command",
                    self.db_error(e),
                    self.abandon_after().as_millis()
                ),
            }),
        }
    }

    /// The events were inserted but their end could not be: if the server
    /// did record it they stay, otherwise a reader gives them up after the
    /// bound.
    fn end_unknown(&self, err: StoreError) -> StoreError {
        match err {
            StoreError::ConnectionLost { location, reason }
            | StoreError::CannotConnect {
                server: location,
                reason,
                ..
            } => StoreError::ConnectionLost {
                location,
                reason: format!(
                    "{reason}; the events were inserted but ending their claim failed: they are kept if the server recorded the end, else handlers give them up after abandonAfterMs ({} ms); reload the aggregate before retrying the command",
                    self.abandon_after().as_millis()
                ),
            },
            other => other,
        }
    }

    /// Deletes what an append inserted of its range (its positions are its
    /// own; the stream keeps the delete on the (stream, position) index).
    async fn remove_range(&self, stream: &str, from: i64, to: i64) -> Result<()> {
        self.events
            .delete_many(doc! { "stream": stream, "position": { "$gte": from, "$lte": to } })
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    /// A duplicate key on (stream, aggregateId, version) is a version
    /// conflict; any other refusal is told as what it is.
    async fn append_error(
        &self,
        err: &Error,
        stream: &str,
        aggregate_id: &str,
        first: i64,
        last: i64,
        (from, to): (i64, i64),
    ) -> StoreError {
        let duplicates = duplicate_keys(err);
        let Some((_, message)) = duplicates.first() else {
            return self.db_error(err.clone());
        };
        let is_version = match index_named(message) {
            Some(index) => self.is_version_index(index).await,
            // the server does not say which index (FerretDB): look for the
            // version stored by someone else
            None => self
                .events
                .find_one(doc! {
                    "stream": stream,
                    "aggregateId": aggregate_id,
                    "version": { "$gte": first, "$lte": last },
                    "$or": [ { "position": { "$lt": from } }, { "position": { "$gt": to } } ],
                })
                .await
                .is_ok_and(|found| found.is_some()),
        };
        if is_version {
            return StoreError::version_conflict(stream, aggregate_id, first, last);
        }
        self.db_error(err.clone())
    }

    /// Whether the named index is a unique one over stream, aggregateId and
    /// version (asked once per name).
    async fn is_version_index(&self, name: &str) -> bool {
        if let Some(known) = self.version_indexes.known(name) {
            return known;
        }
        let Ok(indexes) = self.index_keys().await else {
            return name == VERSION_INDEX;
        };
        let yes = indexes
            .iter()
            .any(|(n, keys, unique)| n == name && *unique && is_version_key(keys));
        self.version_indexes.remember(name, yes)
    }

    /// Refuses to append before `migrate()` ran: without the version index
    /// nothing would stop two writers storing the same version, and
    /// evtstore's Timestamp positions would not be read.
    async fn check_migrated(&self) -> Result<()> {
        if self.migrated.load(Ordering::Relaxed) {
            return Ok(());
        }
        if self.has_migrated_indexes().await? {
            self.migrated.store(true, Ordering::Relaxed);
            return Ok(());
        }
        Err(StoreError::MissingTable {
            table: format!("{}\" or its index \"{VERSION_INDEX}", self.events_name),
            location: self.location.clone(),
        })
    }
}

/// The keys of a version index, in any order.
pub(super) fn is_version_key(keys: &[String]) -> bool {
    crate::store::version_key::is_version_key(keys, "aggregateId")
}

/// The largest document MongoDB stores.
const MAX_DOCUMENT: usize = 16 * 1024 * 1024;

/// Refuses an event MongoDB could not store (measured in BSON only when its
/// JSON is big enough for that to be possible), before any position is
/// claimed.
fn check_size(index: usize, json_len: usize, doc: &Document, around: usize) -> Result<()> {
    if json_len < MAX_DOCUMENT / 4 {
        return Ok(());
    }
    let bytes = mongodb::bson::to_vec(doc)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if bytes.saturating_add(around) > MAX_DOCUMENT {
        return Err(StoreError::invalid_event(format!(
            "event at index {index} is {bytes} bytes as BSON: MongoDB stores at most 16 MiB (16777216 bytes) per document, with the event's stream, id and numbers"
        )));
    }
    Ok(())
}
