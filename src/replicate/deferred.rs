//! Offers wait a moment before they go: the lazy half of eager/lazy push is there
//! for the nodes a push missed, and by the time an offer is due the peer has most
//! often pushed or offered the message here itself (see [`super::holders`]), so
//! the offer is not sent. The pushes of a message then have the cores to
//! themselves: at 200 nodes on 2 cores, offers sent at once were most of the work
//! a message set off. Constant delay, so the queue is in due order; bounded.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::message::Message;

/// How long an offer waits: a few hops of a push on a loaded machine.
pub const OFFER_DELAY_MS: u64 = 100;
/// Most offers waiting; past it an offer goes at once.
pub const MAX_WAITING: usize = 16_384;

/// An offer due at a time: to this peer, of this batch.
pub type Due = (u64, String, Arc<Vec<Message>>);

#[derive(Default)]
pub struct Deferred {
    queue: Mutex<VecDeque<Due>>,
    wake: Condvar,
    /// Set by [`Deferred::stop`]; read under the queue's lock, so the waiting thread
    /// cannot miss it between its check and its wait.
    stopped: AtomicBool,
}

impl Deferred {
    /// Holds the offer of `batch` to `peer` until [`OFFER_DELAY_MS`] after `now_ms`;
    /// gives it back if the queue is full.
    pub fn hold(
        &self,
        peer: &str,
        batch: &Arc<Vec<Message>>,
        now_ms: u64,
    ) -> Option<(String, Arc<Vec<Message>>)> {
        let mut queue = self.queue.lock().expect("deferred lock");
        if queue.len() >= MAX_WAITING {
            return Some((peer.to_string(), Arc::clone(batch)));
        }
        let was_empty = queue.is_empty();
        queue.push_back((now_ms + OFFER_DELAY_MS, peer.to_string(), Arc::clone(batch)));
        if was_empty {
            self.wake.notify_one();
        }
        None
    }

    /// Waits (at most `longest`) for offers to come due and takes those that are.
    pub fn take_due(&self, longest: Duration, now: impl Fn() -> u64) -> Vec<Due> {
        let mut queue = self.queue.lock().expect("deferred lock");
        if self.stopped.load(Ordering::Relaxed) {
            return Vec::new();
        }
        let wait = match queue.front() {
            None => longest,
            Some((at, _, _)) => Duration::from_millis(at.saturating_sub(now())).min(longest),
        };
        if !wait.is_zero() {
            queue = self
                .wake
                .wait_timeout(queue, wait)
                .expect("deferred lock")
                .0;
        }
        let at = now();
        let due = queue.iter().take_while(|(d, _, _)| *d <= at).count();
        queue.drain(..due).collect()
    }

    /// The node stops: the thread waiting in [`Deferred::take_due`] returns at once,
    /// and so does every later call.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        let _queue = self.queue.lock().expect("deferred lock");
        self.wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::{Deferred, MAX_WAITING, OFFER_DELAY_MS};

    #[test]
    fn offers_come_due_after_the_delay_in_order_and_the_queue_is_bounded() {
        let d = Deferred::default();
        let batch = Arc::new(Vec::new());
        assert!(d.hold("a", &batch, 1_000).is_none());
        assert!(d.hold("b", &batch, 1_010).is_none());
        let early = d.take_due(Duration::ZERO, || 1_000 + OFFER_DELAY_MS - 1);
        assert!(early.is_empty());
        let first = d.take_due(Duration::ZERO, || 1_000 + OFFER_DELAY_MS);
        assert_eq!(
            first.iter().map(|(_, p, _)| p.as_str()).collect::<Vec<_>>(),
            ["a"]
        );
        let second = d.take_due(Duration::ZERO, || 2_000);
        assert_eq!(second.len(), 1);
        for _ in 0..MAX_WAITING {
            assert!(d.hold("c", &batch, 3_000).is_none());
        }
        assert!(d.hold("c", &batch, 3_000).is_some(), "full: given back");
    }

    #[test]
    fn stop_ends_a_long_wait_at_once_and_every_later_one() {
        let d = Arc::new(Deferred::default());
        let waiter = Arc::clone(&d);
        let started = std::time::Instant::now();
        let t = std::thread::spawn(move || waiter.take_due(Duration::from_secs(60), || 0));
        d.stop();
        assert!(t.join().unwrap().is_empty());
        assert!(d.take_due(Duration::from_secs(60), || 0).is_empty());
        assert!(started.elapsed() < Duration::from_secs(10));
    }
}
