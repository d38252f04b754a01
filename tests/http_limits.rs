//! The HTTP server's limits: slow clients, oversized and malformed requests.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{Node, Scratch, get};

#[test]
fn slow_clients_do_not_block_others() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &["--workers", "4"]);
    let addr = node.url.strip_prefix("http://").unwrap().to_string();
    // More stalled connections than workers: each sends half a request line and waits.
    let stalled: Vec<TcpStream> = (0..12)
        .map(|_| {
            let mut c = TcpStream::connect(&addr).unwrap();
            c.write_all(b"GET /status?tok").unwrap();
            c
        })
        .collect();
    for _ in 0..5 {
        let start = Instant::now();
        let (status, _) = node.get("/status", &[]);
        assert_eq!(status, 200);
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "a request behind slow clients took {:?}",
            start.elapsed()
        );
    }
    drop(stalled);
}

#[test]
fn bad_requests_get_clear_statuses_and_the_node_goes_on() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let huge = "x".repeat(300 * 1024);
    let cases: Vec<(String, u16)> = vec![
        (node.url_for("/send", &[("msg", &huge)]), 414),
        (
            format!("{}/send?msg=%zz&token={}", node.url, node.token),
            400,
        ),
        (
            format!("{}/send?msg=%ff%fe&token={}", node.url, node.token),
            400,
        ),
        (node.url_for("/no/such/path", &[]), 404),
        (node.url_for("/../../etc/passwd", &[]), 404),
    ];
    for (url, want) in &cases {
        let (status, _, body) = get(url);
        assert_eq!(status, *want, "{}: {body}", &url[..url.len().min(80)]);
        assert_eq!(node.get("/status", &[]).0, 200, "the node still answers");
    }
    let addr = node.url.strip_prefix("http://").unwrap();
    let raw = |request: String| {
        let mut c = TcpStream::connect(addr).unwrap();
        // `\u{1}` stands for a byte that is not UTF-8 on its own.
        let bytes: Vec<u8> = request
            .bytes()
            .map(|b| if b == 1 { 0xff } else { b })
            .collect();
        c.write_all(&bytes).unwrap();
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut c, &mut answer);
        answer
    };
    let t = &node.token;
    // Only GET and POST; a GET carries no body; a POST needs a bounded length and
    // never acts on the cookie alone.
    let answers = [
        (
            format!(
                "PUT /send?token={t} HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
            ),
            "405",
        ),
        (
            format!(
                "GET /send?msg=x&token={t} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
            ),
            "413",
        ),
        (
            format!(
                "POST /send?token={t} HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\nConnection: close\r\n\r\n"
            ),
            "413",
        ),
        (
            format!(
                "POST /send HTTP/1.1\r\nHost: x\r\nCookie: dshare_token={t}\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
            ),
            "401",
        ),
        (
            format!(
                "POST /send?token={t} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n\u{1}\u{1}"
            ),
            "400",
        ),
    ];
    for (request, want) in answers {
        let answer = raw(request.clone());
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {want}")),
            "{request:?} -> {answer}"
        );
        assert_eq!(node.get("/status", &[]).0, 200, "the node still answers");
    }
    assert!(
        crate::util::box_lines(&home).is_empty(),
        "nothing was stored"
    );
    let answer = raw(format!(
        "POST /send HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello"
    ));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert_eq!(crate::util::box_lines(&home).len(), 1);
}

#[test]
fn a_silent_connection_is_closed_after_the_io_timeout_and_the_node_keeps_accepting() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &["--io-timeout", "1"]);
    let addr = node.url.strip_prefix("http://").unwrap().to_string();
    let mut silent = TcpStream::connect(&addr).unwrap();
    silent.write_all(b"GET /sta").unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let start = Instant::now();
    let mut buf = [0u8; 256];
    // The node gives up on the half-sent request: it closes (read returns 0 or an
    // error) instead of waiting for ever.
    let _ = std::io::Read::read(&mut silent, &mut buf);
    let waited = start.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "the silent connection stayed open {waited:?}"
    );
    // Idle for longer than the timeout: the listener must still accept (a timed-out
    // accept() once ended tiny_http's accept loop).
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(node.get("/status", &[]).0, 200);
}

/// Request heads are read a buffer at a time: a line ending split between two reads
/// (CR in one, LF in the next), two requests arriving in one read, and a lone LF
/// inside a header value must all come out as before.
#[test]
fn request_heads_split_or_pipelined_anywhere_are_read_exactly() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let addr = node.url.strip_prefix("http://").unwrap();
    let t = &node.token;
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let pieces = [
        format!("GET /status?token={t} HTTP/1.1\r"),
        "\nHost: x\r\nX-Odd: a\nb\r".to_string(),
        "\n\r".to_string(),
        format!(
            "\nGET /peers?token={t} HTTP/1.1\r\nHost: x\r\n\r\nGET /status?token={t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        ),
    ];
    for piece in &pieces {
        c.write_all(piece.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(30));
    }
    let mut answer = String::new();
    let _ = std::io::Read::read_to_string(&mut c, &mut answer);
    let statuses: Vec<&str> = answer
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &answer[i + 9..i + 12])
        .collect();
    assert_eq!(statuses, ["200", "200", "200"], "{answer}");
    assert!(answer.contains("\"peers\""), "{answer}");
}

/// Reads one answer from a kept-alive connection: its status and body.
fn read_answer(c: &mut TcpStream) -> (u16, String) {
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(std::io::Read::read(c, &mut byte).unwrap(), 1, "closed");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")?
                .trim()
                .parse()
                .ok()
        })
        .expect("a Content-Length");
    let mut body = vec![0u8; length];
    std::io::Read::read_exact(c, &mut body).unwrap();
    (
        head[9..12].parse().unwrap(),
        String::from_utf8(body).unwrap(),
    )
}

/// A kept-alive connection waits for its next request in the waiting room, not on a
/// thread: 40 connections that were each answered and kept open cost the node no
/// thread once silent for a second (they held 40 until the node's I/O timeout), and
/// each is served again when it speaks.
#[test]
fn kept_alive_connections_hold_no_thread_between_requests() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &["--io-timeout", "30"]);
    let addr = node.url.strip_prefix("http://").unwrap();
    let request = format!(
        "GET /status?token={} HTTP/1.1\r\nHost: x\r\n\r\n",
        node.token
    );
    let threads = || crate::attack_peers::threads_and_rss(node.pid()).0;
    let before = threads();
    let mut kept: Vec<TcpStream> = (0..40)
        .map(|_| {
            let mut c = TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(request.as_bytes()).unwrap();
            assert_eq!(read_answer(&mut c).0, 200);
            c
        })
        .collect();
    // Each waits a second on its thread, then the idle threads end after 5 s.
    crate::util::wait_for(
        "the kept connections' threads to end",
        Duration::from_secs(15),
        || (threads() < before + 5).then_some(()),
    );
    for c in &mut kept {
        c.write_all(request.as_bytes()).unwrap();
        let (status, body) = read_answer(c);
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("\"messages\""), "{body}");
    }
}
