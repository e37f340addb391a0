//! Handler leases: among the processes that run a handler on one bookmark,
//! one holds the bookmark's lease and handles events; the others wait.
//!
//! A lease is a row (document, node) beside the bookmarks: its owner, a
//! fencing token that rises each time the lease changes hands, and a beat
//! the owner raises every renewal. Nobody compares clocks: a waiting
//! instance takes the lease once it has seen the same (token, beat) for a
//! whole lease length on its own clock (as Kubernetes' leader election
//! does), so machines whose clocks disagree still take turns. `renewed_at`
//! and `ttl_ms` (the owner's clock) are only shown to operators.
//!
//! The token fences the bookmark: [`crate::store::Engine::set_bookmark_fenced`]
//! writes only while the lease still carries the writer's token, in the
//! same statement, so an instance that lost its lease cannot move the
//! bookmark after another took over.

use std::time::{SystemTime, UNIX_EPOCH};

use napi_derive::napi;

/// One bookmark's lease as stored (JavaScript sees it as `StoredLease`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[napi(object, js_name = "StoredLease")]
pub struct Lease {
    /// The bookmark's name.
    pub name: String,
    /// Who holds it; empty once released.
    pub owner: String,
    /// Rises each time the lease changes hands (never reused).
    pub token: i64,
    /// Rises at every renewal and change of hands.
    pub beat: i64,
    /// When the owner last renewed it (ms since the epoch, its clock).
    pub renewed_at: i64,
    /// The lease length the owner runs with, in ms.
    pub ttl_ms: i64,
    /// The handler's streams (a JSON array), for the lag `status` shows.
    pub streams: String,
}

/// What [`crate::store::Engine::claim_lease`] asks for.
#[derive(Debug, Clone)]
pub struct LeaseClaim<'a> {
    pub name: &'a str,
    pub owner: &'a str,
    /// The (token, beat) the claimer saw unchanged for a lease length; None
    /// when it saw no lease at all.
    pub seen: Option<(i64, i64)>,
    pub ttl_ms: i64,
    pub streams: &'a str,
}

impl LeaseClaim<'_> {
    /// The token the lease gets when this claim succeeds.
    pub fn next_token(&self) -> i64 {
        self.seen.map_or(1, |(token, _)| token + 1)
    }
}

/// The table (collection, label) of the leases of a bookmarks table.
pub fn leases_table(bookmarks: &str) -> String {
    format!("{bookmarks}_leases")
}

/// Now, in ms since the epoch (what `renewed_at` holds).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
