//! dshare patch: the waiting room. A new connection costs no thread until its first
//! bytes arrive: one thread watches every idle connection with epoll (mio), closes
//! those silent for too long, and hands each readable one to `on_ready`, which gives
//! it a thread. So thousands of idle connections (slowloris) cost file descriptors,
//! not threads, and never delay a client that talks.

use std::collections::HashMap;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Registry, Token};

/// Most connections waiting at once; more are closed on arrival.
pub static MAX_WAITING: AtomicUsize = AtomicUsize::new(16_384);

type Waiting = Arc<Mutex<HashMap<usize, (mio::net::TcpStream, Instant)>>>;

pub struct WaitingRoom {
    registry: Registry,
    waiting: Waiting,
    next: AtomicUsize,
}

impl WaitingRoom {
    /// Starts the watching thread. Connections silent for `idle` are closed.
    pub fn start<F>(idle: Duration, close: Arc<AtomicBool>, on_ready: F) -> std::io::Result<Arc<WaitingRoom>>
    where
        F: Fn(TcpStream) + Send + 'static,
    {
        let mut poll = Poll::new()?;
        let room = Arc::new(WaitingRoom {
            registry: poll.registry().try_clone()?,
            waiting: Arc::new(Mutex::new(HashMap::new())),
            next: AtomicUsize::new(0),
        });
        let waiting = Arc::clone(&room.waiting);
        thread::Builder::new()
            .name("waiting-room".into())
            .spawn(move || {
                let mut events = Events::with_capacity(1024);
                let mut last_sweep = Instant::now();
                while !close.load(Relaxed) {
                    if poll.poll(&mut events, Some(Duration::from_millis(200))).is_err() {
                        continue;
                    }
                    for event in events.iter() {
                        let entry = waiting.lock().unwrap().remove(&event.token().0);
                        if let Some((mut stream, _)) = entry {
                            let _ = poll.registry().deregister(&mut stream);
                            let stream: TcpStream = stream.into();
                            if stream.set_nonblocking(false).is_ok() {
                                on_ready(stream);
                            }
                        }
                    }
                    if last_sweep.elapsed() > Duration::from_millis(500) {
                        last_sweep = Instant::now();
                        let mut waiting = waiting.lock().unwrap();
                        let expired: Vec<usize> = waiting
                            .iter()
                            .filter(|(_, (_, since))| since.elapsed() > idle)
                            .map(|(k, _)| *k)
                            .collect();
                        for k in expired {
                            if let Some((mut stream, _)) = waiting.remove(&k) {
                                let _ = poll.registry().deregister(&mut stream);
                            }
                        }
                    }
                }
            })?;
        Ok(room)
    }

    /// Takes a newly accepted connection into the room (or closes it when full).
    pub fn admit(&self, stream: TcpStream) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let mut waiting = self.waiting.lock().unwrap();
        if waiting.len() >= MAX_WAITING.load(Relaxed) {
            return;
        }
        let key = self.next.fetch_add(1, Relaxed);
        let stream = mio::net::TcpStream::from_std(stream);
        waiting.insert(key, (stream, Instant::now()));
        // Registered while the lock is held: the watcher cannot see the event before
        // the entry exists (epoll here is edge-triggered; a lost event is a lost client).
        let (stream, _) = waiting.get_mut(&key).expect("just inserted");
        if self
            .registry
            .register(stream, Token(key), Interest::READABLE)
            .is_err()
        {
            waiting.remove(&key);
        }
    }
}
