//! One HTTP/1.1 request and its answer over a fresh TCP connection: all the command
//! line needs to talk to a node's client API.
//!
//! A command such as `dshare send` is a short-lived process that makes one call, so
//! its latency is start-up plus one round trip. A general-purpose client costs more
//! than the round trip itself there: a thread to bound name resolution, two 128 KiB
//! buffers, a connection pool probed and torn down at exit, the head and the body in
//! separate segments. This sends the head and body in one write, asks the node to
//! close the connection after answering, and reads that one answer (sized by
//! Content-Length, chunked, or up to the close).
//!
//! Errors are worded like the ones ureq gave before (`io: …`, `timeout: global`), and
//! they are plain text: an I/O error from the node's socket must never reach
//! [`crate::exit::report`] as an `io::Error`, which takes a broken pipe for success.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Longest wait for a TCP connection to a node, within the whole call's time.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// What is read from the socket at a time while looking for the end of the head.
const HEAD_READ: usize = 8 * 1024;

/// A request to send.
pub struct Request<'a> {
    /// `host:port` (a port-less host means port 80).
    pub authority: &'a str,
    /// `GET` or `POST`.
    pub method: &'a str,
    /// Path and query string.
    pub target: &'a str,
    /// Extra header lines, without their CRLF.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body of a POST.
    pub body: Option<&'a [u8]>,
}

/// An answer whose head has been read; [`Response::body`] reads the rest.
pub struct Response {
    pub status: u16,
    /// Header names in lowercase.
    headers: Vec<(String, String)>,
    /// Bytes already read past the head.
    rest: Vec<u8>,
    stream: Timed,
}

/// Sends `req` and reads the head of the answer, all within `total`. The error says
/// why the node could not be reached or did not answer.
pub fn send(req: &Request, total: Duration) -> Result<Response, String> {
    let deadline = Instant::now() + total;
    let stream = connect(req.authority, deadline)?;
    let mut stream = Timed { stream, deadline };
    stream.write_all(&head(req)).map_err(describe)?;
    read_head(stream)
}

impl Response {
    /// The value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Reads the body, refusing one larger than `limit` bytes.
    pub fn body(mut self, limit: u64) -> Result<Vec<u8>, String> {
        let too_big = || format!("the response body is larger than request limit: {limit}");
        let chunked = self
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        let length = match self.header("content-length") {
            Some(v) if !chunked => Some(
                v.parse::<u64>()
                    .map_err(|_| format!("protocol: bad Content-Length {v:?}"))?,
            ),
            _ => None,
        };
        if length.is_some_and(|n| n > limit) {
            return Err(too_big());
        }
        // Without a length the node ends the body by closing (we asked it to close); a
        // chunked body is read whole the same way, then decoded, so its chunk sizes
        // get some room beyond the limit.
        let cap = if chunked {
            limit.saturating_add(limit / 8).saturating_add(4096)
        } else {
            limit
        };
        let want = length.unwrap_or(cap.saturating_add(1));
        let have = self.rest.len() as u64;
        if have < want {
            (&mut self.stream)
                .take(want - have)
                .read_to_end(&mut self.rest)
                .map_err(describe)?;
        }
        let mut body = self.rest;
        match length {
            Some(n) if (body.len() as u64) < n => {
                return Err("io: the node closed the connection before the whole answer".into());
            }
            Some(n) => body.truncate(usize::try_from(n).unwrap_or(usize::MAX)),
            None if body.len() as u64 > cap => return Err(too_big()),
            None => {}
        }
        if chunked {
            body = dechunk(&body).ok_or("protocol: malformed chunked body")?;
            if body.len() as u64 > limit {
                return Err(too_big());
            }
        }
        Ok(body)
    }
}

/// The request head, with the body appended: one write, so usually one segment.
fn head(req: &Request) -> Vec<u8> {
    let body = req.body.unwrap_or_default();
    let mut out = Vec::with_capacity(256 + body.len());
    let mut line = |l: &str| {
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    line(&format!("{} {} HTTP/1.1", req.method, req.target));
    line(&format!("Host: {}", req.authority));
    line("Connection: close");
    for (name, value) in req.headers {
        line(&format!("{name}: {value}"));
    }
    if req.body.is_some() {
        line(&format!("Content-Length: {}", body.len()));
    }
    line("");
    out.extend_from_slice(body);
    out
}

/// Connects to the first address of `authority` that answers, each attempt bounded by
/// [`CONNECT_TIMEOUT`] and by the deadline. An IP address is used as it is (no lookup).
fn connect(authority: &str, deadline: Instant) -> Result<TcpStream, String> {
    let with_port;
    let authority = if has_port(authority) {
        authority
    } else {
        with_port = format!("{authority}:80");
        &with_port
    };
    let addrs = authority
        .to_socket_addrs()
        .map_err(|e| format!("io: {e}"))?;
    let mut last = "host not found".to_string();
    for addr in addrs {
        let left = remaining(deadline).map_err(describe)?;
        match TcpStream::connect_timeout(&addr, left.min(CONNECT_TIMEOUT)) {
            Ok(stream) => {
                // Nagle would hold the tail of a large body until the first part is
                // acknowledged.
                stream.set_nodelay(true).map_err(describe)?;
                return Ok(stream);
            }
            // Whichever bound was the nearer one ran out.
            Err(e) if is_timeout(&e) && left > CONNECT_TIMEOUT => {
                last = "timeout: connect".into();
            }
            Err(e) => last = describe(e),
        }
    }
    Err(last)
}

/// True when `authority` ends with a port (`host:80`, `[::1]:80`), not just a host.
fn has_port(authority: &str) -> bool {
    authority
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && !port.contains(']'))
}

/// Reads up to the end of the head, keeping what was read beyond it for the body.
fn read_head(mut stream: Timed) -> Result<Response, String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; HEAD_READ];
    let end = loop {
        let n = stream.read(&mut chunk).map_err(describe)?;
        if n == 0 {
            return Err("io: the node closed the connection without answering".into());
        }
        // The end of the head may straddle two reads: look back 3 bytes.
        let from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = find(&buf[from..], b"\r\n\r\n") {
            break from + i;
        }
        if buf.len() > MAX_HEAD {
            return Err(format!(
                "response header is too big: {} > {MAX_HEAD}",
                buf.len()
            ));
        }
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| "protocol: head is not text")?;
    let mut lines = head.split("\r\n");
    let status = parse_status(lines.next().unwrap_or_default())?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Response {
        status,
        headers,
        rest: buf[end + 4..].to_vec(),
        stream,
    })
}

/// The code in `HTTP/1.1 200 OK`.
fn parse_status(line: &str) -> Result<u16, String> {
    let bad = || format!("protocol: bad status line {line:?}");
    let mut words = line.split(' ');
    if !words.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return Err(bad());
    }
    let code = words.next().ok_or_else(bad)?;
    match code.parse::<u16>() {
        Ok(c) if code.len() == 3 && (100..600).contains(&c) => Ok(c),
        _ => Err(bad()),
    }
}

/// Decodes a chunked body (chunk extensions and trailers ignored); `None` if it is
/// malformed or incomplete.
fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    loop {
        let eol = find(raw, b"\r\n")?;
        let size = std::str::from_utf8(&raw[..eol]).ok()?;
        let size = size.split(';').next()?.trim();
        let size = usize::from_str_radix(size, 16).ok()?;
        raw = &raw[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A socket whose every read and write ends by the deadline of the whole call.
struct Timed {
    stream: TcpStream,
    deadline: Instant,
}

impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = remaining(self.deadline)?;
        self.stream.set_read_timeout(Some(left))?;
        self.stream.read(buf)
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let left = remaining(self.deadline)?;
        self.stream.set_write_timeout(Some(left))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Time left before `deadline`, or a timeout error once it has passed.
fn remaining(deadline: Instant) -> io::Result<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| io::ErrorKind::TimedOut.into())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// An I/O error as text: a timeout is the whole call's.
fn describe(e: io::Error) -> String {
    if is_timeout(&e) {
        "timeout: global".into()
    } else {
        format!("io: {e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_decode() {
        assert_eq!(
            dechunk(b"5\r\nhello\r\n1;x=y\r\n \r\n5\r\nworld\r\n0\r\n\r\n").as_deref(),
            Some(&b"hello world"[..])
        );
        assert_eq!(dechunk(b"0\r\n\r\n").as_deref(), Some(&b""[..]));
        assert!(dechunk(b"5\r\nhel").is_none());
        assert!(dechunk(b"zz\r\n").is_none());
        assert!(dechunk(b"5\r\nhello").is_none());
    }

    #[test]
    fn status_lines_parse() {
        assert_eq!(parse_status("HTTP/1.1 200 OK"), Ok(200));
        assert_eq!(parse_status("HTTP/1.0 504 Gateway Timeout"), Ok(504));
        assert!(parse_status("HTTP/1.1 20 OK").is_err());
        assert!(parse_status("SSH-2.0-OpenSSH").is_err());
        assert!(parse_status("").is_err());
    }

    /// Answers one request on a loopback port with `answer`, then closes; returns the
    /// port and what the request was.
    fn one_answer(answer: &'static [u8]) -> (String, std::thread::JoinHandle<Vec<u8>>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let served = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while find(&request, b"hi there").is_none() {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "the request ended early");
                request.extend_from_slice(&buf[..n]);
            }
            conn.write_all(answer).unwrap();
            request
        });
        (authority, served)
    }

    fn exchange(answer: &'static [u8]) -> (Result<(u16, Vec<u8>), String>, String) {
        let (authority, served) = one_answer(answer);
        let request = Request {
            authority: &authority,
            method: "POST",
            target: "/send?format=json",
            headers: &[("Authorization", "Bearer t")],
            body: Some(b"hi there"),
        };
        let result =
            send(&request, Duration::from_secs(5)).and_then(|r| Ok((r.status, r.body(16)?)));
        let request = String::from_utf8(served.join().unwrap()).unwrap();
        (result, request)
    }

    #[test]
    fn one_request_one_answer() {
        let (result, request) = exchange(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!(result, Ok((200, b"hello".to_vec())));
        assert!(request.starts_with("POST /send?format=json HTTP/1.1\r\n"));
        assert!(request.contains("\r\nConnection: close\r\n"));
        assert!(request.contains("\r\nAuthorization: Bearer t\r\n"));
        assert!(request.ends_with("\r\nContent-Length: 8\r\n\r\nhi there"));
    }

    #[test]
    fn bodies_end_by_length_by_chunks_or_by_closing() {
        let chunked = b"HTTP/1.1 504 Gateway Timeout\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n";
        assert_eq!(exchange(chunked).0, Ok((504, b"hello".to_vec())));
        let closed = b"HTTP/1.0 200 OK\r\n\r\nhello";
        assert_eq!(exchange(closed).0, Ok((200, b"hello".to_vec())));
    }

    #[test]
    fn short_long_and_broken_answers_are_errors() {
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello";
        assert!(exchange(short).0.unwrap_err().starts_with("io: "));
        let long = b"HTTP/1.1 200 OK\r\nContent-Length: 17\r\n\r\n0123456789abcdefg";
        let err = exchange(long).0.unwrap_err();
        assert!(err.contains("larger than request limit"), "{err}");
        let long = b"HTTP/1.1 200 OK\r\n\r\n0123456789abcdefg";
        assert!(exchange(long).0.is_err());
        assert!(exchange(b"").0.unwrap_err().contains("without answering"));
        assert!(
            exchange(b"nonsense\r\n\r\n")
                .0
                .unwrap_err()
                .starts_with("protocol: ")
        );
    }

    #[test]
    fn a_closed_port_is_an_io_error_and_a_silent_node_a_timeout() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let request = Request {
            authority: &authority,
            method: "GET",
            target: "/",
            headers: &[],
            body: None,
        };
        let silent = send(&request, Duration::from_millis(200));
        assert_eq!(silent.err().as_deref(), Some("timeout: global"));
        drop(listener);
        let refused = send(&request, Duration::from_secs(5));
        assert!(refused.err().unwrap().starts_with("io: "));
    }

    #[test]
    fn a_port_is_found_or_defaulted() {
        assert!(has_port("127.0.0.1:7070"));
        assert!(has_port("[::1]:7070"));
        assert!(has_port("node.example:80"));
        assert!(!has_port("node.example"));
        assert!(!has_port("[::1]"));
    }
}
