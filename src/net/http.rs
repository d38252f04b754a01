//! The HTTP server: a prepared listening socket, tiny_http serving each request on its
//! connection's thread, a bound on requests served at once, limits on what a request
//! may be, and a clean stop.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};

use super::query;

/// Longest request target accepted. A 64 KiB body percent-encoded is at most 192 KiB,
/// plus room for a sealed envelope and the other parameters.
pub const MAX_URL: usize = 256 * 1024;

/// Largest request body accepted (POST only): one maximum-size message, sealed, with
/// room to spare. Bigger bodies are refused from their Content-Length, unread.
pub const MAX_BODY: usize = 1024 * 1024;

/// A request as the routes see it: no tiny_http types, so the transport can change.
#[derive(Debug)]
pub struct Request {
    pub post: bool,
    /// A HEAD: answered like a GET, but must not act (see [`Handler::screen`]).
    pub head: bool,
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Header names in lowercase.
    pub headers: Vec<(String, String)>,
    /// The body of a POST; empty for GET.
    pub body: Vec<u8>,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A response: status, headers, body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", content_type.to_string())],
            body: body.into(),
        }
    }

    /// A plain-text answer; errors are plain text so `curl` users can read them.
    pub fn text(status: u16, body: impl Into<String>) -> Response {
        let mut body = body.into();
        if !body.ends_with('\n') {
            body.push('\n');
        }
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn json(status: u16, value: &impl serde::Serialize) -> Response {
        let mut body = serde_json::to_vec(value).expect("JSON values serialize");
        body.push(b'\n');
        Response::new(status, "application/json", body)
    }

    pub fn with(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// What answers requests. Implementations must not panic on any input.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: &Request) -> Response;

    /// An answer found without a worker's turn (cheap checks only: no disk, no
    /// crypto), so requests that are refused at sight never queue behind real work.
    fn screen(&self, _req: &Request) -> Option<Response> {
        None
    }
}

/// Binds `addr` with the socket options every accepted connection inherits (Linux
/// copies them at accept): read and write timeouts of `io_timeout`, so a silent client
/// holds its connection thread that long at most, and no Nagle delay (without it a
/// small answer can wait ~40 ms for a delayed ACK).
pub fn bind(addr: &str, io_timeout: Duration) -> Result<TcpListener> {
    let sock_addr: SocketAddr = addr
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve listen address {addr:?} (expected HOST:PORT)"))?
        .next()
        .with_context(|| format!("{addr:?} resolves to no address"))?;
    let socket = Socket::new(
        Domain::for_address(sock_addr),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.set_read_timeout(Some(io_timeout))?;
    socket.set_write_timeout(Some(io_timeout))?;
    socket
        .bind(&sock_addr.into())
        .with_context(|| format!("cannot listen on {sock_addr}"))?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// File descriptors the connection caps leave for everything else: the box, its
/// lock and cursors, connections to peers (pushes, confirmations, anti-entropy),
/// hooks and their pipes.
pub const FD_RESERVE: usize = 256;

/// Descriptors given to connections however low the limit (below this the node is
/// short of descriptors whatever the caps).
const MIN_FOR_CONNECTIONS: usize = 64;

/// Default for [`Limits::max_waiting`].
pub const MAX_WAITING: usize = 16_384;

/// A running server; [`Server::stop`] ends it.
pub struct Server {
    inner: tiny_http::Server,
    gate: Arc<Gate>,
}

/// Limits on connections, given to each server when it starts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Open connections at once; each has a thread, so this bounds the thread count.
    pub max_connections: usize,
    /// Silent new connections held at once (each costs a file descriptor, no thread).
    pub max_waiting: usize,
    /// Time to send a whole request head once its first byte is in.
    pub head_timeout: Duration,
    /// Time a new connection may stay silent (it waits without a thread meanwhile).
    pub idle_timeout: Duration,
}

impl Limits {
    /// Lowers the connection caps so that connections can never take every file
    /// descriptor under `fd_limit` (the soft `RLIMIT_NOFILE`): a talking connection
    /// holds three (tiny_http reads and writes through separate handles, and keeps a
    /// third to hand the connection back to the waiting room between requests), a
    /// waiting one holds one, and [`FD_RESERVE`] stay free for the box, peers and
    /// hooks. Running out once made accept() fail for good; now the caps close the
    /// excess instead.
    #[must_use]
    pub fn fit_to(mut self, fd_limit: u64) -> Limits {
        let limit = usize::try_from(fd_limit).unwrap_or(usize::MAX);
        let available = limit.saturating_sub(FD_RESERVE).max(MIN_FOR_CONNECTIONS);
        self.max_connections = self.max_connections.min(available / 4).max(1);
        self.max_waiting = self
            .max_waiting
            .min(available - 3 * self.max_connections)
            .max(1);
        self
    }

    /// The same limits in the terms of the tiny_http fork, which enforces them.
    fn for_tiny_http(self) -> tiny_http::Limits {
        tiny_http::Limits {
            max_connections: self.max_connections,
            max_waiting: self.max_waiting,
            head_deadline: self.head_timeout,
            idle_timeout: self.idle_timeout,
        }
    }
}

impl Server {
    /// Serves each request on its connection's thread (no hand-off to a pool of
    /// workers: one wake-up less per request), at most `workers` at once; the others
    /// wait for a turn. Connections are held to `limits`.
    pub fn start(
        listener: TcpListener,
        handler: Arc<dyn Handler>,
        workers: usize,
        limits: Limits,
    ) -> Result<Server> {
        let gate = Arc::new(Gate::new(workers.max(1)));
        let inside = Arc::clone(&gate);
        let body_grace = limits.head_timeout;
        let serve =
            move |req: tiny_http::Request| serve_one(req, handler.as_ref(), &inside, body_grace);
        let inner = tiny_http::Server::from_listener_serving(
            listener,
            limits.for_tiny_http(),
            Arc::new(serve),
        )
        .map_err(|e| anyhow::anyhow!("cannot start the HTTP server: {e}"))?;
        Ok(Server { inner, gate })
    }

    /// Stops serving: lets the requests being served finish and waits for them;
    /// requests that arrive meanwhile get 503.
    pub fn stop(self) {
        self.gate.close();
        drop(self.inner);
    }
}

/// Bounds how many requests are served at once (each may hold a 1 MiB body and
/// check signatures), and lets a stop wait for those being served.
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
    limit: usize,
}

struct GateState {
    serving: usize,
    /// Requests waiting for a turn (and a stop waiting for the last one): whether a
    /// turn given back needs to wake anyone.
    waiting: usize,
    closed: bool,
}

thread_local! {
    /// The gate whose turn the request on this thread holds, for [`without_turn`].
    static CURRENT_GATE: std::cell::RefCell<Option<Arc<Gate>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f`, a long wait with no work in it (a confirmation), with the current
/// request's turn given back, and takes a turn again after: waiting requests are
/// bounded by their own caps and never take the workers that serve everyone.
pub fn without_turn<T>(f: impl FnOnce() -> T) -> T {
    let Some(gate) = CURRENT_GATE.with(|g| g.borrow().clone()) else {
        return f();
    };
    gate.leave();
    let out = f();
    gate.come_back();
    out
}

/// A request's turn: given back when dropped.
struct Turn<'a>(&'a Gate);

impl Gate {
    fn new(limit: usize) -> Gate {
        Gate {
            state: Mutex::new(GateState {
                serving: 0,
                waiting: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            limit,
        }
    }

    /// Waits for a turn; `None` once the server is stopping.
    fn enter(&self) -> Option<Turn<'_>> {
        let mut state = self.state.lock().expect("gate lock");
        while state.serving >= self.limit && !state.closed {
            state.waiting += 1;
            state = self.changed.wait(state).expect("gate lock");
            state.waiting -= 1;
        }
        if state.closed {
            return None;
        }
        state.serving += 1;
        Some(Turn(self))
    }

    /// Gives a turn back for a while (see [`without_turn`]).
    fn leave(&self) {
        let mut state = self.state.lock().expect("gate lock");
        state.serving -= 1;
        if state.waiting > 0 {
            self.changed.notify_all();
        }
    }

    /// Takes back a turn given up by [`Gate::leave`]. Once stopping, takes it at once
    /// (the request only has its answer left to make), so the `Turn` still held is
    /// given back exactly once.
    fn come_back(&self) {
        let mut state = self.state.lock().expect("gate lock");
        while state.serving >= self.limit && !state.closed {
            state.waiting += 1;
            state = self.changed.wait(state).expect("gate lock");
            state.waiting -= 1;
        }
        state.serving += 1;
    }

    /// Refuses new turns and waits until every turn given is back.
    fn close(&self) {
        let mut state = self.state.lock().expect("gate lock");
        state.closed = true;
        self.changed.notify_all();
        while state.serving > 0 {
            state.waiting += 1;
            state = self.changed.wait(state).expect("gate lock");
            state.waiting -= 1;
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state.lock().expect("gate lock");
        state.serving -= 1;
        if state.waiting > 0 {
            // Requests waiting for a turn, or a stop waiting for the last one.
            self.0.changed.notify_all();
        }
    }
}

/// Reads and checks the whole request, then takes a turn only to run the handler:
/// the body is read and the answer written on the connection's own thread without
/// a turn, so a client that sends or reads slowly holds its connection, never one
/// of the few workers.
/// Returns whether the connection may carry another request: not after an answer
/// that says `Connection: close` (a refusal, after which where the next request
/// starts is not known; a smuggled request once hid there).
fn serve_one(
    mut req: tiny_http::Request,
    handler: &dyn Handler,
    gate: &Arc<Gate>,
    body_grace: Duration,
) -> bool {
    let response = match admit(&mut req, body_grace) {
        Ok(parsed) => match handler.screen(&parsed) {
            Some(answer) => answer,
            None => match gate.enter() {
                Some(_turn) => {
                    CURRENT_GATE.with(|g| *g.borrow_mut() = Some(Arc::clone(gate)));
                    let answer = handler.handle(&parsed);
                    CURRENT_GATE.with(|g| *g.borrow_mut() = None);
                    answer
                }
                None => Response::text(503, "the node is stopping")
                    .with("Retry-After", "1")
                    .with("Connection", "close"),
            },
        },
        Err(refusal) => refusal.with("Connection", "close"),
    };
    let closing = response
        .headers
        .iter()
        .any(|(name, value)| name.eq_ignore_ascii_case("connection") && value == "close");
    respond(req, response);
    !closing
}

fn respond(req: tiny_http::Request, response: Response) {
    let mut out = tiny_http::Response::from_data(response.body).with_status_code(response.status);
    for (name, value) in response.headers {
        if let Ok(h) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            out.add_header(h);
        }
    }
    // The client may have gone; nothing to do about it.
    let _ = req.respond(out);
}

/// The checks every request passes before a route sees it: the target's size, the
/// method, and the body (none on GET; on POST a declared length within the cap).
fn admit(req: &mut tiny_http::Request, body_grace: Duration) -> Result<Request, Response> {
    let admitted = check_request(req, body_grace);
    if let Err(refusal) = &admitted {
        let why = match refusal.status {
            413 | 414 => crate::metrics::Refusal::Size,
            _ => crate::metrics::Refusal::Rule,
        };
        crate::metrics::METRICS.refused(why);
    }
    admitted
}

/// [`admit`]'s checks, in order.
fn check_request(req: &mut tiny_http::Request, body_grace: Duration) -> Result<Request, Response> {
    let url = req.url().to_string();
    if url.len() > MAX_URL {
        return Err(Response::text(
            414,
            format!(
                "request target is {} bytes; the limit is {MAX_URL}",
                url.len()
            ),
        ));
    }
    let head = *req.method() == tiny_http::Method::Head;
    let post = match req.method() {
        tiny_http::Method::Get | tiny_http::Method::Head => false,
        tiny_http::Method::Post => true,
        _ => {
            return Err(Response::text(405, "only GET and POST are served")
                .with("Allow", "GET, HEAD, POST"));
        }
    };
    let declared = req.body_length();
    let body = if post {
        let Some(len) = declared else {
            return Err(Response::text(411, "a POST needs a Content-Length"));
        };
        if len > MAX_BODY {
            return Err(Response::text(
                413,
                format!("request body is {len} bytes; the limit is {MAX_BODY}"),
            ));
        }
        read_body(req.as_reader(), len, body_deadline(len, body_grace))?
    } else {
        if declared.unwrap_or(0) > 0 {
            return Err(Response::text(
                413,
                "a GET carries no body: put parameters in the URL",
            ));
        }
        Vec::new()
    };
    let (path, raw_query) = url.split_once('?').unwrap_or((&url, ""));
    let query = query::parse(raw_query).map_err(|e| Response::text(400, e.to_string()))?;
    let headers = req
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_ascii_lowercase(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    Ok(Request {
        post,
        head,
        path: path.to_string(),
        query,
        headers,
        body,
    })
}

/// Bytes a second a body must arrive at, on average, after a grace period of the
/// head deadline: a sender on any working link is far faster, and a trickler is cut
/// off instead of holding its connection for hours.
const MIN_BODY_RATE: u64 = 16 * 1024;

/// When a body of `len` bytes, starting now, must be in: `grace` (the head deadline)
/// plus its transfer at [`MIN_BODY_RATE`].
fn body_deadline(len: usize, grace: Duration) -> Instant {
    let transfer_ms = (len as u64).saturating_mul(1000) / MIN_BODY_RATE;
    Instant::now() + grace.saturating_add(Duration::from_millis(transfer_ms))
}

/// Reads exactly `len` bytes, checking `deadline` after every read (each read waits
/// at most the socket's read timeout, so a body is cut off at most that late).
fn read_body(mut from: impl Read, len: usize, deadline: Instant) -> Result<Vec<u8>, Response> {
    let mut body = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        if Instant::now() > deadline {
            return Err(Response::text(
                408,
                format!("the request body came too slowly: {filled} of {len} bytes in time"),
            ));
        }
        match from.read(&mut body[filled..]) {
            Ok(0) => {
                return Err(Response::text(
                    400,
                    "request body is shorter than its Content-Length",
                ));
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Response::text(
                    400,
                    format!("cannot read the request body: {e}"),
                ));
            }
        }
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use std::net::TcpStream;
    use std::time::Duration;

    fn limits(max_connections: usize) -> super::Limits {
        super::Limits {
            max_connections,
            max_waiting: super::MAX_WAITING,
            head_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
        }
    }

    proptest::proptest! {
        /// Random heads, and random edits of a valid one, never panic the parser;
        /// whatever it accepts has at most one body length, from digits only.
        #[test]
        fn request_head_parser_never_panics(
            raw in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            cut in 0usize..200,
            junk in "[ -~\r\n]{0,40}",
        ) {
            let _ = tiny_http::parse_request_head(&raw);
            let valid = b"POST /send HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n";
            let mut edited = valid[..cut.min(valid.len())].to_vec();
            edited.extend_from_slice(junk.as_bytes());
            edited.extend_from_slice(&valid[cut.min(valid.len())..]);
            if let Ok(head) = tiny_http::parse_request_head(&edited) {
                let lengths: Vec<_> = head
                    .headers
                    .iter()
                    .filter(|h| h.field.equiv("Content-Length"))
                    .collect();
                proptest::prop_assert!(lengths.len() <= 1);
                if let Some(h) = lengths.first() {
                    proptest::prop_assert!(h.value.as_str().bytes().all(|b| b.is_ascii_digit()));
                }
                proptest::prop_assert!(!head.headers.iter().any(|h| h.field.equiv("Transfer-Encoding")));
            }
        }
    }

    #[test]
    fn framing_refusals() {
        let head = |extra: &str| {
            tiny_http::parse_request_head(format!("POST / HTTP/1.1\r\n{extra}\r\n").as_bytes())
        };
        assert_eq!(
            head("Content-Length: 5\r\n").unwrap().content_length,
            Some(5)
        );
        assert!(head("Content-Length: +5\r\n").is_err());
        assert!(head("Content-Length: 5\r\nContent-Length: 5\r\n").is_err());
        assert!(head("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n").is_err());
        assert!(head("Transfer-Encoding: chunked\r\n").is_err());
        assert!(head("Content-Length: 99999999999999999999999\r\n").is_err());
        assert_eq!(head("").unwrap().content_length, None);
    }

    /// Three descriptors a talking connection, one a waiting one, and the reserve: the
    /// caps never add up to more than the limit, however low it is.
    #[test]
    fn connection_caps_fit_under_the_open_files_limit() {
        for fd_limit in [0u64, 64, 256, 1024, 4096, 20_000, 1 << 20] {
            let fitted = limits(65_536).fit_to(fd_limit);
            let used = 3 * fitted.max_connections + fitted.max_waiting + super::FD_RESERVE;
            let limit = usize::try_from(fd_limit).unwrap();
            assert!(
                limit < super::FD_RESERVE + 64 || used <= limit,
                "{fd_limit}: {used}"
            );
            assert!(fitted.max_connections >= 1 && fitted.max_waiting >= 1);
        }
        let roomy = limits(4096).fit_to(1 << 20);
        assert_eq!(
            (roomy.max_connections, roomy.max_waiting),
            (4096, super::MAX_WAITING)
        );
    }

    /// Linux copies TCP_NODELAY and the timeouts from the listening socket to each
    /// accepted one; without Nagle's delay a small answer never waits ~40 ms for the
    /// client's delayed ACK. The benchmarks rely on it, so it is checked, not assumed.
    #[test]
    fn accepted_connections_inherit_nodelay_and_timeouts() {
        let listener = super::bind("127.0.0.1:0", Duration::from_secs(7)).unwrap();
        let addr = listener.local_addr().unwrap();
        let _client = TcpStream::connect(addr).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(accepted.nodelay().unwrap());
        assert_eq!(
            accepted.read_timeout().unwrap(),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            accepted.write_timeout().unwrap(),
            Some(Duration::from_secs(7))
        );
    }
}
