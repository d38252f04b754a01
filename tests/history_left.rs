//! What is left of "years of history": hook cursors that survive an archive, a crash
//! inside an archive that leaves no file behind, where a pruned node's history begins,
//! start-up after a crash with a long tail, and an index overlay that stays bounded
//! when its runs cannot be written.

use std::fs;
use std::path::Path;
use std::time::Duration;

use crate::util::{Node, Scratch, ok, run, show, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);

fn send(node: &Node, from: usize, to: usize) {
    for i in from..to {
        let (status, body) = node.get("/send", &[("msg", &format!("m {i:03}"))]);
        assert_eq!(status, 200, "{body}");
    }
}

/// A hook that appends each body it is given, one a line, to `out`.
fn recording_hook(out: &Path) -> String {
    format!("{{ cat; echo; }} >> '{}'", out.display())
}

fn handled(out: &Path) -> Vec<String> {
    fs::read_to_string(out)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every body `m 000` … `m {n-1}` exactly once, in order.
fn assert_each_once(out: &Path, n: usize) {
    let got = handled(out);
    let want: Vec<String> = (0..n).map(|i| format!("m {i:03}")).collect();
    assert_eq!(got, want, "the hook ran for these messages");
}

fn exec_once(home: &Path, out: &Path) -> std::process::Output {
    let hook = recording_hook(out);
    let got = run(
        home,
        &["log", "--exec", &hook, "--cursor", "c", "--from", "start"],
    );
    assert!(got.status.success(), "{}", show(&got));
    got
}

#[test]
fn a_log_exec_cursor_behind_an_archive_reads_the_epoch_and_handles_each_message_once() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let out = scratch.dir.path().join("handled");
    let node = Node::start(&home, &[]);
    send(&node, 0, 30);
    exec_once(&home, &out);
    assert_each_once(&out, 30);
    send(&node, 30, 50);
    // Lines 1–40 move into epoch 1: the cursor (at line 30) is inside it.
    ok(&home, &["archive", "--keep-messages", "10"]);
    exec_once(&home, &out);
    assert_each_once(&out, 50);
    // And once more past the archive: nothing is replayed.
    send(&node, 50, 55);
    ok(&home, &["archive", "--keep-messages", "2"]);
    exec_once(&home, &out);
    assert_each_once(&out, 55);
}

#[test]
fn a_cursor_into_pruned_history_says_so_and_goes_on_where_history_begins() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let out = scratch.dir.path().join("handled");
    let node = Node::start(&home, &[]);
    send(&node, 0, 10);
    exec_once(&home, &out);
    send(&node, 10, 20);
    // Lines 1–15 closed and their lines deleted: 11–15 were never handled.
    ok(&home, &["archive", "--keep-messages", "5", "--prune"]);
    let said = exec_once(&home, &out);
    let stderr = String::from_utf8_lossy(&said.stderr);
    assert!(
        stderr.contains("lines 11–15")
            && stderr.contains("pruned")
            && stderr.contains("from line 16"),
        "{stderr}"
    );
    let want: Vec<String> = (0..10).chain(15..20).map(|i| format!("m {i:03}")).collect();
    assert_eq!(handled(&out), want);
    // The cursor went on from there: no warning, nothing run, the next time.
    let again = exec_once(&home, &out);
    assert!(
        !String::from_utf8_lossy(&again.stderr).contains("pruned"),
        "{}",
        show(&again)
    );
    assert_eq!(handled(&out).len(), 15);
    drop(node);
}

/// A hook that records each body, and waits for `go` to exist before it records
/// `m 005`: an archive can then run while it is in the middle of a message.
fn stalling_hook(out: &Path, go: &Path) -> String {
    format!(
        "b=$(cat); if [ \"$b\" = 'm 005' ]; then while [ ! -e '{}' ]; do sleep 0.02; done; fi; echo \"$b\" >> '{}'",
        go.display(),
        out.display()
    )
}

#[test]
fn an_on_message_cursor_survives_an_archive_while_its_hook_runs_and_between_two_runs() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let out = scratch.dir.path().join("handled");
    let go = scratch.dir.path().join("go");
    let hook = stalling_hook(&out, &go);
    let node = Node::start(&home, &["--on-message", &hook, "--from", "start"]);
    send(&node, 0, 20);
    wait_for("the hook to reach m 005", DEADLINE, || {
        (handled(&out).len() == 5).then_some(())
    });
    // The hook is running for line 6 while lines 1–17 are closed into epoch 1.
    let (code, body) =
        crate::util::raw_post(&node.url_for("/archive", &[("keep_messages", "3")]), b"");
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    fs::write(&go, "").unwrap();
    wait_for("the hook to handle all 20", DEADLINE, || {
        (handled(&out).len() >= 20).then_some(())
    });
    assert!(node.stop().success());
    // Without the hook, 10 more arrive and an archive closes all but 2: the cursor
    // (line 20) is now inside epoch 2.
    let node = Node::start(&home, &[]);
    send(&node, 20, 30);
    ok(&home, &["archive", "--keep-messages", "2"]);
    assert!(node.stop().success());
    let node = Node::start(&home, &["--on-message", &hook]);
    wait_for("the hook to handle all 30", DEADLINE, || {
        (handled(&out).len() >= 30).then_some(())
    });
    send(&node, 30, 32);
    wait_for("the hook to handle the 2 new ones", DEADLINE, || {
        (handled(&out).len() >= 32).then_some(())
    });
    assert_each_once(&out, 32);
}

/// Every file of a home and of its epochs directory, by name relative to the home.
fn home_files(home: &Path) -> Vec<String> {
    let mut all = Vec::new();
    for (dir, prefix) in [(home.to_path_buf(), ""), (home.join("epochs"), "epochs/")] {
        if let Ok(entries) = fs::read_dir(&dir) {
            all.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                    .map(|e| format!("{prefix}{}", e.file_name().to_string_lossy())),
            );
        }
    }
    all.sort();
    all
}

/// What an archive writes on its way and a finished one does not leave: temporary
/// files, the next box and its index, an epoch's lines without its head.
fn leftovers(home: &Path) -> Vec<String> {
    let files = home_files(home);
    files
        .iter()
        .filter(|f| {
            f.ends_with(".tmp")
                || f.starts_with("box.txt.")
                || f.strip_prefix("epochs/")
                    .and_then(|n| n.strip_suffix(".txt"))
                    .is_some_and(|stem| !files.contains(&format!("epochs/{stem}.head")))
        })
        .cloned()
        .collect()
}

fn copy_home(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap().flatten() {
        if entry.file_type().unwrap().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Whether the files of a home show an archive at one point of its way.
type Seen = fn(&[String]) -> bool;

/// Kills `dshare archive` on a large box as soon as each file it writes on its way
/// appears (its epoch's lines being copied, the next box, the next box's index and
/// runs, the epoch's lines without a head), then starts a node on what is left: no
/// leftover survives the start, the box verifies, and every message is there.
#[test]
fn a_kill_at_any_point_of_an_archive_leaves_nothing_behind_after_the_next_start() {
    let scratch = Scratch::new();
    let template = scratch.home("template");
    ok(&template, &["init"]);
    let n = 40_000u64;
    let chain = crate::util::write_signed_box(&template.join("box.txt"), n, |s| {
        format!("old {s} {}", "x".repeat(200))
    });
    fs::write(template.join("box.head"), format!("{n:020} {chain}\n")).unwrap();
    let points: [(&str, Seen); 4] = [
        ("the epoch's lines being copied", |f| {
            f.iter().any(|f| f == "epochs/box.1.txt.tmp")
        }),
        ("the epoch's lines without a head", |f| {
            f.iter().any(|f| f == "epochs/box.1.txt") && !f.iter().any(|f| f == "epochs/box.1.head")
        }),
        ("the next box", |f| f.iter().any(|f| f == "box.txt.next")),
        ("the next box's index", |f| {
            f.iter()
                .any(|f| f == "box.txt.index" || f.starts_with("box.txt.order-"))
        }),
    ];
    let mut hit = 0;
    for (i, (what, at)) in points.iter().enumerate() {
        let home = scratch.home(&format!("h{i}"));
        copy_home(&template, &home);
        let mut cmd = crate::util::dshare(&home, &["archive", "--keep-messages", "20000"]);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        let mut child = crate::util::Reaped(cmd.spawn().unwrap());
        let seen = wait_for(what, DEADLINE, || {
            if at(&home_files(&home)) {
                return Some(true);
            }
            match child.0.try_wait().unwrap() {
                Some(_) => Some(false),
                None => {
                    std::thread::sleep(Duration::from_millis(1));
                    None
                }
            }
        });
        let _ = child.0.kill();
        let _ = child.0.wait();
        let left = leftovers(&home);
        eprintln!("killed at {what}: seen {seen}, left {left:?}");
        if !seen {
            continue;
        }
        hit += 1;
        let node = Node::start(&home, &[]);
        assert_eq!(
            leftovers(&home),
            Vec::<String>::new(),
            "after a kill at {what}"
        );
        let (code, body) = node.get("/status", &[]);
        assert_eq!(code, 200, "{body}");
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            status["messages"].as_u64(),
            Some(n),
            "after a kill at {what}"
        );
        drop(node);
        let verified = run(&home, &["--json", "verify"]);
        assert!(verified.status.success(), "{}", show(&verified));
        // The next archive goes through on what is left.
        ok(&home, &["archive", "--keep-messages", "20000"]);
        assert_eq!(leftovers(&home), Vec::<String>::new());
    }
    assert!(hit >= 2, "too few kill points were caught ({hit})");
}

fn status(node: &Node) -> serde_json::Value {
    let (code, body) = node.get("/status", &[]);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

#[test]
fn status_and_log_say_where_the_history_held_begins_after_an_archive_and_a_prune() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let node = Node::start(&home, &[]);
    send(&node, 0, 20);
    let before = status(&node);
    assert_eq!(before["history"]["first_line"], 1, "{before}");
    assert_eq!(before["history"]["box_first_line"], 1, "{before}");
    ok(&home, &["archive", "--keep-messages", "5"]);
    let s = status(&node);
    let h = &s["history"];
    assert_eq!(
        (
            &h["first_line"],
            &h["box_first_line"],
            &h["epochs"],
            &h["epochs_with_lines"],
            &h["pruned_lines"]
        ),
        (&1.into(), &16.into(), &1.into(), &1.into(), &0.into()),
        "{s}"
    );
    let log = run(&home, &["log", "--json"]);
    // The whole conversation of the live box, once each (it was read from line 0 by
    // counting, and repeated the live box's lines until the count reached its end).
    let shown = crate::util::json_lines(&String::from_utf8_lossy(&log.stdout));
    let bodies: Vec<&str> = shown.iter().map(|m| m["body"].as_str().unwrap()).collect();
    let want: Vec<String> = (15..20).map(|i| format!("m {i:03}")).collect();
    assert_eq!(bodies, want, "{}", show(&log));
    let said = String::from_utf8_lossy(&log.stderr);
    assert!(
        said.contains("begins at line 16") && said.contains("epochs/"),
        "{}",
        show(&log)
    );
    ok(&home, &["archive", "--keep-messages", "2", "--prune"]);
    let s = status(&node);
    let h = &s["history"];
    assert_eq!(
        (
            &h["first_line"],
            &h["box_first_line"],
            &h["epochs"],
            &h["epochs_with_lines"],
            &h["pruned_lines"]
        ),
        (&19.into(), &19.into(), &2.into(), &0.into(), &18.into()),
        "{s}"
    );
    let first = crate::util::json_lines(&ok(&home, &["log", "--json", "-n", "2"]));
    assert_eq!(
        h["first_ts"], first[0]["ts"],
        "the first message held is m 018"
    );
    let log = run(&home, &["log", "-n", "100"]);
    let said = String::from_utf8_lossy(&log.stderr);
    assert!(
        said.contains("begins at line 19") && said.contains("signed heads"),
        "{}",
        show(&log)
    );
    // The fields that were there keep their values and their order.
    let keys: Vec<&String> = s.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "node",
            "url",
            "version",
            "messages",
            "authors",
            "head",
            "digest",
            "commits",
            "recovering",
            "history"
        ]
    );
    assert_eq!(s["messages"], 20);
}

/// Sends `count` messages over `threads` connections at once (so that they share
/// commits); returns the HTTP statuses seen.
fn send_many(node: &Node, tag: &str, count: usize, threads: usize) -> Vec<u16> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    (t..count)
                        .step_by(threads)
                        .map(|i| node.get("/send", &[("msg", &format!("{tag} {i}"))]).0)
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

/// The overlay of the conversation order is written as a run every 16,384 lines. When
/// that cannot be done (here a directory squats the name of the run being written),
/// the node takes 4,096 more lines into memory and then refuses sends with 507 until
/// a run can be written; nothing acknowledged is lost, and it takes sends again once
/// the way is clear.
#[test]
fn the_index_overlay_stays_bounded_when_its_run_cannot_be_written() {
    const OVERLAY_MAX: u64 = 16_384;
    const OVERLAY_LIMIT: u64 = OVERLAY_MAX + OVERLAY_MAX / 4;
    let scratch = Scratch::new();
    let home = scratch.home("a");
    ok(&home, &["init"]);
    let old = OVERLAY_MAX - 100;
    let chain = crate::util::write_signed_box(&home.join("box.txt"), old, |s| format!("old {s}"));
    fs::write(home.join("box.head"), format!("{old:020} {chain}\n")).unwrap();
    // Permissions would not stop a node running as root: directories squatting every
    // name the first run can take (its last line is that of the commit that filled
    // the overlay, and the write is tried again at every commit) do.
    let squatters: Vec<_> = (OVERLAY_MAX..OVERLAY_LIMIT + 4096)
        .map(|last| home.join(format!("box.order-1-{last}.tmp")))
        .collect();
    for dir in &squatters {
        fs::create_dir(dir).unwrap();
    }
    let node = Node::start(&home, &[]);
    let room = (OVERLAY_LIMIT - old) as usize;
    let statuses = send_many(&node, "in", room + 300, 8);
    let stored = statuses.iter().filter(|&&s| s == 200).count();
    let refused = statuses.iter().filter(|&&s| s == 507).count();
    eprintln!("stored {stored}, refused {refused} of {}", statuses.len());
    assert_eq!(
        stored + refused,
        statuses.len(),
        "only 200 or 507: {statuses:?}"
    );
    assert!(
        refused >= 250,
        "the overlay was not bounded: stored {stored}\n{}",
        node.log()
    );
    assert!(
        stored >= room - 8 && stored <= room + 8,
        "stored {stored}, room for {room}"
    );
    let s = status(&node);
    assert_eq!(s["messages"].as_u64(), Some(old + stored as u64), "{s}");
    assert!(
        node.log().contains("cannot write a sorted run"),
        "{}",
        node.log()
    );
    // The way is clear again: the next send writes the run and is taken.
    for dir in &squatters {
        fs::remove_dir(dir).unwrap();
    }
    let (code, body) = node.get("/send", &[("msg", "after")]);
    assert_eq!(code, 200, "{body}");
    assert!(
        fs::read_dir(&home)
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("box.order-1-")),
        "the run is written"
    );
    let total = old + stored as u64 + 1;
    assert_eq!(status(&node)["messages"].as_u64(), Some(total));
    node.kill9();
    let node = Node::start(&home, &[]);
    assert_eq!(status(&node)["messages"].as_u64(), Some(total));
    drop(node);
    let verified = run(&home, &["--json", "verify"]);
    assert!(verified.status.success(), "{}", show(&verified));
}
