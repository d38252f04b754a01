//! The start-up checkpoint: a node starts from it and reads only the lines after it,
//! refuses (and rebuilds) one that is damaged, stale or from another box, and `verify`
//! still audits every line.

use std::fs;
use std::path::Path;

use crate::util::{Node, Scratch, fails, ok};

/// Sends `n` messages through the node; returns their ids, acknowledged.
fn send(node: &Node, n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| {
            let (status, body) = node.get("/send", &[("msg", &format!("{tag} {i:03}"))]);
            assert_eq!(status, 200, "{body}");
            body.trim().to_string()
        })
        .collect()
}

/// What the node answers about its box: the digest, head and count from /status,
/// and the whole log.
fn answers(node: &Node) -> (String, String, u64, String) {
    let (status, body) = node.get("/status", &[]);
    assert_eq!(status, 200, "{body}");
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    let log = ok(&node.home, &["log", "--json", "-n", "1000000"]);
    (
        s["digest"].as_str().unwrap().to_string(),
        s["head"].as_str().unwrap().to_string(),
        s["messages"].as_u64().unwrap(),
        log,
    )
}

fn checkpoint(home: &Path) -> std::path::PathBuf {
    home.join("box.checkpoint")
}

/// A node with `n` messages, stopped cleanly (so it wrote its checkpoint).
fn stopped_with(home: &Path, n: usize) {
    let node = Node::start(home, &[]);
    send(&node, n, "m");
    assert!(node.stop().success());
    assert!(
        checkpoint(home).is_file(),
        "a clean stop writes the checkpoint"
    );
}

/// Starts the node, checks its log says how it read the box, and returns it.
fn start_saying(home: &Path, said: &str) -> Node {
    let node = Node::start(home, &[]);
    let log = node.log();
    assert!(log.contains(said), "expected {said:?} in the log:\n{log}");
    node
}

#[test]
fn a_restart_reads_only_the_lines_after_the_checkpoint_and_then_verifies() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    send(&node, 12, "m");
    let before = answers(&node);
    assert!(node.stop().success());
    let node = start_saying(&home, "read 0 lines after the checkpoint at line 12");
    assert_eq!(answers(&node), before);
    // And it goes on writing from the checkpoint's state.
    send(&node, 3, "more");
    assert!(node.stop().success());
    let node = start_saying(&home, "read 0 lines after the checkpoint at line 15");
    assert_eq!(answers(&node).2, 15);
    ok(&home, &["verify"]);
}

#[test]
fn kill_9_with_lines_after_the_checkpoint_reads_only_the_tail_and_keeps_every_ack() {
    let s = Scratch::new();
    let home = s.home("a");
    stopped_with(&home, 10);
    let node = Node::start(&home, &[]);
    let acked = send(&node, 7, "after");
    let home = node.kill9();
    let node = start_saying(&home, "read 7 lines after the checkpoint at line 10");
    let (_, _, messages, log) = answers(&node);
    assert_eq!(messages, 17);
    for id in &acked {
        assert!(log.contains(id.as_str()), "acknowledged {id} lost");
    }
    ok(&home, &["verify"]);
}

/// The answers of a node that read its whole box, with no checkpoint at all.
fn rebuilt_from_scratch(home: &Path) -> (String, String, u64, String) {
    fs::remove_file(checkpoint(home)).unwrap();
    let node = start_saying(home, "(no usable checkpoint)");
    let answers = answers(&node);
    assert!(node.stop().success());
    answers
}

/// Starts on a checkpoint that must be refused: the node says why, answers as a node
/// that read everything, and writes a good checkpoint in its place.
fn refused_and_rebuilt(home: &Path, why: &str, reference: &(String, String, u64, String)) {
    let node = start_saying(home, "was not used");
    let log = node.log();
    assert!(log.contains(why), "expected {why:?} in the log:\n{log}");
    assert!(log.contains("(no usable checkpoint)"), "{log}");
    assert_eq!(&answers(&node), reference);
    assert!(node.stop().success());
    let lines = reference.2;
    let node = start_saying(
        home,
        &format!("read 0 lines after the checkpoint at line {lines}"),
    );
    assert_eq!(&answers(&node), reference);
}

#[test]
fn a_damaged_checkpoint_is_refused_and_rebuilt() {
    let s = Scratch::new();
    let home = s.home("a");
    stopped_with(&home, 10);
    let good = fs::read(checkpoint(&home)).unwrap();
    let reference = rebuilt_from_scratch(&home);
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    fs::write(checkpoint(&home), &flipped).unwrap();
    refused_and_rebuilt(&home, "SHA-256 does not match", &reference);
    fs::write(checkpoint(&home), &good[..good.len() - 40]).unwrap();
    refused_and_rebuilt(&home, "SHA-256 does not match", &reference);
    fs::write(checkpoint(&home), vec![7u8; 50 << 20]).unwrap();
    refused_and_rebuilt(&home, "more than any checkpoint", &reference);
}

#[test]
fn a_stale_checkpoint_of_a_longer_box_is_refused_and_rebuilt() {
    let s = Scratch::new();
    let home = s.home("a");
    stopped_with(&home, 10);
    let (old_box, old_head) = (
        fs::read(home.join("box.txt")).unwrap(),
        fs::read(home.join("box.head")).unwrap(),
    );
    let node = Node::start(&home, &[]);
    send(&node, 3, "later");
    assert!(node.stop().success());
    // The box restored from a copy taken before the last three messages; the
    // checkpoint left as it was (taken at line 13).
    let later = fs::read(checkpoint(&home)).unwrap();
    fs::write(home.join("box.txt"), &old_box).unwrap();
    fs::write(home.join("box.head"), &old_head).unwrap();
    let reference = rebuilt_from_scratch(&home);
    assert_eq!(reference.2, 10);
    fs::write(checkpoint(&home), &later).unwrap();
    refused_and_rebuilt(&home, "taken at line 13", &reference);
}

#[test]
fn a_checkpoint_from_another_box_is_refused_and_rebuilt() {
    let s = Scratch::new();
    let (home, other) = (s.home("a"), s.home("b"));
    stopped_with(&home, 10);
    stopped_with(&other, 6);
    let reference = rebuilt_from_scratch(&home);
    fs::copy(checkpoint(&other), checkpoint(&home)).unwrap();
    refused_and_rebuilt(&home, "does not carry the chain hash", &reference);
}

#[test]
fn a_box_edited_before_the_checkpoint_is_caught_by_verify_and_doctor_says_when() {
    let s = Scratch::new();
    let home = s.home("a");
    stopped_with(&home, 10);
    // The same number of bytes, so every offset still holds: start-up cannot tell.
    let text = fs::read_to_string(home.join("box.txt")).unwrap();
    let edited = text.replacen("\"body\":\"m 002\"", "\"body\":\"M 002\"", 1);
    assert_ne!(text, edited, "the line to edit was not found");
    fs::write(home.join("box.txt"), edited).unwrap();
    let node = start_saying(&home, "read 0 lines after the checkpoint at line 10");
    let doctor = crate::util::run(&home, &["doctor"]);
    let said = String::from_utf8_lossy(&doctor.stdout).to_string();
    assert!(said.contains("no full verify recorded"), "{said}");
    let out = fails(&home, &["verify"], 1);
    let verdict = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(verdict.contains("line 3"), "{verdict}");
    let doctor = crate::util::run(&home, &["doctor"]);
    let said = String::from_utf8_lossy(&doctor.stdout).to_string();
    assert!(
        said.contains("last full verify") && said.contains("failed"),
        "{said}"
    );
    drop(node);
}

/// A box of `n` messages by one author, with its head file, written into `home`.
fn write_generated_box(home: &Path, n: u64) {
    let chain =
        crate::util::write_signed_box(&home.join("box.txt"), n, |s| format!("generated {s}"));
    fs::write(home.join("box.head"), format!("{n:020} {chain}\n")).unwrap();
}

/// The figure behind the checkpoint: time to the first answer on a box of 100,000
/// messages, read whole and from the checkpoint. A measurement, not a test:
/// `cargo test --test tests start_up_with_and_without -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: writes a box of 100,000 messages"]
fn start_up_with_and_without_a_checkpoint_on_100_000_messages() {
    let s = Scratch::new();
    let home = s.home("big");
    ok(&home, &["init"]);
    write_generated_box(&home, 100_000);
    let timed = |what: &str| {
        let started = std::time::Instant::now();
        let node = Node::start(&home, &[]);
        let took = started.elapsed();
        let said: Vec<String> = node
            .log()
            .lines()
            .filter(|l| l.contains("lines"))
            .map(str::to_string)
            .collect();
        eprintln!("{what}: first answer after {took:?}; {said:?}");
        assert!(node.stop().success());
    };
    timed("without a checkpoint");
    let _ = fs::remove_file(checkpoint(&home));
    timed("without a checkpoint, again");
    eprintln!(
        "checkpoint: {} bytes",
        fs::metadata(checkpoint(&home)).unwrap().len()
    );
    timed("from the checkpoint");
    timed("from the checkpoint, again");
}
