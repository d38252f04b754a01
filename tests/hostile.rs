//! Hostile input an attacker (or a broken member) would send to a real node. After
//! each, the node still answers and its box holds nothing it should not.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use dshare::hex::Hex;
use dshare::identity::Identity;
use dshare::message::{Draft, Message};
use dshare::replicate::{answer_aad, request_aad};
use dshare::seal::Keyring;
use dshare::secret::Secret;
use serde_json::{Value, json};

use crate::util::{Node, Scratch, box_lines, fails, ok, read_secret};

/// A member's view of a node: its network key, to seal requests by hand.
struct Member {
    node: Node,
    keyring: Keyring,
}

impl Member {
    fn start(s: &Scratch) -> Member {
        let home = s.home("victim");
        let node = Node::start(&home, &[]);
        let key = Secret::from_hex(&read_secret(&home.join("network.key"))).unwrap();
        Member {
            node,
            keyring: Keyring::new(&key),
        }
    }

    /// POSTs raw bytes to `path`; returns status and body.
    fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        crate::util::raw_post(&format!("{}{path}", self.node.url), body)
    }

    /// Seals `value` for `/v1/op` at time `ts`.
    fn seal(&self, op: &str, value: &Value, ts: u64) -> Vec<u8> {
        let path = format!("/v1/{op}");
        self.keyring
            .seal(&request_aad(&path), value.to_string().as_bytes(), ts)
    }

    /// A properly sealed call; returns the opened answer, or the status if not 200.
    fn call(&self, op: &str, value: &Value) -> Result<Value, u16> {
        let blob = self.seal(op, value, dshare::time::now_ms());
        let (status, body) = self.post_raw(&format!("/v1/{op}"), &blob);
        if status != 200 {
            return Err(status);
        }
        let opened = self
            .keyring
            .open(&answer_aad(&blob[4..28]), &body, dshare::time::now_ms())
            .unwrap_or_else(|e| {
                panic!(
                    "the answer to {op} does not open ({e:?}): {}",
                    String::from_utf8_lossy(&body)
                )
            });
        Ok(serde_json::from_slice(&opened.plaintext).unwrap())
    }

    fn push(&self, messages: &[Message]) -> Vec<Value> {
        let answer = self
            .call("push", &json!({ "messages": messages }))
            .expect("push answered");
        answer["outcomes"].as_array().unwrap().clone()
    }

    fn still_answers(&self) {
        assert_eq!(
            self.node.get("/status", &[]).0,
            200,
            "the node stopped answering"
        );
    }

    fn refused_count(&self) -> u64 {
        let peers: Value = serde_json::from_str(&self.node.get("/peers", &[]).1).unwrap();
        peers["refused"].as_u64().unwrap()
    }
}

fn signed(
    key: &Identity,
    seq: u64,
    prev: Option<Message>,
    clock: u64,
    ts: u64,
    body: &str,
) -> Message {
    Message::sign(
        &Draft {
            author: key.author(),
            seq,
            prev: prev.map(|p| p.id),
            clock,
            ts,
            body,
        },
        key,
    )
}

fn first(key: &Identity, body: &str) -> Message {
    signed(key, 1, None, 1, dshare::time::now_ms(), body)
}

#[test]
fn a_replayed_stale_or_damaged_seal_gets_a_bare_403() {
    let s = Scratch::new();
    let m = Member::start(&s);
    let author = Identity::generate();
    let push = json!({ "messages": [first(&author, "once")] });
    let now = dshare::time::now_ms();

    let blob = m.seal("push", &push, now);
    assert_eq!(m.post_raw("/v1/push", &blob).0, 200);
    assert_eq!(m.post_raw("/v1/push", &blob), (403, Vec::new()), "replayed");

    let stale = m.seal("push", &push, now - 120_000);
    assert_eq!(
        m.post_raw("/v1/push", &stale),
        (403, Vec::new()),
        "sealed two minutes ago"
    );
    // Sealed in the future: no replay can be, so the member is told the node's time
    // (a 409 it alone can open), and nothing is done.
    let future = m.seal("push", &push, now + 120_000);
    let (status, answer) = m.post_raw("/v1/push", &future);
    assert_eq!(status, 409, "sealed in the future");
    let told = m
        .keyring
        .open_at_any_time(&answer_aad(&future[4..28]), &answer)
        .expect("the answer opens for the member");
    assert!(told.ts.abs_diff(now) < 60_000);

    let fresh = m.seal("push", &push, now);
    let mut truncated = fresh.clone();
    truncated.truncate(fresh.len() - 10);
    assert_eq!(
        m.post_raw("/v1/push", &truncated),
        (403, Vec::new()),
        "truncated"
    );
    let mut reordered = fresh.clone();
    reordered.swap(40, 41);
    reordered.swap(50, 60);
    assert_eq!(
        m.post_raw("/v1/push", &reordered),
        (403, Vec::new()),
        "reordered"
    );
    let moved = m.seal("hello", &push, now);
    assert_eq!(
        m.post_raw("/v1/push", &moved),
        (403, Vec::new()),
        "sealed for another path"
    );
    let other = Keyring::new(&Secret::random()).seal(
        &request_aad("/v1/push"),
        push.to_string().as_bytes(),
        now,
    );
    assert_eq!(
        m.post_raw("/v1/push", &other),
        (403, Vec::new()),
        "another network's key"
    );
    assert_eq!(
        m.post_raw("/v1/push", push.to_string().as_bytes()),
        (403, Vec::new()),
        "unsealed"
    );

    m.still_answers();
    assert_eq!(
        box_lines(&m.node.home).len(),
        1,
        "only the first push was stored"
    );
}

#[test]
fn messages_that_fail_a_check_are_refused_counted_and_never_stored() {
    let s = Scratch::new();
    let m = Member::start(&s);
    let author = Identity::generate();
    let now = dshare::time::now_ms();

    let mut bad_sig = first(&author, "bad signature");
    bad_sig.sig = Hex([7; 64]);
    let mut wrong_id = first(&author, "wrong id");
    wrong_id.id = Hex([9; 32]);
    let impostor = {
        let mut m = first(&Identity::generate(), "impostor");
        m.author = author.author();
        m
    };
    let huge_body = first(&author, &"x".repeat(70_000));
    let outcomes = m.push(&[bad_sig, wrong_id, impostor, huge_body]);
    for o in &outcomes {
        assert_eq!(o["status"], "refused", "{outcomes:?}");
    }
    assert_eq!(m.refused_count(), 4);

    // A seq gap waits: nothing stored until the predecessor comes.
    let one = first(&author, "one");
    let two = signed(&author, 2, Some(one.clone()), 2, now, "two");
    let three = signed(&author, 3, Some(two.clone()), 3, now, "three");
    assert_eq!(m.push(std::slice::from_ref(&three))[0]["status"], "gap");
    assert!(box_lines(&m.node.home).is_empty());
    let outcomes = m.push(&[one, two, three]);
    assert!(
        outcomes.iter().all(|o| o["status"] == "stored"),
        "{outcomes:?}"
    );

    // Clocks and timestamps far ahead are kept (they sort only their author's
    // messages late, see attack_clock); a clock over the cap is refused.
    let far_clock = Identity::generate();
    let out = m.push(&[signed(&far_clock, 1, None, 1 << 40, now, "far clock")]);
    assert_eq!(out[0]["status"], "stored", "{out:?}");
    let future = Identity::generate();
    let out = m.push(&[signed(&future, 1, None, 1, now + 3_600_000, "future")]);
    assert_eq!(out[0]["status"], "stored", "{out:?}");
    let over = m.push(&[signed(&Identity::generate(), 1, None, 1 << 53, now, "over")]);
    assert_eq!(over[0]["status"], "refused", "{over:?}");

    m.still_answers();
    assert_eq!(box_lines(&m.node.home).len(), 5);
    ok(&m.node.home, &["verify"]);
}

#[test]
fn a_bad_signature_in_a_large_push_is_found_among_good_ones() {
    // 40 messages are checked as batches (one per core): the batch holding the bad
    // signature fails and is checked again one by one, so exactly that message is
    // refused and the later ones wait for it.
    let s = Scratch::new();
    let m = Member::start(&s);
    let author = Identity::generate();
    let now = dshare::time::now_ms();
    let mut run: Vec<Message> = Vec::new();
    for seq in 1..=40 {
        let prev = run.last().cloned();
        run.push(signed(&author, seq, prev, seq, now, &format!("m{seq}")));
    }
    run[29].sig.0[5] ^= 0x40;
    let outcomes = m.push(&run);
    let statuses: Vec<&str> = outcomes
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = (1..=40)
        .map(|seq| match seq {
            ..30 => "stored",
            30 => "refused",
            _ => "gap",
        })
        .collect();
    assert_eq!(statuses, expected);
    assert_eq!(m.refused_count(), 1);

    // An author key of small order (here the neutral point): the equation holds for
    // any message, so anybody could sign as it. Refused, alone and in a batch.
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::scalar::Scalar;
    let weak = |body: &str| {
        let sk = Scalar::from_bytes_mod_order([3; 32]);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&(sk * ED25519_BASEPOINT_POINT).compress().to_bytes());
        sig[32..].copy_from_slice(sk.as_bytes());
        let mut neutral = [0u8; 32];
        neutral[0] = 1;
        let draft = Draft {
            author: Hex(neutral),
            seq: 1,
            prev: None,
            clock: 1,
            ts: now,
            body,
        };
        Message {
            id: dshare::message::sha256(&dshare::message::canonical(&draft)),
            author: Hex(neutral),
            seq: 1,
            prev: None,
            clock: 1,
            ts: now,
            body: body.into(),
            sig: Hex(sig),
        }
    };
    assert_eq!(m.push(&[weak("alone")])[0]["status"], "refused");
    let mut batch: Vec<Message> = (0..20)
        .map(|i| first(&Identity::generate(), &format!("b{i}")))
        .collect();
    batch.push(weak("in a batch"));
    let outcomes = m.push(&batch);
    assert!(
        outcomes[..20].iter().all(|o| o["status"] == "stored"),
        "{outcomes:?}"
    );
    assert_eq!(outcomes[20]["status"], "refused");
    m.still_answers();
    assert_eq!(box_lines(&m.node.home).len(), 29 + 20);
    ok(&m.node.home, &["verify"]);
}

#[test]
fn a_forked_author_is_refused_recorded_and_reported() {
    let s = Scratch::new();
    let m = Member::start(&s);
    let author = Identity::generate();
    let original = first(&author, "the real one");
    let fork = first(&author, "a second history");
    assert_eq!(
        m.push(std::slice::from_ref(&original))[0]["status"],
        "stored"
    );
    assert_eq!(m.push(std::slice::from_ref(&fork))[0]["status"], "fork");
    assert_eq!(m.push(&[original])[0]["status"], "duplicate");

    let peers: Value = serde_json::from_str(&m.node.get("/peers", &[]).1).unwrap();
    let forks = peers["forks"].as_array().unwrap();
    assert_eq!(forks.len(), 1, "{peers}");
    assert_eq!(forks[0]["offered"], fork.id.to_hex());
    let text = ok(&m.node.home, &["peers"]);
    assert!(text.contains("forks seen: 1"), "{text}");
    let out = fails(&m.node.home, &["verify", "--peers", "--json"], 1);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["forks"].as_array().unwrap().len(), 1);
    assert_eq!(box_lines(&m.node.home).len(), 1);
}

#[test]
fn a_huge_range_request_gets_one_bounded_page() {
    let s = Scratch::new();
    let m = Member::start(&s);
    for i in 0..600 {
        assert_eq!(m.node.get("/send", &[("msg", &format!("m{i}"))]).0, 200);
    }
    let me: String = ok(&m.node.home, &["id"]).trim().to_string();
    let page = m
        .call(
            "range",
            &json!({ "author": me, "from": 1, "limit": 1_000_000_000u64 }),
        )
        .unwrap();
    assert_eq!(page["messages"].as_array().unwrap().len(), 500);
    let beyond = m
        .call(
            "range",
            &json!({ "author": me, "from": u64::MAX, "limit": 10 }),
        )
        .unwrap();
    assert_eq!(beyond["messages"].as_array().unwrap().len(), 0);
    assert_eq!(m.call("range", &json!({ "author": "nope" })), Err(400));
    m.still_answers();
}

#[test]
fn garbage_bytes_and_oversized_heads_leave_the_node_serving() {
    let s = Scratch::new();
    let m = Member::start(&s);
    let addr = m.node.url.strip_prefix("http://").unwrap().to_string();
    let mut rng = Secret::random().expose().to_vec();
    for round in 0..20u8 {
        let mut c = TcpStream::connect(&addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        rng.iter_mut()
            .for_each(|b| *b = b.wrapping_mul(31).wrapping_add(round));
        let _ = c.write_all(&rng.repeat(64));
        let _ = c.write_all(b"\r\n\r\n");
        let mut sink = Vec::new();
        let _ = c.read_to_end(&mut sink);
    }
    // A header line far over the limit: the connection is dropped, memory stays bounded.
    let mut c = TcpStream::connect(&addr).unwrap();
    let _ = c.write_all(b"GET /status HTTP/1.1\r\nX-Big: ");
    let chunk = vec![b'a'; 64 * 1024];
    for _ in 0..16 {
        if c.write_all(&chunk).is_err() {
            break;
        }
    }
    drop(c);
    m.still_answers();
    assert!(box_lines(&m.node.home).is_empty());
}
