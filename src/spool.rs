//! The spool: sends that found no node (`send --client`, `run`), kept on disk and
//! delivered later with the same idempotency key, so a request is stored once however
//! often it is tried. A request keeps what is needed to seal it again at delivery
//! (the node refuses a seal older than a minute), client key included: its files are
//! mode 0600 in a 0700 directory.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::api::SendAnswer;
use crate::home::Home;
use crate::net::client::{self, NodeChoice, NodeClient, Remote};

/// The first wait before a request is tried again; it doubles with each failure.
const FIRST_BACKOFF_MS: u64 = 30_000;
/// The longest wait between two tries.
const MAX_BACKOFF_MS: u64 = 3_600_000;
/// Most requests a `send` or `run` delivers on its way: a long backlog is for
/// `spool flush`, not for the job that happens to run next.
pub const FLUSH_ON_THE_WAY: usize = 16;

/// Where a request goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "via", rename_all = "lowercase")]
pub enum Target {
    /// Sealed with a client key line (`dshare client add`), to the node it names.
    Client { line: String },
    /// A node's client API with its token; by default the node and token of `home`,
    /// read again at delivery.
    Node {
        home: Option<PathBuf>,
        url: Option<String>,
        token: Option<String>,
    },
}

impl Target {
    /// Where the request goes, for people (never the secret).
    pub fn describe(&self) -> String {
        match self {
            Target::Client { line } => match crate::invite::parse_client(line) {
                Ok((_, url)) => format!("{url} (client key)"),
                Err(_) => "a malformed client line".into(),
            },
            Target::Node { url: Some(u), .. } => u.clone(),
            Target::Node { home, .. } => format!(
                "the node of {}",
                home.as_deref()
                    .map_or("the default home".into(), |h| h.display().to_string())
            ),
        }
    }
}

/// One request that waits.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub key: String,
    pub body: String,
    pub target: Target,
    pub created_ms: u64,
    pub attempts: u32,
    /// Not tried again before this (milliseconds since the Unix epoch).
    pub next_ms: u64,
    pub last_error: Option<String>,
}

impl Entry {
    pub fn new(key: String, body: String, target: Target, now_ms: u64) -> Entry {
        Entry {
            key,
            body,
            target,
            created_ms: now_ms,
            attempts: 0,
            next_ms: now_ms,
            last_error: None,
        }
    }

    /// Counts a failed try and puts the next one off (30s, 1m, 2m… up to an hour).
    pub fn failed(&mut self, why: String, now_ms: u64) {
        self.attempts = self.attempts.saturating_add(1);
        self.next_ms = now_ms + backoff_ms(self.attempts);
        self.last_error = Some(why);
    }
}

/// The wait after `attempts` failed tries.
pub fn backoff_ms(attempts: u32) -> u64 {
    let doublings = attempts.saturating_sub(1).min(20);
    (FIRST_BACKOFF_MS << doublings).min(MAX_BACKOFF_MS)
}

/// What became of one delivery.
pub enum Delivery {
    /// The node answered: the message (or why it refused it, for good).
    Answered(Result<Box<SendAnswer>>),
    /// No node took it now; worth another try later.
    Retry(String),
}

/// Sends `body` with `key` to `target`, sealed (for a client key) at this moment.
pub fn deliver(target: &Target, body: &str, key: &str, timeout: Duration) -> Delivery {
    match target {
        Target::Client { line } => {
            match client::remote_exchange(line, body, None, Some(key), timeout) {
                Err(e) => Delivery::Answered(Err(e)),
                Ok(Remote::Answered(status, answer)) => answered(status, &answer),
                Ok(Remote::Unreachable(why)) => Delivery::Retry(why),
                Ok(Remote::Refused(why)) => Delivery::Answered(Err(anyhow::anyhow!(why))),
            }
        }
        Target::Node { home, url, token } => {
            let home = match Home::resolve(home.clone()) {
                Ok(h) => h,
                Err(e) => return Delivery::Retry(format!("{e:#}")),
            };
            let args = NodeChoice {
                url: url.clone(),
                token: token.clone(),
                token_file: None,
            };
            let node = match NodeClient::connect(&home, &args) {
                Ok(n) => n.with_timeout(timeout),
                Err(e) => return Delivery::Retry(format!("{e:#}")),
            };
            match node.send_raw(body, None, Some(key)) {
                Ok(answer) => answered(answer.status, &answer.body),
                Err(e) => Delivery::Retry(format!("{e:#}")),
            }
        }
    }
}

/// Statuses that say "not now" (busy, stopping, recovering, disk full, a clock a
/// peer disputes) are tried again; the rest are the node's final answer.
fn answered(status: u16, body: &str) -> Delivery {
    if matches!(status, 409 | 429 | 502 | 503 | 507) {
        return Delivery::Retry(format!("the node answered HTTP {status}: {}", body.trim()));
    }
    Delivery::Answered(client::interpret_send(status, body).map(Box::new))
}

/// A spool directory and its size limit.
pub struct Spool {
    dir: PathBuf,
    limit: u64,
}

/// What a flush did.
#[derive(Default)]
pub struct Flushed {
    pub delivered: Vec<(Entry, SendAnswer)>,
    pub refused: Vec<(Entry, String)>,
    /// Requests left in the spool, tried now or not.
    pub waiting: usize,
    /// Of those, the ones tried now that no node took.
    pub failed: usize,
}

impl Spool {
    /// `dir` (`--spool DIR`, `DSHARE_SPOOL`), else `<cache dir>/dshare/spool`, holding
    /// at most `limit` bytes. Not created until a request is kept.
    pub fn open(dir: Option<&Path>, limit: u64) -> Result<Spool> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => dirs::cache_dir()
                .context(
                    "cannot find this user's cache directory; pass --spool DIR or set DSHARE_SPOOL",
                )?
                .join("dshare")
                .join("spool"),
        };
        Ok(Spool { dir, limit })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn refused_dir(&self) -> PathBuf {
        self.dir.join("refused")
    }

    /// Keeps `entry` (fsynced before this returns), unless the spool would pass its
    /// limit: then it refuses, naming the limit, and keeps what it has. A request whose
    /// key already waits is the same request: kept once.
    pub fn keep(&self, entry: &Entry) -> Result<PathBuf> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .with_context(|| format!("cannot create the spool {}", self.dir.display()))?;
        let path = self.path_for(entry);
        if path.exists() {
            return Ok(path);
        }
        let bytes = serde_json::to_vec_pretty(entry)?;
        let used = self.size()?;
        if used + bytes.len() as u64 > self.limit {
            bail!(
                "the spool {} is full ({} bytes of {} allowed): this request was not kept; deliver what waits with `dshare spool flush`, or raise --spool-limit",
                self.dir.display(),
                used,
                self.limit
            );
        }
        write_private(&path, &bytes)?;
        Ok(path)
    }

    /// One file per key and target: a request tried again replaces its own file.
    fn path_for(&self, entry: &Entry) -> PathBuf {
        let who = serde_json::to_string(&entry.target).unwrap_or_default();
        let digest = crate::message::sha256(format!("{}\n{who}", entry.key).as_bytes());
        self.dir.join(format!("{}.json", digest.short(24)))
    }

    /// Bytes held by the requests that wait or were refused.
    fn size(&self) -> Result<u64> {
        let mut total = 0;
        for dir in [self.dir.clone(), self.refused_dir()] {
            for (path, _) in read_dir_entries(&dir)? {
                total += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
            }
        }
        Ok(total)
    }

    /// The requests that wait, oldest first.
    pub fn list(&self) -> Result<Vec<(PathBuf, Entry)>> {
        let mut all = read_dir_entries(&self.dir)?;
        all.sort_by_key(|(_, e)| e.created_ms);
        Ok(all)
    }

    /// The requests the node refused for good, kept for a person to look at.
    pub fn refused(&self) -> Result<Vec<(PathBuf, Entry)>> {
        read_dir_entries(&self.refused_dir())
    }

    /// Tries the requests that are due (all of them with `all`, and those for `eager`,
    /// the target a send is about to reach anyway), oldest first, at most `most`. A
    /// target that does not answer, or whose oldest request is not due, is not tried
    /// again in this flush: its requests arrive in the order they were made.
    pub fn flush(
        &self,
        all: bool,
        eager: Option<&Target>,
        most: usize,
        timeout: Duration,
    ) -> Result<Flushed> {
        let mut done = Flushed::default();
        let mut held: Vec<Target> = Vec::new();
        let mut tried = 0;
        for (path, mut entry) in self.list()? {
            let now = crate::time::now_ms();
            let due = all || eager == Some(&entry.target) || entry.next_ms <= now;
            if tried >= most || held.contains(&entry.target) || !due {
                held.push(entry.target.clone());
                done.waiting += 1;
                continue;
            }
            tried += 1;
            match deliver(&entry.target, &entry.body, &entry.key, timeout) {
                Delivery::Answered(Ok(value)) => {
                    remove(&path)?;
                    done.delivered.push((entry, *value));
                }
                Delivery::Answered(Err(e)) => {
                    let why = format!("{e:#}");
                    entry.last_error = Some(why.clone());
                    self.move_refused(&path, &entry)?;
                    done.refused.push((entry, why));
                }
                Delivery::Retry(why) => {
                    entry.failed(why, crate::time::now_ms());
                    held.push(entry.target.clone());
                    write_private(&path, &serde_json::to_vec_pretty(&entry)?)?;
                    done.waiting += 1;
                    done.failed += 1;
                }
            }
        }
        Ok(done)
    }

    fn move_refused(&self, path: &Path, entry: &Entry) -> Result<()> {
        let to = self.refused_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&to)
            .with_context(|| format!("cannot create {}", to.display()))?;
        let name = path.file_name().unwrap_or_default();
        write_private(&to.join(name), &serde_json::to_vec_pretty(entry)?)?;
        remove(path)
    }
}

/// Every `*.json` request in `dir` (none if it does not exist); files that do not
/// parse are skipped, never deleted.
fn read_dir_entries(dir: &Path) -> Result<Vec<(PathBuf, Entry)>> {
    let listing = match fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    let mut out = Vec::new();
    for item in listing {
        let path = item?.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let Ok(text) = fs::read(&path) else { continue };
        if let Ok(entry) = serde_json::from_slice::<Entry>(&text) {
            out.push((path, entry));
        }
    }
    Ok(out)
}

/// Writes `bytes` to `path` through a fresh 0600 file, fsynced and renamed into
/// place, so a crash leaves the old request or the new one, never half of one.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    // A name of this process's own: two senders may spool at once.
    let fresh = path.with_extension(format!("tmp{}", std::process::id()));
    crate::durable::replace(path, &fresh, bytes)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Removes a delivered request; one already removed (by a flush running at the same
/// time) is not an error.
fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// A fresh random idempotency key (16 hex digits after `prefix`).
pub fn random_key(prefix: &str) -> String {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the system's random source works");
    format!("{prefix}{}", crate::hex::encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spool(dir: &Path, limit: u64) -> Spool {
        Spool::open(Some(dir), limit).unwrap()
    }

    fn entry(key: &str) -> Entry {
        let target = Target::Node {
            home: None,
            url: Some("http://127.0.0.1:1".into()),
            token: None,
        };
        Entry::new(key.into(), "hello".into(), target, 1)
    }

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff_ms(1), 30_000);
        assert_eq!(backoff_ms(2), 60_000);
        assert_eq!(backoff_ms(100), 3_600_000);
    }

    #[test]
    fn a_full_spool_refuses_and_keeps_what_it_has() {
        let dir = tempfile::tempdir().unwrap();
        let s = spool(&dir.path().join("spool"), 600);
        s.keep(&entry("a")).unwrap();
        s.keep(&entry("a")).unwrap();
        assert_eq!(s.list().unwrap().len(), 1, "one file per key");
        let mut kept = 1;
        let err = loop {
            match s.keep(&entry(&format!("k{kept}"))) {
                Ok(_) => kept += 1,
                Err(e) => break e,
            }
            assert!(kept < 100);
        };
        assert!(format!("{err:#}").contains("is full"), "{err:#}");
        assert_eq!(s.list().unwrap().len(), kept);
        assert!(s.size().unwrap() <= 600);
    }

    #[test]
    fn requests_are_private_files() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let s = spool(&dir.path().join("spool"), 1 << 20);
        let path = s.keep(&entry("a")).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(s.dir()), 0o700);
    }
}
