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
// dshare patch: the task pool and a few helpers are no longer used.
#![allow(dead_code, unused_imports)]

#[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
use zeroize::Zeroizing;

use std::error::Error;
use std::io::Error as IoError;
use std::io::ErrorKind as IoErrorKind;
use std::io::Result as IoResult;
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc;
use std::sync::Arc;
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
pub use test::TestRequest;

mod client;
mod common;
mod connection;
mod request;
mod response;
mod ssl;
mod test;
mod util;
mod waiting_room;
pub use waiting_room::MAX_WAITING;

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

// this trait is to make sure that Server implements Share and Send
#[doc(hidden)]
trait MustBeShareDummy: Sync + Send {}
#[doc(hidden)]
impl MustBeShareDummy for Server {}

pub struct IncomingRequests<'a> {
    server: &'a Server,
}

/// Represents the parameters required to create a server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The addresses to try to listen to.
    pub addr: ConfigListenAddr,

    /// If `Some`, then the server will use SSL to encode the communications.
    pub ssl: Option<SslConfig>,
}

/// Configuration of the server for SSL.
#[derive(Debug, Clone)]
pub struct SslConfig {
    /// Contains the public certificate to send to clients.
    pub certificate: Vec<u8>,
    /// Contains the ultra-secret private key used to decode communications.
    pub private_key: Vec<u8>,
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
            ssl: None,
        })
    }

    /// Shortcut for an HTTPS server on a specific address.
    #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
    #[inline]
    pub fn https<A>(
        addr: A,
        config: SslConfig,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>>
    where
        A: ToSocketAddrs,
    {
        Server::new(ServerConfig {
            addr: ConfigListenAddr::from_socket_addrs(addr)?,
            ssl: Some(config),
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
            ssl: None,
        })
    }

    /// Builds a new server that listens on the specified address.
    pub fn new(config: ServerConfig) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        let listener = config.addr.bind()?;
        Self::from_listener(listener, config.ssl)
    }

    /// Builds a new server using the specified TCP listener.
    ///
    /// This is useful if you've constructed TcpListener using some less usual method
    /// such as from systemd. For other cases, you probably want the `new()` function.
    pub fn from_listener<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Self::from_listener_to(listener, ssl_config, None)
    }

    /// dshare patch: like `from_listener` without SSL, but each request is served on
    /// its connection's own thread by calling `serve`, instead of being queued for a
    /// thread that calls `recv()`: one hand-off between threads less per request.
    /// `recv()` then never returns a request. `serve` returns whether the connection
    /// may carry another request.
    pub fn from_listener_serving<L: Into<Listener>>(
        listener: L,
        serve: Arc<dyn Fn(Request) -> bool + Send + Sync>,
    ) -> Result<Server, Box<dyn Error + Send + Sync + 'static>> {
        Self::from_listener_to(listener, None, Some(serve))
    }

    fn from_listener_to<L: Into<Listener>>(
        listener: L,
        ssl_config: Option<SslConfig>,
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

        // building the SSL capabilities
        #[cfg(all(feature = "ssl-openssl", feature = "ssl-rustls"))]
        compile_error!(
            "Features 'ssl-openssl' and 'ssl-rustls' must not be enabled at the same time"
        );
        #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
        type SslContext = ();
        #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
        type SslContext = crate::ssl::SslContextImpl;
        let ssl: Option<SslContext> = {
            match ssl_config {
                #[cfg(any(feature = "ssl-openssl", feature = "ssl-rustls"))]
                Some(config) => Some(SslContext::from_pem(
                    config.certificate,
                    Zeroizing::new(config.private_key),
                )?),
                #[cfg(not(any(feature = "ssl-openssl", feature = "ssl-rustls")))]
                Some(_) => return Err(
                    "Building a server with SSL requires enabling the `ssl` feature in tiny-http"
                        .into(),
                ),
                None => None,
            }
        };

        // creating a task where server.accept() is continuously called
        // and ClientConnection objects are pushed in the messages queue
        let messages = MessagesQueue::with_capacity(8);

        let inside_close_trigger = close_trigger.clone();
        let inside_messages = messages.clone();
        let sink = match serve {
            Some(serve) => Sink::Serve(serve),
            None => Sink::Queue(messages.clone()),
        };
        let accept_thread = thread::Builder::new()
            .name("http-accept".into())
            .spawn(move || {
                let open_connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                // dshare patch: plain TCP connections wait in the waiting room, without a
                // thread, until their first bytes arrive.
                let room = if ssl.is_none() {
                    let (sink, open) = (sink.clone(), Arc::clone(&open_connections));
                    let idle = std::time::Duration::from_millis(IDLE_MS.load(Relaxed));
                    waiting_room::WaitingRoom::start(
                        idle,
                        inside_close_trigger.clone(),
                        move |tcp| {
                            // dshare patch: out of file descriptors, the connection is closed
                            // (stock 0.12 panicked here).
                            if let Ok((read, write)) =
                                util::RefinedTcpStream::new(Connection::Tcp(tcp))
                            {
                                run_connection(
                                    ClientConnection::new(write, read),
                                    sink.clone(),
                                    &open,
                                );
                            }
                        },
                    )
                    .ok()
                } else {
                    None
                };

                log::debug!("Running accept thread");
                // dshare patch: supervised. A panic in the loop (none is known) is logged
                // and the loop starts again; without this thread the node never accepts
                // a connection again.
                while !inside_close_trigger.load(Relaxed) {
                    let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        while !inside_close_trigger.load(Relaxed) {
                            let new_client = match server.accept() {
                                Ok((sock, _)) => {
                                    let sock = match (sock, &room) {
                                        (Connection::Tcp(tcp), Some(room)) => {
                                            room.admit(tcp);
                                            continue;
                                        }
                                        (sock, _) => sock,
                                    };
                                    use util::RefinedTcpStream;
                                    let halves = match ssl {
                                        None => RefinedTcpStream::new(sock),
                                        #[cfg(any(
                                            feature = "ssl-openssl",
                                            feature = "ssl-rustls"
                                        ))]
                                        Some(ref ssl) => {
                                            // trying to apply SSL over the connection
                                            // if an error occurs, we just close the socket and resume listening
                                            let sock = match ssl.accept(sock) {
                                                Ok(s) => s,
                                                Err(_) => continue,
                                            };

                                            RefinedTcpStream::new(sock)
                                        }
                                        #[cfg(not(any(
                                            feature = "ssl-openssl",
                                            feature = "ssl-rustls"
                                        )))]
                                        Some(ref _ssl) => unreachable!(),
                                    };
                                    // dshare patch: no second handle (no file descriptor left):
                                    // the connection is closed, the loop goes on.
                                    let Ok((read_closable, write_closable)) = halves else {
                                        continue;
                                    };

                                    Ok(ClientConnection::new(write_closable, read_closable))
                                }
                                Err(e) => Err(e),
                            };

                            match new_client {
                                Ok(client) => {
                                    run_connection(client, sink.clone(), &open_connections)
                                }

                                // dshare patch: a listener with SO_RCVTIMEO (which accepted
                                // sockets inherit, giving each connection a read timeout) times
                                // accept() out too, and running out of file descriptors is
                                // passing: neither may end the accept loop.
                                Err(ref e) if is_transient(e) => {
                                    if e.raw_os_error() == Some(24) || e.raw_os_error() == Some(23)
                                    {
                                        thread::sleep(std::time::Duration::from_millis(50));
                                    }
                                    continue;
                                }
                                Err(e) => {
                                    log::error!("Error accepting new client: {}", e);
                                    inside_messages.push(e.into());
                                    break;
                                }
                            }
                        }
                    }));
                    if round.is_ok() {
                        break;
                    }
                    log::error!("accept loop panicked; starting it again");
                    thread::sleep(std::time::Duration::from_millis(50));
                }
                log::debug!("Terminating accept thread");
            });
        accept_thread?;

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

    /// Returns the number of clients currently connected to the server.
    pub fn num_connections(&self) -> usize {
        unimplemented!()
        //self.requests_receiver.lock().len()
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

/// dshare patch: most connections served at once; more are closed on arrival. Each
/// open connection has one thread, so this also bounds the thread count.
pub static MAX_CONNECTIONS: std::sync::atomic::AtomicUsize =
    std::sync::atomic::AtomicUsize::new(1024);

/// dshare patch: milliseconds a client has to send a whole request head (and a kept-
/// alive connection to start its next request) before the connection is closed.
pub static HEAD_DEADLINE_MS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(10_000);

/// dshare patch: counts an open connection until dropped.
struct ConnectionSlot(Arc<std::sync::atomic::AtomicUsize>);

impl ConnectionSlot {
    fn take(count: &Arc<std::sync::atomic::AtomicUsize>) -> ConnectionSlot {
        count.fetch_add(1, Relaxed);
        ConnectionSlot(Arc::clone(count))
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// dshare patch: accept() errors after which the loop goes on.
fn is_transient(e: &IoError) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        WouldBlock | TimedOut | Interrupted | ConnectionAborted | ConnectionReset
    ) || matches!(e.raw_os_error(), Some(23) | Some(24) | Some(105) | Some(12))
}

/// dshare patch: milliseconds a connection may wait in the waiting room without
/// sending anything before it is closed.
pub static IDLE_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(10_000);

/// dshare patch: where a connection's requests go: queued for `recv()`, or served on
/// the connection's own thread.
#[derive(Clone)]
enum Sink {
    Queue(Arc<MessagesQueue<Message>>),
    Serve(Arc<dyn Fn(Request) -> bool + Send + Sync>),
}

/// dshare patch: serves one connection on a thread of its own, up to
/// `MAX_CONNECTIONS` at once; past the cap the connection is closed at once.
fn run_connection(
    client: ClientConnection,
    sink: Sink,
    open_connections: &Arc<std::sync::atomic::AtomicUsize>,
) {
    if open_connections.load(Relaxed) >= MAX_CONNECTIONS.load(Relaxed) {
        return;
    }
    let open = ConnectionSlot::take(open_connections);
    // A thread that cannot be started leaves the connection to be closed.
    let _ = thread::Builder::new()
        .name("http-conn".into())
        .spawn(move || {
            let _open = open;
            let messages = match sink {
                Sink::Queue(messages) => messages,
                Sink::Serve(serve) => {
                    // The request is answered (and dropped) before the next one is read.
                    // dshare patch: `serve` says whether the connection goes on; after a
                    // refusal it does not, since where the next request starts is unknown.
                    for rq in client {
                        if !serve(rq) {
                            break;
                        }
                    }
                    return;
                }
            };
            // Synchronization is needed for HTTPS requests to avoid a deadlock
            if client.secure() {
                let (sender, receiver) = mpsc::channel();
                for rq in client {
                    messages.push(rq.with_notify_sender(sender.clone()).into());
                    receiver.recv().unwrap();
                }
            } else {
                for rq in client {
                    messages.push(rq.into());
                }
            }
        });
}
