//! Section `propagation`: a message reaching every node of networks of several sizes,
//! with the bytes and CPU it costs.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use crate::bare::private_net;
use crate::client::{body, connect};
use crate::config::Config;
use crate::fleet::{AtRest, SETTLE, at_rest, by_route, formation_settle};
use crate::harness::network;
use crate::limits::{Limits, probe};
use crate::procfs::cpu_secs;
use crate::table::{Goal, Table, ms, stats};
use crate::util::encode;

/// Bytes through the loopback interface so far, TCP/IP headers and ACKs included
/// (on loopback every byte sent is also received, so this counts it once). The
/// benchmark runs in a network namespace of its own when it can (see [`main`]), so
/// only its own nodes' traffic is counted.
pub(crate) fn loopback_bytes() -> f64 {
    fs::read_to_string("/proc/net/dev")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.trim_start().strip_prefix("lo:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|b| b.parse().ok())
        })
        .unwrap_or(0.0)
}

pub(crate) fn propagation(c: &Config, l: &Limits, t: &mut Table, dir: &Path, label: &str) {
    for &n in &c.nodes {
        let nodes = network(&c.bin, &dir.join(format!("net{n}")), n);
        thread::sleep(formation_settle(n));
        let pids: Vec<u32> = nodes.iter().map(|n| n.child.id()).collect();
        let cpu_of_all = || pids.iter().map(|&p| cpu_secs(p)).sum::<f64>();
        // The rate taken from the messages' cost: the network between messages, its
        // rounds still at one a second.
        let (idle_from, idle_cpu_from) = (loopback_bytes(), cpu_of_all());
        let idle_t = Instant::now();
        thread::sleep(Duration::from_secs(3));
        let idle_secs = idle_t.elapsed().as_secs_f64();
        let idle_rate = (loopback_bytes() - idle_from) / idle_secs;
        let idle_cpu_rate = (cpu_of_all() - idle_cpu_from) / idle_secs;
        let before = probe(dir, 100);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = mpsc::channel::<(usize, usize, Instant)>();
        let watchers: Vec<_> = nodes
            .iter()
            .enumerate()
            .map(|(j, node)| {
                let (url, token, stop, tx) = (
                    node.url.clone(),
                    node.token.clone(),
                    Arc::clone(&stop),
                    tx.clone(),
                );
                let mut conn = node.conn();
                let mut since = node.messages(&mut conn);
                thread::spawn(move || {
                    let mut conn = connect(&url).expect("connect a watcher");
                    while !stop.load(Ordering::Relaxed) {
                        let r = conn
                            .get(&format!("/log?since={since}&wait=1&token={token}"))
                            .expect("long-poll /log");
                        let now = Instant::now();
                        for line in r.body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                            let m: serde_json::Value =
                                serde_json::from_slice(line).expect("a JSON message");
                            let b = m["body"].as_str().unwrap_or_default();
                            if let Some(rest) = b.strip_prefix("prop-")
                                && let Some(i) = rest.split(' ').next().and_then(|s| s.parse().ok())
                            {
                                let _ = tx.send((j, i, now));
                            }
                        }
                        since = r.next.unwrap_or(since);
                    }
                })
            })
            .collect();
        drop(tx);
        let Tables {
            held_by,
            mut links,
            one_sided,
        } = tables(&nodes);
        let requests_from = by_route(&nodes, "dshare_peer_requests_total");
        let cpu_from = cpu_of_all();
        let mut sender = nodes[0].conn();
        let busy_from = loopback_bytes();
        let busy_t = Instant::now();
        let warmup = 5;
        let mut lat = Vec::new();
        // Until 99% of the nodes hold it: the pushes, without the repair of the few
        // that no push reached.
        let most = (n * 99).div_ceil(100);
        let mut lat_most = Vec::new();
        let trace = std::env::var_os("DSHARE_BENCH_PROP_TRACE").is_some();
        let mut lost = 0;
        let mut seen: HashMap<usize, Vec<Option<Instant>>> = HashMap::new();
        for i in 0..(warmup + c.samples) {
            let t0 = Instant::now();
            let r = sender
                .get(&nodes[0].target(
                    "/send",
                    &format!("msg={}", encode(&body(&format!("prop-{i}")))),
                ))
                .expect("send");
            assert_eq!(r.status, 200);
            let deadline = t0 + Duration::from_secs(10);
            let done = loop {
                let entry = seen.entry(i).or_insert_with(|| vec![None; n]);
                if entry.iter().all(Option::is_some) {
                    break entry.iter().flatten().max().copied();
                }
                match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok((j, k, at)) => {
                        seen.entry(k).or_insert_with(|| vec![None; n])[j] = Some(at);
                    }
                    Err(_) => break None,
                }
            };
            let arrivals = arrivals(&seen[&i], t0);
            if i >= warmup
                && let Some(&(at, _)) = arrivals.get(most.saturating_sub(1))
            {
                lat_most.push(at);
            }
            if trace {
                let last: Vec<String> = (arrivals.iter().rev().take(3))
                    .map(|(at, j)| format!("n{j} {at:.0} ms (in {} tables)", held_by[*j]))
                    .collect();
                eprintln!("  prop-{i}: last {}", last.join(", "));
            }
            match done {
                Some(at) if i >= warmup => lat.push(ms(at.duration_since(t0))),
                Some(_) => {}
                None => {
                    lost += 1;
                    let held = seen[&i].iter().flatten().count();
                    eprintln!("  prop-{i} over {n} nodes{label}: on {held} of {n} after 10 s");
                }
            }
            if (i + 1) % 50 == 0 {
                eprintln!(
                    "  {n} nodes{label}: {} of {} sent, {lost} not everywhere in 10 s",
                    i + 1,
                    warmup + c.samples
                );
            }
        }
        // Less the rest rate, and less the benchmark's own requests and long-polls
        // (about 1 kB per node per message, counted in `watch_bytes`).
        let busy = loopback_bytes() - busy_from - idle_rate * busy_t.elapsed().as_secs_f64();
        let cpu = cpu_of_all() - cpu_from - idle_cpu_rate * busy_t.elapsed().as_secs_f64();
        let requests = by_route(&nodes, "dshare_peer_requests_total");
        let mut after = probe(dir, 100);
        after.extend(before);
        let fsync = stats(after);
        stop.store(true, Ordering::Relaxed);
        for w in watchers {
            let _ = w.join();
        }
        // On the disk pass, the network at rest once its rounds slowed down, measured
        // as the fleet section measures it, after the messages: measured before them,
        // the rest made the next few messages slower (at 3 nodes, 1.2–1.5 ms to all
        // instead of 0.9), which would make the rows above incomparable with earlier
        // runs. Why the rest slows them is not known.
        let at_rest = label.is_empty().then(|| {
            thread::sleep(SETTLE);
            at_rest(&pids)
        });
        let fanout = 8;
        let hops = if n - 1 <= fanout { 1.0 } else { 2.0 };
        let goal = match n {
            3 => Goal::AtMost(1.0),
            30 => Goal::AtMost(50.0),
            200 => Goal::AtMost(100.0),
            _ => Goal::None,
        };
        let mut tables = held_by.clone();
        tables.sort_unstable();
        // Past a table's size, how evenly the tables hold the nodes (a node in few
        // tables is pushed to by few, and waits for a repair when none of them did).
        links.sort_unstable();
        let holding = if n > 64 {
            format!(
                "; tables holding a node: fewest {}, a tenth at most {}, median {}; links a node holds: fewest {}, median {}, most {}, {one_sided} held at one end only",
                tables[0],
                tables[n / 10],
                tables[n / 2],
                links[0],
                links[n / 2],
                links[n - 1]
            )
        } else {
            String::new()
        };
        t.time(
            "propagation",
            format!(
                "stored on all {n} nodes (GET /send at node 0 → last node's box){label}{holding}"
            ),
            stats(lat),
            true,
            goal,
            n == 30 || n == 200,
            Some((
                l.sign_ms()
                    + fsync.median
                    + hops * (l.bare_lat.median + l.verify_ms() + fsync.median),
                if hops > 1.0 {
                    "sign + fsync, then 2 hops × (bare HTTP + verify + fsync)"
                } else {
                    "sign + fsync, then 1 hop × (bare HTTP + verify + fsync)"
                },
            )),
        );
        if n > 64 {
            t.time(
                "propagation",
                format!("stored on {most} of {n} nodes (99%){label}"),
                stats(lat_most),
                true,
                Goal::None,
                false,
                None,
            );
        }
        t.rate(
            "propagation",
            format!(
                "CPU-seconds of all {n} nodes per message sent, less the rest rate{label} (their side of the bench's long-polls included)"
            ),
            cpu / (warmup + c.samples) as f64,
            "s",
            Goal::None,
            None,
        );
        t.notes.push(requests_note(
            &format!("propagation over {n} nodes{label}"),
            &requests_from,
            &requests,
            (n * (warmup + c.samples)) as f64,
        ));
        if lost > 0 {
            t.notes.push(format!(
                "propagation over {n} nodes{label}: {lost} message(s) not seen on every node within 10 s"
            ));
        }
        if let Some(AtRest { bytes, cpu, .. }) = at_rest {
            t.rate(
                "scaling",
                format!("CPU per node at rest, {n} nodes (% of a core)"),
                cpu * 100.0,
                "%",
                Goal::AtMost(0.1),
                None,
            );
            if private_net() {
                t.rate(
                    "scaling",
                    format!("loopback bytes per second per node, {n} nodes at rest"),
                    bytes,
                    "B/s",
                    Goal::AtMost(2000.0),
                    None,
                );
            }
        }
        if label.is_empty() && private_net() {
            t.rate(
                "scaling",
                format!(
                    "loopback bytes per message, {n} nodes, less the rest rate (includes the benchmark's send and {n} long-poll answers)"
                ),
                busy / (warmup + c.samples) as f64,
                "B",
                Goal::None,
                None,
            );
        }
    }
}

/// What the nodes' tables say of each other, read from every node's `/peers`.
struct Tables {
    /// How many tables hold each node.
    held_by: Vec<usize>,
    /// How many links each node holds, by its own account.
    links: Vec<usize>,
    /// Links one end holds and the other does not: nothing is pushed to a node over
    /// a link only it believes in, and it waits for an offer or a repair.
    one_sided: usize,
}

fn tables(nodes: &[crate::harness::Node]) -> Tables {
    let mut held_by = vec![0; nodes.len()];
    let mut linked: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
    for (i, node) in nodes.iter().enumerate() {
        let r = node
            .conn()
            .get(&node.target("/peers", ""))
            .expect("GET /peers");
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON peers");
        for p in v["peers"].as_array().into_iter().flatten() {
            let Some(j) = nodes.iter().position(|n| p["url"] == n.url.as_str()) else {
                continue;
            };
            held_by[j] += 1;
            if p["link"] == true {
                linked[i].push(j);
            }
        }
    }
    let one_sided = (linked.iter().enumerate())
        .flat_map(|(i, to)| to.iter().map(move |&j| (i, j)))
        .filter(|&(i, j)| !linked[j].contains(&i))
        .count();
    Tables {
        held_by,
        links: linked.iter().map(Vec::len).collect(),
        one_sided,
    }
}

/// When each node that holds a message stored it, in ms after `t0`, soonest first,
/// with the node's index.
fn arrivals(seen: &[Option<Instant>], t0: Instant) -> Vec<(f64, usize)> {
    let mut arrivals: Vec<(f64, usize)> = (seen.iter().enumerate())
        .filter_map(|(j, at)| at.map(|at| (ms(at.duration_since(t0)), j)))
        .collect();
    arrivals.sort_by(|a, b| a.0.total_cmp(&b.0));
    arrivals
}

/// The peer-API requests the nodes answered while messages spread, by route, per
/// node and message (`per`: nodes × messages), rests included: each is a request and
/// an answer on both sides, the unit of a message's cost on the wire.
fn requests_note(
    what: &str,
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
    per: f64,
) -> String {
    let routes: Vec<String> = after
        .iter()
        .map(|(route, v)| (route, (v - before.get(route).copied().unwrap_or(0.0)) / per))
        .filter(|(_, v)| *v > 0.0)
        .map(|(route, v)| format!("{route} {v:.2}"))
        .collect();
    let total: f64 = after.values().sum::<f64>() - before.values().sum::<f64>();
    format!(
        "{what}: peer requests answered per node per message, {:.2} in all: {}",
        total / per,
        routes.join(", ")
    )
}
