//! What `/proc` says of a node process: its CPU time, whole and by thread name, and
//! its threads.

use std::collections::BTreeMap;
use std::fs;

/// utime + stime in seconds from a `stat` line (of a process or one of its tasks).
fn stat_cpu_secs(stat: &str) -> f64 {
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let f: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3, utime 14 and stime 15 (1-based).
    let ticks = |i: usize| {
        f.get(i - 3)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(14) + ticks(15)) / 100.0
}

/// CPU seconds (user + system) the process has used, all its threads together;
/// readable until the process is reaped.
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    stat_cpu_secs(&fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// Per thread name (a thread's `comm`; the HTTP workers and the main thread carry
/// the process's name), summed over `pids`: the CPU seconds used so far, and the
/// times the threads were switched out (each a sleep and a wake, on a machine
/// where a timed wake costs tens of microseconds). A thread that ended takes its
/// figures with it: compare two readings over a window in which the node's threads
/// live on.
pub(crate) fn by_thread(pids: &[u32]) -> BTreeMap<String, (f64, f64)> {
    let mut by_name = BTreeMap::new();
    for pid in pids {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let stat = fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let name = stat
                .split_once('(')
                .and_then(|(_, rest)| rest.rsplit_once(')'))
                .map_or("?", |(name, _)| name);
            let switches: f64 = status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<f64>().ok())
                .sum();
            let entry = by_name.entry(name.to_string()).or_insert((0.0, 0.0));
            entry.0 += stat_cpu_secs(&stat);
            entry.1 += switches;
        }
    }
    by_name
}

/// The threads the process has now.
pub(crate) fn threads(pid: u32) -> f64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// CPU seconds a wake costs on this machine at the least: two threads pass a token
/// back and forth (no timer, nothing else done), and the process's CPU time is
/// divided by the wakes. A node's wakes at rest, times this, is a floor of its CPU.
pub(crate) fn cpu_per_wake() -> f64 {
    const ROUND_TRIPS: usize = 20_000;
    let (to_peer, peer_rx) = std::sync::mpsc::channel::<()>();
    let (to_me, my_rx) = std::sync::mpsc::channel::<()>();
    let before = cpu_secs(std::process::id());
    let peer = std::thread::spawn(move || {
        while peer_rx.recv().is_ok() {
            if to_me.send(()).is_err() {
                return;
            }
        }
    });
    for _ in 0..ROUND_TRIPS {
        to_peer.send(()).expect("peer alive");
        my_rx.recv().expect("peer alive");
    }
    drop(to_peer);
    peer.join().expect("peer thread");
    (cpu_secs(std::process::id()) - before) / (2 * ROUND_TRIPS) as f64
}
