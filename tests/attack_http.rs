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
    drop(idle);
    let after = status_answered_within(&node, Duration::from_secs(5));
    eprintln!("after closing them: /status answered in {after:?}");
    for _ in 0..20 {
        assert_eq!(node.get("/status", &[]).0, 200);
    }
    let log = node.log();
    assert!(!log.contains("panicked"), "the node panicked:\n{log}");
}
