//! Handler leases on MongoDB ([`crate::store::lease`]) without transactions
//! and without relying on a conditional update being atomic: FerretDB v1
//! (the test server) updates by read-modify-write with no condition, so a
//! compare-and-swap `updateOne({ name, token, beat }, ...)` could let two
//! claimers both win there. What every MongoDB-compatible server enforces is
//! a unique `_id`, so a change of hands is an insert.
//!
//! `<bookmarks>_leases` holds one document per (bookmark, token):
//!
//! ```text
//! { _id: "0000000000000000002:h", name: "h", owner: "b", token: 2, beat: 3,
//!   renewedAt: 1700000000000, ttlMs: 3000, streams: "[\"s\"]" }
//! ```
//!
//! * The lease of a bookmark is its document with the highest token.
//! * A claim inserts the next token's document; of two claims of one token
//!   the second meets the `_id` of the first and fails. A claim from a seen
//!   (token, beat) first reads the lease and inserts only when it still is
//!   what the claimer saw. After a claim the documents of older tokens are
//!   removed (best effort; only the newest ones matter).
//! * Renewals and releases update the owner's own document by `_id`; nobody
//!   else writes it, so no update can be lost to another writer.
//! * The bookmark document keeps the token it was written with
//!   (`leaseToken`); a fenced write checks the lease, then writes only over
//!   a bookmark written with the same token or a lower one.

use std::sync::atomic::Ordering;

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::error::Error;

use super::errors::duplicate_keys;
use super::positions::as_i64;
use super::read::{bookmark_position, in_streams, leave_out};
use super::MongoEngine;
use crate::error::{Result, StoreError};
use crate::store::lease::{now_ms, Lease, LeaseClaim};

/// The token a bookmark document was last written with by a fenced write.
const LEASE_TOKEN: &str = "leaseToken";

/// The `_id` of a bookmark's lease document with `token`: unique per
/// (token, name), whatever the name holds.
fn lease_id(name: &str, token: i64) -> String {
    format!("{token:019}:{name}")
}

fn is_duplicate(err: &Error) -> bool {
    !duplicate_keys(err).is_empty()
}

impl MongoEngine {
    /// The leases collection's index on (name, token), in `migrate()` and
    /// once per store before the first lease (a database migrated before
    /// leases existed, or by evtstore).
    pub(super) async fn create_lease_indexes(&self) -> Result<()> {
        self.ensure_index(
            &self.leases,
            "name-token-index",
            doc! { "name": 1, "token": 1 },
            true,
        )
        .await?;
        self.leases_ready.store(true, Ordering::Release);
        Ok(())
    }

    async fn ensure_leases(&self) -> Result<()> {
        if self.leases_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        self.create_lease_indexes().await
    }

    fn lease_of(&self, d: &Document) -> Result<Lease> {
        let int = |key: &str| d.get(key).and_then(as_i64);
        let text = |key: &str| d.get_str(key).ok().map(str::to_string);
        let read = || {
            Some(Lease {
                name: text("name")?,
                owner: text("owner")?,
                token: int("token")?,
                beat: int("beat")?,
                renewed_at: int("renewedAt")?,
                ttl_ms: int("ttlMs")?,
                streams: text("streams")?,
            })
        };
        read().ok_or_else(|| StoreError::Database {
            location: self.location.clone(),
            reason: format!(
                "a document of the leases collection {} is not a lease: {d}",
                self.leases.name()
            ),
        })
    }

    /// A bookmark's lease: its document with the highest token.
    async fn current_lease(&self, name: &str) -> Result<Option<Lease>> {
        let found = self
            .leases
            .find_one(doc! { "name": name })
            .sort(doc! { "token": -1 })
            .await
            .map_err(|e| self.db_error(e))?;
        found.map(|d| self.lease_of(&d)).transpose()
    }

    /// Whether a document of a higher token than `token` exists.
    async fn newer_lease(&self, name: &str, token: i64) -> Result<bool> {
        let found = self
            .leases
            .find_one(doc! { "name": name, "token": { "$gt": token } })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(found.is_some())
    }

    pub(super) async fn read_leases(&self, name: Option<&str>) -> Result<Vec<Lease>> {
        self.ensure_leases().await?;
        if let Some(name) = name {
            return Ok(self.current_lease(name).await?.into_iter().collect());
        }
        let docs: Vec<Document> = self
            .leases
            .find(doc! {})
            .await
            .map_err(|e| self.db_error(e))?
            .try_collect()
            .await
            .map_err(|e| self.db_error(e))?;
        let mut all = docs
            .iter()
            .map(|d| self.lease_of(d))
            .collect::<Result<Vec<Lease>>>()?;
        // by name, the highest token first; keep that one of each name
        all.sort_by(|a, b| a.name.cmp(&b.name).then(b.token.cmp(&a.token)));
        all.dedup_by(|later, first| later.name == first.name);
        Ok(all)
    }

    /// Inserts the document of the claimed token; the `_id` decides
    /// between claims of the same token.
    pub(super) async fn claim(&self, claim: &LeaseClaim<'_>) -> Result<Option<i64>> {
        self.ensure_leases().await?;
        let token = claim.next_token();
        let beat = match claim.seen {
            None => 1,
            Some((seen_token, seen_beat)) => {
                let held = self.current_lease(claim.name).await?;
                if held.map(|l| (l.token, l.beat)) != Some((seen_token, seen_beat)) {
                    return Ok(None);
                }
                seen_beat + 1
            }
        };
        let id = lease_id(claim.name, token);
        let inserted = self
            .leases
            .insert_one(doc! {
                "_id": &id,
                "name": claim.name,
                "owner": claim.owner,
                "token": token,
                "beat": beat,
                "renewedAt": now_ms(),
                "ttlMs": claim.ttl_ms,
                "streams": claim.streams,
            })
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => return Ok(None),
            Err(e) => return Err(self.db_error(e)),
        }
        // The token's document may have been inserted and removed again
        // (two changes of hands) while this claim waited between its read
        // and its insert: a newer token then holds the lease.
        if self.newer_lease(claim.name, token).await? {
            let _ = self.leases.delete_one(doc! { "_id": &id }).await;
            return Ok(None);
        }
        if let Some((seen_token, _)) = claim.seen {
            // housekeeping: the lease is the newest document; keep the one
            // just replaced (its owner learns it lost by renewing)
            let _ = self
                .leases
                .delete_many(doc! { "name": claim.name, "token": { "$lt": seen_token } })
                .await;
        }
        Ok(Some(token))
    }

    /// Raises the beat of the owner's own document; false when there is
    /// none or a newer token holds the lease (the beat written on the
    /// replaced document is then never read).
    pub(super) async fn renew(&self, name: &str, token: i64) -> Result<bool> {
        let done = self
            .leases
            .update_one(
                doc! { "_id": lease_id(name, token) },
                doc! { "$inc": { "beat": 1_i64 }, "$set": { "renewedAt": now_ms() } },
            )
            .await
            .map_err(|e| self.db_error(e))?;
        if done.matched_count == 0 {
            return Ok(false);
        }
        Ok(!self.newer_lease(name, token).await?)
    }

    /// Empties the owner and raises the beat of the owner's own document:
    /// a waiting instance sees the change and claims at once. On a document
    /// a newer token replaced it changes nothing anyone reads.
    pub(super) async fn release_held(&self, name: &str, token: i64) -> Result<()> {
        self.leases
            .update_one(
                doc! { "_id": lease_id(name, token) },
                doc! { "$set": { "owner": "" }, "$inc": { "beat": 1_i64 } },
            )
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    /// Writes the bookmark while the lease carries `token`.
    ///
    /// Without transactions the check of the lease and the write are two
    /// steps: an instance that loses its lease between them can still
    /// write once. That write is a position it handled itself, so at worst
    /// events are handled again, never skipped; and the new owner's writes,
    /// which carry a higher token, are not overwritten by a write that
    /// starts after them (`leaseToken` in the filter). On a server whose
    /// updates are not atomic (FerretDB v1) a stale write already under way
    /// can still land over the new owner's write once, with the same
    /// outcome: a re-handling, never a skip.
    pub(super) async fn bookmark_fenced(
        &self,
        name: &str,
        position: i64,
        token: i64,
    ) -> Result<bool> {
        self.ensure_leases().await?;
        match self.current_lease(name).await? {
            Some(lease) if lease.token == token => {}
            _ => return Ok(false),
        }
        if self.fenced_update(name, position, token).await? {
            return Ok(true);
        }
        // not matched: written under a newer token, or no bookmark yet
        let exists = self
            .bookmarks
            .find_one(doc! { "bookmark": name })
            .projection(doc! { "_id": 1 })
            .await
            .map_err(|e| self.db_error(e))?;
        if exists.is_some() {
            return Ok(false);
        }
        let inserted = self
            .bookmarks
            .insert_one(doc! { "bookmark": name, "position": position, LEASE_TOKEN: token })
            .await;
        match inserted {
            Ok(_) => Ok(true),
            // created meanwhile (the unique index on `bookmark`): write over
            // it if its token allows
            Err(e) if is_duplicate(&e) => self.fenced_update(name, position, token).await,
            Err(e) => Err(self.db_error(e)),
        }
    }

    /// Sets the bookmark unless a newer token wrote it; whether it did.
    async fn fenced_update(&self, name: &str, position: i64, token: i64) -> Result<bool> {
        let done = self
            .bookmarks
            .update_one(
                doc! {
                    "bookmark": name,
                    "$or": [
                        { LEASE_TOKEN: { "$exists": false } },
                        { LEASE_TOKEN: { "$lte": token } },
                    ],
                },
                doc! { "$set": { "position": position, LEASE_TOKEN: token } },
            )
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(done.matched_count > 0)
    }

    pub(super) async fn all_bookmarks(&self) -> Result<Vec<(String, i64)>> {
        let docs: Vec<Document> = self
            .bookmarks
            .find(doc! {})
            .projection(doc! { "_id": 0, "bookmark": 1, "position": 1 })
            .await
            .map_err(|e| self.db_error(e))?
            .try_collect()
            .await
            .map_err(|e| self.db_error(e))?;
        let mut all = Vec::with_capacity(docs.len());
        for d in &docs {
            // another program's document without a name is no bookmark
            let Ok(name) = d.get_str("bookmark") else {
                continue;
            };
            all.push((
                name.to_string(),
                bookmark_position(d, name, &self.location)?,
            ));
        }
        all.sort();
        Ok(all)
    }

    /// The events of `streams` after `after` that a handler can read now
    /// (as `events_from`: up to the settled frontier, abandoned ranges left
    /// out).
    pub(super) async fn count_events_after(&self, streams: &[String], after: i64) -> Result<i64> {
        let settled = self.settled().await?;
        if settled.frontier <= after || streams.is_empty() {
            return Ok(0);
        }
        let mut filter = doc! {
            "stream": in_streams(streams),
            "position": { "$gt": after, "$lte": settled.frontier },
        };
        leave_out(&mut filter, &settled.abandoned, after, settled.frontier);
        let n = self
            .events
            .count_documents(filter)
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::lease_id;

    #[test]
    fn lease_ids_are_unique_per_token_and_name() {
        assert_eq!(lease_id("h", 2), "0000000000000000002:h");
        assert_eq!(lease_id("h", i64::MAX), "9223372036854775807:h");
        // the token is the first 19 characters, whatever the name
        assert_ne!(lease_id("1:h", 2), lease_id("h", 21));
    }
}
