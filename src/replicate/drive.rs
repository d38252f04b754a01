//! The threads that carry out the core's actions: a fixed pool for the calls to
//! peers and one timer thread, whatever the number of peers. Each peer has a lane
//! (its push queue and whether an exchange is wanted); a lane is served by one pool
//! thread at a time, so a peer gets its pushes in order and never two exchanges at
//! once, and a peer with nothing to do costs no thread at all (it had one each).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::Duration;

use super::Replicator;
use super::outbox::{self, Inbox, Outbox, Pace};
use super::rounds::LastRound;

/// Threads calling peers. A push or an in-sync exchange takes a few milliseconds; a
/// dead peer up to the 3 s timeout, and the core sends few of those a round (its
/// retries are bounded), so a handful of threads keep every lane moving; a slow
/// catch-up from one peer holds one of them.
pub const POOL_THREADS: usize = 6;

/// What a lane's server does next.
pub struct Work {
    pub exchange: bool,
}

/// What only the thread serving a lane touches: what repair already did with the
/// peer (see [`super::rounds`]) and when a push to it last went through.
#[derive(Default)]
pub struct Progress {
    pub last_round: Option<LastRound>,
    pub pushed_ms: u64,
}

#[derive(Default)]
struct LaneState {
    /// Handed to the pool and not yet given back.
    scheduled: bool,
    /// Kicks since the server last looked: batches may be queued.
    kicks: usize,
    exchange: bool,
}

/// One peer's queue and wants.
pub struct Lane {
    pub url: String,
    pub outbox: Outbox,
    /// Taken from by the lane's server only; a lock because a queue's receiving end
    /// may not be shared between threads as it is.
    pub inbox: Mutex<Inbox>,
    state: Mutex<LaneState>,
    pub progress: Mutex<Progress>,
}

impl Lane {
    pub fn new(url: &str, pace: Arc<Pace>) -> Arc<Lane> {
        let (outbox, inbox) = outbox::outbox(pace);
        Arc::new(Lane {
            url: url.to_string(),
            outbox,
            inbox: Mutex::new(inbox),
            state: Mutex::default(),
            progress: Mutex::default(),
        })
    }

    /// Notes that there is work (`exchange`, or batches queued) and whether the lane
    /// must be handed to the pool for it (it was idle).
    fn kick(&self, exchange: bool) -> bool {
        let mut state = self.state.lock().expect("lane lock");
        state.kicks += 1;
        state.exchange |= exchange;
        !std::mem::replace(&mut state.scheduled, true)
    }

    /// The work to do now, or `None` (and the lane idle again) when there is none.
    /// Every batch offered before a kick that this sees is in the queue already, so
    /// a kick is never lost between the server's last look and its going idle.
    pub fn next_work(&self) -> Option<Work> {
        let mut state = self.state.lock().expect("lane lock");
        if state.kicks == 0 && !state.exchange {
            state.scheduled = false;
            return None;
        }
        state.kicks = 0;
        Some(Work {
            exchange: std::mem::take(&mut state.exchange),
        })
    }

    /// The lane is given back after a panic of its server: idle, nothing wanted.
    pub fn reset(&self) {
        *self.state.lock().expect("lane lock") = LaneState::default();
    }
}

/// The fixed pool: lanes to serve go in a queue that [`POOL_THREADS`] threads take
/// from.
pub struct Pool {
    queue: Mutex<Option<mpsc::Sender<Arc<Lane>>>>,
}

impl Pool {
    /// Starts the threads; they serve lanes with `serve` until [`Pool::stop`]. The
    /// server is given, not named, so the pool stays below the code it runs.
    pub fn start(rep: &Weak<Replicator>, serve: fn(&Arc<Replicator>, &Lane)) -> Pool {
        let (tx, rx) = mpsc::channel::<Arc<Lane>>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..POOL_THREADS {
            let (rx, rep) = (Arc::clone(&rx), Weak::clone(rep));
            thread::Builder::new()
                .name("peer-calls".into())
                .spawn(move || {
                    loop {
                        let next = rx.lock().expect("pool queue lock").recv();
                        let (Ok(lane), Some(rep)) = (next, rep.upgrade()) else {
                            return;
                        };
                        serve(&rep, &lane);
                    }
                })
                .expect("spawn a pool thread");
        }
        Pool {
            queue: Mutex::new(Some(tx)),
        }
    }

    /// Has `lane` served for `exchange` or its queued batches.
    pub fn kick(&self, lane: &Arc<Lane>, exchange: bool) {
        if lane.kick(exchange)
            && let Some(tx) = &*self.queue.lock().expect("pool queue lock")
        {
            let _ = tx.send(Arc::clone(lane));
        }
    }

    /// The threads end once the lanes queued are served.
    pub fn stop(&self) {
        self.queue.lock().expect("pool queue lock").take();
    }
}

/// The lanes by peer address.
pub type Lanes = Mutex<HashMap<String, Arc<Lane>>>;

/// When the core asked to be woken, in ms since the Unix epoch; read by the timer.
#[derive(Default)]
pub struct Alarm {
    at_ms: AtomicU64,
}

impl Alarm {
    pub fn set(&self, at_ms: u64) {
        self.at_ms.store(at_ms, Ordering::Relaxed);
    }
}

/// Most time the timer sleeps, whatever the core asked: a bound on how late a wake
/// set while it slept can be.
const TIMER_SLICE: Duration = Duration::from_secs(1);

/// The timer thread: feeds the core [`super::core::Event::Timer`] when its alarm
/// comes, until the replicator is gone or `stop` says so.
pub fn start_timer(rep: &Weak<Replicator>, stop: mpsc::Receiver<()>) {
    let rep = Weak::clone(rep);
    thread::Builder::new()
        .name("rounds".into())
        .spawn(move || {
            loop {
                let wait = {
                    let Some(rep) = rep.upgrade() else { return };
                    if rep.stopping() {
                        return;
                    }
                    let now = crate::time::now_ms();
                    if now >= rep.alarm.at_ms.load(Ordering::Relaxed) {
                        rep.timer_fired();
                    }
                    let at = rep.alarm.at_ms.load(Ordering::Relaxed);
                    Duration::from_millis(at.saturating_sub(crate::time::now_ms()))
                };
                match stop.recv_timeout(wait.clamp(Duration::from_millis(1), TIMER_SLICE)) {
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    _ => return,
                }
            }
        })
        .expect("spawn the timer");
}
