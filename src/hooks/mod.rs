//! Hooks: a command run once for every message, in the box's arrival order, with a
//! cursor that survives restarts (`dshare log --exec`, `dshare serve --on-message`).
//!
//! Delivery is exactly once per cursor in every case but one: when the runner dies
//! while a hook is running (or between the hook's exit and the cursor's update, a
//! window of one fsync), the hook has run, or partly run, but its success was not
//! recorded. That message is then run again with `DSHARE_REDELIVERED=1`, so a hook
//! whose effect must not repeat can check before acting (docs/COOKBOOK.md shows how).
//! A hook that fails is retried with backoff; what happens after the last retry is
//! the caller's [`OnFailure`] policy.

mod cursor;
mod exec;
mod source;

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::exit;
use crate::message::Message;

pub use cursor::{Cursor, State, check_name};
pub use exec::{Delivery, MAX_VARIABLE, environment};
pub use source::{NodeSource, Source, StoreSource};

/// Messages read per request.
const PAGE: usize = 1000;
/// First wait before a failed hook is run again; it doubles for each retry.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two tries of a failed hook.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Which messages a hook (or `log`) is for.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Lowercase hex prefixes of author ids; any of them.
    authors: Vec<String>,
    grep: Option<String>,
}

impl Filter {
    pub fn new(authors: &[String], grep: Option<&str>) -> Result<Filter> {
        let authors = authors
            .iter()
            .map(|a| author_prefix(a))
            .collect::<Result<_>>()?;
        Ok(Filter {
            authors,
            grep: grep.map(str::to_string),
        })
    }

    pub fn matches(&self, m: &Message) -> bool {
        let hex = m.author.to_hex();
        (self.authors.is_empty() || self.authors.iter().any(|p| hex.starts_with(p.as_str())))
            && self.grep.as_deref().is_none_or(|g| m.body.contains(g))
    }

    pub fn is_empty(&self) -> bool {
        self.authors.is_empty() && self.grep.is_none()
    }
}

/// An author id or a prefix of one, lowercased; refuses anything but hex.
pub fn author_prefix(text: &str) -> Result<String> {
    let p = text.trim().to_ascii_lowercase();
    if p.is_empty() || p.len() > 64 || !p.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!(
            "{text:?} is not an author id: expected hex digits, all 64 or a prefix (`dshare id` and `dshare peers` show them)"
        );
    }
    Ok(p)
}

/// Where a new cursor starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// After the messages the box holds now.
    Now,
    /// Before the box's first line.
    Beginning,
    /// After the message whose id starts with this prefix.
    After(String),
}

impl Start {
    pub fn parse(text: &str) -> Result<Start> {
        match text {
            "now" => Ok(Start::Now),
            "start" => Ok(Start::Beginning),
            id if id.len() >= 4 && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Start::After(id.to_ascii_lowercase()))
            }
            _ => bail!(
                "--from takes `now`, `start`, or a message id (at least its first 4 hex digits); got {text:?}"
            ),
        }
    }
}

/// What a runner does once a hook has failed on its last retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// End with exit 1; the cursor stays before the message, so the next run starts
    /// with it.
    Stop,
    /// Report it and go on with the next message (`--keep-going`).
    Skip,
    /// Report it, wait this long, and try the same message again: a node keeps
    /// serving, and its hook never skips a message.
    Pause(Duration),
}

/// The command and its failure policy.
#[derive(Debug, Clone)]
pub struct Hook {
    pub command: String,
    pub retries: u32,
    pub on_failure: OnFailure,
}

/// Lets a stop request wait for a running hook: the runner stops between hooks, never
/// in the middle of one (where the hook's effect and the cursor could disagree).
#[derive(Debug, Default)]
pub struct Guard {
    /// (a hook is running, a stop was asked for)
    state: Mutex<(bool, bool)>,
    /// The signal that asked for the stop, if one did (0: none).
    signal: AtomicI32,
}

impl Guard {
    pub fn new() -> Arc<Guard> {
        Arc::new(Guard::default())
    }

    /// For a process whose only job is the runner (`log --exec`): SIGINT or SIGTERM
    /// ends it at once when no hook runs, or after the running hook and the cursor
    /// update ([`Guard::end_if_signalled`]); a second signal ends it at once. It ends
    /// as killed by that signal (130 or 143 in a shell), as plain `log -f` does, so a
    /// supervisor can tell a stopped follower from one that finished.
    pub fn exit_on_signal(self: &Arc<Self>) -> Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
        let guard = Arc::clone(self);
        std::thread::spawn(move || {
            for signal in signals.forever() {
                guard.signal.store(signal, Ordering::SeqCst);
                let mut state = guard.state.lock().expect("guard lock");
                match *state {
                    (false, _) | (true, true) => end_by(signal),
                    (true, false) => state.1 = true,
                }
            }
        });
        Ok(())
    }

    /// Ends the process as the signal that asked for the stop would have, if one did.
    pub fn end_if_signalled(&self) {
        let signal = self.signal.load(Ordering::SeqCst);
        if signal != 0 {
            end_by(signal);
        }
    }

    /// Asks the runner to stop after the hook that is running, if any.
    pub fn stop(&self) {
        self.state.lock().expect("guard lock").1 = true;
    }

    pub fn stopping(&self) -> bool {
        self.state.lock().expect("guard lock").1
    }

    /// Marks a hook as running; false when a stop was asked for.
    fn enter(&self) -> bool {
        let mut state = self.state.lock().expect("guard lock");
        if state.1 {
            return false;
        }
        state.0 = true;
        true
    }

    fn leave(&self) {
        self.state.lock().expect("guard lock").0 = false;
    }

    /// Sleeps for `d`, or less when a stop is asked for; false then.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.stopping() {
                return false;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// Ends the process as killed by `signal`, or with the shell's 128 + signal should
/// that fail.
fn end_by(signal: i32) -> ! {
    let _ = signal_hook::low_level::emulate_default_handler(signal);
    std::process::exit(128 + signal)
}

/// What handling one message came to.
enum Step {
    Next,
    Stopped,
}

/// What the tries of one hook run came to.
enum Tries {
    Succeeded,
    Failed(String),
    Stopped,
}

/// Runs a hook for every message of a source, from a cursor's state on.
pub struct Runner<S: Source> {
    pub source: S,
    pub hook: Hook,
    pub filter: Filter,
    pub cursor: Option<Cursor>,
    pub state: State,
    pub guard: Arc<Guard>,
    /// Progress on skipped messages not yet written to the cursor.
    dirty: bool,
}

impl<S: Source> Runner<S> {
    /// A runner with `cursor`'s state, or, for a new cursor (or none), a state that
    /// starts at `start`; a new cursor is written at once.
    pub fn new(
        mut source: S,
        hook: Hook,
        filter: Filter,
        cursor: Option<(Cursor, Option<State>)>,
        start: &Start,
        guard: Arc<Guard>,
    ) -> Result<Runner<S>> {
        let (cursor, saved) = match cursor {
            Some((c, s)) => (Some(c), s),
            None => (None, None),
        };
        let state = match saved {
            Some(state) => state,
            None => {
                let state = initial_state(&mut source, start)?;
                if let Some(c) = &cursor {
                    c.save(&state)?;
                    crate::note!(
                        "new cursor {:?} in {}, starting after line {} of the box",
                        c.name,
                        c.path().display(),
                        state.position
                    );
                }
                state
            }
        };
        Ok(Runner {
            source,
            hook,
            filter,
            cursor,
            state,
            guard,
            dirty: false,
        })
    }

    /// Runs the hook for every message from the cursor on. Without `follow`, returns
    /// once the box has no more; with it, waits for new messages (`wait` at a time)
    /// until a stop is asked for.
    pub fn run(&mut self, follow: bool, wait: Duration) -> Result<()> {
        let mut pos = self.resume()?;
        while !self.guard.stopping() {
            let (batch, next) =
                self.source
                    .since(pos, PAGE, if follow { wait } else { Duration::ZERO })?;
            // The source numbers its lines; a page that starts later than asked
            // means the lines between are no longer held here (`first`: the lines
            // before the page).
            let first = next - batch.len() as u64;
            if first > pos {
                self.say_pruned(pos, first);
                pos = first;
                self.state.position = pos;
                self.state.id = None;
                self.dirty = true;
            }
            if batch.is_empty() {
                if follow {
                    continue;
                }
                break;
            }
            for m in &batch {
                pos += 1;
                if let Step::Stopped = self.handle(m, pos)? {
                    return self.flush();
                }
            }
            self.flush()?;
        }
        self.flush()
    }

    /// Says that lines `after + 1` to `first` were pruned before this cursor reached
    /// them: their messages were not handled, and cannot be here.
    fn say_pruned(&self, after: u64, first: u64) {
        crate::warning!(
            "cursor{}: lines {}–{} of the history are no longer on this node (their epoch was pruned) and were not handled; going on from line {}, where the history held here begins",
            self.cursor
                .as_ref()
                .map(|c| format!(" {:?}", c.name))
                .unwrap_or_default(),
            after + 1,
            first,
            first + 1
        );
    }

    /// Where to read from: the cursor's position if the box still holds the recorded
    /// message there (or no longer holds that line at all: it was pruned, and the
    /// next page says so), else the first line (the heads then skip what was handled).
    fn resume(&mut self) -> Result<u64> {
        let p = self.state.position;
        if p == 0 {
            return Ok(0);
        }
        let (at, next) = self.source.since(p - 1, 1, Duration::ZERO)?;
        let first = next - at.len() as u64;
        if first >= p || at.first().map(|m| m.id) == self.state.id {
            return Ok(p);
        }
        crate::note!(
            "cursor{}: line {p} of this box is not the message the cursor recorded (the box was rebuilt, or this is another node); reading from the first line and skipping, by author and seq, every message already handled",
            self.cursor
                .as_ref()
                .map(|c| format!(" {:?}", c.name))
                .unwrap_or_default()
        );
        Ok(0)
    }

    fn handle(&mut self, m: &Message, line: u64) -> Result<Step> {
        if self.state.handled(m) || !self.filter.matches(m) {
            self.state.advance(m, line);
            self.dirty = true;
            return Ok(Step::Next);
        }
        if !self.guard.enter() {
            return Ok(Step::Stopped);
        }
        let step = self.deliver(m, line);
        self.guard.leave();
        step
    }

    /// Runs the hook for `m` (with retries, then the failure policy) and records it.
    fn deliver(&mut self, m: &Message, line: u64) -> Result<Step> {
        let redelivered = self.state.pending == Some(m.id);
        self.state.pending = Some(m.id);
        self.save()?;
        loop {
            match self.tries(m, line, redelivered) {
                Tries::Succeeded => break,
                Tries::Stopped => return Ok(Step::Stopped),
                Tries::Failed(why) => {
                    let tries = self.hook.retries + 1;
                    let what = format!(
                        "the hook failed for message {} after {tries} {} ({why})",
                        describe(m),
                        if tries == 1 { "try" } else { "tries" }
                    );
                    match self.hook.on_failure {
                        OnFailure::Stop => {
                            let cursor = self.cursor.as_ref().map_or_else(
                                || "; run it again with --from ".to_string() + &m.id.to_hex(),
                                |c| {
                                    format!(
                                        "; cursor {:?} stays before it, so the next run starts with it",
                                        c.name
                                    )
                                },
                            );
                            return Err(exit::failure(format!(
                                "{what}{cursor} (--keep-going skips failed messages instead)"
                            )));
                        }
                        OnFailure::Skip => {
                            crate::warning!("{what}; skipped it (--keep-going)");
                            break;
                        }
                        OnFailure::Pause(pause) => {
                            crate::warning!(
                                "{what}; trying it again in {}s (--keep-going skips failed messages instead)",
                                pause.as_secs()
                            );
                            if !self.guard.sleep(pause) {
                                return Ok(Step::Stopped);
                            }
                        }
                    }
                }
            }
        }
        self.state.advance(m, line);
        self.state.pending = None;
        self.save()?;
        Ok(Step::Next)
    }

    /// Runs the hook up to `1 + retries` times, with backoff between.
    fn tries(&self, m: &Message, line: u64, redelivered: bool) -> Tries {
        let total = self.hook.retries + 1;
        let mut delay = FIRST_BACKOFF;
        for attempt in 1..=total {
            let delivery = Delivery {
                message: m,
                position: line,
                cursor: self.cursor.as_ref().map(|c| c.name.as_str()),
                attempt,
                redelivered,
            };
            let ran = exec::run(&self.hook.command, &delivery);
            crate::metrics::METRICS.hook_runs.inc();
            let why = match ran {
                Ok(status) if status.success() => return Tries::Succeeded,
                Ok(status) => status.to_string(),
                Err(e) => format!("{e:#}"),
            };
            crate::metrics::METRICS.hook_failures.inc();
            if attempt == total {
                return Tries::Failed(why);
            }
            crate::note!(
                "the hook failed for message {} ({why}); trying again in {}s ({attempt} of {total} tries)",
                describe(m),
                delay.as_secs()
            );
            if !self.guard.sleep(delay) {
                return Tries::Stopped;
            }
            delay = (delay * 2).min(MAX_BACKOFF);
        }
        Tries::Stopped
    }

    fn save(&mut self) -> Result<()> {
        if let Some(c) = &self.cursor {
            c.save(&self.state)?;
        }
        self.dirty = false;
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.dirty { self.save() } else { Ok(()) }
    }
}

/// `ID… (#SEQ from AUTHOR…)`, for people.
pub fn describe(m: &Message) -> String {
    format!("{} (#{} from {})", m.id.short(12), m.seq, m.author.short(8))
}

/// The state of a new cursor: nothing handled (`start`), everything the box holds
/// (`now`), or everything up to and including a message.
pub fn initial_state(source: &mut impl Source, start: &Start) -> Result<State> {
    let mut state = State::default();
    if *start == Start::Beginning {
        return Ok(state);
    }
    let mut pos = 0;
    loop {
        let (batch, next) = source.since(pos, PAGE, Duration::ZERO)?;
        pos = next - batch.len() as u64;
        state.position = state.position.max(pos);
        if batch.is_empty() {
            break;
        }
        for m in &batch {
            pos += 1;
            state.advance(m, pos);
            if let Start::After(prefix) = start
                && m.id.to_hex().starts_with(prefix.as_str())
            {
                return Ok(state);
            }
        }
    }
    match start {
        Start::After(prefix) => bail!(
            "no message with an id starting with {prefix} in the box; `dshare log --json` shows the ids"
        ),
        _ => Ok(state),
    }
}

/// A runner on its own thread, for `serve --on-message`.
pub struct Background {
    guard: Arc<Guard>,
    handle: JoinHandle<()>,
}

impl Background {
    /// Starts `runner` following the store; errors other than hook failures (a cursor
    /// that cannot be written) are reported, and the runner tries again later.
    pub fn start(mut runner: Runner<StoreSource>) -> Background {
        let guard = Arc::clone(&runner.guard);
        let handle = std::thread::Builder::new()
            .name("on-message".into())
            .spawn(move || {
                loop {
                    match runner.run(true, Duration::from_secs(1)) {
                        Ok(()) => return,
                        Err(e) => {
                            crate::warning!("--on-message: {e:#}; trying again in 10s");
                            if !runner.guard.sleep(Duration::from_secs(10)) {
                                return;
                            }
                        }
                    }
                }
            })
            .expect("spawn the on-message thread");
        Background { guard, handle }
    }

    /// Stops after the running hook, waiting for it at most `within`.
    pub fn stop(self, within: Duration) {
        self.guard.stop();
        let end = Instant::now() + within;
        while !self.handle.is_finished() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.handle.is_finished() {
            let _ = self.handle.join();
        } else {
            crate::warning!("the --on-message hook is still running; not waiting for it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::message::Draft;

    /// `n` signed messages of one author, seq 1..=n.
    fn chain(who: &Identity, n: u64, text: &str) -> Vec<Message> {
        let mut prev = None;
        (1..=n)
            .map(|seq| {
                let body = format!("{text} {seq}");
                let m = Message::sign(
                    &Draft {
                        author: who.author(),
                        seq,
                        prev,
                        clock: seq,
                        ts: 1,
                        body: &body,
                    },
                    who,
                );
                prev = Some(m.id);
                m
            })
            .collect()
    }

    #[test]
    fn heads_recognise_handled_messages_in_any_line_order() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let (ma, mb) = (chain(&a, 3, "a"), chain(&b, 2, "b"));
        let mut state = State::default();
        for (line, m) in [&ma[0], &mb[0], &ma[1], &mb[1]].into_iter().enumerate() {
            assert!(!state.handled(m));
            state.advance(m, line as u64 + 1);
        }
        assert_eq!(state.position, 4);
        assert_eq!(state.id, Some(mb[1].id));
        // Another node's order: b's first, then a's, then one new message.
        let rebuilt = [&mb[0], &mb[1], &ma[0], &ma[1], &ma[2]];
        let fresh: Vec<_> = rebuilt.iter().filter(|m| !state.handled(m)).collect();
        assert_eq!(fresh.len(), 1);
        assert_eq!(fresh[0].id, ma[2].id);
    }

    #[test]
    fn filters_match_author_prefixes_and_substrings() {
        let (a, b) = (Identity::generate(), Identity::generate());
        let (ma, mb) = (&chain(&a, 1, "deploy done")[0], &chain(&b, 1, "lunch")[0]);
        let prefix = a.author().to_hex()[..6].to_ascii_uppercase();
        let by_a = Filter::new(&[prefix], None).unwrap();
        assert!(by_a.matches(ma) && !by_a.matches(mb));
        let deploys = Filter::new(&[], Some("deploy")).unwrap();
        assert!(deploys.matches(ma) && !deploys.matches(mb));
        assert!(Filter::new(&[], None).unwrap().matches(mb));
        assert!(Filter::new(&["not-hex".into()], None).is_err());
    }

    #[test]
    fn from_takes_now_start_or_an_id_prefix() {
        assert_eq!(Start::parse("now").unwrap(), Start::Now);
        assert_eq!(Start::parse("start").unwrap(), Start::Beginning);
        assert_eq!(
            Start::parse("ABCD12").unwrap(),
            Start::After("abcd12".into())
        );
        for bad in ["", "abc", "yesterday", "12345g"] {
            assert!(Start::parse(bad).is_err(), "{bad:?}");
        }
    }

    /// A box in memory.
    struct Lines(Vec<Message>);

    impl Source for Lines {
        fn since(&mut self, after: u64, limit: usize, _: Duration) -> Result<(Vec<Message>, u64)> {
            let start = usize::try_from(after).unwrap().min(self.0.len());
            let page: Vec<Message> = self.0[start..].iter().take(limit).cloned().collect();
            let next = start as u64 + page.len() as u64;
            Ok((page, next))
        }
    }

    #[test]
    fn a_new_cursor_starts_now_at_the_start_or_after_an_id() {
        let a = Identity::generate();
        let mut lines = Lines(chain(&a, 3, "m"));
        let now = initial_state(&mut lines, &Start::Now).unwrap();
        assert_eq!((now.position, now.heads[&a.author()]), (3, 3));
        let start = initial_state(&mut lines, &Start::Beginning).unwrap();
        assert_eq!(start, State::default());
        let second = lines.0[1].id.to_hex();
        let after = initial_state(&mut lines, &Start::After(second[..8].into())).unwrap();
        assert_eq!((after.position, after.id), (2, Some(lines.0[1].id)));
        assert!(initial_state(&mut lines, &Start::After("00000000".into())).is_err());
    }
}
