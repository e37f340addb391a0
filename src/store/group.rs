//! Group commit: while one append is being written, the appends that arrive
//! wait in a queue; when it is done, the first of them leads the next group
//! and writes all of them at once (one statement, one commit flush), then
//! hands the queue on. An append that finds nobody writing goes alone, so a
//! single writer pays no extra round trip and no extra hop.
//!
//! Nothing is spawned: the leader is one of the waiting callers, and every
//! caller's future resolves when its own request is written.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::error::Result;
use crate::store::NewEvent;

/// An append waiting for its group (the request of the SQL engines' group
/// commit): owned copies of what the caller passed.
pub struct QueuedAppend {
    pub stream: String,
    pub aggregate_id: String,
    pub first_version: i64,
    pub timestamps: Vec<i64>,
    pub texts: Vec<String>,
}

impl QueuedAppend {
    pub fn new(
        stream: &str,
        aggregate_id: &str,
        first_version: i64,
        events: &[NewEvent<'_>],
    ) -> Self {
        QueuedAppend {
            stream: stream.to_string(),
            aggregate_id: aggregate_id.to_string(),
            first_version,
            timestamps: events.iter().map(|e| e.timestamp).collect(),
            texts: events.iter().map(|e| e.event.to_string()).collect(),
        }
    }

    pub fn events(&self) -> Vec<NewEvent<'_>> {
        self.timestamps
            .iter()
            .zip(&self.texts)
            .map(|(&timestamp, event)| NewEvent { timestamp, event })
            .collect()
    }

    /// The version of its last event.
    pub fn last_version(&self) -> i64 {
        self.first_version + self.texts.len() as i64 - 1
    }
}

/// A queued append, as the writer of its group holds it.
pub type WaitingAppend = Waiting<QueuedAppend, Result<Vec<i64>>>;

/// A request waiting in the queue, and how to answer it.
pub struct Waiting<Req, Out> {
    pub request: Req,
    reply: oneshot::Sender<Turn<Req, Out>>,
}

impl<Req, Out> Waiting<Req, Out> {
    /// Gives the request its result (a caller that went away is ignored).
    pub fn answer(self, out: Out) {
        let _ = self.reply.send(Turn::Done(out));
    }
}

/// What a queued caller is woken with.
pub enum Turn<Req, Out> {
    /// Another caller wrote the request: here is its result.
    Done(Out),
    /// The caller leads the next group: these requests, its own first.
    Lead(Vec<Waiting<Req, Out>>),
}

/// What [`GroupQueue::enter`] decided.
pub enum Entry<Req, Out> {
    /// Nobody is writing: write the request yourself, then call
    /// [`GroupQueue::hand_off`].
    Alone,
    /// Queued: wait for the turn.
    Queued(oneshot::Receiver<Turn<Req, Out>>),
}

struct State<Req, Out> {
    busy: bool,
    pending: VecDeque<Waiting<Req, Out>>,
}

pub struct GroupQueue<Req, Out> {
    state: Mutex<State<Req, Out>>,
}

impl<Req, Out> Default for GroupQueue<Req, Out> {
    fn default() -> Self {
        GroupQueue {
            state: Mutex::new(State {
                busy: false,
                pending: VecDeque::new(),
            }),
        }
    }
}

impl<Req, Out> GroupQueue<Req, Out> {
    fn lock(&self) -> std::sync::MutexGuard<'_, State<Req, Out>> {
        // Nothing panics while holding this lock; never turn poison into a
        // panic of ours.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Goes alone when nobody is writing; otherwise queues the request
    /// `make()` builds (only then is it built: it owns copies of the data).
    pub fn enter(&self, make: impl FnOnce() -> Req) -> Entry<Req, Out> {
        let mut state = self.lock();
        if !state.busy {
            state.busy = true;
            return Entry::Alone;
        }
        let (reply, turn) = oneshot::channel();
        state.pending.push_back(Waiting {
            request: make(),
            reply,
        });
        Entry::Queued(turn)
    }

    /// The whole turn of one caller: writes its request alone when nobody
    /// is writing, otherwise waits until another caller wrote it, or until
    /// it leads the next group and writes that; then hands the queue on.
    /// `make` builds the queued copy (only when it queues), `dropped` is
    /// the answer when the leader of its group went away before writing it.
    pub async fn write<A, G>(
        &self,
        make: impl FnOnce() -> Req,
        alone: impl FnOnce() -> A,
        group: impl FnOnce(Vec<Waiting<Req, Out>>) -> G,
        dropped: impl FnOnce() -> Out,
    ) -> Out
    where
        A: std::future::Future<Output = Out>,
        G: std::future::Future<Output = Out>,
    {
        match self.enter(make) {
            Entry::Alone => {
                let out = alone().await;
                self.hand_off();
                out
            }
            Entry::Queued(turn) => match turn.await {
                Ok(Turn::Done(out)) => out,
                Ok(Turn::Lead(waiting)) => {
                    let out = group(waiting).await;
                    self.hand_off();
                    out
                }
                Err(_) => dropped(),
            },
        }
    }

    /// Puts requests a leader could not take into its group (same key twice,
    /// or over the group's size) back at the front, in their order.
    pub fn defer(&self, waiting: Vec<Waiting<Req, Out>>) {
        let mut state = self.lock();
        for w in waiting.into_iter().rev() {
            state.pending.push_front(w);
        }
    }

    /// Called by whoever just finished writing: the queued requests go to
    /// the first of them, who leads the next group; with none queued, the
    /// queue is idle again.
    pub fn hand_off(&self) {
        let mut state = self.lock();
        loop {
            if state.pending.is_empty() {
                state.busy = false;
                return;
            }
            let group: Vec<Waiting<Req, Out>> = state.pending.drain(..).collect();
            let mut group = group.into_iter();
            let Some(first) = group.next() else {
                continue;
            };
            let rest: Vec<Waiting<Req, Out>> = group.collect();
            let Waiting { request, reply } = first;
            // The leader's own entry comes first; its reply channel is the
            // one this message travels on, so it gets a fresh, unused one.
            let (own_reply, _) = oneshot::channel();
            let mut lead = Vec::with_capacity(rest.len() + 1);
            lead.push(Waiting {
                request,
                reply: own_reply,
            });
            lead.extend(rest);
            match reply.send(Turn::Lead(lead)) {
                Ok(()) => return,
                // The caller went away (its future was dropped): answer
                // nobody and give the group to the next one.
                Err(Turn::Lead(mut lead)) => {
                    lead.remove(0);
                    for w in lead.into_iter().rev() {
                        state.pending.push_front(w);
                    }
                }
                Err(Turn::Done(_)) => {}
            }
        }
    }
}

/// What an append hears when the writer of its group went away before
/// writing it (its future was dropped): nothing of it was stored.
pub fn dropped_by_leader(location: &str) -> crate::error::StoreError {
    crate::error::StoreError::Database {
        location: location.to_string(),
        reason: "the append was dropped by the writer of its group before it was written; nothing was stored by it, retry".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Entry, GroupQueue, Turn};

    #[tokio::test]
    async fn the_first_goes_alone_and_the_next_one_leads_everything_queued_meanwhile() {
        let queue: GroupQueue<u32, u32> = GroupQueue::default();
        assert!(matches!(queue.enter(|| 1), Entry::Alone));
        let Entry::Queued(second) = queue.enter(|| 2) else {
            panic!("queued")
        };
        let Entry::Queued(third) = queue.enter(|| 3) else {
            panic!("queued")
        };
        queue.hand_off();
        let Ok(Turn::Lead(group)) = second.await else {
            panic!("the second leads")
        };
        assert_eq!(
            group.iter().map(|w| w.request).collect::<Vec<_>>(),
            vec![2, 3]
        );
        let mut group = group.into_iter();
        let _own = group.next();
        for w in group {
            let out = w.request * 10;
            w.answer(out);
        }
        let Ok(Turn::Done(out)) = third.await else {
            panic!("the third is answered")
        };
        assert_eq!(out, 30);
        queue.hand_off();
        // idle again: the next one goes alone
        assert!(matches!(queue.enter(|| 4), Entry::Alone));
    }

    #[tokio::test]
    async fn a_deferred_request_leads_the_next_group_and_a_gone_caller_is_skipped() {
        let queue: GroupQueue<u32, u32> = GroupQueue::default();
        assert!(matches!(queue.enter(|| 1), Entry::Alone));
        let Entry::Queued(gone) = queue.enter(|| 2) else {
            panic!("queued")
        };
        let Entry::Queued(leader) = queue.enter(|| 3) else {
            panic!("queued")
        };
        let Entry::Queued(deferred) = queue.enter(|| 4) else {
            panic!("queued")
        };
        drop(gone);
        queue.hand_off();
        let Ok(Turn::Lead(mut group)) = leader.await else {
            panic!("the first caller still there leads")
        };
        assert_eq!(
            group.iter().map(|w| w.request).collect::<Vec<_>>(),
            vec![3, 4]
        );
        // the leader keeps its own request and defers the other one
        let other = group.remove(1);
        queue.defer(vec![other]);
        let Entry::Queued(later) = queue.enter(|| 5) else {
            panic!("busy: queued")
        };
        queue.hand_off();
        let Ok(Turn::Lead(group)) = deferred.await else {
            panic!("the deferred request leads the next group")
        };
        assert_eq!(
            group.iter().map(|w| w.request).collect::<Vec<_>>(),
            vec![4, 5]
        );
        let mut group = group.into_iter();
        let _own = group.next();
        for w in group {
            w.answer(50);
        }
        let Ok(Turn::Done(out)) = later.await else {
            panic!("answered")
        };
        assert_eq!(out, 50);
    }
}
