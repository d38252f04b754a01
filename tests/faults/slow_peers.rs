//! Slow and dead peers: a peer that accepts connections and never answers, and one
//! that answers at one byte a second. A node that has them as peers must go on
//! storing sends and replicating to its healthy peer at full speed: each peer has its
//! own worker, and every call to a peer is bounded by the client's timeouts.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{Cluster, agent, percentiles, post_send, report, serial};
use crate::util::{DEADLINE, run, show, wait_for};

/// Sends measured on the node with bad peers.
const SENDS: usize = 40;
/// The peer client's total timeout per call (src/replicate/mod.rs): nothing on a
/// healthy path may take this long.
const PEER_TIMEOUT: Duration = Duration::from_secs(3);

/// A listener that accepts connections and holds them, saying nothing.
fn dead_peer(listener: &TcpListener, stop: &AtomicBool, accepted: &AtomicU64) {
    listener.set_nonblocking(true).unwrap();
    let mut held: Vec<TcpStream> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((s, _)) => {
                held.push(s);
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A listener that reads each request, then answers one byte a second.
fn slow_peer(listener: &TcpListener, stop: &AtomicBool, accepted: &AtomicU64) {
    listener.set_nonblocking(true).unwrap();
    thread::scope(|scope| {
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut s, _)) => {
                    accepted.fetch_add(1, Ordering::Relaxed);
                    scope.spawn(move || {
                        s.set_nonblocking(false).unwrap();
                        s.set_read_timeout(Some(Duration::from_millis(200)))
                            .unwrap();
                        let mut buf = [0u8; 4096];
                        let _ = s.read(&mut buf);
                        let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 64\r\n\r\n";
                        for b in answer.iter().chain([b'x'; 64].iter()) {
                            if stop.load(Ordering::Relaxed) || s.write_all(&[*b]).is_err() {
                                return;
                            }
                            // One byte a second, checking for the end of the test meanwhile.
                            for _ in 0..10 {
                                if stop.load(Ordering::Relaxed) {
                                    return;
                                }
                                thread::sleep(Duration::from_millis(100));
                            }
                        }
                    });
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    });
}

#[test]
fn a_dead_and_a_one_byte_per_second_peer_slow_down_neither_sends_nor_healthy_replication() {
    let _serial = serial();
    let t = "slow peers";
    let started = Instant::now();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let slow = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    let slow_url = format!("http://{}", slow.local_addr().unwrap());
    let stop = AtomicBool::new(false);
    let (dead_conns, slow_conns) = (AtomicU64::new(0), AtomicU64::new(0));
    thread::scope(|scope| {
        scope.spawn(|| dead_peer(&dead, &stop, &dead_conns));
        scope.spawn(|| slow_peer(&slow, &stop, &slow_conns));
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            measure(t, &dead_url, &slow_url, &dead_conns, &slow_conns)
        }));
        stop.store(true, Ordering::Relaxed);
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    });
    report(t, &format!("total {:.1?}", started.elapsed()));
}

fn measure(
    t: &str,
    dead_url: &str,
    slow_url: &str,
    dead_conns: &AtomicU64,
    slow_conns: &AtomicU64,
) {
    let (a, b) = (0, 1);
    let cluster = Cluster::start_with(2, |i| {
        if i == 0 {
            vec![
                "--peer".into(),
                dead_url.to_string(),
                "--peer".into(),
                slow_url.to_string(),
            ]
        } else {
            Vec::new()
        }
    });
    let http = agent(Duration::from_secs(30));
    let (url, token) = (cluster.url(a), cluster.token(a));
    let mut latencies = Vec::new();
    let mut lags = Vec::new();
    let send_and_follow = |i: usize, latencies: &mut Vec<Duration>, lags: &mut Vec<Duration>| {
        let base = cluster.status(b).unwrap()["messages"].as_u64().unwrap();
        let start = Instant::now();
        post_send(&http, &url, &token, &format!("with bad peers {i}")).unwrap();
        latencies.push(start.elapsed());
        wait_for("b to get the message", DEADLINE, || {
            (cluster.status(b)?["messages"].as_u64()? > base).then_some(())
        });
        lags.push(start.elapsed());
    };
    // b started after a, so a's first hello to b may have failed: wait until a has b
    // up, so the figures are about the bad peers only.
    let b_url = cluster.url(b);
    wait_for("node a to see b up", DEADLINE, || {
        let (_, body) = cluster.node(a).get("/peers", &[]);
        let peers: serde_json::Value = serde_json::from_str(&body).ok()?;
        peers["peers"]
            .as_array()?
            .iter()
            .any(|p| p["url"] == b_url.as_str() && p["state"] == "up")
            .then_some(())
    });
    // First while a's workers for the bad peers are still stuck in their first call,
    // then once the bad peers are marked down.
    let first_half = Instant::now();
    for i in 0..SENDS / 2 {
        send_and_follow(i, &mut latencies, &mut lags);
    }
    let first_half = first_half.elapsed();
    wait_for("node a to mark both bad peers down", DEADLINE, || {
        let (_, body) = cluster.node(a).get("/peers", &[]);
        let peers: serde_json::Value = serde_json::from_str(&body).ok()?;
        let down = peers["peers"]
            .as_array()?
            .iter()
            .filter(|p| p["state"] == "down" && (p["url"] == dead_url || p["url"] == slow_url))
            .count();
        (down == 2).then_some(())
    });
    for i in SENDS / 2..SENDS {
        send_and_follow(i, &mut latencies, &mut lags);
    }
    let (s50, s99, smax) = percentiles(&mut latencies);
    let (l50, l99, lmax) = percentiles(&mut lags);

    // `send --wait all` waits for the peers that are up: b, not the bad ones.
    let start = Instant::now();
    let out = run(
        &cluster.homes[a],
        &["send", "--wait", "all", "--timeout", "10s", "waited for"],
    );
    let waited = start.elapsed();
    assert!(out.status.success(), "{}", show(&out));

    // The doctor: healthy (b is up and in sync), with a warning per bad peer.
    let doctor = wait_for("doctor on a to say healthy", DEADLINE, || {
        let out = run(&cluster.homes[a], &["doctor", "--json"]);
        (out.status.code() == Some(0)).then_some(out)
    });
    let verdict: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap();
    let warnings = verdict["warnings"].to_string();
    assert!(
        warnings.contains(dead_url) && warnings.contains(slow_url),
        "{verdict}"
    );
    report(
        t,
        &format!(
            "node a has a dead peer (accepts, never answers; {} connections held) and a 1 byte/s peer ({} connections) besides healthy b: \
             {SENDS} sends on a (the first {} in {first_half:.1?}, while a's calls to the bad peers were pending; the rest once they were marked down), latency p50 {s50:.1?} p99 {s99:.1?} max {smax:.1?}; on b after p50 {l50:.1?} p99 {l99:.1?} max {lmax:.1?}; \
             send --wait all took {waited:.1?}; doctor: healthy, warns of both bad peers",
            dead_conns.load(Ordering::Relaxed),
            slow_conns.load(Ordering::Relaxed),
            SENDS / 2
        ),
    );
    assert!(smax < Duration::from_secs(1), "a send took {smax:?}");
    assert!(
        lmax < PEER_TIMEOUT,
        "replication to the healthy peer took {lmax:?}: something waited on a bad peer"
    );
    assert!(waited < PEER_TIMEOUT, "send --wait all took {waited:?}");
}
