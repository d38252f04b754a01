//! The bare tiny_http server: the same socket options and worker count as a node, an
//! answer of "hello". Run as a child process (this benchmark re-executed), so its
//! start-up time and memory can be measured like a node's; and the network namespace
//! the benchmark re-executes itself in, so loopback counters see only its own nodes.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::connect;
use crate::harness::wait;

pub(crate) const BARE_ENV: &str = "DSHARE_BENCH_BARE_SERVER";
/// Set when the benchmark runs in its own network namespace.
pub(crate) const NETNS_ENV: &str = "DSHARE_BENCH_IN_NETNS";

pub(crate) fn private_net() -> bool {
    std::env::var_os(NETNS_ENV).is_some()
}

/// Runs this benchmark again inside a network namespace of its own (as root, with
/// `unshare` and `ip`), so that the loopback counters see only its nodes: the
/// machine is shared, and other programs use loopback too. Returns the exit code, or
/// `None` when that is not possible here (then the byte counts are left out).
pub(crate) fn in_own_netns() -> Option<i32> {
    if private_net() || std::env::var_os("DSHARE_BENCH_SHARED_NET").is_some() {
        return None;
    }
    let probe = Command::new("unshare")
        .args(["--net", "--", "ip", "link", "set", "lo", "up"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return None;
    }
    let status = Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
        ])
        .arg(std::env::current_exe().ok()?)
        .args(std::env::args_os().skip(1))
        .env(NETNS_ENV, "1")
        .status()
        .ok()?;
    Some(status.code().unwrap_or(1))
}

pub(crate) fn bare_server() {
    let listener = dshare::net::http::bind("127.0.0.1:0", Duration::from_secs(30))
        .expect("bind the bare server");
    let addr = listener.local_addr().expect("local address");
    let server = Arc::new(tiny_http::Server::from_listener(listener).expect("tiny_http"));
    for _ in 0..16 {
        let server = Arc::clone(&server);
        thread::spawn(move || {
            while let Ok(req) = server.recv() {
                let _ = req.respond(tiny_http::Response::from_data(b"hello\n".to_vec()));
            }
        });
    }
    println!("http://{addr}");
    // Ends when the benchmark closes stdin (or dies).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}

pub(crate) struct Bare {
    pub(crate) child: Child,
    pub(crate) url: String,
}

impl Bare {
    pub(crate) fn start() -> (Bare, Duration) {
        let t0 = Instant::now();
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env(BARE_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the bare server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the bare server's address");
        let url = line.trim().to_string();
        wait("the bare server to answer", || {
            connect(&url)
                .and_then(|mut c| c.get("/hello"))
                .ok()
                .filter(|r| r.status == 200)
        });
        (Bare { child, url }, t0.elapsed())
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
