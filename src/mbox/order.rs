//! A sorted list kept in fixed-size blocks: the in-memory overlay of the conversation
//! order (the newest lines, before they are written as a run, see [`super::runs`]).
//!
//! A plain sorted `Vec` moves every later element on an insert, so each message that
//! sorts early (any author may start at clock 1) cost O(n) under the index lock. Here an
//! insert finds its block by binary search over the blocks' last elements, then moves at
//! most one block's worth of elements: O(log n) comparisons and a bounded copy. Appends
//! in order (almost every message) fill the last block to the brim, so memory stays
//! close to the bare elements. The same idea as Python's `sortedcontainers.SortedList`.

use std::cmp::Ordering;

/// Most elements in one block. Large enough that the list of blocks stays short (one
/// block per 4,096 messages), small enough that an insert moves at most 48 KiB of
/// 12-byte elements.
const BLOCK: usize = 4096;

/// Elements sorted by the comparison each insert is given (the caller gives the same
/// one every time).
pub(super) struct Blocks<T> {
    /// Never an empty block; each holds at most [`BLOCK`] elements and is allocated
    /// for exactly that many, so an insert never reallocates one.
    blocks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for Blocks<T> {
    fn default() -> Self {
        Blocks {
            blocks: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Copy> Blocks<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    /// Inserts `item` after every element that does not sort after it.
    pub fn insert_by(&mut self, item: T, mut cmp: impl FnMut(&T, &T) -> Ordering) {
        self.len += 1;
        let sorts_last = self
            .blocks
            .last()
            .and_then(|b| b.last())
            .is_none_or(|last| cmp(last, &item) != Ordering::Greater);
        if sorts_last {
            match self.blocks.last_mut() {
                Some(block) if block.len() < BLOCK => block.push(item),
                _ => self.blocks.push(new_block_with(item)),
            }
            return;
        }
        // Some block's last element sorts after `item` (the last block's does).
        let mut at = self.blocks.partition_point(|b| {
            cmp(b.last().expect("no empty block"), &item) != Ordering::Greater
        });
        if self.blocks[at].len() == BLOCK {
            self.split(at);
            let first_half_last = self.blocks[at].last().expect("half a block");
            if cmp(first_half_last, &item) != Ordering::Greater {
                at += 1;
            }
        }
        let block = &mut self.blocks[at];
        let pos = block.partition_point(|x| cmp(x, &item) != Ordering::Greater);
        block.insert(pos, item);
    }

    /// Splits the full block `at` into two halves, each with room for a full block.
    fn split(&mut self, at: usize) {
        let mut upper = Vec::with_capacity(BLOCK);
        upper.extend(self.blocks[at].drain(BLOCK / 2..));
        self.blocks.insert(at + 1, upper);
    }

    /// Every element, in order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.blocks.iter().flatten()
    }

    /// The last `n` elements (all, if there are fewer), in order, found from the end a
    /// block at a time rather than by stepping over the others.
    pub fn last_n(&self, n: usize) -> impl Iterator<Item = &T> {
        let mut wanted = n.min(self.len);
        let mut first = self.blocks.len();
        while wanted > 0 {
            first -= 1;
            wanted = wanted.saturating_sub(self.blocks[first].len());
        }
        let held: usize = self.blocks[first..].iter().map(Vec::len).sum();
        let skip = held - n.min(self.len);
        self.blocks[first..].iter().flatten().skip(skip)
    }
}

fn new_block_with<T>(item: T) -> Vec<T> {
    let mut block = Vec::with_capacity(BLOCK);
    block.push(item);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny deterministic generator, so a failure can be replayed.
    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn inserts_anywhere_keep_the_list_sorted_and_match_a_sorted_vec() {
        let mut list = Blocks::default();
        let mut expected = Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15;
        // In order, then early (the attack), then random: every path of insert_by,
        // and enough elements for many splits.
        for i in 0..3 * BLOCK as u64 {
            list.insert_by(1_000_000 + i, Ord::cmp);
            expected.push(1_000_000 + i);
        }
        for i in 0..3 * BLOCK as u64 {
            list.insert_by(i, Ord::cmp);
            expected.push(i);
        }
        for _ in 0..5 * BLOCK {
            let x = xorshift(&mut state) % 2_000_000;
            list.insert_by(x, Ord::cmp);
            expected.push(x);
        }
        expected.sort_unstable();
        assert_eq!(list.len(), expected.len());
        assert!(list.iter().copied().eq(expected.iter().copied()));
        assert!(
            list.iter()
                .rev()
                .copied()
                .eq(expected.iter().rev().copied())
        );
        assert!(
            list.blocks
                .iter()
                .all(|b| !b.is_empty() && b.len() <= BLOCK)
        );
        assert!(list.blocks.iter().all(|b| b.capacity() == BLOCK));
        for n in [
            0,
            1,
            7,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            5 * BLOCK,
            expected.len(),
            usize::MAX,
        ] {
            let skip = expected.len().saturating_sub(n);
            assert!(
                list.last_n(n).copied().eq(expected[skip..].iter().copied()),
                "last {n}"
            );
        }
    }

    #[test]
    fn equal_elements_keep_their_insertion_order() {
        let mut list = Blocks::default();
        for (i, key) in [3, 1, 3, 2, 1, 3].into_iter().enumerate() {
            list.insert_by((key, i), |a: &(u32, usize), b| a.0.cmp(&b.0));
        }
        let got: Vec<_> = list.iter().copied().collect();
        assert_eq!(got, [(1, 1), (1, 4), (2, 3), (3, 0), (3, 2), (3, 5)]);
    }

    /// The cost of an early insert must not grow with the list: the same inserts into
    /// a list of one block and of a million elements, timed in the same run.
    #[test]
    fn an_insert_that_sorts_first_costs_about_the_same_in_a_small_and_a_huge_list() {
        let time_early_inserts = |size: u64| {
            let mut list = Blocks::default();
            for i in 0..size {
                list.insert_by(10_000 + i, Ord::cmp);
            }
            let started = std::time::Instant::now();
            for i in 0..2_000 {
                list.insert_by(i, Ord::cmp);
            }
            started.elapsed()
        };
        let small = time_early_inserts(BLOCK as u64);
        let huge = time_early_inserts(1_000_000);
        eprintln!("2,000 inserts that sort first: {small:?} into {BLOCK}, {huge:?} into 1,000,000");
        // A sorted Vec moves the whole million on each: hundreds of times slower.
        assert!(
            huge < small * 10 + std::time::Duration::from_millis(20),
            "{small:?} vs {huge:?}"
        );
    }
}
