//! Several nodes on loopback: every message reaches every node, late and restarted
//! nodes catch up, nothing acknowledged is lost to kill -9, outsiders get nothing,
//! liveness is tracked, and `send --wait` means what it says.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{DEADLINE, Node, Scratch, fails, get, json_lines, ok, show, signal};

/// How long a catch-up of hundreds or thousands of messages may take: a debug build
/// checks one signature in about 10 ms, and every receiver checks every message.
const BULK: Duration = Duration::from_secs(120);

/// `log --json` with every message.
const LOG: &[&str] = &["log", "--json", "-n", "1000000"];

/// Polls `check` every 100 ms until it returns `Ok` or `deadline` passes; the panic
/// names the last reason it gave, so a timeout says what was still wrong.
fn until<T>(what: &str, deadline: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let end = Instant::now() + deadline;
    loop {
        match check() {
            Ok(v) => return v,
            Err(why) => assert!(
                Instant::now() < end,
                "timed out after {deadline:?} waiting for {what}: {why}"
            ),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The first node makes a network; each of the others joins it with the first one's
/// invite, so the first is the only peer it knows at start.
fn network(s: &Scratch, n: usize) -> Vec<Node> {
    let first = s.home("n0");
    ok(&first, &["init"]);
    let mut nodes = vec![Node::start(&first, &[])];
    let invite = ok(&first, &["invite"]).trim().to_string();
    for i in 1..n {
        let home = s.home(&format!("n{i}"));
        ok(&home, &["init", "--join", &invite]);
        nodes.push(Node::start(&home, &[]));
    }
    nodes
}

/// `peers --json` of the node running on `home`.
fn peers(home: &Path) -> Vec<Value> {
    json_lines(&ok(home, &["peers", "--json"]))
}

/// The state `peers --json` on `home` shows for `url`, if it lists it.
fn state_of(home: &Path, url: &str) -> Option<String> {
    peers(home)
        .iter()
        .find(|p| p["url"] == url)
        .map(|p| p["state"].as_str().unwrap().to_string())
}

/// Waits until every node shows every other node as up.
fn all_up(nodes: &[Node]) {
    until("every node to see every other one up", DEADLINE, || {
        for n in nodes {
            let listed = peers(&n.home);
            for other in nodes.iter().filter(|o| o.url != n.url) {
                let up = listed
                    .iter()
                    .any(|p| p["url"] == other.url.as_str() && p["state"] == "up");
                if !up {
                    return Err(format!(
                        "{} does not show {} up: {listed:?}",
                        n.url, other.url
                    ));
                }
            }
        }
        Ok(())
    });
}

/// `(messages, digest)` from the node's `/status`.
fn status(node: &Node) -> (u64, String) {
    let (code, body) = node.get("/status", &[]);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    (
        v["messages"].as_u64().unwrap(),
        v["digest"].as_str().unwrap().to_string(),
    )
}

/// Waits until every node holds the same messages (and `expected` of them, if given),
/// then requires their `log --json` outputs to be byte-identical. Returns that log.
fn converged(nodes: &[Node], expected: Option<usize>) -> String {
    converged_within(nodes, expected, DEADLINE)
}

/// [`converged`] with its own deadline.
fn converged_within(nodes: &[Node], expected: Option<usize>, deadline: Duration) -> String {
    until("the nodes to converge", deadline, || {
        let all: Vec<(u64, String)> = nodes.iter().map(status).collect();
        let same = all.windows(2).all(|w| w[0] == w[1]);
        let count = expected.is_none_or(|e| all[0].0 == e as u64);
        if same && count {
            Ok(())
        } else {
            Err(format!("(messages, digest) per node: {all:?}"))
        }
    });
    let logs: Vec<String> = nodes.iter().map(|n| ok(&n.home, LOG)).collect();
    for (n, log) in nodes.iter().zip(&logs) {
        assert!(
            log == &logs[0],
            "the log of {} differs from that of {}",
            n.url,
            nodes[0].url
        );
    }
    if let Some(e) = expected {
        assert_eq!(json_lines(&logs[0]).len(), e);
    }
    logs[0].clone()
}

/// Every box verifies, and every node reports the same digest. Returns it.
fn verify_all(nodes: &[Node]) -> String {
    let digests: Vec<String> = nodes
        .iter()
        .map(|n| {
            let report: Value =
                serde_json::from_str(ok(&n.home, &["verify", "--json"]).trim()).unwrap();
            assert_eq!(report["ok"], true, "{}: {report}", n.url);
            report["digest"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "verify digests differ: {digests:?}"
    );
    digests[0].clone()
}

/// Sends over the client API; returns the id.
fn send(node: &Node, body: &str) -> String {
    let (code, id) = node.get("/send", &[("msg", body)]);
    assert_eq!(code, 200, "{id}");
    id.trim().to_string()
}

/// Sends `count` messages to `node` from `threads` threads at once; returns the ids.
fn burst(node: &Node, tag: &str, count: usize, threads: usize) -> Vec<String> {
    let ids = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for t in 0..threads {
            let ids = &ids;
            scope.spawn(move || {
                for i in (t..count).step_by(threads) {
                    let id = send(node, &format!("{tag} {i}"));
                    ids.lock().unwrap().push(id);
                }
            });
        }
    });
    ids.into_inner().unwrap()
}

/// The ids in a `log --json` output.
fn ids(log: &str) -> HashSet<String> {
    json_lines(log)
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// The authors in a `log --json` output.
fn authors(log: &str) -> HashSet<String> {
    json_lines(log)
        .iter()
        .map(|m| m["author"].as_str().unwrap().to_string())
        .collect()
}

/// An address on loopback that was free a moment ago.
fn free_addr() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn sends_on_every_node_converge(n: usize, each: usize) {
    let s = Scratch::new();
    let nodes = network(&s, n);
    // Every node sends at once, from the command line, as soon as it runs: some
    // messages go out before all peers know each other.
    std::thread::scope(|scope| {
        for (i, node) in nodes.iter().enumerate() {
            scope.spawn(move || {
                for k in 0..each {
                    ok(&node.home, &["send", &format!("node {i} message {k}")]);
                }
            });
        }
    });
    let log = converged(&nodes, Some(n * each));
    let messages = json_lines(&log);
    let expected: HashSet<String> = (0..n)
        .flat_map(|i| (0..each).map(move |k| format!("node {i} message {k}")))
        .collect();
    let bodies: HashSet<String> = messages
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies, expected);
    assert_eq!(authors(&log).len(), n);
    // The conversation order: (clock, author, seq).
    let key = |m: &Value| {
        (
            m["clock"].as_u64().unwrap(),
            m["author"].as_str().unwrap().to_string(),
            m["seq"].as_u64().unwrap(),
        )
    };
    assert!(
        messages.windows(2).all(|w| key(&w[0]) < key(&w[1])),
        "the log is not in (clock, author, seq) order"
    );
    verify_all(&nodes);
    // Knowing only the first node, each learned every other one.
    all_up(&nodes);
}

#[test]
fn three_nodes_sending_at_once_end_with_one_identical_log() {
    sends_on_every_node_converge(3, 5);
}

#[test]
fn five_nodes_sending_at_once_end_with_one_identical_log() {
    sends_on_every_node_converge(5, 4);
}

#[test]
fn a_late_joiner_knowing_one_peer_gets_all_1000_messages_and_learns_every_peer() {
    let s = Scratch::new();
    let nodes = network(&s, 2);
    let start = Instant::now();
    burst(&nodes[0], "early", 1000, 4);
    eprintln!(
        "1000 sends to one node over HTTP took {:?}",
        start.elapsed()
    );
    let log = converged_within(&nodes, Some(1000), BULK);
    eprintln!(
        "2 nodes held the 1000 messages {:?} after the burst began",
        start.elapsed()
    );

    // The newcomer's invite names the second node only, which did not author any of
    // the messages: everything comes by relay.
    let invite = ok(&nodes[1].home, &["invite"]).trim().to_string();
    assert!(invite.contains(&format!("@{}#", nodes[1].url)), "{invite}");
    let home = s.home("late");
    ok(&home, &["init", "--join", &invite]);
    let start = Instant::now();
    let late = Node::start(&home, &[]);
    let mut all = nodes;
    all.push(late);
    assert_eq!(converged_within(&all, Some(1000), BULK), log);
    let caught_up = start.elapsed();
    until("the late joiner to list both others up", DEADLINE, || {
        let listed = peers(&home);
        let mut up: Vec<&str> = listed
            .iter()
            .filter(|p| p["state"] == "up")
            .map(|p| p["url"].as_str().unwrap())
            .collect();
        up.sort_unstable();
        let mut want = vec![all[0].url.as_str(), all[1].url.as_str()];
        want.sort_unstable();
        if up == want && listed.len() == 2 {
            Ok(())
        } else {
            Err(format!("{listed:?}"))
        }
    });
    eprintln!(
        "late joiner: caught up on 1000 messages {caught_up:?} after start, knew every peer up {:?} after start",
        start.elapsed()
    );
    // Its box, built from relayed messages alone, verifies.
    ok(&home, &["verify"]);
}

#[test]
fn a_restarted_node_catches_up_on_what_it_missed_from_its_saved_peers() {
    let s = Scratch::new();
    let mut nodes = network(&s, 3);
    all_up(&nodes);
    for node in &nodes {
        send(node, &format!("before, from {}", node.url));
    }
    converged(&nodes, Some(3));
    let away = nodes.pop().unwrap();
    let home = away.home.clone();
    assert!(away.stop().success());

    std::thread::scope(|scope| {
        for node in &nodes {
            scope.spawn(move || burst(node, &format!("while away, to {}", node.url), 100, 2));
        }
    });
    converged_within(&nodes, Some(203), BULK);

    // No --peer: the peers it learned were saved in its home.
    let start = Instant::now();
    nodes.push(Node::start(&home, &[]));
    converged_within(&nodes, Some(203), BULK);
    eprintln!(
        "restarted node caught up on 200 missed messages {:?} after start",
        start.elapsed()
    );
    verify_all(&nodes);
}

#[test]
fn kill_9_mid_burst_loses_no_acknowledged_message_on_any_node() {
    let s = Scratch::new();
    let mut nodes = network(&s, 3);
    all_up(&nodes);
    let acked = Mutex::new(Vec::<String>::new());
    let stop = AtomicBool::new(false);
    let victim = &nodes[0];
    std::thread::scope(|scope| {
        // Four senders to the victim, one to another node all along.
        for t in 0..5 {
            let target = if t == 4 { &nodes[1] } else { victim };
            let (url, token) = (target.url.clone(), target.token.clone());
            let (acked, stop) = (&acked, &stop);
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (code, _, body) = get(&format!("{url}/send?msg=t{t}+%23{i}&token={token}"));
                    if code == 200 {
                        acked.lock().unwrap().push(body.trim().to_string());
                    }
                    i += 1;
                }
            });
        }
        until("200 acknowledged sends", DEADLINE, || {
            let n = acked.lock().unwrap().len();
            if n >= 200 {
                Ok(())
            } else {
                Err(format!("{n} so far"))
            }
        });
        signal(victim.pid(), "KILL");
        // A little longer, so the other node keeps taking messages while one is dead.
        std::thread::sleep(Duration::from_millis(300));
        stop.store(true, Ordering::Relaxed);
    });
    let home = nodes.remove(0).kill9();
    let acked = acked.into_inner().unwrap();
    nodes.insert(0, Node::start(&home, &[]));

    let log = converged_within(&nodes, None, BULK);
    let held = ids(&log);
    let lost: Vec<_> = acked.iter().filter(|id| !held.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages are missing on every node: {lost:?}",
        lost.len(),
        acked.len()
    );
    verify_all(&nodes);
    eprintln!(
        "kill -9 mid-burst: {} acknowledged, {} held on every node after restart",
        acked.len(),
        held.len()
    );
}

#[test]
fn a_node_of_another_network_exchanges_nothing_with_members() {
    let s = Scratch::new();
    let members = network(&s, 2);
    all_up(&members);
    let outsider_home = s.home("outsider");
    ok(&outsider_home, &["init"]);
    let outsider = Node::start(&outsider_home, &["--peer", &members[0].url]);
    send(&members[0], "members only");
    send(&members[1], "members only too");
    send(&outsider, "from outside");
    // Its first hello was refused...
    until(
        "the outsider to mark the member down",
        DEADLINE,
        || match state_of(&outsider_home, &members[0].url).as_deref() {
            Some("down") => Ok(()),
            other => Err(format!("state {other:?}")),
        },
    );
    // ... and a few more rounds change nothing.
    std::thread::sleep(Duration::from_secs(4));
    send(&outsider, "from outside, later");

    let member_log = converged(&members, Some(2));
    let outsider_log = ok(&outsider_home, LOG);
    let outsider_id = ok(&outsider_home, &["id"]).trim().to_string();
    assert!(
        !authors(&member_log).contains(&outsider_id),
        "a member stored the outsider's messages:\n{member_log}"
    );
    assert_eq!(authors(&outsider_log), HashSet::from([outsider_id]));
    assert_eq!(json_lines(&outsider_log).len(), 2);

    for m in &members {
        let listed = peers(&m.home);
        assert!(
            !listed
                .iter()
                .any(|p| p["url"] == outsider.url.as_str() && p["state"] == "up"),
            "{} shows the outsider up: {listed:?}",
            m.url
        );
    }
    // The outsider learned no other member from the one it was given.
    let seen = peers(&outsider_home);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_ne!(seen[0]["state"], "up", "{seen:?}");
    assert!(seen[0]["id"].is_null(), "{seen:?}");
    verify_all(&members);
    ok(&outsider_home, &["verify"]);
}

#[test]
fn the_peer_api_answers_garbage_and_gets_with_a_bare_403() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let node = Node::start(&home, &[]);
    for path in ["/v1/hello", "/v1/push", "/v1/range", "/v1/nothing"] {
        let url = format!("{}{path}", node.url);
        for body in [&b"garbage"[..], &[0u8; 200][..], b""] {
            let (code, answer) = crate::util::raw_post(&url, body);
            assert_eq!(code, 403, "POST {path} {body:?}");
            assert!(answer.is_empty(), "POST {path}: {answer:?}");
        }
        let (code, head, answer) = get(&url);
        assert_eq!(code, 403, "GET {path}: {head}");
        assert!(answer.is_empty(), "GET {path}: {answer:?}");
    }
    // The client token opens nothing under /v1/ either.
    let (code, _, answer) = get(&node.url_for("/v1/hello", &[]));
    assert_eq!((code, answer.as_str()), (403, ""));
}

#[test]
fn a_stopped_peer_shows_down_then_up_again_after_restart() {
    let s = Scratch::new();
    let first = s.home("a");
    ok(&first, &["init"]);
    let a = Node::start(&first, &[]);
    let invite = ok(&first, &["invite"]).trim().to_string();
    let (b_home, c_home) = (s.home("b"), s.home("c"));
    ok(&b_home, &["init", "--join", &invite]);
    ok(&c_home, &["init", "--join", &invite]);
    // B keeps its address across the restart, as a real machine would.
    let b_addr = free_addr();
    let serve_b = ["serve", "--listen", b_addr.as_str()];
    let mut nodes = vec![
        a,
        Node::start_with(&b_home, &serve_b),
        Node::start(&c_home, &[]),
    ];
    let b_url = nodes[1].url.clone();
    assert_eq!(b_url, format!("http://{b_addr}"));
    all_up(&nodes);
    let seen = peers(&first);
    let view = seen.iter().find(|p| p["url"] == b_url.as_str()).unwrap();
    assert!(view["last_seen"].is_u64(), "{view}");
    assert!(view["rtt_ms"].is_number(), "{view}");
    assert!(view["id"].is_string(), "{view}");

    let start = Instant::now();
    assert!(nodes.remove(1).stop().success());
    for home in [&first, &c_home] {
        until(
            "B to show down",
            Duration::from_secs(10),
            || match state_of(home, &b_url).as_deref() {
                Some("down") => Ok(()),
                other => Err(format!("state {other:?}")),
            },
        );
    }
    let down_after = start.elapsed();

    let start = Instant::now();
    nodes.insert(1, Node::start_with(&b_home, &serve_b));
    for home in [&first, &c_home] {
        until(
            "B to show up again",
            Duration::from_secs(10),
            || match state_of(home, &b_url).as_deref() {
                Some("up") => Ok(()),
                other => Err(format!("state {other:?}")),
            },
        );
    }
    eprintln!(
        "liveness: stopped peer shown down {down_after:?} after stop, up {:?} after restart",
        start.elapsed()
    );
    // It kept no second entry for itself or anyone.
    assert_eq!(peers(&first).len(), 2);
}

#[test]
fn send_wait_all_confirms_every_up_peer_and_names_a_frozen_one() {
    let s = Scratch::new();
    let nodes = network(&s, 3);
    all_up(&nodes);
    let (a, frozen) = (&nodes[0], &nodes[2]);

    let out = ok(
        &a.home,
        &[
            "--json",
            "send",
            "--wait",
            "all",
            "--timeout",
            "10s",
            "everyone has this",
        ],
    );
    let answer: Value = serde_json::from_str(out.trim()).unwrap();
    let id = answer["id"].as_str().unwrap();
    let mut acked: Vec<&str> = answer["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    acked.sort_unstable();
    let mut others = vec![nodes[1].url.as_str(), nodes[2].url.as_str()];
    others.sort_unstable();
    assert_eq!(acked, others, "{answer}");
    assert_eq!(answer["missing"], serde_json::json!([]), "{answer}");
    // Confirmed means stored: no polling.
    for n in &nodes {
        assert!(ids(&ok(&n.home, LOG)).contains(id), "{} lacks it", n.url);
    }

    signal(frozen.pid(), "STOP");
    let start = Instant::now();
    let out = fails(
        &a.home,
        &[
            "send",
            "--wait",
            "all",
            "--timeout",
            "2s",
            "sent while one peer is frozen",
        ],
        1,
    );
    let took = start.elapsed();
    let one = crate::util::run(
        &a.home,
        &[
            "send",
            "--wait",
            "1",
            "--timeout",
            "10s",
            "one peer is enough",
        ],
    );
    signal(frozen.pid(), "CONT");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&frozen.url), "{err}");
    assert!(!err.contains(&nodes[1].url), "{err}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "send --wait all --timeout 2s took {took:?}"
    );
    assert!(one.status.success(), "{}", show(&one));
    // Stored on the sender either way, and the thawed peer catches up.
    converged(&nodes, Some(3));
}

/// A node listening on a wildcard address without `--advertise` has no URL to give,
/// so no peer can pull from it: what it stored while a peer was down must reach that
/// peer some other way once it is back.
#[test]
fn a_node_without_an_advertised_address_delivers_what_a_returning_peer_missed() {
    let s = Scratch::new();
    let a_home = s.home("a");
    ok(&a_home, &["init"]);
    let a_addr = free_addr();
    let a_url = format!("http://{a_addr}");
    let serve_a = ["serve", "--listen", a_addr.as_str()];
    let a = Node::start_with(&a_home, &serve_a);
    let invite = ok(&a_home, &["invite"]).trim().to_string();
    let hidden_home = s.home("hidden");
    ok(&hidden_home, &["init", "--join", &invite]);
    let hidden = Node::start_with(&hidden_home, &["serve", "--listen", "0.0.0.0:0"]);
    send(&hidden, "while a is up");
    let mut nodes = vec![a, hidden];
    converged(&nodes, Some(1));

    assert!(nodes.remove(0).stop().success());
    let state = |want: &str| {
        until(
            &format!("the hidden node to show A {want}"),
            DEADLINE,
            || match state_of(&hidden_home, &a_url) {
                Some(s) if s == want => Ok(()),
                other => Err(format!("state {other:?}")),
            },
        );
    };
    state("down");
    send(&nodes[0], "while a is away");
    nodes.insert(0, Node::start_with(&a_home, &serve_a));
    state("up");
    converged(&nodes, Some(2));
}

/// A node restarted on another port (port 0 picks a new one) is the same node: its
/// peers keep the new address and forget the old one once it is down.
#[test]
fn a_peer_back_on_another_port_replaces_its_old_address() {
    let s = Scratch::new();
    let mut nodes = network(&s, 2);
    all_up(&nodes);
    let b = nodes.pop().unwrap();
    let (b_home, old_url) = (b.home.clone(), b.url.clone());
    b.stop();
    let b = Node::start(&b_home, &[]);
    assert_ne!(b.url, old_url);
    let a_home = nodes[0].home.clone();
    until(
        "the old address to be forgotten and the new one up",
        DEADLINE,
        || {
            let list = peers(&a_home);
            let urls: Vec<&str> = list.iter().map(|p| p["url"].as_str().unwrap()).collect();
            let new_up = state_of(&a_home, &b.url).as_deref() == Some("up");
            if new_up && !urls.contains(&old_url.as_str()) {
                Ok(())
            } else {
                Err(format!("{list:?}"))
            }
        },
    );
    let saved = std::fs::read_to_string(a_home.join("peers.json")).unwrap();
    assert!(!saved.contains(&old_url), "{saved}");
}
