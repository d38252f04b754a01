//! Section `fleet`: networks larger than a room (`DSHARE_BENCH_FLEET`, default
//! 100,200): per node at rest, the bytes on the loopback interface, CPU and threads;
//! then how long until every other node shows a node killed, then one stopped, down;
//! then a tenth of the nodes killed while messages are sent, and started again. With
//! `DSHARE_BENCH_FLEET_SOAK=SECS`, also that long with both cores kept busy by other
//! processes, counting the peers shown down meanwhile (every one false). Each node
//! knows at most 64 peers, so the network is waited for until every node has nearly
//! that many up ([`network`]). Propagation at these sizes is the `propagation`
//! section with `DSHARE_BENCH_NODES=100,200`.

use std::collections::BTreeMap;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use dshare::replicate::peers::MAX_PEERS;

use crate::bare::private_net;
use crate::client::Conn;
use crate::config::{Config, env_or, list};
use crate::harness::{Node, dshare, network, run_ok};
use crate::procfs::{by_thread, cpu_per_wake, cpu_secs, threads};
use crate::propagation::loopback_bytes;
use crate::table::{Goal, Table, num};

/// Time for the rounds to slow down after the network formed (to one every 8 s at
/// rest, after 1 + 2 + 4 s), before the at-rest window.
pub(crate) const SETTLE: Duration = Duration::from_secs(20);

/// How long a network of `n` nodes settles past forming before it is measured, at
/// rest or under messages, on top of anything else it waits for. Past a table's size
/// a node is still proving the addresses it heard of (up to 10 a second, the prober;
/// at 200 nodes each hears of about 136 it has no room for) and making its links for
/// a while after the network formed (at 200 nodes, 20 s after, a message took 0.6 s
/// to reach every node and the network spent 7.7 kB/s a node; a minute after, see
/// BENCHMARKS.md): a minute then, nothing below.
pub(crate) fn formation_settle(n: usize) -> Duration {
    if n > MAX_PEERS {
        Duration::from_secs(60)
    } else {
        Duration::ZERO
    }
}

/// The at-rest window: several rounds of 8 s.
const AT_REST: Duration = Duration::from_secs(32);

/// What a settled network costs per node over the at-rest window.
pub(crate) struct AtRest {
    /// Bytes a second through the loopback interface.
    pub(crate) bytes: f64,
    /// Share of a core.
    pub(crate) cpu: f64,
    /// The window's length, in seconds.
    pub(crate) secs: f64,
}

/// Measures the nodes `pids` over [`AT_REST`]. Nothing the benchmark asks of the
/// nodes (a scrape of their `/metrics`, say) may fall inside: its bytes and answers
/// would be counted as the network's.
pub(crate) fn at_rest(pids: &[u32]) -> AtRest {
    let cpu_of_all = || pids.iter().map(|&p| cpu_secs(p)).sum::<f64>();
    let (bytes0, cpu0, t0) = (loopback_bytes(), cpu_of_all(), Instant::now());
    thread::sleep(AT_REST);
    let secs = t0.elapsed().as_secs_f64();
    let per_node = secs * pids.len() as f64;
    AtRest {
        bytes: (loopback_bytes() - bytes0) / per_node,
        cpu: (cpu_of_all() - cpu0) / per_node,
        secs,
    }
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

pub(crate) fn fleet(c: &Config, t: &mut Table, dir: &Path) {
    for n in list(&env_or("DSHARE_BENCH_FLEET", "100,200")) {
        let mut nodes = network(&c.bin, &dir.join(format!("fleet{n}")), n);
        // Settle, then at rest.
        thread::sleep(SETTLE.max(formation_settle(n)));
        let pids: Vec<u32> = nodes.iter().map(|n| n.child.id()).collect();
        let downs0 = sum_of(&nodes, "dshare_peers_shown_down_total");
        let (by_thread0, routes0) = (by_thread(&pids), peer_bytes_by_route(&nodes));
        let AtRest { bytes, cpu, secs } = at_rest(&pids);
        let threads_after = by_thread(&pids);
        let wakes = threads_after.values().map(|(_, w)| w).sum::<f64>()
            - by_thread0.values().map(|(_, w)| w).sum::<f64>();
        let wakes = wakes / secs / n as f64;
        let wake_cpu = cpu_per_wake();
        t.notes.push(where_rest_goes(
            n,
            secs,
            wakes,
            &by_thread0,
            &threads_after,
            &routes0,
            &peer_bytes_by_route(&nodes),
        ));
        let mean_threads = pids.iter().map(|&p| threads(p)).sum::<f64>() / n as f64;
        let max_threads = pids.iter().map(|&p| threads(p)).fold(0.0, f64::max);
        let false_downs = sum_of(&nodes, "dshare_peers_shown_down_total") - downs0;
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
            format!(
                "CPU per node at rest, {n} nodes (% of a core; peers shown down meanwhile: {false_downs})"
            ),
            cpu * 100.0,
            "%",
            Goal::AtMost(0.1),
            Some((
                wakes * wake_cpu * 100.0,
                &format!(
                    "{wakes:.2} wakes/s a node × {:.1} µs, the CPU of a wake here with nothing done",
                    wake_cpu * 1e6
                ),
            )),
        );
        t.rate(
            "fleet",
            format!("threads per node at rest, {n} nodes (mean; max {max_threads:.0})"),
            mean_threads,
            "threads",
            Goal::AtMost(32.0),
            None,
        );
        // Failure detection: a node from the middle of the joining order (in many
        // tables: the last to join is in few) is killed; every other one shows it
        // down. Then another stops cleanly, saying it leaves.
        for (how, signal, times) in [
            ("killed (SIGKILL)", "KILL", 5),
            ("stopped (SIGTERM)", "TERM", 1),
        ] {
            // One detection is one draw of how soon the first knower probes the dead
            // node; several, one after another, show the spread.
            let mut tries = Vec::new();
            for _ in 0..times {
                let mut stopped = nodes.remove(nodes.len() / 2);
                let url = stopped.url.clone();
                let at = Instant::now();
                let _ = std::process::Command::new("kill")
                    .arg(format!("-{signal}"))
                    .arg(stopped.child.id().to_string())
                    .status();
                let _ = stopped.child.wait();
                tries.push(until_all_show_down(&nodes, &url, at));
            }
            let mut took: Vec<f64> = tries.iter().map(|d| d.all_down).collect();
            took.sort_by(f64::total_cmp);
            let knew: Vec<String> = tries.iter().map(|d| d.knew.to_string()).collect();
            let all = tries.iter().all(|d| d.all);
            let when = |s: Option<f64>| s.map_or("—".to_string(), num);
            // Where the time went in each: until a first knower suspected it (the
            // probe), showed it down (the suspicion), and every knower did (the news).
            let each: Vec<String> = tries
                .iter()
                .map(|d| {
                    format!(
                        "{}/{}/{}",
                        when(d.first_suspect),
                        when(d.first_down),
                        num(d.all_down)
                    )
                })
                .collect();
            let spread = if times > 1 {
                format!(
                    "; median of {times} one after another (first suspect/first down/all down, s: {})",
                    each.join(", ")
                )
            } else {
                format!(
                    " (first suspect/first down/all down, s: {})",
                    each.join(", ")
                )
            };
            t.rate(
                "fleet",
                format!(
                    "seconds until every node that knew it ({} of {}) shows a node {how} down, {n} nodes{spread}{}",
                    knew.join(", "),
                    nodes.len(),
                    if all {
                        ""
                    } else {
                        " (some never did within 60 s)"
                    }
                ),
                took[times / 2],
                "s",
                Goal::AtMost(5.0),
                None,
            );
        }
        if let Some(secs) = std::env::var("DSHARE_BENCH_FLEET_SOAK")
            .ok()
            .and_then(|s| s.parse().ok())
        {
            soak(t, &nodes, Duration::from_secs(secs));
        }
        kill_a_tenth_and_restart(c, t, &mut nodes);
        for mut node in nodes {
            let _ = node.child.kill();
            let _ = node.child.wait();
        }
    }
}

/// How one failure was detected, in seconds from the failure.
struct Detection {
    /// Until every node that listed the failed one showed it down (60 at most).
    all_down: f64,
    /// Until a first node showed it suspect or down: how soon a knower probed it.
    first_suspect: Option<f64>,
    /// Until a first node showed it down.
    first_down: Option<f64>,
    /// How many listed it at the first look.
    knew: usize,
    /// Whether they all showed it down within 60 s.
    all: bool,
}

/// Watches every node of `nodes` that lists `url` until it shows it down.
fn until_all_show_down(nodes: &[Node], url: &str, at: Instant) -> Detection {
    let mut conns: Vec<Conn> = nodes.iter().map(Node::conn).collect();
    let mut pending: Vec<usize> = (0..nodes.len()).collect();
    let mut knew = None;
    let (mut first_suspect, mut first_down) = (None, None);
    while !pending.is_empty() && at.elapsed() < Duration::from_secs(60) {
        let mut listing = 0;
        pending.retain(|&i| {
            let Some(states) = peer_states(&nodes[i], &mut conns[i]) else {
                conns[i] = nodes[i].conn();
                return true;
            };
            let Some((_, state)) = states.iter().find(|(u, _)| u == url) else {
                // A node that never knew it has nothing to show.
                return false;
            };
            listing += 1;
            let now = at.elapsed().as_secs_f64();
            if state != "up" {
                first_suspect.get_or_insert(now);
            }
            if state == "down" {
                first_down.get_or_insert(now);
            }
            state != "down"
        });
        knew.get_or_insert(listing);
        thread::sleep(Duration::from_millis(100));
    }
    Detection {
        all_down: at.elapsed().as_secs_f64(),
        first_suspect,
        first_down,
        knew: knew.unwrap_or(0),
        all: pending.is_empty(),
    }
}

/// A metric's value on `node`, summed over its series.
fn metric(node: &Node, name: &str) -> Option<f64> {
    let r = node.conn().get(&node.target("/metrics", "")).ok()?;
    let text = String::from_utf8(r.body).ok()?;
    Some(
        text.lines()
            .filter(|l| l.split([' ', '{']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// Sealed bytes the nodes' peer APIs served, by route (requests and answers), summed
/// over `nodes`.
fn peer_bytes_by_route(nodes: &[Node]) -> BTreeMap<String, f64> {
    by_route(nodes, "dshare_peer_bytes_total")
}

/// A peer-API metric `family` (labelled by route first), summed by route over `nodes`.
pub(crate) fn by_route(nodes: &[Node], family: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{family}{{route=\"");
    let mut by_route = BTreeMap::new();
    for node in nodes {
        let Ok(r) = node.conn().get(&node.target("/metrics", "")) else {
            continue;
        };
        for line in String::from_utf8_lossy(&r.body).lines() {
            let Some(labels) = line.strip_prefix(prefix.as_str()) else {
                continue;
            };
            let route = labels.split('"').next().unwrap_or_default().to_string();
            let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            *by_route.entry(route).or_insert(0.0) += value.unwrap_or(0.0);
        }
    }
    by_route
}

/// A note saying where the at-rest window went, per node: CPU and wakes by thread
/// name, and the peer API's bytes by route, largest first.
fn where_rest_goes(
    n: usize,
    secs: f64,
    wakes: f64,
    threads_before: &BTreeMap<String, (f64, f64)>,
    threads_after: &BTreeMap<String, (f64, f64)>,
    bytes_before: &BTreeMap<String, f64>,
    bytes_after: &BTreeMap<String, f64>,
) -> String {
    let rate = |after: f64, before: Option<f64>| (after - before.unwrap_or(0.0)) / secs / n as f64;
    let mut threads: Vec<(&String, f64, f64)> = threads_after
        .iter()
        .map(|(name, (cpu, wakes))| {
            let before = threads_before.get(name);
            (
                name,
                rate(*cpu, before.map(|b| b.0)),
                rate(*wakes, before.map(|b| b.1)),
            )
        })
        .filter(|(_, cpu, wakes)| *cpu > 0.0 || *wakes > 0.0)
        .collect();
    threads.sort_by(|a, b| b.2.total_cmp(&a.2));
    let threads: Vec<String> = threads
        .iter()
        .map(|(name, cpu, wakes)| format!("{name} {:.4}% {wakes:.2}/s", cpu * 100.0))
        .collect();
    let mut bytes: Vec<(&String, f64)> = bytes_after
        .iter()
        .map(|(route, b)| (route, rate(*b, bytes_before.get(route).copied())))
        .filter(|(_, b)| *b > 0.0)
        .collect();
    bytes.sort_by(|a, b| b.1.total_cmp(&a.1));
    let bytes: Vec<String> = bytes
        .iter()
        .map(|(route, b)| format!("{route} {} B/s", num(*b)))
        .collect();
    format!(
        "fleet of {n} at rest, per node: {wakes:.2} wakes/s; CPU (% of a core, ticks of 10 ms) and wakes by thread: {}; peer API bytes by route: {} (SWIM datagrams are not among them)",
        threads.join(", "),
        bytes.join(", ")
    )
}

fn sum_of(nodes: &[Node], name: &str) -> f64 {
    nodes.iter().filter_map(|n| metric(n, name)).sum()
}

/// `secs` with both cores kept busy by two other processes: the peers shown down
/// meanwhile, with no node stopped, are all false.
fn soak(t: &mut Table, nodes: &[Node], secs: Duration) {
    let downs0 = sum_of(nodes, "dshare_peers_shown_down_total");
    let suspicions0 = sum_of(nodes, "dshare_member_suspicions_total");
    let mut busy: Vec<std::process::Child> = (0..2)
        .map(|_| {
            std::process::Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .expect("spawn a busy loop")
        })
        .collect();
    thread::sleep(secs);
    for b in &mut busy {
        let _ = b.kill();
        let _ = b.wait();
    }
    let downs = sum_of(nodes, "dshare_peers_shown_down_total") - downs0;
    let suspicions = sum_of(nodes, "dshare_member_suspicions_total") - suspicions0;
    t.rate(
        "fleet",
        format!(
            "peers shown down (all false) over {} s with both cores busy, {} nodes ({suspicions} suspicions)",
            secs.as_secs(),
            nodes.len()
        ),
        downs,
        "",
        Goal::AtMost(0.0),
        None,
    );
}

/// A tenth of the nodes killed (SIGKILL) while messages are sent to the others, then
/// started again on their homes (on new ports): the time until every node holds
/// every acknowledged message with equal digests. Every box is then verified.
fn kill_a_tenth_and_restart(c: &Config, t: &mut Table, nodes: &mut [Node]) {
    let n = nodes.len();
    let killed = (n / 10).max(1);
    let send = |node: &Node, i: usize| {
        let target = node.target(
            "/send",
            &format!("msg={}", crate::util::http::encode(&format!("fleet {i}"))),
        );
        let r = node.conn().get(&target).expect("GET /send");
        assert_eq!(r.status, 200, "a send was not acknowledged");
    };
    let held = |node: &Node| node.messages(&mut node.conn());
    let before = held(&nodes[0]);
    let mut sent = 0;
    for i in 0..10 {
        send(&nodes[i % n], sent + i);
    }
    sent += 10;
    for node in nodes[n - killed..].iter_mut() {
        let _ = node.child.kill();
        let _ = node.child.wait();
    }
    for i in 0..20 {
        send(&nodes[i % (n - killed)], sent + i);
    }
    sent += 20;
    let want = before + sent as u64;
    let at = Instant::now();
    for node in nodes[n - killed..].iter_mut() {
        *node = Node::start(&c.bin, &node.home, &[]).0;
    }
    let end = at + Duration::from_secs(300);
    let mut pending: Vec<usize> = (0..n).collect();
    while !pending.is_empty() {
        assert!(
            Instant::now() < end,
            "{} nodes did not catch up within 300 s",
            pending.len()
        );
        pending.retain(|&i| held(&nodes[i]) < want);
        thread::sleep(Duration::from_millis(200));
    }
    let took = at.elapsed().as_secs_f64();
    let digests: std::collections::HashSet<String> = nodes
        .iter()
        .map(|node| node.status(&mut node.conn())["digest"].to_string())
        .collect();
    assert_eq!(digests.len(), 1, "the nodes' digests differ: {digests:?}");
    for node in nodes.iter_mut() {
        node.terminate();
        run_ok({
            let mut cmd = dshare(&c.bin, &node.home);
            cmd.args(["-q", "verify"]);
            cmd
        });
    }
    t.rate(
        "fleet",
        format!(
            "seconds from restarting {killed} of {n} nodes killed with SIGKILL until every node holds all {sent} messages acknowledged meanwhile (digests equal, {n} of {n} boxes verify)"
        ),
        took,
        "s",
        Goal::None,
        None,
    );
}
