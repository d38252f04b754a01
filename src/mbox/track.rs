//! The checks that tie lines together: the chain hash, and each author's seq/prev
//! continuity. Shared by the node's start-up scan and by `dshare verify`.

use std::collections::HashMap;

use crate::chain::{self, Head};
use crate::hex::Hash;
use crate::message::AuthorId;

use super::format::Line;

/// What is wrong with one line, given the lines before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineError {
    Chain {
        expected: Hash,
    },
    Gap {
        author: AuthorId,
        expected: u64,
        got: u64,
    },
    Prev,
    Clock,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::Chain { expected } => write!(
                f,
                "chain hash does not follow from the line before (expected {expected}): a line was edited, removed, inserted or moved"
            ),
            LineError::Gap {
                author,
                expected,
                got,
            } => write!(
                f,
                "author {} should have seq {expected} here, found seq {got}",
                author.short(12)
            ),
            LineError::Prev => f.write_str("prev is not the id of the author's previous message"),
            LineError::Clock => {
                f.write_str("clock is not greater than the author's previous message's clock")
            }
        }
    }
}

/// The author's latest message seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorHead {
    pub seq: u64,
    pub id: Hash,
    pub clock: u64,
}

/// Walks the lines of a box in order.
#[derive(Debug, Clone)]
pub struct Tracker {
    pub chain: Hash,
    pub lines: u64,
    pub max_clock: u64,
    pub heads: HashMap<AuthorId, AuthorHead>,
    /// Authors whose history on this node begins after a seq other than 0 (a late
    /// joiner took them from peers that had retired the older messages,
    /// docs/FORMAT.md §12): their first line follows this head. Its clock is 0, since
    /// the retired message's clock is not known.
    pub starts: HashMap<AuthorId, AuthorHead>,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            chain: chain::GENESIS,
            lines: 0,
            max_clock: 0,
            heads: HashMap::new(),
            starts: HashMap::new(),
        }
    }
}

impl Tracker {
    /// The next line of a box: `who`'s next message, signed, chained after the lines
    /// taken so far, and taken.
    #[cfg(test)]
    pub(crate) fn sign_next(
        &mut self,
        who: &crate::identity::Identity,
        clock: u64,
        ts: u64,
        body: &str,
    ) -> Line {
        let head = self.heads.get(&who.author()).copied();
        let m = crate::message::Message::sign(
            &crate::message::Draft {
                author: who.author(),
                seq: head.map_or(1, |h| h.seq + 1),
                prev: head.map(|h| h.id),
                clock,
                ts,
                body,
            },
            who,
        );
        let line = Line {
            chain: chain::step(&self.chain, &m.id),
            message: m,
        };
        self.advance(&line);
        line
    }

    /// Checks `line` against what came before, without changing anything.
    pub fn check(&self, line: &Line) -> Result<(), LineError> {
        let m = &line.message;
        let expected = chain::step(&self.chain, &m.id);
        if line.chain != expected {
            return Err(LineError::Chain { expected });
        }
        let head = self.head_of(&m.author);
        let want = head.map_or(1, |h| h.seq + 1);
        if m.seq != want {
            return Err(LineError::Gap {
                author: m.author,
                expected: want,
                got: m.seq,
            });
        }
        if let Some(h) = head {
            if m.prev != Some(h.id) {
                return Err(LineError::Prev);
            }
            if m.clock <= h.clock {
                return Err(LineError::Clock);
            }
        }
        Ok(())
    }

    /// The author's last message seen, or where its history starts on this node.
    pub fn head_of(&self, author: &AuthorId) -> Option<&AuthorHead> {
        self.heads.get(author).or_else(|| self.starts.get(author))
    }

    /// Takes `line` as the next line, whether or not it checked, so that a checker
    /// that goes on after an error judges later lines on their own.
    pub fn advance(&mut self, line: &Line) {
        let m = &line.message;
        self.chain = line.chain;
        self.lines += 1;
        self.max_clock = self.max_clock.max(m.clock);
        self.heads.insert(
            m.author,
            AuthorHead {
                seq: m.seq,
                id: m.id,
                clock: m.clock,
            },
        );
    }

    pub fn head_list(&self) -> Vec<Head> {
        self.heads
            .iter()
            .map(|(author, h)| Head {
                author: *author,
                seq: h.seq,
                id: h.id,
            })
            .collect()
    }

    pub fn digest(&self) -> Hash {
        chain::digest(&self.head_list())
    }
}
