//! The table of known peers: their state as last seen, and its file in the home.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::message::AuthorId;

/// The URLs in the peer list at `path`; none if it is missing. One that cannot be
/// parsed is kept as `peers.json.bad-<ms>` with a warning: reading it as empty and
/// saving over it lost the list without a word.
fn read_saved(path: &Path) -> Vec<String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            crate::warning!("cannot read {}: {e}", path.display());
            return Vec::new();
        }
    };
    match serde_json::from_slice::<PeersFile>(&bytes) {
        Ok(file) => file.peers,
        Err(e) => {
            let aside = path.with_extension(format!("json.bad-{}", crate::time::now_ms()));
            match std::fs::rename(path, &aside) {
                Ok(()) => crate::warning!(
                    "{} is not a peer list ({e}); kept it as {} and started without it",
                    path.display(),
                    aside.display()
                ),
                Err(re) => crate::warning!(
                    "{} is not a peer list ({e}) and cannot be moved aside: {re}",
                    path.display()
                ),
            }
            Vec::new()
        }
    }
}

/// What the last exchange with a peer, or failure detection (SWIM), said of it.
/// Serialised as "up", "suspect", "down" and "unknown", the words of the peer JSON,
/// `--json` output and the page.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// The last exchange was answered, sealed with a network key.
    Up,
    /// Failure detection suspects it: a probe and the indirect probes through other
    /// members went unanswered, and it has a few seconds to refute it. Still pushed to.
    Suspect,
    /// The last exchange could not reach the peer, or failure detection declared it
    /// down.
    Down,
    /// No exchange yet (the node has just started, or the peer was just learned).
    /// Also what a word from a newer node that this one does not know reads as.
    #[default]
    #[serde(other)]
    Unknown,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Up => "up",
            PeerState::Suspect => "suspect",
            PeerState::Down => "down",
            PeerState::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for PeerState {
    /// Pads, so `{:<7}` lines up columns as it did with the string.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A peer as `dshare peers` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerView {
    pub url: String,
    pub id: Option<AuthorId>,
    pub state: PeerState,
    /// Milliseconds since the Unix epoch of the last answer; `None` if never.
    pub last_seen: Option<u64>,
    pub rtt_ms: Option<f64>,
    pub in_sync: bool,
    /// Messages the peer holds that this node lacks, from the last exchange.
    pub behind: u64,
    /// Messages this node holds that the peer lacks.
    pub ahead: u64,
    /// The peer holds a different message at a seq this node holds too.
    pub diverged: bool,
    /// Why the peer refuses this node's messages or requests (a rule of its own, or a
    /// clock too far from ours), as it last said; `None` once it takes them again.
    #[serde(default)]
    pub refuses_ours: Option<String>,
    /// The peer's wall clock minus ours, in ms, from its last sealed answer.
    #[serde(default)]
    pub clock_offset_ms: Option<i64>,
    /// Why the last exchange with the peer failed, if it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Both nodes hold a link: in a network larger than a table, the peers this
    /// node pushes to (see docs/PROTOCOL.md, *Links*).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
}

impl PeerView {
    /// A peer known by its address only, before any exchange.
    pub fn new(url: &str) -> PeerView {
        PeerView {
            url: url.to_string(),
            id: None,
            state: PeerState::Unknown,
            last_seen: None,
            rtt_ms: None,
            in_sync: false,
            behind: 0,
            ahead: 0,
            diverged: false,
            refuses_ours: None,
            clock_offset_ms: None,
            last_error: None,
            link: false,
        }
    }

    /// Up, or only suspected: SWIM treats a suspect as alive until it is declared
    /// down (a watchdog that fired on a suspicion would fire on every slow probe).
    pub fn is_up(&self) -> bool {
        matches!(self.state, PeerState::Up | PeerState::Suspect)
    }
}

/// Most peers adopted, each with its worker thread: the bound on the table, on
/// `peers.json`, and on this node's peer threads. Addresses are adopted only once they
/// prove an id (see `candidates`); a full table takes no more until one is forgotten.
pub const MAX_PEERS: usize = 64;

/// Known peers by URL. The URLs persist in `peers.json`; states live in memory.
pub struct PeerTable {
    path: PathBuf,
    peers: Mutex<BTreeMap<String, PeerView>>,
    /// Bumped whenever a URL is added or forgotten, so that a reader holding a view
    /// of who is in the table can tell it went stale without comparing the table.
    changes: AtomicU64,
}

#[derive(Serialize, Deserialize, Default)]
struct PeersFile {
    peers: Vec<String>,
}

impl PeerTable {
    /// Loads the URLs saved in `path`, at most [`MAX_PEERS`] of them (a list saved
    /// before the bound may hold thousands). A file that is not a peer list is moved
    /// aside, not overwritten, and the node starts with the others it is given.
    pub fn load(path: PathBuf) -> PeerTable {
        let peers = read_saved(&path)
            .iter()
            .take(MAX_PEERS)
            .map(|u| (u.clone(), PeerView::new(u)))
            .collect();
        PeerTable {
            path,
            peers: Mutex::new(peers),
            changes: AtomicU64::new(0),
        }
    }

    /// Adds `url`; returns false if it was known already or the table is full.
    pub fn add(&self, url: &str) -> bool {
        let added = {
            let mut peers = self.peers.lock().expect("peers lock");
            if peers.contains_key(url) || peers.len() >= MAX_PEERS {
                false
            } else {
                peers.insert(url.to_string(), PeerView::new(url));
                true
            }
        };
        if added {
            self.changes.fetch_add(1, Ordering::Relaxed);
            self.save();
        }
        added
    }

    /// Forgets `url` (it turned out to be this node itself).
    pub fn remove(&self, url: &str) {
        self.peers.lock().expect("peers lock").remove(url);
        self.changes.fetch_add(1, Ordering::Relaxed);
        self.save();
    }

    /// How many times a URL was added or forgotten: unchanged, the table holds the
    /// same URLs as when it was last read.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    pub fn contains(&self, url: &str) -> bool {
        self.peers.lock().expect("peers lock").contains_key(url)
    }

    /// The peers whose id was proven by an exchange: the ones worth telling others of.
    pub fn proven_urls(&self) -> Vec<String> {
        self.peers
            .lock()
            .expect("peers lock")
            .values()
            .filter(|p| p.id.is_some())
            .map(|p| p.url.clone())
            .collect()
    }

    pub fn urls(&self) -> Vec<String> {
        self.peers
            .lock()
            .expect("peers lock")
            .keys()
            .cloned()
            .collect()
    }

    pub fn views(&self) -> Vec<PeerView> {
        self.peers
            .lock()
            .expect("peers lock")
            .values()
            .cloned()
            .collect()
    }

    pub fn up(&self) -> Vec<String> {
        self.peers
            .lock()
            .expect("peers lock")
            .values()
            .filter(|p| p.is_up())
            .map(|p| p.url.clone())
            .collect()
    }

    /// True when the last exchange with `url` failed. Asked for every batch pushed,
    /// so it looks the one peer up rather than copy the table.
    pub fn is_down(&self, url: &str) -> bool {
        self.peers
            .lock()
            .expect("peers lock")
            .get(url)
            .is_some_and(|p| p.state == PeerState::Down)
    }

    pub fn update(&self, url: &str, change: impl FnOnce(&mut PeerView)) {
        if let Some(p) = self.peers.lock().expect("peers lock").get_mut(url) {
            change(p);
        }
    }

    /// Writes the URL list atomically (temp file, then rename).
    fn save(&self) {
        let file = PeersFile { peers: self.urls() };
        let tmp = self.path.with_extension("json.tmp");
        let written = serde_json::to_vec_pretty(&file)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = written {
            crate::warning!("cannot save {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PeerState, PeerView};

    #[test]
    fn a_peer_state_is_the_same_word_on_the_wire_as_before() {
        for (state, word) in [
            (PeerState::Up, "up"),
            (PeerState::Suspect, "suspect"),
            (PeerState::Down, "down"),
            (PeerState::Unknown, "unknown"),
        ] {
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{word}\"")
            );
            assert_eq!(state.to_string(), word);
            let back: PeerState = serde_json::from_str(&format!("\"{word}\"")).unwrap();
            assert_eq!(back, state);
        }
        assert_eq!(format!("{:<7}|", PeerState::Up), "up     |");
        let view = serde_json::to_value(PeerView::new("http://x")).unwrap();
        assert_eq!(view["state"], "unknown");
    }

    #[test]
    fn a_state_word_this_node_does_not_know_reads_as_unknown() {
        let state: PeerState = serde_json::from_str("\"departed\"").unwrap();
        assert_eq!(state, PeerState::Unknown);
    }
}
