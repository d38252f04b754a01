//! What every fault test shares: one test at a time (the figures mean something only
//! when a test has the machine to itself), figures printed past libtest's capture, a
//! seeded random source, and a network of real nodes on fixed loopback ports (so a
//! node killed with `kill -9` comes back at the same address) with the end-of-test
//! checks: every acknowledged message on every node, every box intact, digests equal,
//! no message twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::util::{Node, Scratch, dshare, get, ok, show};

/// How long a network of real nodes gets to converge once the faults stop. Generous:
/// the machine is small and shared, and a failure here is a lost message, not a slow
/// one.
pub const CONVERGE: Duration = Duration::from_secs(90);

static SERIAL: Mutex<()> = Mutex::new(());

/// Runs fault tests one at a time: each loads the machine on purpose, and timing
/// figures (send latency, replication lag) measured next to another fault test would
/// be noise. A failed test poisons the lock; the next one goes on.
pub fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Prints one line of figures on stderr, written to the file descriptor directly so
/// libtest does not capture it: every run says what it did, passing or not.
pub fn report(test: &str, text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "faults: {test}: {text}");
}

/// A small seeded generator (xorshift64*): enough to pick victims and delays. The seed
/// is printed, and `FAULTS_SEED=N` replays a run's choices.
pub struct Rng(u64);

impl Rng {
    pub fn new(test: &str) -> Rng {
        let seed = std::env::var("FAULTS_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
                    ^ u64::from(std::process::id())
            });
        report(
            test,
            &format!("seed {seed} (FAULTS_SEED={seed} replays it)"),
        );
        Rng(seed | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// A duration between `lo` and `hi` milliseconds.
    pub fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo + 1))
    }
}

/// A loopback port that is free now, for a node that keeps its port across restarts
/// (as a machine keeps its address). It is taken below the kernel's ephemeral range,
/// where no `bind(":0")` of another test on this shared machine can land on it in the
/// moment between this check and the node's own bind; each call of this process
/// tries the next port, so two nodes of one test never get the same one.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let low: u32 = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    // From 10000 up to the ephemeral range, starting at a place set by the process id.
    let span = low.saturating_sub(10_000).max(1);
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = 10_000 + (std::process::id().wrapping_mul(97).wrapping_add(n)) % span;
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Creates homes `names` in one network: the first makes it, the others join with an
/// invite naming `first_url`.
pub fn init_network(scratch: &Scratch, names: &[&str], first_url: &str) -> Vec<PathBuf> {
    let homes: Vec<PathBuf> = names.iter().map(|n| scratch.home(n)).collect();
    ok(&homes[0], &["init", "-q"]);
    let invite = ok(&homes[0], &["invite", "--url", first_url]);
    for home in &homes[1..] {
        ok(home, &["init", "-q", "--join", invite.trim()]);
    }
    homes
}

/// `n` real nodes on fixed loopback ports, each told about every other one.
pub struct Cluster {
    pub scratch: Scratch,
    pub homes: Vec<PathBuf>,
    pub ports: Vec<u16>,
    pub nodes: Vec<Option<Node>>,
    /// Extra `serve` arguments per node.
    extra: Vec<Vec<String>>,
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, |_| Vec::new())
    }

    /// Starts `n` nodes; `extra(i)` gives node `i` more `serve` arguments.
    pub fn start_with(n: usize, extra: impl Fn(usize) -> Vec<String>) -> Cluster {
        let scratch = Scratch::new();
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let homes = init_network(&scratch, &names, &format!("http://127.0.0.1:{}", ports[0]));
        let mut cluster = Cluster {
            scratch,
            homes,
            ports,
            nodes: (0..n).map(|_| None).collect(),
            extra: (0..n).map(extra).collect(),
        };
        for i in 0..n {
            cluster.restart(i);
        }
        cluster
    }

    pub fn len(&self) -> usize {
        self.homes.len()
    }

    pub fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    pub fn node(&self, i: usize) -> &Node {
        self.nodes[i].as_ref().expect("node is running")
    }

    pub fn token(&self, i: usize) -> String {
        crate::util::read_secret(&self.homes[i].join("client.token"))
    }

    /// The `serve` command line of node `i`: its fixed port, every other node as a
    /// peer, and its extra arguments.
    fn args(&self, i: usize) -> Vec<String> {
        let mut args = vec![
            "serve".to_string(),
            "--listen".into(),
            format!("127.0.0.1:{}", self.ports[i]),
        ];
        for j in (0..self.len()).filter(|&j| j != i) {
            args.push("--peer".into());
            args.push(self.url(j));
        }
        args.extend(self.extra[i].iter().cloned());
        args
    }

    /// Starts node `i` (again) on its port and waits until it answers.
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is already running");
        let args = self.args(i);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.nodes[i] = Some(Node::start_with(&self.homes[i], &args));
    }

    /// `kill -9` node `i`: no chance to finish a write or clean up.
    pub fn kill9(&mut self, i: usize) {
        if let Some(node) = self.nodes[i].take() {
            node.kill9();
        }
    }

    /// The `/status` of node `i`, if it answers.
    pub fn status(&self, i: usize) -> Option<serde_json::Value> {
        let node = self.nodes[i].as_ref()?;
        let (code, body) = node.get("/status", &[]);
        (code == 200).then(|| serde_json::from_str(&body).unwrap())
    }

    /// Waits until every node answers with the same digest and message count, and
    /// at least `at_least` messages; returns the count and how long it took. On a
    /// timeout, fails with every node's status and peer table.
    pub fn converge(&self, at_least: usize) -> (u64, Duration) {
        let start = Instant::now();
        loop {
            let all: Option<Vec<_>> = (0..self.len()).map(|i| self.status(i)).collect();
            if let Some(all) = all {
                let first = &all[0];
                let same = all
                    .iter()
                    .all(|s| s["digest"] == first["digest"] && s["messages"] == first["messages"]);
                let count = first["messages"].as_u64().unwrap();
                if same && count >= at_least as u64 {
                    return (count, start.elapsed());
                }
            }
            if start.elapsed() > CONVERGE {
                panic!(
                    "{} nodes did not converge on at least {at_least} messages within {CONVERGE:?}\n{}",
                    self.len(),
                    self.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every node's status, peer table and the end of its log, for a failure message.
    pub fn describe(&self) -> String {
        let mut text = String::new();
        for i in 0..self.len() {
            text.push_str(&format!("--- node {i} {}\n", self.url(i)));
            let Some(node) = self.nodes[i].as_ref() else {
                text.push_str("not running\n");
                continue;
            };
            text.push_str(&format!("status: {}\n", node.get("/status", &[]).1.trim()));
            text.push_str(&format!("peers: {}\n", node.get("/peers", &[]).1.trim()));
            let log = node.log();
            let tail: Vec<&str> = log.lines().rev().take(10).collect();
            for line in tail.iter().rev() {
                text.push_str(&format!("log: {line}\n"));
            }
        }
        text
    }

    /// The end-of-test checks on every node: each acknowledged id is held, the box
    /// verifies, no id is on two lines, and all digests are equal. Returns the number
    /// of (node, message) pairs checked.
    pub fn check_all(&self, acked: &[String]) -> usize {
        let mut digests = BTreeMap::new();
        let mut checked = 0;
        for i in 0..self.len() {
            let held = box_ids(&self.homes[i]);
            let unique: HashSet<&String> = held.iter().collect();
            assert_eq!(
                unique.len(),
                held.len(),
                "node {i} holds {} lines but {} distinct ids: a message was stored twice",
                held.len(),
                unique.len()
            );
            let lost: Vec<&String> = acked.iter().filter(|id| !unique.contains(id)).collect();
            assert!(
                lost.is_empty(),
                "node {i} lacks {} of {} acknowledged messages, e.g. {:?}",
                lost.len(),
                acked.len(),
                &lost[..lost.len().min(3)]
            );
            checked += acked.len();
            let report = verify_json(&self.homes[i]);
            digests.insert(i, report["digest"].as_str().unwrap().to_string());
        }
        let first = digests.values().next().unwrap();
        assert!(
            digests.values().all(|d| d == first),
            "digests differ: {digests:?}"
        );
        checked
    }
}

/// `dshare verify --json` on a home, requiring exit 0 (intact).
pub fn verify_json(home: &Path) -> serde_json::Value {
    let out = crate::util::run(home, &["verify", "--json"]);
    assert!(
        out.status.success(),
        "the box of {} does not verify\n{}",
        home.display(),
        show(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The messages on the complete, well-formed lines of a home's box, in line order.
pub fn box_messages(home: &Path) -> Vec<serde_json::Value> {
    let text = fs::read(home.join("box.txt")).unwrap();
    text.split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| serde_json::from_slice(line).ok())
        .collect()
}

/// The ids of a home's box, in line order.
pub fn box_ids(home: &Path) -> Vec<String> {
    box_messages(home)
        .iter()
        .map(|m| m["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

pub use crate::util::torn_files;

/// One `GET /send` over a fresh connection: `Ok(id)` on 200, else the status and body.
pub fn send_http(url: &str, token: &str, body: &str) -> Result<String, (u16, String)> {
    let target = format!("{url}/send?msg={}&token={token}", crate::util::encode(body));
    let (status, head, text) = get(&target);
    if status == 200 {
        Ok(text.trim().to_string())
    } else {
        Err((status, format!("{head}\n{text}")))
    }
}

/// An HTTP client that keeps its connections open between requests, as a script
/// or service sending many messages would. Error statuses come back as answers.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// A refused or failed send: the HTTP status (0 when no answer came) and what
/// came with it.
#[derive(Debug)]
pub struct SendError {
    pub status: u16,
    pub retry_after: Option<String>,
    pub text: String,
}

/// `POST /send` with the body as the message and the token in a header (what
/// `dshare send` does): `Ok(id)` on 200.
pub fn post_send(
    agent: &ureq::Agent,
    url: &str,
    token: &str,
    body: &str,
) -> Result<String, SendError> {
    let sent = agent
        .post(&format!("{url}/send"))
        .header("Authorization", &format!("Bearer {token}"))
        .content_type("text/plain; charset=utf-8")
        .send(body);
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => {
            return Err(SendError {
                status: 0,
                retry_after: None,
                text: e.to_string(),
            });
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.body_mut().read_to_string().unwrap_or_default();
    if status == 200 {
        Ok(text.trim().to_string())
    } else {
        Err(SendError {
            status,
            retry_after,
            text,
        })
    }
}

/// `dshare send` through the CLI against node `url`: `Ok(id)` on exit 0, else the
/// exit code and the first line of stderr.
pub fn send_cli(home: &Path, url: &str, token: &str, body: &str) -> Result<String, (i32, String)> {
    let out = dshare(home, &["send", "--node", url, "--token", token, body])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(String::from_utf8(out.stdout).unwrap().trim().to_string())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err((
            out.status.code().unwrap_or(-1),
            stderr.lines().next().unwrap_or_default().to_string(),
        ))
    }
}

/// Latency figures over a set of samples: `(p50, p99, max)`.
pub fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), *samples.last().unwrap())
}

/// Counts of anything (errors by kind, statuses), for figures.
#[derive(Default, Debug)]
pub struct Tally(pub HashMap<String, u64>);

impl Tally {
    pub fn add(&mut self, what: impl Into<String>) {
        *self.0.entry(what.into()).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn merge(&mut self, other: Tally) {
        for (k, v) in other.0 {
            *self.0.entry(k).or_default() += v;
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let sorted: BTreeMap<_, _> = self.0.iter().collect();
        let parts: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        f.write_str(&parts.join(", "))
    }
}
