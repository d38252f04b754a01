//! A minimal keep-alive HTTP/1.1 client: the same one for dshare and for the bare
//! tiny_http server, so the two are compared on equal terms.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use crate::{BODY_LEN, PATIENCE};

pub(crate) struct Conn {
    pub(crate) reader: BufReader<TcpStream>,
    pub(crate) host: String,
    pub(crate) line: String,
}

pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) next: Option<u64>,
}

impl Conn {
    pub(crate) fn connect(url: &str) -> std::io::Result<Conn> {
        let host = url.trim_start_matches("http://").trim_end_matches('/');
        let stream = TcpStream::connect(host)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        Ok(Conn {
            reader: BufReader::with_capacity(1 << 16, stream),
            host: host.to_string(),
            line: String::new(),
        })
    }

    pub(crate) fn get(&mut self, target: &str) -> std::io::Result<Reply> {
        let req = format!("GET {target} HTTP/1.1\r\nHost: {}\r\n\r\n", self.host);
        self.reader.get_mut().write_all(req.as_bytes())?;
        self.read_reply()
    }

    pub(crate) fn read_reply(&mut self) -> std::io::Result<Reply> {
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
        let (mut length, mut chunked, mut next) = (None, false, None);
        loop {
            self.line.clear();
            self.reader.read_line(&mut self.line)?;
            let l = self.line.trim_end();
            if l.is_empty() {
                break;
            }
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
            loop {
                self.line.clear();
                self.reader.read_line(&mut self.line)?;
                let size = usize::from_str_radix(self.line.trim(), 16)
                    .map_err(|_| bad("bad chunk size"))?;
                let start = body.len();
                body.resize(start + size + 2, 0);
                self.reader.read_exact(&mut body[start..])?;
                body.truncate(start + size);
                if size == 0 {
                    break;
                }
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            self.reader.read_exact(&mut body)?;
        }
        Ok(Reply { status, body, next })
    }
}

/// A message body of [`BODY_LEN`] bytes starting with `tag`.
pub(crate) fn body(tag: &str) -> String {
    let mut b = format!("{tag} ");
    while b.len() < BODY_LEN {
        b.push_str("the quick brown fox jumps over the lazy dog; ");
    }
    b.truncate(BODY_LEN);
    b
}
