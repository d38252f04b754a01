//! Hooks with cursors: `log --exec` and `serve --on-message` run once for every
//! message, in the box's order, across crashes, restarts, rebuilt boxes and filters.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::util::{
    DEADLINE, Node, Scratch, box_lines, dshare, fails, json_lines, ok, run, show, signal, wait_for,
    wait_peer_up,
};

use super::lines;

/// Starts `dshare --home HOME ARGS…` in the background, stdout and stderr into `log`.
fn spawn(home: &Path, args: &[&str], env: &[(&str, &Path)], log: &Path) -> Child {
    let mut cmd = dshare(home, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::null())
        .stdout(fs::File::create(log).unwrap())
        .stderr(
            fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log.with_extension("err"))
                .unwrap(),
        )
        .spawn()
        .expect("spawn dshare")
}

/// The message ids of a home's box, in its arrival order.
fn box_ids(home: &Path) -> Vec<String> {
    box_lines(home)
        .iter()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Every id once, in the box's order: no gap, no duplicate.
fn assert_exactly_once(handled: &[String], expected: &[String]) {
    let unique: HashSet<&String> = handled.iter().collect();
    assert_eq!(
        unique.len(),
        handled.len(),
        "some messages were handled twice: {handled:#?}"
    );
    assert_eq!(
        handled, expected,
        "the hook must run once for every message, in the box's order"
    );
}

/// Two nodes of one network: `a` (started) and `b` (joined through `a`'s invite).
fn pair(s: &Scratch) -> (Node, Node) {
    let a = s.home("a");
    let b = s.home("b");
    ok(&a, &["init"]);
    let node_a = Node::start(&a, &[]);
    let invite = ok(&a, &["invite"]);
    ok(&b, &["init", "--join", invite.trim()]);
    let node_b = Node::start(&b, &[]);
    // Each knows the other (and `a` has `b` in its peers.json), so a restarted `a`,
    // on a new port, finds `b` again.
    wait_peer_up(&node_a.home, &node_b.url);
    wait_peer_up(&node_b.home, &node_a.url);
    (node_a, node_b)
}

/// Waits until `home`'s box holds `n` messages.
fn wait_box(home: &Path, n: usize) {
    wait_for(
        &format!("{} to hold {n} messages", home.display()),
        DEADLINE,
        || (box_lines(home).len() >= n).then_some(()),
    );
}

/// The hook the crash test runs, sourced by `sh -c` so that `$PPID` is the
/// `dshare log` process. It appends each id once even when the runner was killed while
/// it ran (`DSHARE_REDELIVERED`), and, the first time it sees box line 10, kills the
/// runner itself right after acting: a crash in the middle of a hook.
const CRASHING_HOOK: &str = r#"
if [ "$DSHARE_REDELIVERED" = 1 ]; then
    printf '%s\n' "$DSHARE_ID" >> "$REDELIVERED"
    if grep -qx "$DSHARE_ID" "$OUT"; then exit 0; fi
fi
printf '%s\n' "$DSHARE_ID" >> "$OUT"
if [ "$DSHARE_POSITION" = 10 ] && [ ! -e "$CRASHED" ]; then
    : > "$CRASHED"
    kill -9 "$PPID"
fi
"#;

#[test]
fn log_exec_runs_every_message_exactly_once_across_crashes_and_a_node_restart() {
    let s = Scratch::new();
    let (node_a, node_b) = pair(&s);
    let (a, b) = (node_a.home.clone(), node_b.home.clone());
    let dir = s.dir.path();
    let hook = dir.join("hook.sh");
    fs::write(&hook, CRASHING_HOOK).unwrap();
    let (out, redelivered, crashed) = (
        dir.join("out"),
        dir.join("redelivered"),
        dir.join("crashed"),
    );
    let env = [
        ("OUT", out.as_path()),
        ("REDELIVERED", redelivered.as_path()),
        ("CRASHED", crashed.as_path()),
    ];
    let exec = format!(". {}", hook.display());
    let args = [
        "log",
        "-f",
        "--exec",
        exec.as_str(),
        "--cursor",
        "t",
        "--from",
        "start",
    ];
    let runner_log = dir.join("runner");

    // Messages keep coming from both nodes in three stretches the test opens: the
    // first 30 while the runner crashes and restarts, 10 more while `a` is down
    // (they go to `b` and reach `a` when it is back), the rest after. Without the
    // gate a fast sender could finish before `a` stops and nothing would be sent
    // while it is down.
    const TOTAL: usize = 60;
    const BEFORE_DOWN: usize = 30;
    const WHILE_DOWN: usize = 10;
    let sent = Arc::new(AtomicUsize::new(0));
    let (open_up_to, gate) = std::sync::mpsc::channel::<usize>();
    open_up_to.send(BEFORE_DOWN).unwrap();
    let sender = {
        let (a, b, sent) = (a.clone(), b.clone(), Arc::clone(&sent));
        std::thread::spawn(move || {
            let mut open = 0;
            for i in 1..=TOTAL {
                while i > open {
                    open = gate.recv().expect("the test keeps the gate");
                }
                let body = format!("message {i}");
                let first = if i % 2 == 0 { &a } else { &b };
                if !run(first, &["send", &body]).status.success() {
                    ok(&b, &["send", &body]);
                }
                sent.store(i, Ordering::SeqCst);
            }
        })
    };

    // 1. The hook kills its runner in the middle of line 10.
    let mut runner = spawn(&a, &args, &env, &runner_log);
    wait_for("the hook to kill its runner at line 10", DEADLINE, || {
        runner.try_wait().unwrap().filter(|_| crashed.exists())
    });
    // 2. Restarted with the same cursor, then killed (-9) by the test mid-stream.
    let mut runner = spawn(&a, &args, &env, &runner_log);
    wait_for("20 messages handled", DEADLINE, || {
        (lines(&out).len() >= 20).then_some(())
    });
    runner.kill().unwrap();
    runner.wait().unwrap();
    // 3. Restarted again; meanwhile the node itself stops and comes back.
    let mut runner = spawn(&a, &args, &env, &runner_log);
    wait_for("the first stretch handled", DEADLINE, || {
        (lines(&out).len() >= BEFORE_DOWN).then_some(())
    });
    let status = node_a.stop();
    assert!(status.success(), "{status}");
    open_up_to.send(BEFORE_DOWN + WHILE_DOWN).unwrap();
    wait_for("messages sent while the node is down", DEADLINE, || {
        (sent.load(Ordering::SeqCst) == BEFORE_DOWN + WHILE_DOWN).then_some(())
    });
    let node_a = Node::start(&a, &[]);
    open_up_to.send(TOTAL).unwrap();
    sender.join().unwrap();

    wait_box(&a, TOTAL);
    wait_for("every message handled", DEADLINE, || {
        (lines(&out).len() >= TOTAL).then_some(())
    });
    // The runner is idle once the cursor points at the last line with nothing pending.
    let cursor = a.join("cursors/t");
    wait_for("the cursor to reach the end", DEADLINE, || {
        let c: serde_json::Value = serde_json::from_slice(&fs::read(&cursor).ok()?).ok()?;
        (c["position"] == TOTAL && c["pending"].is_null()).then_some(())
    });
    assert!(
        runner.try_wait().unwrap().is_none(),
        "the runner must outlive the node's restart; its stderr:\n{}",
        fs::read_to_string(runner_log.with_extension("err")).unwrap_or_default()
    );
    assert_exactly_once(&lines(&out), &box_ids(&a));
    // The message whose hook was cut short was handed over again, marked as such.
    let cut_short = box_ids(&a)[9].clone();
    assert!(
        lines(&redelivered).contains(&cut_short),
        "line 10 must be redelivered with DSHARE_REDELIVERED=1"
    );
    let err = fs::read_to_string(runner_log.with_extension("err")).unwrap();
    assert!(err.contains("waiting for the node"), "{err}");

    // SIGTERM stops an idle runner at once, as killed by SIGTERM (as `log -f` is).
    signal(runner.id(), "TERM");
    let status = wait_for("the runner to stop on SIGTERM", DEADLINE, || {
        runner.try_wait().unwrap()
    });
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(15), "{status}");
    drop(node_a);
}

#[test]
fn a_cursor_survives_a_rebuilt_box_and_moving_to_another_node() {
    let s = Scratch::new();
    let (node_a, node_b) = pair(&s);
    let (a, b) = (node_a.home.clone(), node_b.home.clone());
    for i in 0..3 {
        ok(&a, &["send", &format!("a{i}")]);
        ok(&b, &["send", &format!("b{i}")]);
    }
    wait_box(&a, 6);
    wait_box(&b, 6);
    let out = s.dir.path().join("out");
    let exec = format!("printf '%s\\n' \"$DSHARE_ID\" >> {}", out.display());
    let hook = [
        "log",
        "--exec",
        exec.as_str(),
        "--cursor",
        "c",
        "--from",
        "start",
    ];
    ok(&a, &hook);
    assert_eq!(lines(&out), box_ids(&a));

    // The same cursor against the other node: its lines are in another order, and
    // nothing is handled twice.
    let on_b = [
        &hook[..],
        &["--node", &node_b.url, "--token", &node_b.token],
    ]
    .concat();
    ok(&a, &on_b);
    assert_eq!(lines(&out).len(), 6);
    ok(&b, &["send", "b-new"]);
    ok(&b, &["send", "b-newer"]);
    wait_box(&b, 8);
    ok(&a, &on_b);
    assert_eq!(lines(&out).len(), 8);

    // Back on `a`, whose box is then rebuilt from `b` in another order.
    wait_box(&a, 8);
    ok(&a, &hook);
    assert_eq!(lines(&out).len(), 8, "nothing new on a");
    node_a.stop();
    fs::remove_file(a.join("box.txt")).unwrap();
    fs::remove_file(a.join("box.head")).unwrap();
    let node_a = Node::start(&a, &[]);
    wait_box(&a, 8);
    let out_before = lines(&out);
    let run_a = run(&a, &hook);
    assert!(run_a.status.success(), "{}", show(&run_a));
    assert_eq!(lines(&out), out_before, "a rebuilt box runs nothing twice");
    ok(&a, &["send", "after the rebuild"]);
    ok(&a, &hook);
    let handled = lines(&out);
    assert_eq!(handled.len(), 9);
    let all: HashSet<String> = box_ids(&a).into_iter().collect();
    assert_eq!(handled.iter().cloned().collect::<HashSet<_>>(), all);
    drop((node_a, node_b));
}

#[test]
fn a_hook_gets_the_message_in_its_environment_and_on_stdin() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    let body = "two lines\nwith \"quotes\", $dollars and `ticks`";
    let sent: serde_json::Value =
        serde_json::from_str(&ok(&home, &["--json", "send", body])).unwrap();
    let dump = s.dir.path().join("dump");
    let exec = format!(
        "{{ env | grep '^DSHARE_' | grep -v '^DSHARE_BODY=' | grep -v '^DSHARE_JSON=' | sort; printf 'stdin=%s|\\n' \"$(cat)\"; printf 'body=%s|\\n' \"$DSHARE_BODY\"; printf 'json=%s\\n' \"$DSHARE_JSON\"; }} > {}",
        dump.display()
    );
    ok(&home, &["log", "--exec", &exec]);
    let text = fs::read_to_string(&dump).unwrap();
    for expected in [
        format!("DSHARE_ID={}", sent["id"].as_str().unwrap()),
        format!("DSHARE_AUTHOR={}", sent["author"].as_str().unwrap()),
        "DSHARE_SEQ=1".to_string(),
        "DSHARE_PREV=".to_string(),
        format!("DSHARE_CLOCK={}", sent["clock"]),
        format!("DSHARE_TS={}", sent["ts"]),
        "DSHARE_POSITION=1".to_string(),
        "DSHARE_ATTEMPT=1".to_string(),
        "DSHARE_REDELIVERED=0".to_string(),
        "DSHARE_CURSOR=".to_string(),
        format!("stdin={body}|"),
        format!("body={body}|"),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in:\n{text}");
    }
    assert!(text.contains("DSHARE_TIME=20"), "{text}");
    let json_line = text.lines().find(|l| l.starts_with("json=")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json_line[5..]).unwrap();
    assert_eq!(json, sent);
}

#[test]
fn a_failing_hook_is_retried_then_stops_and_the_next_run_starts_with_it() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    for body in ["one", "two", "three"] {
        ok(&home, &["send", body]);
    }
    let dir = s.dir.path();
    let (out, tries) = (dir.join("out"), dir.join("tries"));
    // Fails on "two" twice, then succeeds: within --retries 2, so nothing is lost.
    let flaky = format!(
        "if [ \"$DSHARE_BODY\" = two ] && [ \"$DSHARE_ATTEMPT\" -le 2 ]; then echo \"$DSHARE_ATTEMPT\" >> {t}; exit 7; fi; echo \"$DSHARE_BODY\" >> {o}",
        t = tries.display(),
        o = out.display()
    );
    let started = Instant::now();
    let done = run(
        &home,
        &[
            "log",
            "--exec",
            &flaky,
            "--cursor",
            "f",
            "--from",
            "start",
            "--retries",
            "2",
        ],
    );
    assert!(done.status.success(), "{}", show(&done));
    assert_eq!(lines(&out), ["one", "two", "three"]);
    assert_eq!(lines(&tries), ["1", "2"]);
    assert!(
        started.elapsed() >= Duration::from_secs(3),
        "backoff 1s then 2s"
    );
    let err = String::from_utf8_lossy(&done.stderr);
    assert!(
        err.contains("exit status: 7") && err.contains("trying again in 1s"),
        "{err}"
    );

    // Always failing on "five": exit 1 after the retries, cursor before it.
    ok(&home, &["send", "four"]);
    ok(&home, &["send", "five"]);
    ok(&home, &["send", "six"]);
    let broken = format!(
        "[ \"$DSHARE_BODY\" = five ] && exit 3; echo \"$DSHARE_BODY\" >> {}",
        out.display()
    );
    let failed = fails(
        &home,
        &["log", "--exec", &broken, "--cursor", "f", "--retries", "0"],
        1,
    );
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(
        err.contains("after 1 try (exit status: 3)")
            && err.contains("cursor \"f\" stays before it"),
        "{err}"
    );
    assert_eq!(lines(&out), ["one", "two", "three", "four"]);
    // Fixed: the next run starts with "five", marked as redelivered.
    let fixed = format!(
        "echo \"$DSHARE_BODY $DSHARE_REDELIVERED\" >> {}",
        out.display()
    );
    ok(&home, &["log", "--exec", &fixed, "--cursor", "f"]);
    assert_eq!(
        lines(&out),
        ["one", "two", "three", "four", "five 1", "six 0"]
    );

    // --keep-going: reported and skipped.
    ok(&home, &["send", "seven"]);
    ok(&home, &["send", "eight"]);
    let skip = format!(
        "[ \"$DSHARE_BODY\" = seven ] && exit 4; echo \"$DSHARE_BODY\" >> {}",
        out.display()
    );
    let kept = run(
        &home,
        &[
            "log",
            "--exec",
            &skip,
            "--cursor",
            "f",
            "--retries",
            "0",
            "--keep-going",
        ],
    );
    assert!(kept.status.success(), "{}", show(&kept));
    assert!(String::from_utf8_lossy(&kept.stderr).contains("skipped it (--keep-going)"));
    assert_eq!(lines(&out).last().unwrap(), "eight");
}

#[test]
fn from_and_filters_choose_the_messages_a_hook_runs_for() {
    let s = Scratch::new();
    let (node_a, node_b) = pair(&s);
    let (a, b) = (node_a.home.clone(), node_b.home.clone());
    let first = ok(&a, &["send", "deploy 1 started"]).trim().to_string();
    ok(&b, &["send", "deploy 1 done"]);
    wait_box(&a, 2);
    ok(&a, &["send", "lunch"]);
    wait_box(&a, 3);
    let out = s.dir.path().join("out");
    let exec = format!("echo \"$DSHARE_BODY\" >> {}", out.display());
    let hook = |extra: &[&str]| {
        let _ = fs::remove_file(&out);
        let args = [&["log", "--exec", exec.as_str()][..], extra].concat();
        ok(&a, &args);
        lines(&out)
    };
    assert_eq!(
        hook(&[]).len(),
        3,
        "one-shot without a cursor: every message"
    );
    assert_eq!(hook(&["--from", &first[..8]]), ["deploy 1 done", "lunch"]);
    assert_eq!(
        hook(&["--grep", "deploy"]),
        ["deploy 1 started", "deploy 1 done"]
    );
    let b_id = ok(&b, &["id"]);
    assert_eq!(hook(&["--author", &b_id[..10]]), ["deploy 1 done"]);
    // A new cursor starts `now` by default: only what arrives later.
    assert!(hook(&["--cursor", "n"]).is_empty());
    ok(&a, &["send", "later"]);
    assert_eq!(hook(&["--cursor", "n"]), ["later"]);
    // Filters apply to plain `log` too.
    let shown = ok(
        &a,
        &["--json", "log", "--grep", "deploy", "--author", &b_id[..6]],
    );
    let shown = json_lines(&shown);
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0]["body"], "deploy 1 done");
    // Mistakes are usage errors.
    fails(&a, &["log", "--exec", "true", "--from", "yesterday"], 2);
    fails(&a, &["log", "--exec", "true", "--cursor", "../x"], 2);
    fails(&a, &["log", "--author", "xyz"], 2);
    fails(&a, &["log", "--cursor", "n"], 2);
    let missing = fails(&a, &["log", "--exec", "true", "--from", "abcdef12"], 2);
    assert!(
        String::from_utf8_lossy(&missing.stderr)
            .contains("no message with an id starting with abcdef12")
    );
}

#[test]
fn a_cursor_in_use_is_refused() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    let log = s.dir.path().join("runner");
    let mut first = spawn(
        &home,
        &["log", "-f", "--exec", "true", "--cursor", "busy"],
        &[],
        &log,
    );
    wait_for("the first runner to create its cursor", DEADLINE, || {
        home.join("cursors/busy").exists().then_some(())
    });
    let second = fails(&home, &["log", "--exec", "true", "--cursor", "busy"], 2);
    assert!(String::from_utf8_lossy(&second.stderr).contains("in use by another process"));
    first.kill().unwrap();
    first.wait().unwrap();
    ok(&home, &["log", "--exec", "true", "--cursor", "busy"]);
}

#[test]
fn serve_on_message_runs_for_messages_missed_while_the_node_was_down() {
    let s = Scratch::new();
    let (node_a, node_b) = pair(&s);
    drop(node_a);
    let (a, b) = (s.home("a"), node_b.home.clone());
    let out = s.dir.path().join("out");
    // Killed with -9 right after the hook acted, the node may not have recorded it:
    // it then hands the message over again, marked, and the hook checks.
    let hook = format!(
        "if [ \"$DSHARE_REDELIVERED\" = 1 ] && grep -qx \"$DSHARE_ID\" {o}; then exit 0; fi; printf '%s\\n' \"$DSHARE_ID\" >> {o}",
        o = out.display()
    );
    let serve = ["--on-message", hook.as_str()];
    let node_a = Node::start(&a, &serve);
    for i in 0..3 {
        ok(&a, &["send", &format!("up {i}")]);
    }
    wait_for("the hook to run three times", DEADLINE, || {
        (lines(&out).len() >= 3).then_some(())
    });
    // Killed without warning; messages go on arriving at the other node.
    node_a.kill9();
    for i in 0..4 {
        ok(&b, &["send", &format!("while a is down {i}")]);
    }
    let node_a = Node::start(&a, &serve);
    wait_box(&a, 7);
    wait_for("the hook to catch up", DEADLINE, || {
        (lines(&out).len() >= 7).then_some(())
    });
    // Stopped cleanly this time, and started again: nothing runs twice.
    assert!(node_a.stop().success());
    let node_a = Node::start(&a, &serve);
    ok(&a, &["send", "last"]);
    wait_for("the hook to run for the last message", DEADLINE, || {
        (lines(&out).len() >= 8).then_some(())
    });
    assert_exactly_once(&lines(&out), &box_ids(&a));
    assert!(
        node_a
            .log()
            .contains("--on-message hook on cursor \"on-message\"")
    );
    // Hook options without a hook are a mistake, not silently ignored.
    let lone = fails(
        &s.home("c"),
        &["serve", "--listen", "127.0.0.1:0", "--grep", "x"],
        2,
    );
    assert!(String::from_utf8_lossy(&lone.stderr).contains("are for the --on-message hook"));
    // The node's cursor is the node's: a second runner on it is refused.
    let busy = fails(&a, &["log", "--exec", "true", "--cursor", "on-message"], 2);
    assert!(String::from_utf8_lossy(&busy.stderr).contains("in use"));
}
