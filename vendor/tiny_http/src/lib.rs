//! # Simple usage
//!
//! ## Creating the server
//!
//! The easiest way to create a server is to call `Server::http()`.
//!
//! The `http()` function returns an `IoResult<Server>` which will return an error
//! in the case where the server creation fails (for example if the listening port is already
//! occupied).
//!
//! ```no_run
//! let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! ```
//!
//! A newly-created `Server` will immediately start listening for incoming connections and HTTP
//! requests.
//!
//! ## Receiving requests
//!
//! Calling `server.recv()` will block until the next request is available.
//! This function returns an `IoResult<Request>`, so you need to handle the possible errors.
//!
//! ```no_run
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//!
//! loop {
//!     // blocks until the next request is received
//!     let request = match server.recv() {
//!         Ok(rq) => rq,
//!         Err(e) => { println!("error: {}", e); break }
//!     };
//!
//!     // do something with the request
//!     // ...
//! }
//! ```
//!
//! In a real-case scenario, you will probably want to spawn multiple worker tasks and call
//! `server.recv()` on all of them. Like this:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use std::thread;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! let server = Arc::new(server);
//! let mut guards = Vec::with_capacity(4);
//!
//! for _ in (0 .. 4) {
//!     let server = server.clone();
//!
//!     let guard = thread::spawn(move || {
//!         loop {
//!             let rq = server.recv().unwrap();
//!
//!             // ...
//!         }
//!     });
//!
//!     guards.push(guard);
//! }
//! ```
//!
//! If you don't want to block, you can call `server.try_recv()` instead.
//!
//! ## Handling requests
//!
//! The `Request` object returned by `server.recv()` contains informations about the client's request.
//! The most useful methods are probably `request.method()` and `request.url()` which return
//! the requested method (`GET`, `POST`, etc.) and url.
//!
//! To handle a request, you need to create a `Response` object. See the docs of this object for
//! more infos. Here is an example of creating a `Response` from a file:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! ```
//!
//! All that remains to do is call `request.respond()`:
//!
//! ```no_run
//! # use std::fs::File;
//! # use std::path::Path;
//! # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
//! # let request = server.recv().unwrap();
//! # let response = tiny_http::Response::from_file(File::open(&Path::new("image.png")).unwrap());
//! let _ = request.respond(response);
//! ```
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![allow(clippy::match_like_matches_macro)]

use std::error::Error;
use std::io::Error as IoError;
use std::io::ErrorKind;
use std::io::Result as IoResult;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::{Arc, OnceLock, Weak};
use std::thread;
use std::time::Duration;

use client::ClientConnection;
use connection::Connection;
use util::MessagesQueue;

pub use common::{HTTPVersion, Header, HeaderField, Method, StatusCode};
// dshare patch: the request head checks, for fuzzing and property tests.
pub use client::{check_framing, parse_request_head, FramingError, RequestHead};
pub use connection::{ConfigListenAddr, ListenAddr, Listener};
pub use request::{ReadWrite, Request};
pub use response::{Response, ResponseBox};

// Limits is defined below, beside the accept loop that enforces it.

mod client;
mod common;
mod connection;
mod request;
mod response;
mod util;
mod waiting_room;
mod workers;

/// The main class of this library.
///
/// Destroying this object will immediately close the listening socket and the reading
///  part of all the client's connections. Requests that have already been returned by
///  the `recv()` function will not close and the responses will be transferred to the client.
pub struct Server {
    // should be false as long as the server exists
    // when set to true, all the subtasks will close within a few hundreds ms
    close: Arc<AtomicBool>,

    // queue for messages received by child threads
    messages: Arc<MessagesQueue<Message>>,

    // result of TcpListener::local_addr()
    listening_addr: ListenAddr,
}

enum Message {
    Error(IoError),
    NewRequest(Request),
}

impl From<IoError> for Message {
    fn from(e: IoError) -> Message {
        Message::Error(e)
    }
}

impl From<Request> for Message {
    fn from(rq: Request) -> Message {
        Message::NewRequest(rq)
    }
}

// Workers share one `Server` between threads, so it must stay `Send` and `Sync`.
const _: fn() = || {
    fn shared_between_threads<T: Send + Sync>() {}
    shared_between_threads::<Server>();
};

pub struct IncomingRequests<'a> {
    server: &'a Server,
}

/// Represents the parameters required to create a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The addresses to try to listen to.
    pub addr: ConfigListenAddr,
}

impl Server {
    /// Shortcut for a simple server on a specific address.
    #[inline]
    pub fn http<A>(addr: A) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
        })
    }

    #[cfg(unix)]
    #[inline]
    /// Shortcut for a UNIX socket server at a specific path
    pub fn http_unix(
        path: &std::path::Path,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::unix_from_path(path),
        })
    }

    /// Builds a new server that listens on the specified address.
    pub fn new(config: ServerConfig) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = config.addr.bind()?;
        Self::from_listener(listener)
    }

    /// Builds a new server using the specified TCP listener.
    ///
    /// This is useful if you've constructed TcpListener using some less usual method
    /// such as from systemd. For other cases, you probably want the `new()` function.
    /// The server enforces the default [`Limits`].
    pub fn from_listener<L: Into<Listener>>(
        listener: L,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Self::from_listener_to(listener, Limits::default(), None)
    }

    /// dshare patch: like `from_listener`, but each request is served on
    /// its connection's own thread by calling `serve`, instead of being queued for a
    /// thread that calls `recv()`: one hand-off between threads less per request.
    /// `recv()` then never returns a request. `serve` returns whether the connection
    /// may carry another request. The server enforces `limits`.
    pub fn from_listener_serving<L: Into<Listener>>(
        listener: L,
        limits: Limits,
        serve: Arc<dyn Fn(Request) -> bool + Send + Sync>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Self::from_listener_to(listener, limits, Some(serve))
    }

    fn from_listener_to<L: Into<Listener>>(
        listener: L,
        limits: Limits,
        serve: Option<Arc<dyn Fn(Request) -> bool + Send + Sync>>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = listener.into();
        // building the "close" variable
        let close_trigger = Arc::new(AtomicBool::new(false));

        // building the TcpListener
        let (server, local_addr) = {
            let local_addr = listener.local_addr()?;
            log::debug!("Server listening on {}", local_addr);
            (listener, local_addr)
        };

        // dshare patch: requests go either to the queue `recv()` reads or to `serve`.
        let messages = MessagesQueue::with_capacity(8);
        let sink = match serve {
            Some(serve) => Sink::Serve(serve),
            None => Sink::Queue(messages.clone()),
        };
        let connections = Connections {
            sink,
            limits,
            open: Arc::new(AtomicUsize::new(0)),
            room: Arc::new(OnceLock::new()),
            workers: Arc::default(),
        };
        let (close, errors) = (close_trigger.clone(), messages.clone());
        thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || accept_supervised(&server, &connections, &close, &errors))?;

        // result
        Ok(Server {
            messages,
            close: close_trigger,
            listening_addr: local_addr,
        })
    }

    /// Returns an iterator for all the incoming requests.
    ///
    /// The iterator will return `None` if the server socket is shutdown.
    #[inline]
    pub fn incoming_requests(&self) -> IncomingRequests<'_> {
        IncomingRequests { server: self }
    }

    /// Returns the address the server is listening to.
    #[inline]
    pub fn server_addr(&self) -> ListenAddr {
        self.listening_addr.clone()
    }

    /// Blocks until an HTTP request has been submitted and returns it.
    pub fn recv(&self) -> IoResult<Request> {
        match self.messages.pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(rq),
            None => Err(IoError::other("thread unblocked")),
        }
    }

    /// Same as `recv()` but doesn't block longer than timeout
    pub fn recv_timeout(&self, timeout: Duration) -> IoResult<Option<Request>> {
        match self.messages.pop_timeout(timeout) {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Same as `recv()` but doesn't block.
    pub fn try_recv(&self) -> IoResult<Option<Request>> {
        match self.messages.try_pop() {
            Some(Message::Error(err)) => Err(err),
            Some(Message::NewRequest(rq)) => Ok(Some(rq)),
            None => Ok(None),
        }
    }

    /// Unblock thread stuck in recv() or incoming_requests().
    /// If there are several such threads, only one is unblocked.
    /// This method allows graceful shutdown of server.
    pub fn unblock(&self) {
        self.messages.unblock();
    }
}

impl Iterator for IncomingRequests<'_> {
    type Item = Request;
    fn next(&mut self) -> Option<Request> {
        self.server.recv().ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.close.store(true, Relaxed);
        // Connect briefly to ourselves to unblock the accept thread
        let maybe_stream = match &self.listening_addr {
            ListenAddr::IP(addr) => TcpStream::connect(addr).map(Connection::from),
            #[cfg(unix)]
            ListenAddr::Unix(addr) => {
                // TODO: use connect_addr when its stabilized.
                let path = addr.as_pathname().unwrap();
                std::os::unix::net::UnixStream::connect(path).map(Connection::from)
            }
        };
        if let Ok(stream) = maybe_stream {
            let _ = stream.shutdown(Shutdown::Both);
        }

        #[cfg(unix)]
        if let ListenAddr::Unix(addr) = &self.listening_addr {
            if let Some(path) = addr.as_pathname() {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

/// dshare patch: the limits a server enforces, given when it is built. (The fork first
/// kept them in process-wide statics, so every server in a process shared them and a
/// test could not run two servers with different limits.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most connections served at once; more are closed on arrival. Each open
    /// connection has one thread, so this also bounds the thread count.
    pub max_connections: usize,
    /// Most silent new connections held at once, each costing a file descriptor and no
    /// thread; when the room is full the one that has waited longest is closed.
    pub max_waiting: usize,
    /// Time a client has to send a whole request head once its first byte is in (and
    /// a kept-alive connection to send its next head) before the connection is closed.
    pub head_deadline: Duration,
    /// Time a new connection may wait without sending anything before it is closed.
    pub idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_connections: 1024,
            max_waiting: 16_384,
            head_deadline: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// dshare patch: counts an open connection until dropped.
struct ConnectionSlot(Arc<AtomicUsize>);

impl ConnectionSlot {
    /// A slot if fewer than `max` are taken. One compare-and-swap, so the accept
    /// thread and the waiting room, which both start connections, never pass `max`
    /// together.
    fn try_take(count: &Arc<AtomicUsize>, max: usize) -> Option<ConnectionSlot> {
        count
            .fetch_update(Relaxed, Relaxed, |open| (open < max).then_some(open + 1))
            .ok()
            .map(|_| ConnectionSlot(Arc::clone(count)))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// dshare patch: what the accept loop does after a failed `accept()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AfterAcceptError {
    /// The listener is fine: accept the next connection at once.
    Retry,
    /// The process or the system is out of file descriptors: pause a little so the
    /// loop does not spin while connections close and give some back.
    PauseThenRetry,
    /// The listener itself is broken: stop accepting.
    Stop,
}

/// dshare patch: stock 0.12 stopped accepting for good after any `accept()` error. A
/// listener with `SO_RCVTIMEO` (which accepted sockets inherit, giving each
/// connection a read timeout) times `accept()` out when no client comes; a client
/// that resets before it is accepted, a signal, or a passing shortage of descriptors,
/// buffers or memory is no reason to stop serving either.
fn after_accept_error(e: &IoError) -> AfterAcceptError {
    use std::io::ErrorKind::*;
    match e.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE) => return AfterAcceptError::PauseThenRetry,
        Some(libc::ENOBUFS | libc::ENOMEM) => return AfterAcceptError::Retry,
        _ => {}
    }
    match e.kind() {
        WouldBlock | TimedOut | Interrupted | ConnectionAborted | ConnectionReset | OutOfMemory => {
            AfterAcceptError::Retry
        }
        _ => AfterAcceptError::Stop,
    }
}

/// dshare patch: where a connection's requests go: queued for `recv()`, or served on
/// the connection's own thread.
#[derive(Clone)]
enum Sink {
    Queue(Arc<MessagesQueue<Message>>),
    Serve(Arc<dyn Fn(Request) -> bool + Send + Sync>),
}

/// dshare patch: what the accept thread, the waiting room and every connection of one
/// server share.
#[derive(Clone)]
struct Connections {
    sink: Sink,
    limits: Limits,
    open: Arc<AtomicUsize>,
    /// Where a connection between requests waits for its next one; set once the room
    /// has started (weak: the room's own thread holds these `Connections`).
    room: Arc<OnceLock<Weak<waiting_room::WaitingRoom>>>,
    workers: Arc<workers::Workers>,
}

impl Connections {
    /// Serves `connection` on a thread of its own (one of [`workers::Workers`]), up to
    /// `max_connections` at once; past the cap, or without a second file descriptor
    /// for it, the connection is closed at once (stock 0.12 panicked on the missing
    /// descriptor).
    fn serve(&self, connection: Connection) {
        let Some(slot) = ConnectionSlot::try_take(&self.open, self.limits.max_connections) else {
            return;
        };
        // A third handle on a TCP connection, to hand it back to the waiting room.
        let spare = match &connection {
            Connection::Tcp(tcp) => tcp.try_clone().ok(),
            #[cfg(unix)]
            Connection::Unix(_) => None,
        };
        let handed_back = Arc::new(AtomicBool::new(false));
        let Ok((read, write)) = util::RefinedTcpStream::new(connection, &handed_back) else {
            return;
        };
        let client = ClientConnection::new(write, read, self.limits.head_deadline);
        let sink = self.sink.clone();
        let room = self.room.get().cloned();
        self.workers.run(
            "http-conn",
            Box::new(move || {
                let _slot = slot;
                match sink {
                    Sink::Serve(serve) => {
                        let back = spare.zip(room.as_ref().and_then(Weak::upgrade));
                        serve_until_idle(client, &*serve, back, &handed_back);
                    }
                    Sink::Queue(messages) => {
                        for rq in client {
                            messages.push(rq.into());
                        }
                    }
                }
            }),
        );
    }
}

/// dshare patch: how long a connection between requests keeps its thread before it
/// goes back to the waiting room. A peer reuses a connection for a second at most, so
/// a burst of pushes or pages stays on one thread (going through the room and another
/// thread for each request cost more CPU than it saved at 200 nodes), and a
/// connection kept open longer, by a peer or a browser, holds no thread once silent.
const LINGER: Duration = Duration::from_secs(1);

/// dshare patch: serves the requests of one connection, each answered (and dropped)
/// before the next is read; `serve` says whether the connection goes on (after a
/// refusal it does not, since where the next request starts is unknown). A kept-alive
/// connection silent for [`LINGER`] with nothing left to read goes back to the
/// waiting room, through `back`, instead of holding its thread until the client
/// speaks again: an idle connection a peer keeps for reuse costs a file descriptor,
/// not a thread.
fn serve_until_idle(
    mut client: ClientConnection,
    serve: &(dyn Fn(Request) -> bool + Send + Sync),
    back: Option<(TcpStream, Arc<waiting_room::WaitingRoom>)>,
    handed_back: &AtomicBool,
) {
    // Read once: only the linger below changes it, and it puts it back.
    let timeout = back
        .as_ref()
        .and_then(|(spare, _)| spare.read_timeout().ok().flatten());
    while let Some(rq) = client.next() {
        if !serve(rq) {
            return;
        }
        let next = match &back {
            Some((spare, _)) if client.between_requests() => after_linger(spare, timeout),
            _ => Next::Bytes,
        };
        match next {
            Next::Bytes => {}
            Next::Closed => return,
            Next::Silent => {
                if let Some((spare, room)) = back {
                    handed_back.store(true, Relaxed);
                    drop(client);
                    room.admit(spare);
                }
                return;
            }
        }
    }
}

/// dshare patch: what came on a connection between requests.
enum Next {
    Bytes,
    Closed,
    Silent,
}

/// Waits up to [`LINGER`] for the next bytes on `stream`, leaving them unread, then
/// gives the socket back its read `timeout`.
fn after_linger(stream: &TcpStream, timeout: Option<Duration>) -> Next {
    if stream.set_read_timeout(Some(LINGER)).is_err() {
        return Next::Bytes;
    }
    let peeked = stream.peek(&mut [0u8]);
    // The timeout is the socket's, shared by the handles the request reader uses.
    if stream.set_read_timeout(timeout).is_err() {
        return Next::Closed;
    }
    match peeked {
        Ok(0) => Next::Closed,
        Ok(_) => Next::Bytes,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Next::Silent,
        Err(_) => Next::Closed,
    }
}

/// dshare patch: the accept thread, supervised. A panic in the loop (none is known) is
/// logged and the loop starts again; without this thread the server never accepts a
/// connection again.
fn accept_supervised(
    listener: &Listener,
    connections: &Connections,
    close: &Arc<AtomicBool>,
    errors: &MessagesQueue<Message>,
) {
    let room = start_waiting_room(connections, close);
    if let Some(room) = &room {
        let _ = connections.room.set(Arc::downgrade(room));
    }
    log::debug!("Running accept thread");
    while !close.load(Relaxed) {
        let round = catch_unwind(AssertUnwindSafe(|| {
            accept_loop(listener, connections, room.as_deref(), close, errors)
        }));
        if round.is_ok() {
            break;
        }
        log::error!("accept loop panicked; starting it again");
        thread::sleep(Duration::from_millis(50));
    }
    log::debug!("Terminating accept thread");
}

/// dshare patch: plain TCP connections wait in the waiting room, without a thread,
/// until their first bytes arrive. Without a room (epoll unavailable) each gets its
/// thread at once, as in stock 0.12.
fn start_waiting_room(
    connections: &Connections,
    close: &Arc<AtomicBool>,
) -> Option<Arc<waiting_room::WaitingRoom>> {
    let ready = connections.clone();
    let limits = connections.limits;
    waiting_room::WaitingRoom::start(
        limits.idle_timeout,
        limits.max_waiting,
        Arc::clone(close),
        move |tcp| ready.serve(Connection::Tcp(tcp)),
    )
    .ok()
}

fn accept_loop(
    listener: &Listener,
    connections: &Connections,
    room: Option<&waiting_room::WaitingRoom>,
    close: &AtomicBool,
    errors: &MessagesQueue<Message>,
) {
    while !close.load(Relaxed) {
        match (listener.accept(), room) {
            (Ok((Connection::Tcp(tcp), _)), Some(room)) => room.admit(tcp),
            (Ok((connection, _)), _) => connections.serve(connection),
            (Err(e), _) => match after_accept_error(&e) {
                AfterAcceptError::Retry => {}
                AfterAcceptError::PauseThenRetry => thread::sleep(Duration::from_millis(50)),
                AfterAcceptError::Stop => {
                    log::error!("Error accepting new client: {}", e);
                    errors.push(e.into());
                    return;
                }
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{after_accept_error, AfterAcceptError, ConnectionSlot};
    use std::io::{Error, ErrorKind};
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Arc;

    /// Patches 1 and 8: the errors `accept()` returns on a listener with a read
    /// timeout, or when descriptors run out, never end the accept loop.
    #[test]
    fn passing_accept_errors_do_not_stop_the_loop() {
        let os = Error::from_raw_os_error;
        assert_eq!(
            after_accept_error(&os(libc::EAGAIN)),
            AfterAcceptError::Retry
        );
        assert_eq!(
            after_accept_error(&os(libc::EINTR)),
            AfterAcceptError::Retry
        );
        assert_eq!(
            after_accept_error(&os(libc::ECONNABORTED)),
            AfterAcceptError::Retry
        );
        assert_eq!(
            after_accept_error(&os(libc::ENOBUFS)),
            AfterAcceptError::Retry
        );
        assert_eq!(
            after_accept_error(&os(libc::ENOMEM)),
            AfterAcceptError::Retry
        );
        assert_eq!(
            after_accept_error(&Error::from(ErrorKind::TimedOut)),
            AfterAcceptError::Retry
        );
        for out_of_descriptors in [libc::EMFILE, libc::ENFILE] {
            assert_eq!(
                after_accept_error(&os(out_of_descriptors)),
                AfterAcceptError::PauseThenRetry
            );
        }
        assert_eq!(after_accept_error(&os(libc::EBADF)), AfterAcceptError::Stop);
        assert_eq!(
            after_accept_error(&os(libc::EINVAL)),
            AfterAcceptError::Stop
        );
    }

    /// Patch 2: no more than `max` connection slots are ever taken at once, however
    /// many threads ask together; a slot given back can be taken again.
    #[test]
    fn connection_slots_stop_at_the_cap() {
        let open = Arc::new(AtomicUsize::new(0));
        let taken: Vec<_> = std::thread::scope(|s| {
            let askers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        (0..100)
                            .filter_map(|_| ConnectionSlot::try_take(&open, 50))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            askers.into_iter().flat_map(|a| a.join().unwrap()).collect()
        });
        assert_eq!(taken.len(), 50);
        assert_eq!(open.load(Relaxed), 50);
        assert!(ConnectionSlot::try_take(&open, 50).is_none());
        drop(taken);
        assert_eq!(open.load(Relaxed), 0);
        assert!(ConnectionSlot::try_take(&open, 50).is_some());
    }
}
