//! Attacks on the box and its index: messages that sort first, an unreadable head file.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use dshare::chain;
use dshare::identity::Identity;
use dshare::mbox::encode_line;
use dshare::message::{Draft, Message};

use crate::util::{Node, Scratch, json_lines, ok};

/// `messages` as a box file, in this order, each line chained to the one before.
fn box_text(messages: &[&Message]) -> String {
    let mut text = String::new();
    let mut head = chain::GENESIS;
    for m in messages {
        head = chain::step(&head, &m.id);
        text.push_str(&encode_line(&head, m));
        text.push('\n');
    }
    text
}

/// A home holding `text` as its box, not yet served.
fn home_with_box(s: &Scratch, name: &str, text: &str) -> std::path::PathBuf {
    let home = s.home(name);
    ok(&home, &["init"]);
    fs::write(home.join("box.txt"), text).unwrap();
    home
}

fn timed_start(home: &Path) -> (Node, Duration) {
    let started = Instant::now();
    let node = Node::start(home, &[]);
    (node, started.elapsed())
}

/// Item 7. Any member may start at clock 1, so every message of a fresh author sorts
/// before everything held. Arriving newest-first, each one used to be inserted at the
/// front of one big sorted list, moving all the others: start-up on such a box was
/// quadratic. The same messages in the opposite order (each sorts last) are the yardstick.
#[test]
fn a_start_up_on_lines_that_each_sort_first_takes_about_as_long_as_on_lines_that_sort_last() {
    const MESSAGES: usize = 40_000;
    let mut messages: Vec<Message> = (0..MESSAGES)
        .map(|i| {
            let author = Identity::generate();
            let draft = Draft {
                author: author.author(),
                seq: 1,
                prev: None,
                clock: 1,
                ts: 1_700_000_000_000 + i as u64,
                body: "early",
            };
            Message::sign(&draft, &author)
        })
        .collect();
    // Conversation order for equal clocks is by author.
    messages.sort_by_key(|m| m.author);
    let ascending: Vec<&Message> = messages.iter().collect();
    let descending: Vec<&Message> = messages.iter().rev().collect();
    let s = Scratch::new();
    let last_home = home_with_box(&s, "sorts-last", &box_text(&ascending));
    let first_home = home_with_box(&s, "sorts-first", &box_text(&descending));

    let (last_node, sorts_last) = timed_start(&last_home);
    let (first_node, sorts_first) = timed_start(&first_home);
    eprintln!(
        "start-up on {MESSAGES} lines: {sorts_last:.2?} when each sorts last, {sorts_first:.2?} when each sorts first"
    );
    assert!(
        sorts_first < sorts_last * 3 + Duration::from_secs(2),
        "a box whose lines sort first started in {sorts_first:.2?}, the same lines sorting last in {sorts_last:.2?}"
    );
    // Both nodes hold the same messages: they show the same conversation.
    let shown = |node: &Node| -> Vec<String> {
        json_lines(&ok(&node.home, &["log", "--json", "-n", "1000"]))
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let expected: Vec<String> = ascending[MESSAGES - 1000..]
        .iter()
        .map(|m| m.id.to_hex())
        .collect();
    assert_eq!(shown(&first_node), expected);
    assert_eq!(shown(&last_node), expected);
}

/// An address on loopback that was free a moment ago, so a node can come back on it.
fn free_addr() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn serve_on(home: &Path, addr: &str) -> Node {
    Node::start_with(home, &["serve", "--listen", addr])
}

/// The seqs and bodies of `author`'s messages in the box of `home`, in file order.
fn own_messages(home: &Path, author: &str) -> Vec<(u64, String)> {
    crate::util::box_lines(home)
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|m| m["author"] == author)
        .map(|m| {
            (
                m["seq"].as_u64().unwrap(),
                m["body"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// Item 16. The last line of a's box is cut at a line boundary and its head file is
/// overwritten with garbage, so nothing records how long the box was. `verify` used to
/// say ok, and the node signed a new message at the lost seq: a fork of its own history,
/// which its peers refuse for ever. Now `verify` fails and names the head file, and the
/// node holds new sends back until a peer has sent back what was lost.
#[test]
fn an_unreadable_head_file_with_a_cut_box_fails_verify_and_the_node_signs_nothing_until_a_peer_answers()
 {
    let s = Scratch::new();
    let (a_home, b_home) = (s.home("a"), s.home("b"));
    let b_addr = free_addr();
    ok(&b_home, &["init"]);
    let b = serve_on(&b_home, &b_addr);
    let invite = ok(&b_home, &["invite"]).trim().to_string();
    ok(&a_home, &["init", "--join", &invite]);
    let a = Node::start(&a_home, &[]);
    crate::util::wait_peer_up(&a_home, &b.url);
    ok(&a_home, &["send", "one"]);
    ok(&a_home, &["send", "two"]);
    crate::util::wait_for("b to hold both messages", crate::util::DEADLINE, || {
        (crate::util::box_lines(&b_home).len() == 2).then_some(())
    });
    let a_addr = a.url.trim_start_matches("http://").to_string();
    let me = json_lines(&ok(&a_home, &["log", "--json"]))[0]["author"]
        .as_str()
        .unwrap()
        .to_string();
    a.kill9();
    b.kill9();

    let box_path = a_home.join("box.txt");
    let mut lines = crate::util::box_lines(&a_home);
    lines.pop();
    fs::write(
        &box_path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
    let garbage = "not a head record, and longer than one: ".repeat(4);
    fs::write(a_home.join("box.head"), &garbage).unwrap();

    let out = crate::util::fails(&a_home, &["verify"], 1);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("box.head is unreadable"),
        "{}",
        crate::util::show(&out)
    );
    assert!(said.contains("cannot be checked"), "{said}");

    // a comes back alone: it must not sign seq 2 again.
    let a = serve_on(&a_home, &a_addr);
    assert!(a.log().contains("unreadable"), "{}", a.log());
    let (status, body) = a.get("/send", &[("msg", "too early")]);
    assert_eq!(status, 503, "{body}");
    assert_eq!(own_messages(&a_home, &me), [(1, "one".to_string())]);
    let aside: Vec<_> = fs::read_dir(&a_home)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("box.head.unreadable-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read_to_string(a_home.join(&aside[0])).unwrap(), garbage);

    // b comes back: a fetches its own seq 2 from it, then signs seq 3.
    let b = serve_on(&b_home, &b_addr);
    let refused_since = Instant::now();
    crate::util::wait_for("a to accept sends again", crate::util::DEADLINE, || {
        let (status, body) = a.get("/send", &[("msg", "three")]);
        match status {
            200 => Some(()),
            503 => None,
            _ => panic!("{status} {body}"),
        }
    });
    eprintln!(
        "a refused sends until b was back, then accepted one {:.1?} later",
        refused_since.elapsed()
    );
    let expected: Vec<(u64, String)> = [(1, "one"), (2, "two"), (3, "three")]
        .into_iter()
        .map(|(seq, body)| (seq, body.to_string()))
        .collect();
    assert_eq!(own_messages(&a_home, &me), expected);
    crate::util::wait_for("b to hold a's third message", crate::util::DEADLINE, || {
        (own_messages(&b_home, &me).len() == 3).then_some(())
    });
    let (_, peers) = b.get("/peers", &[]);
    let peers: serde_json::Value = serde_json::from_str(&peers).unwrap();
    assert_eq!(peers["forks"], serde_json::json!([]), "{peers}");
    ok(&a_home, &["verify"]);
}
