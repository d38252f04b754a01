//! Repair by range-based reconciliation between real nodes: two nodes of 1,000
//! authors that differ in one message heal it for a few kilobytes of peer traffic
//! (the heads pages it replaces cost some 160 KB), and a member that sends
//! oversized or endless reconcile messages is refused within the bounds.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use dshare::identity::Identity;
use dshare::message::{Draft, Message};
use dshare::replicate::reconcile::{MAX_HEADS, MAX_RANGES};
use dshare::replicate::{answer_aad, request_aad};
use dshare::seal::Keyring;
use dshare::secret::Secret;
use serde_json::{Value, json};

use crate::util::{DEADLINE, Node, Scratch, ok, raw_post, raw_request, read_secret, wait_for};

/// Most peer bytes (both nodes, every route, sealed bodies) the repair of one
/// message among 1,000 authors may take, hellos included. The heads pages took
/// about 165 KB: 1,001 heads of about 163 bytes in one hello answer.
const REPAIR_BYTES: f64 = 20_000.0;

/// A first message from each of `n` new authors, then a second one from the first.
fn authors_and_one_more(n: usize) -> (Vec<Message>, Message) {
    let keys: Vec<Identity> = (0..n).map(|_| Identity::generate()).collect();
    let ts = dshare::time::now_ms();
    let first: Vec<Message> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| {
            let body = format!("author {i}");
            let draft = Draft {
                author: key.author(),
                seq: 1,
                prev: None,
                clock: 1,
                ts,
                body: &body,
            };
            Message::sign(&draft, key)
        })
        .collect();
    let second = Message::sign(
        &Draft {
            author: keys[0].author(),
            seq: 2,
            prev: Some(first[0].id),
            clock: 2,
            ts,
            body: "the one message of difference",
        },
        &keys[0],
    );
    (first, second)
}

/// Writes `messages` as the box of `home`, with its head file.
fn write_box(home: &Path, messages: &[Message]) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(home.join("box.txt")).unwrap());
    let mut chain = dshare::chain::GENESIS;
    for m in messages {
        chain = dshare::chain::step(&chain, &m.id);
        writeln!(out, "{}", dshare::mbox::encode_line(&chain, m)).unwrap();
    }
    out.flush().unwrap();
    let head = format!("{:020} {chain}\n", messages.len());
    std::fs::write(home.join("box.head"), head).unwrap();
}

fn status(node: &Node) -> Value {
    serde_json::from_str(&node.get("/status", &[]).1).unwrap()
}

/// Every `dshare_peer_bytes_total` sample of the node: (labels, bytes).
fn peer_bytes(node: &Node) -> Vec<(String, f64)> {
    let auth = format!("Authorization: Bearer {}", node.token);
    let (code, _, text) = raw_request(&format!("{}/metrics", node.url), &[&auth]);
    assert_eq!(code, 200, "{text}");
    text.lines()
        .filter_map(|l| l.strip_prefix("dshare_peer_bytes_total"))
        .filter_map(|l| {
            let (labels, value) = l.rsplit_once(' ')?;
            Some((labels.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn keyring_of(home: &Path) -> Keyring {
    Keyring::new(&Secret::from_hex(&read_secret(&home.join("network.key"))).unwrap())
}

/// A sealed call to `/v1/op` with `body` as it is (JSON or not): the opened answer,
/// or the HTTP status when it is not 200.
fn call(ring: &Keyring, url: &str, op: &str, body: &[u8]) -> Result<Value, u16> {
    let path = format!("/v1/{op}");
    let blob = ring.seal(&request_aad(&path), body, dshare::time::now_ms());
    let (status, answer) = raw_post(&format!("{url}{path}"), &blob);
    if status != 200 {
        return Err(status);
    }
    let opened = ring
        .open(&answer_aad(&blob[4..28]), &answer, dshare::time::now_ms())
        .expect("the answer opens");
    Ok(serde_json::from_slice(&opened.plaintext).unwrap())
}

#[test]
fn one_message_of_difference_among_1000_authors_is_repaired_for_a_few_kilobytes() {
    let s = Scratch::new();
    let (a_home, b_home) = (s.home("a"), s.home("b"));
    let (shared, extra) = authors_and_one_more(1000);
    ok(&a_home, &["init"]);
    write_box(&a_home, &shared);
    let started = Instant::now();
    let a = Node::start(&a_home, &[]);
    let invite = ok(&a_home, &["invite"]).trim().to_string();
    ok(&b_home, &["init", "--join", &invite]);
    write_box(&b_home, &[shared.clone(), vec![extra]].concat());
    let b = Node::start(&b_home, &[]);
    let want = status(&b)["digest"].clone();
    wait_for("the one message to reach a", DEADLINE, || {
        (status(&a)["digest"] == want).then_some(())
    });
    let healed = started.elapsed();
    let samples: Vec<(String, f64)> = [&a, &b].iter().flat_map(|n| peer_bytes(n)).collect();
    let total: f64 = samples.iter().map(|(_, v)| v).sum();
    let by_route = |route: &str| -> f64 {
        samples
            .iter()
            .filter(|(l, _)| l.contains(&format!("route=\"{route}\"")))
            .map(|(_, v)| v)
            .sum()
    };
    eprintln!(
        "healed in {healed:?}; peer bytes, both nodes: {total} in all, hello {}, heads {}, reconcile {}, range {}, push {}",
        by_route("hello"),
        by_route("heads"),
        by_route("reconcile"),
        by_route("range"),
        by_route("push"),
    );
    assert!(
        total < REPAIR_BYTES,
        "the repair of one message among 1,000 authors took {total} peer bytes: {samples:?}"
    );
    let log = ok(&a_home, &["log", "--json", "-n", "5"]);
    assert!(log.contains("the one message of difference"), "{log}");
}

/// A member that sends a reconcile message past a bound gets a 400 and nothing
/// else, however it breaks the rules, and the node goes on answering; one that never
/// agrees is answered each time at the cost of one pass over the heads.
#[test]
fn oversized_and_endless_reconcile_messages_are_refused_within_the_bounds() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let (shared, _) = authors_and_one_more(50);
    write_box(&home, &shared);
    let node = Node::start(&home, &[]);
    let ring = keyring_of(&home);

    let fp = "00112233445566778899aabbccddeeff";
    let too_many_ranges: Vec<Value> = (1..=MAX_RANGES + 1)
        .map(|i| {
            if i == MAX_RANGES + 1 {
                json!({"mode": "skip"})
            } else {
                json!({"below": format!("{:08x}", i * 4096), "mode": "skip"})
            }
        })
        .collect();
    let head = |i: usize| json!({"author": format!("{:064x}", i + 1), "seq": 1, "id": format!("{:064x}", i)});
    let too_many_heads: Vec<Value> = (0..=MAX_HEADS).map(head).collect();
    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("not JSON", b"\xff{{{".to_vec()),
        ("no ranges", json!({"ranges": []}).to_string().into_bytes()),
        (
            "too many ranges",
            json!({ "ranges": too_many_ranges })
                .to_string()
                .into_bytes(),
        ),
        (
            "too many heads",
            json!({"ranges": [{"mode": {"heads": too_many_heads}}]})
                .to_string()
                .into_bytes(),
        ),
        (
            "bounds that go back",
            json!({"ranges": [
                {"below": "80", "mode": {"fingerprint": fp}},
                {"below": "40", "mode": {"fingerprint": fp}},
                {"mode": "skip"}]})
            .to_string()
            .into_bytes(),
        ),
        (
            "a bound of 33 bytes",
            json!({"ranges": [{"below": "ff".repeat(33), "mode": "skip"}, {"mode": "skip"}]})
                .to_string()
                .into_bytes(),
        ),
        (
            "no end",
            json!({"ranges": [{"below": "80", "mode": "skip"}]})
                .to_string()
                .into_bytes(),
        ),
    ];
    let before = status(&node)["digest"].clone();
    for (why, body) in &refused {
        let started = Instant::now();
        let answer = call(&ring, &node.url, "reconcile", body);
        assert_eq!(answer, Err(400), "{why}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{why}: refused after {:?}",
            started.elapsed()
        );
    }

    // Endless: a fingerprint that never matches, sent 200 times over. Each answer is
    // one split of at most BRANCHES ranges, whatever is asked.
    let lie = json!({"ranges": [{"mode": {"fingerprint": fp}}]}).to_string();
    let started = Instant::now();
    for _ in 0..200 {
        let answer = call(&ring, &node.url, "reconcile", lie.as_bytes()).unwrap();
        let ranges = answer["ranges"].as_array().unwrap();
        assert!(ranges.len() <= dshare::replicate::reconcile::BRANCHES);
    }
    eprintln!(
        "200 reconcile requests that never agree: {:?}",
        started.elapsed()
    );
    assert_eq!(status(&node)["digest"], before, "nothing changed");
    assert_eq!(status(&node)["messages"], 50);
}
