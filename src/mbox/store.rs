//! Opening a box (scan, recover a torn tail) and the index that answers reads. Memory
//! holds O(authors): each author's head and the line it is on, the chain head and the
//! counts, and a bounded overlay of the newest lines' conversation order; everything
//! older is found on disk through `box.index` ([`super::index`]) and the sorted runs
//! ([`super::runs`]), read with `pread`. Bodies stay in the box. After an archive the
//! index describes the live box alone (its lines numbered from 1, rebuilt inside the
//! archive, [`Store::replace_box`]); the answers add the lines of the epochs before it.

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
use super::head::{HeadRecord, head_path};
use super::held::{Index, parse_own_line};
use super::index::{IndexFile, Record, index_path};
use super::runs::{Run, is_run_file};
use super::track::{AuthorHead, Tracker};

/// The longest line a record may name: a line of the largest message, every byte of
/// its body escaped, is under 400 KiB; a damaged record must not make a read allocate
/// gigabytes.
const MAX_LINE: u32 = 1 << 24;

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
    /// The box file the index's offsets point into; replaced with the index when an
    /// archive replaces the box (taken under the index lock, swapped under its write lock).
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
    checkpoints: Arc<Checkpoints>,
    /// Run files replaced by a merge, removed once a checkpoint that does not name
    /// them is written.
    retired: Mutex<Vec<PathBuf>>,
    /// Set once the index files were found not to match the box while serving: the
    /// checkpoint is then removed, so the next start rebuilds them.
    damaged: AtomicBool,
    /// Where the last page read from a closed epoch ended (one follower catching up at
    /// a time reads on without a rescan; any other only costs a rescan).
    epoch_resume: Mutex<Option<super::epoch_read::Resume>>,
    /// Where the history begins, with what it was worked out from (the lines before
    /// the live box and the epochs directory's change time): `/status` is asked often,
    /// and reading every final head each time would cost O(epochs × authors).
    history_start: Mutex<Option<(HistoryKey, crate::api::status::HistoryStart)>>,
    /// Set while the overlay's run cannot be written ([`Store::flush_overlay`]).
    runs_stalled: AtomicBool,
}

/// What [`Store::history_start`] depends on: an archive moves the base, a prune
/// deletes files in the epochs directory (which changes its times).
type HistoryKey = (u64, Option<std::time::SystemTime>);

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

impl Drop for Store {
    fn drop(&mut self) {
        self.checkpoints.wake_writer();
    }
}

impl Checkpoints {
    /// Wakes the background thread to look again (at a stop, or the store gone).
    /// Under the flag's lock, so it cannot be missed between the look and the wait.
    fn wake_writer(&self) {
        let _wanted = self.wanted.lock().expect("checkpoint lock");
        self.wake.notify_all();
    }

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

    /// The thread writes each requested checkpoint until the store closes or is
    /// dropped. It holds the store only weakly, and only while it writes, so it never
    /// keeps one alive; it sleeps until asked (the store's drop wakes it too).
    fn start(store: &Arc<Store>) {
        let weak = Arc::downgrade(store);
        let c = Arc::clone(&store.checkpoints);
        let spawned = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                loop {
                    let mut wanted = c.wanted.lock().expect("checkpoint lock");
                    while !*wanted && weak.strong_count() > 0 {
                        wanted = c.wake.wait(wanted).expect("checkpoint lock");
                    }
                    let Some(store) = weak.upgrade() else {
                        return;
                    };
                    if store.closing.load(AtomicOrdering::Relaxed) {
                        return;
                    }
                    *wanted = false;
                    drop(wanted);
                    let merged = store.merge_runs();
                    store.write_checkpoint(merged);
                }
            });
        if let Err(e) = spawned {
            crate::warning!(
                "cannot start the checkpoint thread: {e}; checkpoints are written at a clean stop only"
            );
        }
    }
}

/// The index and anchor of a usable checkpoint of the box, or an empty index over
/// emptied index files (with the reason in the log) when there is none or it fails a
/// check. Run files the index does not name (written after the checkpoint, or half
/// written) are removed either way.
fn start_from_checkpoint(
    path: &Path,
    file: &File,
    size: u64,
    records: &Arc<IndexFile>,
) -> Result<(Index, Option<super::checkpoint::Anchor>)> {
    use super::checkpoint::{Found, checkpoint_path, load, remove_temporary};
    remove_temporary(path)?;
    let (index, anchor) = match load(path, file, size, records) {
        Found::Usable(anchor, index) => (*index, Some(anchor)),
        Found::Missing => (Index::empty(Arc::clone(records)), None),
        Found::Refused(why) => {
            crate::warning!(
                "the checkpoint {} was not used: {why}; reading the whole box instead and rebuilding its index (a new checkpoint replaces it)",
                checkpoint_path(path).display()
            );
            (Index::empty(Arc::clone(records)), None)
        }
    };
    if anchor.is_none() {
        records
            .clear()
            .with_context(|| format!("cannot empty {}", index_path(path).display()))?;
    }
    remove_stray_runs(path, &index.order.runs);
    Ok((index, anchor))
}

/// Removes the run files beside the box that `keep` does not name.
fn remove_stray_runs(path: &Path, keep: &[Arc<Run>]) {
    let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
        return;
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if is_run_file(stem, name) && !keep.iter().any(|r| r.path == entry.path()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Reads the lines after the checkpoint's anchor (all of them without one), checking
/// each as [`Store::open`] says, and adds them to the index and its files. A bad last
/// line is moved aside (returns `true`); a bad line with lines after it is an error.
fn read_tail(
    path: &Path,
    mut append: File,
    anchor: Option<super::checkpoint::Anchor>,
    index: &mut Index,
    tracker: &mut Tracker,
    retired: &mut Vec<PathBuf>,
) -> Result<(File, bool)> {
    let mut offset = anchor.map_or(0, |a| a.end());
    (&append)
        .seek(SeekFrom::Start(offset))
        .with_context(|| format!("cannot read {}", path.display()))?;
    let mut bad: Option<(u64, String)> = None;
    let index_trouble = |e: String| {
        anyhow::anyhow!(
            "cannot write the index of {} ({e}); remove {} and the box.order-* files beside it to have it rebuilt",
            path.display(),
            index_path(path).display()
        )
    };
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
        let mut records = Vec::new();
        for block in rx {
            let first = index.lines + 1;
            records.clear();
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
                        let len = u32::try_from(size).context("a box line longer than 4 GiB")?;
                        if let Some(problem) = index.push(&line, offset, len, &mut records) {
                            crate::warning!(
                                "the index of {} is damaged ({problem}); it is rebuilt at the next start",
                                path.display()
                            );
                            let _ = std::fs::remove_file(super::checkpoint::checkpoint_path(path));
                        }
                        offset += size as u64;
                    }
                    Err(why) => bad = Some((line_no, why)),
                }
            }
            index
                .file
                .write(first, &records)
                .map_err(|e| index_trouble(e.to_string()))?;
            index.flush(path, true, retired).map_err(index_trouble)?;
        }
        reader.join().expect("the box reader panicked")
    })?;
    let torn = bad.is_some();
    if let Some((line_no, why)) = bad {
        quarantine_tail(path, &mut append, offset, line_no, &why)?;
    }
    Ok((append, torn))
}

/// The index of an archive's next live box while it is built, and the checker's state
/// at its last line.
pub(super) struct NextIndex {
    index: Index,
    tracker: Tracker,
}

/// Adds the lines of the next live box `next` after those `index` holds to it (and
/// its files beside `next`); returns a handle on `next` for reads. A line that does
/// not check is an error: the archive that wrote it stops, and the box is untouched.
fn read_next_box(next: &Path, index: &mut Index, tracker: &mut Tracker) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .append(true)
        .custom_flags(crate::home::NO_FOLLOW)
        .open(next)
        .with_context(|| format!("cannot open {}", next.display()))?;
    let anchor = (index.lines > 0).then_some(super::checkpoint::Anchor {
        lines: index.lines,
        chain: index.chain,
        offset: index.last_line.0,
        len: index.last_line.1,
        max_clock: index.max_clock,
        written_ms: 0,
    });
    let mut retired = Vec::new();
    let (file, torn) = read_tail(next, file, anchor, index, tracker, &mut retired)?;
    for path in retired {
        let _ = std::fs::remove_file(path);
    }
    if torn {
        bail!("{} does not hold whole lines", next.display());
    }
    Ok(file)
}

/// Called with each batch of newly stored messages; see [`Store::subscribe`].
type Subscriber = Box<dyn Fn(&Arc<Vec<Message>>) + Send + Sync>;

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
        let append = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .custom_flags(crate::home::NO_FOLLOW)
            .open(path)
            .map_err(|e| crate::home::cannot_open(path, "the message box", e))?;
        let started = Instant::now();
        let size = append.metadata().map_or(0, |m| m.len());
        let records = Arc::new(
            IndexFile::open(path)
                .with_context(|| format!("cannot open {}", index_path(path).display()))?,
        );
        let starts = super::epoch::read_starts(path)?;
        // A checkpoint describes the live box only (its lines numbered from 1); the
        // epochs before it are known from the last final head.
        let (mut index, anchor) = start_from_checkpoint(path, &append, size, &records)?;
        index.continue_from(base, &starts);
        let mut tracker = super::checkpoint::tracker_of(&index);
        let mut retired = Vec::new();
        let (append, torn) =
            read_tail(path, append, anchor, &mut index, &mut tracker, &mut retired)?;
        let read = index.lines - anchor.map_or(0, |a| a.lines);
        let took = started.elapsed().as_millis();
        match anchor {
            Some(a) => crate::note!(
                "read {read} lines after the checkpoint at line {} in {took} ms",
                a.lines
            ),
            None if read > 0 => crate::note!(
                "read all {read} lines of the box in {took} ms and rebuilt its index (no usable checkpoint)"
            ),
            None => {}
        }
        let cut = keep_cut_evidence(path, tracker.lines);
        let reader = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let lines = tracker.lines;
        let checkpointed = index.base + anchor.map_or(0, |a| a.lines);
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
            checkpoints: Arc::new(Checkpoints::new(checkpointed)),
            retired: Mutex::new(retired),
            damaged: AtomicBool::new(false),
            epoch_resume: Mutex::new(None),
            history_start: Mutex::new(None),
            runs_stalled: AtomicBool::new(false),
        };
        let store = Arc::new(store);
        Checkpoints::start(&store);
        if lines > checkpointed {
            // The next start should not pay for this one's read.
            store.checkpoints.request();
        }
        Ok((store, append, tracker))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Adds durable lines to the index (its records written to the page cache in one
    /// write, not fsynced: the box is the truth), hands them to the subscribers, and
    /// wakes the readers waiting for new lines. Called by the writer after fsync,
    /// never before.
    pub(super) fn publish(&self, appended: Vec<(Line, u64, u32)>) {
        self.commits.fetch_add(1, AtomicOrdering::Relaxed);
        let flushed;
        let messages: Vec<Message> = {
            let mut index = self.index.write().expect("index lock");
            let first = index.lines + 1;
            let mut records = Vec::with_capacity(appended.len() * super::index::RECORD_BYTES);
            for (line, offset, len) in &appended {
                if let Some(problem) = index.push(line, *offset, *len, &mut records) {
                    self.mark_damaged(&problem);
                }
            }
            if let Err(e) = index.file.write(first, &records) {
                self.mark_damaged(&format!(
                    "cannot write {}: {e}",
                    index_path(&self.path).display()
                ));
            }
            flushed = self.flush_overlay(&mut index);
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
        if flushed || self.checkpoints.due(held) {
            self.checkpoints.request();
        }
    }

    /// Writes the overlay as a run if it is full. A run that cannot be written is not
    /// damage: the overlay keeps its keys (reads go on) and the write is tried again
    /// at every commit, up to [`super::runs::OVERLAY_LIMIT`] keys
    /// ([`Store::room_in_index`]). Said once when it starts failing and once when it
    /// works again.
    fn flush_overlay(&self, index: &mut Index) -> bool {
        match index.flush(&self.path, false, &mut Vec::new()) {
            Ok(flushed) => {
                if flushed && self.runs_stalled.swap(false, AtomicOrdering::SeqCst) {
                    crate::note!(
                        "the index's sorted runs are written again beside {}; new messages are taken again",
                        self.path.display()
                    );
                }
                flushed
            }
            Err(e) => {
                if !self.runs_stalled.swap(true, AtomicOrdering::SeqCst) {
                    crate::error!(
                        "cannot write a sorted run of the index beside {} ({e}); it is tried again at every commit, and new messages are refused once {} lines wait for it",
                        self.path.display(),
                        super::runs::OVERLAY_LIMIT
                    );
                }
                false
            }
        }
    }

    /// Whether a commit may add lines: not while the overlay is at its bound because
    /// its run cannot be written, which is tried once more first. Asked by the writer
    /// before it appends anything, so a refusal stores nothing. The refusal is the
    /// number of lines waiting.
    pub(super) fn room_in_index(&self) -> Result<(), usize> {
        if self.index.read().expect("index lock").order.overlay.len() < super::runs::OVERLAY_LIMIT {
            return Ok(());
        }
        let (flushed, waiting) = {
            let mut index = self.index.write().expect("index lock");
            let flushed = self.flush_overlay(&mut index);
            (flushed, index.order.overlay.len())
        };
        if flushed {
            self.checkpoints.request();
        }
        if waiting < super::runs::OVERLAY_LIMIT {
            return Ok(());
        }
        Err(waiting)
    }

    /// The index files do not match the box (or cannot be written): say so once, and
    /// remove the checkpoint so that the next start rebuilds them from the box.
    fn mark_damaged(&self, why: &str) {
        if self.damaged.swap(true, AtomicOrdering::SeqCst) {
            return;
        }
        let _ = std::fs::remove_file(super::checkpoint::checkpoint_path(&self.path));
        crate::error!(
            "the index of {} is damaged or cannot be written ({why}); reads that need it fail until a restart rebuilds it from the box (the box itself is intact: `dshare verify`)",
            self.path.display()
        );
    }

    /// Merges the newest runs of the conversation order while the rule asks for it,
    /// off the index lock (readers and commits go on). Returns whether it merged.
    fn merge_runs(&self) -> bool {
        // An archive swaps the whole index under the same lock: a merge of the old
        // runs must not land in the new order, nor its file over a new run's name.
        let _writing = self.checkpoints.writing.lock().expect("checkpoint lock");
        let mut merged_any = false;
        loop {
            let (inputs, ids) = {
                let index = self.index.read().expect("index lock");
                match index.order.merge_plan() {
                    Some(inputs) => (inputs, Arc::clone(&index.ids)),
                    None => return merged_any,
                }
            };
            match super::runs::merge(&self.path, &inputs, &ids) {
                Ok(merged) => {
                    let mut index = self.index.write().expect("index lock");
                    let replaced = index.order.replace(merged);
                    self.retired
                        .lock()
                        .expect("retired lock")
                        .extend(replaced.iter().map(|r| r.path.clone()));
                    merged_any = true;
                }
                Err(e) => {
                    self.mark_damaged(&format!("cannot merge runs: {e}"));
                    return merged_any;
                }
            }
        }
    }

    /// Writes a checkpoint of the index as it is (at a line boundary: the index holds
    /// only whole, durable lines), unless the last one is at the same line. Failures are
    /// logged: the box is whole without a checkpoint, the next start just reads more.
    pub fn save_checkpoint(&self) {
        self.write_checkpoint(false);
    }

    /// As [`Store::save_checkpoint`]; `even_if_same_line` after a merge, whose runs
    /// the last checkpoint does not name. The index files it names are fsynced first,
    /// so that a checkpoint is never ahead of them either.
    fn write_checkpoint(&self, even_if_same_line: bool) {
        let c = &self.checkpoints;
        let _writing = c.writing.lock().expect("checkpoint lock");
        if self.damaged.load(AtomicOrdering::SeqCst) {
            return;
        }
        let snapshot = {
            let index = self.index.read().expect("index lock");
            let held = index.base + index.lines;
            if held == c.at_lines.load(AtomicOrdering::Relaxed) && !even_if_same_line {
                return;
            }
            let retired = std::mem::take(&mut *self.retired.lock().expect("retired lock"));
            super::checkpoint::encode(&index, crate::time::now_ms()).map(|bytes| {
                let files = (Arc::clone(&index.file), index.order.runs.clone());
                (bytes, held, files, retired)
            })
        };
        let Some((mut bytes, lines, (records, runs), retired)) = snapshot else {
            return;
        };
        let synced = records
            .sync()
            .and_then(|()| runs.iter().try_for_each(|r| r.sync()));
        super::checkpoint::seal(&mut bytes);
        match synced.and_then(|()| super::checkpoint::write(&self.path, &bytes)) {
            Ok(()) => {
                c.at_lines.store(lines, AtomicOrdering::Relaxed);
                *c.at_time.lock().expect("checkpoint lock") = Instant::now();
                for path in retired {
                    let _ = std::fs::remove_file(path);
                }
            }
            Err(e) => {
                self.retired.lock().expect("retired lock").extend(retired);
                crate::warning!(
                    "cannot write the checkpoint {}: {e}; the next start reads more of the box",
                    super::checkpoint::checkpoint_path(&self.path).display()
                );
            }
        }
    }

    /// The index of the next live box `next` (continuing from `head`) as an archive
    /// has copied it so far, built in files beside it (its own `.index` and runs)
    /// while commits go on; [`Store::replace_box`] reads the rest of it.
    pub(super) fn index_next_box(
        &self,
        next: &Path,
        head: &super::epoch::FinalHead,
    ) -> Result<NextIndex> {
        let records = Arc::new(
            IndexFile::open(next)
                .with_context(|| format!("cannot open {}", index_path(next).display()))?,
        );
        records
            .clear()
            .with_context(|| format!("cannot empty {}", index_path(next).display()))?;
        let starts = self.index.read().expect("index lock").starts.clone();
        let mut index = Index::empty(records);
        index.continue_from(Some(head), &starts);
        let mut tracker = super::checkpoint::tracker_of(&index);
        read_next_box(next, &mut index, &mut tracker)?;
        Ok(NextIndex { index, tracker })
    }

    /// Replaces the box under a running node: called by an archive with commits held,
    /// once `next` (the live box to be) is complete and durable. The index `prepared`
    /// of the first part of it is completed (only the lines appended meanwhile are
    /// read while commits wait), `commit` renames `next` over the box, and the index
    /// files are renamed after it and swapped in with the box's reader. The
    /// checkpoint, which describes the old box, is removed before the rename: a crash
    /// anywhere leaves no checkpoint naming files that changed, and the next start
    /// reads the live box whole. An error before `commit` changed nothing.
    pub(super) fn replace_box(
        &self,
        next: &Path,
        prepared: NextIndex,
        commit: impl FnOnce() -> Result<()>,
    ) -> Result<()> {
        let c = &self.checkpoints;
        let _writing = c.writing.lock().expect("checkpoint lock");
        let checkpoint = super::checkpoint::checkpoint_path(&self.path);
        match std::fs::remove_file(&checkpoint) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => bail!("cannot remove {}: {e}", checkpoint.display()),
        }
        let NextIndex {
            index: mut fresh,
            mut tracker,
        } = prepared;
        let (starts, chain, lines) = {
            let index = self.index.read().expect("index lock");
            (index.starts.clone(), index.chain, index.base + index.lines)
        };
        // Starts recorded since the index was begun (a late joiner's).
        for (author, start) in &starts {
            fresh.starts.insert(*author, *start);
            fresh.before.entry(*author).or_insert(*start);
            tracker.starts.insert(*author, *start);
        }
        let reader = read_next_box(next, &mut fresh, &mut tracker)?;
        if tracker.chain != chain || tracker.lines != lines {
            bail!(
                "{} does not end where the box does ({} lines, not {lines})",
                next.display(),
                tracker.lines
            );
        }
        commit()?;
        let (fresh, trouble) = self.install_index(next, fresh);
        {
            let mut index = self.index.write().expect("index lock");
            *self.reader.write().expect("reader lock") = Arc::new(reader);
            *index = fresh;
            remove_stray_runs(&self.path, &index.order.runs);
        }
        self.retired.lock().expect("retired lock").clear();
        match trouble {
            Some(why) => self.mark_damaged(&why),
            None => {
                // The rebuilt index is whole again, whatever the old one was.
                self.damaged.store(false, AtomicOrdering::SeqCst);
                // No checkpoint is on disk now: the next one is due at once.
                c.at_lines.store(0, AtomicOrdering::Relaxed);
                c.request();
            }
        }
        Ok(())
    }

    /// Renames the index files built beside the next box to the box's names, now that
    /// it is the box; a failure is returned to be reported (the open files still serve,
    /// the next start rebuilds them).
    fn install_index(&self, next: &Path, mut index: Index) -> (Index, Option<String>) {
        let (from, to) = (index_path(next), index_path(&self.path));
        if let Err(e) = std::fs::rename(&from, &to) {
            return (
                index,
                Some(format!("cannot rename {}: {e}", from.display())),
            );
        }
        let mut runs = Vec::with_capacity(index.order.runs.len());
        for run in &index.order.runs {
            let to = super::runs::run_path(&self.path, run.first, run.last);
            let reopened = std::fs::rename(&run.path, &to)
                .map_err(|e| format!("cannot rename {}: {e}", run.path.display()))
                .and_then(|()| Run::open(&self.path, run.first, run.last));
            match reopened {
                Ok(r) => runs.push(Arc::new(r)),
                Err(why) => return (index, Some(why)),
            }
        }
        index.order.runs = runs;
        (index, None)
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
            messages: index.base + index.lines,
            authors: heads.len() as u64,
            head: index.chain,
            digest: chain::digest(&heads),
            max_clock: index.max_clock,
        }
    }

    pub fn heads(&self) -> Vec<Head> {
        self.index.read().expect("index lock").heads()
    }

    /// The number of messages held from `author` (its highest seq).
    pub fn seq_of(&self, author: &AuthorId) -> u64 {
        let index = self.index.read().expect("index lock");
        index.place_of(author).map_or(0, |(_, head, _)| head.seq)
    }

    /// The id of `author`'s message `seq`, if held: the head from memory, an older
    /// one from the index on disk.
    pub fn id_at(&self, author: &AuthorId, seq: u64) -> Option<Hash> {
        let (slot, head, line, file) = {
            let index = self.index.read().expect("index lock");
            let (slot, head, line) = index.place_of(author)?;
            if seq + 1 < index.first_seq(author) {
                // Closed into an epoch, or never held (a late joiner).
                return None;
            }
            if seq + 1 == index.first_seq(author) {
                return index.before.get(author).map(|h| h.id);
            }
            (slot, head, line, Arc::clone(&index.file))
        };
        if seq == head.seq {
            return Some(head.id);
        }
        if seq == 0 || seq > head.seq {
            return None;
        }
        match super::index::find(&file, slot, head.seq, line, seq) {
            Ok(r) => Some(r.id),
            Err(e) => {
                self.mark_damaged(&e);
                None
            }
        }
    }

    /// The first seq of `author` this node can still serve (1 unless its older
    /// messages were closed into epochs or never held); above [`Store::seq_of`] when
    /// none is left.
    pub fn first_seq(&self, author: &AuthorId) -> u64 {
        self.index.read().expect("index lock").first_seq(author)
    }

    /// Records that `author`'s history on this node starts after `start` (the writer
    /// calls it, with commits held, once the start is durable).
    pub(super) fn add_start(&self, author: AuthorId, start: AuthorHead) {
        let mut index = self.index.write().expect("index lock");
        index.starts.insert(author, start);
        index.before.entry(author).or_insert(start);
    }

    /// Bytes of the live box that hold published lines: durable, and never cut back
    /// (a failed write is, but it was never published).
    pub(super) fn durable_bytes(&self) -> u64 {
        let index = self.index.read().expect("index lock");
        let (offset, len) = index.last_line;
        if index.lines == 0 {
            0
        } else {
            offset + u64::from(len)
        }
    }

    /// Lines closed into epochs before the live box (0 without epochs).
    pub fn base_lines(&self) -> u64 {
        self.index.read().expect("index lock").base
    }

    /// The last `n` messages in conversation order (all when `n` is `None`), and the
    /// number of lines they were read at, so a follower can go on from there with
    /// [`Store::since`] without missing or repeating a message.
    pub fn last(&self, n: Option<usize>) -> Result<(Vec<Message>, u64)> {
        let (newest, runs, ids, file, lines, n, base, reader) = {
            let index = self.index.read().expect("index lock");
            let n = n
                .unwrap_or(usize::MAX)
                .min(usize::try_from(index.lines).unwrap_or(usize::MAX));
            let (newest, runs) = index.order.snapshot(n);
            (
                newest,
                runs,
                Arc::clone(&index.ids),
                Arc::clone(&index.file),
                index.lines,
                n,
                index.base,
                self.reader_now(),
            )
        };
        let records = super::runs::last_n(newest, &runs, n, &ids)
            .and_then(|keys| {
                keys.iter()
                    .map(|k| {
                        let r = file.read(k.line)?;
                        if k.line > lines || r.slot != k.slot || r.clock != k.clock {
                            return Err(format!(
                                "the order names line {}, whose record differs",
                                k.line
                            ));
                        }
                        Ok(r)
                    })
                    .collect::<Result<Vec<Record>, String>>()
            })
            .map_err(|e| self.damage(e))?;
        Ok((self.read_records(&reader, &records)?, base + lines))
    }

    /// Up to `limit` messages after the first `after` lines, in arrival order.
    pub fn since(&self, after: u64, limit: usize) -> Result<Vec<Message>> {
        self.since_next(after, limit).map(|(messages, _)| messages)
    }

    /// [`Store::since`], and the line number the page ends at, where the next one goes
    /// on: lines closed into epochs are no longer here, so a page asked from before
    /// the live box starts where it begins (and ends that much further on).
    pub fn since_next(&self, after: u64, limit: usize) -> Result<(Vec<Message>, u64)> {
        let (file, lines, reader, base) = {
            let index = self.index.read().expect("index lock");
            (
                Arc::clone(&index.file),
                index.lines,
                self.reader_now(),
                index.base,
            )
        };
        let after = after.max(base);
        let local = after - base;
        let count = lines.saturating_sub(local).min(limit as u64) as usize;
        if count == 0 {
            return Ok((Vec::new(), after));
        }
        let records = file
            .read_span(local + 1, count)
            .map_err(|e| self.damage(e))?;
        let messages = self.read_records(&reader, &records)?;
        let next = after + messages.len() as u64;
        Ok((messages, next))
    }

    /// [`Store::since_next`] over the whole history: lines closed into an epoch whose
    /// file is still here are read from it, so a follower that was behind when an
    /// archive ran (a hook's cursor) misses none of them. Lines of a pruned epoch are
    /// gone: the page then starts after them, and ends that much further on.
    pub fn since_history(&self, after: u64, limit: usize) -> Result<(Vec<Message>, u64)> {
        if after < self.base_lines() {
            let (messages, next) =
                super::epoch_read::since(&self.path, after, limit, &self.epoch_resume)?;
            if !messages.is_empty() {
                return Ok((messages, next));
            }
            return self.since_next(next, limit);
        }
        self.since_next(after, limit)
    }

    /// Where the history this node holds begins (`/status`), from its final heads.
    pub fn history_start(&self) -> Result<crate::api::status::HistoryStart> {
        let base = self.base_lines();
        let dir = super::epoch::epochs_dir(&self.path);
        let changed = std::fs::metadata(&dir).and_then(|m| m.modified()).ok();
        let key = (base, changed);
        let mut cached = self.history_start.lock().expect("history start lock");
        if let Some((k, start)) = cached.as_ref()
            && *k == key
        {
            return Ok(start.clone());
        }
        let live_first_ts = self.since_next(base, 1)?.0.first().map(|m| m.ts);
        let start = super::history::history_start(&self.path, live_first_ts)?;
        // An empty live box gains its first line without any change to the key.
        if live_first_ts.is_some() || start.first_line < start.box_first_line {
            *cached = Some((key, start.clone()));
        }
        Ok(start)
    }

    /// Up to `limit` of `author`'s messages from seq `from` on.
    pub fn range(&self, author: &AuthorId, from: u64, limit: usize) -> Result<Vec<Message>> {
        let (slot, head, line, file, reader, first) = {
            let index = self.index.read().expect("index lock");
            let Some((slot, head, line)) = index.place_of(author) else {
                return Ok(Vec::new());
            };
            let first = index.first_seq(author);
            (
                slot,
                head,
                line,
                Arc::clone(&index.file),
                self.reader_now(),
                first,
            )
        };
        // Below the first seq held: from the first held.
        let from = from.max(first);
        if limit == 0 || from > head.seq {
            return Ok(Vec::new());
        }
        let to = head.seq.min(from.saturating_add(limit as u64 - 1));
        let records = super::index::run_of(&file, slot, head.seq, line, from, to)
            .map_err(|e| self.damage(e))?;
        self.read_records(&reader, &records)
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
        self.checkpoints.wake_writer();
    }

    /// Reports a mismatch found in the index files, as an error for the reader.
    fn damage(&self, why: String) -> anyhow::Error {
        self.mark_damaged(&why);
        anyhow::anyhow!("the index of {} is damaged: {why}", self.path.display())
    }

    /// The messages on the lines `records` point at, each checked to be the one the
    /// record names.
    /// The box file the index's offsets point into; taken under the index lock.
    fn reader_now(&self) -> Arc<File> {
        Arc::clone(&self.reader.read().expect("reader lock"))
    }

    fn read_records(&self, reader: &File, records: &[Record]) -> Result<Vec<Message>> {
        let mut out = Vec::with_capacity(records.len());
        let mut buf = Vec::new();
        for r in records {
            if r.len == 0 || r.len > MAX_LINE {
                return Err(self.damage(format!("a record of a {}-byte line", r.len)));
            }
            buf.resize(r.len as usize, 0);
            reader
                .read_exact_at(&mut buf, r.offset)
                .with_context(|| format!("cannot read {}", self.path.display()))?;
            let text =
                std::str::from_utf8(&buf[..buf.len() - 1]).context("box line is not UTF-8")?;
            let line = parse_line(text)
                .map_err(|e| self.damage(format!("a record points at no line ({e})")))?;
            if line.message.id != r.id || line.message.seq != r.seq {
                return Err(self.damage(format!(
                    "the record at offset {} names another message",
                    r.offset
                )));
            }
            out.push(line.message);
        }
        Ok(out)
    }
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
    match super::head::read_head_record(&head) {
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
    use std::collections::HashMap;

    /// One signed message, copied with other fields: the index never checks
    /// signatures, and signing thousands would take longer than the test.
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

    /// A scratch box path whose index files are removed with the directory.
    struct Dir(PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!("dshare-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Dir(dir)
        }

        fn index(&self) -> (PathBuf, Index) {
            let boxp = self.0.join("box.txt");
            let file = Arc::new(IndexFile::open(&boxp).unwrap());
            (boxp, Index::empty(file))
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn push_all(index: &mut Index, path: &Path, lines: &[Line]) {
        let first = index.lines + 1;
        let mut records = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let at = index.lines * 500;
            assert_eq!(index.push(line, at, 500, &mut records), None, "line {i}");
        }
        index.file.write(first, &records).unwrap();
        index.flush(path, true, &mut Vec::new()).unwrap();
    }

    fn conversation(index: &Index, n: usize) -> Vec<(u64, AuthorId, u64)> {
        let (newest, runs) = index.order.snapshot(n);
        super::super::runs::last_n(newest, &runs, n, &index.ids)
            .unwrap()
            .iter()
            .map(|k| {
                let r = index.file.read(k.line).unwrap();
                (r.clock, index.ids[r.slot as usize], r.seq)
            })
            .collect()
    }

    #[test]
    fn the_conversation_order_is_clock_author_seq_whatever_the_arrival_order() {
        let t = template();
        let dir = Dir::new("order");
        let (path, mut index) = dir.index();
        let arrivals = [
            (2, 1, 5),
            (1, 1, 3),
            (2, 2, 9),
            (3, 1, 1),
            (1, 2, 4),
            (4, 1, 3),
        ];
        let lines: Vec<Line> = arrivals
            .iter()
            .map(|&(a, seq, clock)| line_like(&t, author(a), seq, clock))
            .collect();
        push_all(&mut index, &path, &lines);
        let order: Vec<(u64, u64, u64)> = conversation(&index, 100)
            .iter()
            .map(|&(clock, a, seq)| (clock, u64::from_be_bytes(a.0[..8].try_into().unwrap()), seq))
            .collect();
        assert_eq!(
            order,
            [
                (1, 3, 1),
                (3, 1, 1),
                (3, 4, 1),
                (4, 1, 2),
                (5, 2, 1),
                (9, 2, 2)
            ],
            "clock ties go by author"
        );
    }

    /// Many more lines than the overlay holds, from 50 authors, one line in ten from
    /// a new author at clock 1 (each sorts before everything held): the order on disk
    /// and in memory reads back as a sort of all of them, each author's seqs are found
    /// from its head, and the checkpoint of it all is O(authors + runs).
    #[test]
    fn an_index_larger_than_the_overlay_answers_as_a_sort_of_every_line() {
        let t = template();
        let dir = Dir::new("large");
        let (path, mut index) = dir.index();
        let mut lines = Vec::new();
        let mut seqs = HashMap::new();
        let total = super::super::runs::OVERLAY_MAX as u64 * 3 + 77;
        for i in 0..total {
            let (a, clock) = if i % 10 == 9 {
                (1_000 + i, 1)
            } else {
                (i % 50, i + 2)
            };
            let seq = seqs.entry(a).and_modify(|s| *s += 1).or_insert(1u64);
            lines.push(line_like(&t, author(a), *seq, clock));
        }
        for chunk in lines.chunks(1000) {
            push_all(&mut index, &path, chunk);
        }
        assert!(index.order.overlay.len() < super::super::runs::OVERLAY_MAX + 1000);
        let mut expected: Vec<(u64, AuthorId, u64)> = lines
            .iter()
            .map(|l| (l.message.clock, l.message.author, l.message.seq))
            .collect();
        expected.sort();
        for n in [1, 10, 1_000, expected.len()] {
            let skip = expected.len() - n;
            assert_eq!(conversation(&index, n), expected[skip..], "last {n}");
        }
        let (slot, head, line) = index.place_of(&author(7)).unwrap();
        let run =
            super::super::index::run_of(&index.file, slot, head.seq, line, 1, head.seq).unwrap();
        let want: Vec<Hash> = lines
            .iter()
            .filter(|l| l.message.author == author(7))
            .map(|l| l.message.id)
            .collect();
        assert_eq!(run.iter().map(|r| r.id).collect::<Vec<_>>(), want);
        let bytes = super::super::checkpoint::encode(&index, 1).unwrap();
        let authors = index.authors.len();
        assert!(
            bytes.len() < 200 + authors * 88 + index.order.runs.len() * 16,
            "{} bytes for {authors} authors",
            bytes.len()
        );
    }
}
