//! What memory holds of a box's index: per author its state and slot, the chain head,
//! the counts and the bounded overlay of the conversation order. The store owns it and
//! the checkpoint saves and restores it; both import it from here, neither from the
//! other.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::chain::{self, Head};
use crate::hex::Hash;
use crate::message::AuthorId;

use super::format::{Line, parse_line};
use super::index::{AuthorState, IndexFile, Record};
use super::runs::{Key, Order};
use super::track::AuthorHead;

/// The shortest line a box can hold: the keys, four 64-digit hex values and a
/// 128-digit signature come to more than this, whatever the body.
pub(super) const MIN_LINE: u64 = 400;

/// What memory holds of the index: O(authors) plus the bounded overlay of the
/// conversation order. Everything older is in `box.index` and the runs.
pub(super) struct Index {
    /// Each slot's author id; shared with readers that sort keys outside the lock
    /// (copied only when a new author arrives while one holds it).
    pub ids: Arc<Vec<AuthorId>>,
    pub authors: Vec<AuthorState>,
    pub slot: HashMap<AuthorId, u32>,
    pub order: Order,
    pub file: Arc<IndexFile>,
    pub lines: u64,
    pub chain: Hash,
    pub max_clock: u64,
    /// Offset and length of line `lines`: a checkpoint's anchor.
    pub last_line: (u64, u32),
    /// Lines closed into epochs before the live box (docs/FORMAT.md §12). `lines`, the
    /// records and the runs number the live box's lines from 1; the line numbers the
    /// node answers with count the whole history, `base + lines`.
    pub base: u64,
    /// Per author, the head its history on this node continues from (the last epoch's
    /// final head, or a late joiner's start in `box.starts`): its first seq held is the
    /// one after it.
    pub before: HashMap<AuthorId, AuthorHead>,
    /// The starts of `box.starts`, for the writer's checker.
    pub starts: HashMap<AuthorId, AuthorHead>,
}

impl Index {
    pub(super) fn empty(file: Arc<IndexFile>) -> Index {
        Index {
            ids: Arc::new(Vec::new()),
            authors: Vec::new(),
            slot: HashMap::new(),
            order: Order::default(),
            file,
            lines: 0,
            chain: chain::GENESIS,
            max_clock: 0,
            last_line: (0, 0),
            base: 0,
            before: HashMap::new(),
            starts: HashMap::new(),
        }
    }

    /// Makes the index (empty, or as a checkpoint of the live box left it) go on from
    /// the epoch's final head `head` and the late joiner's `starts`: every author of the
    /// head gets a slot at once (its head is held, with no line in the live box), and
    /// an empty live box has the head's chain.
    pub(super) fn continue_from(
        &mut self,
        head: Option<&super::epoch::FinalHead>,
        starts: &HashMap<AuthorId, AuthorHead>,
    ) {
        self.starts = starts.clone();
        self.before = starts.clone();
        let Some(head) = head else { return };
        self.base = head.lines;
        if self.lines == 0 {
            self.chain = head.chain;
            self.max_clock = head.max_clock;
        }
        for &(author, h) in &head.heads {
            self.before.insert(author, h);
            if !self.slot.contains_key(&author) {
                let s = u32::try_from(self.authors.len()).expect("fewer than 2^32 authors");
                Arc::make_mut(&mut self.ids).push(author);
                self.authors.push(AuthorState::before(h));
                self.slot.insert(author, s);
            }
        }
    }

    /// The first seq of `author` held in the live box (or to come there).
    pub(super) fn first_seq(&self, author: &AuthorId) -> u64 {
        self.before.get(author).map_or(1, |h| h.seq + 1)
    }

    /// Takes `line` as the next line, appending its record to `records` (written by
    /// the caller, one write a batch). Returns a problem met in the index files (the
    /// record is still right, only slower to reach), for the caller to report.
    pub(super) fn push(
        &mut self,
        line: &Line,
        offset: u64,
        len: u32,
        records: &mut Vec<u8>,
    ) -> Option<String> {
        let m = &line.message;
        let slot = match self.slot.get(&m.author) {
            Some(&s) => s,
            None => {
                let s = u32::try_from(self.authors.len()).expect("fewer than 2^32 authors");
                Arc::make_mut(&mut self.ids).push(m.author);
                self.authors.push(AuthorState::first());
                self.slot.insert(m.author, s);
                s
            }
        };
        let number = self.lines + 1;
        let head = AuthorHead {
            seq: m.seq,
            id: m.id,
            clock: m.clock,
        };
        let (prev_line, skip_line, problem) =
            self.authors[slot as usize].advance(&self.file, slot, head, number);
        let record = Record {
            offset,
            len,
            slot,
            seq: m.seq,
            clock: m.clock,
            prev_line,
            skip_line,
            id: m.id,
        };
        record.encode(records);
        let key = Key {
            clock: m.clock,
            slot,
            line: number,
        };
        self.order.insert(key, &self.ids);
        self.lines = number;
        self.chain = line.chain;
        self.max_clock = self.max_clock.max(m.clock);
        self.last_line = (offset, len);
        problem
    }

    pub(super) fn heads(&self) -> Vec<Head> {
        self.ids
            .iter()
            .zip(&self.authors)
            .map(|(author, a)| Head {
                author: *author,
                seq: a.head.seq,
                id: a.head.id,
            })
            .collect()
    }

    /// Where `author`'s history is: (slot, head seq, head line).
    pub(super) fn place_of(&self, author: &AuthorId) -> Option<(u32, AuthorHead, u64)> {
        let &slot = self.slot.get(author)?;
        let a = &self.authors[slot as usize];
        Some((slot, a.head, a.line))
    }

    /// Writes the overlay as a run when it is full, merging runs on this thread when
    /// `merge_now` (at start, before the checkpoint thread runs). Runs replaced by a
    /// merge go to `retired`: the checkpoint on disk may still name them.
    pub(super) fn flush(
        &mut self,
        path: &Path,
        merge_now: bool,
        retired: &mut Vec<PathBuf>,
    ) -> Result<bool, String> {
        let flushed = self.order.flush_if_full(path)?;
        if flushed && merge_now {
            while let Some(inputs) = self.order.merge_plan() {
                let merged = super::runs::merge(path, &inputs, &self.ids)?;
                retired.extend(self.order.replace(merged).iter().map(|r| r.path.clone()));
            }
        }
        Ok(flushed)
    }
}

/// The checks on one line of this node's own box that need no other line: a line
/// feed at the end, UTF-8, the exact line format, the limits and the id. Signatures are
/// not re-checked (the node checked them before it wrote the line).
pub(super) fn parse_own_line(raw: &[u8]) -> Result<Line, String> {
    let Some(text) = raw.strip_suffix(b"\n") else {
        return Err("line has no newline at the end (torn write)".to_string());
    };
    let text = std::str::from_utf8(text).map_err(|_| "line is not UTF-8".to_string())?;
    let line = parse_line(text)?;
    line.message
        .check_without_signature()
        .map_err(|e| e.to_string())?;
    Ok(line)
}
