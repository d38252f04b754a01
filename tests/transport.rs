//! Transport-level abuse with measured outcomes: idle floods, tricklers, slow readers,
//! huge request lines. The node keeps serving everyone else throughout.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{Node, Scratch};

/// A line of /proc/PID/status, as a number (VmRSS in kB, Threads).
fn proc_status(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Times `n` requests for /status from a well-behaved client; returns them sorted.
fn timed_requests(node: &Node, n: usize) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(node.get("/status", &[]).0, 200);
            start.elapsed()
        })
        .collect();
    times.sort();
    times
}

#[test]
fn two_thousand_idle_connections_cost_no_threads_and_delay_no_one() {
    let s = Scratch::new();
    let node = Node::start(&s.home("a"), &[]);
    let addr = node.url.strip_prefix("http://").unwrap().to_string();
    let before = proc_status(node.pid(), "Threads:");
    let idle: Vec<TcpStream> = (0..2000)
        .map(|_| TcpStream::connect(&addr).unwrap())
        .collect();
    // Give the node time to accept them all: poll until a request behind them is served.
    let times = timed_requests(&node, 20);
    let threads = proc_status(node.pid(), "Threads:");
    eprintln!(
        "2000 idle connections: threads {before} -> {threads}; /status median {:?}, max {:?}",
        times[10], times[19]
    );
    assert!(
        threads <= before + 8,
        "threads grew from {before} to {threads}"
    );
    assert!(
        times[10] < Duration::from_millis(100),
        "median {:?}",
        times[10]
    );
    assert!(times[19] < Duration::from_secs(1), "max {:?}", times[19]);
    drop(idle);
}

#[test]
fn a_trickling_client_is_cut_off_at_the_head_deadline() {
    let s = Scratch::new();
    let node = Node::start(&s.home("a"), &["--head-timeout", "2", "--io-timeout", "5"]);
    let addr = node.url.strip_prefix("http://").unwrap().to_string();
    let mut c = TcpStream::connect(&addr).unwrap();
    let start = Instant::now();
    let request = b"GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n\r\n";
    let mut sent = 0;
    for b in request {
        if c.write_all(&[*b]).is_err() {
            break;
        }
        sent += 1;
        // Each byte comes well within the io timeout: only a total deadline stops this.
        std::thread::sleep(Duration::from_millis(200));
        if start.elapsed() > Duration::from_secs(8) {
            break;
        }
        // Other clients are served meanwhile.
        if sent % 10 == 0 {
            assert!(timed_requests(&node, 3)[2] < Duration::from_secs(1));
        }
    }
    let cut = start.elapsed();
    eprintln!(
        "trickler sent {sent} of {} bytes; cut after {cut:?}",
        request.len()
    );
    assert!(sent < request.len(), "the trickler was never cut off");
    assert!(cut < Duration::from_secs(5), "cut only after {cut:?}");
}

#[test]
fn a_client_reading_one_byte_a_second_holds_up_no_one_else() {
    let s = Scratch::new();
    let node = Node::start(&s.home("a"), &[]);
    let big = "y".repeat(8000);
    for _ in 0..200 {
        assert_eq!(node.get("/send", &[("msg", &big)]).0, 200);
    }
    let addr = node.url.strip_prefix("http://").unwrap().to_string();
    let mut slow = TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        slow,
        "GET /log?n=200&token={} HTTP/1.1\r\nHost: x\r\n\r\n",
        node.token
    )
    .unwrap();
    let mut byte = [0u8; 1];
    for _ in 0..3 {
        slow.read_exact(&mut byte).unwrap();
        let times = timed_requests(&node, 5);
        assert!(times[4] < Duration::from_millis(500), "{times:?}");
        std::thread::sleep(Duration::from_millis(1000));
    }
}

#[test]
fn a_100_mb_request_line_leaves_memory_bounded_and_the_node_answering() {
    let s = Scratch::new();
    let node = Node::start(&s.home("a"), &[]);
    let idle_kb = proc_status(node.pid(), "VmRSS:");
    let addr = node.url.strip_prefix("http://").unwrap().to_string();
    let mut c = TcpStream::connect(&addr).unwrap();
    c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /").unwrap();
    let chunk = vec![b'a'; 1 << 20];
    let mut sent_mb = 0;
    for _ in 0..100 {
        if c.write_all(&chunk).is_err() {
            break;
        }
        sent_mb += 1;
    }
    drop(c);
    let after_kb = proc_status(node.pid(), "VmRSS:");
    eprintln!("sent {sent_mb} MB of request line; RSS {idle_kb} kB -> {after_kb} kB");
    assert!(
        after_kb < idle_kb + 64 * 1024,
        "RSS grew from {idle_kb} kB to {after_kb} kB"
    );
    assert_eq!(node.get("/status", &[]).0, 200);
}
