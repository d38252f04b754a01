//! The one HTTP client of the tests and benches, written by hand so a test controls every byte it sends and sees every header it gets: a keep-alive connection (the benches poll on one), one-shot requests on a fresh connection (the tests), and one reader of answers.
//!
//! An answer is read by its Content-Length, chunk by chunk, or up to the close;
//! percent-encoding is dshare's own ([`dshare::net::query::encode`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub use dshare::net::query::encode;

/// A connection to one server, kept open between requests.
pub struct Conn {
    reader: BufReader<TcpStream>,
    host: String,
    line: String,
}

/// An answer: its status, its head as sent (status line and headers, without the
/// blank line), its body with any chunking undone, and dshare's `X-Dshare-Next`.
pub struct Reply {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    pub next: Option<u64>,
}

impl Conn {
    /// Connects to `url` (`http://HOST:PORT`, a path ignored), waiting at most
    /// `patience` for any one read.
    pub fn connect(url: &str, patience: Duration) -> std::io::Result<Conn> {
        let rest = url.trim_start_matches("http://");
        let host = rest.split('/').next().unwrap_or(rest);
        let stream = TcpStream::connect(host)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(patience))?;
        Ok(Conn {
            reader: BufReader::with_capacity(1 << 16, stream),
            host: host.to_string(),
            line: String::new(),
        })
    }

    /// `GET target`, keeping the connection open.
    pub fn get(&mut self, target: &str) -> std::io::Result<Reply> {
        let req = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.reader.get_mut().write_all(req.as_bytes())?;
        self.read_reply()
    }

    /// Any request: `headers` are whole header lines without their CRLF; a body gets
    /// its Content-Length. The head and the body go out in one write.
    pub fn request(
        &mut self,
        method: &str,
        target: &str,
        headers: &[&str],
        body: Option<&[u8]>,
    ) -> std::io::Result<Reply> {
        let mut req = format!("{method} {target} HTTP/1.1\r\nHost: {}\r\n", self.host);
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        if let Some(body) = body {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        self.reader.get_mut().write_all(&bytes)?;
        self.read_reply()
    }

    /// Reads one answer from the connection.
    pub fn read_reply(&mut self) -> std::io::Result<Reply> {
        let bad = |what: &str| std::io::Error::other(what.to_string());
        self.line.clear();
        if self.reader.read_line(&mut self.line)? == 0 {
            return Err(bad("connection closed"));
        }
        let status = self
            .line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut head = self.line.trim_end().to_string();
        let (mut length, mut chunked, mut next) = (None, false, None);
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line)? == 0 {
                return Err(bad("connection closed in the head"));
            }
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
            head.push_str("\r\n");
            head.push_str(l);
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                match k.as_str() {
                    "content-length" => length = v.parse().ok(),
                    "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
                    "x-dshare-next" => next = v.parse().ok(),
                    _ => {}
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            self.read_chunks(&mut body)?;
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.reader.read_exact(&mut body)?;
        } else {
            self.reader.read_to_end(&mut body)?;
        }
        Ok(Reply {
            status,
            head,
            body,
            next,
        })
    }

    fn read_chunks(&mut self, body: &mut Vec<u8>) -> std::io::Result<()> {
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line)?;
            let size = usize::from_str_radix(self.line.trim(), 16)
                .map_err(|_| std::io::Error::other("bad chunk size"))?;
            let start = body.len();
            body.resize(start + size + 2, 0);
            self.reader.read_exact(&mut body[start..])?;
            body.truncate(start + size);
            if size == 0 {
                return Ok(());
            }
        }
    }
}

/// One request on a fresh connection that the server is asked to close after it:
/// `url` is `http://HOST:PORT/target`. `None` when the server cannot be reached or
/// does not answer within 30 s.
pub fn once(url: &str, method: &str, headers: &[&str], body: Option<&[u8]>) -> Option<Reply> {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let target = rest.find('/').map_or("/", |at| &rest[at..]);
    let mut conn = Conn::connect(url, Duration::from_secs(30)).ok()?;
    let mut all = vec!["Connection: close"];
    all.extend_from_slice(headers);
    conn.request(method, target, &all, body).ok()
}
