//! The threads that carry out the core's actions: a fixed pool for the calls to
//! peers and one timer thread, whatever the number of peers. Each peer has a lane
//! (its push queue and whether an exchange is wanted); a lane is served by one pool
//! thread at a time, so a peer gets its pushes in order and never two exchanges at
//! once, and a peer with nothing to do costs no thread at all (it had one each).

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, Weak};
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

/// When the core asked to be woken, in ms since the Unix epoch. The timer thread
/// sleeps until then; a wake asked for earlier, or the node stopping, rouses it, so
/// a node at rest wakes when its core has something due and not on a slice.
#[derive(Default)]
pub struct Alarm {
    state: Mutex<AlarmState>,
    rung: Condvar,
}

#[derive(Default)]
struct AlarmState {
    at_ms: u64,
    stopped: bool,
}

impl Alarm {
    pub fn set(&self, at_ms: u64) {
        let mut state = self.state.lock().expect("alarm lock");
        let sooner = at_ms < state.at_ms;
        state.at_ms = at_ms;
        if sooner {
            self.rung.notify_one();
        }
    }

    /// Ends the timer thread at once.
    pub fn stop(&self) {
        self.state.lock().expect("alarm lock").stopped = true;
        self.rung.notify_all();
    }

    fn due(&self, now_ms: u64) -> bool {
        now_ms >= self.state.lock().expect("alarm lock").at_ms
    }

    /// Sleeps until the alarm is due (at least a millisecond), or an earlier one is
    /// set; `false` once stopped.
    fn sleep(&self) -> bool {
        let state = self.state.lock().expect("alarm lock");
        if state.stopped {
            return false;
        }
        let wait = Duration::from_millis(state.at_ms.saturating_sub(crate::time::now_ms()));
        let (state, _) = self
            .rung
            .wait_timeout(state, wait.max(Duration::from_millis(1)))
            .expect("alarm lock");
        !state.stopped
    }
}

/// The timer thread: feeds the core [`super::core::Event::Timer`] when its alarm
/// comes, until the replicator is gone or the alarm is stopped.
pub fn start_timer(rep: &Weak<Replicator>, alarm: Arc<Alarm>) {
    let rep = Weak::clone(rep);
    thread::Builder::new()
        .name("rounds".into())
        .spawn(move || {
            loop {
                {
                    let Some(rep) = rep.upgrade() else { return };
                    if rep.stopping() {
                        return;
                    }
                    if alarm.due(crate::time::now_ms()) {
                        rep.timer_fired();
                    }
                }
                if !alarm.sleep() {
                    return;
                }
            }
        })
        .expect("spawn the timer");
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::Alarm;

    /// The timer sleeps until its alarm and no longer needs a slice to notice a
    /// sooner one: setting it, or stopping, wakes the sleeper at once.
    #[test]
    fn a_sooner_alarm_or_a_stop_wakes_the_sleeper_at_once() {
        let alarm = Arc::new(Alarm::default());
        let far = crate::time::now_ms() + 600_000;
        alarm.set(far);
        let sleeper = Arc::clone(&alarm);
        let started = Instant::now();
        let t = std::thread::spawn(move || sleeper.sleep());
        // However the two threads interleave, the sleeper sees the sooner alarm:
        // before its wait (it then waits a millisecond) or by the notification.
        alarm.set(crate::time::now_ms());
        assert!(t.join().unwrap(), "not stopped");
        assert!(started.elapsed() < Duration::from_secs(60));
        assert!(alarm.due(crate::time::now_ms()));

        alarm.set(far);
        let sleeper = Arc::clone(&alarm);
        let t = std::thread::spawn(move || sleeper.sleep());
        alarm.stop();
        assert!(!t.join().unwrap(), "stopped");
        assert!(!alarm.sleep(), "stays stopped");
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}
