//! Repair by range-based reconciliation between real nodes: two nodes of 1,000
//! authors that differ in one message heal it for a few kilobytes of peer traffic
//! (the heads pages it replaces cost some 160 KB), and a member that sends
//! oversized or endless reconcile messages is refused within the bounds.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dshare::identity::Identity;
use dshare::message::{Draft, Message};
use dshare::replicate::reconcile::{MAX_HEADS, MAX_RANGES};
use dshare::replicate::{answer_aad, request_aad};
use dshare::seal::Keyring;
use dshare::secret::Secret;
use serde_json::{Value, json};

use crate::util::{
    DEADLINE, Node, Scratch, json_lines, ok, raw_post, raw_request, read_secret, wait_for,
};

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

/// A member played by the test that answers hellos with `reconcile: true` and a
/// digest unlike anyone's, and reconcile requests with what `answer` says; it counts
/// the requests of each op. One request per connection.
struct LyingPeer {
    url: String,
    calls: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

type Answer = dyn Fn(&Value) -> Value + Send + Sync;

impl LyingPeer {
    fn start(ring: Keyring, answer: Arc<Answer>) -> LyingPeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let calls: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (calls2, stop2, url2) = (Arc::clone(&calls), Arc::clone(&stop), url.clone());
        let id = Identity::generate();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(stream) = stream {
                    serve_one(stream, &ring, &id, &url2, answer.as_ref(), &calls2);
                }
            }
        });
        LyingPeer { url, calls, stop }
    }

    fn count(&self, op: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|o| *o == op)
            .count()
    }
}

impl Drop for LyingPeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// The sealed request on `stream`: its path and opened plaintext and nonce.
fn read_request(stream: &mut TcpStream, ring: &Keyring) -> Option<(String, Vec<u8>, Vec<u8>)> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                let path = head.split_whitespace().nth(1)?.to_string();
                let blob = &raw[end + 4..end + 4 + length];
                let opened = ring
                    .open(&request_aad(&path), blob, dshare::time::now_ms())
                    .ok()?;
                return Some((path, opened.plaintext, opened.nonce.to_vec()));
            }
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
    }
}

fn serve_one(
    mut stream: TcpStream,
    ring: &Keyring,
    id: &Identity,
    url: &str,
    answer: &Answer,
    calls: &Mutex<Vec<String>>,
) {
    let Some((path, plaintext, nonce)) = read_request(&mut stream, ring) else {
        return;
    };
    let op = path.trim_start_matches("/v1/").to_string();
    calls.lock().unwrap().push(op.clone());
    let request: Value = serde_json::from_slice(&plaintext).unwrap_or(Value::Null);
    let me = id.author();
    let reply = match op.as_str() {
        "hello" => {
            let proof = [b"dshare/1 hello proof\n".as_slice(), &nonce, &me.0].concat();
            json!({
                "node": {"id": me, "url": url},
                "digest": format!("{:064x}", 7),
                "peers": [],
                "heads": null,
                "proof": id.sign(&proof),
                "reconcile": true,
            })
        }
        "reconcile" => answer(&request),
        "push" => {
            let n = request["messages"].as_array().map_or(0, Vec::len);
            json!({"outcomes": vec![json!({"status": "stored"}); n]})
        }
        _ => json!({"messages": []}),
    };
    let now = dshare::time::now_ms();
    let body = ring.seal(&answer_aad(&nonce), reply.to_string().as_bytes(), now);
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// The repair path against a member whose reconcile answers never agree, then break
/// the bounds: the first costs at most 64 round trips an exchange, the second ends
/// the exchange at once and is reported; the peer stays up and the node serves.
#[test]
fn a_peer_whose_reconcile_answers_never_agree_or_break_the_bounds_costs_a_bounded_exchange() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let (shared, _) = authors_and_one_more(100);
    write_box(&home, &shared);
    let oversized = Arc::new(AtomicBool::new(false));
    let answer: Arc<Answer> = {
        let oversized = Arc::clone(&oversized);
        Arc::new(move |_request| {
            if oversized.load(Ordering::Relaxed) {
                let heads: Vec<Value> = (0..=MAX_HEADS)
                    .map(|i| json!({"author": format!("{:064x}", i + 1), "seq": 1, "id": format!("{:064x}", i)}))
                    .collect();
                json!({"ranges": [{"mode": {"heads": heads}}]})
            } else {
                json!({"ranges": [{"mode": {"fingerprint": "00112233445566778899aabbccddeeff"}}]})
            }
        })
    };
    let liar = LyingPeer::start(keyring_of(&home), answer);
    let node = Node::start(&home, &["--peer", &liar.url]);

    // Three hellos in, the count of reconcile requests is at most 64 a hello, and
    // all of the first hellos' 64 were taken (the liar never lets one finish early).
    wait_for("three exchanges with the liar", DEADLINE, || {
        (liar.count("hello") >= 4).then_some(())
    });
    let (hellos, reconciles) = (liar.count("hello"), liar.count("reconcile"));
    eprintln!("{hellos} hellos, {reconciles} reconcile requests");
    assert!(
        reconciles <= hellos * dshare::replicate::reconcile::MAX_ROUNDS,
        "{reconciles} reconcile requests for {hellos} hellos"
    );
    assert!(reconciles >= 2 * dshare::replicate::reconcile::MAX_ROUNDS);

    oversized.store(true, Ordering::Relaxed);
    let before = liar.count("reconcile");
    let row = wait_for("the oversized answer to be reported", DEADLINE, || {
        json_lines(&ok(&home, &["--json", "peers"]))
            .into_iter()
            .find(|p| p["url"] == liar.url.as_str())
            .filter(|p| {
                p["last_error"]
                    .as_str()
                    .is_some_and(|e| e.contains("reconcile"))
            })
    });
    assert_eq!(row["state"], "up", "{row}");
    let hellos = liar.count("hello");
    wait_for("another exchange", DEADLINE, || {
        (liar.count("hello") >= hellos + 2).then_some(())
    });
    let after = liar.count("reconcile") - before;
    assert!(
        after <= liar.count("hello") - hellos + 3,
        "{after} reconcile requests once oversized"
    );
    ok(&home, &["send", "still serving"]);
    assert_eq!(status(&node)["messages"], 101);
}
