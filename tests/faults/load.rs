//! Load: many concurrent senders against one node for a bounded time, by HTTP and by
//! the command line, while the other nodes take sends too. The only refusal allowed
//! is explicit back-pressure (503 with Retry-After); afterwards every accepted
//! message is on every node.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Cluster, Tally, agent, percentiles, post_send, report, send_cli, serial};

/// How long the load runs.
const LOAD: Duration = Duration::from_secs(15);
/// Concurrent HTTP clients (keep-alive connections) on the loaded node.
const HTTP_CLIENTS: usize = 16;
/// Concurrent command-line senders (`dshare send`, one process per message) on it.
const CLI_CLIENTS: usize = 4;

/// What every sender thread brings back.
#[derive(Default)]
struct Results {
    acked: Vec<String>,
    latencies: Vec<Duration>,
    back_pressure: u64,
    unexpected: Tally,
    examples: Vec<String>,
}

impl Results {
    fn merge(&mut self, other: Results) {
        self.acked.extend(other.acked);
        self.latencies.extend(other.latencies);
        self.back_pressure += other.back_pressure;
        self.unexpected.merge(other.unexpected);
        self.examples.extend(other.examples.into_iter().take(3));
    }
}

/// Sends by HTTP until `stop`; honours 503 + Retry-After, counts anything else as
/// unexpected.
fn http_sender(url: &str, token: &str, name: &str, stop: &AtomicBool) -> Results {
    let agent = agent(Duration::from_secs(60));
    let mut r = Results::default();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        match post_send(&agent, url, token, &format!("{name} message {i}")) {
            Ok(id) => {
                r.latencies.push(start.elapsed());
                r.acked.push(id);
            }
            Err(e) if e.status == 503 && e.retry_after.is_some() => {
                r.back_pressure += 1;
                let secs: u64 = e.retry_after.unwrap().parse().unwrap_or(1);
                thread::sleep(Duration::from_secs(secs.min(2)));
            }
            Err(e) => {
                r.unexpected.add(format!("HTTP {}", e.status));
                r.examples.push(format!("{e:?}"));
            }
        }
        i += 1;
    }
    r
}

fn cli_sender(cluster: &Cluster, url: &str, token: &str, name: &str, stop: &AtomicBool) -> Results {
    let home = cluster.scratch.home(name);
    let mut r = Results::default();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let start = Instant::now();
        match send_cli(&home, url, token, &format!("{name} message {i}")) {
            Ok(id) => {
                r.latencies.push(start.elapsed());
                r.acked.push(id);
            }
            Err((code, err)) if err.contains("503") => {
                r.back_pressure += 1;
                let _ = code;
                thread::sleep(Duration::from_secs(1));
            }
            Err((code, err)) => {
                r.unexpected.add(format!("cli exit {code}"));
                r.examples.push(err);
            }
        }
        i += 1;
    }
    r
}

#[test]
fn sixteen_http_and_four_cli_senders_on_one_node_lose_nothing_and_see_only_back_pressure() {
    let _serial = serial();
    let t = "load";
    let started = Instant::now();
    let cluster = Cluster::start(3);
    let urls: Vec<String> = (0..3).map(|i| cluster.url(i)).collect();
    let tokens: Vec<String> = (0..3).map(|i| cluster.token(i)).collect();
    let commits_before = cluster.status(0).unwrap()["commits"].as_u64().unwrap();
    let stop = AtomicBool::new(false);
    let loaded = Mutex::new(Results::default());
    let others = Mutex::new(Results::default());
    thread::scope(|scope| {
        for c in 0..HTTP_CLIENTS {
            let (url, token, stop, loaded) = (&urls[0], &tokens[0], &stop, &loaded);
            scope.spawn(move || {
                let r = http_sender(url, token, &format!("http{c}"), stop);
                loaded.lock().unwrap().merge(r);
            });
        }
        for c in 0..CLI_CLIENTS {
            let (cluster, url, token, stop, loaded) =
                (&cluster, &urls[0], &tokens[0], &stop, &loaded);
            scope.spawn(move || {
                let r = cli_sender(cluster, url, token, &format!("cli{c}"), stop);
                loaded.lock().unwrap().merge(r);
            });
        }
        for node in 1..3 {
            let (url, token, stop, others) = (&urls[node], &tokens[node], &stop, &others);
            scope.spawn(move || {
                let r = http_sender(url, token, &format!("node{node}"), stop);
                others.lock().unwrap().merge(r);
            });
        }
        thread::sleep(LOAD);
        stop.store(true, Ordering::Relaxed);
    });
    let held_for = started.elapsed();
    let mut loaded = loaded.into_inner().unwrap();
    let others = others.into_inner().unwrap();
    let commits = cluster.status(0).unwrap()["commits"].as_u64().unwrap() - commits_before;
    let mut acked = loaded.acked.clone();
    acked.extend(others.acked.iter().cloned());
    let (messages, converge_time) = cluster.converge(acked.len());
    let checked = cluster.check_all(&acked);
    let (p50, p99, max) = percentiles(&mut loaded.latencies);
    report(
        t,
        &format!(
            "{HTTP_CLIENTS} HTTP (keep-alive) + {CLI_CLIENTS} CLI senders on node 0 for {LOAD:?}, 1 HTTP sender on each of nodes 1 and 2: \
             node 0 acknowledged {} ({:.0}/s, latency p50 {p50:.1?} p99 {p99:.1?} max {max:.1?}, {commits} group commits = {:.1} messages per fsync), \
             nodes 1-2 acknowledged {}; back-pressure 503s: {}; other errors: {}; \
             converged on {messages} messages in {converge_time:.1?}, {checked} (node, message) pairs checked; total {:.1?}",
            loaded.acked.len(),
            loaded.acked.len() as f64 / LOAD.as_secs_f64(),
            loaded.acked.len() as f64 / commits.max(1) as f64,
            others.acked.len(),
            loaded.back_pressure + others.back_pressure,
            {
                let mut all = Tally::default();
                all.merge(std::mem::take(&mut loaded.unexpected));
                all.merge(others.unexpected);
                all
            },
            started.elapsed().max(held_for)
        ),
    );
    assert!(
        loaded.examples.is_empty() && others.examples.is_empty(),
        "errors other than back-pressure: {:?} {:?}",
        loaded.examples,
        others.examples
    );
}
