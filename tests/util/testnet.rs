//! A guard around `dshare testnet --json`: the nodes of a real network on loopback,
//! stopped with SIGTERM (never SIGKILL, which would orphan the nodes) on drop.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{DEADLINE, dshare, signal};

/// How long a whole test network gets to start: a debug build of several nodes on a
/// loaded two-core machine is slow to join.
pub const START: Duration = Duration::from_secs(90);

pub struct Testnet {
    child: Option<Child>,
    /// The `{"node","url","home","id","token","pid","log"}` lines, node 1 first.
    pub nodes: Vec<serde_json::Value>,
    /// The directory of the homes, from the `ready` line.
    pub dir: PathBuf,
}

impl Testnet {
    /// `dshare testnet --nodes N --json`, waiting for its `ready` line. `scratch` is a
    /// home path for the environment only (testnet makes its own homes).
    pub fn start(scratch: &Path, n: usize) -> Testnet {
        let mut child = dshare(scratch, &["testnet", "--nodes", &n.to_string(), "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn dshare testnet");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        let mut net = Testnet {
            child: Some(child),
            nodes: Vec::new(),
            dir: PathBuf::new(),
        };
        let end = Instant::now() + START;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let line = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("testnet printed no `ready` line within {START:?}"));
            let value: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("testnet --json printed {line:?}: {e}"));
            if value["ready"] == true {
                net.dir = PathBuf::from(value["dir"].as_str().unwrap());
                break;
            }
            net.nodes.push(value);
        }
        assert_eq!(net.nodes.len(), n);
        net
    }

    /// The home of node `i` (1-based).
    pub fn home(&self, i: usize) -> PathBuf {
        PathBuf::from(self.nodes[i - 1]["home"].as_str().unwrap())
    }

    pub fn url(&self, i: usize) -> String {
        self.nodes[i - 1]["url"].as_str().unwrap().to_string()
    }

    pub fn token(&self, i: usize) -> String {
        self.nodes[i - 1]["token"].as_str().unwrap().to_string()
    }

    pub fn id(&self, i: usize) -> String {
        self.nodes[i - 1]["id"].as_str().unwrap().to_string()
    }

    pub fn pid(&self, i: usize) -> u32 {
        u32::try_from(self.nodes[i - 1]["pid"].as_u64().unwrap()).unwrap()
    }

    /// SIGTERM, then the exit status; fails if testnet does not stop in time.
    pub fn stop(mut self) -> ExitStatus {
        stop(self.child.as_mut().unwrap()).expect("testnet did not stop on SIGTERM")
    }
}

fn stop(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    signal(child.id(), "TERM");
    let end = Instant::now() + DEADLINE;
    while Instant::now() < end {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Drop for Testnet {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = stop(child);
        }
    }
}
