//! The start-up checkpoint (`box.checkpoint`, docs/FORMAT.md §10): the node's
//! O(authors) state (chain, counts, each author's head and the line it is on) and the
//! list of conversation-order runs, saved with the line count and chain hash they were
//! taken at, so a node reads only the lines after it. The index itself is on disk
//! ([`super::index`], [`super::runs`]). It is derived data: checked against the box and
//! the index files before it is used, and rebuilt from the box whenever a check fails.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::hex::{Hash, Hex};
use crate::message::AuthorId;

use super::held::{Index, MIN_LINE, parse_own_line};
use super::index::{AuthorState, IndexFile, matches_head};
use super::runs::{Key, OVERLAY_MAX, Run};
use super::track::{AuthorHead, Tracker};

/// The checkpoint of the box at `box_path`, beside it.
pub fn checkpoint_path(box_path: &Path) -> PathBuf {
    box_path.with_extension("checkpoint")
}

const MAGIC: &[u8; 8] = b"DSHRCKPT";
/// Version 1 held the whole index (76 bytes a message); version 2 keeps its `ANCH` and
/// `HEAD` sections as they were and names the index files instead.
const VERSION: u32 = 2;
const TAG_ANCHOR: &[u8; 4] = b"ANCH";
const TAG_HEADS: &[u8; 4] = b"HEAD";
const TAG_LINES: &[u8; 4] = b"LINE";
const TAG_RUNS: &[u8; 4] = b"RUNS";

const ANCHOR_BYTES: usize = 8 + 32 + 8 + 4 + 8 + 8;
const HEAD_BYTES: usize = 32 + 8 + 32 + 8;
const LINE_BYTES: usize = 8;
const RUN_BYTES: usize = 16;
/// Header, four section headers, three counts and the closing hash.
const FIXED_BYTES: u64 = 16 + 4 * 12 + ANCHOR_BYTES as u64 + 3 * 8 + 32;

/// Lines since the last checkpoint that call for a new one: a kill -9 then costs at
/// most this many lines re-read (about 11 ms at 1.07 s a million). A checkpoint is
/// O(authors) (88 bytes an author), so this holds at any size of box.
const EVERY_LINES: u64 = 10_000;
/// A node that receives little still gets a checkpoint this often (when it holds
/// new lines).
const EVERY: Duration = Duration::from_secs(300);
/// The most overlay keys a checkpoint may leave to be re-read from `box.index` at
/// start: the overlay is written as a run at [`OVERLAY_MAX`] (plus at most one commit).
const OVERLAY_AT_START: u64 = 4 * OVERLAY_MAX as u64;

/// Whether a new checkpoint is due, holding `held` lines with the last checkpoint at
/// `at_last` lines written `since_last` ago.
pub(super) fn due(held: u64, at_last: u64, since_last: Duration) -> bool {
    let new = held.saturating_sub(at_last);
    new > 0 && (new >= EVERY_LINES || since_last >= EVERY)
}

/// Where a checkpoint was taken: its last line, by number, chain hash and place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Anchor {
    pub lines: u64,
    pub chain: Hash,
    /// Offset and length (with its line feed) of line `lines`.
    pub offset: u64,
    pub len: u32,
    pub max_clock: u64,
    pub written_ms: u64,
}

impl Anchor {
    /// The box offset the lines after the checkpoint start at.
    pub fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// The checkpoint of `index`, with its closing hash; `None` for an empty index.
/// Called under the index's read lock: O(authors + runs).
pub(super) fn encode(index: &Index, written_ms: u64) -> Option<Vec<u8>> {
    if index.lines == 0 {
        return None;
    }
    let n = index.authors.len();
    let mut out = Vec::with_capacity(
        FIXED_BYTES as usize + n * (HEAD_BYTES + LINE_BYTES) + index.order.runs.len() * RUN_BYTES,
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&4u32.to_le_bytes());
    section(&mut out, TAG_ANCHOR, |o| {
        o.extend_from_slice(&index.lines.to_le_bytes());
        o.extend_from_slice(&index.chain.0);
        o.extend_from_slice(&index.last_line.0.to_le_bytes());
        o.extend_from_slice(&index.last_line.1.to_le_bytes());
        o.extend_from_slice(&index.max_clock.to_le_bytes());
        o.extend_from_slice(&written_ms.to_le_bytes());
    });
    section(&mut out, TAG_HEADS, |o| {
        o.extend_from_slice(&(n as u64).to_le_bytes());
        for (author, state) in index.ids.iter().zip(&index.authors) {
            o.extend_from_slice(&author.0);
            o.extend_from_slice(&state.head.seq.to_le_bytes());
            o.extend_from_slice(&state.head.id.0);
            o.extend_from_slice(&state.head.clock.to_le_bytes());
        }
    });
    section(&mut out, TAG_LINES, |o| {
        o.extend_from_slice(&(n as u64).to_le_bytes());
        for state in &index.authors {
            o.extend_from_slice(&state.line.to_le_bytes());
        }
    });
    section(&mut out, TAG_RUNS, |o| {
        o.extend_from_slice(&(index.order.runs.len() as u64).to_le_bytes());
        for run in &index.order.runs {
            o.extend_from_slice(&run.first.to_le_bytes());
            o.extend_from_slice(&run.last.to_le_bytes());
        }
    });
    Some(out)
}

fn section(out: &mut Vec<u8>, tag: &[u8; 4], body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(tag);
    let at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    body(out);
    let len = (out.len() - at - 8) as u64;
    out[at..at + 8].copy_from_slice(&len.to_le_bytes());
}

/// Appends the SHA-256 of everything before it, which [`decode`] checks first.
pub(super) fn seal(bytes: &mut Vec<u8>) {
    let hash: [u8; 32] = Sha256::digest(&bytes[..]).into();
    bytes.extend_from_slice(&hash);
}

/// Reads fixed-size fields off the front of a byte string; running short is an
/// error, never a panic.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("a section ends early".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }

    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }

    fn hash(&mut self) -> Result<Hex<32>, String> {
        Ok(Hex(self.take(32)?.try_into().expect("32")))
    }

    /// A count of `size`-byte records that must fill the rest exactly: checked before
    /// anything is allocated for them.
    fn count(&mut self, size: usize) -> Result<usize, String> {
        let n = self.u64()?;
        let fits = usize::try_from(n)
            .ok()
            .and_then(|n| n.checked_mul(size))
            .is_some_and(|bytes| bytes == self.0.len());
        if !fits {
            return Err(format!("a count of {n} does not match its section's size"));
        }
        Ok(n as usize)
    }
}

/// The sections of a checkpoint whose closing hash matched, by tag. Unknown tags
/// are skipped, so a later version can add sections that this one ignores.
fn sections(bytes: &[u8]) -> Result<HashMap<[u8; 4], &[u8]>, String> {
    let Some(body_len) = bytes.len().checked_sub(32) else {
        return Err("too short to be a checkpoint".into());
    };
    let (body, hash) = bytes.split_at(body_len);
    if Sha256::digest(body)[..] != hash[..] {
        return Err("its SHA-256 does not match its contents (damaged)".into());
    }
    let mut f = Fields(body);
    if f.take(8)? != MAGIC {
        return Err("not a dshare checkpoint".into());
    }
    let version = f.u32()?;
    if version != VERSION {
        return Err(format!(
            "format version {version}, this dshare reads {VERSION}"
        ));
    }
    let count = f.u32()?;
    let mut found = HashMap::new();
    for _ in 0..count {
        let tag: [u8; 4] = f.take(4)?.try_into().expect("4");
        let len = usize::try_from(f.u64()?).map_err(|_| "a section too large".to_string())?;
        if found.insert(tag, f.take(len)?).is_some() {
            return Err(format!("section {} twice", String::from_utf8_lossy(&tag)));
        }
    }
    if !f.0.is_empty() {
        return Err("bytes after the last section".into());
    }
    Ok(found)
}

/// What a checkpoint holds, once every structural check passed.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Saved {
    pub anchor: Anchor,
    /// By slot: the author, its head, and the line of its head.
    pub heads: Vec<(AuthorId, AuthorHead, u64)>,
    /// The conversation-order runs, oldest first: (first line, last line).
    pub runs: Vec<(u64, u64)>,
}

/// The checkpoint's contents, once every structural check passed: no author twice,
/// each head on its own line within the anchor's, exactly one on the anchor's line,
/// and runs back to back from line 1. Nothing here is checked against the box or the
/// index files; see [`load`].
pub(super) fn decode(bytes: &[u8]) -> Result<Saved, String> {
    let sections = sections(bytes)?;
    let get = |tag: &[u8; 4]| {
        sections
            .get(tag)
            .map(|s| Fields(s))
            .ok_or_else(|| format!("no {} section", String::from_utf8_lossy(tag)))
    };
    let anchor = read_anchor(get(TAG_ANCHOR)?)?;
    let heads = read_heads(get(TAG_HEADS)?, get(TAG_LINES)?, &anchor)?;
    let runs = read_runs(get(TAG_RUNS)?, &anchor)?;
    Ok(Saved {
        anchor,
        heads,
        runs,
    })
}

fn read_anchor(mut f: Fields) -> Result<Anchor, String> {
    let anchor = Anchor {
        lines: f.u64()?,
        chain: f.hash()?,
        offset: f.u64()?,
        len: f.u32()?,
        max_clock: f.u64()?,
        written_ms: f.u64()?,
    };
    if !f.0.is_empty()
        || anchor.lines == 0
        || anchor.offset.checked_add(anchor.len.into()).is_none()
    {
        return Err("a malformed anchor".into());
    }
    Ok(anchor)
}

fn read_heads(
    mut f: Fields,
    mut lines: Fields,
    anchor: &Anchor,
) -> Result<Vec<(AuthorId, AuthorHead, u64)>, String> {
    let n = f.count(HEAD_BYTES)?;
    if lines.count(LINE_BYTES)? != n {
        return Err("the head lines do not match the heads".into());
    }
    let mut seen = HashSet::with_capacity(n);
    let mut lines_seen = HashSet::with_capacity(n);
    let mut heads = Vec::with_capacity(n);
    for _ in 0..n {
        let author: AuthorId = f.hash()?;
        let head = AuthorHead {
            seq: f.u64()?,
            id: f.hash()?,
            clock: f.u64()?,
        };
        let line = lines.u64()?;
        // A seq may be above its line's number: after an archive the live box's lines
        // are numbered from 1 and the seqs go on (the record on the line is checked
        // against the head when the index is taken up).
        if head.seq == 0 || !seen.insert(author) {
            return Err("an author listed twice, or with no message".into());
        }
        if line == 0 || line > anchor.lines || !lines_seen.insert(line) {
            return Err("a head line outside the box, or two heads on one line".into());
        }
        heads.push((author, head, line));
    }
    u32::try_from(n).map_err(|_| "too many authors".to_string())?;
    if !lines_seen.contains(&anchor.lines) {
        return Err("no author's head is on the anchor's line".into());
    }
    Ok(heads)
}

fn read_runs(mut f: Fields, anchor: &Anchor) -> Result<Vec<(u64, u64)>, String> {
    let n = f.count(RUN_BYTES)?;
    let mut runs = Vec::with_capacity(n);
    let mut next = 1u64;
    for _ in 0..n {
        let (first, last) = (f.u64()?, f.u64()?);
        if first != next || last < first || last > anchor.lines {
            return Err("the runs do not cover the lines back to back from line 1".into());
        }
        runs.push((first, last));
        next = last + 1;
    }
    if anchor.lines - (next - 1) > OVERLAY_AT_START {
        return Err("the runs leave too many lines to re-read".into());
    }
    Ok(runs)
}

/// Whether the box still carries the anchor's chain hash on the anchor's line, at the
/// anchor's place, with the id of the message whose head is there: one line read,
/// whatever the size of the box.
pub(super) fn anchored(
    box_file: &File,
    box_len: u64,
    anchor: &Anchor,
    last_id: &Hash,
) -> Result<(), String> {
    if box_len < anchor.end() {
        return Err(format!(
            "it was taken at line {} ending at byte {}, and the box now has only {box_len} bytes (a box restored from an older copy, or cut)",
            anchor.lines,
            anchor.end()
        ));
    }
    let start = anchor.offset.saturating_sub(1);
    let mut raw = vec![0u8; (anchor.end() - start) as usize];
    box_file
        .read_exact_at(&mut raw, start)
        .map_err(|e| format!("cannot read the box at its anchor: {e}"))?;
    let line = if anchor.offset == 0 {
        &raw[..]
    } else if raw[0] == b'\n' {
        &raw[1..]
    } else {
        return Err(format!(
            "line {} of the box is not where it was",
            anchor.lines
        ));
    };
    let parsed = parse_own_line(line).map_err(|why| {
        format!(
            "line {} of the box is not the one it was: {why}",
            anchor.lines
        )
    })?;
    if parsed.chain != anchor.chain || parsed.message.id != *last_id {
        return Err(format!(
            "line {} of the box does not carry the chain hash it was taken at (a checkpoint of another box, or a box rewritten since)",
            anchor.lines
        ));
    }
    Ok(())
}

/// The largest checkpoint a box of `box_len` bytes can have: checked before reading
/// one, so a huge file in its place costs nothing.
fn largest_for(box_len: u64) -> u64 {
    let lines = box_len / MIN_LINE + 1;
    FIXED_BYTES + lines * (HEAD_BYTES + LINE_BYTES + RUN_BYTES) as u64
}

/// What start-up finds.
pub(super) enum Found {
    Missing,
    Usable(Anchor, Box<Index>),
    Refused(String),
}

/// Reads the checkpoint of the box at `box_path` and checks it: its structure, the
/// box at its anchor, the index's records at the anchor and at every head, and the
/// runs it names; then reads back the overlay from the index's last records.
pub(super) fn load(
    box_path: &Path,
    box_file: &File,
    box_len: u64,
    records: &Arc<IndexFile>,
) -> Found {
    let path = checkpoint_path(box_path);
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(crate::home::NO_FOLLOW)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Found::Missing,
        Err(e) => return Found::Refused(format!("cannot open it: {e}")),
    };
    let checked = (|| {
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        if len > largest_for(box_len) {
            return Err(format!(
                "{len} bytes, more than any checkpoint of this box can be"
            ));
        }
        let mut bytes = vec![0u8; len as usize];
        file.read_exact_at(&mut bytes, 0)
            .map_err(|e| format!("cannot read it: {e}"))?;
        let saved = decode(&bytes)?;
        let last_id = saved
            .heads
            .iter()
            .find(|(_, _, line)| *line == saved.anchor.lines)
            .map(|(_, head, _)| head.id)
            .expect("decode found a head on the anchor's line");
        anchored(box_file, box_len, &saved.anchor, &last_id)?;
        let index = index_of(box_path, &saved, records)
            .map_err(|why| format!("the index on disk does not match it: {why}"))?;
        Ok((saved.anchor, index))
    })();
    match checked {
        Ok((anchor, index)) => Found::Usable(anchor, Box::new(index)),
        Err(why) => Found::Refused(why),
    }
}

/// The in-memory index at the checkpoint's line, from what it saved and the index
/// files, each checked where it meets the checkpoint.
fn index_of(box_path: &Path, saved: &Saved, records: &Arc<IndexFile>) -> Result<Index, String> {
    let anchor = &saved.anchor;
    let held = records.records().map_err(|e| e.to_string())?;
    if held < anchor.lines {
        return Err(format!(
            "box.index holds {held} records, the checkpoint is at line {}",
            anchor.lines
        ));
    }
    let at_anchor = records.read(anchor.lines)?;
    if (at_anchor.offset, at_anchor.len) != (anchor.offset, anchor.len) {
        return Err("the record of the anchor's line is not where the line is".into());
    }
    let mut index = Index::empty(Arc::clone(records));
    for (slot, &(author, head, line)) in saved.heads.iter().enumerate() {
        let slot = slot as u32;
        if !matches_head(&records.read(line)?, slot, &head) {
            return Err(format!(
                "the record of line {line} is not author slot {slot}'s head"
            ));
        }
        index.slot.insert(author, slot);
        std::sync::Arc::make_mut(&mut index.ids).push(author);
        index.authors.push(AuthorState::new(head, line));
    }
    for &(first, last) in &saved.runs {
        index
            .order
            .runs
            .push(Arc::new(Run::open(box_path, first, last)?));
    }
    let first = index.order.overlay_first();
    let count = usize::try_from(anchor.lines + 1 - first).expect("bounded by decode");
    let tail = if count > 0 {
        records.read_span(first, count)?
    } else {
        Vec::new()
    };
    for (i, r) in tail.iter().enumerate() {
        let line = first + i as u64;
        let known = index
            .authors
            .get(r.slot as usize)
            .is_some_and(|a| r.seq >= 1 && r.seq <= a.head.seq && r.clock <= a.head.clock);
        if !known || r.offset + u64::from(r.len) > anchor.end() {
            return Err(format!("the record of line {line} names no held message"));
        }
        let key = Key {
            clock: r.clock,
            slot: r.slot,
            line,
        };
        index.order.insert(key, &index.ids);
    }
    index.lines = anchor.lines;
    index.chain = anchor.chain;
    index.max_clock = anchor.max_clock;
    index.last_line = (anchor.offset, anchor.len);
    Ok(index)
}

/// The writer's state at the checkpoint's line, derived from the index so that the
/// two cannot disagree.
pub(super) fn tracker_of(index: &Index) -> Tracker {
    let heads = index
        .ids
        .iter()
        .zip(&index.authors)
        .map(|(author, state)| (*author, state.head))
        .collect();
    Tracker {
        chain: index.chain,
        lines: index.base + index.lines,
        max_clock: index.max_clock,
        heads,
        starts: index.starts.clone(),
    }
}

/// Replaces the checkpoint with `bytes` atomically: a crash leaves the old one or the
/// new one, never a mix (and a half-written temporary file is overwritten next time).
pub(super) fn write(box_path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    crate::durable::replace(&checkpoint_path(box_path), &temporary_path(box_path), bytes)
}

fn temporary_path(box_path: &Path) -> PathBuf {
    checkpoint_path(box_path).with_extension("checkpoint.tmp")
}

/// Removes what a write cut short by a crash left, before the checkpoint is read.
pub(super) fn remove_temporary(box_path: &Path) -> anyhow::Result<()> {
    let path = temporary_path(box_path);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(anyhow::Error::new(e).context(format!("cannot remove {}", path.display())))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_due_by_lines_or_by_time() {
        let min = Duration::from_secs(60);
        assert!(!due(0, 0, EVERY * 2), "nothing new");
        assert!(!due(500, 0, min));
        assert!(due(EVERY_LINES, 0, min));
        assert!(due(501, 500, EVERY), "a quiet node, after a while");
        let big = 16_000_000;
        assert!(
            due(big + EVERY_LINES, big, min),
            "O(authors): as often at any size"
        );
        assert!(due(big + 5, big, EVERY * 10));
    }

    #[test]
    fn damaged_checkpoints_are_refused_not_panicked_on() {
        assert!(decode(b"").is_err());
        let mut bytes = b"DSHRCKPT".to_vec();
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        seal(&mut bytes);
        assert!(decode(&bytes).err().unwrap().contains("no ANCH"));
        let mut flipped = bytes.clone();
        flipped[3] ^= 1;
        assert!(decode(&flipped).err().unwrap().contains("SHA-256"));
        // A section claiming more bytes than there are.
        let mut long = b"DSHRCKPT".to_vec();
        long.extend_from_slice(&VERSION.to_le_bytes());
        long.extend_from_slice(&1u32.to_le_bytes());
        long.extend_from_slice(b"ANCH");
        long.extend_from_slice(&u64::MAX.to_le_bytes());
        seal(&mut long);
        assert!(decode(&long).is_err());
        // Version 1 (the whole index) is refused by its version: the box is read.
        let mut v1 = b"DSHRCKPT".to_vec();
        v1.extend_from_slice(&1u32.to_le_bytes());
        v1.extend_from_slice(&0u32.to_le_bytes());
        seal(&mut v1);
        assert!(decode(&v1).err().unwrap().contains("version 1"));
    }
}
