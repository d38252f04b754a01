//! Helpers shared by the integration tests: temporary homes, running the real
//! `dshare` binary with a clean environment, and a guard around a running node.

#![allow(dead_code)]

pub mod http;
pub mod testnet;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_dshare");

/// How long a node gets to start, and a convergence to happen, before a test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A temporary directory that holds one or more homes and logs.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch {
            dir: tempfile::Builder::new()
                .prefix("dshare-test-")
                .tempdir()
                .unwrap(),
        }
    }

    /// A path for a home named `name` (not created).
    pub fn home(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// `dshare --home HOME ARGS…` with every `DSHARE_*`, `HOME` and `XDG_*` variable of
/// the test runner cleared, so nothing of the machine leaks into a test.
pub fn dshare(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--home").arg(home).args(args);
    clean_env(cmd, home)
}

/// `dshare --home HOME ARGS…` started by `sh` after `ulimit -n NOFILE` (soft and hard
/// limits both), so the process cannot raise it, with the same clean environment.
pub fn dshare_with_nofile(home: &Path, nofile: u32, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .arg("--home")
        .arg(home)
        .args(args);
    clean_env(cmd, home)
}

fn clean_env(mut cmd: Command, home: &Path) -> Command {
    for (k, _) in std::env::vars() {
        if k.starts_with("DSHARE_") || k.starts_with("XDG_") || k == "HOME" {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home.parent().unwrap_or(home));
    cmd
}

/// Waits until the node on `home` lists the peer at `url` as up.
pub fn wait_peer_up(home: &Path, url: &str) {
    wait_for(
        &format!("{} to see {url} up", home.display()),
        DEADLINE,
        || {
            json_lines(&ok(home, &["--json", "peers"]))
                .iter()
                .any(|p| p["url"] == url && p["state"] == "up")
                .then_some(())
        },
    );
}

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs a command to the end with `input` on stdin.
pub fn run_with_input(mut cmd: Command, input: &[u8]) -> Output {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn dshare");
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `dshare --home HOME ARGS…` to the end, with empty stdin.
pub fn run(home: &Path, args: &[&str]) -> Output {
    run_with_input(dshare(home, args), b"")
}

/// Describes an output for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The arguments, shortened for an assertion message.
fn brief(args: &[&str]) -> String {
    let mut text = format!("{args:?}");
    if text.len() > 200 {
        text.truncate(200);
        text.push('…');
    }
    text
}

/// Runs and requires exit 0; returns stdout.
pub fn ok(home: &Path, args: &[&str]) -> String {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "dshare {} failed\n{}",
        brief(args),
        show(&out)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs and requires exit `code`; returns the output.
pub fn fails(home: &Path, args: &[&str], code: i32) -> Output {
    let out = run(home, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "dshare {}\n{}",
        brief(args),
        show(&out)
    );
    out
}

/// Polls `check` until it returns `Some` or `deadline` passes.
pub fn wait_for<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < end,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `dshare serve`, killed and reaped on drop.
pub struct Node {
    pub home: PathBuf,
    pub url: String,
    pub token: String,
    child: Option<Child>,
    log: PathBuf,
}

impl Node {
    /// Starts a node on `127.0.0.1:0` for `home` and waits until it answers.
    pub fn start(home: &Path, extra: &[&str]) -> Node {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        Node::start_with(home, &args)
    }

    /// Starts `dshare --home HOME ARGS…` (a `serve` command line) and waits for it.
    pub fn start_with(home: &Path, args: &[&str]) -> Node {
        Node::start_command(home, dshare(home, args))
    }

    /// [`Node::start_with`], with these environment variables set for the node.
    pub fn start_with_env(home: &Path, args: &[&str], env: &[(&str, &str)]) -> Node {
        let mut cmd = dshare(home, args);
        cmd.envs(env.iter().copied());
        Node::start_command(home, cmd)
    }

    /// Starts `cmd` (a `serve` of `home`, however wrapped) and waits for it.
    pub fn start_command(home: &Path, mut cmd: Command) -> Node {
        let addr = home.join("node.addr");
        let _ = fs::remove_file(&addr);
        let log = home.with_extension(format!("log-{}", now_ns()));
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        let child = cmd.spawn().expect("spawn dshare serve");
        let mut node = Node {
            home: home.to_path_buf(),
            url: String::new(),
            token: String::new(),
            child: Some(child),
            log,
        };
        node.url = wait_for("the node to record its address", DEADLINE, || {
            node.assert_alive();
            fs::read_to_string(&addr).ok().map(|s| s.trim().to_string())
        });
        node.token = read_secret(&home.join("client.token"));
        wait_for("the node to answer", DEADLINE, || {
            node.assert_alive();
            (get(&node.url_for("/status", &[])).0 == 200).then_some(())
        });
        node
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// The node's stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_alive(&mut self) {
        if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
            panic!("the node exited early ({status}); its log:\n{}", self.log());
        }
    }

    /// `URL/path?params&token=…`, params percent-encoded.
    pub fn url_for(&self, path: &str, params: &[(&str, &str)]) -> String {
        let mut url = format!("{}{path}?", self.url);
        for (k, v) in params {
            url.push_str(&format!("{k}={}&", encode(v)));
        }
        url.push_str(&format!("token={}", self.token));
        url
    }

    /// GETs a client-API path with the token.
    pub fn get(&self, path: &str, params: &[(&str, &str)]) -> (u16, String) {
        let (status, _, body) = get(&self.url_for(path, params));
        (status, body)
    }

    /// The value of the metric sample `series` (name and labels as written), 0 if the
    /// scrape does not have it.
    pub fn metric(&self, series: &str) -> f64 {
        let auth = format!("Authorization: Bearer {}", self.token);
        let (_, _, text) = raw_request(&format!("{}/metrics", self.url), &[&auth]);
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Stops the node with `kill -9`; no chance to clean up.
    pub fn kill9(mut self) -> PathBuf {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        self.home.clone()
    }

    /// Stops the node with SIGTERM and returns its exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        signal(child.id(), "TERM");
        let end = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > end {
                let _ = child.kill();
                panic!("the node did not stop on SIGTERM; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a signal by name with kill(1).
pub fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

fn now_ns() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The hex key on the first non-comment line of a secret file.
pub fn read_secret(path: &Path) -> String {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .find(|l| !l.starts_with('#') && !l.trim().is_empty())
        .unwrap()
        .trim()
        .to_string()
}

pub use http::encode;

/// A minimal HTTP/1.1 GET over a fresh connection: `(status, head, body)`. Written
/// by hand so tests control every byte and see every header.
pub fn get(url: &str) -> (u16, String, String) {
    raw_request(url, &[])
}

/// GET with extra header lines: `(status, head, body)`, status 0 when the node could
/// not be reached or did not answer.
pub fn raw_request(url: &str, headers: &[&str]) -> (u16, String, String) {
    match http::once(url, "GET", headers, None) {
        Some(r) => (
            r.status,
            r.head,
            String::from_utf8_lossy(&r.body).to_string(),
        ),
        None => (0, String::new(), String::new()),
    }
}

/// The lines of the box file of `home`.
pub fn box_lines(home: &Path) -> Vec<String> {
    fs::read_to_string(home.join("box.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Parses `log --json` output.
pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A POST of raw bytes: `(status, body)`.
pub fn raw_post(url: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let r = http::once(
        url,
        "POST",
        &["Content-Type: application/octet-stream"],
        Some(body),
    )
    .expect("an HTTP answer");
    (r.status, r.body)
}

/// The `box.torn-*` files beside a home's box.
pub fn torn_files(home: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("box.torn-")
        })
        .collect();
    files.sort();
    files
}

/// Writes a box of `n` messages by one new author to `path` (ids in order, each
/// naming the one before; signatures made on every core, a block at a time), the
/// body of seq `s` being `body(s)`. Returns the chain hash of the last line. Made for
/// boxes too large to send message by message.
pub fn write_signed_box(path: &Path, n: u64, body: impl Fn(u64) -> String) -> dshare::hex::Hash {
    use dshare::message::{self, Draft, Message};
    const BLOCK: u64 = 16_384;
    let key = dshare::identity::Identity::generate();
    let author = key.author();
    let file = fs::File::create(path).expect("create the box");
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let (mut prev, mut chain) = (None, dshare::chain::GENESIS);
    let ts = dshare::time::now_ms();
    let mut seq = 1;
    while seq <= n {
        let end = (seq + BLOCK).min(n + 1);
        let bodies: Vec<String> = (seq..end).map(&body).collect();
        let mut drafts = Vec::with_capacity(bodies.len());
        for (s, body) in (seq..end).zip(&bodies) {
            let d = Draft {
                author,
                seq: s,
                prev,
                clock: s,
                ts,
                body,
            };
            let id = message::sha256(&message::canonical(&d));
            prev = Some(id);
            drafts.push((d, id));
        }
        let sigs = dshare::par::map(&drafts, |(d, _)| key.sign(&message::canonical(d)));
        for ((d, id), sig) in drafts.into_iter().zip(sigs) {
            let m = Message {
                id,
                author,
                seq: d.seq,
                prev: d.prev,
                clock: d.clock,
                ts,
                body: d.body.to_string(),
                sig,
            };
            chain = dshare::chain::step(&chain, &id);
            out.write_all(dshare::mbox::encode_line(&chain, &m).as_bytes())
                .expect("write the box");
            out.write_all(b"\n").expect("write the box");
        }
        seq = end;
    }
    out.flush().expect("write the box");
    chain
}

/// A number field of `/proc/PID/status` (`"Threads:"`, `"VmRSS:"` in KiB), 0 if absent.
pub fn proc_status(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}
