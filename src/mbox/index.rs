//! The index on disk, by line (`box.index`, docs/FORMAT.md §10): one fixed-size record
//! a line, so line L's record is at byte (L − 1) × 80 and arrival-order reads
//! (`/log?since=`) are one `pread`. Each record also points at two earlier lines of the
//! same author: its message seq − 1 (`prev`) and seq with its lowest set bit cleared
//! (`skip`, as a Fenwick tree does). From an author's head, which memory holds, any
//! older seq is found by following these pointers (about 140 reads at seq 10,000,000,
//! ~2·log²), and a run of seqs by walking `prev` back from its last one; so the node
//! keeps per author only its head and the head's skip chain (popcount(seq) lines).
//!
//! The records are derived data: written with each commit after the box's fsync (to the
//! page cache; fsynced only by the checkpoint thread before a checkpoint names them),
//! checked at start against the checkpoint's heads and anchor, checked again on every
//! read against what they lead to, and rebuilt from the box when any check fails.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::hex::{Hash, Hex};

use super::track::AuthorHead;

/// Bytes of one record: offset 8, len 4, slot 4, seq 8, clock 8, prev 8, skip 8, id 32.
pub(super) const RECORD_BYTES: usize = 80;

/// The index of the box at `box_path`, beside it.
pub fn index_path(box_path: &Path) -> PathBuf {
    box_path.with_extension("index")
}

/// What the index knows of one line. Lines are numbered from 1; line 0 is "none".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Record {
    pub offset: u64,
    /// With its line feed.
    pub len: u32,
    /// The author's place in the index's author table (first seen, first numbered).
    pub slot: u32,
    pub seq: u64,
    pub clock: u64,
    pub prev_line: u64,
    pub skip_line: u64,
    pub id: Hash,
}

impl Record {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.slot.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.clock.to_le_bytes());
        out.extend_from_slice(&self.prev_line.to_le_bytes());
        out.extend_from_slice(&self.skip_line.to_le_bytes());
        out.extend_from_slice(&self.id.0);
    }

    pub(super) fn decode(b: &[u8]) -> Record {
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8"));
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4"));
        Record {
            offset: u64_at(0),
            len: u32_at(8),
            slot: u32_at(12),
            seq: u64_at(16),
            clock: u64_at(24),
            prev_line: u64_at(32),
            skip_line: u64_at(40),
            id: Hex(b[48..80].try_into().expect("32")),
        }
    }
}

/// The seq a message's `skip` pointer names: its seq with the lowest set bit cleared
/// (0, "none", for a power of two).
pub(super) fn skip_of(seq: u64) -> u64 {
    seq & seq.wrapping_sub(1)
}

/// The record file, read and written by position.
pub(super) struct IndexFile {
    file: File,
}

impl IndexFile {
    pub(super) fn open(box_path: &Path) -> std::io::Result<IndexFile> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(crate::home::NO_FOLLOW)
            .open(index_path(box_path))?;
        Ok(IndexFile { file })
    }

    /// Records on disk (a partial last record does not count).
    pub(super) fn records(&self) -> std::io::Result<u64> {
        Ok(self.file.metadata()?.len() / RECORD_BYTES as u64)
    }

    pub(super) fn clear(&self) -> std::io::Result<()> {
        self.file.set_len(0)
    }

    pub(super) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// Writes encoded records for lines `first`, `first + 1`, …
    pub(super) fn write(&self, first: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.file
            .write_all_at(bytes, (first - 1) * RECORD_BYTES as u64)
    }

    pub(super) fn read(&self, line: u64) -> Result<Record, String> {
        Ok(self.read_span(line, 1)?[0])
    }

    /// The records of lines `first` … `first + count − 1`, in one read.
    pub(super) fn read_span(&self, first: u64, count: usize) -> Result<Vec<Record>, String> {
        if first == 0 {
            return Err("a pointer to line 0".into());
        }
        let mut buf = vec![0u8; count * RECORD_BYTES];
        self.file
            .read_exact_at(&mut buf, (first - 1) * RECORD_BYTES as u64)
            .map_err(|e| format!("cannot read the record of line {first}: {e}"))?;
        Ok(buf.chunks_exact(RECORD_BYTES).map(Record::decode).collect())
    }

    /// The record of `slot`'s message `seq` expected at `line`: anything else there
    /// means the file is not this box's index.
    fn read_expecting(&self, line: u64, slot: u32, seq: u64) -> Result<Record, String> {
        let r = self.read(line)?;
        if r.slot != slot || r.seq != seq {
            return Err(format!(
                "line {line} should hold seq {seq} of author slot {slot}, its record says seq {} of slot {}",
                r.seq, r.slot
            ));
        }
        Ok(r)
    }
}

/// What memory holds of one author: O(1) and its head's skip chain.
#[derive(Debug, Clone)]
pub(super) struct AuthorState {
    pub head: AuthorHead,
    /// The line of the head.
    pub line: u64,
    /// (seq, line) of the head, skip(head), skip(skip(head)), …: the lines the next
    /// message's `skip` pointer can name. Read from the file on first use, so an author
    /// that sends nothing after a start costs no reads.
    spine: Option<Vec<(u64, u64)>>,
}

impl AuthorState {
    pub(super) fn new(head: AuthorHead, line: u64) -> AuthorState {
        AuthorState {
            head,
            line,
            spine: None,
        }
    }

    /// An author whose history on this node continues from `head` (an epoch's final
    /// head) with no line in the live box yet: its first line there points at nothing
    /// before it, and reads never go below it.
    pub(super) fn before(head: AuthorHead) -> AuthorState {
        AuthorState {
            head,
            line: 0,
            spine: Some(Vec::new()),
        }
    }

    /// An author not seen before: nothing to read for its spine.
    pub(super) fn first() -> AuthorState {
        AuthorState {
            head: AuthorHead {
                seq: 0,
                id: Hex([0; 32]),
                clock: 0,
            },
            line: 0,
            spine: Some(Vec::new()),
        }
    }

    /// Takes the author's next message (seq = head + 1, at `line`) and returns its
    /// record's two pointers. When the spine cannot be read back (a damaged index),
    /// the record gets no skip pointer (`find` then steps by `prev`: slower, still
    /// right) and the problem is returned to be reported.
    pub(super) fn advance(
        &mut self,
        file: &IndexFile,
        slot: u32,
        next: AuthorHead,
        line: u64,
    ) -> (u64, u64, Option<String>) {
        let (spine, problem) = match self.spine.take() {
            Some(s) => (s, None),
            None => match self.read_spine(file, slot) {
                Ok(s) => (s, None),
                Err(e) => (Vec::new(), Some(e)),
            },
        };
        // skip(h + 1) is h with its trailing ones cleared: the spine's entry past them.
        let ones = self.head.seq.trailing_ones() as usize;
        let skip_line = match spine.get(ones) {
            Some(&(seq, l)) if seq == skip_of(next.seq) => l,
            _ => 0,
        };
        let mut next_spine = Vec::with_capacity(spine.len().saturating_sub(ones) + 1);
        next_spine.push((next.seq, line));
        next_spine.extend(spine.iter().skip(ones));
        let prev_line = self.line;
        self.spine = Some(next_spine);
        self.head = next;
        self.line = line;
        (prev_line, skip_line, problem)
    }

    fn read_spine(&self, file: &IndexFile, slot: u32) -> Result<Vec<(u64, u64)>, String> {
        let mut spine = Vec::new();
        let (mut seq, mut line) = (self.head.seq, self.line);
        while seq > 0 {
            let r = file.read_expecting(line, slot, seq)?;
            spine.push((seq, line));
            if r.skip_line == 0 {
                // A record written without its skip pointer: the chain ends here.
                break;
            }
            (seq, line) = (skip_of(seq), r.skip_line);
        }
        Ok(spine)
    }
}

/// The record of `slot`'s message `seq`, found from its head by the pointers.
pub(super) fn find(
    file: &IndexFile,
    slot: u32,
    head_seq: u64,
    head_line: u64,
    seq: u64,
) -> Result<Record, String> {
    if seq == 0 || seq > head_seq {
        return Err(format!("seq {seq} is not held"));
    }
    let (mut at, mut line) = (head_seq, head_line);
    loop {
        let r = file.read_expecting(line, slot, at)?;
        if at == seq {
            return Ok(r);
        }
        let skip = skip_of(at);
        (at, line) = if skip >= seq && r.skip_line != 0 {
            (skip, r.skip_line)
        } else {
            (at - 1, r.prev_line)
        };
    }
}

/// The records of `slot`'s seqs `from` … `to` (all held), in seq order: the last one
/// found by [`find`], the others by walking `prev` back.
pub(super) fn run_of(
    file: &IndexFile,
    slot: u32,
    head_seq: u64,
    head_line: u64,
    from: u64,
    to: u64,
) -> Result<Vec<Record>, String> {
    let last = find(file, slot, head_seq, head_line, to)?;
    let mut out = Vec::with_capacity(usize::try_from(to - from + 1).unwrap_or(0));
    out.push(last);
    let mut at = last;
    while at.seq > from {
        at = file.read_expecting(at.prev_line, slot, at.seq - 1)?;
        out.push(at);
    }
    out.reverse();
    Ok(out)
}

/// The head an author's record at its head line must match.
pub(super) fn matches_head(r: &Record, slot: u32, head: &AuthorHead) -> bool {
    r.slot == slot && r.seq == head.seq && r.id == head.id && r.clock == head.clock
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(seq: u64) -> AuthorHead {
        AuthorHead {
            seq,
            id: Hex([seq as u8; 32]),
            clock: seq,
        }
    }

    /// One author's 3,000 messages interleaved with another's, then every seq found
    /// from the head, runs walked, and a restart's spine read back from the file.
    #[test]
    fn every_seq_is_found_from_the_head_and_the_spine_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("dshare-index-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let boxp = dir.join("box.txt");
        let file = IndexFile::open(&boxp).unwrap();
        file.clear().unwrap();
        let mut states = [AuthorState::first(), AuthorState::first()];
        let mut line = 0u64;
        for i in 0..6_000u64 {
            let slot = (i % 2) as u32;
            line += 1;
            let next = head(states[slot as usize].head.seq + 1);
            let (prev_line, skip_line, problem) =
                states[slot as usize].advance(&file, slot, next, line);
            assert_eq!(problem, None);
            let r = Record {
                offset: line * 500,
                len: 500,
                slot,
                seq: next.seq,
                clock: next.clock,
                prev_line,
                skip_line,
                id: next.id,
            };
            let mut bytes = Vec::new();
            r.encode(&mut bytes);
            assert_eq!(Record::decode(&bytes), r);
            file.write(line, &bytes).unwrap();
        }
        let s = &states[1];
        for seq in 1..=3_000 {
            let r = find(&file, 1, s.head.seq, s.line, seq).unwrap();
            assert_eq!((r.slot, r.seq, r.offset), (1, seq, seq * 2 * 500));
        }
        let run = run_of(&file, 0, 3_000, states[0].line, 1_000, 1_499).unwrap();
        assert!(run.iter().map(|r| r.seq).eq(1_000..1_500));
        assert!(find(&file, 1, 3_000, s.line, 3_001).is_err());
        // After a restart the spine is read back, and the next pointers agree.
        let mut fresh = AuthorState::new(s.head, s.line);
        let mut kept = s.clone();
        let next = head(3_001);
        assert_eq!(
            fresh.advance(&file, 1, next, 6_001),
            kept.advance(&file, 1, next, 6_001)
        );
        // A record that is not what a pointer promises is refused, not followed.
        let mut wrong = Vec::new();
        Record::decode(&[0u8; RECORD_BYTES]).encode(&mut wrong);
        file.write(s.line, &wrong).unwrap();
        assert!(find(&file, 1, 3_000, s.line, 5).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
