//! docs/COOKBOOK.md is true: every block marked `<!-- test: NAME -->` is read from
//! the file and run, as a user would run it, against a real network from
//! `dshare testnet`. Only the page's example paths and addresses are swapped for the
//! test's own:
//!
//! | in the cookbook | in the test |
//! |---|---|
//! | `/var/lib/dshare` | node 1's home (or the systemd node's home) |
//! | `/usr/local/bin` | a directory holding `dshare` (this build) and a stub `backup.sh` |
//! | `/usr/local/lib/dshare`, `/var/lib/dshare-hooks`, `/var/log` | scratch directories |
//! | `https://chat.example.com/hooks/XXXX` | a local HTTP server that records what it gets |
//! | `3fa2c1d4` | node 3's author id (its first 8 digits) |
//! | `0.0.0.0:7070`, `http://db-1.example.net:7070` | `127.0.0.1:0`, node 1's address |
//!
//! The recipes use `jq` and `curl`. Without them these tests fail when `CI` is set and
//! are skipped (loudly) otherwise; `.ci/run` installs both.

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::util::testnet::Testnet;
use crate::util::{BIN, DEADLINE, Scratch, get, ok, run, show, signal, wait_for};

/// Longest a recipe may run.
const RECIPE_DEADLINE: Duration = Duration::from_secs(120);

/// The text of the block after `<!-- test: NAME -->` in docs/COOKBOOK.md.
pub(crate) fn recipe(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/COOKBOOK.md");
    let text = fs::read_to_string(&path).unwrap();
    let marker = format!("<!-- test: {name} -->");
    let at = text
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/COOKBOOK.md has no {marker}"));
    let rest = &text[at + marker.len()..];
    let fence = rest.find("```").expect("a code block after the marker");
    let body = fence + rest[fence..].find('\n').unwrap() + 1;
    let end = rest[body..].find("\n```").expect("the code block's end");
    rest[body..=body + end].to_string()
}

/// True when `tool` is on PATH; otherwise says SKIPPED (or fails when CI is set).
pub(crate) fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "the cookbook tests need {tool}, and CI is set: install it (Debian: apt-get install {tool})"
        );
        let _ = writeln!(
            std::io::stderr(),
            "\n*** SKIPPED: cookbook test: no {tool} on PATH (Debian: apt-get install {tool}). With CI set this fails. ***\n"
        );
    }
    found
}

/// The test's stand-ins for the cookbook's paths and addresses.
struct Kitchen {
    s: Scratch,
    bin: PathBuf,
    lib: PathBuf,
    swaps: Vec<(String, String)>,
}

impl Kitchen {
    fn new() -> Kitchen {
        let s = Scratch::new();
        let bin = s.dir.path().join("bin");
        let lib = s.dir.path().join("lib");
        for d in [
            &bin,
            &lib,
            &s.dir.path().join("log"),
            &s.dir.path().join("hooks"),
        ] {
            fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(BIN, bin.join("dshare")).unwrap();
        executable(&bin.join("backup.sh"), "#!/bin/sh\nexit 0\n");
        let swaps = vec![
            ("/usr/local/bin".into(), bin.display().to_string()),
            ("/usr/local/lib/dshare".into(), lib.display().to_string()),
            (
                "/var/lib/dshare-hooks".into(),
                s.dir.path().join("hooks").display().to_string(),
            ),
            (
                "/var/log".into(),
                s.dir.path().join("log").display().to_string(),
            ),
        ];
        Kitchen { s, bin, lib, swaps }
    }

    fn swap(&mut self, from: &str, to: &str) {
        // More specific paths first: /var/lib/dshare-hooks before /var/lib/dshare.
        self.swaps.push((from.to_string(), to.to_string()));
    }

    /// The recipe with the test's paths and addresses.
    fn recipe(&self, name: &str) -> String {
        let mut text = recipe(name);
        for (from, to) in &self.swaps {
            text = text.replace(from, to);
        }
        text
    }

    /// Writes the script recipe `name` into the lib directory as `file`, executable.
    fn install(&self, name: &str, file: &str) -> PathBuf {
        let path = self.lib.join(file);
        executable(&path, &self.recipe(name));
        path
    }

    /// `sh -c SCRIPT` in the scratch directory, in a clean environment: the test's
    /// `/usr/local/bin` first on PATH, plus `env`.
    fn sh(&self, script: &str, env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).current_dir(self.s.dir.path());
        for (k, _) in std::env::vars() {
            if k.starts_with("DSHARE_") || k.starts_with("XDG_") || k == "HOME" {
                cmd.env_remove(k);
            }
        }
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        cmd.env("PATH", path).env("HOME", self.s.dir.path());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs a script to the end (within a deadline), stdin empty.
    fn run(&self, what: &str, script: &str, env: &[(&str, &str)]) -> Output {
        finish(what, self.sh(script, env))
    }

    /// Runs every job of a crontab recipe as cron would: the crontab's variables,
    /// nothing else, and `sh -c` for the command after the five time fields.
    fn cron(&self, name: &str) -> Vec<Output> {
        let text = self.recipe(name);
        let mut env = BTreeMap::new();
        let mut outputs = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=')
                && !k.contains(' ')
            {
                env.insert(k.to_string(), v.to_string());
                continue;
            }
            let mut rest = line;
            for _ in 0..5 {
                rest = rest.trim_start();
                rest = &rest[rest.find(' ').expect("five time fields")..];
            }
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg(rest.trim())
                .current_dir(self.s.dir.path())
                .env_clear()
                .env("HOME", self.s.dir.path())
                .env("SHELL", "/bin/sh")
                .envs(&env);
            outputs.push(finish(&format!("{name}: {}", rest.trim()), cmd));
        }
        outputs
    }
}

/// Writes an executable file.
fn executable(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs `cmd` to the end within [`RECIPE_DEADLINE`].
fn finish(what: &str, mut cmd: Command) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(RECIPE_DEADLINE) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            kill_group(pid, "KILL");
            panic!("recipe {what} did not finish within {RECIPE_DEADLINE:?}");
        }
    }
}

/// Sends a signal to a whole process group (a recipe's shell and what it started).
fn kill_group(pgid: u32, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), "--", &format!("-{pgid}")])
        .status();
}

fn assert_ok(what: &str, out: &Output) {
    assert!(out.status.success(), "recipe {what} failed\n{}", show(out));
}

/// The `run: |` script of a GitHub Actions step, dedented.
fn run_block(yaml: &str) -> String {
    let mut lines = yaml
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("run: |"));
    let head = lines.next().expect("a `run: |` block");
    let indent = head.len() - head.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .map(|l| l.trim_start())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A stand-in for a chat's incoming webhook: records each POST body and answers 500
/// to the first `fail_first` of them, 200 after.
struct Webhook {
    url: String,
    got: Arc<Mutex<Vec<(u16, String)>>>,
}

impl Webhook {
    fn start(fail_first: usize) -> Webhook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/hooks/test", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&got);
        std::thread::spawn(move || {
            let end = Instant::now() + RECIPE_DEADLINE * 2;
            while Instant::now() < end {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut reader = BufReader::new(stream);
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let mut got = record.lock().unwrap();
                let status = if got.len() < fail_first { 500 } else { 200 };
                got.push((status, String::from_utf8_lossy(&body).to_string()));
                drop(got);
                let _ = write!(
                    reader.get_mut(),
                    "HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                );
            }
        });
        Webhook { url, got }
    }

    fn bodies(&self) -> Vec<(u16, String)> {
        self.got.lock().unwrap().clone()
    }

    fn wait_for(&self, n: usize) -> Vec<(u16, String)> {
        wait_for(&format!("{n} webhook calls"), DEADLINE, || {
            let got = self.bodies();
            (got.len() >= n).then_some(got)
        })
    }
}

/// Starts a long-running recipe in its own process group.
fn start(mut cmd: Command, stdout: Stdio) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap()
}

/// SIGTERM to a recipe's process group; its exit status.
fn stop(mut child: Child) -> std::process::ExitStatus {
    kill_group(child.id(), "TERM");
    wait_for("the recipe to stop on SIGTERM", DEADLINE, || {
        child.try_wait().unwrap()
    })
}

#[test]
fn the_test_network_recipe_runs_a_script_against_three_nodes() {
    if !have("jq") {
        return;
    }
    let k = Kitchen::new();
    executable(
        &k.s.dir.path().join("my-script.sh"),
        "#!/bin/sh\nset -e\ndshare send --wait all \"it works\"\n",
    );
    let out = k.run("testnet", &k.recipe("testnet"), &[]);
    assert_ok("testnet", &out);
    let nodes = fs::read_to_string(k.s.dir.path().join("nodes.jsonl")).unwrap();
    let ready: serde_json::Value = serde_json::from_str(nodes.lines().last().unwrap()).unwrap();
    assert_eq!(ready["ready"], true);
    let dir = PathBuf::from(ready["dir"].as_str().unwrap());
    assert!(
        !dir.exists(),
        "the trap stops the network and its homes go away"
    );
}

#[test]
fn the_cron_ci_watchdog_jq_and_curl_recipes_work() {
    if !(have("jq") && have("curl")) {
        return;
    }
    let mut k = Kitchen::new();
    let net = Testnet::start(&k.s.home("x"), 3);
    let (one, three) = (net.home(1), net.home(3));
    k.swap("/var/lib/dshare", &one.display().to_string());
    k.swap("3fa2c1d4", &net.id(3)[..8]);
    let home1 = one.display().to_string();
    let env1 = [("DSHARE_HOME", home1.as_str())];
    let hostname = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap();

    // Cron: the broadcast, confirmed by every peer, silent on success.
    for out in k.cron("cron-broadcast") {
        assert_ok("cron-broadcast", &out);
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{}",
            show(&out)
        );
    }
    let expected = format!("backup done on {}", hostname.trim());
    assert!(
        ok(&three, &["log"]).contains(&expected),
        "--wait all: node 3 has it"
    );

    // CI: the step's script, with the secrets as environment variables.
    let yaml = recipe("ci");
    assert!(yaml.contains("DSHARE_NODE:") && yaml.contains("DSHARE_TOKEN:"));
    let step = run_block(&yaml);
    let (url1, token1) = (net.url(1), net.token(1));
    let ci_env = [
        ("DSHARE_NODE", url1.as_str()),
        ("DSHARE_TOKEN", token1.as_str()),
        ("GITHUB_SHA", "0123abcd"),
    ];
    assert_ok("ci", &k.run("ci", &step, &ci_env));
    assert!(ok(&three, &["log"]).contains("deployed 0123abcd to production"));

    // Watchdogs: silent while all is well.
    ok(&three, &["send", "backup done on db-3"]);
    wait_for("node 3's report at node 1", DEADLINE, || {
        ok(&one, &["log"])
            .contains("backup done on db-3")
            .then_some(())
    });
    for out in k.cron("watchdogs") {
        assert_ok("watchdogs", &out);
        assert!(
            out.stdout.is_empty() && out.stderr.is_empty(),
            "{}",
            show(&out)
        );
    }

    // jq over the log and the peers.
    let out = k.run("jq", &k.recipe("jq"), &env1);
    assert_ok("jq", &out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("deployed 0123abcd to production\n"), "{text}");
    assert!(
        text.contains(&format!(" {} backup done on db-3", &net.id(3)[..8])),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{{\"author\":\"{}\",\"messages\":",
            &net.id(3)[..8]
        )),
        "{text}"
    );
    assert!(!text.contains("http://"), "every peer is up: {text}");

    // A live feed through jq.
    let mut feed = start(k.sh(&k.recipe("jq-follow"), &env1), Stdio::piped());
    let lines = BufReader::new(feed.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    wait_for("the feed to be listening", DEADLINE, || {
        // `log -f -n 0` starts at the end: a message sent before it listens is not
        // shown, so keep sending until one is.
        ok(&net.home(2), &["-q", "send", "live"]);
        rx.recv_timeout(Duration::from_millis(500)).ok()
    });
    ok(&net.home(2), &["send", "live two"]);
    let expected = format!(
        "{{\"author\":\"{}\",\"body\":\"live two\"}}",
        &net.id(2)[..8]
    );
    wait_for("the live feed line", DEADLINE, || {
        rx.recv_timeout(Duration::from_millis(100))
            .ok()
            .filter(|l| *l == expected)
    });
    stop(feed);

    // curl: send by POST and GET, read, long-poll.
    let out = k.run("curl", &k.recipe("curl"), &env1);
    assert_ok("curl", &out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("X-Dshare-Next: "), "{text}");
    let log = ok(&one, &["log"]);
    assert!(
        log.contains(&format!("disk almost full on {}", hostname.trim())),
        "{log}"
    );
    assert!(
        log.contains("Filesystem"),
        "df's output, sent by POST: {log}"
    );

    // The browser page.
    let out = k.run("web", &k.recipe("web"), &env1);
    assert_ok("web", &out);
    let url = String::from_utf8(out.stdout).unwrap();
    let (status, _, page) = get(url.trim());
    assert_eq!(status, 200);
    assert!(page.contains("<form action=\"/send\""));

    // CI again, when a peer does not answer: the step fails and says why.
    signal(net.pid(3), "STOP");
    let failing = step.replace("--timeout 60s", "--timeout 3s");
    let out = k.run("ci (a peer down)", &failing, &ci_env);
    signal(net.pid(3), "CONT");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the network did not confirm the deploy notice"),
        "{err}"
    );
    assert!(
        err.contains(&format!("lacking it: {}", net.url(3))),
        "{err}"
    );
    assert!(net.stop().success());
}

#[test]
fn the_hook_recipes_post_to_a_chat_write_a_file_and_run_once() {
    if !(have("jq") && have("curl")) {
        return;
    }
    let mut k = Kitchen::new();
    let net = Testnet::start(&k.s.home("x"), 2);
    let (one, two) = (net.home(1), net.home(2));
    let webhook = Webhook::start(1);
    k.swap("/var/lib/dshare", &one.display().to_string());
    k.swap("https://chat.example.com/hooks/XXXX", &webhook.url);
    k.install("to-chat", "to-chat.sh");
    k.install("to-file", "to-file.sh");
    k.install("once", "once.sh");

    // Chat: a follower with a cursor; the chat's first answer is an error, so the
    // message is posted again (and once more only).
    let home1 = one.display().to_string();
    let chat = start(
        k.sh(&k.recipe("chat-hook"), &[("DSHARE_HOME", home1.as_str())]),
        Stdio::null(),
    );
    wait_for("the chat cursor", DEADLINE, || {
        one.join("cursors/chat").exists().then_some(())
    });
    ok(&two, &["send", "hello \"chat\"\nsecond line"]);
    let got = webhook.wait_for(2);
    let expected =
        serde_json::json!({"text": format!("[{}] hello \"chat\"\nsecond line", &net.id(2)[..8])});
    for (status, body) in &got {
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body, expected, "status {status}");
    }
    assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [500, 200]);
    ok(&one, &["send", "another"]);
    let got = webhook.wait_for(3);
    assert!(got[2].1.contains("] another"));
    // The shell running the recipe dies of the SIGTERM; dshare's own clean stop on
    // SIGTERM is tested in scripting/testnet.rs.
    stop(chat);

    // A file, from cron: the first run only records the position.
    let file = k.s.dir.path().join("log/dshare-messages.txt");
    for out in k.cron("cron-hook") {
        assert_ok("cron-hook", &out);
    }
    assert!(!file.exists());
    ok(&one, &["send", "file one"]);
    ok(&one, &["send", "file two"]);
    for _ in 0..2 {
        for out in k.cron("cron-hook") {
            assert_ok("cron-hook", &out);
            assert!(
                out.stdout.is_empty() && out.stderr.is_empty(),
                "{}",
                show(&out)
            );
        }
    }
    let lines = fs::read_to_string(&file).unwrap();
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let id1 = &net.id(1)[..8];
    assert!(lines[0].ends_with(&format!(" {id1} file one")) && lines[0].starts_with("20"));
    assert!(lines[1].ends_with(&format!(" {id1} file two")));

    // Once: through dshare, every message posted once; by hand, a redelivered message
    // that was done already is not posted again, one that was not is.
    let once = k.lib.join("once.sh").display().to_string();
    let before = webhook.bodies().len();
    let mut cmd = crate::util::dshare(
        &one,
        &[
            "log", "--exec", &once, "--cursor", "once", "--from", "start",
        ],
    );
    cmd.env("CHAT_WEBHOOK_URL", &webhook.url);
    assert_ok("once", &finish("once", cmd));
    let total = ok(&one, &["--json", "log"]).lines().count();
    assert_eq!(webhook.bodies().len(), before + total);
    let done = k.s.dir.path().join("hooks/done");
    let first_done = fs::read_to_string(&done)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let by_hand = |id: &str, redelivered: &str| {
        let mut cmd = k.sh(&once, &[("CHAT_WEBHOOK_URL", webhook.url.as_str())]);
        cmd.env("DSHARE_ID", id)
            .env("DSHARE_AUTHOR", net.id(1))
            .env("DSHARE_REDELIVERED", redelivered);
        assert_ok("once", &finish("once", cmd));
        webhook.bodies().len()
    };
    let now = webhook.bodies().len();
    assert_eq!(
        by_hand(&first_done, "1"),
        now,
        "done before: not posted again"
    );
    assert_eq!(
        by_hand(&"e".repeat(64), "1"),
        now + 1,
        "not done before: posted"
    );
    assert!(net.stop().success());
}

#[test]
fn the_systemd_unit_and_config_file_run_a_node_that_posts_to_a_chat() {
    if !(have("jq") && have("curl")) {
        return;
    }
    let mut k = Kitchen::new();
    let net = Testnet::start(&k.s.home("x"), 2);
    let webhook = Webhook::start(0);
    let home = k.s.dir.path().join("var-lib-dshare");
    k.swap("/var/lib/dshare", &home.display().to_string());
    k.swap("https://chat.example.com/hooks/XXXX", &webhook.url);
    k.swap("0.0.0.0:7070", "127.0.0.1:0");
    k.swap("http://db-1.example.net:7070", &net.url(1));
    k.install("to-chat", "to-chat.sh");

    // The unit parses as sections of key=value lines and asks for the hardening.
    let unit = k.recipe("systemd");
    let mut sections: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut current = None;
    for line in unit.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            assert!(!sections.contains_key(name), "[{name}] twice");
            sections.insert(name.to_string(), Vec::new());
            current = Some(name.to_string());
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        assert!(!key.is_empty() && !key.contains(' '), "{line}");
        let section = current.clone().expect("a key before any [section]");
        sections
            .get_mut(&section)
            .unwrap()
            .push((key.to_string(), value.to_string()));
    }
    assert_eq!(
        sections.keys().collect::<Vec<_>>(),
        ["Install", "Service", "Unit"]
    );
    let service = &sections["Service"];
    let value = |key: &str| {
        service
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect::<Vec<_>>()
    };
    for (key, expected) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("User", "dshare"),
    ] {
        assert_eq!(value(key), [expected], "{key}");
    }
    assert_eq!(value("ReadWritePaths"), [home.display().to_string()]);

    // Set up as the cookbook says: a home that joined the network, and its config.
    let invite = ok(&net.home(1), &["invite"]);
    ok(&home, &["init", "--join", invite.trim()]);
    let config: String = k
        .recipe("config")
        .lines()
        .filter(|l| !l.starts_with("advertise"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(home.join("config.toml"), config).unwrap();
    let shown = ok(&home, &["--json", "serve", "--print-config"]);
    let from_file: Vec<String> = crate::util::json_lines(&shown)
        .iter()
        .filter(|setting| setting["source"] == "file")
        .map(|setting| setting["key"].as_str().unwrap().to_string())
        .collect();
    for key in ["listen", "peers", "on-message"] {
        assert!(from_file.iter().any(|k| k == key), "{key}: {shown}");
    }

    // ExecStart= with the unit's Environment=, as systemd would start it.
    let exec = value("ExecStart");
    let words: Vec<&str> = exec[0].split_whitespace().collect();
    let mut cmd = Command::new(words[0]);
    cmd.args(&words[1..]).env_clear().env(
        "PATH",
        "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    );
    for env in value("Environment") {
        let (k, v) = env.split_once('=').unwrap();
        cmd.env(k, v);
    }
    let mut node = start(cmd, Stdio::null());
    wait_for("the unit's node to answer", DEADLINE, || {
        run(&home, &["log"]).status.success().then_some(())
    });
    wait_for("the unit's node to join", DEADLINE, || {
        let peers = run(&home, &["-q", "peers", "--expect-up", "2"]);
        peers.status.success().then_some(())
    });
    ok(&net.home(2), &["send", "to the unit"]);
    let got = webhook.wait_for(1);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&got[0].1).unwrap(),
        serde_json::json!({"text": format!("[{}] to the unit", &net.id(2)[..8])})
    );
    // systemd stops a service with SIGTERM.
    signal(node.id(), "TERM");
    let status = wait_for("the unit's node to stop", DEADLINE, || {
        node.try_wait().unwrap()
    });
    assert!(status.success(), "{status}");
    assert!(net.stop().success());
}

#[test]
fn the_run_recipes_report_jobs_fail_a_ci_step_watch_a_nightly_job_and_flush_a_spool() {
    if !have("jq") {
        return;
    }
    let mut k = Kitchen::new();
    let home = k.s.home("node");
    let node = crate::util::Node::start(&home, &[]);
    k.swap("/var/lib/dshare", &home.display().to_string());
    let env = [("DSHARE_HOME", home.to_str().unwrap())];

    // Cron: the backup reports itself, silently.
    for out in k.cron("run-cron") {
        assert_ok("run-cron", &out);
        assert!(out.stdout.is_empty(), "{}", show(&out));
    }
    assert!(ok(&home, &["log"]).contains("run backup: ok after"));

    // CI: a failed deploy fails the step, and its report says so.
    executable(
        &k.bin.join("deploy.sh"),
        "#!/bin/sh\necho deploying\nexit 3\n",
    );
    let step = k.recipe("run-ci");
    let out = k.run("run-ci", &step, &[env[0], ("CI_COMMIT", "abc123")]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert_eq!(out.stdout, b"deploying\n");
    let failed = k.run("run-jq", &k.recipe("run-jq"), &env);
    assert_ok("run-jq", &failed);
    let failed = String::from_utf8_lossy(&failed.stdout).to_string();
    assert!(
        failed.contains("\"name\":\"deploy abc123\"") && failed.contains("\"status\":3"),
        "{failed}"
    );
    assert!(!failed.contains("\"name\":\"backup\""), "{failed}");

    // The watchdog: the stub backup took far less than 20 minutes.
    let outs = k.cron("run-watchdog");
    assert_eq!(outs[0].status.code(), Some(1), "{}", show(&outs[0]));
    assert!(String::from_utf8_lossy(&outs[0].stderr).contains("took less than 20m"));

    // Offline: the report waits in the spool, and the cron flush delivers it once.
    node.stop();
    let out = k.run("offline", "dshare run --name offline -- true", &env);
    assert_ok("offline run", &out);
    assert!(ok(&home, &["spool", "list"]).contains("run offline: ok"));
    let _node = crate::util::Node::start(&home, &[]);
    // Its first try was just now: the backoff holds it until `--all` or 30s later.
    let spool = home.parent().unwrap().join(".cache/dshare/spool");
    for entry in std::fs::read_dir(&spool).unwrap().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap();
        let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
        value["next_ms"] = 0.into();
        std::fs::write(entry.path(), value.to_string()).unwrap();
    }
    for out in k.cron("run-spool") {
        assert_ok("run-spool", &out);
    }
    let log = ok(&home, &["log"]);
    assert_eq!(log.matches("run offline: ok").count(), 1, "{log}");
    assert!(ok(&home, &["spool", "list"]).is_empty());
}
