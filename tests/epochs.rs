//! Epochs and retention: `dshare archive` closes the oldest lines into an epoch file
//! with a signed final head while the node serves, `verify` proves the history across
//! epochs (and from the heads once their lines are deleted), a crash inside an archive
//! loses nothing, and a pruned node still serves what it holds.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::util::{Node, Scratch, dshare, fails, ok, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);

fn send(node: &Node, n: usize, tag: &str) {
    for i in 0..n {
        let (status, body) = node.get("/send", &[("msg", &format!("{tag} {i:03}"))]);
        assert_eq!(status, 200, "{body}");
    }
}

fn status(node: &Node) -> serde_json::Value {
    let (code, body) = node.get("/status", &[]);
    assert_eq!(code, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn bodies(home: &Path) -> Vec<String> {
    crate::util::json_lines(&ok(home, &["log", "--json", "-n", "1000000"]))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

fn verify_json(home: &Path) -> serde_json::Value {
    let out = crate::util::run(home, &["--json", "verify"]);
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn epoch_file(home: &Path, n: u64, ext: &str) -> std::path::PathBuf {
    home.join("epochs").join(format!("box.{n}.{ext}"))
}

fn lines_of(path: &Path) -> usize {
    fs::read_to_string(path).unwrap().lines().count()
}

#[test]
fn archive_on_a_running_node_keeps_the_digest_and_every_message_and_verify_follows_the_epochs() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let node = Node::start(&home, &[]);
    send(&node, 30, "m");
    let before = status(&node);
    let out = ok(&home, &["--json", "archive", "--keep-messages", "10"]);
    let answer: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        (answer["epoch"].as_u64(), answer["moved"].as_u64()),
        (Some(1), Some(20)),
        "{out}"
    );
    assert_eq!(lines_of(&epoch_file(&home, 1, "txt")), 20);
    assert_eq!(lines_of(&home.join("box.txt")), 10);
    let after = status(&node);
    assert_eq!(
        after["digest"], before["digest"],
        "the digest covers the heads, not what is retired"
    );
    assert_eq!(after["head"], before["head"]);
    assert_eq!(after["messages"], 30, "lines count the whole history");
    send(&node, 5, "n");
    let v = verify_json(&home);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["messages"], 35, "{v}");
    assert_eq!(v["epochs"][0]["state"], "checked", "{v}");
    // The page still shows what the live box holds, and a restart goes on from the head.
    assert_eq!(bodies(&home).len(), 15);
    assert!(node.stop().success());
    let node = Node::start(&home, &[]);
    assert_eq!(status(&node)["digest"], verify_json(&home)["digest"]);
    send(&node, 1, "after restart");
    let human = ok(&home, &["verify"]);
    assert!(human.contains("epoch 1 lines 1–20"), "{human}");
}

#[test]
fn pruned_epochs_are_verified_from_their_signed_heads_and_said_so() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let node = Node::start(&home, &[]);
    send(&node, 12, "m");
    ok(&home, &["archive", "--keep-messages", "8"]);
    send(&node, 4, "n");
    ok(&home, &["archive", "--keep-messages", "4", "--prune"]);
    assert!(!epoch_file(&home, 1, "txt").exists() && !epoch_file(&home, 2, "txt").exists());
    assert!(epoch_file(&home, 1, "head").exists() && epoch_file(&home, 2, "head").exists());
    let v = verify_json(&home);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["messages"], 4, "only the live box is left to read: {v}");
    let history = v["history"].as_str().unwrap();
    assert!(
        history.starts_with("history before ")
            && history.contains("continuity from its signed head"),
        "{history}"
    );
    let human = ok(&home, &["verify"]);
    assert!(
        human.contains("not present; continuity from its signed head"),
        "{human}"
    );
    // The watchdog audits the same history and says where it begins.
    let doctor = ok(&home, &["doctor"]);
    assert!(doctor.contains("box    ok"), "{doctor}");
    assert!(doctor.contains("history before "), "{doctor}");
    drop(node);
}

#[test]
fn archive_without_a_node_works_on_the_home_and_a_node_starts_from_the_head() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let node = Node::start(&home, &[]);
    send(&node, 10, "m");
    let digest = status(&node)["digest"].clone();
    assert!(node.stop().success());
    let said = ok(&home, &["archive", "--keep-messages", "3"]);
    assert!(said.contains("closed lines 1–7"), "{said}");
    let node = Node::start(&home, &[]);
    assert_eq!(status(&node)["digest"], digest);
    send(&node, 2, "n");
    assert_eq!(verify_json(&home)["ok"], true);
}

#[test]
fn tampering_inside_an_epoch_or_with_its_final_head_is_caught() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let node = Node::start(&home, &[]);
    send(&node, 10, "m");
    ok(&home, &["archive", "--keep-messages", "4"]);
    drop(node);
    let lines = epoch_file(&home, 1, "txt");
    let original = fs::read_to_string(&lines).unwrap();
    fs::write(&lines, original.replacen("m 002", "M 002", 1)).unwrap();
    let v = verify_json(&home);
    assert_eq!(v["ok"], false, "an edited line in an epoch: {v}");
    fails(&home, &["verify"], 1);
    // A line removed from the end of the epoch: every line checks, but the epoch no
    // longer ends at its signed head.
    let cut: Vec<&str> = original.lines().collect();
    fs::write(&lines, cut[..cut.len() - 1].join("\n") + "\n").unwrap();
    let v = verify_json(&home);
    assert_eq!(v["ok"], false, "{v}");
    assert!(v.to_string().contains("final head"), "{v}");
    fs::write(&lines, &original).unwrap();
    assert_eq!(verify_json(&home)["ok"], true);
    // The head: a changed figure breaks its signature.
    let head = epoch_file(&home, 1, "head");
    let text = fs::read_to_string(&head).unwrap();
    let edited = text.replace("lines 6\n", "lines 5\n");
    assert_ne!(edited, text);
    fs::write(&head, edited).unwrap();
    let v = verify_json(&home);
    assert_eq!(v["ok"], false, "{v}");
    assert!(v.to_string().contains("signature"), "{v}");
    fails(&home, &["verify"], 1);
}

#[test]
fn sends_and_pushes_during_an_archive_are_all_kept() {
    let scratch = Scratch::new();
    let (a, b) = (scratch.home("a"), scratch.home("b"));
    ok(&a, &["init"]);
    let invite = ok(&a, &["invite", "--url", "http://127.0.0.1:1"]);
    ok(&b, &["init", "--join", invite.trim()]);
    let na = Node::start(&a, &[]);
    let nb = Node::start(&b, &["--peer", &na.url]);
    crate::util::wait_peer_up(&b, &na.url);
    send(&na, 200, "old");
    wait_for("b to hold a's 200", DEADLINE, || {
        (status(&nb)["messages"] == 200).then_some(())
    });
    // Sends on a, and pushes from b into a, while a archives several times.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let senders: Vec<_> = [
        (na.url_for("/send", &[]), "a"),
        (nb.url_for("/send", &[]), "b"),
    ]
    .into_iter()
    .map(|(url, tag)| {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut sent = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) || sent < 20 {
                let (code, _, body) = crate::util::get(&format!("{url}&msg={tag}-{sent}"));
                assert_eq!(code, 200, "{body}");
                sent += 1;
            }
            sent
        })
    })
    .collect();
    let mut worst = Duration::ZERO;
    for keep in [150, 100, 50] {
        let poll = {
            let url = na.url_for("/status", &[]);
            std::thread::spawn(move || {
                let started = Instant::now();
                assert_eq!(crate::util::get(&url).0, 200);
                started.elapsed()
            })
        };
        ok(&a, &["archive", "--keep-messages", &keep.to_string()]);
        worst = worst.max(poll.join().unwrap());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sent: Vec<u64> = senders.into_iter().map(|t| t.join().unwrap()).collect();
    let total = 200 + sent.iter().sum::<u64>();
    eprintln!("sent during the archives: {sent:?}; slowest /status meanwhile {worst:?}");
    wait_for("both nodes to hold every message", DEADLINE, || {
        (status(&na)["messages"] == total && status(&nb)["digest"] == status(&na)["digest"])
            .then_some(())
    });
    let v = verify_json(&a);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["messages"].as_u64(), Some(total), "{v}");
    assert!(v["epochs"].as_array().unwrap().len() >= 2, "{v}");
}

#[test]
fn a_kill_during_an_archive_leaves_the_old_state_or_the_new_and_loses_nothing() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let node = Node::start(&home, &[]);
    send(&node, 20, "m");
    let digest = status(&node)["digest"].clone();
    assert!(node.stop().success());
    // Stalled once the epoch's files are durable, before the box is replaced.
    let mut cmd = dshare(&home, &["archive", "--keep-messages", "5"]);
    cmd.env("DSHARE_TEST_ARCHIVE_STALL_MS", "60000");
    let mut child = crate::util::Reaped(cmd.spawn().unwrap());
    wait_for("the epoch's head to be written", DEADLINE, || {
        epoch_file(&home, 1, "head").exists().then_some(())
    });
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(
        lines_of(&home.join("box.txt")),
        20,
        "the box is untouched so far"
    );
    let node = Node::start(&home, &[]);
    assert!(node.log().contains("interrupted"), "{}", node.log());
    assert!(
        !epoch_file(&home, 1, "head").exists(),
        "the half-done epoch is undone"
    );
    assert_eq!(status(&node)["digest"], digest);
    assert_eq!(bodies(&home).len(), 20);
    // And a running node killed inside an archive comes back the same way.
    drop(node);
    let node = Node::start_with_env(
        &home,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("DSHARE_TEST_ARCHIVE_STALL_MS", "60000")],
    );
    let url = node.url.clone();
    let token = node.token.clone();
    let archiving = std::thread::spawn(move || {
        crate::util::raw_post(&format!("{url}/archive?keep_messages=5&token={token}"), b"")
    });
    wait_for("the epoch's head to be written", DEADLINE, || {
        epoch_file(&home, 1, "head").exists().then_some(())
    });
    node.kill9();
    let _ = archiving.join();
    let node = Node::start(&home, &[]);
    assert_eq!(status(&node)["digest"], digest);
    assert_eq!(bodies(&home).len(), 20);
    assert_eq!(verify_json(&home)["ok"], true);
}

#[test]
fn retention_by_age_closes_old_messages_on_a_running_node() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let node = Node::start(&home, &["--keep", "2s", "--prune-epochs"]);
    send(&node, 5, "old");
    // The retention thread prunes right after the archive: wait for both.
    let digest = wait_for(
        "retention to close the old messages and --prune-epochs to delete their lines",
        DEADLINE,
        || {
            (epoch_file(&home, 1, "head").exists()
                && lines_of(&home.join("box.txt")) == 0
                && !epoch_file(&home, 1, "txt").exists())
            .then(|| status(&node)["digest"].clone())
        },
    );
    send(&node, 1, "new");
    assert_ne!(status(&node)["digest"], digest);
    let v = verify_json(&home);
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["history"].as_str().unwrap().contains("not present"),
        "{v}"
    );
    drop(node);
    let refused = fails(
        &home,
        &["serve", "--listen", "127.0.0.1:0", "--prune-epochs"],
        2,
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("no retention is set"),
        "{}",
        crate::util::show(&refused)
    );
    let config = ok(&home, &["serve", "--keep", "2s", "--print-config"]);
    assert!(config.contains("keep") && config.contains("2s"), "{config}");
}

#[test]
fn a_late_joiner_gets_what_pruned_peers_hold_and_says_where_each_history_starts() {
    let scratch = Scratch::new();
    let (a, b) = (scratch.home("a"), scratch.home("b"));
    ok(&a, &["init"]);
    let invite = ok(&a, &["invite", "--url", "http://127.0.0.1:1"]);
    ok(&b, &["init", "--join", invite.trim()]);
    let na = Node::start(&a, &[]);
    send(&na, 30, "m");
    ok(&a, &["archive", "--keep-messages", "10", "--prune"]);
    // The pruned node serves what it holds and says where it begins.
    let nb = Node::start(&b, &["--peer", &na.url]);
    wait_for("b to hold what a holds", DEADLINE, || {
        (status(&nb)["digest"] == status(&na)["digest"]).then_some(())
    });
    assert_eq!(bodies(&b).len(), 10, "the 10 messages a still holds");
    assert!(nb.log().contains("from seq 21 on"), "{}", nb.log());
    send(&na, 2, "later");
    wait_for("b to get new messages by push", DEADLINE, || {
        (bodies(&b).len() == 12).then_some(())
    });
    let v = verify_json(&b);
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["starts"][0]["from_seq"], 21, "{v}");
    let human = ok(&b, &["verify"]);
    assert!(human.contains("history from seq 21 on"), "{human}");
    // A restart of the joiner goes on from the recorded start.
    assert!(nb.stop().success());
    let nb = Node::start(&b, &["--peer", &na.url]);
    assert_eq!(status(&nb)["digest"], status(&na)["digest"]);
}

/// A sealed call to `/v1/op` of the node at `url`, its opened answer.
fn peer_call(home: &Path, url: &str, op: &str, value: &serde_json::Value) -> serde_json::Value {
    use dshare::replicate::{answer_aad, request_aad};
    let key = crate::util::read_secret(&home.join("network.key"));
    let ring = dshare::seal::Keyring::new(&dshare::secret::Secret::from_hex(&key).unwrap());
    let path = format!("/v1/{op}");
    let blob = ring.seal(
        &request_aad(&path),
        value.to_string().as_bytes(),
        dshare::time::now_ms(),
    );
    let (status, body) = crate::util::raw_post(&format!("{url}{path}"), &blob);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let opened = ring
        .open(&answer_aad(&blob[4..28]), &body, dshare::time::now_ms())
        .expect("the answer opens");
    serde_json::from_slice(&opened.plaintext).unwrap()
}

#[test]
fn a_pruned_node_says_where_its_history_begins_and_takes_an_old_message_as_a_duplicate() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let node = Node::start(&home, &[]);
    send(&node, 6, "m");
    let first: serde_json::Value =
        crate::util::json_lines(&ok(&home, &["log", "--json", "-n", "6"]))[0].clone();
    ok(&home, &["archive", "--keep-messages", "2", "--prune"]);
    let author = first["author"].clone();
    let range = peer_call(
        &home,
        &node.url,
        "range",
        &serde_json::json!({"author": author, "from": 1, "limit": 10}),
    );
    assert_eq!(range["first"], 5, "{range}");
    let seqs: Vec<u64> = range["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [5, 6], "what it holds, from where it begins");
    // A peer that pushes a message this node retired: nothing to compare it with, so
    // no fork is claimed and nothing is stored.
    let answer = peer_call(
        &home,
        &node.url,
        "push",
        &serde_json::json!({"messages": [first]}),
    );
    assert_eq!(answer["outcomes"][0]["status"], "duplicate", "{answer}");
    let (_, peers) = node.get("/peers", &[]);
    let peers: serde_json::Value = serde_json::from_str(&peers).unwrap();
    assert_eq!(peers["forks"], serde_json::json!([]), "{peers}");
    assert_eq!(status(&node)["messages"], 6);
}

/// Writes a box for measuring an archive with a release build (docs/RELIABILITY.md §8):
/// `DSHARE_MEASURE_BOX=/path/box.txt DSHARE_MEASURE_N=1000000 cargo test --test tests
/// write_a_box_to_measure_archive -- --ignored`, into a home made with `dshare init`.
#[test]
#[ignore = "a measurement helper: writes a large box where it is told"]
fn write_a_box_to_measure_archive() {
    let path = std::env::var("DSHARE_MEASURE_BOX").expect("DSHARE_MEASURE_BOX");
    let n: u64 = std::env::var("DSHARE_MEASURE_N").map_or(100_000, |v| v.parse().unwrap());
    let body = "x".repeat(500);
    let chain = crate::util::write_signed_box(Path::new(&path), n, |_| body.clone());
    fs::write(
        Path::new(&path).with_extension("head"),
        format!("{n:020} {chain}\n"),
    )
    .unwrap();
}

/// What a node answers from its index after an archive, by line numbers of the whole
/// history: the summary, the last 10 in conversation order (page API and `log`), the
/// whole conversation, arrival-order pages from before, at and after where the live
/// box begins, and range pulls of both authors from below and inside what it holds.
fn answers_after_archive(node: &Node, base: u64, authors: &[serde_json::Value]) -> Vec<String> {
    let s = status(node);
    let messages = s["messages"].as_u64().unwrap();
    let mut out = vec![
        s["digest"].to_string(),
        s["head"].to_string(),
        messages.to_string(),
    ];
    let get = |path: &str, params: &[(&str, &str)]| {
        let (code, body) = node.get(path, params);
        assert_eq!(code, 200, "{path} {params:?}: {body}");
        body
    };
    out.push(get("/log", &[("n", "10")]));
    out.push(ok(&node.home, &["log", "--json", "-n", "10"]));
    out.push(ok(&node.home, &["log", "--json", "-n", "1000000"]));
    for at in [0, base - 1, base, base + 7, messages - 7, messages] {
        out.push(get("/log", &[("since", &at.to_string()), ("n", "300")]));
    }
    for author in authors {
        for from in [1, base / 2, base + 3, messages - 2] {
            let range = peer_call(
                &node.home,
                &node.url,
                "range",
                &serde_json::json!({"author": author, "from": from, "limit": 40}),
            );
            out.push(range.to_string());
        }
    }
    out
}

/// After an archive the byte offsets and line numbers of the kept lines change: the
/// running node's index is rebuilt for the live box inside the archive, and it answers
/// exactly as a node that read the live box from scratch, and as itself restarted
/// from the checkpoint written after the archive. The live box keeps more lines than
/// the overlay holds, so the rebuilt index has runs on disk too.
#[test]
fn after_an_archive_a_node_answers_as_one_that_read_the_live_box_from_scratch() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    ok(&home, &["init"]);
    let n = 40_000u64;
    let chain = crate::util::write_signed_box(&home.join("box.txt"), n, |s| format!("old {s}"));
    fs::write(home.join("box.head"), format!("{n:020} {chain}\n")).unwrap();
    let node = Node::start(&home, &[]);
    send(&node, 5, "own");
    let authors: Vec<serde_json::Value> = {
        let first = crate::util::json_lines(&ok(&home, &["log", "--json", "-n", "1000000"]));
        let mut a: Vec<serde_json::Value> = first.iter().map(|m| m["author"].clone()).collect();
        a.dedup();
        a.sort_by_key(|v| v.to_string());
        a.dedup();
        a
    };
    assert_eq!(authors.len(), 2);
    let before = status(&node);
    let out = ok(&home, &["--json", "archive", "--keep-messages", "20000"]);
    let answer: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let base = answer["last_line"].as_u64().unwrap();
    assert_eq!(base, n + 5 - 20_000, "{out}");
    let after = status(&node);
    assert_eq!(
        (&after["digest"], &after["head"], &after["messages"]),
        (&before["digest"], &before["head"], &before["messages"])
    );
    // Commits go on through the new index (its heads, spines and line numbers).
    send(&node, 3, "after");
    let served = answers_after_archive(&node, base, &authors);
    assert!(served[5].contains("after 002"), "{}", served[5]);
    // The line numbers count the whole history: the last 7 lines are the last 7
    // arrivals, and a page asked from before the live box starts where it begins and
    // says where it ends.
    let total = n + 5 + 3;
    let (_, _, last7) =
        crate::util::get(&node.url_for("/log", &[("since", &(total - 7).to_string())]));
    let last7 = crate::util::json_lines(&last7);
    assert_eq!(last7.len(), 7);
    assert_eq!(last7[6]["body"], "after 002");
    assert_eq!(last7[0]["body"], "own 001");
    let (_, headers, page) =
        crate::util::get(&node.url_for("/log", &[("since", "0"), ("n", "300")]));
    let page = crate::util::json_lines(&page);
    assert_eq!(page[0]["seq"], base + 1, "the first line of the live box");
    assert!(
        headers
            .to_lowercase()
            .contains(&format!("x-dshare-next: {}", base + 300)),
        "{headers}"
    );
    let pulled = peer_call(
        &home,
        &node.url,
        "range",
        &serde_json::json!({"author": page[0]["author"], "from": 1, "limit": 5}),
    );
    assert_eq!(pulled["first"], base + 1, "{pulled}");
    assert_eq!(pulled["messages"][0]["seq"], base + 1, "{pulled}");
    assert!(node.stop().success());

    // Restarted from the checkpoint written after the archive: nothing re-read.
    let node = Node::start(&home, &[]);
    let log = node.log();
    assert!(
        log.contains("read 0 lines after the checkpoint"),
        "the checkpoint of the live box is used:\n{log}"
    );
    assert_eq!(answers_after_archive(&node, base, &authors), served);
    assert!(node.stop().success());

    // Without the index files, the live box read from scratch.
    for entry in fs::read_dir(&home).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name == "box.index" || name == "box.checkpoint" || name.starts_with("box.order-") {
            fs::remove_file(&path).unwrap();
        }
    }
    let node = Node::start(&home, &[]);
    let log = node.log();
    assert!(log.contains("rebuilt its index"), "{log}");
    assert_eq!(answers_after_archive(&node, base, &authors), served);
    assert!(node.stop().success());
    assert_eq!(verify_json(&home)["ok"], true);
}
