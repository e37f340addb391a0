//! Wake-ups: a per-database "head" position that every successful append
//! publishes, and waiters that resolve when it moves.
//!
//! Nothing here spawns a task or a timer of its own: a wait is a future that
//! the caller awaits (in JS, a pending promise), and it is the only thing that
//! keeps Node alive.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use tokio::sync::watch;

use crate::store::shared::SharedMap;

/// The highest position this process has seen committed to one database.
/// It only ever grows.
pub struct Head {
    tx: watch::Sender<i64>,
}

impl Default for Head {
    fn default() -> Self {
        Self::new()
    }
}

impl Head {
    pub fn new() -> Self {
        Head {
            tx: watch::Sender::new(0),
        }
    }

    /// Raises the head to `position` (no-op when it is not higher) and wakes
    /// the waiters when it moved.
    pub fn publish(&self, position: i64) {
        self.tx.send_if_modified(|head| {
            if position > *head {
                *head = position;
                true
            } else {
                false
            }
        });
    }

    pub fn get(&self) -> i64 {
        *self.tx.borrow()
    }

    fn subscribe(&self) -> watch::Receiver<i64> {
        self.tx.subscribe()
    }
}

/// The head of one database and events table (`key`) of an engine: shared
/// by every store of this process on it, so that an append through any of
/// them wakes the handlers of all.
pub fn shared_head(engine: &'static str, key: String) -> Arc<Head> {
    static HEADS: LazyLock<SharedMap<(&'static str, String), Head>> =
        LazyLock::new(SharedMap::default);
    HEADS.get_or_make((engine, key), Head::new)
}

/// What a wait ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    Changed,
    Timeout,
    Cancelled,
}

impl WaitOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitOutcome::Changed => "changed",
            WaitOutcome::Timeout => "timeout",
            WaitOutcome::Cancelled => "cancelled",
        }
    }
}

/// Waits for a head to move.
///
/// Cancellation is a flag, which keeps it race-free: `cancel()` sets it and
/// wakes every pending wait; while it is set, every `wait()` (pending or
/// started later) returns `Cancelled` at once; `reset()` clears it (the
/// handler calls `reset()` when it starts).
pub struct HeadWaiter {
    head: Arc<Head>,
    cancelled: watch::Sender<bool>,
    probe: Option<(Probe, Duration)>,
}

/// Asks the database for its highest position (`None` when it cannot say
/// now). Appends made by another process publish nothing in this one; a
/// waiter with a probe finds them by asking at an interval while it waits.
pub type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Option<i64>> + Send>> + Send + Sync>;

impl HeadWaiter {
    pub fn new(head: Arc<Head>) -> Self {
        HeadWaiter {
            head,
            cancelled: watch::Sender::new(false),
            probe: None,
        }
    }

    /// A waiter that also runs `probe` every `every` while it waits, and
    /// publishes what it finds to the head (which wakes every waiter on it).
    pub fn with_probe(head: Arc<Head>, probe: Probe, every: Duration) -> Self {
        HeadWaiter {
            probe: Some((probe, every)),
            ..HeadWaiter::new(head)
        }
    }

    pub fn cancel(&self) {
        self.cancelled.send_replace(true);
    }

    pub fn reset(&self) {
        self.cancelled.send_replace(false);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.cancelled.borrow()
    }

    /// Resolves `Changed` as soon as the head exceeds `known_head`
    /// (immediately if it already does), `Timeout` after `timeout` (`None`:
    /// never), or `Cancelled`.
    pub async fn wait(&self, known_head: i64, timeout: Option<Duration>) -> WaitOutcome {
        let mut cancel_rx = self.cancelled.subscribe();
        let mut head_rx = self.head.subscribe();
        if *cancel_rx.borrow_and_update() {
            return WaitOutcome::Cancelled;
        }
        if *head_rx.borrow_and_update() > known_head {
            return WaitOutcome::Changed;
        }
        let cancelled = async move { cancel_rx.wait_for(|c| *c).await.is_ok() };
        let changed = async move { head_rx.wait_for(|h| *h > known_head).await.is_ok() };
        let sleep = async move {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending::<()>().await,
            }
        };
        let head = self.head.clone();
        let probe = self.probe.clone();
        let probing = async move {
            let Some((probe, every)) = probe else {
                return std::future::pending::<()>().await;
            };
            loop {
                tokio::time::sleep(every).await;
                if let Some(found) = probe().await {
                    if found > known_head {
                        head.publish(found);
                        return;
                    }
                }
            }
        };
        tokio::select! {
            biased;
            // The senders live in `self` and in `self.head`, so these never
            // see a closed channel while we wait; treat it as a cancel anyway.
            _ = cancelled => WaitOutcome::Cancelled,
            ok = changed => if ok { WaitOutcome::Changed } else { WaitOutcome::Cancelled },
            _ = probing => WaitOutcome::Changed,
            _ = sleep => WaitOutcome::Timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_for_change_timeout_and_cancel() {
        let head = Arc::new(Head::new());
        let waiter = Arc::new(HeadWaiter::new(head.clone()));

        assert_eq!(
            waiter.wait(0, Some(Duration::from_millis(10))).await,
            WaitOutcome::Timeout
        );
        head.publish(3);
        assert_eq!(head.get(), 3);
        head.publish(2);
        assert_eq!(head.get(), 3, "the head never moves back");
        assert_eq!(waiter.wait(2, None).await, WaitOutcome::Changed);

        let w = waiter.clone();
        let pending = tokio::spawn(async move { w.wait(3, None).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        head.publish(4);
        assert_eq!(pending.await.ok(), Some(WaitOutcome::Changed));

        let w = waiter.clone();
        let pending = tokio::spawn(async move { w.wait(4, Some(Duration::from_secs(60))).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        waiter.cancel();
        assert_eq!(pending.await.ok(), Some(WaitOutcome::Cancelled));
        assert_eq!(waiter.wait(0, None).await, WaitOutcome::Cancelled);
        waiter.reset();
        assert_eq!(waiter.wait(0, None).await, WaitOutcome::Changed);
    }

    #[tokio::test]
    async fn a_probe_finds_appends_made_elsewhere_and_publishes_them() {
        use std::sync::atomic::{AtomicI64, Ordering};
        let head = Arc::new(Head::new());
        let elsewhere = Arc::new(AtomicI64::new(0));
        let seen = elsewhere.clone();
        let probe: Probe = Arc::new(move || {
            let seen = seen.clone();
            Box::pin(async move { Some(seen.load(Ordering::SeqCst)) })
        });
        let waiter = Arc::new(HeadWaiter::with_probe(
            head.clone(),
            probe,
            Duration::from_millis(5),
        ));
        // nothing new: the wait times out
        assert_eq!(
            waiter.wait(0, Some(Duration::from_millis(30))).await,
            WaitOutcome::Timeout
        );
        let w = waiter.clone();
        let pending = tokio::spawn(async move { w.wait(0, Some(Duration::from_secs(60))).await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        elsewhere.store(7, Ordering::SeqCst);
        assert_eq!(pending.await.ok(), Some(WaitOutcome::Changed));
        assert_eq!(head.get(), 7, "what the probe found is published");
        // a plain waiter on the same head is woken by that publish
        assert_eq!(
            HeadWaiter::new(head).wait(6, None).await,
            WaitOutcome::Changed
        );
    }
}
