//! The clock and fork rules under attack and under honest faults: a member poisoning
//! clocks, a node whose clock ran fast, a box already holding a clock over the cap,
//! and messages met twice in one commit, all against real `dshare serve` processes.

use std::path::Path;
use std::time::Duration;

use dshare::identity::Identity;
use dshare::message::{Draft, MAX_COUNTER, Message};
use dshare::replicate::{answer_aad, request_aad};
use dshare::seal::Keyring;
use dshare::secret::Secret;
use serde_json::{Value, json};

use crate::util::{
    Node, Scratch, box_lines, fails, json_lines, ok, raw_post, read_secret, wait_for, wait_peer_up,
};

const DEADLINE: Duration = Duration::from_secs(30);
/// How far past wall time a received clock may move the clock a node signs
/// (`dshare::clock::MAX_AHEAD_MS`, written out so this file also runs against code
/// older than the rule).
const MAX_AHEAD_MS: u64 = 10 * 60 * 1000;

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

/// `send --json BODY` on `home`: the signed message.
fn send(home: &Path, body: &str) -> Value {
    json_lines(&ok(home, &["--json", "send", body]))
        .pop()
        .expect("send prints the message")
}

/// The messages held on `home`, parsed from its box.
fn held(home: &Path) -> Vec<Value> {
    box_lines(home)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_member_poisoning_clocks_cannot_move_honest_clocks_past_wall_time() {
    let s = Scratch::new();
    let home = s.home("victim");
    let node = Node::start(&home, &[]);
    let member = Member::of(&home);

    // A chain whose clocks leap ahead as far as each step allows under the old rule
    // (2^32 a message: 500 of them pass wall time by years), then one next to the cap.
    let mut chain: Vec<Message> = Vec::new();
    for seq in 1..=500u64 {
        let m = member.sign(seq, chain.last(), seq << 32, "leap");
        chain.push(m);
    }
    let outcomes = member.push(&node, &chain);
    assert!(
        outcomes.iter().all(|o| o["status"] == "stored"),
        "{:?}",
        &outcomes[..3]
    );
    // The honest node goes on signing, at wall time plus the bound at most.
    let mut last = 0;
    honest_sends_stay_near_wall_time(&home, &mut last);
    let near_cap = member.sign(501, chain.last(), MAX_COUNTER - 1, "near the cap");
    let outcome = member.push(&node, &[near_cap]);
    assert_eq!(outcome[0]["status"], "stored", "{outcome:?}");
    honest_sends_stay_near_wall_time(&home, &mut last);
    // Its box verifies, and it starts again on it.
    ok(&home, &["verify"]);
    assert!(node.stop().success());
    let node = Node::start(&home, &[]);
    send(&home, "after the restart");
    ok(&home, &["verify"]);
    assert_eq!(held(&node.home).len(), 508);
}

/// Three sends on `home`, each signed after `last` and at most the bound past wall
/// time.
fn honest_sends_stay_near_wall_time(home: &Path, last: &mut u64) {
    for i in 0..3 {
        let sent = send(home, &format!("honest {i}"));
        let clock = sent["clock"].as_u64().unwrap();
        let now = dshare::time::now_ms();
        assert!(
            clock <= now + MAX_AHEAD_MS + 10,
            "signed clock {clock}, wall time {now}: {} ms ahead",
            clock.saturating_sub(now)
        );
        assert!(clock > *last);
        *last = clock;
    }
}

/// A box at `home` holding `messages`, in order, chained from genesis.
fn write_box(home: &Path, messages: &[Message]) {
    let mut chain = dshare::chain::GENESIS;
    let mut text = String::new();
    for m in messages {
        chain = dshare::chain::step(&chain, &m.id);
        text.push_str(&dshare::mbox::encode_line(&chain, m));
        text.push('\n');
    }
    std::fs::write(home.join("box.txt"), text).unwrap();
}

#[test]
fn a_box_holding_a_clock_over_the_cap_starts_and_says_what_is_wrong() {
    let s = Scratch::new();
    let home = s.home("poisoned");
    ok(&home, &["init"]);
    let own = dshare::home::Home::resolve(Some(home.clone()))
        .unwrap()
        .identity()
        .unwrap();
    let signed = |key: &Identity, clock: u64, body: &str| {
        Message::sign(
            &Draft {
                author: key.author(),
                seq: 1,
                prev: None,
                clock,
                ts: dshare::time::now_ms(),
                body,
            },
            key,
        )
    };
    // What the old rule let an honest node sign (2^53, one past the cap), with a line
    // after it: the node refused to start ("corrupt at line 1").
    let other = Identity::generate();
    write_box(
        &home,
        &[
            signed(&own, MAX_COUNTER + 1, "signed at 2^53"),
            signed(&other, 7, "after it"),
        ],
    );

    let report: Value = serde_json::from_str(&ok(&home, &["--json", "verify"])).unwrap();
    assert_eq!(report["ok"], true, "{report}");
    let warning = report["warnings"][0]["error"].as_str().unwrap();
    assert_eq!(report["warnings"][0]["line"], 1, "{report}");
    assert!(
        warning.contains("above the limit") && warning.contains("intact"),
        "{warning}"
    );

    let node = Node::start(&home, &[]);
    // This node's own chain is at the cap: it refuses to sign, says why, stores nothing.
    let out = fails(&home, &["send", "one more"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("above the limit") && err.contains("new identity"),
        "{err}"
    );
    assert_eq!(held(&node.home).len(), 2);
    let doctor = doctor_json(&home);
    let warnings = doctor["warnings"].to_string();
    assert!(warnings.contains("over the clock cap"), "{doctor}");
}

/// Two hours, the fast clock of the attack report.
const TWO_HOURS_MS: i64 = 2 * 3_600_000;

/// A node started on a fresh home with `env`, and `n` more homes that joined its
/// network with its invite (not started).
fn network_of(s: &Scratch, n: usize, env: &[(&str, &str)]) -> (Node, Vec<std::path::PathBuf>) {
    let first = s.home("n0");
    ok(&first, &["init"]);
    let node = Node::start_with_env(&first, &["serve", "--listen", "127.0.0.1:0"], env);
    let invite = ok(&first, &["invite"]).trim().to_string();
    let homes = (1..=n)
        .map(|i| {
            let home = s.home(&format!("n{i}"));
            ok(&home, &["init", "--join", &invite]);
            home
        })
        .collect();
    (node, homes)
}

fn authored_by(home: &Path, author: &str) -> usize {
    held(home).iter().filter(|m| m["author"] == author).count()
}

#[test]
fn messages_signed_by_a_fast_clock_reach_peers_and_block_nothing_after() {
    let s = Scratch::new();
    // A runs two hours fast and has no peer up: it signs two messages.
    let offset = TWO_HOURS_MS.to_string();
    let (fast, homes) = network_of(&s, 1, &[("DSHARE_TEST_CLOCK_OFFSET_MS", &offset)]);
    let (a_home, b_home) = (fast.home.clone(), homes[0].clone());
    let a_id = dshare::home::Home::resolve(Some(a_home.clone()))
        .unwrap()
        .identity()
        .unwrap()
        .author()
        .to_hex();
    let early = send(&a_home, "from the fast clock");
    send(&a_home, "again");
    assert!(early["ts"].as_u64().unwrap() > dshare::time::now_ms() + 3_600_000);
    assert!(fast.stop().success());

    // The clock is set right; the peer comes up. Both messages and every later one
    // reach it.
    let a = Node::start(&a_home, &[]);
    let b = Node::start(&b_home, &["--peer", &a.url]);
    wait_peer_up(&b_home, &a.url);
    let later = send(&a_home, "after the clock was fixed");
    assert!(later["clock"].as_u64() > early["clock"].as_u64());
    wait_for("B to hold A's three messages", DEADLINE, || {
        (authored_by(&b_home, &a_id) == 3).then_some(())
    });
    assert_eq!(peers_answer(&b)["refused"], 0);
    ok(&b_home, &["verify"]);
    let doctor = doctor_json(&a_home);
    assert_eq!(doctor["problems"], json!([]), "{doctor}");
}

#[test]
fn a_node_whose_clock_is_far_from_its_peers_refuses_to_sign_and_says_why() {
    let s = Scratch::new();
    let (b, homes) = network_of(&s, 2, &[]);
    let c = Node::start(&homes[0], &[]);
    let offset = TWO_HOURS_MS.to_string();
    let fast_home = &homes[1];
    let fast = Node::start_with_env(
        fast_home,
        &["serve", "--listen", "127.0.0.1:0", "--peer", &c.url],
        &[("DSHARE_TEST_CLOCK_OFFSET_MS", &offset)],
    );

    // Its peers tell it their time (in the seal of a 409): it signs nothing.
    let err = wait_for("the fast node to refuse to sign", DEADLINE, || {
        let out = crate::util::run(fast_home, &["send", "tick"]);
        (!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).to_string())
    });
    assert!(
        err.contains("wall clock is 2 h") && err.contains("ahead of its peers'"),
        "{err}"
    );
    assert!(err.contains("nothing was stored"), "{err}");
    let signed_here = held(fast_home)
        .iter()
        .filter(|m| m["body"] == "tick")
        .count();
    assert!(
        signed_here <= 1,
        "at most one send before the first reading"
    );
    let doctor = doctor_json(fast_home);
    assert_eq!(doctor["healthy"], false, "{doctor}");
    assert!(
        doctor["problems"]
            .to_string()
            .contains("refuses our messages"),
        "{doctor}"
    );

    // The honest nodes, one peer of three off, go on signing.
    wait_peer_up(&b.home, &c.url);
    send(&b.home, "honest");
    send(&c.home, "honest too");
    drop(fast);
}

#[test]
fn doctor_flags_a_peer_that_refuses_our_messages() {
    let s = Scratch::new();
    let (a, homes) = network_of(&s, 1, &[]);
    // B stores only one listed author, not A.
    let stranger = Identity::generate().author().to_hex();
    let b = Node::start(&homes[0], &["--allow-author", &stranger]);
    wait_peer_up(&a.home, &b.url);
    send(&a.home, "refused over there");

    let doctor = wait_for("A's doctor to flag B", DEADLINE, || {
        let d = doctor_json(&a.home);
        d["problems"]
            .to_string()
            .contains("refuses our messages")
            .then_some(d)
    });
    assert_eq!(doctor["healthy"], false, "{doctor}");
    let problems = doctor["problems"].to_string();
    assert!(
        problems.contains(&b.url) && problems.contains("allow-list"),
        "{problems}"
    );
}
