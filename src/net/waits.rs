//! Counts the `send --wait` confirmations in progress, in all and per client key, so
//! waiting senders can neither take every connection nor crowd each other out.

use std::collections::HashMap;
use std::sync::Mutex;

/// Most confirmation waits at once, over all keys. Each holds its connection's
/// thread and one pushing thread per peer that is up, but no worker.
pub const MAX_WAITS: usize = 64;

/// Most confirmation waits at once for one remote client key: one sender cannot use
/// up the waits of the others. The node's own client token (the node's owner, on its
/// machine) may use every slot: a CI host running many `send --wait` at once is the
/// common case there.
pub const MAX_WAITS_PER_KEY: usize = 8;

/// The waits in progress. An entry exists only while its count is above zero, so
/// the table holds at most [`MAX_WAITS`] keys.
#[derive(Default)]
pub struct Waits {
    held: Mutex<HashMap<String, usize>>,
}

/// One wait in progress; given back when dropped.
pub struct WaitSlot<'a> {
    waits: &'a Waits,
    key: String,
}

impl Waits {
    /// A slot for a wait on behalf of `key`, or `None` when the cap over all keys or
    /// `key_cap` for this key is reached.
    pub fn take(&self, key: &str, key_cap: usize) -> Option<WaitSlot<'_>> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let total: usize = held.values().sum();
        let mine = held.get(key).copied().unwrap_or(0);
        if total >= MAX_WAITS || mine >= key_cap {
            return None;
        }
        *held.entry(key.to_string()).or_insert(0) += 1;
        Some(WaitSlot {
            waits: self,
            key: key.to_string(),
        })
    }

    fn give_back(&self, key: &str) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = held.get_mut(key) {
            *count -= 1;
            if *count == 0 {
                held.remove(key);
            }
        }
    }
}

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.waits.give_back(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_key_and_in_all_hold_and_slots_come_back() {
        let waits = Waits::default();
        let first: Vec<_> = (0..MAX_WAITS_PER_KEY)
            .map(|_| waits.take("a", MAX_WAITS_PER_KEY).unwrap())
            .collect();
        assert!(
            waits.take("a", MAX_WAITS_PER_KEY).is_none(),
            "one key is capped"
        );
        let mut others = Vec::new();
        for i in 0.. {
            match waits.take(&format!("k{i}"), MAX_WAITS_PER_KEY) {
                Some(slot) => others.push(slot),
                None => break,
            }
        }
        assert_eq!(first.len() + others.len(), MAX_WAITS, "the total is capped");
        drop(first);
        assert!(
            waits.take("a", MAX_WAITS_PER_KEY).is_some(),
            "slots come back"
        );
        drop(others);
        assert!(
            waits.held.lock().unwrap().is_empty(),
            "no entry outlives its waits"
        );
    }
}
