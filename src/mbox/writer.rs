//! The one writer of the box. Jobs queue; one thread at a time (the one that found
//! no commit running, see [`super::combine`]) takes every job waiting, appends their
//! lines in one write, fsyncs once (group commit), publishes them, and only then
//! answers each job. An answer therefore always means "on disk".

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::clock::{ClockError, PeerClocks};
use crate::hex::Hash;
use crate::identity::Identity;
use crate::message::{AuthorId, Draft, Message};

use super::combine::Combiner;
use super::format::{Line, encode_line};
use super::head::head_path;
use super::store::Store;
use super::track::{AuthorHead, Tracker};

/// Most jobs in one commit, so one fsync never waits on an unbounded write.
const MAX_BATCH: usize = 1024;

/// What became of one offered message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Stored,
    /// Already held (the same id at that seq).
    Duplicate,
    /// An earlier message of the author is missing here; `have` is the highest seq held.
    Gap {
        have: u64,
    },
    /// A different message is held at that seq: the author signed two histories.
    Fork,
    /// Refused by a rule (a clock that does not move forward, the author list);
    /// nothing stored.
    Refused {
        reason: String,
    },
}

/// Why a write failed.
#[derive(Debug, Clone)]
pub enum StoreError {
    /// The disk is full: nothing was stored, and the box is as it was.
    Full,
    /// Another I/O failure; nothing was stored.
    Io(String),
    /// The writer has stopped (node shutting down, or a failed rollback).
    Closed,
    /// The end of the box was lost before this start and the peers have not sent it
    /// back yet: a new message now could reuse the seq of one of this node's own lost
    /// messages. Transient; nothing was stored.
    Recovering,
    /// This node will not sign now: its clock would be over the cap, or its wall
    /// clock is far from its peers'. Nothing was stored.
    Clock(ClockError),
    /// The index's sorted runs cannot be written (why): the overlay in memory is at
    /// its bound, so nothing more is stored until one is. Transient; nothing was stored.
    IndexStalled(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Full => {
                f.write_str("the disk holding the message box is full; nothing was stored")
            }
            StoreError::Io(e) => write!(f, "cannot write the message box: {e}; nothing was stored"),
            StoreError::Closed => f.write_str("the node is shutting down; nothing was stored"),
            StoreError::IndexStalled(why) => write!(
                f,
                "the index beside the message box cannot be written ({why}); new messages are refused until it can (free space or fix the disk); nothing was stored, retry later"
            ),
            StoreError::Recovering => f.write_str(
                "the node lost the end of its box before it started (its log says how) and signs no new message until a peer has sent back what it holds; nothing was stored, retry shortly",
            ),
            StoreError::Clock(e) => write!(f, "{e}; nothing was stored"),
        }
    }
}

impl std::error::Error for StoreError {}

enum Job {
    /// A body to sign as this node's next message.
    Local(String),
    /// Messages from elsewhere, already checked.
    Remote(Vec<Message>),
}

/// What a job gets: the kind of its job.
enum Answer {
    Local(Result<Message, StoreError>),
    Remote(Result<Vec<Outcome>, StoreError>),
}

/// The handle through which every thread stores messages.
#[derive(Clone)]
pub struct Writer {
    jobs: Arc<Combiner<Job, Answer>>,
    /// Locked only by the thread running a commit, so never contended.
    state: Arc<Mutex<State>>,
    store: Arc<Store>,
    /// What the peers say of this node's wall clock; the replicator fills it in.
    clocks: Arc<PeerClocks>,
}

impl Writer {
    /// A writer over `store`, appending through `append`.
    /// `allowed`, when not empty, lists the only authors (besides this node) whose
    /// messages are stored.
    pub fn start(
        store: Arc<Store>,
        append: File,
        tracker: Tracker,
        identity: Identity,
        allowed: HashSet<AuthorId>,
    ) -> Writer {
        let clocks = Arc::new(PeerClocks::default());
        let state = State {
            clocks: Arc::clone(&clocks),
            len: None,
            head: open_head(&head_path(store.path())),
            store: Arc::clone(&store),
            file: append,
            tracker,
            identity,
            allowed,
            broken: false,
        };
        Writer {
            jobs: Arc::new(Combiner::default()),
            state: Arc::new(Mutex::new(state)),
            store,
            clocks,
        }
    }

    /// Replaces the author allow-list (a config reload); it applies from the next
    /// commit on. Messages refused before come back through anti-entropy.
    pub fn set_allowed(&self, allowed: HashSet<AuthorId>) {
        self.state.lock().expect("writer state lock").allowed = allowed;
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Makes `author`'s history on this node start after `start` (seq and id of the
    /// message before the first one held), when the node holds nothing of it yet: a
    /// late joiner whose peers retired the older messages (docs/FORMAT.md §12). The
    /// start is on disk before any line that needs it. Returns whether it was made.
    pub fn adopt(&self, author: AuthorId, start: AuthorHead) -> anyhow::Result<bool> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("the writer has stopped after a failed commit"))?;
        if start.seq == 0 || state.tracker.head_of(&author).is_some() {
            return Ok(false);
        }
        super::epoch::append_start(self.store.path(), &author, &start)?;
        state.tracker.starts.insert(author, start);
        self.store.add_start(author, start);
        Ok(true)
    }

    /// Runs `replace` with every commit held back, then appends through the file it
    /// returns: how an archive swaps the live box under a running node. The tracker
    /// is untouched (the history goes on at the same line, chain and heads).
    pub(super) fn replace_box(
        &self,
        replace: impl FnOnce() -> anyhow::Result<File>,
    ) -> anyhow::Result<()> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| anyhow::anyhow!("the writer has stopped after a failed commit"))?;
        state.file = replace()?;
        state.len = None;
        Ok(())
    }

    /// Where the peers' clock readings go; a send is refused while most disagree with
    /// this node's clock.
    pub fn peer_clocks(&self) -> &Arc<PeerClocks> {
        &self.clocks
    }

    /// Signs `body` as this node's next message and stores it. Returns once it is on
    /// disk. The body must already be within limits.
    pub fn send(&self, body: String) -> Result<Message, StoreError> {
        if self.store.recovering() {
            return Err(StoreError::Recovering);
        }
        match self.submit(Job::Local(body)) {
            Some(Answer::Local(result)) => result,
            _ => Err(StoreError::Closed),
        }
    }

    /// Offers messages that already passed [`Message::check`]; returns, in order,
    /// what became of each once the stored ones are on disk.
    pub fn offer(&self, messages: Vec<Message>) -> Result<Vec<Outcome>, StoreError> {
        if messages.is_empty() {
            return Ok(Vec::new());
        }
        match self.submit(Job::Remote(messages)) {
            Some(Answer::Remote(result)) => result,
            _ => Err(StoreError::Closed),
        }
    }

    /// Queues a job and waits for its answer, committing it (with whatever else is
    /// queued) on this thread if no commit is running. `None` if a commit panicked.
    fn submit(&self, job: Job) -> Option<Answer> {
        self.jobs.submit(job, MAX_BATCH, |jobs| {
            match self.state.lock() {
                Ok(mut state) => state.commit(jobs),
                // An earlier commit panicked half-way: the tracker may not match the
                // file any more, so nothing more is written.
                Err(PoisonError { .. }) => {
                    jobs.iter().map(|j| j.fail(&StoreError::Closed)).collect()
                }
            }
        })
    }
}

impl Job {
    fn fail(&self, err: &StoreError) -> Answer {
        match self {
            Job::Local(_) => Answer::Local(Err(err.clone())),
            Job::Remote(_) => Answer::Remote(Err(err.clone())),
        }
    }
}

struct State {
    store: Arc<Store>,
    /// The box file's length, once known: only this writer changes it, so it is asked
    /// of the file system once, not at every commit.
    len: Option<u64>,
    /// The head file, if it could be opened; the box works without it.
    head: Option<File>,
    file: File,
    tracker: Tracker,
    identity: Identity,
    allowed: HashSet<AuthorId>,
    clocks: Arc<PeerClocks>,
    /// Set when a failed write could not be rolled back: refuse all further writes
    /// rather than append after an unknown tail.
    broken: bool,
}

/// The answer a job gets once its batch is committed.
enum Pending {
    Local(Result<Message, StoreError>),
    Remote(Vec<Outcome>),
}

impl State {
    /// Appends the jobs' lines in one write and one fsync, publishes them, and
    /// returns each job's answer, in order.
    fn commit(&mut self, jobs: Vec<Job>) -> Vec<Answer> {
        let fail_all = |jobs: &[Job], err: &StoreError| jobs.iter().map(|j| j.fail(err)).collect();
        if self.broken {
            return fail_all(&jobs, &StoreError::Closed);
        }
        if let Err(waiting) = self.store.room_in_index() {
            let stalled = StoreError::IndexStalled(format!(
                "{waiting} lines wait for a sorted run that cannot be written; the node's log says why"
            ));
            return fail_all(&jobs, &stalled);
        }
        let start_len = match self.len {
            Some(len) => len,
            None => match self.file.metadata() {
                Ok(m) => m.len(),
                Err(e) => return fail_all(&jobs, &StoreError::Io(e.to_string())),
            },
        };
        let mut undo = Undo::of(&self.tracker);
        let mut buf = Vec::new();
        let mut appended = Vec::new();
        // Ids appended by this commit, by (author, seq): the index learns them only
        // once the commit is durable, and a batch may offer one message twice.
        let mut fresh: HashMap<(AuthorId, u64), Hash> = HashMap::new();
        let mut pending = Vec::with_capacity(jobs.len());
        let now = crate::time::now_ms();
        for job in jobs {
            match job {
                Job::Local(body) => match self.next_local(&body, now) {
                    Ok(m) => {
                        undo.note(&self.tracker, &m.author);
                        fresh.insert((m.author, m.seq), m.id);
                        self.append(m.clone(), start_len, &mut buf, &mut appended);
                        pending.push(Pending::Local(Ok(m)));
                    }
                    Err(e) => pending.push(Pending::Local(Err(StoreError::Clock(e)))),
                },
                Job::Remote(messages) => {
                    let outcomes = messages
                        .into_iter()
                        .map(|m| {
                            let outcome = self.judge(&m, &fresh);
                            if outcome == Outcome::Stored {
                                undo.note(&self.tracker, &m.author);
                                fresh.insert((m.author, m.seq), m.id);
                                self.append(m, start_len, &mut buf, &mut appended);
                            }
                            outcome
                        })
                        .collect();
                    pending.push(Pending::Remote(outcomes));
                }
            }
        }
        if !buf.is_empty() {
            if let Err(e) = self.write_durably(&buf) {
                let err = if e.raw_os_error() == Some(28) {
                    StoreError::Full
                } else {
                    StoreError::Io(e.to_string())
                };
                self.rollback(start_len);
                undo.apply(&mut self.tracker);
                return pending
                    .iter()
                    .map(|p| match p {
                        Pending::Local(_) => Answer::Local(Err(err.clone())),
                        Pending::Remote(_) => Answer::Remote(Err(err.clone())),
                    })
                    .collect();
            }
            self.len = Some(start_len + buf.len() as u64);
            self.store.publish(appended);
            // After the publish, which starts the pushes: the head file is a record
            // for `verify`, and may lag the box but never lead it.
            self.write_head();
        }
        pending
            .into_iter()
            .map(|p| match p {
                Pending::Local(m) => Answer::Local(m),
                Pending::Remote(outcomes) => Answer::Remote(Ok(outcomes)),
            })
            .collect()
    }

    /// Signs `body` as this node's next message, unless its clock is not fit to sign
    /// with (over the cap, or far from the peers').
    fn next_local(&mut self, body: &str, now: u64) -> Result<Message, ClockError> {
        self.clocks.check(now)?;
        let author = self.identity.author();
        let head = self.tracker.head_of(&author).copied();
        let clock = crate::clock::next(head.map(|h| h.clock), self.tracker.max_clock, now)?;
        let draft = Draft {
            author,
            seq: head.map_or(1, |h| h.seq + 1),
            prev: head.map(|h| h.id),
            clock,
            ts: now,
            body,
        };
        Ok(Message::sign(&draft, &self.identity))
    }

    /// Decides whether a checked message from elsewhere can be the next line. Its
    /// clock and timestamp need only be valid and move its author's chain forward:
    /// what the author signed is kept whatever it says (a fast clock only sorts its own
    /// messages late), and [`crate::clock::next`] bounds what it does to ours.
    fn judge(&self, m: &Message, fresh: &HashMap<(AuthorId, u64), Hash>) -> Outcome {
        if !self.allowed.is_empty()
            && !self.allowed.contains(&m.author)
            && m.author != self.identity.author()
        {
            return refused("author is not on this node's allow-list");
        }
        let head = self.tracker.head_of(&m.author).copied();
        let have = head.map_or(0, |h| h.seq);
        if m.seq <= have && m.seq + 1 < self.store.first_seq(&m.author) {
            // Retired here (or never held, by a late joiner): nothing left to compare
            // it with, so it cannot be told from a duplicate. The seq just before the
            // first held is still compared: its id is in the final head (or the start).
            return Outcome::Duplicate;
        }
        if m.seq <= have {
            let held = self.held_id(&m.author, m.seq, head, fresh);
            return if held == Some(m.id) {
                Outcome::Duplicate
            } else {
                Outcome::Fork
            };
        }
        if m.seq > have + 1 {
            return Outcome::Gap { have };
        }
        if let Some(h) = head {
            if m.prev != Some(h.id) {
                return Outcome::Fork;
            }
            if m.clock <= h.clock {
                return refused("clock does not move forward from the author's previous message");
            }
        }
        Outcome::Stored
    }

    /// The id held at `seq`: from this commit's heads or lines, or from the index.
    fn held_id(
        &self,
        author: &AuthorId,
        seq: u64,
        head: Option<AuthorHead>,
        fresh: &HashMap<(AuthorId, u64), Hash>,
    ) -> Option<Hash> {
        match head {
            Some(h) if h.seq == seq => Some(h.id),
            _ => fresh
                .get(&(*author, seq))
                .copied()
                .or_else(|| self.store.id_at(author, seq)),
        }
    }

    fn append(
        &mut self,
        m: Message,
        start_len: u64,
        buf: &mut Vec<u8>,
        appended: &mut Vec<(Line, u64, u32)>,
    ) {
        let chain = crate::chain::step(&self.tracker.chain, &m.id);
        let text = encode_line(&chain, &m);
        let line = Line { chain, message: m };
        let offset = start_len + buf.len() as u64;
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        let len = u32::try_from(text.len() + 1).expect("a line is far below 4 GiB");
        self.tracker.advance(&line);
        appended.push((line, offset, len));
    }

    fn write_durably(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.file.write_all(buf)?;
        let started = std::time::Instant::now();
        self.file.sync_data()?;
        crate::metrics::METRICS.fsync.observe(started.elapsed());
        crate::metrics::METRICS.commits.inc();
        Ok(())
    }

    /// Cuts off whatever part of a failed write reached the file.
    fn rollback(&mut self, len: u64) {
        let undone = self.file.set_len(len).and_then(|()| self.file.sync_data());
        self.len = undone.is_ok().then_some(len);
        if let Err(e) = undone {
            crate::error!(
                "cannot roll back a failed write to {}: {e}; refusing further writes until restart",
                self.store.path().display()
            );
            self.broken = true;
        }
    }

    /// Records the durable line count and head beside the box. Fixed width, written
    /// in place, after the box's fsync: it is never ahead of the box.
    fn write_head(&self) {
        let text = format!("{:020} {}\n", self.tracker.lines, self.tracker.chain);
        if let Some(f) = &self.head
            && let Err(e) = f.write_all_at(text.as_bytes(), 0)
        {
            crate::warning!("cannot update the box's head file: {e}");
        }
    }
}

/// What a commit changes in the tracker, to undo it if the write fails: cheaper than
/// a copy of every author's head at every commit.
struct Undo {
    chain: crate::hex::Hash,
    lines: u64,
    max_clock: u64,
    /// Each author the commit advanced, with its head before.
    heads: HashMap<AuthorId, Option<AuthorHead>>,
}

impl Undo {
    fn of(t: &Tracker) -> Undo {
        Undo {
            chain: t.chain,
            lines: t.lines,
            max_clock: t.max_clock,
            heads: HashMap::new(),
        }
    }

    /// Called before `author` advances.
    fn note(&mut self, t: &Tracker, author: &AuthorId) {
        self.heads
            .entry(*author)
            .or_insert_with(|| t.heads.get(author).copied());
    }

    fn apply(self, t: &mut Tracker) {
        t.chain = self.chain;
        t.lines = self.lines;
        t.max_clock = self.max_clock;
        for (author, head) in self.heads {
            match head {
                Some(h) => t.heads.insert(author, h),
                None => t.heads.remove(&author),
            };
        }
    }
}

fn refused(reason: &str) -> Outcome {
    Outcome::Refused {
        reason: reason.into(),
    }
}

fn open_head(path: &Path) -> Option<File> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(crate::home::NO_FOLLOW)
        .open(path)
    {
        Ok(f) => Some(f),
        Err(e) => {
            crate::warning!("cannot open {}: {e}", path.display());
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Tracker, Undo};
    use crate::identity::Identity;
    use crate::mbox::format::Line;
    use crate::message::{Draft, Message};

    fn line(t: &Tracker, id: &Identity, seq: u64) -> Line {
        let prev = t.heads.get(&id.author()).map(|h| h.id);
        let m = Message::sign(
            &Draft {
                author: id.author(),
                seq,
                prev,
                clock: t.max_clock + 1,
                ts: 1,
                body: "x",
            },
            id,
        );
        Line {
            chain: crate::chain::step(&t.chain, &m.id),
            message: m,
        }
    }

    #[test]
    fn a_failed_commit_leaves_the_tracker_as_it_was() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let mut t = Tracker::default();
        let first = line(&t, &a, 1);
        t.advance(&first);
        let before = t.clone();
        let mut undo = Undo::of(&t);
        for (id, seq) in [(&a, 2), (&b, 1), (&a, 3)] {
            undo.note(&t, &id.author());
            let l = line(&t, id, seq);
            t.advance(&l);
        }
        assert_eq!(t.lines, 4);
        undo.apply(&mut t);
        assert_eq!(
            (t.chain, t.lines, t.max_clock, &t.heads),
            (before.chain, before.lines, before.max_clock, &before.heads)
        );
    }
}
