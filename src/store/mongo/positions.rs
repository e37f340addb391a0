//! Positions without transactions, and without relying on any update being
//! atomic: only on a unique `_id`, which every MongoDB-compatible server
//! enforces (FerretDB v1, the test server, loses concurrent updates of one
//! document, `$inc` included: 200 concurrent `$inc`s left 10, measured).
//!
//! `<events>_positions` holds small documents whose `_id` says what they are
//! (string `_id`s: the one lookup even FerretDB v1 answers from an index;
//! every other filter there is a scan of the collection):
//!
//! ```text
//! { _id: "c:41", to: 43 }                    claim: positions 41..43 are taken
//! { _id: "e:41", to: 43 }                    end: the write of 41..43 finished
//! { _id: "e:44", to: 44, abandoned: true }   end: a reader gave 44 up
//! { _id: "checkpoint", frontier: 40 }        where a new reader starts
//! { _id: "next", next: 45 }                  where a new writer starts looking
//! ```
//!
//! * A writer claims the next range with one insert: `c:<first>`, the first
//!   position after the last claim it knows of. Claims are contiguous, so a
//!   writer that is behind clashes on `_id`, looks that claim up and tries
//!   right after it. It inserts its events, then the end `e:<first>`.
//! * A reader walks from its frontier by lookups: `e:<frontier + 1>` found
//!   means that claim is settled (its `to` is the next frontier); not found,
//!   `c:<frontier + 1>` says whether a write is in flight there. The settled
//!   frontier is where the walk stops. Handlers read only up to it, so an
//!   event committed later at a lower position cannot be skipped.
//! * A claim without an end for longer than `abandon_after` (timed from
//!   when this process first saw it, so other machines' clocks do not
//!   matter) belonged to a writer that died or stalled: the reader inserts
//!   its end as abandoned. Writer and reader race for that one `_id`, so
//!   exactly one of them decides. Reads leave abandoned ranges out, so a
//!   stalled writer's insert that lands later is never read; that writer
//!   finds the end taken, deletes its events and fails with `TIMEOUT`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};

use super::errors::DUPLICATE_KEY;
use super::MongoEngine;
use crate::error::{Result, StoreError};

/// The `_id` of the checkpoint document.
const CHECKPOINT: &str = "checkpoint";
/// A reader moves the checkpoint after walking this many positions.
const CHECKPOINT_EVERY: i64 = 1000;
/// The `_id` of the writers' hint: where a new writer starts looking.
const HINT: &str = "next";
/// A writer that followed this many claims to find a free place moves the
/// hint.
const HINT_AFTER: usize = 64;

fn claim_id(from: i64) -> String {
    format!("c:{from}")
}

fn end_id(from: i64) -> String {
    format!("e:{from}")
}

/// What handlers may rely on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Settled {
    /// Every position at or below it is inserted or never will be.
    pub frontier: i64,
    /// Ranges given up: never read.
    pub abandoned: Vec<(i64, i64)>,
}

/// How a write ended, as its end document says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum End {
    Done,
    Abandoned,
}

fn end_of(doc: &Document) -> End {
    if doc.get_bool("abandoned") == Ok(true) {
        End::Abandoned
    } else {
        End::Done
    }
}

pub(super) fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        Bson::Double(v) if v.fract() == 0.0 && v.abs() < 9.2e18 => Some(*v as i64),
        _ => None,
    }
}

fn to_of(doc: &Document) -> Option<i64> {
    doc.get("to").and_then(as_i64)
}

fn is_duplicate(err: &mongodb::error::Error) -> bool {
    match &*err.kind {
        mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) => {
            w.code == DUPLICATE_KEY
        }
        _ => false,
    }
}

/// What this process knows of the walk so far.
#[derive(Debug, Default)]
struct Walked {
    /// Read the checkpoint and the abandoned ranges once.
    started: bool,
    frontier: i64,
    abandoned: Vec<(i64, i64)>,
    checkpointed: i64,
}

/// The process's side of the positions.
pub(super) struct Positions {
    pub abandon_after: Duration,
    /// Where this process's next claim goes, when it knows (an uncontended
    /// append claims in one round trip).
    next: tokio::sync::Mutex<Option<i64>>,
    walked: tokio::sync::Mutex<Walked>,
    /// The settled frontier and abandoned ranges as last walked, for those
    /// that must not wait for a walk.
    known: Mutex<Settled>,
    /// When this process first saw a claim open, by its first position.
    first_seen: Mutex<HashMap<i64, Instant>>,
}

impl Positions {
    pub fn new(abandon_after: Duration) -> Self {
        Positions {
            abandon_after,
            next: tokio::sync::Mutex::new(None),
            walked: tokio::sync::Mutex::new(Walked::default()),
            known: Mutex::new(Settled::default()),
            first_seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn known_abandoned(&self) -> Vec<(i64, i64)> {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abandoned
            .clone()
    }

    /// Whether the open claim at `from` is past the bound; forgets the
    /// claims seen open before it (they ended).
    fn expired(&self, from: i64) -> bool {
        let now = Instant::now();
        let mut seen = self.first_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|f, _| *f >= from);
        let first = *seen.entry(from).or_insert(now);
        now.duration_since(first) >= self.abandon_after
    }
}

impl MongoEngine {
    /// Claims `n` positions: one insert of the claim where this process
    /// expects the next one; when another writer is there, its claim is
    /// looked up and the next place after it tried.
    pub(super) async fn take_positions(&self, n: i64) -> Result<(i64, i64)> {
        let mut next = self.positions.next.lock().await;
        let mut from = match *next {
            Some(from) => from,
            None => self.claims_start().await?,
        };
        let mut followed = 0;
        loop {
            let to = from + n - 1;
            match self
                .counter
                .insert_one(doc! { "_id": claim_id(from), "to": to })
                .await
            {
                Ok(_) => {
                    *next = Some(to + 1);
                    if followed >= HINT_AFTER {
                        self.move_hint(to + 1).await?;
                    }
                    return Ok((from, to));
                }
                Err(e) if is_duplicate(&e) => {
                    let taken = self.lookup(&claim_id(from)).await?;
                    // claims are contiguous: the next place is after this one
                    from = match taken.as_ref().and_then(to_of) {
                        Some(taken_to) => taken_to + 1,
                        None => from,
                    };
                    followed += 1;
                }
                Err(e) => {
                    *next = None;
                    return Err(self.db_error(e));
                }
            }
        }
    }

    async fn lookup(&self, id: &str) -> Result<Option<Document>> {
        self.counter
            .find_one(doc! { "_id": id })
            .await
            .map_err(|e| self.db_error(e))
    }

    /// Where a writer that knows nothing yet looks for the next free place:
    /// the later of the hint writers leave and the checkpoint readers leave
    /// (both are the first position after some claim, or 0).
    async fn claims_start(&self) -> Result<i64> {
        let hint = self
            .lookup(HINT)
            .await?
            .as_ref()
            .and_then(|d| d.get("next"))
            .and_then(as_i64)
            .unwrap_or(0);
        Ok(hint.max(self.checkpoint().await? + 1))
    }

    /// Leaves a later starting place for new writers (a lost update leaves
    /// an earlier one, which only makes their first claim follow longer).
    async fn move_hint(&self, next: i64) -> Result<()> {
        self.counter
            .update_one(doc! { "_id": HINT }, doc! { "$max": { "next": next } })
            .upsert(true)
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    /// Where new walks start: the checkpoint (0 without one).
    async fn checkpoint(&self) -> Result<i64> {
        Ok(self
            .lookup(CHECKPOINT)
            .await?
            .as_ref()
            .and_then(|d| d.get("frontier"))
            .and_then(as_i64)
            .unwrap_or(0))
    }

    /// Inserts the end of a write. `Done` when the writer got there first;
    /// `Abandoned` when a reader had given the range up.
    pub(super) async fn end_positions(&self, from: i64, to: i64) -> Result<End> {
        match self
            .counter
            .insert_one(doc! { "_id": end_id(from), "to": to })
            .await
        {
            Ok(_) => {
                self.advance_known(from, to);
                Ok(End::Done)
            }
            Err(e) if is_duplicate(&e) => Ok(self
                .lookup(&end_id(from))
                .await?
                .map_or(End::Done, |d| end_of(&d))),
            Err(e) => Err(self.db_error(e)),
        }
    }

    /// A write of this process ended right after the settled frontier as
    /// last walked: the frontier moves past it and the head with it, so a
    /// handler of this process wakes at once (others find it by walking).
    fn advance_known(&self, from: i64, to: i64) {
        let mut known = self
            .positions
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if known.frontier == from - 1 {
            known.frontier = to;
            drop(known);
            self.head.publish(to);
        }
    }

    /// Walks the claims from where this process last stopped and returns
    /// what handlers may read; gives up claims open past the bound.
    pub(super) async fn settled(&self) -> Result<Settled> {
        let mut walked = self.positions.walked.lock().await;
        if !walked.started {
            self.start_walk(&mut walked).await?;
        }
        loop {
            let from = walked.frontier + 1;
            let (to, end) = match self.lookup(&end_id(from)).await? {
                Some(end) => (to_of(&end).unwrap_or(from), end_of(&end)),
                None => match self.lookup(&claim_id(from)).await? {
                    // nothing claimed there yet
                    None => break,
                    Some(claim) => {
                        let to = to_of(&claim).unwrap_or(from);
                        if !self.positions.expired(from) {
                            break;
                        }
                        (to, self.abandon(from, to).await?)
                    }
                },
            };
            if end == End::Abandoned && !walked.abandoned.contains(&(from, to)) {
                walked.abandoned.push((from, to));
            }
            walked.frontier = to.max(from);
        }
        if walked.frontier - walked.checkpointed >= CHECKPOINT_EVERY {
            self.move_checkpoint(walked.frontier).await?;
            walked.checkpointed = walked.frontier;
        }
        let settled = Settled {
            frontier: walked.frontier,
            abandoned: walked.abandoned.clone(),
        };
        {
            let mut known = self
                .positions
                .known
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            known.frontier = known.frontier.max(settled.frontier);
            if known.abandoned != settled.abandoned {
                known.abandoned = settled.abandoned.clone();
            }
        }
        self.head.publish(settled.frontier);
        Ok(settled)
    }

    /// A new walk starts at the checkpoint, knowing every abandoned range.
    async fn start_walk(&self, walked: &mut Walked) -> Result<()> {
        let frontier = self.checkpoint().await?;
        let abandoned: Vec<Document> = self
            .counter
            .find(doc! { "abandoned": true })
            .await
            .map_err(|e| self.db_error(e))?
            .try_collect()
            .await
            .map_err(|e| self.db_error(e))?;
        walked.abandoned = abandoned
            .iter()
            .filter_map(|d| {
                let from = d.get_str("_id").ok()?.strip_prefix("e:")?.parse().ok()?;
                Some((from, to_of(d)?))
            })
            .collect();
        walked.abandoned.sort_unstable();
        walked.frontier = frontier;
        walked.checkpointed = frontier;
        walked.started = true;
        Ok(())
    }

    /// Gives a claim up: inserts its end as abandoned (its writer may win
    /// that race, then it is done), then removes whatever of it was
    /// inserted.
    async fn abandon(&self, from: i64, to: i64) -> Result<End> {
        let inserted = self
            .counter
            .insert_one(doc! { "_id": end_id(from), "to": to, "abandoned": true })
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => {
                let end = self.lookup(&end_id(from)).await?;
                if end.map_or(End::Done, |d| end_of(&d)) == End::Done {
                    return Ok(End::Done);
                }
            }
            Err(e) => return Err(self.db_error(e)),
        }
        self.events
            .delete_many(doc! { "position": { "$gte": from, "$lte": to } })
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(End::Abandoned)
    }

    /// Where new readers start. A lost or late update leaves it lower,
    /// which only makes their first walk longer.
    async fn move_checkpoint(&self, frontier: i64) -> Result<()> {
        self.counter
            .update_one(
                doc! { "_id": CHECKPOINT },
                doc! { "$max": { "frontier": frontier } },
            )
            .upsert(true)
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(())
    }

    /// Before the first claim: readers and writers start after the
    /// positions already stored (evtstore's, converted by migrate). Only
    /// while nothing was ever claimed, so no claim can be jumped over.
    pub(super) async fn start_after_stored(&self) -> Result<()> {
        let claimed = self.lookup(&claim_id(self.checkpoint().await? + 1)).await?;
        if claimed.is_none() {
            let stored = self.highest_stored_position().await?;
            self.move_checkpoint(stored).await?;
        }
        Ok(())
    }

    /// The error of a write whose range a reader gave up.
    pub(super) fn abandoned_error(&self) -> StoreError {
        StoreError::Timeout {
            location: self.location.clone(),
            reason: format!(
                "the append took longer than abandonAfterMs ({} ms), so a handler gave its positions up; nothing was stored, retry the command",
                self.positions.abandon_after.as_millis()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_expires_only_after_the_bound_since_first_seen() {
        let p = Positions::new(Duration::from_millis(30));
        assert!(!p.expired(5));
        std::thread::sleep(Duration::from_millis(40));
        assert!(p.expired(5));
        assert!(!p.expired(7), "5 ended: 7 is timed from now");
        assert!(!p.expired(5), "and 5 again too");
    }
}
