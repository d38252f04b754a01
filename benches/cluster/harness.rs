//! The network harness: running nodes, forming networks, and putting load on them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::PATIENCE;
use crate::client::{Conn, connect};
use crate::table::ms;
use crate::util::read_secret;

pub(crate) struct Node {
    pub(crate) home: PathBuf,
    pub(crate) child: Child,
    pub(crate) url: String,
    pub(crate) token: String,
}

pub(crate) fn dshare(bin: &Path, home: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars() {
        if k.starts_with("DSHARE_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--home").arg(home);
    cmd
}

pub(crate) fn run_ok(mut cmd: Command) -> String {
    let out = cmd.stdin(Stdio::null()).output().expect("run dshare");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

pub(crate) fn init(bin: &Path, home: &Path, invite: Option<&str>) {
    let _ = fs::remove_dir_all(home);
    let mut cmd = dshare(bin, home);
    cmd.args(["-q", "init"]);
    if let Some(i) = invite {
        cmd.args(["--join", i]);
    }
    run_ok(cmd);
}

pub(crate) fn invite(bin: &Path, home: &Path, url: &str) -> String {
    let mut cmd = dshare(bin, home);
    cmd.args(["invite", "--url", url]);
    run_ok(cmd).trim().to_string()
}

impl Node {
    /// Starts `dshare serve` on `home` and waits for its first answer; returns the
    /// node and the time from spawn to that answer.
    pub(crate) fn start(bin: &Path, home: &Path, extra: &[&str]) -> (Node, Duration) {
        let addr = home.join("node.addr");
        let _ = fs::remove_file(&addr);
        let log = fs::File::create(home.with_extension("log")).expect("create a node log");
        let t0 = Instant::now();
        let child = dshare(bin, home)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn dshare serve");
        let mut node = Node {
            home: home.to_path_buf(),
            child,
            url: String::new(),
            token: read_secret(&home.join("client.token")),
        };
        node.url = wait("the node to record its address", || {
            node.alive();
            fs::read_to_string(&addr)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        });
        let target = format!("/status?token={}", node.token);
        wait("the node to answer", || {
            connect(&node.url)
                .and_then(|mut c| c.get(&target))
                .ok()
                .filter(|r| r.status == 200)
        });
        let took = t0.elapsed();
        (node, took)
    }

    pub(crate) fn alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "the node on {} exited ({status}); its log:\n{}",
                self.home.display(),
                fs::read_to_string(self.home.with_extension("log")).unwrap_or_default()
            );
        }
    }

    pub(crate) fn conn(&self) -> Conn {
        connect(&self.url).expect("connect to a node")
    }

    pub(crate) fn target(&self, path: &str, query: &str) -> String {
        if query.is_empty() {
            format!("{path}?token={}", self.token)
        } else {
            format!("{path}?{query}&token={}", self.token)
        }
    }

    pub(crate) fn status(&self, conn: &mut Conn) -> serde_json::Value {
        let r = conn.get(&self.target("/status", "")).expect("GET /status");
        serde_json::from_slice(&r.body).expect("a JSON status")
    }

    pub(crate) fn messages(&self, conn: &mut Conn) -> u64 {
        self.status(conn)["messages"].as_u64().unwrap_or(0)
    }

    pub(crate) fn up_peers(&self, conn: &mut Conn) -> usize {
        let r = conn.get(&self.target("/peers", "")).expect("GET /peers");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON peers");
        v["peers"]
            .as_array()
            .map_or(0, |a| a.iter().filter(|p| p["state"] == "up").count())
    }

    pub(crate) fn rss_mb(&self) -> f64 {
        rss_mb(self.child.id())
    }

    /// Sends SIGTERM and waits: a clean stop, which writes the checkpoint.
    pub(crate) fn stop(mut self) {
        self.terminate();
    }

    /// [`Node::stop`] for a node that stays in its place (a slot to start it again).
    pub(crate) fn terminate(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn rss_mb(pid: u32) -> f64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

pub(crate) fn wait<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < end, "gave up waiting for {what}");
        thread::sleep(Duration::from_micros(500));
    }
}

/// Most peers a node's table holds.
const TABLE: usize = dshare::replicate::peers::MAX_PEERS;
/// How long a network of hundreds of nodes may take to form.
const FORMING: Duration = Duration::from_secs(600);

/// `n` nodes in one network, joined through the first one's invite, each with every
/// other one up, or, in a network larger than a table (64 peers), 60 of them: a few
/// of a full table's 64 may be suspect or being replaced at any one look.
pub(crate) fn network(bin: &Path, dir: &Path, n: usize) -> Vec<Node> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("create the network dir");
    let first = dir.join("n0");
    init(bin, &first, None);
    let (n0, _) = Node::start(bin, &first, &[]);
    let inv = invite(bin, &first, &n0.url);
    let mut nodes = vec![n0];
    for i in 1..n {
        let home = dir.join(format!("n{i}"));
        init(bin, &home, Some(&inv));
        nodes.push(Node::start(bin, &home, &[]).0);
    }
    let want = if n - 1 <= TABLE {
        n - 1
    } else {
        TABLE - TABLE / 16
    };
    let end = Instant::now() + FORMING;
    // A fresh connection each look: while a large network forms, a node waits long
    // between two looks, longer than a node keeps an idle connection.
    while !nodes
        .iter()
        .all(|node| node.up_peers(&mut node.conn()) >= want)
    {
        assert!(Instant::now() < end, "the {n}-node network did not form");
        thread::sleep(Duration::from_millis(100));
    }
    nodes
}

/// `clients` keep-alive connections sending `GET target(i)` for `secs`; returns the
/// requests answered 200 per second, and each request's latency in ms.
pub(crate) fn load(
    url: &str,
    clients: usize,
    secs: f64,
    target: impl Fn(usize, u64) -> String + Sync,
) -> (f64, Vec<f64>) {
    let stop = AtomicBool::new(false);
    let ok = AtomicU64::new(0);
    let start = Instant::now();
    let lat: Vec<Vec<f64>> = thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (stop, ok, target) = (&stop, &ok, &target);
                s.spawn(move || {
                    let mut conn = connect(url).expect("connect");
                    let mut lat = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let r = conn.get(&target(c, i)).expect("a request under load");
                        if r.status == 200 {
                            ok.fetch_add(1, Ordering::Relaxed);
                            lat.push(ms(t.elapsed()));
                        }
                        i += 1;
                    }
                    lat
                })
            })
            .collect();
        thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    let elapsed = start.elapsed().as_secs_f64();
    (
        ok.load(Ordering::Relaxed) as f64 / elapsed,
        lat.into_iter().flatten().collect(),
    )
}

/// One keep-alive client, `n` requests one after the other: each latency in ms.
pub(crate) fn sequential(url: &str, n: usize, target: impl Fn(usize) -> String) -> Vec<f64> {
    let mut conn = connect(url).expect("connect");
    (0..n)
        .map(|i| {
            let t = Instant::now();
            let r = conn.get(&target(i)).expect("a request");
            assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
            ms(t.elapsed())
        })
        .collect()
}
