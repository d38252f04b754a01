//! A peer worker's queue of new messages to push, and the flow control it gives the
//! node's senders.
//!
//! The queue is bounded by the size of what it holds rather than by a number of
//! batches. Every commit hands one batch to each worker; under load commits are many
//! and small (one message each from a sequential client), and a bound of 1,024
//! batches dropped messages once a peer was about a tenth of a second behind. Each
//! dropped message then came back by the slow road: a `gap` answer and a range read
//! for the pushes after it, or a pull at the next hello.
//!
//! Flow control: a node can sign and store messages faster than a peer can check
//! their signatures (one signature against one verification, and on a shared machine
//! the peers also share its cores). Left alone, a peer then falls seconds behind and
//! much of the backlog comes by anti-entropy, checked twice. So a local send waits
//! while a peer that keeps pace has more than [`WINDOW`] bytes pushed to it and not
//! yet answered. A peer keeps pace while it answered a push within the last
//! [`STALL`]: a dead, stalled or much slower peer stops counting after that long, so
//! it can delay a send by [`STALL`] at most, once, and never stop sends.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::message::Message;

use super::{Batch, Spread};

/// Most bytes of messages waiting for one peer; past this, new ones are dropped for
/// that peer and anti-entropy brings them instead. Batches are shared by every peer's
/// queue, so this is also about the most the queues hold together.
const MAX_QUEUED_BYTES: usize = 32 * 1024 * 1024;
/// Bytes pushed to a peer and not yet answered beyond which local sends wait (about
/// 1,200 messages of 560 bytes: a tenth of a second or two of a peer's checking).
pub const WINDOW: usize = 1024 * 1024;
/// A peer that answered no push for this long no longer holds senders back.
pub const STALL: Duration = Duration::from_millis(300);

/// Wakes the senders waiting for room when a peer answers.
#[derive(Default)]
pub struct Pace {
    lock: Mutex<()>,
    room: Condvar,
    waiting: AtomicUsize,
}

impl Pace {
    /// Waits while `held_back()` (checked again on every answer from a peer, and
    /// every few milliseconds for a peer that stopped answering), but no longer than
    /// `most`.
    pub fn wait(&self, most: Duration, held_back: impl Fn() -> bool) {
        if !held_back() {
            return;
        }
        let deadline = Instant::now() + most;
        let mut guard = self.lock.lock().expect("pace lock");
        self.waiting.fetch_add(1, Ordering::SeqCst);
        while held_back() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let slice = left.min(Duration::from_millis(20));
            guard = self.room.wait_timeout(guard, slice).expect("pace lock").0;
        }
        self.waiting.fetch_sub(1, Ordering::SeqCst);
    }

    fn answered(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            let _guard = self.lock.lock().expect("pace lock");
            self.room.notify_all();
        }
    }
}

/// What the dispatching and the worker side share.
struct Shared {
    /// Bytes queued or being pushed.
    unanswered: AtomicUsize,
    /// When a push was last answered, in ms since `epoch`; 0 for never.
    answered_ms: AtomicU64,
    epoch: Instant,
    pace: Arc<Pace>,
}

/// The dispatching side. Dropping it tells the worker to stop.
pub struct Outbox {
    tx: mpsc::Sender<Batch>,
    shared: Arc<Shared>,
}

/// The worker's side.
pub struct Inbox {
    rx: mpsc::Receiver<Batch>,
    shared: Arc<Shared>,
}

/// Batches taken from an inbox; their bytes count as unanswered until this is dropped.
pub struct Taken {
    pub batches: Vec<Batch>,
    size: usize,
    shared: Arc<Shared>,
}

pub fn outbox(pace: Arc<Pace>) -> (Outbox, Inbox) {
    let (tx, rx) = mpsc::channel();
    let shared = Arc::new(Shared {
        unanswered: AtomicUsize::new(0),
        answered_ms: AtomicU64::new(0),
        epoch: Instant::now(),
        pace,
    });
    (
        Outbox {
            tx,
            shared: Arc::clone(&shared),
        },
        Inbox { rx, shared },
    )
}

/// What a batch counts against the bounds: bodies plus the rest of each message.
fn size(batch: &[Message]) -> usize {
    batch.iter().map(|m| m.body.len() + 300).sum()
}

impl Outbox {
    /// Bytes queued for this peer or being pushed to it.
    pub fn queued_bytes(&self) -> usize {
        self.shared.unanswered.load(Ordering::Relaxed)
    }

    /// Queues `batch` unless the peer is that far behind already (then it is dropped
    /// for this peer: the peer is slow or gone, and anti-entropy repairs). Never
    /// waits.
    pub fn offer(&self, batch: &Arc<Vec<Message>>, spread: Spread) -> bool {
        let size = size(batch);
        let queued = &self.shared.unanswered;
        if queued.fetch_add(size, Ordering::SeqCst) + size > MAX_QUEUED_BYTES {
            queued.fetch_sub(size, Ordering::SeqCst);
            return false;
        }
        if self.tx.send((Arc::clone(batch), spread)).is_err() {
            queued.fetch_sub(size, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// Whether this peer keeps pace and is more than [`WINDOW`] behind.
    pub fn holds_back(&self) -> bool {
        let s = &self.shared;
        if s.unanswered.load(Ordering::SeqCst) <= WINDOW {
            return false;
        }
        let answered = s.answered_ms.load(Ordering::SeqCst);
        let now = u64::try_from(s.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        answered != 0 && now.saturating_sub(answered) < STALL.as_millis() as u64
    }
}

impl Inbox {
    /// Waits up to `timeout` for a batch, then takes every batch queued.
    pub fn take(&self, timeout: Duration) -> Result<Taken, RecvTimeoutError> {
        let first = self.rx.recv_timeout(timeout)?;
        let batches: Vec<Batch> = std::iter::once(first).chain(self.rx.try_iter()).collect();
        let size = batches.iter().map(|(b, _)| size(b)).sum();
        Ok(Taken {
            batches,
            size,
            shared: Arc::clone(&self.shared),
        })
    }
}

impl Taken {
    /// The peer answered the push of these batches.
    pub fn answered(self) {
        let ms = u64::try_from(self.shared.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.shared.answered_ms.store(ms.max(1), Ordering::SeqCst);
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        self.shared
            .unanswered
            .fetch_sub(self.size, Ordering::SeqCst);
        self.shared.pace.answered();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::{Duration, Instant};

    use super::{MAX_QUEUED_BYTES, Pace, STALL, Spread, outbox};
    use crate::identity::Identity;
    use crate::message::{Draft, Message};

    fn message(body: &str) -> Message {
        let id = Identity::generate();
        let draft = Draft {
            author: id.author(),
            seq: 1,
            prev: None,
            clock: 1,
            ts: 1,
            body,
        };
        Message::sign(&draft, &id)
    }

    #[test]
    fn batches_queue_up_to_a_size_and_are_taken_all_at_once() {
        let (out, inbox) = outbox(Arc::default());
        let big = Arc::new(vec![message(&"x".repeat(60_000)); 100]);
        let small = Arc::new(vec![message("hi")]);
        let mut offered = 0;
        while out.offer(&big, Spread::ToEveryPeer) {
            offered += 1;
        }
        assert_eq!(offered, MAX_QUEUED_BYTES / (100 * 60_300));
        assert!(out.offer(&small, Spread::Forwarded), "room for a small one");
        let taken = inbox.take(Duration::ZERO).unwrap();
        assert_eq!(taken.batches.len(), offered + 1);
        assert_eq!(taken.batches[0].1, Spread::ToEveryPeer);
        assert_eq!(taken.batches[offered].1, Spread::Forwarded);
        assert!(!out.offer(&big, Spread::ToEveryPeer), "still unanswered");
        drop(taken);
        assert!(
            out.offer(&big, Spread::ToEveryPeer),
            "room again once pushed"
        );
        drop(out);
        assert_eq!(inbox.take(Duration::ZERO).unwrap().batches.len(), 1);
        assert_eq!(
            inbox.take(Duration::ZERO).err(),
            Some(RecvTimeoutError::Disconnected)
        );
    }

    #[test]
    fn a_peer_holds_senders_back_only_while_it_keeps_pace() {
        let pace = Arc::new(Pace::default());
        let (out, inbox) = outbox(Arc::clone(&pace));
        let batch = Arc::new(vec![message(&"x".repeat(60_000)); 20]);
        out.offer(&batch, Spread::ToEveryPeer);
        assert!(!out.holds_back(), "never answered: does not count");
        inbox.take(Duration::ZERO).unwrap().answered();
        out.offer(&batch, Spread::ToEveryPeer);
        assert!(out.holds_back(), "keeps pace and is over the window");
        // A sender waits until the peer answers.
        let taken = inbox.take(Duration::ZERO).unwrap();
        let answer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            taken.answered();
        });
        let start = Instant::now();
        pace.wait(Duration::from_secs(5), || out.holds_back());
        assert!(start.elapsed() >= Duration::from_millis(40));
        assert!(start.elapsed() < STALL);
        answer.join().unwrap();
        // A peer that stops answering holds senders back for STALL at most.
        out.offer(&batch, Spread::ToEveryPeer);
        let start = Instant::now();
        pace.wait(Duration::from_secs(5), || out.holds_back());
        assert!(start.elapsed() < STALL + Duration::from_millis(200));
        assert!(!out.holds_back());
    }
}
