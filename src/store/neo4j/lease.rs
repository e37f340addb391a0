//! Handler leases on Neo4j ([`crate::store::lease`]): one node per lease,
//! labelled `<bookmarks>_leases` (beside the bookmarks label, quoted like
//! it), with the properties `name`, `owner`, `token`, `beat`, `renewedAt`,
//! `ttlMs` and `streams`; `name` is unique (the constraint `migrate` makes,
//! or the first claim).
//!
//! Every write is one auto-commit statement. Neo4j reads committed data
//! without a snapshot and takes no lock on a read, so a statement that
//! checks the token first and writes after could act on a token another
//! transaction is replacing. Each statement therefore first writes the
//! lease node ([`LOCK`]: the node's write lock, held until commit), and only
//! then reads `token` and `beat`: a read made under the lock sees the last
//! committed values, and no other claim, renewal, release or fenced write
//! of that lease can commit until this one has. A change of hands and a
//! fenced bookmark write are so serialised on the lease node, as the
//! append's positions are on the counter node (`tests.rs`'
//! `lease_statements_wait_for_a_change_of_hands_in_flight` checks it on
//! 3.5, 4.4 and 5, and fails there with the lock left out).

use std::sync::atomic::Ordering;

use super::cypher::{leases_schema, quoted, AFTER};
use super::packstream::{self, Value};
use super::values::epoch_millis;
use super::{string_list, Neo4jEngine};
use crate::error::{Result, StoreError};
use crate::store::lease::{now_ms, Lease, LeaseClaim};

/// Takes the write lock of the matched lease `l` (setting and removing a
/// property changes nothing once committed). Properties read after it are
/// the last committed ones. (`SET l.beat = l.beat` would not do: its
/// value is read before the SET takes the lock, and an old one could be
/// written back.)
const LOCK: &str = "SET l._lock = true REMOVE l._lock WITH l";

/// The properties of a lease, in [`Lease`]'s order.
const LEASE_COLUMNS: &str = "l.name, l.owner, l.token, l.beat, l.renewedAt, l.ttlMs, l.streams";

/// The Cypher of the leases of one bookmarks label.
pub(super) struct LeaseStatements {
    select_one: String,
    select_all: String,
    insert: String,
    take: String,
    renew: String,
    release: String,
    fenced_bookmark: String,
    bookmarks: String,
    count_after: String,
}

impl LeaseStatements {
    pub(super) fn new(events: &str, bookmarks: &str, leases: &str) -> Self {
        let l = quoted(leases);
        let b = quoted(bookmarks);
        let e = quoted(events);
        let one = format!("MATCH (l:{l} {{name: $name}})");
        LeaseStatements {
            select_one: format!("{one} RETURN {LEASE_COLUMNS}"),
            select_all: format!("MATCH (l:{l}) RETURN {LEASE_COLUMNS} ORDER BY l.name"),
            // the unique name lets one of two first claims create it; the
            // other fails with the constraint's violation
            insert: format!(
                "CREATE (l:{l} {{name: $name, owner: $owner, token: 1, beat: 1, \
                 renewedAt: $now, ttlMs: $ttl, streams: $streams}}) RETURN l.token"
            ),
            take: format!(
                "{one} {LOCK} WHERE l.token = $token AND l.beat = $beat \
                 SET l.owner = $owner, l.token = l.token + 1, l.beat = l.beat + 1, \
                 l.renewedAt = $now, l.ttlMs = $ttl, l.streams = $streams RETURN l.token"
            ),
            renew: format!(
                "{one} {LOCK} WHERE l.token = $token \
                 SET l.beat = l.beat + 1, l.renewedAt = $now RETURN l.beat"
            ),
            release: format!(
                "{one} {LOCK} WHERE l.token = $token \
                 SET l.owner = '', l.beat = l.beat + 1 RETURN l.beat"
            ),
            // the lease stays locked until the bookmark is written: no change
            // of hands can commit between the check and the write; the
            // bookmark is written as set_bookmark writes it
            fenced_bookmark: format!(
                "{one} {LOCK} WHERE l.token = $token \
                 MERGE (b:{b} {{bookmark: $name}}) SET b.position = $position RETURN 1"
            ),
            bookmarks: format!(
                "MATCH (b:{b}) WHERE b.bookmark IS NOT NULL \
                 RETURN b.bookmark, b.position ORDER BY b.bookmark"
            ),
            count_after: format!(
                "MATCH (ev:{e}) WHERE ev.stream IN $streams AND {AFTER} RETURN count(ev)"
            ),
        }
    }
}

fn lease_of(row: &[Value]) -> Lease {
    let text = |i: usize| {
        row.get(i)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let int = |i: usize| row.get(i).and_then(Value::as_int).unwrap_or(0);
    Lease {
        name: text(0),
        owner: text(1),
        token: int(2),
        beat: int(3),
        renewed_at: int(4),
        ttl_ms: int(5),
        streams: text(6),
    }
}

impl Neo4jEngine {
    /// Makes the leases' unique name, once per store: a label migrated
    /// before leases existed (or by evtstore) gets it on the first claim.
    pub(super) async fn ensure_leases(&self) -> Result<()> {
        if self.leases_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let syntax = self.schema_syntax().await?;
        self.run_schema(
            &leases_schema(syntax, &self.leases_label),
            &self.leases_label,
        )
        .await?;
        self.leases_ready.store(true, Ordering::Release);
        Ok(())
    }

    pub(super) async fn read_leases(&self, name: Option<&str>) -> Result<Vec<Lease>> {
        // no lease node yet: nothing is found (a label nobody wrote is no error)
        let rows = match name {
            Some(name) => {
                let params = packstream::map([("name", name.into())]);
                self.query(&self.lease_sql.select_one, params, &self.leases_label)
                    .await?
            }
            None => {
                self.query(
                    &self.lease_sql.select_all,
                    Value::Map(Vec::new()),
                    &self.leases_label,
                )
                .await?
            }
        };
        Ok(rows.iter().map(|r| lease_of(r)).collect())
    }

    pub(super) async fn claim(&self, claim: &LeaseClaim<'_>) -> Result<Option<i64>> {
        self.ensure_leases().await?;
        let mut params = vec![
            ("name".to_string(), Value::from(claim.name)),
            ("owner".to_string(), Value::from(claim.owner)),
            ("now".to_string(), Value::Int(now_ms())),
            ("ttl".to_string(), Value::Int(claim.ttl_ms)),
            ("streams".to_string(), Value::from(claim.streams)),
        ];
        let query = match claim.seen {
            None => &self.lease_sql.insert,
            Some((token, beat)) => {
                params.push(("token".into(), Value::Int(token)));
                params.push(("beat".into(), Value::Int(beat)));
                &self.lease_sql.take
            }
        };
        match self
            .query(query, Value::Map(params), &self.leases_label)
            .await
        {
            Ok(rows) => Ok(first_int(&rows)),
            // a first claim that found the lease there: another was first
            Err(StoreError::ConstraintViolation { .. }) if claim.seen.is_none() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(super) async fn renew(&self, name: &str, token: i64) -> Result<bool> {
        let params = packstream::map([
            ("name", name.into()),
            ("token", token.into()),
            ("now", now_ms().into()),
        ]);
        let rows = self
            .query(&self.lease_sql.renew, params, &self.leases_label)
            .await?;
        Ok(!rows.is_empty())
    }

    pub(super) async fn release_held(&self, name: &str, token: i64) -> Result<()> {
        let params = packstream::map([("name", name.into()), ("token", token.into())]);
        self.query(&self.lease_sql.release, params, &self.leases_label)
            .await?;
        Ok(())
    }

    pub(super) async fn bookmark_fenced(
        &self,
        name: &str,
        position: i64,
        token: i64,
    ) -> Result<bool> {
        let params = packstream::map([
            ("name", name.into()),
            ("position", position.into()),
            ("token", token.into()),
        ]);
        let sql = &self.lease_sql.fenced_bookmark;
        // as in set_bookmark: a MERGE of a new name that met another
        // writer's creation of it fails on the unique constraint; run again,
        // it finds the node (the lease is checked again too)
        let rows = match self.query(sql, params.clone(), &self.bookmarks_label).await {
            Err(StoreError::ConstraintViolation { .. }) => {
                self.query(sql, params, &self.bookmarks_label).await?
            }
            other => other?,
        };
        Ok(!rows.is_empty())
    }

    pub(super) async fn all_bookmarks(&self) -> Result<Vec<(String, i64)>> {
        let rows = self
            .query(
                &self.lease_sql.bookmarks,
                Value::Map(Vec::new()),
                &self.bookmarks_label,
            )
            .await?;
        // evtstore kept ISO text (or a DateTime): its epoch milliseconds, as
        // get_bookmark reads them
        Ok(rows
            .iter()
            .filter_map(|r| {
                let name = r.first()?.as_str()?.to_string();
                Some((name, r.get(1).and_then(epoch_millis).unwrap_or(0)))
            })
            .collect())
    }

    pub(super) async fn count_events_after(&self, streams: &[String], after: i64) -> Result<i64> {
        let params = packstream::map([("streams", string_list(streams)), ("after", after.into())]);
        let rows = self
            .query(&self.lease_sql.count_after, params, &self.events_label)
            .await?;
        Ok(first_int(&rows).unwrap_or(0))
    }
}

/// The first column of the first row, when it is an integer.
fn first_int(rows: &[Vec<Value>]) -> Option<i64> {
    rows.first().and_then(|r| r.first()).and_then(Value::as_int)
}
