//! The index on disk (issue 14): a node's memory does not grow with its box, its
//! answers in conversation order, arrival order and by author are those of a node that
//! read the box from scratch, a damaged, missing, stale or foreign index is rebuilt,
//! and forks of old seqs are still caught.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dshare::identity::Identity;
use dshare::message::{Draft, Message};
use dshare::replicate::{answer_aad, request_aad};
use dshare::seal::Keyring;
use dshare::secret::Secret;
use serde_json::{Value, json};

use crate::util::{Node, Scratch, ok, read_secret, wait_for};

/// A box of `n` messages by one author (clocks 1…n), with its head file, in a new home.
fn home_with_generated_box(s: &Scratch, name: &str, n: u64) -> PathBuf {
    let home = s.home(name);
    ok(&home, &["init"]);
    let chain =
        crate::util::write_signed_box(&home.join("box.txt"), n, |s| format!("generated {s}"));
    fs::write(home.join("box.head"), format!("{n:020} {chain}\n")).unwrap();
    home
}

/// The resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Starts the node and checks its log says how it read the box.
fn start_saying(home: &Path, said: &str) -> Node {
    let node = Node::start(home, &[]);
    let log = node.log();
    assert!(log.contains(said), "expected {said:?} in the log:\n{log}");
    node
}

/// The files of the index beside a home's box.
fn index_files(home: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(home)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name == "box.index" || name.starts_with("box.order-")
        })
        .collect();
    files.sort();
    files
}

/// GETs a client-API path, which must answer 200 (a chunked answer comes decoded).
fn get_ok(node: &Node, path: &str, params: &[(&str, &str)]) -> String {
    let (status, _, body) = crate::util::get(&node.url_for(path, params));
    assert_eq!(status, 200, "{path} {params:?}: {body}");
    body
}

/// Everything a node answers from its index: the summary, the last 10 in
/// conversation order (page API and `log`), arrival-order pages from three places,
/// and the whole conversation.
#[derive(Debug, PartialEq, Eq)]
struct Answers {
    digest: String,
    head: String,
    messages: u64,
    last_10: String,
    log_10: String,
    since: Vec<String>,
    whole: String,
}

fn answers(node: &Node) -> Answers {
    let status: Value = serde_json::from_str(&get_ok(node, "/status", &[])).unwrap();
    let messages = status["messages"].as_u64().unwrap();
    let since = [0, messages / 2, messages.saturating_sub(7)]
        .iter()
        .map(|at| get_ok(node, "/log", &[("since", &at.to_string()), ("n", "300")]))
        .collect();
    Answers {
        digest: status["digest"].as_str().unwrap().to_string(),
        head: status["head"].as_str().unwrap().to_string(),
        messages,
        last_10: get_ok(node, "/log", &[("n", "10")]),
        log_10: ok(&node.home, &["log", "--json", "-n", "10"]),
        since,
        whole: ok(&node.home, &["log", "--json", "-n", "10000000"]),
    }
}

/// A member's view of a node: its network key, to push messages by hand.
struct Member {
    url: String,
    keyring: Keyring,
}

impl Member {
    fn of(node: &Node) -> Member {
        let key = Secret::from_hex(&read_secret(&node.home.join("network.key"))).unwrap();
        Member {
            url: node.url.clone(),
            keyring: Keyring::new(&key),
        }
    }

    /// Pushes `messages` (in pages of 200); returns each outcome's status.
    fn push(&self, messages: &[Message]) -> Vec<String> {
        let mut statuses = Vec::new();
        for page in messages.chunks(200) {
            let value = json!({ "messages": page });
            let blob = self.keyring.seal(
                &request_aad("/v1/push"),
                value.to_string().as_bytes(),
                dshare::time::now_ms(),
            );
            let (status, body) = crate::util::raw_post(&format!("{}/v1/push", self.url), &blob);
            assert_eq!(status, 200, "push answered {status}");
            let opened = self
                .keyring
                .open(&answer_aad(&blob[4..28]), &body, dshare::time::now_ms())
                .unwrap();
            let answer: Value = serde_json::from_slice(&opened.plaintext).unwrap();
            for o in answer["outcomes"].as_array().unwrap() {
                statuses.push(o["status"].as_str().unwrap().to_string());
            }
        }
        statuses
    }
}

/// `count` messages of `key` from seq `from` on, continuing `prev`, at clocks
/// `clock(seq)`.
fn chain_of(
    key: &Identity,
    from: u64,
    count: u64,
    prev: Option<&Message>,
    clock: impl Fn(u64) -> u64,
    tag: &str,
) -> Vec<Message> {
    let mut prev = prev.map(|m| m.id);
    (from..from + count)
        .map(|seq| {
            let body = format!("{tag} {seq}");
            let m = Message::sign(
                &Draft {
                    author: key.author(),
                    seq,
                    prev,
                    clock: clock(seq),
                    ts: dshare::time::now_ms(),
                    body: &body,
                },
                key,
            );
            prev = Some(m.id);
            m
        })
        .collect()
}

/// A box larger than the in-memory overlay (so the conversation order is in runs on
/// disk), with late messages that sort into its middle and its front: 20,000 generated
/// lines (clocks 1…20,000), an author pushed at clocks 5,000…5,149, a new author at
/// clock 1…40, and the node's own sends (clock 20,001 on).
fn mixed_home(s: &Scratch, name: &str) -> PathBuf {
    let home = home_with_generated_box(s, name, 20_000);
    let node = Node::start(&home, &[]);
    let member = Member::of(&node);
    let middle = chain_of(&Identity::generate(), 1, 150, None, |s| 4_999 + s, "middle");
    let front = chain_of(&Identity::generate(), 1, 40, None, |s| s, "front");
    for m in [&middle, &front] {
        assert!(member.push(m).iter().all(|o| o == "stored"));
    }
    for i in 0..5 {
        get_ok(&node, "/send", &[("msg", &format!("own {i}"))]);
    }
    assert!(node.stop().success());
    home
}

/// Starts a node with no checkpoint and no index: it reads the box from scratch.
fn from_scratch(home: &Path) -> Node {
    let _ = fs::remove_file(home.join("box.checkpoint"));
    for f in index_files(home) {
        fs::remove_file(f).unwrap();
    }
    start_saying(home, "(no usable checkpoint)")
}

/// The figure the issue asks for: the same node restarted with 1,000 and with 100,000
/// messages. Before the index on disk, its memory grew about 72 bytes a message (the
/// ids, clocks, offsets and both orders in memory); now it holds O(authors).
#[test]
fn a_node_restarted_with_100_000_messages_needs_about_the_memory_of_one_with_1_000() {
    let s = Scratch::new();
    let mut figures = Vec::new();
    for n in [1_000u64, 100_000] {
        let home = home_with_generated_box(&s, &format!("n{n}"), n);
        let node = Node::start(&home, &[]);
        let first = rss_kib(node.pid());
        assert!(node.stop().success());
        let node = start_saying(&home, "after the checkpoint at line");
        // A few answers, so the index is used as a reader would use it.
        let _ = answers_light(&node, n);
        let restarted = rss_kib(node.pid());
        assert!(node.stop().success());
        eprintln!(
            "{n} messages: RSS {first} KiB after reading the box, {restarted} KiB after a restart"
        );
        figures.push((first, restarted));
    }
    let grew = figures[1].1 as i64 - figures[0].1 as i64;
    eprintln!("a restart holding 100,000 messages instead of 1,000: {grew:+} KiB");
    assert!(
        grew < 4 * 1024,
        "RSS after a restart grew {grew} KiB from 1,000 to 100,000 messages: {figures:?}"
    );
}

/// The answers a restarted node is asked for in the RSS test: the last ten, a page by
/// arrival, and one author's range.
fn answers_light(node: &Node, n: u64) -> (String, String) {
    let last = get_ok(node, "/log", &[("n", "10")]);
    assert_eq!(crate::util::json_lines(&last).len(), 10);
    let since = get_ok(
        node,
        "/log",
        &[("since", &(n / 2).to_string()), ("n", "100")],
    );
    let seqs: Vec<u64> = crate::util::json_lines(&since)
        .iter()
        .map(|m| m["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs.len(), 100, "{n}: {seqs:?}");
    (last, since)
}

#[test]
fn answers_are_those_of_a_node_that_read_the_box_from_scratch_and_of_log_without_a_node() {
    let s = Scratch::new();
    let home = mixed_home(&s, "a");
    let node = start_saying(&home, "read 0 lines after the checkpoint");
    let indexed = answers(&node);
    assert_eq!(indexed.messages, 20_195);
    assert!(
        index_files(&home).len() >= 2,
        "runs on disk: {:?}",
        index_files(&home)
    );
    // The front author's clock-1 message is in the conversation's first place.
    let whole: Vec<Value> = crate::util::json_lines(&indexed.whole);
    assert_eq!(whole.len(), 20_195);
    assert_eq!(whole[0]["clock"], 1);
    assert!(
        whole
            .windows(2)
            .all(|w| w[0]["clock"].as_u64() <= w[1]["clock"].as_u64())
    );
    // The last 10: five generated lines, then the node's own five (clocks 20,001…).
    let last: Vec<Value> = crate::util::json_lines(&indexed.last_10);
    assert_eq!(last.len(), 10);
    assert!(
        last[5..]
            .iter()
            .all(|m| m["body"].as_str().unwrap().starts_with("own"))
    );
    assert!(node.stop().success());

    // `dshare log` without a node reads the box itself.
    assert_eq!(ok(&home, &["log", "--json", "-n", "10"]), indexed.log_10);
    assert_eq!(
        ok(&home, &["log", "--json", "-n", "10000000"]),
        indexed.whole
    );

    let node = from_scratch(&home);
    assert_eq!(answers(&node), indexed);
    drop(node);
}

/// A fresh node catches up on everything through range pulls answered from the index
/// on disk, and ends with the same conversation.
#[test]
fn a_fresh_node_catches_up_through_range_pulls_from_the_index_on_disk() {
    let s = Scratch::new();
    let home = mixed_home(&s, "a");
    let node = start_saying(&home, "read 0 lines after the checkpoint");
    let held = answers(&node);
    let invite = ok(&home, &["invite"]).trim().to_string();
    let fresh_home = s.home("fresh");
    ok(&fresh_home, &["init", "--join", &invite]);
    let started = std::time::Instant::now();
    let fresh = Node::start(&fresh_home, &[]);
    wait_for(
        "the fresh node to catch up",
        Duration::from_secs(240),
        || {
            let status: Value = serde_json::from_str(&get_ok(&fresh, "/status", &[])).unwrap();
            (status["digest"] == held.digest.as_str()).then_some(())
        },
    );
    eprintln!(
        "a fresh node caught up on {} messages in {:?}",
        held.messages,
        started.elapsed()
    );
    assert_eq!(
        ok(&fresh_home, &["log", "--json", "-n", "10000000"]),
        held.whole
    );
    assert_eq!(get_ok(&fresh, "/log", &[("n", "10")]), held.last_10);
    ok(&fresh_home, &["verify"]);
}

/// Starts on an index that must be refused: the node says why, reads the box whole,
/// answers as before, and the next start uses the rebuilt index.
fn refused_and_rebuilt(home: &Path, why: &str, reference: &Answers) {
    let node = start_saying(home, "was not used");
    let log = node.log();
    assert!(log.contains(why), "expected {why:?} in the log:\n{log}");
    assert!(log.contains("(no usable checkpoint)"), "{log}");
    assert_eq!(&answers(&node), reference);
    assert!(node.stop().success());
    let node = start_saying(home, "read 0 lines after the checkpoint");
    assert_eq!(&answers(&node), reference);
    assert!(node.stop().success());
}

#[test]
fn a_missing_stale_foreign_or_damaged_index_is_detected_and_rebuilt() {
    let s = Scratch::new();
    let home = mixed_home(&s, "a");
    let index = home.join("box.index");
    let stale = fs::read(&index).unwrap();
    let node = Node::start(&home, &[]);
    for i in 0..3 {
        get_ok(&node, "/send", &[("msg", &format!("later {i}"))]);
    }
    let reference = answers(&node);
    assert!(node.stop().success());

    fs::remove_file(&index).unwrap();
    refused_and_rebuilt(&home, "box.index holds 0 records", &reference);

    // The index as it was three lines ago: its records at the heads are not the heads.
    let good = fs::read(&index).unwrap();
    fs::write(&index, &stale).unwrap();
    refused_and_rebuilt(&home, "the index on disk does not match", &reference);

    // A run of the conversation order gone, or cut short.
    let run = index_files(&home)
        .into_iter()
        .find(|p| p.to_string_lossy().contains("box.order-"))
        .expect("a run");
    fs::remove_file(&run).unwrap();
    refused_and_rebuilt(&home, "cannot open", &reference);
    let bytes = fs::read(&run).unwrap();
    fs::write(&run, &bytes[..bytes.len() - 20]).unwrap();
    refused_and_rebuilt(&home, "not one key for each", &reference);

    // Another box's index, as long as this one's.
    let other = mixed_home(&s, "b");
    fs::copy(other.join("box.index"), &index).unwrap();
    refused_and_rebuilt(&home, "the index on disk does not match", &reference);
    assert_eq!(fs::read(&index).unwrap(), good, "rebuilt as it was");

    // A record in the middle changed: not seen at start (only heads and the anchor are
    // read), caught by the first read that reaches it, never served; the next start
    // rebuilds the index.
    let mut damaged = good.clone();
    let line = 10_000usize;
    damaged[(line - 1) * 80 + 48] ^= 0xff;
    fs::write(&index, &damaged).unwrap();
    let node = start_saying(&home, "read 0 lines after the checkpoint");
    let (status, body) = node.get("/log", &[("since", &(line - 1).to_string()), ("n", "1")]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("damaged"), "{body}");
    let log = node.log();
    assert!(log.contains("the index of"), "{log}");
    assert!(node.stop().success());
    let node = start_saying(&home, "(no usable checkpoint)");
    assert_eq!(answers(&node), reference);
    assert!(node.stop().success());

    // A record claiming a 4 GiB line: refused as damage before anything is allocated
    // for it (the node stays small and answers).
    let mut huge = good.clone();
    let at = (12_000 - 1) * 80 + 8;
    huge[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&index, &huge).unwrap();
    let node = start_saying(&home, "read 0 lines after the checkpoint");
    let (status, body) = node.get("/log", &[("since", "11999"), ("n", "1")]);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("4294967295-byte line"), "{body}");
    assert!(
        rss_kib(node.pid()) < 200 * 1024,
        "{} KiB",
        rss_kib(node.pid())
    );
    assert_eq!(node.get("/status", &[]).0, 200);
}

#[test]
fn kill_9_with_lines_after_the_index_anchor_reads_only_them_and_keeps_every_ack() {
    let s = Scratch::new();
    let home = mixed_home(&s, "a");
    let node = start_saying(&home, "read 0 lines after the checkpoint at line 20195");
    let acked: Vec<String> = (0..30)
        .map(|i| {
            get_ok(&node, "/send", &[("msg", &format!("after {i}"))])
                .trim()
                .to_string()
        })
        .collect();
    let home = node.kill9();
    let node = start_saying(&home, "read 30 lines after the checkpoint at line 20195");
    let after_kill = answers(&node);
    for id in &acked {
        assert!(
            after_kill.whole.contains(id.as_str()),
            "acknowledged {id} lost"
        );
    }
    drop(node);
    let node = from_scratch(&home);
    assert_eq!(answers(&node), after_kill);
    drop(node);
    ok(&home, &["verify"]);
}

/// Forks and duplicates of an old seq are judged against the index on disk (only the
/// heads are in memory), before and after a restart.
#[test]
fn a_fork_of_an_old_seq_is_still_detected_and_a_duplicate_still_recognised() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let node = Node::start(&home, &[]);
    let key = Identity::generate();
    let history = chain_of(&key, 1, 3_000, None, |s| s, "real");
    let member = Member::of(&node);
    assert!(member.push(&history).iter().all(|o| o == "stored"));
    assert!(node.stop().success());
    let node = start_saying(&home, "read 0 lines after the checkpoint at line 3000");
    let member = Member::of(&node);
    let old = &history[1_233];
    let fork = chain_of(&key, old.seq, 1, Some(&history[1_232]), |s| s, "forged");
    assert_eq!(member.push(&fork), ["fork"]);
    assert_eq!(member.push(std::slice::from_ref(old)), ["duplicate"]);
    assert_eq!(member.push(&history[..3]), ["duplicate"; 3]);
    let peers: Value = serde_json::from_str(&get_ok(&node, "/peers", &[])).unwrap();
    let forks = peers["forks"].as_array().unwrap();
    assert_eq!(forks.len(), 1, "{peers}");
    assert_eq!(forks[0]["offered"], fork[0].id.to_hex());
    assert_eq!(forks[0]["held"], old.id.to_hex());
}
