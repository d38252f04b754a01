//! dshare's replication simulated for networks too large to run on one machine,
//! running the real protocol core: every simulated node is a
//! `dshare::replicate::core::Core`, fed through the same `handle` the node's drive
//! feeds it (`dshare::replicate::core::sim`, whose test replays a node's events into
//! a fresh core and gets the very same actions). Links delay 1–50 ms; 1% of packets
//! are lost, each costing an exchange a 200 ms retransmission. Message and hello sizes
//! are those of the real types, serialized and sealed by the library itself.
//!
//! ```sh
//! cargo bench --bench gossip_sim                     # N = 3, 10, 30, 100, 1000, 10000
//! DSHARE_SIM_NODES=30,1000 DSHARE_SIM_MESSAGES=50 cargo bench --bench gossip_sim
//! ```
//!
//! Each node knows min(N − 1, 64) random peers (the real table holds 64 at most).
//! After 20 s of start-up and quiet (rounds slow down to one every 8 s at rest),
//! 16 s at rest are measured (exchanges a node starts each second), then messages
//! are sent from random nodes every 200 ms and followed until 10 s after the last. The results are in docs/SCALING.md.

use std::fmt::Write as _;

use dshare::chain::Head;
use dshare::identity::Identity;
use dshare::message::{Draft, Message};
use dshare::replicate::core::sim::{Sim, SimConfig};
use dshare::replicate::protocol::{Hello, HelloReply, Messages, NodeInfo, PushReply};
use dshare::seal::{Keyring, OVERHEAD};
use dshare::secret::Secret;

/// The default of `dshare serve --fanout`.
const FANOUT: usize = 8;
/// The most peers a node shares in a hello (`PEERS_SHARED_SAMPLE`).
const SHARED: usize = 8;
/// HTTP/1.1 request and response heads as ureq and tiny_http write them, about.
const REQUEST_HEAD: usize = 160;
const RESPONSE_HEAD: usize = 130;

/// Byte sizes of the real requests, sealed, with HTTP heads.
struct Sizes {
    push: usize,
    push_reply: usize,
}

fn sample_message() -> Message {
    let key = Identity::generate();
    let body = "x".repeat(150);
    Message::sign(
        &Draft {
            author: key.author(),
            seq: 12_345,
            prev: Some(dshare::hex::Hex([3; 32])),
            clock: 67_890,
            ts: 1_796_031_234_552,
            body: &body,
        },
        &key,
    )
}

fn sealed(ring: &Keyring, value: &impl serde::Serialize) -> usize {
    let plain = serde_json::to_vec(value).expect("serializes");
    let blob = ring.seal(b"aad", &plain, 1);
    assert_eq!(blob.len(), plain.len() + OVERHEAD);
    blob.len()
}

fn url(i: usize) -> String {
    format!(
        "http://10.{}.{}.{}:7070",
        i / 65_536 % 256,
        i / 256 % 256,
        i % 256
    )
}

/// A hello and its in-sync answer between two nodes of an `n`-node network, and the
/// extra bytes the answer carries per author when the digests differ.
fn hello_bytes(ring: &Keyring, n: usize) -> (usize, usize, usize) {
    let me = NodeInfo {
        id: dshare::hex::Hex([1; 32]),
        url: Some(url(0)),
    };
    let peers: Vec<String> = (1..n).take(SHARED).map(url).collect();
    let hello = Hello {
        from: me.clone(),
        digest: dshare::hex::Hex([2; 32]),
        peers: peers.clone(),
        reconcile: true,
        link: Some(dshare::replicate::core::Word {
            link: dshare::replicate::core::Link::Want,
            seq: 1_764_000_000_000,
        }),
    };
    let reply = HelloReply {
        node: me,
        digest: dshare::hex::Hex([2; 32]),
        peers,
        heads: None,
        heads_next: None,
        proof: None,
        reconcile: true,
        link: Some(dshare::replicate::core::Word {
            link: dshare::replicate::core::Link::Want,
            seq: 1_764_000_000_000,
        }),
    };
    let head = Head {
        author: dshare::hex::Hex([4; 32]),
        seq: 123_456,
        id: dshare::hex::Hex([5; 32]),
    };
    let per_author = serde_json::to_vec(&head).expect("serializes").len() + 1;
    (
        sealed(ring, &hello) + REQUEST_HEAD,
        sealed(ring, &reply) + RESPONSE_HEAD,
        per_author,
    )
}

/// What the spread of the messages of one network size cost and took.
struct Row {
    exchanges_per_node_s: f64,
    to_999_ms: (u64, u64),
    to_all_ms: (u64, u64),
    never: usize,
    pushes_per_message: f64,
    offers_per_message: f64,
    duplicates: f64,
    repaired_per_message: f64,
}

fn percentile(sorted: &[u64], q: f64) -> u64 {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted.get(i).copied().unwrap_or(0)
}

fn simulate(n: usize, messages: usize, fanout: usize) -> Row {
    let mut sim = Sim::new(SimConfig {
        nodes: n,
        table: 64.min(n - 1),
        delay_ms: (1, 50),
        loss: 0.01,
        fanout,
        seed: 0x9e37_79b9_7f4a_7c15 ^ n as u64,
        joining: std::env::var_os("DSHARE_SIM_RANDOM_TABLES").is_none(),
    });
    let (quiet_from, quiet_to) = (20_000, 36_000);
    sim.run_until(quiet_from);
    let before = sim.counts.exchanges;
    sim.run_until(quiet_to);
    let exchanges_per_node_s =
        (sim.counts.exchanges - before) as f64 / n as f64 / ((quiet_to - quiet_from) as f64 / 1e3);
    let (pushes, duplicates, repaired, offers) = (
        sim.counts.pushes,
        sim.counts.duplicates,
        sim.counts.repaired,
        sim.counts.offers,
    );
    let mut sent = Vec::new();
    let mut pick = dshare::replicate::core::Rng::new(n as u64);
    for i in 0..messages {
        let author = usize::try_from(pick.below(n as u64)).unwrap_or(0);
        sent.push((sim.send(author), sim.now));
        sim.run_until(quiet_to + 200 * (i as u64 + 1));
    }
    sim.run_until(sim.now + 10_000);
    let (mut to_999, mut to_all, mut never) = (Vec::new(), Vec::new(), 0);
    for (m, at) in &sent {
        let mut times: Vec<u64> = sim.arrivals(*m).iter().flatten().map(|t| t - at).collect();
        never += n - times.len();
        times.sort_unstable();
        let k = ((n as f64) * 0.999).ceil() as usize;
        to_999.push(times.get(k.saturating_sub(1)).copied().unwrap_or(u64::MAX));
        to_all.push(if times.len() == n {
            *times.last().unwrap_or(&0)
        } else {
            u64::MAX
        });
    }
    to_999.sort_unstable();
    to_all.sort_unstable();
    let m = messages as f64;
    let pushed = (sim.counts.pushes - pushes) as f64;
    Row {
        exchanges_per_node_s,
        to_999_ms: (percentile(&to_999, 0.5), *to_999.last().unwrap_or(&0)),
        to_all_ms: (percentile(&to_all, 0.5), *to_all.last().unwrap_or(&0)),
        never,
        pushes_per_message: pushed / m,
        offers_per_message: (sim.counts.offers - offers) as f64 / m,
        duplicates: (sim.counts.duplicates - duplicates) as f64 / pushed.max(1.0),
        repaired_per_message: (sim.counts.repaired - repaired) as f64 / m,
    }
}

fn ms(t: u64) -> String {
    if t == u64::MAX {
        "never".into()
    } else {
        format!("{t}")
    }
}

fn main() {
    let nodes: Vec<usize> = std::env::var("DSHARE_SIM_NODES")
        .unwrap_or_else(|_| "3,10,30,100,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("a list of node counts"))
        .collect();
    let messages: usize =
        std::env::var("DSHARE_SIM_MESSAGES").map_or(20, |s| s.parse().expect("a number"));
    let fanout: usize =
        std::env::var("DSHARE_SIM_FANOUT").map_or(FANOUT, |s| s.parse().expect("a number"));
    let ring = Keyring::new(&Secret::random());
    let m = sample_message();
    let sizes = Sizes {
        push: sealed(
            &ring,
            &Messages {
                messages: vec![m.clone()],
                sent_to_all: true,
                first: None,
                from: Some(url(0)),
            },
        ) + REQUEST_HEAD,
        push_reply: sealed(
            &ring,
            &PushReply {
                outcomes: vec![dshare::mbox::Outcome::Stored],
            },
        ) + RESPONSE_HEAD,
    };
    let per_push = sizes.push + sizes.push_reply;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Fan-out {fanout}; {messages} messages of 150 bytes per network size; links 1–50 ms, 1% loss; one push exchange = {} B request + {} B answer (sealed JSON + HTTP head).\n",
        sizes.push, sizes.push_reply
    );
    out.push_str("| nodes | exchanges a node starts per s, at rest | hello + answer, in sync | repair per node at rest, both ways | to 99.9% of nodes, ms, median / max | to all, ms, median / max | nodes never reached | pushes per message (per node) | offers per message (per node) | duplicates | pulled by repair per message | push bytes per message, network |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for &n in &nodes {
        let row = simulate(n.max(2), messages, fanout);
        let (hello, reply, _) = hello_bytes(&ring, n);
        // A node starts about one exchange a round and answers about as many.
        let per_node = 2.0 * row.exchanges_per_node_s * (hello + reply) as f64;
        let _ = writeln!(
            out,
            "| {n} | {:.2} | {} B | {}/s | {} / {} | {} / {} | {} | {:.1} ({:.1}) | {:.1} ({:.1}) | {:.0}% | {:.1} | {} |",
            row.exchanges_per_node_s,
            hello + reply,
            bytes(per_node),
            ms(row.to_999_ms.0),
            ms(row.to_999_ms.1),
            ms(row.to_all_ms.0),
            ms(row.to_all_ms.1),
            row.never,
            row.pushes_per_message,
            row.pushes_per_message / n as f64,
            row.offers_per_message,
            row.offers_per_message / n as f64,
            100.0 * row.duplicates,
            row.repaired_per_message,
            bytes(row.pushes_per_message * per_push as f64),
        );
    }
    let (_, _, per_author) = hello_bytes(&ring, 2);
    let _ = writeln!(
        out,
        "\nWhen two nodes' digests differ, the answer to a hello also carries every author's head: {per_author} bytes of JSON per author, so a network of A authors sends A × {per_author} bytes per out-of-sync exchange."
    );
    println!("{out}");
}

fn bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}
