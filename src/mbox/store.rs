//! Opening a box (scan, recover a torn tail) and the in-memory index that answers
//! reads. Bodies stay on disk: the index holds ids, clocks and offsets only.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::chain::{self, Head};
use crate::hex::Hash;
use crate::message::{AuthorId, Message};

use super::format::{Line, parse_line};
use super::order::Blocks;
use super::track::Tracker;
use super::verify::HeadRecord;

/// Where a line is in the file, and what the index needs to know of it: 48 bytes a
/// message (the id, the clock, and the line's offset and length packed in one word).
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub id: Hash,
    pub clock: u64,
    /// Offset in the low [`OFFSET_BITS`] bits, line length above them.
    at: u64,
}

/// Offsets up to 2^40 bytes (1 TiB of box); the 24 bits left hold the line's length,
/// and a line of the largest message, every byte escaped, is under 400 KiB.
const OFFSET_BITS: u32 = 40;

impl Entry {
    fn new(id: Hash, clock: u64, offset: u64, len: u32) -> Entry {
        assert!(
            offset < 1 << OFFSET_BITS && u64::from(len) < 1 << (64 - OFFSET_BITS),
            "a box over 1 TiB, or a line over 16 MiB"
        );
        Entry {
            id,
            clock,
            at: offset | u64::from(len) << OFFSET_BITS,
        }
    }

    /// An entry read back from a checkpoint; `None` when the offset or the length is
    /// beyond what an entry can hold (a damaged checkpoint).
    pub(super) fn checked(id: Hash, clock: u64, offset: u64, len: u32) -> Option<Entry> {
        (offset < 1 << OFFSET_BITS && u64::from(len) < 1 << (64 - OFFSET_BITS))
            .then(|| Entry::new(id, clock, offset, len))
    }

    pub(super) fn offset(&self) -> u64 {
        self.at & ((1 << OFFSET_BITS) - 1)
    }

    pub(super) fn len(&self) -> usize {
        usize::try_from(self.at >> OFFSET_BITS).expect("24 bits fit")
    }
}

const _: () = assert!(std::mem::size_of::<Entry>() == 48 && std::mem::size_of::<Loc>() == 12);

/// The shortest line a box can hold: the keys, four 64-digit hex values and a
/// 128-digit signature come to more than this, whatever the body.
pub(super) const MIN_LINE: u64 = 400;

/// A message named by its author's slot in the index and its seq: 12 bytes (the seq
/// in two halves keeps the alignment at 4), two of them a message (conversation
/// order and arrival order).
#[derive(Debug, Clone, Copy)]
pub(super) struct Loc {
    pub author: u32,
    seq: [u32; 2],
}

impl Loc {
    pub(super) fn new(author: u32, seq: u64) -> Loc {
        Loc {
            author,
            seq: [seq as u32, (seq >> 32) as u32],
        }
    }

    pub(super) fn seq(self) -> u64 {
        u64::from(self.seq[0]) | u64::from(self.seq[1]) << 32
    }
}

#[derive(Default)]
pub(super) struct Index {
    pub authors: Vec<AuthorId>,
    pub logs: Vec<Vec<Entry>>,
    pub slot: HashMap<AuthorId, u32>,
    /// Conversation order: (clock, author, seq), the same on every node. Not a `Vec`:
    /// a message that sorts early (a fresh author starts at clock 1) would move every
    /// later one.
    pub order: Blocks<Loc>,
    /// Arrival order: line order in this node's file.
    pub arrival: Vec<Loc>,
    pub chain: Hash,
    pub max_clock: u64,
    /// Where the live box starts when older lines were closed into epochs: the lines
    /// before it, and per slot the seq held before its first entry and that message's
    /// id. Empty (and 0) for a box without epochs and for slots added since.
    pub base_lines: u64,
    pub skip: Vec<u64>,
    pub base_ids: Vec<Hash>,
    /// Authors this node holds from a seq above 1 on without epochs of its own (a late
    /// joiner, docs/FORMAT.md §12): their slot, once made, starts there.
    pub starts: HashMap<AuthorId, super::track::AuthorHead>,
}

impl Index {
    /// An empty index that goes on from an epoch's final head.
    pub(super) fn after(head: &super::epoch::FinalHead) -> Index {
        let mut index = Index {
            chain: head.chain,
            max_clock: head.max_clock,
            base_lines: head.lines,
            ..Index::default()
        };
        for (author, h) in &head.heads {
            index.slot.insert(*author, index.authors.len() as u32);
            index.authors.push(*author);
            index.logs.push(Vec::new());
            index.skip.push(h.seq);
            index.base_ids.push(h.id);
        }
        index
    }

    /// The seq held before slot `s`'s first entry.
    pub(super) fn skip_of(&self, s: u32) -> u64 {
        self.skip.get(s as usize).copied().unwrap_or(0)
    }

    /// The highest seq held of slot `s`.
    fn seq_of_slot(&self, s: u32) -> u64 {
        self.skip_of(s) + self.logs[s as usize].len() as u64
    }

    /// Lines of the whole history, epochs included.
    pub(super) fn lines(&self) -> u64 {
        self.base_lines + self.arrival.len() as u64
    }

    pub(super) fn entry(&self, loc: Loc) -> &Entry {
        entry(&self.logs, loc)
    }

    pub(super) fn push(&mut self, line: &Line, offset: u64, len: u32) {
        let m = &line.message;
        let author = match self.slot.get(&m.author) {
            Some(&s) => s,
            None => {
                let s = u32::try_from(self.authors.len()).expect("fewer than 2^32 authors");
                self.authors.push(m.author);
                self.logs.push(Vec::new());
                self.slot.insert(m.author, s);
                if let Some(start) = self.starts.get(&m.author) {
                    self.skip.resize(s as usize, 0);
                    self.base_ids.resize(s as usize, Hash::default());
                    self.skip.push(start.seq);
                    self.base_ids.push(start.id);
                } else if self.skip.len() == s as usize {
                    // Kept aligned with the slots once any slot has a base.
                    self.skip.push(0);
                    self.base_ids.push(Hash::default());
                }
                s
            }
        };
        self.logs[author as usize].push(Entry::new(m.id, m.clock, offset, len));
        // Positions in the slot's log, which starts after its epoch's head.
        let loc = Loc::new(author, m.seq - self.skip_of(author));
        let (logs, authors) = (&self.logs, &self.authors);
        self.order
            .insert_by(loc, |&a, &b| conversation_cmp(logs, authors, a, b));
        self.arrival.push(loc);
        self.chain = line.chain;
        self.max_clock = self.max_clock.max(m.clock);
    }

    pub(super) fn heads(&self) -> Vec<Head> {
        self.authors
            .iter()
            .zip(&self.logs)
            .enumerate()
            .filter_map(|(s, (author, log))| {
                let id = log.last().map(|e| e.id).or(self.base_ids.get(s).copied())?;
                Some(Head {
                    author: *author,
                    seq: self.seq_of_slot(s as u32),
                    id,
                })
            })
            .collect()
    }
}

pub(super) fn entry(logs: &[Vec<Entry>], loc: Loc) -> &Entry {
    &logs[loc.author as usize][(loc.seq() - 1) as usize]
}

/// (clock, author, seq): the order every node shows.
pub(super) fn conversation_cmp(
    logs: &[Vec<Entry>],
    authors: &[AuthorId],
    a: Loc,
    b: Loc,
) -> Ordering {
    let (ea, eb) = (entry(logs, a), entry(logs, b));
    ea.clock
        .cmp(&eb.clock)
        .then_with(|| authors[a.author as usize].cmp(&authors[b.author as usize]))
        .then_with(|| a.seq().cmp(&b.seq()))
}

/// Counts and hashes that describe a box.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Summary {
    pub messages: u64,
    pub authors: u64,
    /// The chain hash of the last line (the box's head).
    pub head: Hash,
    /// The order-independent digest of the messages held.
    pub digest: Hash,
    pub max_clock: u64,
}

/// The box file and its index. Reads come from any thread; appends come only from
/// the [`super::Writer`], which owns the append handle (one commit at a time).
pub struct Store {
    path: PathBuf,
    /// Replaced with the index when an archive replaces the box (lock the index first).
    reader: RwLock<Arc<File>>,
    index: RwLock<Index>,
    /// Number of durable lines, for readers that wait for new ones.
    lines: Mutex<u64>,
    /// Set (under the `lines` lock) when the node stops: waiting readers return at
    /// once, so a stop does not wait out their long-polls.
    closing: AtomicBool,
    grew: Condvar,
    /// Readers waiting on `grew` (changed under the `lines` lock): without any, a
    /// commit makes no wake-up call.
    waiting: AtomicUsize,
    subscribers: Mutex<Vec<Subscriber>>,
    /// Group commits (fsyncs) since the node started: fewer than messages under load.
    commits: AtomicU64,
    /// Set when opening found the end of the box missing (a bad last line moved aside,
    /// or fewer lines than the head file records): some of this node's own messages
    /// may now exist only on peers, and signing a new one before they are back would
    /// reuse their seqs, a fork of its own history. Cleared by the replicator.
    recovering: AtomicBool,
    checkpoints: Checkpoints,
}

/// When the checkpoint was last written, and the background thread that writes the
/// next one: a commit only asks for it, so a checkpoint never holds up a commit.
struct Checkpoints {
    /// Lines in the box at the last checkpoint written or used.
    at_lines: AtomicU64,
    at_time: Mutex<Instant>,
    /// Set to ask the background thread for a checkpoint.
    wanted: Mutex<bool>,
    wake: Condvar,
    /// Held while one is written: the background thread and the one at a stop.
    writing: Mutex<()>,
}

impl Checkpoints {
    fn new(at_lines: u64) -> Checkpoints {
        Checkpoints {
            at_lines: AtomicU64::new(at_lines),
            at_time: Mutex::new(Instant::now()),
            wanted: Mutex::new(false),
            wake: Condvar::new(),
            writing: Mutex::new(()),
        }
    }

    fn request(&self) {
        *self.wanted.lock().expect("checkpoint lock") = true;
        self.wake.notify_one();
    }

    /// Whether a checkpoint is due now that the box holds `lines` lines.
    fn due(&self, lines: u64) -> bool {
        let since = self.at_time.lock().expect("checkpoint lock").elapsed();
        super::checkpoint::due(lines, self.at_lines.load(AtomicOrdering::Relaxed), since)
    }

    /// The thread writes each requested checkpoint until the store closes. It holds the
    /// store only weakly, so it never keeps one alive.
    fn start(store: &Arc<Store>) {
        let weak = Arc::downgrade(store);
        let spawned = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                while let Some(store) = weak.upgrade() {
                    let c = &store.checkpoints;
                    let mut wanted = c.wanted.lock().expect("checkpoint lock");
                    if !*wanted {
                        wanted = c
                            .wake
                            .wait_timeout(wanted, Duration::from_secs(1))
                            .expect("checkpoint lock")
                            .0;
                    }
                    if store.closing.load(AtomicOrdering::Relaxed) {
                        return;
                    }
                    if std::mem::take(&mut *wanted) {
                        drop(wanted);
                        store.save_checkpoint();
                    }
                }
            });
        if let Err(e) = spawned {
            crate::warning!(
                "cannot start the checkpoint thread: {e}; checkpoints are written at a clean stop only"
            );
        }
    }
}

/// The index and anchor of a usable checkpoint of the box, or an empty index (with
/// the reason in the log) when there is none or it fails a check.
fn start_from_checkpoint(
    path: &Path,
    file: &File,
    size: u64,
) -> (Index, Option<super::checkpoint::Anchor>) {
    use super::checkpoint::{Found, checkpoint_path, load};
    match load(path, file, size) {
        Found::Usable(anchor, index) => (*index, Some(anchor)),
        Found::Missing => (Index::default(), None),
        Found::Refused(why) => {
            crate::warning!(
                "the checkpoint {} was not used: {why}; reading the whole box instead (a new checkpoint replaces it)",
                checkpoint_path(path).display()
            );
            (Index::default(), None)
        }
    }
}

/// Called with each batch of newly stored messages; see [`Store::subscribe`].
type Subscriber = Box<dyn Fn(&Arc<Vec<Message>>) + Send + Sync>;

/// The file that records the last durable line count and chain hash, beside the box,
/// so `verify` can tell when lines were cut from the end.
pub fn head_path(box_path: &Path) -> PathBuf {
    box_path.with_extension("head")
}

impl Store {
    /// Opens (or creates) the box at `path`, checking every line's format, id, chain
    /// and continuity. A bad last line (a write torn by a crash) is moved into a
    /// `box.torn-<ms>` file beside the box; a bad line anywhere else is corruption
    /// and stops the node. Signatures are not re-checked here: the node checked them
    /// before it wrote them, and `dshare verify` checks them all.
    pub fn open(path: &Path) -> Result<(Arc<Store>, File, Tracker)> {
        Store::open_after(path, None)
    }

    /// [`Store::open`] of a live box that continues from an epoch's final head
    /// (`None`: a box without epochs, which starts from the genesis chain).
    pub fn open_after(
        path: &Path,
        base: Option<&super::epoch::FinalHead>,
    ) -> Result<(Arc<Store>, File, Tracker)> {
        let mut append = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .custom_flags(crate::home::NO_FOLLOW)
            .open(path)
            .map_err(|e| crate::home::cannot_open(path, "the message box", e))?;
        let started = Instant::now();
        let size = append.metadata().map_or(0, |m| m.len());
        let starts = super::epoch::read_starts(path)?;
        // The checkpoint knows nothing of epochs yet: a box after one is read whole.
        let (mut index, anchor) = match base {
            Some(head) => (Index::after(head), None),
            None if !starts.is_empty() => (Index::default(), None),
            None => start_from_checkpoint(path, &append, size),
        };
        index.starts = starts.clone();
        // Every line is at least MIN_LINE bytes, so this many slots are enough for the
        // whole box and the arrival list never moves while it is read (pages of it
        // that are not needed are never touched, and cost no memory).
        let most = usize::try_from(size / MIN_LINE).unwrap_or(0);
        index
            .arrival
            .reserve(most.saturating_sub(index.arrival.len()));
        let mut tracker = match base {
            Some(head) => head.tracker(),
            None if anchor.is_none() => Tracker::default(),
            None => super::checkpoint::tracker_of(&index),
        };
        tracker.starts = starts;
        let mut offset = anchor.map_or(0, |a| a.end());
        (&append)
            .seek(SeekFrom::Start(offset))
            .with_context(|| format!("cannot read {}", path.display()))?;
        let mut bad: Option<(u64, String)> = None;
        // Parsing a line and recomputing its id is independent of every other line:
        // a reader thread does that on every core, a block of lines at a time, while
        // this thread runs the checks that link lines (chain hash, seq, prev, clock)
        // in file order on the block before. One block in flight bounds the memory.
        std::thread::scope(|s| -> Result<()> {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<(usize, Result<Line, String>)>>(1);
            let file = &append;
            let reader = s.spawn(move || {
                super::lines::blocks(
                    file,
                    |lines| {
                        let parsed = crate::par::map(lines, |raw| parse_own_line(raw));
                        let sized = lines.iter().map(|raw| raw.len()).zip(parsed).collect();
                        // The checker stopped (a corrupt box): stop reading.
                        Ok(tx.send(sized).is_ok())
                    },
                    |e| anyhow::Error::new(e).context(format!("cannot read {}", path.display())),
                )
            });
            for block in rx {
                for (size, parsed) in block {
                    if let Some((at, why)) = &bad {
                        bail!(
                            "the message box {} is corrupt at line {}: {why}\n(lines follow it, so this is not a torn write; run `dshare verify` for details, and restore the box from a copy or remove it to refetch everything from peers)",
                            path.display(),
                            at
                        );
                    }
                    let line_no = tracker.lines + 1;
                    let checked = parsed.and_then(|line| {
                        tracker.check(&line).map_err(|e| e.to_string())?;
                        Ok(line)
                    });
                    match checked {
                        Ok(line) => {
                            tracker.advance(&line);
                            let len =
                                u32::try_from(size).context("a box line longer than 4 GiB")?;
                            index.push(&line, offset, len);
                            offset += size as u64;
                        }
                        Err(why) => bad = Some((line_no, why)),
                    }
                }
            }
            reader.join().expect("the box reader panicked")
        })?;
        let torn = bad.is_some();
        if let Some((line_no, why)) = bad {
            quarantine_tail(path, &mut append, offset, line_no, &why)?;
        }
        let read = tracker.lines - anchor.map_or(index.base_lines, |a| a.lines);
        let took = started.elapsed().as_millis();
        match anchor {
            Some(a) => crate::note!(
                "read {read} lines after the checkpoint at line {} in {took} ms",
                a.lines
            ),
            None if read > 0 => {
                crate::note!("read all {read} lines of the box in {took} ms (no usable checkpoint)")
            }
            None => {}
        }
        let cut = keep_cut_evidence(path, tracker.lines);
        let reader = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let lines = tracker.lines;
        let store = Store {
            path: path.to_path_buf(),
            reader: RwLock::new(Arc::new(reader)),
            index: RwLock::new(index),
            lines: Mutex::new(lines),
            closing: AtomicBool::new(false),
            grew: Condvar::new(),
            waiting: AtomicUsize::new(0),
            subscribers: Mutex::new(Vec::new()),
            commits: AtomicU64::new(0),
            recovering: AtomicBool::new(torn || cut),
            checkpoints: Checkpoints::new(anchor.map_or(0, |a| a.lines)),
        };
        let store = Arc::new(store);
        Checkpoints::start(&store);
        if anchor.is_none() && lines > 0 {
            // The next start should not pay for this one's full read.
            store.checkpoints.request();
        }
        Ok((store, append, tracker))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds durable lines to the index, hands them to the subscribers, and wakes the
    /// readers waiting for new lines. Called by the writer after fsync, never before.
    pub(super) fn publish(&self, appended: Vec<(Line, u64, u32)>) {
        self.commits.fetch_add(1, AtomicOrdering::Relaxed);
        let messages: Vec<Message> = {
            let mut index = self.index.write().expect("index lock");
            for (line, offset, len) in &appended {
                index.push(line, *offset, *len);
            }
            appended
                .into_iter()
                .map(|(line, _, _)| line.message)
                .collect()
        };
        let count = messages.len() as u64;
        // Subscribers first: they start the pushes to peers, which is what other
        // nodes wait for; local readers are woken right after.
        let messages = Arc::new(messages);
        for subscriber in self.subscribers.lock().expect("subscribers lock").iter() {
            subscriber(&messages);
        }
        let mut lines = self.lines.lock().expect("lines lock");
        *lines += count;
        if self.waiting.load(AtomicOrdering::Relaxed) > 0 {
            self.grew.notify_all();
        }
        let held = *lines;
        drop(lines);
        if self.checkpoints.due(held) {
            self.checkpoints.request();
        }
    }

    /// Writes a checkpoint of the index as it is (at a line boundary: the index holds
    /// only whole, durable lines), unless the last one is at the same line. Failures are
    /// logged: the box is whole without a checkpoint, the next start just reads more.
    pub fn save_checkpoint(&self) {
        let c = &self.checkpoints;
        let _writing = c.writing.lock().expect("checkpoint lock");
        let bytes = {
            let index = self.index.read().expect("index lock");
            if index.arrival.len() as u64 == c.at_lines.load(AtomicOrdering::Relaxed)
                || index.base_lines > 0
                || !index.starts.is_empty()
            {
                return;
            }
            super::checkpoint::encode(&index, crate::time::now_ms())
                .map(|bytes| (bytes, index.arrival.len() as u64))
        };
        let Some((mut bytes, lines)) = bytes else {
            return;
        };
        super::checkpoint::seal(&mut bytes);
        match super::checkpoint::write(&self.path, &bytes) {
            Ok(()) => {
                c.at_lines.store(lines, AtomicOrdering::Relaxed);
                *c.at_time.lock().expect("checkpoint lock") = Instant::now();
            }
            Err(e) => crate::warning!(
                "cannot write the checkpoint {}: {e}; the next start reads the whole box",
                super::checkpoint::checkpoint_path(&self.path).display()
            ),
        }
    }

    /// Calls `f` with every batch of newly stored messages, on the thread that
    /// stored them, before the writers of the batch are answered. `f` must be quick
    /// and must not block (nor store anything).
    pub fn subscribe(&self, f: impl Fn(&Arc<Vec<Message>>) + Send + Sync + 'static) {
        self.subscribers
            .lock()
            .expect("subscribers lock")
            .push(Box::new(f));
    }

    /// True while the end of the box, lost before this start, may still be on peers
    /// only: the node then signs no new message (see [`super::StoreError::Recovering`]).
    pub fn recovering(&self) -> bool {
        self.recovering.load(AtomicOrdering::SeqCst)
    }

    /// The peers have been asked for what was lost and have sent it: the node may sign
    /// new messages again.
    pub fn end_recovery(&self) {
        self.recovering.store(false, AtomicOrdering::SeqCst);
    }

    /// Group commits (one fsync each) since the node started.
    pub fn commits(&self) -> u64 {
        self.commits.load(AtomicOrdering::Relaxed)
    }

    pub fn summary(&self) -> Summary {
        let index = self.index.read().expect("index lock");
        let heads = index.heads();
        Summary {
            messages: index.lines(),
            authors: heads.len() as u64,
            head: index.chain,
            digest: chain::digest(&heads),
            max_clock: index.max_clock,
        }
    }

    pub fn heads(&self) -> Vec<Head> {
        self.index.read().expect("index lock").heads()
    }

    /// Records that `author`'s history on this node starts after `start` (the writer
    /// calls it, with commits held, once the start is durable).
    pub(super) fn add_start(&self, author: AuthorId, start: super::track::AuthorHead) {
        self.index
            .write()
            .expect("index lock")
            .starts
            .insert(author, start);
    }

    /// Bytes of the live box that hold published lines: durable, and never cut back
    /// (a failed write is, but it was never published).
    pub(super) fn durable_bytes(&self) -> u64 {
        let index = self.index.read().expect("index lock");
        index.arrival.last().map_or(0, |&l| {
            index.entry(l).offset() + index.entry(l).len() as u64
        })
    }

    /// Lines closed into epochs before the live box (0 without epochs).
    pub fn base_lines(&self) -> u64 {
        self.index.read().expect("index lock").base_lines
    }

    /// The number of messages held from `author` (its highest seq).
    pub fn seq_of(&self, author: &AuthorId) -> u64 {
        let index = self.index.read().expect("index lock");
        index.slot.get(author).map_or(0, |&s| index.seq_of_slot(s))
    }

    /// The first seq of `author` this node can still serve (1 unless its older
    /// messages were closed into epochs); above [`Store::seq_of`] when none is left.
    pub fn first_seq(&self, author: &AuthorId) -> u64 {
        let index = self.index.read().expect("index lock");
        index.slot.get(author).map_or(1, |&s| index.skip_of(s) + 1)
    }

    /// The id of `author`'s message `seq`, if held (in the live box, or as the last
    /// message of an author in the final head the box continues from).
    pub fn id_at(&self, author: &AuthorId, seq: u64) -> Option<Hash> {
        let index = self.index.read().expect("index lock");
        let &slot = index.slot.get(author)?;
        let skip = index.skip_of(slot);
        if seq == skip && skip > 0 {
            return index.base_ids.get(slot as usize).copied();
        }
        let i = usize::try_from(seq.checked_sub(1 + skip)?).ok()?;
        index.logs[slot as usize].get(i).map(|e| e.id)
    }

    /// The last `n` messages in conversation order (all when `n` is `None`), and the
    /// number of lines they were read at, so a follower can go on from there with
    /// [`Store::since`] without missing or repeating a message.
    pub fn last(&self, n: Option<usize>) -> Result<(Vec<Message>, u64)> {
        let (entries, lines, file): (Vec<Entry>, u64, _) = {
            let index = self.index.read().expect("index lock");
            let entries = index
                .order
                .last_n(n.unwrap_or(usize::MAX))
                .map(|&l| *index.entry(l))
                .collect();
            (entries, index.lines(), self.reader_now())
        };
        Ok((self.read_entries(&file, &entries)?, lines))
    }

    /// Up to `limit` messages after the first `after` lines, in arrival order.
    pub fn since(&self, after: u64, limit: usize) -> Result<Vec<Message>> {
        let (entries, file): (Vec<Entry>, _) = {
            let index = self.index.read().expect("index lock");
            // Line numbers count the epochs' lines too; those are no longer here.
            let start = usize::try_from(after.saturating_sub(index.base_lines))
                .unwrap_or(usize::MAX)
                .min(index.arrival.len());
            let entries = index.arrival[start..]
                .iter()
                .take(limit)
                .map(|&l| *index.entry(l))
                .collect();
            (entries, self.reader_now())
        };
        self.read_entries(&file, &entries)
    }

    /// Up to `limit` of `author`'s messages from seq `from` on.
    pub fn range(&self, author: &AuthorId, from: u64, limit: usize) -> Result<Vec<Message>> {
        let (entries, file): (Vec<Entry>, _) = {
            let index = self.index.read().expect("index lock");
            let entries = match index.slot.get(author) {
                None => Vec::new(),
                Some(&s) => {
                    // Below the first seq held: from the first held.
                    let start = usize::try_from((from.max(1) - 1).saturating_sub(index.skip_of(s)))
                        .unwrap_or(usize::MAX);
                    let log = &index.logs[s as usize];
                    log.get(start..)
                        .unwrap_or(&[])
                        .iter()
                        .take(limit)
                        .copied()
                        .collect()
                }
            };
            (entries, self.reader_now())
        };
        self.read_entries(&file, &entries)
    }

    /// Waits until the box holds more than `lines` lines or `timeout` passes;
    /// returns the line count.
    pub fn wait_beyond(&self, lines: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut held = self.lines.lock().expect("lines lock");
        while *held <= lines && !self.closing.load(AtomicOrdering::Relaxed) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.waiting.fetch_add(1, AtomicOrdering::Relaxed);
            held = self.grew.wait_timeout(held, left).expect("lines lock").0;
            self.waiting.fetch_sub(1, AtomicOrdering::Relaxed);
        }
        *held
    }

    /// Ends every [`Store::wait_beyond`] now and from now on: the node is stopping.
    pub fn release_waiters(&self) {
        let _held = self.lines.lock().expect("lines lock");
        self.closing.store(true, AtomicOrdering::Relaxed);
        self.grew.notify_all();
        self.checkpoints.wake.notify_all();
    }

    /// The box file the index's offsets point into; taken under the index lock.
    fn reader_now(&self) -> Arc<File> {
        Arc::clone(&self.reader.read().expect("reader lock"))
    }

    /// Replaces the box under a running node (an archive): `rebase` gets the index and
    /// returns the one that matches `reader`, both swapped at once.
    pub(super) fn replace_box(&self, reader: File, rebase: impl FnOnce(&Index) -> Index) {
        let mut index = self.index.write().expect("index lock");
        let next = rebase(&index);
        *self.reader.write().expect("reader lock") = Arc::new(reader);
        *index = next;
    }

    fn read_entries(&self, file: &File, entries: &[Entry]) -> Result<Vec<Message>> {
        let mut out = Vec::with_capacity(entries.len());
        let mut buf = Vec::new();
        for e in entries {
            buf.resize(e.len(), 0);
            file.read_exact_at(&mut buf, e.offset())
                .with_context(|| format!("cannot read {}", self.path.display()))?;
            let text =
                std::str::from_utf8(&buf[..buf.len() - 1]).context("box line is not UTF-8")?;
            let line = parse_line(text).map_err(anyhow::Error::msg)?;
            out.push(line.message);
        }
        Ok(out)
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

/// Moves the bytes from `good_len` to the end into a named file beside the box, makes
/// that durable, then cuts the box back to its last good line.
fn quarantine_tail(
    path: &Path,
    append: &mut File,
    good_len: u64,
    line_no: u64,
    why: &str,
) -> Result<()> {
    let total = append.metadata()?.len();
    let mut tail = vec![0u8; usize::try_from(total - good_len)?];
    append.read_exact_at(&mut tail, good_len)?;
    let name = format!(
        "{}.torn-{}",
        path.file_stem().and_then(|s| s.to_str()).unwrap_or("box"),
        crate::time::now_ms()
    );
    let aside = path.with_file_name(name);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&aside)
        .with_context(|| format!("cannot create {}", aside.display()))?;
    f.write_all(&tail)?;
    f.sync_all()?;
    append.set_len(good_len)?;
    append.sync_all()?;
    crate::warning!(
        "line {line_no} of {} was incomplete or damaged ({why}); moved its {} bytes to {} and kept the {} lines before it. Peers will send the message again if it had reached them.",
        path.display(),
        tail.len(),
        aside.display(),
        line_no - 1
    );
    Ok(())
}

/// The head file is written only after fsync, so a box shorter than it records was cut
/// after the fact (by hand, a restore, a disk fault). The node can go on (peers refill
/// what they have), but the evidence is kept: the head file is renamed, not overwritten.
/// A head file that cannot be read proves nothing about the end of the box, so it is
/// taken as a cut too (kept the same way), as is a box with lines but no record.
/// Returns whether the end of the box may have been lost.
fn keep_cut_evidence(path: &Path, lines: u64) -> bool {
    let head = head_path(path);
    let set_aside = |kind: &str| {
        let aside = head.with_extension(format!("head.{kind}-{}", crate::time::now_ms()));
        let renamed = std::fs::rename(&head, &aside);
        let how = renamed.map_or_else(|e| e.to_string(), |()| "renamed".into());
        format!("{} ({how})", aside.display())
    };
    match super::verify::read_head_record(&head) {
        HeadRecord::Recorded {
            lines: recorded, ..
        } if recorded > lines => {
            crate::warning!(
                "{} holds {lines} lines but {} records {recorded}: lines were cut from the end of the box. Kept the record as {}; peers will send back what they hold.",
                path.display(),
                head.display(),
                set_aside("cut"),
            );
            true
        }
        HeadRecord::Recorded { .. } => false,
        HeadRecord::Unreadable(why) => {
            crate::warning!(
                "{} is unreadable ({why}), so whether lines were cut from the end of {} cannot be told: treated as a cut. Kept the file as {}; peers will send back what they hold.",
                head.display(),
                path.display(),
                set_aside("unreadable"),
            );
            true
        }
        HeadRecord::Missing if lines > 0 => {
            crate::warning!(
                "{} holds {lines} lines but {} records none, so whether lines were cut from its end cannot be told: treated as a cut; peers will send back what they hold.",
                path.display(),
                head.display(),
            );
            true
        }
        HeadRecord::Missing => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::Hex;
    use crate::identity::Identity;
    use crate::message::Draft;
    use sha2::Digest;

    /// One signed message, copied with other fields: the index never checks
    /// signatures, and signing a million would take longer than the measurement.
    fn line_like(template: &Message, author: AuthorId, seq: u64, clock: u64) -> Line {
        let mut m = template.clone();
        (m.author, m.seq, m.clock) = (author, seq, clock);
        m.id = Hex(sha2::Sha256::digest(format!("{author}/{seq}")).into());
        Line {
            chain: m.id,
            message: m,
        }
    }

    fn template() -> Message {
        let identity = Identity::generate();
        let draft = Draft {
            author: identity.author(),
            seq: 1,
            prev: None,
            clock: 1,
            ts: 1,
            body: "x",
        };
        Message::sign(&draft, &identity)
    }

    fn author(i: u64) -> AuthorId {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&i.to_be_bytes());
        Hex(bytes)
    }

    #[test]
    fn the_conversation_order_is_clock_author_seq_whatever_the_arrival_order() {
        let t = template();
        let mut index = Index::default();
        let arrivals = [
            (2, 1, 5),
            (1, 1, 3),
            (2, 2, 9),
            (3, 1, 1),
            (1, 2, 4),
            (4, 1, 3),
        ];
        for (i, &(a, seq, clock)) in arrivals.iter().enumerate() {
            index.push(&line_like(&t, author(a), seq, clock), i as u64 * 500, 500);
        }
        let order: Vec<(u64, u64)> = index
            .order
            .iter()
            .map(|&l| (index.entry(l).clock, l.seq()))
            .collect();
        assert_eq!(order, [(1, 1), (3, 1), (3, 1), (4, 2), (5, 1), (9, 2)]);
        let authors: Vec<_> = index
            .order
            .iter()
            .map(|&l| index.authors[l.author as usize])
            .collect();
        assert_eq!(authors[1], author(1), "clock ties go by author");
        assert_eq!(authors[2], author(4));
    }

    /// An index of `size` entries from 1,000 authors, clocks rising with arrival.
    fn index_of(t: &Message, size: u64) -> Index {
        let mut index = Index::default();
        for i in 0..size {
            let (a, seq) = (i % 1000, i / 1000 + 1);
            index.push(&line_like(t, author(a), seq, i + 2), i * 500, 500);
        }
        index
    }

    /// What a checkpoint holds comes back as it was, in every order, and an index the
    /// box's lines would not make (an entry moved) is refused.
    #[test]
    fn an_index_comes_back_from_its_checkpoint_and_a_moved_entry_is_refused() {
        use super::super::checkpoint::{decode, encode, seal};
        let t = template();
        let mut index = index_of(&t, 5_000);
        index.push(&line_like(&t, author(7_777), 1, 1), 5_000 * 500, 500);
        let mut bytes = encode(&index, 1).unwrap();
        seal(&mut bytes);
        let (anchor, back) = decode(&bytes).unwrap();
        assert_eq!(
            (anchor.lines, anchor.offset, anchor.end()),
            (5_001, 2_500_000, 2_500_500)
        );
        let locs = |i: &Index, order: Vec<Loc>| -> Vec<(u32, u64, Hash)> {
            order
                .iter()
                .map(|&l| (l.author, l.seq(), i.entry(l).id))
                .collect()
        };
        assert_eq!(
            locs(&back, back.arrival.clone()),
            locs(&index, index.arrival.clone())
        );
        assert_eq!(
            locs(&back, back.order.iter().copied().collect()),
            locs(&index, index.order.iter().copied().collect())
        );
        assert_eq!(
            (back.heads(), back.chain, back.max_clock),
            (index.heads(), index.chain, index.max_clock)
        );
        index.logs[3][0] = Entry::new(index.logs[3][0].id, index.logs[3][0].clock, 1, 500);
        let mut moved = encode(&index, 1).unwrap();
        seal(&mut moved);
        assert!(decode(&moved).err().unwrap().contains("line order"));
    }

    /// The quickest of three rounds of 500 messages from fresh authors, `clock` chosen
    /// by the round; the quickest, so a busy machine does not decide the test.
    fn quickest_round(index: &mut Index, t: &Message, clock: impl Fn(&Index) -> u64) -> Duration {
        // Authors never used before in this index, whichever round this is.
        let mut fresh = 1_000_000_000 + index.authors.len() as u64;
        (0..3)
            .map(|_| {
                let started = Instant::now();
                for _ in 0..500 {
                    fresh += 1;
                    let c = clock(index);
                    index.push(&line_like(t, author(fresh), 1, c), 0, 500);
                }
                started.elapsed()
            })
            .min()
            .expect("three rounds")
    }

    /// Any author may start at clock 1, so such a message sorts before everything
    /// held: in a sorted `Vec` each moved every entry (O(n) under the index lock).
    #[test]
    fn messages_that_sort_first_cost_about_what_messages_that_sort_last_cost() {
        let t = template();
        let mut index = index_of(&t, 300_000);
        let late = quickest_round(&mut index, &t, |index| index.max_clock + 1);
        let early = quickest_round(&mut index, &t, |_| 1);
        eprintln!(
            "500 messages into a 300,000-entry index: {late:?} sorting last, {early:?} sorting first"
        );
        assert!(
            early < late * 10 + Duration::from_millis(20),
            "sorting first: {early:?}, sorting last: {late:?}"
        );
    }

    /// The measurement behind the conversation order's structure:
    /// `cargo test --lib early_messages_into_a_million -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement: builds a million-entry index"]
    fn early_messages_into_a_million_entry_index() {
        let t = template();
        let started = Instant::now();
        let mut index = index_of(&t, 1_000_000);
        let built = started.elapsed();
        let late = quickest_round(&mut index, &t, |index| index.max_clock + 1);
        let early = quickest_round(&mut index, &t, |_| 1);
        eprintln!(
            "1,000,000 entries built in {built:?}; 500 messages from new authors: {late:?} sorting last, {early:?} sorting first (clock 1)"
        );
    }
}
