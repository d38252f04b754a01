//! Attacks on the HTTP server from outside (and from clients): descriptor
//! exhaustion, slow bodies, long confirmation waits, lenient parsing.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::util::{Node, Scratch, dshare_with_nofile, wait_for};

fn addr_of(node: &Node) -> SocketAddr {
    node.url.strip_prefix("http://").unwrap().parse().unwrap()
}

/// How long `/status` takes to answer 200, polled until `within`.
fn status_answered_within(node: &Node, within: Duration) -> Duration {
    let start = Instant::now();
    wait_for("/status to answer 200", within, || {
        (node.get("/status", &[]).0 == 200).then_some(())
    });
    start.elapsed()
}

/// Item 2: 1,500 idle connections against a node whose open-files limit is 1024.
/// The connection caps follow the limit, so accept() never runs out of descriptors,
/// the oldest silent connection makes room for a new one, and nothing panics.
#[test]
fn idle_connections_past_the_open_files_limit_leave_the_node_answering() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start_command(
        &home,
        dshare_with_nofile(&home, 1024, &["serve", "--listen", "127.0.0.1:0"]),
    );
    let addr = addr_of(&node);
    let idle: Vec<TcpStream> = (0..1500)
        .filter_map(|_| TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok())
        .collect();
    let during = status_answered_within(&node, Duration::from_secs(5));
    eprintln!(
        "{} idle connections open: /status answered in {during:?}",
        idle.len()
    );
    assert!(
        during < Duration::from_secs(3),
        "/status took {during:?} behind idle connections"
    );
    drop(idle);
    let after = status_answered_within(&node, Duration::from_secs(5));
    eprintln!("after closing them: /status answered in {after:?}");
    for _ in 0..20 {
        assert_eq!(node.get("/status", &[]).0, 200);
    }
    let log = node.log();
    assert!(!log.contains("panicked"), "the node panicked:\n{log}");
}

/// Opens `n` requests that declare a 100,000-byte body and send it a byte every
/// `every` until `stop` is set; half to the client API, half to the peer API.
fn slow_bodies(
    addr: SocketAddr,
    n: usize,
    every: Duration,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let mut conns: Vec<TcpStream> = (0..n)
        .map(|i| {
            let path = if i % 2 == 0 { "/send" } else { "/v1/push" };
            let mut c = TcpStream::connect(addr).unwrap();
            let head =
                format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx");
            c.write_all(head.as_bytes()).unwrap();
            c
        })
        .collect();
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(every.min(Duration::from_millis(100)));
            for c in &mut conns {
                let _ = c.write_all(b"x");
            }
        }
    })
}

/// Item 4: 20 bodies trickled in (3 s a byte, under the 10 s read timeout) while a
/// node serves with its 16 workers: `/status` and a joining peer's hello are still
/// answered promptly, since bodies are read before a worker is taken.
#[test]
fn slow_request_bodies_take_no_worker() {
    let s = Scratch::new();
    let (a, b) = (s.home("a"), s.home("b"));
    let node_a = Node::start(&a, &[]);
    let invite = crate::util::ok(&a, &["invite"]);
    crate::util::ok(&b, &["init", "--join", invite.trim()]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // The trickle runs on a thread; bytes go out every 100 ms here, at most.
    let trickle = slow_bodies(addr_of(&node_a), 20, Duration::from_secs(3), stop.clone());
    // Let every slow request reach the server and take what it takes.
    std::thread::sleep(Duration::from_millis(500));
    let mut slowest = Duration::ZERO;
    for _ in 0..5 {
        slowest = slowest.max(status_answered_within(&node_a, Duration::from_secs(8)));
    }
    eprintln!("20 slow bodies: slowest /status {slowest:?}");
    assert!(slowest < Duration::from_secs(2), "/status took {slowest:?}");
    let started = Instant::now();
    let node_b = Node::start(&b, &["--peer", &node_a.url]);
    crate::util::wait_peer_up(&b, &node_a.url);
    eprintln!(
        "a joining peer saw the node up after {:?}",
        started.elapsed()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    trickle.join().unwrap();
    drop(node_b);
}

/// Item 10: 20 `send --wait all` against a peer that refuses every message of this
/// node (its allow-list names only itself). A refusal is an answer: each send ends
/// at once with 504, the peer sees a bounded number of pushes, and the node keeps
/// answering meanwhile.
#[test]
fn waiting_sends_against_a_refusing_peer_are_answered_and_bounded() {
    use std::process::Stdio;
    let s = Scratch::new();
    let (a, b) = (s.home("a"), s.home("b"));
    let node_a = Node::start(&a, &[]);
    let invite = crate::util::ok(&a, &["invite"]);
    crate::util::ok(&b, &["init", "--join", invite.trim()]);
    let b_id = crate::util::ok(&b, &["id"]);
    let node_b = Node::start(&b, &["--allow-author", b_id.trim()]);
    crate::util::wait_peer_up(&a, &node_b.url);
    let sends = 20;
    let started = Instant::now();
    let mut senders: Vec<crate::util::Reaped> = (0..sends)
        .map(|i| {
            let mut cmd = crate::util::dshare(
                &a,
                &[
                    "send",
                    "--wait",
                    "all",
                    "--timeout",
                    "60s",
                    &format!("held {i}"),
                ],
            );
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
            crate::util::Reaped(cmd.spawn().unwrap())
        })
        .collect();
    let during = status_answered_within(&node_a, Duration::from_secs(10));
    let codes: Vec<Option<i32>> = senders
        .iter_mut()
        .map(|p| {
            wait_for("a waiting send to end", Duration::from_secs(30), || {
                p.0.try_wait().unwrap()
            })
            .code()
        })
        .collect();
    let took = started.elapsed();
    let peers: serde_json::Value = serde_json::from_str(&node_b.get("/peers", &[]).1).unwrap();
    let refused = peers["refused"].as_u64().unwrap();
    eprintln!(
        "{sends} waiting sends: /status in {during:?}, all ended after {took:?}, the peer refused {refused} pushes, exit codes {codes:?}"
    );
    assert!(codes.iter().all(|c| *c == Some(1)), "{codes:?}");
    assert!(took < Duration::from_secs(30), "the sends took {took:?}");
    assert!(
        refused <= 4 * sends,
        "the peer refused {refused} pushes of {sends} messages"
    );
    assert_eq!(node_a.get("/status", &[]).0, 200);
}

/// Sends raw bytes on a fresh connection and reads until the node closes it.
fn exchange(node: &Node, request: &str) -> String {
    let mut c = TcpStream::connect(addr_of(node)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    c.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Item 17: request heads that a proxy and this server could read differently are
/// refused with 400 and the connection closed (no second answer), nothing is stored,
/// and a HEAD never acts.
#[test]
fn lenient_framing_and_acting_heads_are_refused() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let t = &node.token;
    let smuggled = format!("GET /send?msg=smuggled&token={t} HTTP/1.1\r\nHost: x\r\n\r\n");
    let cases = [
        (
            "two Content-Length headers",
            format!(
                "POST /send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Length: 5\r\nContent-Length: {}\r\n\r\nhello{smuggled}",
                5 + smuggled.len()
            ),
            "400",
        ),
        (
            "a signed Content-Length",
            format!(
                "POST /send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Length: +5\r\n\r\nhello"
            ),
            "400",
        ),
        (
            "Content-Length with Transfer-Encoding",
            format!(
                "POST /send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}"
            ),
            "400",
        ),
        (
            "a chunked body",
            format!(
                "POST /send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{smuggled}"
            ),
            "400",
        ),
        (
            "a sign in a percent escape",
            format!("GET /send?msg=%+f&token={t} HTTP/1.1\r\nHost: x\r\n\r\n{smuggled}"),
            "400",
        ),
        (
            "HEAD of /send",
            format!(
                "HEAD /send?msg=by-head&token={t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            ),
            "405",
        ),
    ];
    for (what, request, want) in &cases {
        let answer = exchange(&node, request);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {want}")),
            "{what}: {answer}"
        );
        assert_eq!(
            answer.matches("HTTP/1.1 ").count(),
            1,
            "{what}: one answer, then the connection is closed: {answer}"
        );
        assert!(
            crate::util::box_lines(&home).is_empty(),
            "{what}: something was stored"
        );
    }
    // A HEAD of a page that only reads is answered, without a body.
    let answer = exchange(
        &node,
        &format!("HEAD /status?token={t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(!answer.contains("\"node\""), "{answer}");
    assert_eq!(node.get("/status", &[]).0, 200);
}
