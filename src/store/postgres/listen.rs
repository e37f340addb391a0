//! Shared per database and events table: the head and the LISTEN
//! connection.

use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::watch;

use super::options::{Target, APPLICATION_NAME};
use super::PostgresEngine;
use crate::store::head::Head;
use crate::store::server::DEFAULT_CONNECT_TIMEOUT;
use crate::store::shared::SharedMap;
use crate::store::BoxTask;

/// Back-off of the LISTEN connection between reconnection attempts.
const LISTEN_BACKOFF_MIN: Duration = Duration::from_millis(100);
const LISTEN_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// `application_name` of the LISTEN connection.
const LISTENER_APPLICATION_NAME: &str = "evtstore-rs listener";

impl PostgresEngine {
    /// Starts the LISTEN connection of this database and events table if it
    /// is not running yet (`spawn` runs its task: on the napi runtime from
    /// JS, on the test's runtime in tests). It runs until the last store on
    /// the same database and table is closed or dropped.
    pub fn ensure_listener(&self, spawn: &dyn Fn(BoxTask)) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.hub.lock();
        if state.listener.is_some() || state.open_stores == 0 {
            return;
        }
        let (stop_tx, stop_rx) = watch::channel(false);
        state.listener = Some(stop_tx);
        drop(state);
        let mut options = self.target.options.clone();
        if self.target.options.get_application_name() == Some(APPLICATION_NAME) {
            options = options.application_name(LISTENER_APPLICATION_NAME);
        }
        let task = listen_loop(
            options,
            self.channel.clone(),
            self.sql.max_position.clone(),
            self.head.clone(),
            self.target
                .connect_timeout
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            stop_rx,
        );
        spawn(Box::pin(task));
    }

    /// Whether a LISTEN connection runs for this database and table.
    pub fn is_listening(&self) -> bool {
        self.hub.lock().listener.is_some()
    }
}

struct HubState {
    open_stores: usize,
    /// Set while a LISTEN task runs; sending `true` (or dropping it) stops it.
    listener: Option<watch::Sender<bool>>,
}

/// What every store of this process on one database and events table
/// shares.
pub(super) struct Hub {
    pub(super) head: Arc<Head>,
    state: Mutex<HubState>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn store_opened(&self) {
        self.lock().open_stores += 1;
    }

    pub(super) fn store_closed(&self) {
        let mut state = self.lock();
        state.open_stores = state.open_stores.saturating_sub(1);
        if state.open_stores == 0 {
            if let Some(stop) = state.listener.take() {
                let _ = stop.send(true);
            }
        }
    }
}

pub(super) fn hub_for(target: &Target, events_table: &str) -> Arc<Hub> {
    let key = format!(
        "{}/{}/{}",
        target.server.to_ascii_lowercase(),
        target.database,
        events_table
    );
    static HUBS: LazyLock<SharedMap<String, Hub>> = LazyLock::new(SharedMap::default);
    HUBS.get_or_make(key, || Hub {
        head: Arc::new(Head::new()),
        state: Mutex::new(HubState {
            open_stores: 0,
            listener: None,
        }),
    })
}

/// The LISTEN loop: publishes every notified position to `head`, and after
/// each (re)connection the highest stored position, so that nothing
/// committed while it was away is missed. Reconnects with back-off until
/// `stop` says so; owns its one connection.
async fn listen_loop(
    options: PgConnectOptions,
    channel: String,
    max_sql: String,
    head: Arc<Head>,
    connect_timeout: Duration,
    mut stop: watch::Receiver<bool>,
) {
    // One connection is used; the second slot lets a reconnection start
    // while the broken one is still being closed.
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .min_connections(0)
        .idle_timeout(None)
        .max_lifetime(None)
        .acquire_timeout(connect_timeout)
        .connect_lazy_with(options);
    let mut backoff = LISTEN_BACKOFF_MIN;
    let stopped = |rx: &watch::Receiver<bool>| *rx.borrow() || rx.has_changed().is_err();
    'outer: while !stopped(&stop) {
        let connect = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = stop.changed() => break,
            r = connect => match r {
                Ok(l) => l,
                Err(_) => {
                    tokio::select! {
                        _ = stop.changed() => break,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(LISTEN_BACKOFF_MAX);
                    continue;
                }
            }
        };
        backoff = LISTEN_BACKOFF_MIN;
        publish_max(&mut listener, &max_sql, &head).await;
        loop {
            tokio::select! {
                _ = stop.changed() => break 'outer,
                r = listener.try_recv() => match r {
                    Ok(Some(note)) => {
                        if let Ok(p) = note.payload().trim().parse::<i64>() {
                            head.publish(p);
                        }
                    }
                    // Lost and already reconnected (LISTEN again).
                    Ok(None) => publish_max(&mut listener, &max_sql, &head).await,
                    Err(_) => continue 'outer,
                }
            }
        }
    }
    pool.close().await;
}

async fn publish_max(listener: &mut PgListener, max_sql: &str, head: &Head) {
    let max: std::result::Result<Option<i64>, sqlx::Error> =
        sqlx::query_scalar(max_sql).fetch_one(&mut *listener).await;
    if let Ok(Some(max)) = max {
        head.publish(max);
    }
}
