//! The table of known peers: their state as last seen, and its file in the home.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// A peer as `dshare peers` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PeerView {
    pub url: String,
    pub id: Option<AuthorId>,
    /// "up", "down", or "unknown" before the first exchange.
    pub state: String,
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
}

impl PeerView {
    /// A peer known by its address only, before any exchange.
    pub fn new(url: &str) -> PeerView {
        PeerView {
            url: url.to_string(),
            id: None,
            state: "unknown".into(),
            last_seen: None,
            rtt_ms: None,
            in_sync: false,
            behind: 0,
            ahead: 0,
            diverged: false,
            refuses_ours: None,
            clock_offset_ms: None,
            last_error: None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.state == "up"
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
            self.save();
        }
        added
    }

    /// Forgets `url` (it turned out to be this node itself).
    pub fn remove(&self, url: &str) {
        self.peers.lock().expect("peers lock").remove(url);
        self.save();
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
            .is_some_and(|p| p.state == "down")
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
