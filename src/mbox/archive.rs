//! `dshare archive` and retention: closing the oldest lines of the live box into an
//! epoch file with a signed final head, while the node goes on serving.
//!
//! The order makes a crash at any point leave the old state or the new one: the
//! epoch's lines and head are written and made durable first (the box is untouched,
//! so a crash leaves copies that the next start removes, [`super::epoch::settle`]);
//! then, with commits held back for the time of one copy of the lines that stay, the
//! new live box is written beside the old and renamed over it. That rename is the
//! commit; the index is swapped right after it.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::identity::Identity;

use super::epoch::{self, FinalHead};
use super::format::parse_line_head;
use super::track::Tracker;
use super::writer::Writer;

/// Which lines an archive closes: always a prefix of the live box (arrival order),
/// never the line of a message that is not yet durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Every line up to the first whose `ts` is at or after this time (ms): nothing
    /// signed after it is retired, even when it arrived before older messages.
    Before(u64),
    /// All but the last N lines of the whole history.
    KeepMessages(u64),
}

/// What an archive did.
#[derive(Debug, Clone)]
pub struct Archived {
    pub head: FinalHead,
    /// Lines moved out of the live box.
    pub moved: u64,
    pub took: Duration,
    /// How long commits were held back while the box was replaced.
    pub paused: Duration,
}

/// One archive at a time per process: the retention thread and a client call may ask
/// together, and the second must start from the first one's head.
static ARCHIVING: Mutex<()> = Mutex::new(());

/// Test hook: milliseconds to wait once the epoch's files are durable and before the
/// box is replaced, so a test can kill the process inside an archive. Never set in use.
const STALL_ENV: &str = "DSHARE_TEST_ARCHIVE_STALL_MS";

/// Closes the lines `until` selects into the next epoch. `Ok(None)` when there is
/// nothing to close.
pub fn archive(writer: &Writer, identity: &Identity, until: Until) -> Result<Option<Archived>> {
    let _one = ARCHIVING.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let store = writer.store();
    let path = store.path().to_path_buf();
    let base = epoch::list(&path)?.pop().map(|e| e.head);
    let before = base
        .as_ref()
        .map_or_else(Tracker::default, FinalHead::tracker);
    let durable = store.summary().messages;
    let most = match until {
        Until::KeepMessages(keep) => durable.saturating_sub(keep),
        Until::Before(_) => durable,
    }
    .saturating_sub(before.lines);
    if most == 0 {
        return Ok(None);
    }
    let n = base.as_ref().map_or(1, |h| h.epoch + 1);
    let dir = epoch::epochs_dir(&path);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let lines_path = epoch::epoch_box(&path, n);
    let head_path = epoch::epoch_head(&path, n);
    epoch::remove_next_index(&path);
    let copied = copy_prefix(&path, &lines_path, &before, most, until)?;
    let Some(Copied { tracker, bytes, ts }) = copied else {
        return Ok(None);
    };
    let head = FinalHead::sign(n, &before, &tracker, ts, identity);
    let head_tmp = head_path.with_extension("head.tmp");
    crate::durable::replace(&head_path, &head_tmp, head.encode().as_bytes())
        .with_context(|| format!("cannot write {}", head_path.display()))?;
    if let Some(ms) = std::env::var(STALL_ENV).ok().and_then(|v| v.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    // Most of the lines that stay are copied while commits go on; with commits held
    // back only what was appended meanwhile is.
    let copied = match precopy_tail(&path, bytes, store.durable_bytes()) {
        Ok(copied) => copied,
        Err(e) => {
            let _ = std::fs::remove_file(&head_path);
            let _ = std::fs::remove_file(&lines_path);
            return Err(e);
        }
    };
    // The index of those lines is built while commits go on too.
    let prepared = match store.index_next_box(&epoch::next_box(&path), &head) {
        Ok(prepared) => prepared,
        Err(e) => {
            let _ = std::fs::remove_file(&head_path);
            let _ = std::fs::remove_file(&lines_path);
            let _ = std::fs::remove_file(epoch::next_box(&path));
            epoch::remove_next_index(&path);
            return Err(e);
        }
    };
    // The last handle on the old box frees its blocks when it closes, which takes a
    // while for a large box: this one is closed last, with no lock held.
    let old_box = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let paused = Instant::now();
    let replaced = writer.replace_box(|| replace_live_box(store, &path, copied, prepared));
    if let Err(e) = replaced {
        // The box was not replaced (the rename is the last fallible step), so the
        // epoch's files are copies of lines it still holds.
        let _ = std::fs::remove_file(&head_path);
        let _ = std::fs::remove_file(&lines_path);
        return Err(e);
    }
    let paused = paused.elapsed();
    drop(old_box);
    Ok(Some(Archived {
        moved: head.lines - before.lines,
        head,
        took: started.elapsed(),
        paused,
    }))
}

/// The lines of the live box an archive moved, and what they ended at.
struct Copied {
    tracker: Tracker,
    /// Bytes of the live box they took (where the lines that stay begin).
    bytes: u64,
    /// The smallest and largest `ts` among them.
    ts: (u64, u64),
}

/// Copies up to `most` lines from the start of the live box into the epoch file
/// `to` (durably), checking the chain on the way, and stops early at the first line
/// `until` keeps. These lines are durable and the writer only appends, so they can be
/// read while the node goes on. `None` when no line is to be moved.
fn copy_prefix(
    box_path: &Path,
    to: &Path,
    before: &Tracker,
    most: u64,
    until: Until,
) -> Result<Option<Copied>> {
    let source =
        File::open(box_path).with_context(|| format!("cannot open {}", box_path.display()))?;
    let tmp = to.with_extension("txt.tmp");
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(crate::home::NO_FOLLOW)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut tracker = before.clone();
    let (mut moved, mut bytes, mut ts) = (0u64, 0u64, (u64::MAX, 0u64));
    let mut failure: Option<anyhow::Error> = None;
    super::lines::blocks(
        source,
        |lines| {
            // Parsing needs no other line: on every core, a block at a time; the
            // checks that link lines run below in order.
            let parsed = crate::par::map(lines, |raw| parse_line_head(raw));
            for (raw, parsed) in lines.iter().zip(parsed) {
                if moved == most {
                    return Ok(false);
                }
                let line = match parsed {
                    Ok(line) => line,
                    Err(why) => {
                        failure = Some(anyhow::anyhow!(
                            "line {} of the box: {why}",
                            tracker.lines + 1
                        ));
                        return Ok(false);
                    }
                };
                if let Until::Before(t) = until
                    && line.message.ts >= t
                {
                    return Ok(false);
                }
                if let Err(e) = tracker.check(&line) {
                    failure = Some(anyhow::anyhow!(
                        "line {} of the box: {e}",
                        tracker.lines + 1
                    ));
                    return Ok(false);
                }
                tracker.advance(&line);
                out.write_all(raw)?;
                moved += 1;
                bytes += raw.len() as u64;
                ts = (ts.0.min(line.message.ts), ts.1.max(line.message.ts));
            }
            Ok(true)
        },
        |e| e,
    )
    .with_context(|| format!("cannot copy {} to {}", box_path.display(), tmp.display()))?;
    if let Some(e) = failure {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.context("the box is damaged; nothing was archived (run `dshare verify`)"));
    }
    if moved == 0 {
        drop(out);
        let _ = std::fs::remove_file(&tmp);
        return Ok(None);
    }
    let out = out.into_inner().map_err(|e| e.into_error())?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, to).with_context(|| format!("cannot rename {}", tmp.display()))?;
    Ok(Some(Copied { tracker, bytes, ts }))
}

/// Copies the box's bytes from `cut` to `durable` (the end of its published lines,
/// which no rollback of a failed write can touch) into the next live box, created
/// afresh; returns up to where it copied.
fn precopy_tail(path: &Path, cut: u64, durable: u64) -> Result<u64> {
    let old = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let end = durable;
    let next = epoch::next_box(path);
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(crate::home::NO_FOLLOW)
        .open(&next)
        .with_context(|| format!("cannot create {}", next.display()))?;
    // Synced here, so that the sync with commits held covers only what follows.
    copy_range(&old, &out, cut, end.max(cut))
        .and_then(|()| out.sync_data())
        .with_context(|| format!("cannot write {}", next.display()))?;
    Ok(end.max(cut))
}

/// Appends the bytes `from..to` of `old` to `out`.
fn copy_range(old: &File, mut out: &File, from: u64, to: u64) -> std::io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    let mut at = from;
    while at < to {
        let take = usize::try_from((to - at).min(buf.len() as u64)).expect("fits");
        old.read_exact_at(&mut buf[..take], at)?;
        out.write_all(&buf[..take])?;
        at += take as u64;
    }
    Ok(())
}

/// Runs with commits held back: completes the next live box (the lines after
/// those up to `copied`, which are already there, as is the index `prepared` of
/// them), and has the store complete its index, rename it over the box (the commit)
/// and swap both in; returns the new append handle.
fn replace_live_box(
    store: &super::Store,
    path: &Path,
    copied: u64,
    prepared: super::store::NextIndex,
) -> Result<File> {
    let old = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let end = old.metadata()?.len();
    if end < copied {
        bail!("{} is shorter than the lines just archived", path.display());
    }
    let next = epoch::next_box(path);
    let written = (|| -> std::io::Result<()> {
        let out = OpenOptions::new()
            .append(true)
            .custom_flags(crate::home::NO_FOLLOW)
            .open(&next)?;
        copy_range(&old, &out, copied, end)?;
        out.sync_all()
    })();
    let replaced = written
        .map_err(|e| anyhow::Error::new(e).context(format!("cannot write {}", next.display())))
        .and_then(|()| {
            store.replace_box(&next, prepared, || {
                std::fs::rename(&next, path)
                    .with_context(|| format!("cannot rename {}", next.display()))?;
                if let Some(dir) = path.parent() {
                    // Once renamed, the new box is the box; a failed directory sync only
                    // means a crash right now could bring the old one back, which a
                    // start then settles.
                    let _ = File::open(dir).and_then(|d| d.sync_all());
                }
                Ok(())
            })
        });
    if let Err(e) = replaced {
        let _ = std::fs::remove_file(&next);
        epoch::remove_next_index(path);
        return Err(e);
    }
    OpenOptions::new()
        .read(true)
        .append(true)
        .custom_flags(crate::home::NO_FOLLOW)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

impl Archived {
    /// The `--json` form of `dshare archive` and the node's `/archive` answer.
    pub fn to_json(&self, box_path: &Path) -> serde_json::Value {
        let h = &self.head;
        serde_json::json!({
            "archived": true,
            "epoch": h.epoch,
            "first_line": h.first_line,
            "last_line": h.lines,
            "moved": self.moved,
            "first_ts": h.first_ts,
            "last_ts": h.last_ts,
            "chain": h.chain,
            "digest": h.digest,
            "file": epoch::epoch_box(box_path, h.epoch),
            "head_file": epoch::epoch_head(box_path, h.epoch),
            "took_ms": self.took.as_millis() as u64,
            "paused_ms": self.paused.as_millis() as u64,
        })
    }
}

/// Deletes the lines of every closed epoch, keeping the signed heads; returns the
/// epochs whose lines it deleted. The live box is not touched.
pub fn prune(box_path: &Path) -> Result<Vec<u64>> {
    let _one = ARCHIVING.lock().unwrap_or_else(|e| e.into_inner());
    let mut pruned = Vec::new();
    for e in epoch::list(box_path)?
        .into_iter()
        .filter(|e| e.lines_present)
    {
        let path = epoch::epoch_box(box_path, e.n);
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        pruned.push(e.n);
    }
    Ok(pruned)
}

/// What retention does on a running node: the `serve --keep`, `--keep-messages` and
/// `--prune-epochs` settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    pub keep: Option<Duration>,
    pub keep_messages: Option<u64>,
    pub prune: bool,
}

impl Retention {
    pub fn is_off(&self) -> bool {
        self.keep.is_none() && self.keep_messages.is_none()
    }

    /// How often the retention thread looks: an eighth of the age kept, so what is
    /// retired is at most 1/8 older than asked; at least every second (a short age in
    /// a test), at most daily. A message count is looked at every second: it costs
    /// one read of the line count.
    pub fn period(&self) -> Duration {
        let by_age = self
            .keep
            .map(|k| (k / 8).clamp(Duration::from_secs(1), Duration::from_secs(86_400)));
        match (by_age, self.keep_messages) {
            (Some(p), None) => p,
            _ => Duration::from_secs(1),
        }
    }

    /// The archives due now, with `live` lines in the live box and the clock at `now`
    /// (ms). A count is only acted on once the box holds an eighth more than asked, so
    /// that each epoch is worth a file.
    pub fn due(&self, live: u64, now: u64) -> Vec<Until> {
        let mut due = Vec::new();
        if let Some(k) = self.keep {
            due.push(Until::Before(now.saturating_sub(k.as_millis() as u64)));
        }
        if let Some(n) = self.keep_messages
            && live > n + (n / 8).max(1) - 1
        {
            due.push(Until::KeepMessages(n));
        }
        due
    }
}

/// The thread that applies a [`Retention`] until the node stops.
pub struct RetentionThread {
    stop: std::sync::Arc<(Mutex<bool>, std::sync::Condvar)>,
    thread: std::thread::JoinHandle<()>,
}

impl RetentionThread {
    pub fn start(writer: Writer, identity: Identity, policy: Retention) -> Result<RetentionThread> {
        let stop = std::sync::Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let stopping = std::sync::Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("retention".into())
            .spawn(move || {
                let (lock, wake) = &*stopping;
                let mut stopped = lock.lock().expect("retention lock");
                while !*stopped {
                    drop(stopped);
                    retain_once(&writer, &identity, &policy);
                    stopped = lock.lock().expect("retention lock");
                    if !*stopped {
                        stopped = wake
                            .wait_timeout(stopped, policy.period())
                            .expect("retention lock")
                            .0;
                    }
                }
            })
            .context("cannot start the retention thread")?;
        Ok(RetentionThread { stop, thread })
    }

    pub fn stop(self) {
        *self.stop.0.lock().expect("retention lock") = true;
        self.stop.1.notify_all();
        let _ = self.thread.join();
    }
}

/// One look: archives what is due, then prunes if asked; failures are logged and
/// retried at the next look (an archive that fails changes nothing).
fn retain_once(writer: &Writer, identity: &Identity, policy: &Retention) {
    let store = writer.store();
    let live = store.summary().messages - store.base_lines();
    for until in policy.due(live, crate::time::now_ms()) {
        match archive(writer, identity, until) {
            Ok(Some(a)) => crate::note!(
                "retention: closed lines {}–{} into epoch {} ({} ms, commits held {} ms)",
                a.head.first_line,
                a.head.lines,
                a.head.epoch,
                a.took.as_millis(),
                a.paused.as_millis()
            ),
            Ok(None) => {}
            Err(e) => crate::warning!("retention: archive failed, nothing changed: {e:#}"),
        }
    }
    if policy.prune {
        match prune(store.path()) {
            Ok(pruned) if !pruned.is_empty() => crate::note!(
                "retention: deleted the lines of epochs {pruned:?}; their signed heads stay"
            ),
            Ok(_) => {}
            Err(e) => crate::warning!("retention: cannot prune epochs: {e:#}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::mbox::format::Line;

    /// Lines of two authors, interleaved a, b, a, a, b, a, each 100 bytes.
    fn lines() -> (Vec<Line>, Identity, Identity) {
        let (a, b) = (Identity::generate(), Identity::generate());
        let mut t = Tracker::default();
        let mut out = Vec::new();
        for (i, who) in [&a, &b, &a, &a, &b, &a].into_iter().enumerate() {
            out.push(t.sign_next(who, 10 + i as u64, i as u64, "x"));
        }
        (out, a, b)
    }

    #[test]
    fn the_head_of_a_line_reads_as_the_whole_line_parses() {
        let (lines, _, _) = lines();
        for line in &lines {
            let text = format!("{}\n", crate::mbox::encode_line(&line.chain, &line.message));
            let head = parse_line_head(text.as_bytes()).unwrap();
            let (m, h) = (&line.message, &head.message);
            assert_eq!(
                (head.chain, h.id, h.author, h.seq, h.prev, h.clock, h.ts),
                (line.chain, m.id, m.author, m.seq, m.prev, m.clock, m.ts)
            );
            let upper = text.replacen(&m.id.to_hex(), &m.id.to_hex().to_uppercase(), 1);
            if upper != text {
                assert!(parse_line_head(upper.as_bytes()).is_err());
            }
            assert!(parse_line_head(text.replacen("\"seq\":", "\"seq\":0", 1).as_bytes()).is_err());
            assert!(parse_line_head(&text.as_bytes()[..100]).is_err());
            assert!(
                parse_line_head(text.trim_end().as_bytes()).is_err(),
                "no line feed"
            );
        }
    }

    #[test]
    fn retention_looks_at_an_eighth_of_the_age_and_a_count_with_slack() {
        let by_age = Retention {
            keep: Some(Duration::from_secs(80)),
            ..Retention::default()
        };
        assert_eq!(by_age.period(), Duration::from_secs(10));
        assert_eq!(by_age.due(5, 100_000), vec![Until::Before(20_000)]);
        let short = Retention {
            keep: Some(Duration::from_secs(2)),
            ..Retention::default()
        };
        assert_eq!(
            short.period(),
            Duration::from_secs(1),
            "at least every second"
        );
        let year = Retention {
            keep: Some(Duration::from_secs(400 * 86_400)),
            ..Retention::default()
        };
        assert_eq!(year.period(), Duration::from_secs(86_400), "at most daily");
        let count = Retention {
            keep_messages: Some(80),
            ..Retention::default()
        };
        assert!(count.due(89, 0).is_empty(), "within an eighth over N");
        assert_eq!(count.due(90, 0), vec![Until::KeepMessages(80)]);
        assert!(Retention::default().is_off());
    }
}
