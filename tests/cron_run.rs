//! `dshare run`, the spool and idempotent sends, with real nodes: exit statuses passed
//! through, output passed through byte for byte, a report spooled while no node answers
//! and stored once when one does (even when the node stored it and died before
//! answering), `send --key`, and every `--expect-run` watchdog's yes and no.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::{Node, Scratch, dshare, json_lines, ok, run_with_input, show};

/// `dshare --home HOME ARGS…` with empty stdin.
fn run(home: &Path, args: &[&str]) -> Output {
    run_with_input(dshare(home, args), b"")
}

/// The `run` objects of the reports in the box of `home`'s node.
fn reports(home: &Path) -> Vec<serde_json::Value> {
    json_lines(&ok(home, &["log", "--json"]))
        .into_iter()
        .filter_map(|m| m.get("run").cloned())
        .collect()
}

#[test]
fn run_exits_with_the_commands_status_and_reports_it() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    let spool = s.home("spool");
    let spool = spool.to_str().unwrap();
    for (script, status, signal) in [
        ("exit 0", 0, None),
        ("exit 1", 1, None),
        ("kill -KILL $$", 137, Some(9)),
        ("kill -INT $$", 130, Some(2)),
    ] {
        let out = run(
            &home,
            &[
                "run", "--spool", spool, "--name", script, "--", "sh", "-c", script,
            ],
        );
        assert_eq!(out.status.code(), Some(status), "{script}: {}", show(&out));
        let last = reports(&home).pop().unwrap();
        assert_eq!(last["name"], script);
        assert_eq!(last["status"], status, "{last}");
        assert_eq!(last["signal"].as_i64(), signal, "{last}");
        assert_eq!(last["event"], "end");
    }
    let missing = run(&home, &["run", "--spool", spool, "--", "/no/such/command"]);
    assert_eq!(missing.status.code(), Some(127), "{}", show(&missing));
    // People read the same report in the plain log.
    let log = ok(&home, &["log"]);
    assert!(
        log.contains("run exit 1: FAILED with exit 1 after"),
        "{log}"
    );
    assert!(log.contains("KILLED by signal 9 (SIGKILL)"), "{log}");
    assert!(log.contains("run exit 0: ok after"), "{log}");
}

#[test]
fn a_job_is_not_failed_nor_held_by_a_network_that_is_down() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let spool = s.home("spool");
    let started = Instant::now();
    let out = run(
        &home,
        &[
            "run",
            "--spool",
            spool.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "echo done; exit 3",
        ],
    );
    let took = started.elapsed();
    eprintln!("run with no node: {took:?}");
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert_eq!(out.stdout, b"done\n");
    assert!(took < Duration::from_secs(10), "{took:?}");
    let listed = ok(
        &home,
        &["spool", "list", "--spool", spool.to_str().unwrap()],
    );
    assert!(listed.contains("FAILED with exit 3"), "{listed}");
}

#[test]
fn output_passes_through_byte_for_byte_while_the_tail_is_kept() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    // 200 KB with bytes that are not UTF-8, and no newline at the end.
    let script = "i=0; while [ $i -lt 2000 ]; do printf 'line %04d \\377\\001 éü %090d\\n' $i 0; i=$((i+1)); done; printf 'end\\303'";
    let expected = run_with_input(
        {
            let mut c = std::process::Command::new("sh");
            c.arg("-c").arg(script);
            c
        },
        b"",
    )
    .stdout;
    assert!(expected.len() > 200_000);
    let spool = s.home("spool");
    let out = run(
        &home,
        &[
            "run",
            "--spool",
            spool.to_str().unwrap(),
            "--tail",
            "1000",
            "--",
            "sh",
            "-c",
            &format!("{script}; sleep 0.3; echo to-stderr >&2"),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout == expected,
        "stdout differs ({} vs {} bytes)",
        out.stdout.len(),
        expected.len()
    );
    assert_eq!(out.stderr, b"to-stderr\n");
    let messages = json_lines(&ok(&home, &["log", "--json"]));
    let report = messages.last().unwrap();
    let run_fields = &report["run"];
    assert!(
        run_fields["tail_bytes"].as_u64().unwrap() <= 1000,
        "{run_fields}"
    );
    assert_eq!(run_fields["output_bytes"], expected.len() as u64 + 10);
    let body = report["body"].as_str().unwrap();
    assert!(body.contains("to-stderr"), "{body}");
    assert!(body.contains("line 1999"), "{body}");
    // The two streams are read apart: the tail holds them in the order they came.
    assert!(body.find("line 1999") < body.find("to-stderr"), "{body}");
}

/// A TCP relay with an address that stays while the node behind it changes, and that
/// can lose a node's answer on the way back (the node has stored the message when it
/// begins to answer).
struct Relay {
    url: String,
    upstream: Arc<Mutex<String>>,
    lose_answers: Arc<AtomicBool>,
    lost: Arc<AtomicUsize>,
}

impl Relay {
    fn start(upstream: &str) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let relay = Relay {
            url: format!("http://{}", listener.local_addr().unwrap()),
            upstream: Arc::new(Mutex::new(upstream.to_string())),
            lose_answers: Arc::new(AtomicBool::new(false)),
            lost: Arc::new(AtomicUsize::new(0)),
        };
        let (up, lose, lost) = (
            Arc::clone(&relay.upstream),
            Arc::clone(&relay.lose_answers),
            Arc::clone(&relay.lost),
        );
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let to = up.lock().unwrap().trim_start_matches("http://").to_string();
                let (lose, lost) = (lose.load(Ordering::SeqCst), Arc::clone(&lost));
                std::thread::spawn(move || relay_one(client, &to, lose, &lost));
            }
        });
        relay
    }

    fn point_at(&self, upstream: &str) {
        *self.upstream.lock().unwrap() = upstream.to_string();
    }
}

fn relay_one(mut client: TcpStream, to: &str, lose: bool, lost: &AtomicUsize) {
    let Ok(mut server) = TcpStream::connect(to) else {
        return; // The client sees the connection closed: no node.
    };
    let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut s2);
        let _ = s2.shutdown(Shutdown::Write);
    });
    let mut buf = [0u8; 16 * 1024];
    loop {
        match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) if lose => {
                let _ = n;
                lost.fetch_add(1, Ordering::SeqCst);
                break;
            }
            Ok(n) => {
                if client.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = client.shutdown(Shutdown::Both);
}

#[test]
fn a_report_whose_answer_was_lost_is_spooled_and_stored_once() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let relay = Relay::start(&node.url);
    let line = ok(&home, &["client", "add", "runner", "--url", &relay.url])
        .trim()
        .to_string();
    let runner = s.home("runner");
    let spool = s.home("spool");
    let spool = spool.to_str().unwrap();
    relay.lose_answers.store(true, Ordering::SeqCst);
    let out = run(
        &runner,
        &[
            "run",
            "--client",
            &line,
            "--spool",
            spool,
            "--timeout",
            "5s",
            "--name",
            "backup",
            "--",
            "true",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        relay.lost.load(Ordering::SeqCst) >= 1,
        "the answer was lost"
    );
    assert_eq!(
        reports(&home).len(),
        1,
        "the node stored it before answering"
    );
    // The node dies after storing, before anyone learnt it did.
    node.kill9();
    let listed = ok(&runner, &["spool", "list", "--spool", spool]);
    assert!(listed.contains("run backup: ok"), "{listed}");
    let file = std::fs::read_dir(spool)
        .unwrap()
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))
        .unwrap();
    assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);

    let node = Node::start(&home, &[]);
    relay.point_at(&node.url);
    relay.lose_answers.store(false, Ordering::SeqCst);
    let flushed = ok(
        &runner,
        &["--json", "spool", "flush", "--all", "--spool", spool],
    );
    let flushed = json_lines(&flushed);
    assert_eq!(flushed.len(), 1, "{flushed:?}");
    assert_eq!(
        flushed[0]["repeat"], true,
        "answered with the first message"
    );
    let stored = reports(&home);
    assert_eq!(stored.len(), 1, "stored once: {stored:?}");
    assert!(ok(&runner, &["spool", "list", "--spool", spool]).is_empty());
}

#[test]
fn a_client_send_waits_in_the_spool_until_its_node_is_back() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let relay = Relay::start(&node.url);
    let line = ok(&home, &["client", "add", "laptop", "--url", &relay.url])
        .trim()
        .to_string();
    node.stop();
    let runner = s.home("runner");
    let spool = s.home("spool");
    let spool = spool.to_str().unwrap();
    for text in ["first", "second"] {
        let out = run(
            &runner,
            &["send", "--client", &line, "--spool", spool, text],
        );
        assert_eq!(out.status.code(), Some(0), "{}", show(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("kept in the spool"),
            "{}",
            show(&out)
        );
    }
    assert_eq!(
        ok(&runner, &["spool", "list", "--spool", spool])
            .lines()
            .count(),
        2
    );
    let still_down = run(&runner, &["spool", "flush", "--all", "--spool", spool]);
    assert_eq!(still_down.status.code(), Some(1), "{}", show(&still_down));

    let node = Node::start(&home, &[]);
    relay.point_at(&node.url);
    // The next send delivers what waits first, in order, then itself.
    ok(
        &runner,
        &["send", "--client", &line, "--spool", spool, "third"],
    );
    let bodies: Vec<String> = json_lines(&ok(&home, &["log", "--json"]))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies, ["first", "second", "third"]);
    assert!(ok(&runner, &["spool", "list", "--spool", spool]).is_empty());
}

#[test]
fn a_full_spool_refuses_with_a_clear_error_and_keeps_what_it_has() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let line = ok(&home, &["client", "add", "ci"]).trim().to_string();
    node.stop();
    let spool = s.home("spool");
    let spool = spool.to_str().unwrap();
    let runner = s.home("runner");
    let mut kept = 0;
    let refusal = loop {
        let text = format!("message {kept} {}", "x".repeat(300));
        let out = run(
            &runner,
            &[
                "send",
                "--client",
                &line,
                "--spool",
                spool,
                "--spool-limit",
                "4k",
                &text,
            ],
        );
        if out.status.code() != Some(0) {
            break out;
        }
        kept += 1;
        assert!(kept < 50, "the limit never applied");
    };
    assert_eq!(refusal.status.code(), Some(2), "{}", show(&refusal));
    assert!(
        String::from_utf8_lossy(&refusal.stderr).contains("spool"),
        "{}",
        show(&refusal)
    );
    assert!(
        String::from_utf8_lossy(&refusal.stderr).contains("is full"),
        "{}",
        show(&refusal)
    );
    let listed = ok(&runner, &["spool", "list", "--spool", spool]);
    assert_eq!(listed.lines().count(), kept, "{listed}");
    eprintln!("a 4k spool kept {kept} requests, then refused");
}

#[test]
fn send_with_a_key_stores_a_repeat_once_even_across_a_restart() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let relay = Relay::start(&node.url);
    let first = ok(&home, &["send", "--key", "deploy-42", "deployed 42"]);
    let again = ok(&home, &["send", "--key", "deploy-42", "deployed 42"]);
    assert_eq!(first, again, "the original id");
    let other = ok(&home, &["send", "--key", "deploy-43", "deployed 43"]);
    assert_ne!(first, other);
    let line = ok(&home, &["client", "add", "ci", "--url", &relay.url])
        .trim()
        .to_string();
    let runner = s.home("runner");
    let spool = s.home("spool");
    let spool = spool.to_str().unwrap();
    let remote = |key: &str| {
        ok(
            &runner,
            &[
                "send", "--client", &line, "--spool", spool, "--key", key, "from ci",
            ],
        )
    };
    let by_client = remote("deploy-42");
    assert_ne!(by_client, first, "keys of different senders never meet");
    assert_eq!(remote("deploy-42"), by_client);
    let bad = run(&home, &["send", "--key", "has space", "x"]);
    assert_eq!(bad.status.code(), Some(2), "{}", show(&bad));
    assert_eq!(json_lines(&ok(&home, &["log", "--json"])).len(), 3);

    node.stop();
    let node = Node::start(&home, &[]);
    relay.point_at(&node.url);
    assert_eq!(
        ok(&home, &["send", "--key", "deploy-42", "deployed 42"]),
        first
    );
    assert_eq!(remote("deploy-42"), by_client);
    let json = json_lines(&ok(&home, &["--json", "send", "--key", "deploy-42", "x"]));
    assert_eq!(json[0]["repeat"], true);
    assert_eq!(
        json_lines(&ok(&home, &["log", "--json"])).len(),
        3,
        "nothing stored twice"
    );
}

#[test]
fn every_run_watchdog_says_yes_and_no() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    let spool = s.home("spool");
    let spool = spool.to_str().unwrap();
    let job = |name: &str, script: &str| {
        run(
            &home,
            &[
                "run", "--spool", spool, "--name", name, "--", "sh", "-c", script,
            ],
        );
    };
    job("nightly", "sleep 0.3");
    let check = |args: &[&str]| {
        let mut all = vec!["log", "--expect-run"];
        all.extend_from_slice(args);
        run(&home, &all)
    };
    let yes = |args: &[&str]| {
        let out = check(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", show(&out));
    };
    let no = |args: &[&str], why: &str| {
        let out = check(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args:?}: {err}");
    };
    yes(&["nightly", "--within", "1h"]);
    no(&["weekly", "--within", "1h"], "no run reported");
    yes(&["nightly", "--within", "1h", "--success"]);
    yes(&["nightly", "--min-duration", "250ms"]);
    no(&["nightly", "--min-duration", "20m"], "took less than 20m");
    yes(&["nightly", "--max-runs", "1", "--per", "1h"]);
    job("nightly", "exit 4");
    no(
        &["nightly", "--within", "1h", "--success"],
        "the last run failed",
    );
    no(
        &["nightly", "--max-runs", "1", "--per", "1h"],
        "2 runs finished within 1h",
    );
    // Two hours later by this process's clock, the last run is too old.
    let mut later = dshare(&home, &["log", "--expect-run", "nightly", "--within", "1h"]);
    later.env("DSHARE_TEST_CLOCK_OFFSET_MS", "7200000");
    let out = run_with_input(later, b"");
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no run finished within 1h"));
    let json = json_lines(&ok(&home, &["--json", "log", "--expect-run", "nightly"]));
    assert_eq!(json[0]["last"]["status"], 4);
}

/// A Ctrl-C at a terminal goes to the whole foreground process group, the job
/// included; `dshare run` must not pass it on as well (the job would see it twice),
/// while a signal sent to `dshare run` alone still reaches the job. The terminal is a
/// real pseudo-terminal from script(1); ^C on it is the kernel's SIGINT.
#[test]
fn a_terminal_ctrl_c_reaches_the_job_once_and_a_sent_signal_is_passed_on() {
    let s = Scratch::new();
    let node = Node::start(&s.home("a"), &[]);
    let seen = s.dir.path().join("ints");
    let job = format!(
        "trap 'echo INT >> {seen}' INT TERM; echo ready; i=0; while [ $i -lt 30 ]; do sleep 0.1; i=$((i+1)); done",
        seen = seen.display()
    );
    let run = dshare(
        &node.home,
        &["run", "--name", "ctrl-c", "--", "sh", "-c", &job],
    );
    let command = format!(
        "exec {}",
        std::iter::once(run.get_program())
            .chain(run.get_args())
            .map(|a| format!("'{}'", a.to_string_lossy().replace('\'', "'\\''")))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut terminal = std::process::Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .envs(run.get_envs().filter_map(|(k, v)| Some((k, v?))))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script(1) runs");
    let mut stdin = terminal.stdin.take().unwrap();
    let mut stdout = terminal.stdout.take().unwrap();
    let mut shown = Vec::new();
    let end = Instant::now() + Duration::from_secs(30);
    while !String::from_utf8_lossy(&shown).contains("ready") {
        assert!(Instant::now() < end, "the job did not start: {shown:?}");
        let mut buf = [0u8; 256];
        let n = stdout.read(&mut buf).unwrap();
        assert!(n > 0, "the terminal closed: {shown:?}");
        shown.extend_from_slice(&buf[..n]);
    }
    stdin.write_all(b"\x03").unwrap();
    stdin.flush().unwrap();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let status = terminal.wait().unwrap();
    let count = std::fs::read_to_string(&seen).unwrap_or_default();
    assert_eq!(
        count.lines().count(),
        1,
        "the job saw the terminal's ^C {} times (status {status})",
        count.lines().count()
    );

    // A signal sent to `dshare run` alone is passed on.
    std::fs::remove_file(&seen).unwrap();
    let mut child = dshare(
        &node.home,
        &["run", "--name", "sent", "--", "sh", "-c", &job],
    )
    .stdout(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 6];
    out.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ready\n");
    crate::util::signal(child.id(), "TERM");
    child.wait().unwrap();
    let count = std::fs::read_to_string(&seen).unwrap_or_default();
    assert_eq!(
        count.lines().count(),
        1,
        "the sent SIGTERM reached the job {count:?}"
    );
}
