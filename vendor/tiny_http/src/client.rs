use ascii::AsciiString;

use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind};

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::common::{HTTPVersion, Header, Method};
use crate::util::RefinedTcpStream;
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // dshare patch: when the first byte of the current request head arrived
    head_started: Option<Instant>,

    // dshare patch: how long a whole request head may take once its first byte is in
    head_deadline: Duration,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    /// dshare patch: each request head must arrive within `head_deadline`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        head_deadline: Duration,
    ) -> ClientConnection {
        let remote_addr = read_socket.peer_addr();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            head_started: None,
            head_deadline,
        }
    }

    /// dshare patch: whether the last request has been answered, no byte of a next
    /// one is read yet, and the client may send one: the connection can then wait
    /// for it in the waiting room rather than on a thread.
    pub fn between_requests(&mut self) -> bool {
        !self.no_more_requests && self.next_header_source.nothing_buffered()
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    ///
    /// dshare patch: reads what the buffer holds at once instead of a byte at a time,
    /// and looks at the clock once per buffer filled rather than once per byte (a
    /// request head of a few kilobytes cost a clock read per byte).
    fn read_next_line(&mut self) -> IoResult<AsciiString> {
        /// dshare patch: the longest request line or header line read.
        const MAX_LINE: usize = 512 * 1024;
        let mut buf = Vec::new();

        loop {
            let available = match self.next_header_source.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                return Err(IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF"));
            }

            // dshare patch: once its first byte is in, a whole request head must
            // arrive within the head deadline, however slowly its bytes trickle in.
            // (Waiting for that first byte is bounded by the socket's read timeout.)
            // Checked after every fill of the buffer, i.e. after every read that may
            // have waited for the client.
            let started = *self.head_started.get_or_insert_with(Instant::now);
            if started.elapsed() > self.head_deadline {
                return Err(IoError::new(
                    ErrorKind::TimedOut,
                    "Request head deadline passed",
                ));
            }

            // The line ends at the first CRLF; a lone LF is part of the line. A CR
            // at the end of the previous buffer may pair with an LF at the start.
            let from = buf.len();
            let end = available.iter().enumerate().position(|(i, &b)| {
                b == b'\n'
                    && if i == 0 {
                        buf.last() == Some(&b'\r')
                    } else {
                        available[i - 1] == b'\r'
                    }
            });
            let take = end.map_or(available.len(), |i| i + 1);
            // dshare patch: a request line or header may not grow without bound.
            if from + take > MAX_LINE + 2 {
                return Err(IoError::new(
                    ErrorKind::InvalidInput,
                    "Header line too long",
                ));
            }
            buf.extend_from_slice(&available[..take]);
            self.next_header_source.consume(take);
            if end.is_some() {
                buf.truncate(buf.len() - 2); // removing the CRLF
                return AsciiString::from_ascii(buf)
                    .map_err(|_| IoError::new(ErrorKind::InvalidInput, "Header is not in ASCII"));
            }
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        self.head_started = None;
        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self.read_next_line().map_err(ReadError::ReadIoError)?;

                parse_request_line(
                    line.as_str().trim(), // TODO: remove this conversion
                )?
            };

            // getting all headers
            let headers = {
                let mut headers = Vec::new();
                loop {
                    let line = self.read_next_line().map_err(ReadError::ReadIoError)?;

                    if line.is_empty() {
                        break;
                    };
                    headers.push(parse_header_line(line.as_str(), headers.len(), &version)?);
                }
                check_framing(&headers).map_err(|_| ReadError::WrongHeader(version.clone()))?;

                headers
            };

            (method, path, version, headers)
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            method,
            path,
            version.clone(),
            headers,
            // dshare patch: a client gone before its head was read has no address
            // (ENOTCONN); stock 0.12 panicked on it.
            self.remote_addr.as_ref().ok().copied().flatten(),
            data_source,
            writer,
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request)
    }
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        use crate::{Response, StatusCode};

        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        loop {
            let rq = match self.read() {
                Err(ReadError::WrongRequestLine) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(400));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::WrongHeader(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(400));
                    response.raw_print(writer, ver, &[], false, None).ok();
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::ReadIoError(ref err)) if err.kind() == ErrorKind::TimedOut => {
                    // request timeout
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(408));
                    response
                        .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                        .ok();
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    let writer = self.sink.next().unwrap();
                    let response = Response::new_empty(StatusCode(417));
                    response.raw_print(writer, ver, &[], true, None).ok();
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                Err(ReadError::ReadIoError(_)) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            if *rq.http_version() > (1, 1) {
                let writer = self.sink.next().unwrap();
                let response = Response::from_string(
                    "This server only supports HTTP versions 1.0 and 1.1".to_owned(),
                )
                .with_status_code(StatusCode(505));
                response
                    .raw_print(writer, HTTPVersion(1, 1), &[], false, None)
                    .ok();
                continue;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

/// dshare patch: most header lines in a request head.
const MAX_HEADERS: usize = 128;

/// dshare patch: one header line, the `held`-th of its head (a bounded number).
fn parse_header_line(line: &str, held: usize, version: &HTTPVersion) -> Result<Header, ReadError> {
    if held >= MAX_HEADERS {
        return Err(ReadError::WrongHeader(version.clone()));
    }
    FromStr::from_str(line.trim()).map_err(|_| ReadError::WrongHeader(version.clone()))
}

/// dshare patch: why a request head's body framing was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingError {
    /// Two `Content-Length` headers: servers and proxies that pick different ones
    /// see different requests (request smuggling).
    RepeatedContentLength,
    /// A `Content-Length` that is not plain decimal digits (`+5`, `5, 5`, ` `, …):
    /// stock 0.12 read `+5` as 5, and an unparseable one as no body at all, leaving
    /// the body to be read as the next request.
    BadContentLength,
    /// Any `Transfer-Encoding`: dshare's clients always send a `Content-Length`, and
    /// with both headers (or a chunked body left unread) the bytes after the head
    /// could be read as another request.
    TransferEncoding,
}

/// dshare patch: a request's body is framed by at most one `Content-Length` of
/// digits only, and never by `Transfer-Encoding`. Anything else is refused (400,
/// connection closed), because where this server and a proxy in front of it
/// disagree about where a request ends, a second request can hide in the first.
pub fn check_framing(headers: &[Header]) -> Result<Option<usize>, FramingError> {
    if headers.iter().any(|h| h.field.equiv("Transfer-Encoding")) {
        return Err(FramingError::TransferEncoding);
    }
    let mut lengths = headers.iter().filter(|h| h.field.equiv("Content-Length"));
    let Some(first) = lengths.next() else {
        return Ok(None);
    };
    if lengths.next().is_some() {
        return Err(FramingError::RepeatedContentLength);
    }
    let value = first.value.as_str();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(FramingError::BadContentLength);
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| FramingError::BadContentLength)
}

/// dshare patch: what [`parse_request_head`] found in a head.
#[derive(Debug)]
pub struct RequestHead {
    pub method: Method,
    pub target: String,
    pub version: HTTPVersion,
    pub headers: Vec<Header>,
    pub content_length: Option<usize>,
}

/// dshare patch: checks a whole request head (request line, header lines, the blank
/// line) as the connection reader does, without a socket: for fuzzing and property
/// tests. `Err` means the server answers 400 and closes the connection.
pub fn parse_request_head(head: &[u8]) -> Result<RequestHead, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "not ASCII")?;
    if !text.is_ascii() {
        return Err("not ASCII");
    }
    let body = text
        .strip_suffix("\r\n\r\n")
        .ok_or("no blank line at the end")?;
    let mut lines = body.split("\r\n");
    let request_line = lines.next().ok_or("no request line")?;
    let (method, target, version) =
        parse_request_line(request_line.trim()).map_err(|_| "bad request line")?;
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            return Err("a blank line inside the head");
        }
        headers.push(parse_header_line(line, headers.len(), &version).map_err(|_| "bad header")?);
    }
    let content_length = check_framing(&headers).map_err(|_| "bad body framing")?;
    Ok(RequestHead {
        method,
        target,
        version,
        headers,
        content_length,
    })
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }

    /// Patch 3: a head of 128 header lines is read, one of 129 is refused.
    #[test]
    fn header_lines_are_bounded_in_number() {
        let head = |n: usize| {
            let lines: String = (0..n).map(|i| format!("X-{i}: 1\r\n")).collect();
            super::parse_request_head(format!("GET / HTTP/1.1\r\n{lines}\r\n").as_bytes())
        };
        assert_eq!(head(super::MAX_HEADERS).unwrap().headers.len(), 128);
        assert!(head(super::MAX_HEADERS + 1).is_err());
    }

    /// Patch 9: the body is framed by one plain decimal Content-Length or not at all.
    #[test]
    fn body_framing_is_strict() {
        use super::FramingError::*;
        let framing = |lines: &[&str]| {
            let headers: Vec<crate::Header> = lines.iter().map(|l| l.parse().unwrap()).collect();
            super::check_framing(&headers)
        };
        assert_eq!(framing(&["Content-Length: 12"]), Ok(Some(12)));
        assert_eq!(framing(&[]), Ok(None));
        assert_eq!(framing(&["Content-Length: +5"]), Err(BadContentLength));
        assert_eq!(framing(&["Content-Length: 5, 5"]), Err(BadContentLength));
        assert_eq!(
            framing(&["Content-Length: 5", "content-length: 5"]),
            Err(RepeatedContentLength)
        );
        assert_eq!(
            framing(&["Transfer-Encoding: chunked"]),
            Err(TransferEncoding)
        );
    }
}
