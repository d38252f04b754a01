//! Which peers are known to hold a message lately: the one that pushed it here and
//! those that offered it. An offer to a peer that holds every message of it is not
//! sent, nor a push: over links, one end of a lazy link most often offers a message
//! to the other before the other's offer is due, and a node's eager parent needs
//! nothing back. A peer named here by a member that lies about `from` is offered
//! less (the repair still brings what it lacks); the table is bounded.

use std::collections::HashMap;

use crate::hex::Hash;

/// Most messages remembered; past it the table starts afresh (what it forgets only
/// costs an offer or a push that was not needed).
pub const MAX_IDS: usize = 100_000;
/// Most holders remembered per message: a node has at most a few links.
pub const MAX_PER_ID: usize = 8;

#[derive(Debug, Default)]
pub struct Holders {
    by_id: HashMap<Hash, Vec<String>>,
}

impl Holders {
    /// `peer` holds the message `id`.
    pub fn note(&mut self, id: Hash, peer: &str) {
        if self.by_id.len() >= MAX_IDS && !self.by_id.contains_key(&id) {
            self.by_id.clear();
        }
        let peers = self.by_id.entry(id).or_default();
        if peers.len() < MAX_PER_ID && !peers.iter().any(|p| p == peer) {
            peers.push(peer.to_string());
        }
    }

    /// Whether `peer` is known to hold the message `id`.
    pub fn holds(&self, id: &Hash, peer: &str) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|peers| peers.iter().any(|p| p == peer))
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::{Holders, MAX_IDS, MAX_PER_ID};

    fn id(n: u64) -> crate::hex::Hash {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&n.to_le_bytes());
        crate::hex::Hex(b)
    }

    #[test]
    fn holders_are_remembered_per_message_within_bounds() {
        let mut h = Holders::default();
        h.note(id(1), "http://a");
        assert!(h.holds(&id(1), "http://a"));
        assert!(!h.holds(&id(1), "http://b"));
        assert!(!h.holds(&id(2), "http://a"));
        for i in 0..MAX_PER_ID * 3 {
            h.note(id(3), &format!("http://p{i}"));
        }
        let held = (0..MAX_PER_ID * 3)
            .filter(|i| h.holds(&id(3), &format!("http://p{i}")))
            .count();
        assert_eq!(held, MAX_PER_ID);
        for i in 0..(MAX_IDS as u64 + 10) {
            h.note(id(100 + i), "http://a");
        }
        assert!(h.len() <= MAX_IDS, "{}", h.len());
        assert!(h.holds(&id(100 + MAX_IDS as u64 + 9), "http://a"));
    }
}
