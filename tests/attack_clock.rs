//! The clock and fork rules under attack and under honest faults: a member poisoning
//! clocks, a node whose clock ran fast, a box already holding a clock over the cap,
//! and messages met twice in one commit, all against real `dshare serve` processes.

use std::path::Path;
use std::time::Duration;

use dshare::identity::Identity;
use dshare::message::{Draft, Message};
use dshare::replicate::{answer_aad, request_aad};
use dshare::seal::Keyring;
use dshare::secret::Secret;
use serde_json::{Value, json};

use crate::util::{
    Node, Scratch, box_lines, json_lines, ok, raw_post, read_secret, wait_for, wait_peer_up,
};

const DEADLINE: Duration = Duration::from_secs(30);

/// A member of the victim's network: it holds the network key and its own identity,
/// and speaks the peer API by hand.
struct Member {
    keyring: Keyring,
    identity: Identity,
}

impl Member {
    fn of(home: &Path) -> Member {
        let key = Secret::from_hex(&read_secret(&home.join("network.key"))).unwrap();
        Member {
            keyring: Keyring::new(&key),
            identity: Identity::generate(),
        }
    }

    /// A sealed push of `messages` to `node`; the outcomes.
    fn push(&self, node: &Node, messages: &[Message]) -> Vec<Value> {
        let body = json!({ "messages": messages }).to_string();
        let blob = self.keyring.seal(
            &request_aad("/v1/push"),
            body.as_bytes(),
            dshare::time::now_ms(),
        );
        let (status, answer) = raw_post(&format!("{}/v1/push", node.url), &blob);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
        let opened = self
            .keyring
            .open(&answer_aad(&blob[4..28]), &answer, dshare::time::now_ms())
            .unwrap();
        let answer: Value = serde_json::from_slice(&opened.plaintext).unwrap();
        answer["outcomes"].as_array().unwrap().clone()
    }

    /// This member's message `seq` after `prev`, at `clock`.
    fn sign(&self, seq: u64, prev: Option<&Message>, clock: u64, body: &str) -> Message {
        Message::sign(
            &Draft {
                author: self.identity.author(),
                seq,
                prev: prev.map(|p| p.id),
                clock,
                ts: dshare::time::now_ms(),
                body,
            },
            &self.identity,
        )
    }
}

/// The node's `/peers` answer.
fn peers_answer(node: &Node) -> Value {
    let (status, body) = node.get("/peers", &[]);
    assert_eq!(status, 200, "{body}");
    serde_json::from_str(&body).unwrap()
}

fn forks(node: &Node) -> Vec<Value> {
    peers_answer(node)["forks"].as_array().unwrap().clone()
}

#[test]
fn a_push_holding_one_message_twice_records_no_fork() {
    let s = Scratch::new();
    let home = s.home("victim");
    let node = Node::start(&home, &[]);
    let member = Member::of(&home);
    let m1 = member.sign(1, None, 1, "one");
    let m2 = member.sign(2, Some(&m1), 2, "two");

    let outcomes = member.push(&node, &[m1.clone(), m2.clone(), m1.clone()]);
    let statuses: Vec<&str> = outcomes
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["stored", "stored", "duplicate"]);
    assert_eq!(forks(&node), Vec::<Value>::new());
    assert_eq!(box_lines(&home).len(), 2);

    // A real fork is still one: another message at seq 1.
    let other = member.sign(1, None, 1, "another one");
    let outcomes = member.push(&node, &[other]);
    assert_eq!(outcomes[0]["status"], "fork", "{outcomes:?}");
    assert_eq!(forks(&node).len(), 1);
    ok(&home, &["verify"]);
}

#[test]
fn concurrent_sends_waiting_for_all_record_no_fork() {
    let s = Scratch::new();
    let (a_home, b_home) = (s.home("a"), s.home("b"));
    ok(&a_home, &["init"]);
    let a = Node::start(&a_home, &[]);
    let invite = ok(&a_home, &["invite"]).trim().to_string();
    ok(&b_home, &["init", "--join", &invite]);
    let b = Node::start(&b_home, &[]);
    wait_peer_up(&a_home, &b.url);
    wait_peer_up(&b_home, &a.url);

    let sends: Vec<_> = (0..48)
        .map(|i| {
            let home = a_home.clone();
            std::thread::spawn(move || {
                crate::util::run(
                    &home,
                    &[
                        "send",
                        "--wait",
                        "all",
                        "--timeout",
                        "20s",
                        &format!("m{i}"),
                    ],
                )
            })
        })
        .collect();
    for send in sends {
        let out = send.join().unwrap();
        assert!(out.status.success(), "{}", crate::util::show(&out));
    }
    wait_for("B to hold all 48 messages", DEADLINE, || {
        (box_lines(&b_home).len() == 48).then_some(())
    });
    for node in [&a, &b] {
        assert_eq!(forks(node), Vec::<Value>::new(), "{}", node.url);
        let doctor = doctor_json(&node.home);
        assert_eq!(doctor["forks"], 0, "{doctor}");
    }
}

/// `doctor --json` of the node on `home`, whatever its verdict.
fn doctor_json(home: &Path) -> Value {
    let out = crate::util::run(home, &["--json", "doctor"]);
    json_lines(&String::from_utf8(out.stdout).unwrap())
        .pop()
        .expect("doctor prints its verdict")
}
