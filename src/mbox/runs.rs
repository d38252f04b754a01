//! The conversation order on disk (`box.order-F-L` files, docs/FORMAT.md §10): sorted
//! runs plus a small sorted overlay in memory, as an LSM tree keeps them.
//!
//! Lines arrive in this node's order, but a late message with an old clock (a node back
//! from a partition, a new author at clock 1, a catch-up of old history) sorts into the
//! middle of the conversation, so no append-only file can hold it. Instead:
//! - the overlay holds the keys (clock, author, line) of the newest lines, sorted in
//!   memory, at most [`OVERLAY_MAX`] of them (about 400 KB);
//! - when it is full it is written as a run: a file of the keys of lines F…L, sorted;
//! - runs cover consecutive line ranges, oldest first, and the checkpoint thread merges
//!   the newest ones whenever the run before them is no larger than they are together
//!   (a binary counter: at most log2(lines / OVERLAY_MAX) + 1 runs, ~11 at 10,000,000
//!   lines, and each key rewritten about as many times: ~200 bytes a message, off the
//!   commit path).
//!
//! `last(n)` merges from the end of every run and of the overlay: about one read of
//! n keys per run, whatever the size of the box. A run is derived data like the rest
//! of the index: its file name and size are checked at start, each key it yields is
//! checked against the line's record before it is used.

use std::cmp::Ordering;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::message::AuthorId;

use super::order::Blocks;

/// Most keys the overlay holds before it is written as a run. Larger costs memory
/// (24 bytes a key), smaller makes more, smaller runs and more merging.
pub(super) const OVERLAY_MAX: usize = 16_384;

/// Most keys the overlay may hold when its run cannot be written (a full disk, EIO,
/// a directory that refuses new files): the writer then refuses new messages until a
/// run is written. A quarter more than a full overlay leaves time for a passing fault
/// without refusing anything, and keeps the lines after the last run (this plus one
/// commit) well under the 65,536 a checkpoint may leave to the overlay.
pub(super) const OVERLAY_LIMIT: usize = OVERLAY_MAX + OVERLAY_MAX / 4;

/// Bytes of one key on disk: clock 8, slot 4, line 8.
pub(super) const KEY_BYTES: usize = 20;

/// Keys read at a time when a run is read backwards or merged.
const CHUNK: usize = 8_192;

/// A line's place in the conversation order: (clock, author, seq). An author's clocks
/// strictly rise, so (clock, author) is already unique and the line stands in for seq.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    pub clock: u64,
    pub slot: u32,
    pub line: u64,
}

impl Key {
    fn encode(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(&self.clock.to_le_bytes())?;
        out.write_all(&self.slot.to_le_bytes())?;
        out.write_all(&self.line.to_le_bytes())
    }

    fn decode(b: &[u8]) -> Key {
        Key {
            clock: u64::from_le_bytes(b[0..8].try_into().expect("8")),
            slot: u32::from_le_bytes(b[8..12].try_into().expect("4")),
            line: u64::from_le_bytes(b[12..20].try_into().expect("8")),
        }
    }
}

/// The conversation order of two keys; `authors` gives each slot's author id.
pub(super) fn key_cmp(authors: &[AuthorId], a: &Key, b: &Key) -> Ordering {
    a.clock
        .cmp(&b.clock)
        .then_with(|| authors[a.slot as usize].cmp(&authors[b.slot as usize]))
        .then_with(|| a.line.cmp(&b.line))
}

/// The file of the run of lines `first` … `last` of the box at `box_path`.
pub(super) fn run_path(box_path: &Path, first: u64, last: u64) -> PathBuf {
    box_path.with_extension(format!("order-{first}-{last}"))
}

/// Whether `name` is a run file (or a run being written) of the box named `stem`.
pub(super) fn is_run_file(stem: &str, name: &str) -> bool {
    name.strip_prefix(stem)
        .and_then(|rest| rest.strip_prefix(".order-"))
        .is_some()
}

/// The sorted keys of lines `first` … `last`, in a file.
pub(super) struct Run {
    pub first: u64,
    pub last: u64,
    pub path: PathBuf,
    file: File,
}

impl Run {
    pub(super) fn count(&self) -> u64 {
        self.last - self.first + 1
    }

    /// Opens the run a checkpoint names; its size must be one key a line.
    pub(super) fn open(box_path: &Path, first: u64, last: u64) -> Result<Run, String> {
        let path = run_path(box_path, first, last);
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(crate::home::NO_FOLLOW)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let run = Run {
            first,
            last,
            path,
            file,
        };
        if len != run.count() * KEY_BYTES as u64 {
            return Err(format!(
                "{} holds {len} bytes, not one key for each of its {} lines",
                run.path.display(),
                run.count()
            ));
        }
        Ok(run)
    }

    /// Keys `at` … `at + n − 1` of the run (0-based), each checked to name a line of
    /// the run.
    fn read(&self, at: u64, n: usize) -> Result<Vec<Key>, String> {
        let mut buf = vec![0u8; n * KEY_BYTES];
        self.file
            .read_exact_at(&mut buf, at * KEY_BYTES as u64)
            .map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
        let keys: Vec<Key> = buf.chunks_exact(KEY_BYTES).map(Key::decode).collect();
        if keys
            .iter()
            .any(|k| k.line < self.first || k.line > self.last)
        {
            return Err(format!(
                "{} names a line outside its range",
                self.path.display()
            ));
        }
        Ok(keys)
    }

    pub(super) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }
}

/// Writes `keys` (sorted, one for each of lines `first` … `last`) as a run: to a
/// temporary name, then renamed, so a run file is always whole.
fn write_run(
    box_path: &Path,
    first: u64,
    last: u64,
    keys: impl Iterator<Item = Result<Key, String>>,
) -> Result<Run, String> {
    let path = run_path(box_path, first, last);
    let tmp = path.with_extension(format!("order-{first}-{last}.tmp"));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(crate::home::NO_FOLLOW)
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut out = BufWriter::with_capacity(CHUNK * KEY_BYTES, file);
    let mut written = 0u64;
    for key in keys {
        key?.encode(&mut out).map_err(|e| e.to_string())?;
        written += 1;
    }
    out.flush().map_err(|e| e.to_string())?;
    if written != last - first + 1 {
        return Err(format!(
            "a run of lines {first}…{last} came to {written} keys"
        ));
    }
    std::fs::rename(&tmp, &path).map_err(|e| e.to_string())?;
    Run::open(box_path, first, last)
}

/// The conversation order: runs on disk, then the overlay in memory.
#[derive(Default)]
pub(super) struct Order {
    pub runs: Vec<Arc<Run>>,
    pub overlay: Blocks<Key>,
}

impl Order {
    /// The first line the overlay covers.
    pub(super) fn overlay_first(&self) -> u64 {
        self.runs.last().map_or(1, |r| r.last + 1)
    }

    pub(super) fn insert(&mut self, key: Key, authors: &[AuthorId]) {
        self.overlay.insert_by(key, |a, b| key_cmp(authors, a, b));
    }

    /// Writes the overlay as a run when it is full; the overlay is kept (and grows)
    /// if the write fails, and the failure is returned to be logged.
    pub(super) fn flush_if_full(&mut self, box_path: &Path) -> Result<bool, String> {
        if self.overlay.len() < OVERLAY_MAX {
            return Ok(false);
        }
        let first = self.overlay_first();
        let last = first + self.overlay.len() as u64 - 1;
        let run = write_run(box_path, first, last, self.overlay.iter().map(|&k| Ok(k)))?;
        self.runs.push(Arc::new(run));
        self.overlay = Blocks::default();
        Ok(true)
    }

    /// The newest runs to merge into one, if any: the longest tail whose run before
    /// it is no larger than the tail together (so sizes at least double going back).
    pub(super) fn merge_plan(&self) -> Option<Vec<Arc<Run>>> {
        let last = self.runs.len().checked_sub(1)?;
        let (mut from, mut together) = (last, self.runs[last].count());
        while from > 0 && self.runs[from - 1].count() <= together {
            from -= 1;
            together += self.runs[from].count();
        }
        (from < last).then(|| self.runs[from..].to_vec())
    }

    /// Puts `merged` in the place of the runs it was made from (flushes since then
    /// stay after it). Returns the replaced runs.
    pub(super) fn replace(&mut self, merged: Run) -> Vec<Arc<Run>> {
        let (first, last) = (merged.first, merged.last);
        let at = self.runs.iter().position(|r| r.first == first);
        let end = self.runs.iter().position(|r| r.last == last);
        match (at, end) {
            (Some(at), Some(end)) if at <= end => {
                self.runs.splice(at..=end, [Arc::new(merged)]).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The newest `n` keys of the overlay, and the runs, for [`last_n`] outside the
    /// index lock.
    pub(super) fn snapshot(&self, n: usize) -> (Vec<Key>, Vec<Arc<Run>>) {
        (self.overlay.last_n(n).copied().collect(), self.runs.clone())
    }
}

/// One run of `runs` from `inputs` (consecutive, sorted), read in order a chunk at a
/// time.
pub(super) fn merge(
    box_path: &Path,
    inputs: &[Arc<Run>],
    authors: &[AuthorId],
) -> Result<Run, String> {
    let (first, last) = (inputs[0].first, inputs[inputs.len() - 1].last);
    let mut cursors: Vec<Forward> = inputs.iter().map(|r| Forward::new(r)).collect();
    let mut failed = None;
    let keys = std::iter::from_fn(|| {
        let mut best: Option<(usize, Key)> = None;
        for (i, c) in cursors.iter_mut().enumerate() {
            match c.peek() {
                Ok(Some(k)) => {
                    if best.is_none_or(|(_, b)| key_cmp(authors, &k, &b).is_lt()) {
                        best = Some((i, k));
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    failed = Some(e);
                    return None;
                }
            }
        }
        let (i, k) = best?;
        cursors[i].next();
        Some(Ok(k))
    });
    let run = write_run(box_path, first, last, keys);
    match failed {
        Some(e) => Err(e),
        None => run,
    }
}

/// Reads a run from the front.
struct Forward<'a> {
    run: &'a Run,
    next: u64,
    buf: Vec<Key>,
    at: usize,
}

impl<'a> Forward<'a> {
    fn new(run: &'a Run) -> Forward<'a> {
        Forward {
            run,
            next: 0,
            buf: Vec::new(),
            at: 0,
        }
    }

    fn peek(&mut self) -> Result<Option<Key>, String> {
        if self.at == self.buf.len() {
            let left = self.run.count() - self.next;
            if left == 0 {
                return Ok(None);
            }
            let n = (left as usize).min(CHUNK);
            self.buf = self.run.read(self.next, n)?;
            self.next += n as u64;
            self.at = 0;
        }
        Ok(Some(self.buf[self.at]))
    }

    fn next(&mut self) {
        self.at += 1;
    }
}

/// Reads a run from the back, `chunk` keys at a time.
struct Backward<'a> {
    run: &'a Run,
    /// Keys not yet read, from the front.
    left: u64,
    buf: Vec<Key>,
    chunk: usize,
}

impl Backward<'_> {
    fn peek(&mut self) -> Result<Option<Key>, String> {
        if self.buf.is_empty() {
            if self.left == 0 {
                return Ok(None);
            }
            let n = (self.left as usize).min(self.chunk);
            self.left -= n as u64;
            self.buf = self.run.read(self.left, n)?;
        }
        Ok(self.buf.last().copied())
    }
}

/// The last `n` keys of the whole order, in order: the overlay's `newest` (its last
/// `n`) merged with the ends of `runs`.
pub(super) fn last_n(
    newest: Vec<Key>,
    runs: &[Arc<Run>],
    n: usize,
    authors: &[AuthorId],
) -> Result<Vec<Key>, String> {
    let chunk = n.clamp(16, CHUNK);
    let mut backs: Vec<Backward> = runs
        .iter()
        .map(|run| Backward {
            run,
            left: run.count(),
            buf: Vec::new(),
            chunk,
        })
        .collect();
    let mut overlay = newest;
    let mut out = Vec::with_capacity(n.min(1 << 16));
    while out.len() < n {
        let mut best: Option<(Option<usize>, Key)> = overlay.last().map(|&k| (None, k));
        for (i, b) in backs.iter_mut().enumerate() {
            if let Some(k) = b.peek()?
                && best.is_none_or(|(_, m)| key_cmp(authors, &k, &m).is_gt())
            {
                best = Some((Some(i), k));
            }
        }
        let Some((from, key)) = best else { break };
        match from {
            None => overlay.pop(),
            Some(i) => backs[i].buf.pop(),
        };
        out.push(key);
    }
    out.reverse();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::Hex;

    fn author(i: u8) -> AuthorId {
        Hex([i; 32])
    }

    /// Keys inserted in a scrambled clock order, flushed into runs and merged as the
    /// node does, read back last-n exactly as a sorted list of them all.
    #[test]
    fn runs_and_overlay_give_the_same_last_n_as_one_sorted_list() {
        let dir = std::env::temp_dir().join(format!("dshare-runs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let boxp = dir.join("box.txt");
        let authors: Vec<AuthorId> = (0..7).map(author).collect();
        let mut order = Order::default();
        let mut all = Vec::new();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let total = OVERLAY_MAX as u64 * 5 + 123;
        for line in 1..=total {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Mostly rising clocks, one in eight from long ago.
            let clock = if state.is_multiple_of(8) {
                state % 1000
            } else {
                line * 3
            };
            let key = Key {
                clock,
                slot: (state % 7) as u32,
                line,
            };
            all.push(key);
            order.insert(key, &authors);
            if order.flush_if_full(&boxp).unwrap() {
                while let Some(inputs) = order.merge_plan() {
                    let merged = merge(&boxp, &inputs, &authors).unwrap();
                    for old in order.replace(merged) {
                        std::fs::remove_file(&old.path).unwrap();
                    }
                }
            }
        }
        let sizes: Vec<u64> = order.runs.iter().map(|r| r.count()).collect();
        assert_eq!(sizes, [4 * OVERLAY_MAX as u64, OVERLAY_MAX as u64]);
        all.sort_by(|a, b| key_cmp(&authors, a, b));
        for n in [0, 1, 10, 500, OVERLAY_MAX + 7, all.len(), all.len() + 5] {
            let (newest, runs) = order.snapshot(n);
            let got = last_n(newest, &runs, n, &authors).unwrap();
            let skip = all.len().saturating_sub(n);
            assert_eq!(got, all[skip..], "last {n}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
