//! dshare patch: the waiting room. A new connection costs no thread until its first
//! bytes arrive: one thread watches every idle connection with epoll (mio), closes
//! those silent for too long, and hands each readable one to `on_ready`, which gives
//! it a thread. So thousands of idle connections (slowloris) cost file descriptors,
//! not threads, and never delay a client that talks.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token, Waker};

/// The token of the room's waker; connections count up from 0 and never reach it.
const WAKE: Token = Token(usize::MAX);

/// Keyed by arrival number, so the first entry is the one that has waited longest.
type Waiting = Arc<Mutex<BTreeMap<usize, (mio::net::TcpStream, Instant)>>>;

pub struct WaitingRoom {
    registry: Registry,
    waiting: Waiting,
    /// Most connections waiting at once (at least one); when the room is full, the
    /// one that has waited longest is closed to make room for the newcomer.
    capacity: usize,
    next: AtomicUsize,
    /// Rouses the watcher: when the room stops being empty (it then waits for no
    /// deadline) and when the room is dropped (the server closes).
    waker: Waker,
}

impl Drop for WaitingRoom {
    fn drop(&mut self) {
        let _ = self.waker.wake();
    }
}

/// The map survives a panic of the thread that held its lock: every entry in it is
/// still a whole connection, so going on is safe and stopping would stop the node.
fn lock(waiting: &Waiting) -> MutexGuard<'_, BTreeMap<usize, (mio::net::TcpStream, Instant)>> {
    waiting
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl WaitingRoom {
    /// Starts the watching thread. Connections silent for `idle` are closed; at most
    /// `capacity` wait at once.
    pub fn start<F>(
        idle: Duration,
        capacity: usize,
        close: Arc<AtomicBool>,
        on_ready: F,
    ) -> std::io::Result<Arc<WaitingRoom>>
    where
        F: Fn(TcpStream) + Send + 'static,
    {
        let mut poll = Poll::new()?;
        let room = Arc::new(WaitingRoom {
            registry: poll.registry().try_clone()?,
            waiting: Arc::new(Mutex::new(BTreeMap::new())),
            capacity: capacity.max(1),
            next: AtomicUsize::new(0),
            waker: Waker::new(poll.registry(), WAKE)?,
        });
        let waiting = Arc::clone(&room.waiting);
        thread::Builder::new()
            .name("waiting-room".into())
            .spawn(move || {
                let mut events = Events::with_capacity(1024);
                // Supervised: a panic in one round (none is known) is logged and the
                // next round goes on with the same connections; without this thread
                // no waiting connection would ever be served.
                while !close.load(Relaxed) {
                    let round = catch_unwind(AssertUnwindSafe(|| {
                        watch_once(&mut poll, &mut events, &waiting, &on_ready, idle);
                        sweep(poll.registry(), &waiting, idle);
                    }));
                    if round.is_err() {
                        log::error!("waiting room: a round panicked; going on");
                        thread::sleep(Duration::from_millis(50));
                    }
                }
            })?;
        Ok(room)
    }

    /// Takes a newly accepted connection into the room; when the room is full, the
    /// connection that has waited longest is closed to make room.
    pub fn admit(&self, stream: TcpStream) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let mut waiting = lock(&self.waiting);
        // Evicting the oldest rather than refusing the newest: an attacker who fills
        // the room with silent connections then only delays honest clients by the
        // time it takes to refill it, instead of shutting them out until the idle
        // timeout frees room.
        while waiting.len() >= self.capacity {
            match waiting.pop_first() {
                Some((_, (mut oldest, _))) => {
                    let _ = self.registry.deregister(&mut oldest);
                }
                None => break,
            }
        }
        let key = self.next.fetch_add(1, Relaxed);
        let mut stream = mio::net::TcpStream::from_std(stream);
        // Registered while the lock is held: the watcher cannot see the event before
        // the entry exists (epoll here is edge-triggered; a lost event is a lost client).
        if self
            .registry
            .register(&mut stream, Token(key), Interest::READABLE)
            .is_ok()
        {
            if waiting.is_empty() {
                // The watcher waits for no deadline while the room is empty.
                let _ = self.waker.wake();
            }
            waiting.insert(key, (stream, Instant::now()));
        }
    }
}

/// Waits for readable connections, at most until the one that has waited longest
/// is due to be closed, and hands each to `on_ready`. An empty room waits for its
/// waker alone: an idle server does not wake on a clock.
fn watch_once<F: Fn(TcpStream)>(
    poll: &mut Poll,
    events: &mut Events,
    waiting: &Waiting,
    on_ready: &F,
    idle: Duration,
) {
    let timeout = lock(waiting).first_key_value().map(|(_, (_, since))| {
        // A millisecond past the deadline, so that the sweep after it finds it due.
        (*since + idle + Duration::from_millis(1)).saturating_duration_since(Instant::now())
    });
    if poll.poll(events, timeout).is_err() {
        return;
    }
    for event in events.iter() {
        let entry = lock(waiting).remove(&event.token().0);
        if let Some((mut stream, _)) = entry {
            let _ = poll.registry().deregister(&mut stream);
            let stream: TcpStream = stream.into();
            // A client that closed a connection it kept for reuse needs no thread
            // to be seen gone.
            if matches!(stream.peek(&mut [0u8]), Ok(0)) {
                continue;
            }
            if stream.set_nonblocking(false).is_ok() {
                on_ready(stream);
            }
        }
    }
}

/// Closes the connections silent for longer than `idle`.
fn sweep(registry: &Registry, waiting: &Waiting, idle: Duration) {
    let mut waiting = lock(waiting);
    // In arrival order, so the expired ones come first.
    let expired: Vec<usize> = waiting
        .iter()
        .take_while(|(_, (_, since))| since.elapsed() > idle)
        .map(|(k, _)| *k)
        .collect();
    for k in expired {
        if let Some((mut stream, _)) = waiting.remove(&k) {
            let _ = registry.deregister(&mut stream);
        }
    }
}
