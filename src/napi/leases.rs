//! The lease methods of `Store` (see `store::lease`): what the handlers of
//! many processes coordinate through, and what `status()` shows.

use napi_derive::napi;

use super::reply::Reply;
use super::store::Store;
use crate::store::input::{to_position, to_streams};
use crate::store::lease::{Lease, LeaseClaim};

/// A stored bookmark.
#[napi(object)]
pub struct StoredBookmark {
    pub name: String,
    pub position: i64,
}

#[napi]
impl Store {
    /// Every stored bookmark and its position, by name.
    #[napi(ts_return_type = "Promise<StoredBookmark[]>")]
    pub async fn bookmarks(&self) -> Reply<Vec<StoredBookmark>> {
        let all = self.engine.bookmarks().await.map(|all| {
            all.into_iter()
                .map(|(name, position)| StoredBookmark { name, position })
                .collect()
        });
        Reply::new(self.engine.name(), all)
    }

    /// How many events of `streams` come after `afterPosition`.
    #[napi(ts_return_type = "Promise<number>")]
    pub async fn count_after(&self, streams: Vec<String>, after_position: f64) -> Reply<i64> {
        let engine = self.engine.clone();
        let result = async move {
            let streams = to_streams(streams)?;
            let after = to_position(after_position, "afterPosition")?;
            engine.count_after(&streams, after).await
        };
        Reply::new(self.engine.name(), result.await)
    }

    /// The lease of bookmark `name` (an empty array when it never had
    /// one), or every lease when no name is given.
    #[napi(ts_return_type = "Promise<StoredLease[]>")]
    pub async fn leases(&self, name: Option<String>) -> Reply<Vec<Lease>> {
        Reply::new(
            self.engine.name(),
            self.engine.leases(name.as_deref()).await,
        )
    }

    /// Takes the lease if it still is what was seen (none when
    /// `seenToken` is null): resolves with the new token, or null when
    /// the lease moved in between.
    #[napi(ts_return_type = "Promise<number | null>")]
    pub async fn claim_lease(
        &self,
        name: String,
        owner: String,
        seen_token: Option<f64>,
        seen_beat: Option<f64>,
        ttl_ms: f64,
        streams_json: String,
    ) -> Reply<Option<i64>> {
        let engine = self.engine.clone();
        let result = async move {
            let seen = match (seen_token, seen_beat) {
                (Some(t), Some(b)) => {
                    Some((to_position(t, "seenToken")?, to_position(b, "seenBeat")?))
                }
                _ => None,
            };
            let claim = LeaseClaim {
                name: &name,
                owner: &owner,
                seen,
                ttl_ms: to_position(ttl_ms, "ttlMs")?,
                streams: &streams_json,
            };
            engine.claim_lease(&claim).await
        };
        Reply::new(self.engine.name(), result.await)
    }

    /// Renews a lease held with `token`; false once it changed hands.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub async fn renew_lease(&self, name: String, token: f64) -> Reply<bool> {
        let engine = self.engine.clone();
        let result = async move {
            engine
                .renew_lease(&name, to_position(token, "token")?)
                .await
        };
        Reply::new(self.engine.name(), result.await)
    }

    /// Gives up a lease held with `token`.
    #[napi(ts_return_type = "Promise<void>")]
    pub async fn release_lease(&self, name: String, token: f64) -> Reply<()> {
        let engine = self.engine.clone();
        let result = async move {
            engine
                .release_lease(&name, to_position(token, "token")?)
                .await
        };
        Reply::new(self.engine.name(), result.await)
    }

    /// Writes the bookmark only while its lease carries `token`; false
    /// (nothing written) once another instance holds it.
    #[napi(ts_return_type = "Promise<boolean>")]
    pub async fn set_bookmark_fenced(
        &self,
        name: String,
        position: f64,
        token: f64,
    ) -> Reply<bool> {
        let engine = self.engine.clone();
        let result = async move {
            let position = to_position(position, "the bookmark position")?;
            engine
                .set_bookmark_fenced(&name, position, to_position(token, "token")?)
                .await
        };
        Reply::new(self.engine.name(), result.await)
    }
}
