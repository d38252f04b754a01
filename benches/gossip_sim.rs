//! A simulation of dshare's replication protocol for networks too large to run on one
//! machine: push with the fan-out rule of `src/replicate/mod.rs` (`dispatch`), and the
//! anti-entropy hello every worker sends its peer about once a second
//! (`src/replicate/worker.rs`). Message and hello sizes are those of the real types,
//! serialized and sealed by the library itself.
//!
//! ```sh
//! cargo bench --bench gossip_sim                     # N = 3, 10, 30, 100, 1000, 10000
//! DSHARE_SIM_NODES=30,1000 DSHARE_SIM_MESSAGES=500 cargo bench --bench gossip_sim
//! ```
//!
//! The model, per message: the author stores it (round 0) and pushes it. While it knows
//! at most `ORIGIN_FANOUT` (32) peers it pushes to all of them, marked `sent_to_all`,
//! and nobody forwards. Beyond that, every node
//! that newly stores a message in round r pushes it in round r + 1 to every peer when
//! it knows at most `fanout` peers, else to `fanout` peers drawn at random among the
//! up peers other than the message's author (the code skips a peer that wrote every
//! message of the batch; it does not know, and so may pick, the node a message came
//! from). A node that already holds the message answers `duplicate` and does
//! not forward it. Nodes that no push reached get the message from anti-entropy: their
//! next hello (within ~1 s) shows a peer ahead, and they pull. Every node knows every
//! other one (peer exchange converges to that in a network that stays up).
//! The results are in docs/SCALING.md.

use std::fmt::Write as _;

use dshare::chain::Head;
use dshare::identity::Identity;
use dshare::message::{Draft, Message};
use dshare::replicate::ORIGIN_FANOUT;
use dshare::replicate::protocol::{
    Hello, HelloReply, MAX_PEERS_SHARED, Messages, NodeInfo, PushReply,
};
use dshare::seal::{Keyring, OVERHEAD};
use dshare::secret::Secret;

/// The default of `dshare serve --fanout`.
const FANOUT: usize = 8;
/// HTTP/1.1 request and response heads as ureq and tiny_http write them, about.
const REQUEST_HEAD: usize = 160;
const RESPONSE_HEAD: usize = 130;

/// xorshift64*: reproducible, and good enough to pick peers.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What one message's spread cost.
#[derive(Default, Clone, Copy)]
struct Spread {
    /// Push rounds until the last node that a push reached stored it.
    rounds: usize,
    /// Nodes that no push reached (anti-entropy brings it to them).
    missed: usize,
    /// Push requests sent, and how many of them found the message already there.
    pushes: usize,
    duplicates: usize,
}

fn spread(n: usize, fanout: usize, rng: &mut Rng) -> Spread {
    let mut has = vec![false; n];
    let author = rng.below(n);
    has[author] = true;
    let mut s = Spread::default();
    if n - 1 <= ORIGIN_FANOUT.max(fanout) {
        // The author pushes to every peer, marked `sent_to_all`: nobody forwards.
        s.rounds = usize::from(n > 1);
        s.pushes = n - 1;
        return s;
    }
    let mut frontier = vec![author];
    let mut picks: Vec<usize> = Vec::with_capacity(fanout);
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for &from in &frontier {
            picks.clear();
            // Never back to the author: it holds its own messages (`dispatch`).
            let eligible = |p: usize| p != from && p != author;
            if n - 1 <= fanout {
                picks.extend((0..n).filter(|&p| eligible(p)));
            } else {
                // `fanout` distinct peers, uniformly among the eligible ones.
                let want = fanout.min(n - if from == author { 1 } else { 2 });
                while picks.len() < want {
                    let p = rng.below(n);
                    if eligible(p) && !picks.contains(&p) {
                        picks.push(p);
                    }
                }
            }
            for &p in &picks {
                s.pushes += 1;
                if has[p] {
                    s.duplicates += 1;
                } else {
                    has[p] = true;
                    next.push(p);
                }
            }
        }
        if !next.is_empty() {
            s.rounds += 1;
        }
        frontier = next;
    }
    s.missed = has.iter().filter(|h| !**h).count();
    s
}

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
    let peers: Vec<String> = (1..n).take(MAX_PEERS_SHARED).map(url).collect();
    let hello = Hello {
        from: me.clone(),
        digest: dshare::hex::Hex([2; 32]),
        peers: peers.clone(),
        reconcile: true,
    };
    let reply = HelloReply {
        node: me,
        digest: dshare::hex::Hex([2; 32]),
        peers,
        heads: None,
        heads_next: None,
        proof: None,
        reconcile: true,
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

fn main() {
    let nodes: Vec<usize> = std::env::var("DSHARE_SIM_NODES")
        .unwrap_or_else(|_| "3,10,30,100,1000,10000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("a list of node counts"))
        .collect();
    let messages: usize =
        std::env::var("DSHARE_SIM_MESSAGES").map_or(1000, |s| s.parse().expect("a number"));
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
        "Fan-out {fanout}; {messages} messages of 150 bytes per network size; one push exchange = {} B request + {} B answer (sealed JSON + HTTP head).\n",
        sizes.push, sizes.push_reply
    );
    out.push_str("| nodes | push rounds to all reached, median / max | nodes missed by push, mean (anti-entropy, ≤ ~1 s) | messages with a miss | pushes per message (per node) | duplicates | push bytes per message, network | hello + answer, in sync | anti-entropy per node, idle | anti-entropy, network, idle |\n");
    out.push_str("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for &n in &nodes {
        let mut all: Vec<Spread> = (0..messages).map(|_| spread(n, fanout, &mut rng)).collect();
        all.sort_by_key(|s| s.rounds);
        let median_rounds = all[all.len() / 2].rounds;
        let max_rounds = all.last().map_or(0, |s| s.rounds);
        let missed: f64 = all.iter().map(|s| s.missed as f64).sum::<f64>() / messages as f64;
        let with_miss = all.iter().filter(|s| s.missed > 0).count();
        let pushes: f64 = all.iter().map(|s| s.pushes as f64).sum::<f64>() / messages as f64;
        let dups: f64 = all.iter().map(|s| s.duplicates as f64).sum::<f64>() / messages as f64;
        let (hello, reply, per_author) = hello_bytes(&ring, n);
        // Every node greets every peer about once a second (±20%), and answers each
        // peer's greeting: 2 (n - 1) exchanges a second touch each node.
        let per_node = 2.0 * (n - 1) as f64 * (hello + reply) as f64;
        let network = n as f64 * (n - 1) as f64 * (hello + reply) as f64;
        let _ = writeln!(
            out,
            "| {n} | {median_rounds} / {max_rounds} | {missed:.3} | {:.1}% | {pushes:.1} ({:.1}) | {:.0}% | {} | {} B | {}/s | {}/s |",
            100.0 * with_miss as f64 / messages as f64,
            pushes / n as f64,
            100.0 * dups / pushes.max(1.0),
            bytes(pushes * per_push as f64),
            hello + reply,
            bytes(per_node),
            bytes(network),
        );
        let _ = per_author;
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
