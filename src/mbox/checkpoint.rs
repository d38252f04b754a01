//! The start-up checkpoint (`box.checkpoint`, docs/FORMAT.md §9): the index saved with
//! the line count and chain hash it was taken at, so a node reads only the lines after
//! it. It is derived data: checked against the box before it is used, and rebuilt from
//! the box whenever any check fails.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::hex::{Hash, Hex};
use crate::message::AuthorId;

use super::store::{Entry, Index, Loc, MIN_LINE, conversation_cmp, entry, parse_own_line};
use super::track::{AuthorHead, Tracker};

/// The checkpoint of the box at `box_path`, beside it.
pub fn checkpoint_path(box_path: &Path) -> PathBuf {
    box_path.with_extension("checkpoint")
}

const MAGIC: &[u8; 8] = b"DSHRCKPT";
const VERSION: u32 = 1;
const TAG_ANCHOR: &[u8; 4] = b"ANCH";
const TAG_HEADS: &[u8; 4] = b"HEAD";
const TAG_LOGS: &[u8; 4] = b"LOGS";
const TAG_ARRIVAL: &[u8; 4] = b"ARRV";
const TAG_ORDER: &[u8; 4] = b"ORDR";

const ANCHOR_BYTES: usize = 8 + 32 + 8 + 4 + 8 + 8;
const HEAD_BYTES: usize = 32 + 8 + 32 + 8;
const ENTRY_BYTES: usize = 32 + 8 + 8 + 4;
const LOC_BYTES: usize = 4 + 8;
/// Header, five section headers and the closing hash.
const FIXED_BYTES: u64 = 16 + 5 * 12 + ANCHOR_BYTES as u64 + 3 * 8 + 32;

/// Lines since the last checkpoint that call for a new one, at the least: a kill -9
/// then costs at most this many lines re-read (about 11 ms at 1.07 s a million).
const EVERY_LINES: u64 = 10_000;
/// The share of the box that may pile up after the checkpoint before a new one is
/// written. Each checkpoint rewrites the whole index (76 bytes a message), so writing
/// one every fixed number of lines would cost more disk traffic than the box itself
/// as it grows; one per sixteenth of the box keeps it under twice the box's own
/// (a later on-disk index makes the checkpoint O(authors) and this share moot).
const SHARE_OF_BOX: u64 = 16;
/// A node that receives little still gets a checkpoint this often (when it holds
/// new lines), as long as the checkpoint is small enough to rewrite that often.
const EVERY: Duration = Duration::from_secs(300);
/// Above this many messages (about 76 MB of checkpoint) only the line rules apply.
const TIMED_UP_TO: u64 = 1_000_000;

/// Whether a new checkpoint is due, holding `held` lines with the last checkpoint at
/// `at_last` lines written `since_last` ago.
pub(super) fn due(held: u64, at_last: u64, since_last: Duration) -> bool {
    let new = held.saturating_sub(at_last);
    new > 0
        && (new >= EVERY_LINES.max(held / SHARE_OF_BOX)
            || (since_last >= EVERY && held <= TIMED_UP_TO))
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
/// Called under the index's read lock: a plain copy, the hashing is left to [`seal`].
pub(super) fn encode(index: &Index, written_ms: u64) -> Option<Vec<u8>> {
    let last = *index.arrival.last()?;
    let last = index.entry(last);
    let lines = index.arrival.len() as u64;
    let entries = index.arrival.len();
    let mut out = Vec::with_capacity(
        FIXED_BYTES as usize
            + index.authors.len() * HEAD_BYTES
            + entries * (ENTRY_BYTES + 2 * LOC_BYTES),
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&5u32.to_le_bytes());
    section(&mut out, TAG_ANCHOR, |o| {
        o.extend_from_slice(&lines.to_le_bytes());
        o.extend_from_slice(&index.chain.0);
        o.extend_from_slice(&last.offset().to_le_bytes());
        o.extend_from_slice(&(last.len() as u32).to_le_bytes());
        o.extend_from_slice(&index.max_clock.to_le_bytes());
        o.extend_from_slice(&written_ms.to_le_bytes());
    });
    section(&mut out, TAG_HEADS, |o| {
        o.extend_from_slice(&(index.authors.len() as u64).to_le_bytes());
        for (author, log) in index.authors.iter().zip(&index.logs) {
            let head = log.last().expect("an author in the index has a message");
            o.extend_from_slice(&author.0);
            o.extend_from_slice(&(log.len() as u64).to_le_bytes());
            o.extend_from_slice(&head.id.0);
            o.extend_from_slice(&head.clock.to_le_bytes());
        }
    });
    section(&mut out, TAG_LOGS, |o| {
        for e in index.logs.iter().flatten() {
            o.extend_from_slice(&e.id.0);
            o.extend_from_slice(&e.clock.to_le_bytes());
            o.extend_from_slice(&e.offset().to_le_bytes());
            o.extend_from_slice(&(e.len() as u32).to_le_bytes());
        }
    });
    let locs = |o: &mut Vec<u8>, locs: &mut dyn Iterator<Item = &Loc>| {
        o.extend_from_slice(&lines.to_le_bytes());
        for l in locs {
            o.extend_from_slice(&l.author.to_le_bytes());
            o.extend_from_slice(&l.seq().to_le_bytes());
        }
    };
    section(&mut out, TAG_ARRIVAL, |o| {
        locs(o, &mut index.arrival.iter())
    });
    section(&mut out, TAG_ORDER, |o| locs(o, &mut index.order.iter()));
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

/// The anchor and the index a checkpoint holds, once every structural check passed:
/// each author's entries continue (clocks rising, heads matching), the arrival order
/// names each message once, in seq order per author, with lines back to back from the
/// start of the box to the anchor line, and the conversation order is strictly sorted
/// over every message. Nothing here is checked against the box itself; see [`anchored`].
pub(super) fn decode(bytes: &[u8]) -> Result<(Anchor, Index), String> {
    let sections = sections(bytes)?;
    let get = |tag: &[u8; 4]| {
        sections
            .get(tag)
            .map(|s| Fields(s))
            .ok_or_else(|| format!("no {} section", String::from_utf8_lossy(tag)))
    };
    let anchor = read_anchor(get(TAG_ANCHOR)?)?;
    let mut index = Index::default();
    let heads = read_heads(get(TAG_HEADS)?, &mut index)?;
    read_logs(get(TAG_LOGS)?, &heads, &mut index)?;
    read_arrival(get(TAG_ARRIVAL)?, &anchor, &mut index)?;
    read_order(get(TAG_ORDER)?, &anchor, &mut index)?;
    index.chain = anchor.chain;
    index.max_clock = anchor.max_clock;
    Ok((anchor, index))
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

fn read_heads(mut f: Fields, index: &mut Index) -> Result<Vec<AuthorHead>, String> {
    let n = f.count(HEAD_BYTES)?;
    let mut heads = Vec::with_capacity(n);
    for slot in 0..n {
        let author: AuthorId = f.hash()?;
        let head = AuthorHead {
            seq: f.u64()?,
            id: f.hash()?,
            clock: f.u64()?,
        };
        let slot = u32::try_from(slot).map_err(|_| "too many authors".to_string())?;
        if head.seq == 0 || index.slot.insert(author, slot).is_some() {
            return Err("an author listed twice, or with no message".into());
        }
        index.authors.push(author);
        heads.push(head);
    }
    Ok(heads)
}

fn read_logs(mut f: Fields, heads: &[AuthorHead], index: &mut Index) -> Result<(), String> {
    heads
        .iter()
        .try_fold(0u64, |sum, h| sum.checked_add(h.seq))
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n.checked_mul(ENTRY_BYTES) == Some(f.0.len()))
        .ok_or("the entries do not match the heads' seqs")?;
    for head in heads {
        let mut log: Vec<Entry> = Vec::with_capacity(head.seq as usize);
        for _ in 0..head.seq {
            let (id, clock, offset, len) = (f.hash()?, f.u64()?, f.u64()?, f.u32()?);
            if log.last().is_some_and(|prev| clock <= prev.clock) {
                return Err("an author's clocks do not rise".into());
            }
            log.push(Entry::checked(id, clock, offset, len).ok_or("an entry out of range")?);
        }
        let last = log.last().expect("seq is at least 1");
        if last.id != head.id || last.clock != head.clock {
            return Err("a head does not match its author's last entry".into());
        }
        index.logs.push(log);
    }
    Ok(())
}

fn read_locs(mut f: Fields, anchor: &Anchor, index: &Index) -> Result<Vec<Loc>, String> {
    let n = f.count(LOC_BYTES)?;
    if n as u64 != anchor.lines {
        return Err("the orders do not hold one place a line".into());
    }
    (0..n)
        .map(|_| {
            let (author, seq) = (f.u32()?, f.u64()?);
            let known = index
                .logs
                .get(author as usize)
                .is_some_and(|log| seq >= 1 && seq <= log.len() as u64);
            known
                .then(|| Loc::new(author, seq))
                .ok_or_else(|| "an order names a message the index lacks".to_string())
        })
        .collect()
}

fn read_arrival(f: Fields, anchor: &Anchor, index: &mut Index) -> Result<(), String> {
    let arrival = read_locs(f, anchor, index)?;
    let mut next_seq = vec![1u64; index.logs.len()];
    let mut offset = 0u64;
    let mut max_clock = 0;
    for &loc in &arrival {
        let e = entry(&index.logs, loc);
        let want = &mut next_seq[loc.author as usize];
        if loc.seq() != *want || e.offset() != offset {
            return Err("the arrival order is not the box's line order".into());
        }
        *want += 1;
        offset += e.len() as u64;
        max_clock = max_clock.max(e.clock);
    }
    let last = entry(&index.logs, *arrival.last().expect("at least one line"));
    let all_placed = next_seq
        .iter()
        .zip(&index.logs)
        .all(|(next, log)| *next == log.len() as u64 + 1);
    if !all_placed
        || offset != anchor.end()
        || last.offset() != anchor.offset
        || last.len() != anchor.len as usize
        || max_clock != anchor.max_clock
    {
        return Err("the arrival order does not end at the anchor".into());
    }
    index.arrival = arrival;
    Ok(())
}

fn read_order(f: Fields, anchor: &Anchor, index: &mut Index) -> Result<(), String> {
    let order = read_locs(f, anchor, index)?;
    let (logs, authors) = (&index.logs, &index.authors);
    let cmp = |a: &Loc, b: &Loc| conversation_cmp(logs, authors, *a, *b);
    // Strictly rising and one place a line: every message exactly once.
    if order.windows(2).any(|w| cmp(&w[0], &w[1]).is_ge()) {
        return Err("the conversation order is not sorted".into());
    }
    for loc in order {
        index.order.insert_by(loc, cmp);
    }
    Ok(())
}

/// Whether the box still carries the anchor's chain hash on the anchor's line, at the
/// anchor's place: one line read, whatever the size of the box.
pub(super) fn anchored(
    box_file: &File,
    box_len: u64,
    anchor: &Anchor,
    index: &Index,
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
    let last_id = index.entry(*index.arrival.last().expect("a line")).id;
    if parsed.chain != anchor.chain || parsed.message.id != last_id {
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
    FIXED_BYTES + lines * (HEAD_BYTES + ENTRY_BYTES + 2 * LOC_BYTES) as u64
}

/// What start-up finds.
pub(super) enum Found {
    Missing,
    Usable(Anchor, Box<Index>),
    Refused(String),
}

/// Reads the checkpoint of the box at `box_path` and checks it, structure and anchor.
pub(super) fn load(box_path: &Path, box_file: &File, box_len: u64) -> Found {
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
        let (anchor, index) = decode(&bytes)?;
        anchored(box_file, box_len, &anchor, &index)?;
        Ok((anchor, index))
    })();
    match checked {
        Ok((anchor, index)) => Found::Usable(anchor, Box::new(index)),
        Err(why) => Found::Refused(why),
    }
}

/// The writer's state at the checkpoint's line, derived from the index so that the
/// two cannot disagree.
pub(super) fn tracker_of(index: &Index) -> Tracker {
    let heads = index
        .authors
        .iter()
        .zip(&index.logs)
        .map(|(author, log)| {
            let last = log.last().expect("an author has a message");
            let head = AuthorHead {
                seq: log.len() as u64,
                id: last.id,
                clock: last.clock,
            };
            (*author, head)
        })
        .collect();
    Tracker {
        chain: index.chain,
        lines: index.arrival.len() as u64,
        max_clock: index.max_clock,
        heads,
        starts: Default::default(),
    }
}

/// Replaces the checkpoint with `bytes` atomically: a crash leaves the old one or the
/// new one, never a mix (and a half-written temporary file is overwritten next time).
pub(super) fn write(box_path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let path = checkpoint_path(box_path);
    crate::durable::replace(&path, &path.with_extension("checkpoint.tmp"), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_due_by_lines_or_by_time_when_small() {
        let min = Duration::from_secs(60);
        assert!(!due(0, 0, EVERY * 2), "nothing new");
        assert!(!due(500, 0, min));
        assert!(due(EVERY_LINES, 0, min));
        assert!(due(501, 500, EVERY), "a quiet node, after a while");
        let big = 16_000_000;
        assert!(
            !due(big + EVERY_LINES, big, min),
            "a sixteenth of the box first"
        );
        assert!(due(big + big / 15, big, min));
        assert!(
            !due(big + 5, big, EVERY * 10),
            "too large to rewrite on a timer"
        );
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
    }
}
