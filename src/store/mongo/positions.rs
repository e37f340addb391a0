//! Positions without transactions, and without relying on any update being
//! atomic: only on a unique `_id`, which every MongoDB-compatible server
//! enforces (FerretDB v1, the test server, loses concurrent updates of one
//! document, `$inc` included: 200 concurrent `$inc`s left 10, measured).
//!
//! `<events>_positions` holds small documents whose `_id` says what they are:
//!
//! ```text
//! { _id: 41, to: 43 }                    claim: positions 41..43 are taken
//! { _id: -41, to: 43 }                   end: the write of 41..43 finished
//! { _id: -44, to: 44, abandoned: true }  end: a reader gave 44 up
//! { _id: 0, frontier: 40 }               checkpoint: where a new reader starts
//! ```
//!
//! * A writer claims the next range with one insert (`_id` = the first
//!   position after the highest claim: two writers that pick the same one
//!   clash on `_id`, and the loser picks again), inserts its events, then
//!   inserts the end.
//! * A reader walks the claims in order: the settled frontier is the end of
//!   the last claim before the first one without an end. Handlers read only
//!   up to it, so an event committed later at a lower position cannot be
//!   skipped.
//! * A claim without an end for longer than `abandon_after` (timed from
//!   when this process first saw it, so other machines' clocks do not
//!   matter) belonged to a writer that died or stalled: the reader inserts
//!   its end as abandoned. Writer and reader race for that one `_id`, so
//!   exactly one of them decides. Reads leave abandoned ranges out, so a
//!   stalled writer's insert that lands later is never read; that writer
//!   finds the end taken, deletes its events and fails with `TIMEOUT`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};

use super::errors::DUPLICATE_KEY;
use super::MongoEngine;
use crate::error::{Result, StoreError};

/// The `_id` of the checkpoint document.
const CHECKPOINT: i64 = 0;
/// A reader moves the checkpoint after walking this many positions.
const CHECKPOINT_EVERY: i64 = 1000;

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

pub(super) fn as_i64(value: &Bson) -> Option<i64> {
    match value {
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Int64(v) => Some(*v),
        Bson::Double(v) if v.fract() == 0.0 && v.abs() < 9.2e18 => Some(*v as i64),
        _ => None,
    }
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
    /// The first position after the highest claim, when this process knows
    /// it (an uncontended append claims in one round trip).
    next: tokio::sync::Mutex<Option<i64>>,
    walked: tokio::sync::Mutex<Walked>,
    /// The settled frontier and abandoned ranges as last walked, for those
    /// that must not wait for a walk.
    known: Mutex<Settled>,
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

    /// Whether a claim first seen in flight is past the bound; forgets
    /// claims no longer in flight.
    fn expired(&self, from: i64, in_flight: &[i64]) -> bool {
        let now = Instant::now();
        let mut seen = self.first_seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|f, _| in_flight.contains(f));
        let first = *seen.entry(from).or_insert(now);
        now.duration_since(first) >= self.abandon_after
    }
}

impl MongoEngine {
    /// Claims `n` positions: one insert of the claim after the highest one
    /// (read again when another writer took that place first).
    pub(super) async fn take_positions(&self, n: i64) -> Result<(i64, i64)> {
        let mut next = self.positions.next.lock().await;
        loop {
            let from = match *next {
                Some(from) => from,
                None => self.next_free().await?,
            };
            let to = from + n - 1;
            match self
                .counter
                .insert_one(doc! { "_id": from, "to": to })
                .await
            {
                Ok(_) => {
                    *next = Some(to + 1);
                    return Ok((from, to));
                }
                Err(e) if is_duplicate(&e) => *next = None,
                Err(e) => {
                    *next = None;
                    return Err(self.db_error(e));
                }
            }
        }
    }

    /// The first position after the highest claim (after the highest
    /// position stored, before the first claim).
    async fn next_free(&self) -> Result<i64> {
        let highest = self
            .counter
            .find_one(doc! { "_id": { "$gt": CHECKPOINT } })
            .sort(doc! { "_id": -1 })
            .await
            .map_err(|e| self.db_error(e))?;
        match highest.as_ref().and_then(|d| d.get("to")).and_then(as_i64) {
            Some(to) => Ok(to + 1),
            None => Ok(self.highest_stored_position().await? + 1),
        }
    }

    /// Inserts the end of a write. `Done` when the writer got there first;
    /// `Abandoned` when a reader had given the range up.
    pub(super) async fn end_positions(&self, from: i64, to: i64) -> Result<End> {
        match self
            .counter
            .insert_one(doc! { "_id": -from, "to": to })
            .await
        {
            Ok(_) => {
                self.advance_known(from, to);
                Ok(End::Done)
            }
            Err(e) if is_duplicate(&e) => {
                let end = self
                    .counter
                    .find_one(doc! { "_id": -from })
                    .await
                    .map_err(|e| self.db_error(e))?;
                Ok(match end.as_ref().map(|d| d.get_bool("abandoned")) {
                    Some(Ok(true)) => End::Abandoned,
                    _ => End::Done,
                })
            }
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
    /// what handlers may read; abandons claims in flight past the bound.
    pub(super) async fn settled(&self) -> Result<Settled> {
        let mut walked = self.positions.walked.lock().await;
        if !walked.started {
            self.start_walk(&mut walked).await?;
        }
        loop {
            let before = walked.frontier;
            let claims = self.claims_after(walked.frontier).await?;
            let ends = self.ends_after(walked.frontier).await?;
            let in_flight: Vec<i64> = claims
                .iter()
                .filter(|(from, _)| !ends.contains_key(from))
                .map(|(from, _)| *from)
                .collect();
            for &(from, to) in &claims {
                let end = match ends.get(&from) {
                    Some(end) => *end,
                    None if self.positions.expired(from, &in_flight) => {
                        self.abandon(from, to).await?
                    }
                    None => break,
                };
                if end == End::Abandoned && !walked.abandoned.contains(&(from, to)) {
                    walked.abandoned.push((from, to));
                }
                walked.frontier = walked.frontier.max(to);
            }
            // a walk stops at CLAIMS_PER_READ claims: go on when it got past them all
            if claims.len() < CLAIMS_PER_READ || walked.frontier == before {
                break;
            }
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
            if known.frontier < settled.frontier || known.abandoned != settled.abandoned {
                known.frontier = known.frontier.max(settled.frontier);
                known.abandoned = settled.abandoned.clone();
            }
        }
        self.head.publish(settled.frontier);
        Ok(settled)
    }

    /// A new walk starts at the checkpoint, knowing every abandoned range.
    async fn start_walk(&self, walked: &mut Walked) -> Result<()> {
        let checkpoint = self
            .counter
            .find_one(doc! { "_id": CHECKPOINT })
            .await
            .map_err(|e| self.db_error(e))?;
        let frontier = checkpoint
            .as_ref()
            .and_then(|d| d.get("frontier"))
            .and_then(as_i64)
            .unwrap_or(0);
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
            .filter_map(|d| Some((-as_i64(d.get("_id")?)?, as_i64(d.get("to")?)?)))
            .collect();
        walked.frontier = frontier;
        walked.checkpointed = frontier;
        walked.started = true;
        Ok(())
    }

    /// The claims after `frontier`, in order (at most [`CLAIMS_PER_READ`]).
    async fn claims_after(&self, frontier: i64) -> Result<Vec<(i64, i64)>> {
        let docs: Vec<Document> = self
            .counter
            .find(doc! { "_id": { "$gt": frontier.max(CHECKPOINT) } })
            .sort(doc! { "_id": 1 })
            .limit(CLAIMS_PER_READ as i64)
            .await
            .map_err(|e| self.db_error(e))?
            .try_collect()
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(docs
            .iter()
            .filter_map(|d| Some((as_i64(d.get("_id")?)?, as_i64(d.get("to")?)?)))
            .collect())
    }

    /// The ends of the claims after `frontier`, by first position.
    async fn ends_after(&self, frontier: i64) -> Result<BTreeMap<i64, End>> {
        let docs: Vec<Document> = self
            .counter
            .find(doc! { "_id": { "$lt": -frontier.max(CHECKPOINT) } })
            .await
            .map_err(|e| self.db_error(e))?
            .try_collect()
            .await
            .map_err(|e| self.db_error(e))?;
        Ok(docs
            .iter()
            .filter_map(|d| {
                let from = -as_i64(d.get("_id")?)?;
                let end = if d.get_bool("abandoned") == Ok(true) {
                    End::Abandoned
                } else {
                    End::Done
                };
                Some((from, end))
            })
            .collect())
    }

    /// Gives a claim up: inserts its end as abandoned (its writer may win
    /// that race, then it is done), then removes whatever of it was
    /// inserted.
    async fn abandon(&self, from: i64, to: i64) -> Result<End> {
        let inserted = self
            .counter
            .insert_one(doc! { "_id": -from, "to": to, "abandoned": true })
            .await;
        match inserted {
            Ok(_) => {}
            Err(e) if is_duplicate(&e) => {
                let end = self
                    .counter
                    .find_one(doc! { "_id": -from })
                    .await
                    .map_err(|e| self.db_error(e))?;
                if end.as_ref().map(|d| d.get_bool("abandoned")) != Some(Ok(true)) {
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

    /// Before the first claim: readers start after the positions already
    /// stored (evtstore's, converted by migrate). Only while nothing was
    /// ever claimed, so no range in flight can be jumped over.
    pub(super) async fn start_after_stored(&self) -> Result<()> {
        let any_claim = self
            .counter
            .find_one(doc! { "_id": { "$gt": CHECKPOINT } })
            .await
            .map_err(|e| self.db_error(e))?;
        if any_claim.is_none() {
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

/// Claims read per query of a walk.
const CLAIMS_PER_READ: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_expires_only_after_the_bound_since_first_seen() {
        let p = Positions::new(Duration::from_millis(30));
        assert!(!p.expired(5, &[5]));
        std::thread::sleep(Duration::from_millis(40));
        assert!(p.expired(5, &[5, 7]));
        assert!(!p.expired(7, &[5, 7]));
        // a claim that left and came back is timed anew
        assert!(!p.expired(7, &[7]));
        assert!(!p.expired(5, &[5, 7]));
    }
}
