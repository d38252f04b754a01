//! Section `fleet`: networks larger than a room (`DSHARE_BENCH_FLEET`, default
//! 100,200): per node at rest, the bytes on the loopback interface, CPU and threads;
//! then how long until every other node shows a stopped node down. Each node knows at
//! most 64 peers, so the network is waited for until every node has that many up (or
//! N − 1). Propagation at these sizes is the `propagation` section with
//! `DSHARE_BENCH_NODES=100,200`.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::bare::private_net;
use crate::client::Conn;
use crate::config::{Config, env_or, list};
use crate::harness::{Node, init, invite};
use crate::propagation::{cpu_secs, loopback_bytes};
use crate::table::{Goal, Table};

/// Most peers a node's table holds (`replicate::peers::MAX_PEERS`).
const TABLE: usize = 64;
/// How long a network of hundreds of nodes may take to form.
const FORMING: Duration = Duration::from_secs(600);

fn threads(pid: u32) -> f64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// What `/peers` shows, or `None` when the node did not answer (the kept connection
/// may have been closed as idle: the caller connects again and asks later).
fn peer_states(node: &Node, conn: &mut Conn) -> Option<Vec<(String, String)>> {
    let r = conn.get(&node.target("/peers", "")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&r.body).ok()?;
    v["peers"].as_array().map(|a| {
        a.iter()
            .map(|p| {
                let word = |k: &str| p[k].as_str().unwrap_or_default().to_string();
                (word("url"), word("state"))
            })
            .collect()
    })
}

/// `n` nodes joined through the first one's invite, each with `min(n − 1, 64)`
/// peers up.
fn fleet_network(bin: &Path, dir: &Path, n: usize) -> Vec<Node> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).expect("create the network dir");
    let first = dir.join("n0");
    init(bin, &first, None);
    let (n0, _) = Node::start(bin, &first, &[]);
    let inv = invite(bin, &first, &n0.url);
    let mut nodes = vec![n0];
    for i in 1..n {
        let home = dir.join(format!("n{i}"));
        init(bin, &home, Some(&inv));
        nodes.push(Node::start(bin, &home, &[]).0);
    }
    let want = (n - 1).min(TABLE);
    let end = Instant::now() + FORMING;
    // A fresh connection each look: while the network forms, a node waits long
    // between two looks, longer than a node keeps an idle connection.
    while !nodes
        .iter()
        .all(|node| node.up_peers(&mut node.conn()) >= want)
    {
        assert!(Instant::now() < end, "the {n}-node network did not form");
        thread::sleep(Duration::from_millis(500));
    }
    nodes
}

pub(crate) fn fleet(c: &Config, t: &mut Table, dir: &Path) {
    for n in list(&env_or("DSHARE_BENCH_FLEET", "100,200")) {
        let mut nodes = fleet_network(&c.bin, &dir.join(format!("fleet{n}")), n);
        // Settle, then at rest.
        thread::sleep(Duration::from_secs(5));
        let pids: Vec<u32> = nodes.iter().map(|n| n.child.id()).collect();
        let cpu0: f64 = pids.iter().map(|&p| cpu_secs(p)).sum();
        let (bytes0, t0) = (loopback_bytes(), Instant::now());
        thread::sleep(Duration::from_secs(20));
        let secs = t0.elapsed().as_secs_f64();
        let bytes = (loopback_bytes() - bytes0) / secs / n as f64;
        let cpu = (pids.iter().map(|&p| cpu_secs(p)).sum::<f64>() - cpu0) / secs / n as f64;
        let mean_threads = pids.iter().map(|&p| threads(p)).sum::<f64>() / n as f64;
        let max_threads = pids.iter().map(|&p| threads(p)).fold(0.0, f64::max);
        if private_net() {
            t.rate(
                "fleet",
                format!("loopback bytes per second per node, {n} nodes at rest"),
                bytes,
                "B/s",
                Goal::AtMost(2000.0),
                None,
            );
        }
        t.rate(
            "fleet",
            format!("CPU per node at rest, {n} nodes (% of a core)"),
            cpu * 100.0,
            "%",
            Goal::AtMost(0.1),
            None,
        );
        t.rate(
            "fleet",
            format!("threads per node at rest, {n} nodes (mean; max {max_threads:.0})"),
            mean_threads,
            "threads",
            Goal::AtMost(32.0),
            None,
        );
        // Failure detection: the last node stops; every other one shows it down.
        let mut stopped = nodes.pop().expect("a node");
        let url = stopped.url.clone();
        let at = Instant::now();
        let _ = stopped.child.kill();
        let _ = stopped.child.wait();
        let mut conns: Vec<Conn> = nodes.iter().map(Node::conn).collect();
        let mut pending: Vec<usize> = (0..nodes.len()).collect();
        while !pending.is_empty() && at.elapsed() < Duration::from_secs(60) {
            pending.retain(|&i| {
                let Some(states) = peer_states(&nodes[i], &mut conns[i]) else {
                    conns[i] = nodes[i].conn();
                    return true;
                };
                // A node that never knew it has nothing to show.
                states.iter().any(|(u, s)| u == &url && s != "down")
            });
            thread::sleep(Duration::from_millis(100));
        }
        t.rate(
            "fleet",
            format!(
                "seconds until every node that knew it shows a stopped node down, {n} nodes{}",
                if pending.is_empty() {
                    ""
                } else {
                    " (some never did within 60 s)"
                }
            ),
            at.elapsed().as_secs_f64(),
            "s",
            Goal::AtMost(5.0),
            None,
        );
        for mut node in nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}
