//! A fleet, not a room: threads per node and calls to peers stay bounded whatever
//! the number of peers, and the cost of a node at rest is measured (an ignored test
//! prints the figures).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dshare::identity::Identity;
use serde_json::json;

use crate::attack_peers::{Behaviour, FakePeer, Reply, keyring_of, plain_answer};
use crate::util::{DEADLINE, Node, Scratch, json_lines, ok, raw_request, wait_for};

/// Members played by the test: each proves its own id and stores what it is pushed.
fn members(home: &Path, n: usize) -> Vec<FakePeer> {
    (0..n)
        .map(|_| {
            let id = Arc::new(Identity::generate());
            let url: Arc<std::sync::Mutex<String>> = Arc::default();
            let behave: Arc<Behaviour> = {
                let (id, url) = (Arc::clone(&id), Arc::clone(&url));
                Arc::new(move |op, request, nonce| match op {
                    "hello" => Reply::Sealed(FakePeer::hello_reply(
                        &id,
                        &url.lock().unwrap(),
                        nonce,
                        &json!([]),
                    )),
                    _ => plain_answer(op, request),
                })
            };
            let fake = FakePeer::start(keyring_of(home), behave);
            *url.lock().unwrap() = fake.url.clone();
            fake
        })
        .collect()
}

fn hellos(fakes: &[FakePeer]) -> usize {
    fakes.iter().map(|f| f.count("hello")).sum()
}

/// 40 peers: one thread per peer made 40 more threads (over 50 in all), and a hello
/// to each every second. Now a fixed pool calls them: threads stay at or under 32,
/// and the node starts about one exchange a round (plus retries, bounded) whatever
/// the number of peers.
#[test]
fn forty_peers_cost_no_more_threads_or_calls_than_a_few() {
    const PEERS: usize = 40;
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let fakes = members(&home, PEERS);
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    for f in &fakes {
        args.extend(["--peer", f.url.as_str()]);
    }
    let node = Node::start_with(&home, &args);
    wait_for("every peer up", DEADLINE, || {
        (peers_up(&home) == PEERS).then_some(())
    });
    let at_rest = threads(node.pid());
    let before = hellos(&fakes);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let per_second = (hellos(&fakes) - before) as f64 / start.elapsed().as_secs_f64();
    // A send to all of them, waiting for every confirmation.
    ok(
        &home,
        &["send", "--wait", "all", "--timeout", "20s", "hello fleet"],
    );
    let after_send = threads(node.pid());
    eprintln!(
        "{PEERS} peers: threads {at_rest} at rest, {after_send} after a send --wait all; {per_second:.1} hellos a second"
    );
    assert!(at_rest <= 32, "threads at rest: {at_rest}");
    assert!(after_send <= 32, "threads after a send: {after_send}");
    assert!(per_second <= 4.0, "hellos a second: {per_second:.1}");
    assert!(
        fakes.iter().all(|f| f.count("push") >= 1),
        "every peer got the message"
    );
}

/// Threads of the process `pid`, from /proc.
fn threads(pid: u32) -> u64 {
    status_field(pid, "Threads:")
}

fn status_field(pid: u32, name: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) of `pid` in clock ticks (100 a second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: fields are counted after its closing paren.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the paren.
    field(11) + field(12)
}

/// Bytes the node sent to and received from peers so far, from its metrics (bodies
/// exact, HTTP heads estimated; TCP/IP framing not counted).
fn peer_bytes(node: &Node) -> (u64, u64) {
    let auth = format!("Authorization: Bearer {}", node.token);
    let (_, _, text) = raw_request(&format!("{}/metrics", node.url), &[&auth]);
    let sample = |series: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)?
                    .strip_prefix(' ')?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or(0.0) as u64
    };
    (
        sample("dshare_peer_bytes_sent_total"),
        sample("dshare_peer_bytes_received_total"),
    )
}

/// The first node makes a network; each of the others joins it with its invite.
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

fn peers_up(home: &Path) -> usize {
    json_lines(&ok(home, &["--json", "peers"]))
        .iter()
        .filter(|p| p["state"] == "up")
        .count()
}

/// Waits until every node lists `want` peers up.
fn wait_all_know(nodes: &[Node], want: usize, deadline: Duration) {
    wait_for("every node to list its peers up", deadline, || {
        nodes
            .iter()
            .all(|n| peers_up(&n.home) >= want)
            .then_some(())
    });
}

/// Per-node averages over `span` at rest: threads, share of a core, bytes out and in
/// per second; and the most threads of any node.
struct AtRest {
    threads_mean: f64,
    threads_max: u64,
    cpu_percent: f64,
    out_per_s: f64,
    in_per_s: f64,
}

/// CPU ticks, and peer bytes out and in, of one node at one moment.
type Reading = (u64, (u64, u64));

fn at_rest(nodes: &[Node], span: Duration) -> AtRest {
    let pids: Vec<u32> = nodes.iter().map(Node::pid).collect();
    let sample = || -> Vec<Reading> {
        nodes
            .iter()
            .map(|n| (cpu_ticks(n.pid()), peer_bytes(n)))
            .collect()
    };
    let before = sample();
    let start = Instant::now();
    std::thread::sleep(span);
    let secs = start.elapsed().as_secs_f64();
    let after = sample();
    let n = nodes.len() as f64;
    let threads: Vec<u64> = pids.iter().map(|&p| threads(p)).collect();
    let sum = |f: &dyn Fn(&Reading, &Reading) -> u64| {
        before.iter().zip(&after).map(|(b, a)| f(b, a)).sum::<u64>() as f64
    };
    AtRest {
        threads_mean: threads.iter().sum::<u64>() as f64 / n,
        threads_max: threads.iter().copied().max().unwrap_or(0),
        cpu_percent: sum(&|b, a| a.0 - b.0) / n / secs,
        out_per_s: sum(&|b, a| a.1.0 - b.1.0) / n / secs,
        in_per_s: sum(&|b, a| a.1.1 - b.1.1) / n / secs,
    }
}

/// Prints the at-rest figures of a network of `DSHARE_FLEET_NODES` nodes (3 unless
/// set). `cargo test --test tests fleet::at_rest -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: starts many nodes and prints figures"]
fn at_rest_cost_per_node() {
    let n: usize = std::env::var("DSHARE_FLEET_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let s = Scratch::new();
    let nodes = network(&s, n);
    wait_all_know(&nodes, n - 1, DEADLINE * 4);
    // Let the start-up catch-up and peer exchange settle.
    std::thread::sleep(Duration::from_secs(5));
    let r = at_rest(&nodes, Duration::from_secs(20));
    eprintln!(
        "at rest, {n} nodes, per node: threads {:.1} (max {}), CPU {:.3}% of a core, {:.0} B/s sent to peers, {:.0} B/s received",
        r.threads_mean, r.threads_max, r.cpu_percent, r.out_per_s, r.in_per_s
    );
}
