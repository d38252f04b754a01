//! The node's memory of idempotency keys: a repeat of a sender's key within the window
//! is answered with the first message's id and stores nothing. Kept in memory and in a
//! small durable table beside the box (`sends.keys`), because the repeat that matters
//! most comes after a crash: a node that stored a message and died before answering.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::hex::Hash;

/// How long a key is remembered. A day covers a spool that waits out a night's
/// outage; a sender that retries later than that gets a second copy.
pub const WINDOW_MS: u64 = 24 * 3600 * 1000;

/// Most keys remembered. Beyond it the oldest is forgotten first, so a flood of keyed
/// sends shortens the window instead of growing the node's memory (about 200 bytes a
/// key: 20 MB at most).
pub const MAX_KEYS: usize = 100_000;

/// Longest key, in bytes.
pub const MAX_KEY_LEN: usize = 128;

/// The table's file name in the home.
pub const TABLE: &str = "sends.keys";

/// Refuses a key that is empty, too long or has characters outside
/// `A-Za-z0-9-_.:/@+=` (the table is one line per key, split at spaces).
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!(
            "an idempotency key has 1 to {MAX_KEY_LEN} characters"
        ));
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@+=".contains(&b))
    {
        return Err("an idempotency key has only letters, digits and -_.:/@+=".into());
    }
    Ok(())
}

/// Who sent a keyed request and the key: keys of different senders never meet.
pub type Sender = (String, String);

/// The message a key stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stored {
    pub at_ms: u64,
    pub id: Hash,
    pub seq: u64,
}

/// What a keyed send may do.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The key was used before: answer with this message.
    Known(Stored),
    /// The same key is being stored right now by another request: try again.
    Busy,
    /// New: store the message, then [`Keys::record`] it (or [`Keys::release`]).
    Claimed,
}

/// The keys, bounded in count and age; no I/O.
#[derive(Debug)]
pub struct Memory {
    entries: HashMap<Sender, Stored>,
    /// Keys in the order they were recorded, to forget the oldest first.
    order: VecDeque<(u64, Sender)>,
    pending: HashSet<Sender>,
    cap: usize,
    window_ms: u64,
}

impl Memory {
    pub fn new(cap: usize, window_ms: u64) -> Memory {
        Memory {
            entries: HashMap::new(),
            order: VecDeque::new(),
            pending: HashSet::new(),
            cap: cap.max(1),
            window_ms,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets keys older than the window, and the oldest beyond the cap.
    fn expire(&mut self, now_ms: u64) {
        while let Some((at, sender)) = self.order.front() {
            let old = now_ms.saturating_sub(*at) > self.window_ms;
            if !old && self.order.len() <= self.cap {
                break;
            }
            if self.entries.get(sender).is_some_and(|s| s.at_ms == *at) {
                self.entries.remove(sender);
            }
            self.order.pop_front();
        }
    }

    pub fn claim(&mut self, sender: &Sender, now_ms: u64) -> Claim {
        self.expire(now_ms);
        if let Some(stored) = self.entries.get(sender) {
            return Claim::Known(*stored);
        }
        if !self.pending.insert(sender.clone()) {
            return Claim::Busy;
        }
        Claim::Claimed
    }

    pub fn insert(&mut self, sender: Sender, stored: Stored, now_ms: u64) {
        self.pending.remove(&sender);
        self.order.push_back((stored.at_ms, sender.clone()));
        self.entries.insert(sender, stored);
        self.expire(now_ms);
    }

    pub fn release(&mut self, sender: &Sender) {
        self.pending.remove(sender);
    }

    /// The keys still remembered, oldest first (what a compacted table holds).
    fn live(&self) -> impl Iterator<Item = (&Sender, &Stored)> {
        self.order.iter().filter_map(|(at, s)| {
            self.entries
                .get(s)
                .filter(|e| e.at_ms == *at)
                .map(|e| (s, e))
        })
    }
}

/// The memory and its table on disk.
pub struct Keys {
    memory: Mutex<Memory>,
    table: Mutex<Table>,
}

struct Table {
    path: PathBuf,
    file: File,
    lines: usize,
}

impl Keys {
    /// Loads `dir/sends.keys`, keeping the keys still in the window, and rewrites it
    /// with only those.
    pub fn open(dir: &Path, cap: usize, window_ms: u64, now_ms: u64) -> Result<Keys> {
        let path = dir.join(TABLE);
        let mut memory = Memory::new(cap, window_ms);
        if let Ok(file) = File::open(&path) {
            for line in BufReader::new(file).lines() {
                let line = line.with_context(|| format!("cannot read {}", path.display()))?;
                // A torn last line (a crash while appending) is a key not yet
                // acknowledged: its sender will retry, and the box holds its message.
                if let Some((sender, stored)) = parse_line(&line) {
                    memory.insert(sender, stored, now_ms);
                }
            }
        }
        let table = Table::rewrite(&path, &memory)?;
        Ok(Keys {
            memory: Mutex::new(memory),
            table: Mutex::new(table),
        })
    }

    pub fn claim(&self, sender: &Sender, now_ms: u64) -> Claim {
        self.memory.lock().expect("keys lock").claim(sender, now_ms)
    }

    /// Remembers `sender`'s key for `stored`, on disk (fsynced) before in memory: the
    /// answer that follows promises a repeat will not store it again.
    pub fn record(&self, sender: &Sender, stored: Stored, now_ms: u64) -> std::io::Result<()> {
        let mut table = self.table.lock().expect("table lock");
        let appended = table.append(sender, &stored);
        let mut memory = self.memory.lock().expect("keys lock");
        match appended {
            Ok(()) => {
                memory.insert(sender.clone(), stored, now_ms);
                // The file grows by a line a key: compacted once it holds twice the
                // keys remembered, so it stays within twice the memory's bound.
                // A compaction that fails leaves the longer table, which is still right.
                if table.lines > 2 * memory.cap.max(1024)
                    && let Ok(smaller) = Table::rewrite(&table.path, &memory)
                {
                    *table = smaller;
                }
                Ok(())
            }
            Err(e) => {
                memory.release(sender);
                Err(e)
            }
        }
    }

    pub fn release(&self, sender: &Sender) {
        self.memory.lock().expect("keys lock").release(sender);
    }

    pub fn len(&self) -> usize {
        self.memory.lock().expect("keys lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Table {
    /// Writes the live keys to a new file and renames it over the table.
    fn rewrite(path: &Path, memory: &Memory) -> Result<Table> {
        let fresh = path.with_extension("keys.new");
        let mut text = String::new();
        let mut lines = 0;
        for (sender, stored) in memory.live() {
            text.push_str(&format_line(sender, stored));
            lines += 1;
        }
        crate::durable::replace(path, &fresh, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Table {
            path: path.to_path_buf(),
            file,
            lines,
        })
    }

    fn append(&mut self, sender: &Sender, stored: &Stored) -> std::io::Result<()> {
        self.file
            .write_all(format_line(sender, stored).as_bytes())?;
        self.file.sync_data()?;
        self.lines += 1;
        Ok(())
    }
}

/// `AT_MS ID SEQ SENDER KEY`: neither the sender nor the key has a space.
fn format_line((who, key): &Sender, s: &Stored) -> String {
    format!("{} {} {} {who} {key}\n", s.at_ms, s.id.to_hex(), s.seq)
}

fn parse_line(line: &str) -> Option<(Sender, Stored)> {
    let mut parts = line.split(' ');
    let at_ms = parts.next()?.parse().ok()?;
    let id: Hash = parts.next()?.parse().ok()?;
    let seq = parts.next()?.parse().ok()?;
    let who = parts.next()?.to_string();
    let key = parts.next()?.to_string();
    if parts.next().is_some() || check_key(&key).is_err() {
        return None;
    }
    Some(((who, key), Stored { at_ms, id, seq }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn sender(key: &str) -> Sender {
        ("token".into(), key.into())
    }

    fn stored(at_ms: u64, seq: u64) -> Stored {
        Stored {
            at_ms,
            id: crate::message::sha256(&seq.to_be_bytes()),
            seq,
        }
    }

    #[test]
    fn a_repeat_is_known_and_a_concurrent_one_waits() {
        let mut m = Memory::new(10, 1000);
        assert_eq!(m.claim(&sender("a"), 0), Claim::Claimed);
        assert_eq!(m.claim(&sender("a"), 0), Claim::Busy);
        m.insert(sender("a"), stored(0, 1), 0);
        assert_eq!(m.claim(&sender("a"), 5), Claim::Known(stored(0, 1)));
        let other = ("client:00000001".to_string(), "a".to_string());
        assert_eq!(m.claim(&other, 5), Claim::Claimed, "keys are per sender");
        m.release(&other);
        assert_eq!(
            m.claim(&other, 5),
            Claim::Claimed,
            "a failed store frees it"
        );
    }

    #[test]
    fn keys_are_forgotten_after_the_window() {
        let mut m = Memory::new(10, 1000);
        m.claim(&sender("a"), 0);
        m.insert(sender("a"), stored(0, 1), 0);
        assert!(matches!(m.claim(&sender("a"), 1000), Claim::Known(_)));
        assert_eq!(m.claim(&sender("a"), 1001), Claim::Claimed);
    }

    #[test]
    fn a_flood_of_keys_never_passes_the_cap() {
        let mut m = Memory::new(100, u64::MAX);
        for i in 0..10_000u64 {
            let s = sender(&format!("k{i}"));
            assert_eq!(m.claim(&s, i), Claim::Claimed);
            m.insert(s, stored(i, i + 1), i);
            assert!(m.len() <= 100 && m.order.len() <= 100);
        }
        assert!(matches!(m.claim(&sender("k9999"), 0), Claim::Known(_)));
        assert_eq!(
            m.claim(&sender("k0"), 0),
            Claim::Claimed,
            "oldest forgotten"
        );
    }

    #[test]
    fn the_table_survives_a_restart_and_is_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keys::open(dir.path(), 3, 1000, 0).unwrap();
        for (i, k) in ["a", "b", "c", "d"].iter().enumerate() {
            let i = i as u64;
            assert_eq!(keys.claim(&sender(k), i), Claim::Claimed);
            keys.record(&sender(k), stored(i, i + 1), i).unwrap();
        }
        drop(keys);
        let mut text = fs::read_to_string(dir.path().join(TABLE)).unwrap();
        text.push_str("17 torn");
        fs::write(dir.path().join(TABLE), text).unwrap();
        let again = Keys::open(dir.path(), 3, 1000, 10).unwrap();
        assert_eq!(again.len(), 3);
        assert_eq!(again.claim(&sender("d"), 10), Claim::Known(stored(3, 4)));
        assert_eq!(again.claim(&sender("a"), 10), Claim::Claimed);
        let lines = fs::read_to_string(dir.path().join(TABLE)).unwrap();
        assert_eq!(lines.lines().count(), 3, "{lines}");
        let later = Keys::open(dir.path(), 3, 1000, 5000).unwrap();
        assert!(later.is_empty(), "all past the window");
    }

    #[test]
    fn keys_with_spaces_or_too_long_are_refused() {
        assert!(check_key("backup-2024-06-01").is_ok());
        assert!(check_key("run:0123abcd/end").is_ok());
        assert!(check_key("").is_err());
        assert!(check_key("a b").is_err());
        assert!(check_key(&"x".repeat(MAX_KEY_LEN + 1)).is_err());
    }
}
