//! The fork's limits against real servers on loopback: each server keeps the
//! `Limits` it was built with, and each limit closes what passes it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tiny_http::{Limits, Response, Server};

/// Long enough for a loaded machine, short enough to fail fast.
const PATIENCE: Duration = Duration::from_secs(10);

/// A server on an ephemeral loopback port that answers every request with `ok`.
fn start(limits: Limits) -> (Server, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = Arc::new(|rq: tiny_http::Request| {
        let _ = rq.respond(Response::from_string("ok"));
        true
    });
    (
        Server::from_listener_serving(listener, limits, serve).unwrap(),
        addr,
    )
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Everything the server sends until it closes; empty if it closed without a word.
fn read_to_close(mut stream: TcpStream) -> String {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// One complete request on a new connection, and the whole answer.
fn request(addr: SocketAddr) -> String {
    let mut stream = connect(addr);
    let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    read_to_close(stream)
}

/// Polls `check` until it holds or [`PATIENCE`] runs out.
fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {}", what);
        thread::sleep(Duration::from_millis(20));
    }
}

/// Patch 11 (and 4): two servers in one process, one with a short head deadline and
/// one with the default, each holding a trickling client. Only the first cuts its
/// client off; with the limits in process-wide statics both had the same deadline.
#[test]
fn each_server_keeps_its_own_head_deadline() {
    let strict = Limits {
        head_deadline: Duration::from_millis(300),
        ..Limits::default()
    };
    let (_strict, strict_addr) = start(strict);
    let (_lenient, lenient_addr) = start(Limits::default());
    let (mut to_strict, mut to_lenient) = (connect(strict_addr), connect(lenient_addr));
    to_strict.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    to_lenient.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    let mut strict_cut_off = false;
    for i in 0..15 {
        thread::sleep(Duration::from_millis(100));
        let line = format!("X-Trickle-{i}: 1\r\n");
        strict_cut_off |= to_strict.write_all(line.as_bytes()).is_err();
        to_lenient.write_all(line.as_bytes()).unwrap();
    }
    to_lenient.write_all(b"Connection: close\r\n\r\n").unwrap();
    let _ = to_strict.write_all(b"\r\n");
    let strict_answer = read_to_close(to_strict);
    let lenient_answer = read_to_close(to_lenient);
    eprintln!(
        "after {:?}: strict server answered {:?}, lenient {:?}",
        started.elapsed(),
        strict_answer.lines().next(),
        lenient_answer.lines().next()
    );
    assert!(
        strict_cut_off || strict_answer.starts_with("HTTP/1.1 408"),
        "the 300 ms head deadline let a 1.5 s head through: {:?}",
        strict_answer
    );
    assert!(
        lenient_answer.starts_with("HTTP/1.1 200"),
        "the default 10 s head deadline cut a 1.5 s head off: {:?}",
        lenient_answer
    );
}

/// Patch 2: with one connection allowed, a second one that talks while the first holds
/// its thread is closed unanswered; once the first ends, new ones are served again.
#[test]
fn connections_past_the_cap_are_closed_until_one_ends() {
    let (_server, addr) = start(Limits {
        max_connections: 1,
        ..Limits::default()
    });
    let mut holder = connect(addr);
    holder.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    // The holder takes the one slot once the waiting room sees its bytes; until then a
    // second client may still be served, so ask until one is refused.
    let mut refused = 0;
    wait_for("a connection past the cap to be closed unanswered", || {
        let answer = request(addr);
        if answer.is_empty() {
            refused += 1;
        }
        refused > 0
    });
    holder
        .write_all(b"Host: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    assert!(read_to_close(holder).starts_with("HTTP/1.1 200"));
    wait_for("the freed slot to serve a new connection", || {
        request(addr).starts_with("HTTP/1.1 200")
    });
}

/// Patch 5: with room for two silent connections, a third closes the oldest; the
/// two younger ones are still served.
#[test]
fn a_full_waiting_room_closes_the_connection_that_waited_longest() {
    let (_server, addr) = start(Limits {
        max_waiting: 2,
        ..Limits::default()
    });
    let oldest = connect(addr);
    thread::sleep(Duration::from_millis(50));
    let mut younger: Vec<TcpStream> = (0..2)
        .map(|_| {
            let stream = connect(addr);
            thread::sleep(Duration::from_millis(50));
            stream
        })
        .collect();
    let started = Instant::now();
    assert_eq!(read_to_close(oldest), "", "the oldest was answered");
    assert!(started.elapsed() < PATIENCE, "the oldest was never closed");
    for stream in &mut younger {
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
    }
    for stream in younger {
        assert!(read_to_close(stream).starts_with("HTTP/1.1 200"));
    }
}

/// Patch 5: a connection that never sends a byte is closed after the idle timeout
/// (checked every half second), without ever taking a thread.
#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let (_server, addr) = start(Limits {
        idle_timeout: Duration::from_millis(200),
        ..Limits::default()
    });
    let started = Instant::now();
    assert_eq!(read_to_close(connect(addr)), "");
    let waited = started.elapsed();
    eprintln!("silent connection closed after {waited:?}");
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_secs(3));
}
