//! Addresses heard of but not yet proven: a hello's sender, a peer's list. None is
//! adopted (given a worker, shared, saved) until it answers a sealed hello proving the
//! id it claims; until then it waits here, in a bounded queue, and is probed by one
//! thread at a bounded rate, retried with backoff, then dropped and not taken again
//! for a while. Without this, every address a hello named got a thread for good:
//! 3,000 sealed hellos from fake addresses made 3,005 threads and 124 MB, and a member
//! could point every node at a third party's ports.

use std::collections::BTreeMap;

use super::core::Word;

/// Most addresses waiting for a probe. Beyond it new ones are not taken; a real new
/// node is heard of again at its next hello (every second) once there is room.
pub const MAX_CANDIDATES: usize = 256;
/// Probes of one address before it is dropped.
pub const MAX_ATTEMPTS: u32 = 4;
/// Wait before the second probe of an address; doubled after each failure.
pub const FIRST_BACKOFF_MS: u64 = 1_000;
/// How long a dropped address is not taken again (a member that keeps sharing dead
/// addresses has them probed at most [`MAX_ATTEMPTS`] times in this window).
pub const FORGET_DROPPED_MS: u64 = 10 * 60 * 1000;
/// Most dropped addresses remembered; beyond it the oldest are forgotten.
pub const MAX_DROPPED: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Candidate {
    attempts: u32,
    due_ms: u64,
    /// It greeted this node: it holds this node in its own table.
    greeted: bool,
    /// Its hello asked for a link, in this word (see [`Word`]).
    link: Option<Word>,
}

#[derive(Debug, Default)]
pub struct Candidates {
    waiting: BTreeMap<String, Candidate>,
    /// Dropped addresses, when they were dropped, and whether they had proved
    /// themselves (set aside for want of room) rather than failed.
    dropped: BTreeMap<String, (u64, bool)>,
}

impl Candidates {
    /// Takes `url` for probing unless it waits already, was dropped lately, or the
    /// queue is full. Returns whether it was taken.
    pub fn offer(&mut self, url: &str, now_ms: u64) -> bool {
        if self.waiting.contains_key(url) || self.waiting.len() >= MAX_CANDIDATES {
            return false;
        }
        if let Some(&(at, _)) = self.dropped.get(url) {
            if now_ms.saturating_sub(at) < FORGET_DROPPED_MS {
                return false;
            }
            self.dropped.remove(url);
        }
        self.waiting.insert(
            url.to_string(),
            Candidate {
                attempts: 0,
                due_ms: now_ms,
                greeted: false,
                link: None,
            },
        );
        true
    }

    /// The address whose probe is due first, if one is due at `now_ms`.
    pub fn next_due(&self, now_ms: u64) -> Option<String> {
        self.waiting
            .iter()
            .filter(|(_, c)| c.due_ms <= now_ms)
            .min_by_key(|(_, c)| c.due_ms)
            .map(|(url, _)| url.clone())
    }

    /// As [`Candidates::offer`], for an address that greeted this node: whether it
    /// waits now.
    pub fn offer_greeter(&mut self, url: &str, now_ms: u64) -> bool {
        let taken = self.offer(url, now_ms);
        match self.waiting.get_mut(url) {
            Some(c) => {
                c.greeted = true;
                taken
            }
            None => false,
        }
    }

    /// As [`Candidates::offer_greeter`], for a greeter that asked for a link this
    /// node would take: taken even if it was set aside for want of room (it proved
    /// itself then; an address that failed its probes stays dropped).
    pub fn offer_link(&mut self, url: &str, link: Word, now_ms: u64) -> bool {
        if self.dropped.get(url).is_some_and(|&(_, proven)| proven) {
            self.dropped.remove(url);
        }
        let taken = self.offer_greeter(url, now_ms);
        if let Some(c) = self.waiting.get_mut(url) {
            c.link = Some(link);
        }
        taken
    }

    /// Whether the waiting address `url` greeted this node.
    pub fn greeted(&self, url: &str) -> bool {
        self.waiting.get(url).is_some_and(|c| c.greeted)
    }

    /// The word in which the waiting address `url` asked for a link, if it did.
    pub fn link(&self, url: &str) -> Option<Word> {
        self.waiting.get(url).and_then(|c| c.link)
    }

    /// When the first waiting address is due, if any waits.
    pub fn first_due_ms(&self) -> Option<u64> {
        self.waiting.values().map(|c| c.due_ms).min()
    }

    /// The probe of `url` failed: later again, or dropped after [`MAX_ATTEMPTS`].
    pub fn failed(&mut self, url: &str, now_ms: u64) {
        let Some(c) = self.waiting.get_mut(url) else {
            return;
        };
        c.attempts += 1;
        if c.attempts >= MAX_ATTEMPTS {
            self.waiting.remove(url);
            self.drop_for_a_while(url, now_ms, false);
        } else {
            c.due_ms = now_ms.saturating_add(FIRST_BACKOFF_MS << (c.attempts - 1));
        }
    }

    /// `url` proved itself and is to be adopted, but not before `due_ms`: probed
    /// again then (a probe is what proves it is still there).
    pub fn later(&mut self, url: &str, due_ms: u64) {
        if let Some(c) = self.waiting.get_mut(url) {
            c.due_ms = due_ms;
        }
    }

    /// `url` proved itself (or is this node, or is known already): no more probes.
    pub fn done(&mut self, url: &str) {
        self.waiting.remove(url);
    }

    /// `url` proved itself but the peer table had no room for it: set aside like a
    /// dropped address. Otherwise, in a network larger than the table, every hello
    /// naming it would have it probed again: at 100 nodes each node kept probing the
    /// 36 it could not adopt, as fast as probes go (one every 100 ms).
    pub fn no_room(&mut self, url: &str, now_ms: u64) {
        self.waiting.remove(url);
        self.drop_for_a_while(url, now_ms, true);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    fn drop_for_a_while(&mut self, url: &str, now_ms: u64, proven: bool) {
        if self.dropped.len() >= MAX_DROPPED {
            self.dropped
                .retain(|_, &mut (at, _)| now_ms.saturating_sub(at) < FORGET_DROPPED_MS);
        }
        if self.dropped.len() >= MAX_DROPPED
            && let Some(oldest) = self
                .dropped
                .iter()
                .min_by_key(|(_, (at, _))| *at)
                .map(|(u, _)| u.clone())
        {
            self.dropped.remove(&oldest);
        }
        self.dropped.insert(url.to_string(), (now_ms, proven));
    }
}

#[cfg(test)]
mod tests {
    use super::{Candidates, FIRST_BACKOFF_MS, FORGET_DROPPED_MS, MAX_ATTEMPTS, MAX_CANDIDATES};
    use crate::replicate::core::{Link, Word};

    #[test]
    fn the_queue_is_bounded_and_each_address_waits_once() {
        let mut c = Candidates::default();
        for i in 0..MAX_CANDIDATES * 3 {
            c.offer(&format!("http://10.0.0.1:{i}"), 0);
        }
        assert_eq!(c.len(), MAX_CANDIDATES);
        assert!(!c.offer("http://10.0.0.1:0", 0), "waits already");
    }

    #[test]
    fn a_silent_address_is_retried_with_backoff_then_dropped_for_a_while() {
        let mut c = Candidates::default();
        let url = "http://10.0.0.1:1";
        assert!(c.offer(url, 0));
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..MAX_ATTEMPTS {
            assert_eq!(c.next_due(now).as_deref(), Some(url));
            c.failed(url, now);
            if let Some(next) = (now..now + 100_000).find(|&t| c.next_due(t).is_some()) {
                waits.push(next - now);
                now = next;
            }
        }
        assert_eq!(
            waits,
            [FIRST_BACKOFF_MS, 2 * FIRST_BACKOFF_MS, 4 * FIRST_BACKOFF_MS]
        );
        assert_eq!(c.len(), 0, "dropped after {MAX_ATTEMPTS} probes");
        assert!(!c.offer(url, now + 1), "not taken again at once");
        assert!(c.offer(url, now + FORGET_DROPPED_MS), "taken again later");
    }

    #[test]
    fn a_proven_address_without_room_is_not_probed_again_for_a_while() {
        let mut c = Candidates::default();
        let url = "http://10.0.0.1:1";
        assert!(c.offer(url, 0));
        assert_eq!(c.next_due(0).as_deref(), Some(url));
        c.no_room(url, 0);
        assert_eq!(c.len(), 0);
        assert!(!c.offer(url, 1), "named again by the next hello: not taken");
        assert!(c.offer(url, FORGET_DROPPED_MS), "taken again later");
    }

    #[test]
    fn a_link_request_brings_back_an_address_set_aside_but_not_one_that_failed() {
        let mut c = Candidates::default();
        let (proven, silent) = ("http://10.0.0.1:1", "http://10.0.0.1:2");
        assert!(c.offer(proven, 0) && c.offer(silent, 0));
        c.no_room(proven, 0);
        for _ in 0..MAX_ATTEMPTS {
            c.failed(silent, 0);
        }
        let want = Word {
            link: Link::Want,
            seq: 7,
        };
        assert!(c.offer_link(proven, want, 1));
        assert_eq!(c.link(proven), Some(want));
        assert!(c.greeted(proven));
        assert!(!c.offer_link(silent, want, 1), "failed its probes");
    }
}
