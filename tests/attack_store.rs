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
