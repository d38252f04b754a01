//! The peer side under attack: networks of many authors, floods of fake addresses,
//! peers that lie, and a garbage peer list. Real nodes on loopback; hostile members
//! are played by requests sealed with the network key and by a fake peer built here.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dshare::identity::Identity;
use dshare::message::{Draft, Message};
use dshare::replicate::{answer_aad, request_aad};
use dshare::seal::Keyring;
use dshare::secret::Secret;
use serde_json::{Value, json};

use crate::util::{DEADLINE, Node, Scratch, json_lines, ok, raw_post, read_secret, wait_for};

const ZERO: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a hello answer's proof signs, as docs/PROTOCOL.md writes it.
fn proof_bytes(nonce: &[u8], id: &dshare::message::AuthorId) -> Vec<u8> {
    [b"dshare/1 hello proof\n".as_slice(), nonce, &id.0].concat()
}

pub(crate) fn keyring_of(home: &Path) -> Keyring {
    Keyring::new(&Secret::from_hex(&read_secret(&home.join("network.key"))).unwrap())
}

/// A sealed call to `/v1/op` of the node at `url`: the opened answer and the size of
/// the sealed body, or the HTTP status when it is not 200.
pub(crate) fn call(
    ring: &Keyring,
    url: &str,
    op: &str,
    value: &Value,
) -> Result<(Value, usize), u16> {
    let path = format!("/v1/{op}");
    let blob = ring.seal(
        &request_aad(&path),
        value.to_string().as_bytes(),
        dshare::time::now_ms(),
    );
    let (status, body) = raw_post(&format!("{url}{path}"), &blob);
    if status != 200 {
        return Err(status);
    }
    let opened = ring
        .open(&answer_aad(&blob[4..28]), &body, dshare::time::now_ms())
        .expect("the answer opens");
    Ok((
        serde_json::from_slice(&opened.plaintext).unwrap(),
        body.len(),
    ))
}

/// One first message from each of `n` new authors.
pub(crate) fn many_authors(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let key = Identity::generate();
            Message::sign(
                &Draft {
                    author: key.author(),
                    seq: 1,
                    prev: None,
                    clock: 1,
                    ts: dshare::time::now_ms(),
                    body: &format!("author {i}"),
                },
                &key,
            )
        })
        .collect()
}

fn push_all(ring: &Keyring, url: &str, messages: &[Message]) {
    for chunk in messages.chunks(200) {
        let (answer, _) = call(ring, url, "push", &json!({ "messages": chunk })).unwrap();
        assert!(
            answer["outcomes"]
                .as_array()
                .unwrap()
                .iter()
                .all(|o| o["status"] == "stored"),
            "{answer}"
        );
    }
}

fn status(node: &Node) -> Value {
    serde_json::from_str(&node.get("/status", &[]).1).unwrap()
}

fn peer_row(home: &Path, url: &str) -> Option<Value> {
    json_lines(&ok(home, &["--json", "peers"]))
        .into_iter()
        .find(|p| p["url"] == url)
}

/// A hello as a member at `from` would send it.
fn hello_from(from: &str, digest: &str) -> Value {
    json!({"from": {"id": Identity::generate().author(), "url": from}, "digest": digest, "peers": []})
}

/// What the fake peer answers to one request: a sealed JSON value, or raw bytes.
pub(crate) enum Reply {
    Sealed(Value),
    Raw(Vec<u8>),
}

pub(crate) type Behaviour = dyn Fn(&str, &Value, &[u8]) -> Reply + Send + Sync;

/// A peer played by the test: it opens sealed requests and answers what `behave`
/// says for (op, request, request nonce). It counts the requests of each op.
pub(crate) struct FakePeer {
    pub(crate) url: String,
    calls: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl FakePeer {
    pub(crate) fn start(ring: Keyring, behave: Arc<Behaviour>) -> FakePeer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let calls = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (calls2, stop2) = (Arc::clone(&calls), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                if let Ok(stream) = stream {
                    serve_one(stream, &ring, behave.as_ref(), &calls2);
                }
            }
        });
        FakePeer { url, calls, stop }
    }

    /// A quiet member with a fresh id: it proves that id to a hello (so a node
    /// adopts it), and answers the rest as [`plain_answer`] does.
    pub(crate) fn proving(ring: Keyring) -> FakePeer {
        let id = Identity::generate();
        let url: Arc<Mutex<String>> = Arc::default();
        let answer_url = Arc::clone(&url);
        let behave: Arc<Behaviour> = Arc::new(move |op, request, nonce| match op {
            "hello" => Reply::Sealed(FakePeer::hello_reply(
                &id,
                &answer_url.lock().unwrap(),
                nonce,
                &json!([]),
            )),
            _ => plain_answer(op, request),
        });
        let fake = FakePeer::start(ring, behave);
        *url.lock().unwrap() = fake.url.clone();
        fake
    }

    pub(crate) fn count(&self, op: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|o| *o == op)
            .count()
    }

    /// A hello answer from this peer, proving its id over `nonce`.
    pub(crate) fn hello_reply(id: &Identity, url: &str, nonce: &[u8], heads: &Value) -> Value {
        let me = id.author();
        json!({
            "node": {"id": me, "url": url},
            "digest": ZERO,
            "peers": [],
            "heads": heads,
            "proof": id.sign(&proof_bytes(nonce, &me)),
        })
    }
}

impl Drop for FakePeer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
    }
}

/// Reads one HTTP request, answers it, closes.
fn serve_one(
    mut stream: TcpStream,
    ring: &Keyring,
    behave: &Behaviour,
    calls: &Mutex<Vec<String>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let (head_end, length) = loop {
        let Ok(n) = stream.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while raw.len() < head_end + length {
        let Ok(n) = stream.read(&mut buf) else { return };
        if n == 0 {
            return;
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let op = path.trim_start_matches("/v1/").to_string();
    let blob = &raw[head_end..head_end + length];
    let now = dshare::time::now_ms();
    let Ok(opened) = ring.open(&request_aad(&path), blob, now) else {
        let _ = stream
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    };
    calls.lock().unwrap().push(op.clone());
    let request: Value = serde_json::from_slice(&opened.plaintext).unwrap_or(Value::Null);
    let body = match behave(&op, &request, &opened.nonce) {
        Reply::Sealed(v) => ring.seal(&answer_aad(&opened.nonce), v.to_string().as_bytes(), now),
        Reply::Raw(bytes) => bytes,
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Answers to push (every message stored) and range (nothing) as a quiet member would.
pub(crate) fn plain_answer(op: &str, request: &Value) -> Reply {
    match op {
        "push" => {
            let n = request["messages"].as_array().map_or(0, Vec::len);
            Reply::Sealed(json!({"outcomes": vec![json!({"status": "stored"}); n]}))
        }
        _ => Reply::Sealed(json!({"messages": []})),
    }
}

// 3. Many authors.

#[test]
fn heads_answers_are_paged_and_nodes_that_differ_in_many_authors_converge() {
    const PAGE: usize = 40;
    const AUTHORS: usize = 300;
    let page = PAGE.to_string();
    let env = [("DSHARE_TEST_HEADS_PAGE", page.as_str())];
    let s = Scratch::new();
    let a_home = s.home("a");
    ok(&a_home, &["init"]);
    let a = Node::start_with_env(&a_home, &["serve", "--listen", "127.0.0.1:0"], &env);
    let ring = keyring_of(&a_home);
    push_all(&ring, &a.url, &many_authors(AUTHORS));

    // A hello from a node that holds nothing: one bounded page, then the rest by
    // `heads`, every author once.
    let (first, bytes) = call(
        &ring,
        &a.url,
        "hello",
        &hello_from("http://127.0.0.1:9", ZERO),
    )
    .unwrap();
    let mut authors: Vec<String> = first["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["author"].as_str().unwrap().to_string())
        .collect();
    assert!(
        authors.len() <= PAGE,
        "a hello answer carried {} heads",
        authors.len()
    );
    assert!(bytes < PAGE * 200 + 2000, "a hello answer of {bytes} bytes");
    let mut next = first["heads_next"].clone();
    let mut pages = 1;
    while next.is_string() {
        let (page, _) = call(&ring, &a.url, "heads", &json!({ "after": next })).unwrap();
        let heads = page["heads"].as_array().unwrap();
        assert!(!heads.is_empty() && heads.len() <= PAGE);
        authors.extend(
            heads
                .iter()
                .map(|h| h["author"].as_str().unwrap().to_string()),
        );
        next = page["next"].clone();
        pages += 1;
    }
    let total = authors.len();
    authors.sort();
    authors.dedup();
    assert_eq!(
        (total, authors.len()),
        (AUTHORS, AUTHORS),
        "every author once"
    );
    assert!(pages >= AUTHORS / PAGE, "{pages} pages");

    // A new node that lacks every one of them catches up through the pages.
    let b_home = s.home("b");
    let invite = ok(&a_home, &["invite"]).trim().to_string();
    ok(&b_home, &["init", "--join", &invite]);
    let b = Node::start_with_env(&b_home, &["serve", "--listen", "127.0.0.1:0"], &env);
    let want = status(&a)["digest"].clone();
    wait_for("the new node to converge", DEADLINE * 2, || {
        (status(&b)["digest"] == want).then_some(())
    });
    eprintln!("{AUTHORS} authors in {pages} pages of at most {PAGE}; first answer {bytes} bytes");
}

#[test]
fn a_reachable_peer_whose_answer_fails_stays_up_for_pushes_and_is_reported() {
    let s = Scratch::new();
    let home = s.home("victim");
    ok(&home, &["init"]);
    let garbage = Arc::new(AtomicBool::new(false));
    let id = Arc::new(Identity::generate());
    let url_cell: Arc<Mutex<String>> = Arc::default();
    let behave: Arc<Behaviour> = {
        let (garbage, id, url_cell) =
            (Arc::clone(&garbage), Arc::clone(&id), Arc::clone(&url_cell));
        Arc::new(move |op, request, nonce| match op {
            "hello" if garbage.load(Ordering::Relaxed) => Reply::Raw(b"no seal here".to_vec()),
            "hello" => Reply::Sealed(FakePeer::hello_reply(
                &id,
                &url_cell.lock().unwrap(),
                nonce,
                &json!([]),
            )),
            _ => plain_answer(op, request),
        })
    };
    let fake = FakePeer::start(keyring_of(&home), behave);
    *url_cell.lock().unwrap() = fake.url.clone();
    let node = Node::start(&home, &["--peer", &fake.url]);
    crate::util::wait_peer_up(&home, &fake.url);

    garbage.store(true, Ordering::Relaxed);
    let row = wait_for("the failed answer to be reported", DEADLINE, || {
        peer_row(&home, &fake.url).filter(|p| p["last_error"].is_string())
    });
    assert_eq!(row["state"], "up", "a reachable peer stays up: {row}");
    let pushes = fake.count("push");
    ok(&home, &["send", "still pushed"]);
    wait_for("a push to the peer whose hello failed", DEADLINE, || {
        (fake.count("push") > pushes).then_some(())
    });
    assert!(
        node.log()
            .contains(&format!("exchange with peer {} failed", fake.url)),
        "the failure is logged: {}",
        node.log()
    );
}

/// Threads and resident kB of the process `pid`, from /proc.
pub(crate) fn threads_and_rss(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap()
    };
    (field("Threads:"), field("VmRSS:"))
}

fn saved_peers(home: &Path) -> usize {
    std::fs::read(home.join("peers.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .map_or(0, |v| v["peers"].as_array().map_or(0, Vec::len))
}

// 11. The peer table.

#[test]
fn three_thousand_sealed_hellos_from_fake_addresses_leave_threads_rss_and_the_table_bounded() {
    let s = Scratch::new();
    let home = s.home("victim");
    ok(&home, &["init"]);
    let node = Node::start(&home, &[]);
    let ring = keyring_of(&home);
    let before = threads_and_rss(node.pid());
    for i in 0..3000u32 {
        // Ports on a loopback address where nothing listens: each probe is refused.
        let from = format!("http://127.0.0.{}:{}", 2 + i / 60000, 1024 + i % 60000);
        call(&ring, &node.url, "hello", &hello_from(&from, ZERO)).unwrap();
    }
    let after = threads_and_rss(node.pid());
    let listed = json_lines(&ok(&home, &["--json", "peers"])).len();
    eprintln!(
        "threads {} -> {}, VmRSS {} -> {} kB, peers listed {listed}, saved {}",
        before.0,
        after.0,
        before.1,
        after.1,
        saved_peers(&home)
    );
    assert!(after.0 <= before.0 + 8, "threads {before:?} -> {after:?}");
    assert!(
        after.1 <= before.1 + 30_000,
        "VmRSS {before:?} -> {after:?} kB"
    );
    assert_eq!(listed, 0, "no unproven address is adopted");
    assert_eq!(saved_peers(&home), 0, "nor saved");
    node.get("/status", &[]);
}

#[test]
fn a_peer_list_of_two_thousand_dead_addresses_does_not_raise_the_threads() {
    let s = Scratch::new();
    let home = s.home("victim");
    ok(&home, &["init"]);
    let id = Arc::new(Identity::generate());
    let url_cell: Arc<Mutex<String>> = Arc::default();
    let dead: Vec<String> = (0..2000)
        .map(|i| format!("http://127.0.0.3:{}", 2000 + i))
        .collect();
    let behave: Arc<Behaviour> = {
        let (id, url_cell) = (Arc::clone(&id), Arc::clone(&url_cell));
        Arc::new(move |op, request, nonce| match op {
            "hello" => {
                let mut reply =
                    FakePeer::hello_reply(&id, &url_cell.lock().unwrap(), nonce, &json!([]));
                reply["peers"] = json!(dead);
                Reply::Sealed(reply)
            }
            _ => plain_answer(op, request),
        })
    };
    let fake = FakePeer::start(keyring_of(&home), behave);
    *url_cell.lock().unwrap() = fake.url.clone();
    let node = Node::start(&home, &["--peer", &fake.url]);
    let before = threads_and_rss(node.pid());
    wait_for("three hellos with the dead list", DEADLINE, || {
        (fake.count("hello") >= 3).then_some(())
    });
    let after = threads_and_rss(node.pid());
    let listed = json_lines(&ok(&home, &["--json", "peers"])).len();
    eprintln!("threads {} -> {}, peers listed {listed}", before.0, after.0);
    assert!(after.0 <= before.0 + 4, "threads {before:?} -> {after:?}");
    assert_eq!(listed, 1, "only the peer that proved its id");
}

// 13. A lying peer.

#[test]
fn heads_at_u64_max_panic_nothing_and_a_recovering_node_leaves_recovery() {
    let s = Scratch::new();
    let home = s.home("victim");
    ok(&home, &["init"]);
    {
        let _node = Node::start(&home, &[]);
        ok(&home, &["send", "before the crash"]);
    }
    let mut boxed = std::fs::OpenOptions::new()
        .append(true)
        .open(home.join("box.txt"))
        .unwrap();
    boxed
        .write_all(b"{\"chain\":\"0123\",\"id\":\"torn")
        .unwrap();
    drop(boxed);
    let liar = Arc::new(Identity::generate());
    let url_cell: Arc<Mutex<String>> = Arc::default();
    let behave: Arc<Behaviour> = {
        let (liar, url_cell) = (Arc::clone(&liar), Arc::clone(&url_cell));
        Arc::new(move |op, request, nonce| match op {
            "hello" => {
                let heads = json!([
                    {"author": Identity::generate().author(), "seq": u64::MAX, "id": ZERO},
                    {"author": Identity::generate().author(), "seq": 1_000_000u64, "id": ZERO},
                ]);
                Reply::Sealed(FakePeer::hello_reply(
                    &liar,
                    &url_cell.lock().unwrap(),
                    nonce,
                    &heads,
                ))
            }
            _ => plain_answer(op, request),
        })
    };
    let fake = FakePeer::start(keyring_of(&home), behave);
    *url_cell.lock().unwrap() = fake.url.clone();
    let node = Node::start(&home, &["--peer", &fake.url]);
    wait_for(
        "the node to leave recovery and take sends",
        DEADLINE,
        || {
            crate::util::run(&home, &["send", "after"])
                .status
                .success()
                .then_some(())
        },
    );
    let row = wait_for("the unserved claim to be reported", DEADLINE, || {
        peer_row(&home, &fake.url).filter(|p| p["last_error"].is_string())
    });
    assert_eq!(
        row["behind"], 0,
        "claims not served are not 'behind': {row}"
    );
    assert!(fake.count("hello") >= 1);
    assert!(!node.log().contains("panicked"), "{}", node.log());
}

#[test]
fn a_peer_answering_with_another_nodes_id_is_not_bound_to_it() {
    let s = Scratch::new();
    let a_home = s.home("a");
    ok(&a_home, &["init"]);
    let a = Node::start(&a_home, &[]);
    let b_home = s.home("b");
    let invite = ok(&a_home, &["invite"]).trim().to_string();
    ok(&b_home, &["init", "--join", &invite]);
    let b = Node::start(&b_home, &[]);
    let b_url = b.url.clone();
    crate::util::wait_peer_up(&a_home, &b_url);
    let b_id = peer_row(&a_home, &b_url).unwrap()["id"].clone();
    drop(b);
    wait_for("a to see b down", DEADLINE, || {
        (peer_row(&a_home, &b_url)?["state"] == "down").then_some(())
    });

    // The liar claims b's id, with a proof signed by some other key.
    let other = Arc::new(Identity::generate());
    let url_cell: Arc<Mutex<String>> = Arc::default();
    let behave: Arc<Behaviour> = {
        let (other, url_cell, b_id) = (Arc::clone(&other), Arc::clone(&url_cell), b_id.clone());
        Arc::new(move |op, request, nonce| match op {
            "hello" => {
                let mut reply =
                    FakePeer::hello_reply(&other, &url_cell.lock().unwrap(), nonce, &json!([]));
                reply["node"]["id"] = b_id.clone();
                Reply::Sealed(reply)
            }
            _ => plain_answer(op, request),
        })
    };
    let fake = FakePeer::start(keyring_of(&a_home), behave);
    *url_cell.lock().unwrap() = fake.url.clone();
    call(
        &keyring_of(&a_home),
        &a.url,
        "hello",
        &hello_from(&fake.url, ZERO),
    )
    .unwrap();
    wait_for("two hellos to the liar", DEADLINE, || {
        (fake.count("hello") >= 2).then_some(())
    });
    // One more round of a's workers.
    std::thread::sleep(Duration::from_millis(1500));
    let rows = json_lines(&ok(&a_home, &["--json", "peers"]));
    assert!(
        rows.iter().any(|p| p["url"] == b_url.as_str()),
        "b's real address is kept: {rows:?}"
    );
    assert!(
        !rows
            .iter()
            .any(|p| p["url"] == fake.url.as_str() && p["id"] == b_id),
        "the liar is not bound to b's id: {rows:?}"
    );
}

// 16. A garbage peers.json.

#[test]
fn a_garbage_peer_list_is_kept_aside_and_the_node_starts() {
    let s = Scratch::new();
    let home = s.home("victim");
    ok(&home, &["init"]);
    std::fs::write(home.join("peers.json"), b"{not json at all").unwrap();
    let node = Node::start(&home, &[]);
    let aside: Vec<_> = std::fs::read_dir(&home)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains("peers.json.bad-"))
        .collect();
    assert_eq!(aside.len(), 1, "one copy kept aside");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), b"{not json at all");
    assert!(node.log().contains("is not a peer list"), "{}", node.log());
}
