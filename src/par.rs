//! Spreading independent work (signature checks, line parsing) over the machine's
//! cores with scoped std threads: no thread pool and no new dependency. Checking an
//! ed25519 signature costs tens of microseconds, so a page of 500 messages or a block
//! of box lines is worth splitting; a single pushed message is not.

use std::collections::BTreeMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Mutex, OnceLock};

/// Fewer items than this are done on the calling thread: starting a thread costs
/// about as much as a few signature checks.
pub const MIN_PARALLEL: usize = 16;

/// The number of cores to use, read once.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get))
}

/// `items.iter().map(f).collect()`, with the items split into one contiguous run per
/// core. Order is kept.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_runs(items, |run| run.iter().map(&f).collect())
}

/// Splits `items` into one contiguous run per core and concatenates what `f` returns
/// for each run, which must be one result per item, in order. For work that is cheaper
/// done many items at once, such as batch signature verification.
pub fn map_runs<T: Sync, R: Send>(items: &[T], f: impl Fn(&[T]) -> Vec<R> + Sync) -> Vec<R> {
    let cores = cores();
    if cores == 1 || items.len() < MIN_PARALLEL {
        return f(items);
    }
    let per = items.len().div_ceil(cores);
    let f = &f;
    std::thread::scope(|s| {
        let mut runs = items.chunks(per);
        // The calling thread takes the first run itself rather than wait idle.
        let first = runs.next().unwrap_or(&[]);
        let handles: Vec<_> = runs.map(|run| s.spawn(move || f(run))).collect();
        let mut out = f(first);
        out.reserve(items.len() - out.len());
        for h in handles {
            out.extend(h.join().expect("a parallel worker panicked"));
        }
        out
    })
}

/// `source.map(work).all(sink)`, with `work` on every core: `source` is drawn on a
/// thread of its own and one worker per core takes its items as they come, while the
/// calling thread hands the results to `sink` in source order. Reading, the work and
/// `sink` then overlap, and no core waits for another at the end of each item, as
/// [`map_runs`] on each item in turn would.
///
/// At most `window` items are in flight (drawn from `source` and not yet through
/// `sink`, wherever they wait), which bounds the memory: `cores() + 2` keeps every
/// worker busy while one item is read and one goes through `sink`. `sink` returns
/// `false` to stop: nothing more is drawn and the items in flight are dropped. A panic
/// in `source`, `work` or `sink` is passed on once every thread has stopped.
pub fn ordered<I: Send, R: Send>(
    window: usize,
    source: impl Iterator<Item = I> + Send,
    work: impl Fn(I) -> R + Sync,
    sink: impl FnMut(R) -> bool,
) {
    let stop = AtomicBool::new(false);
    // One slot per item in flight: the source takes one before it draws an item, and
    // the calling thread gives it back once `sink` has had the item's result.
    let (slots, free) = sync_channel(window.max(1));
    while slots.try_send(()).is_ok() {}
    // Neither channel needs a bound of its own: the slots bound what is in them.
    let (items, queue) = channel();
    let queue = Mutex::new(queue);
    let (results, done) = channel();
    std::thread::scope(|s| {
        let (stop, queue, work) = (&stop, &queue, &work);
        s.spawn(move || draw(source, &free, &items, stop));
        for _ in 0..cores() {
            let results = results.clone();
            s.spawn(move || work_on(queue, work, results, stop));
        }
        drop(results);
        Taker { stop, slots, done }.take_in_order(sink);
    });
}

/// What a worker sends back: the item's number and result, or `None` when it panicked
/// (the result it owed will never come).
type Done<R> = Option<(u64, R)>;

/// Draws numbered items from `source` while there is a free slot and no stop.
fn draw<I>(
    mut source: impl Iterator<Item = I>,
    free: &Receiver<()>,
    items: &Sender<(u64, I)>,
    stop: &AtomicBool,
) {
    let mut n = 0;
    while free.recv().is_ok() && !stop.load(Ordering::Relaxed) {
        let Some(item) = source.next() else { return };
        if items.send((n, item)).is_err() {
            return;
        }
        n += 1;
    }
}

/// A worker: takes the next item from the shared queue until it is empty and closed.
fn work_on<I, R>(
    queue: &Mutex<Receiver<(u64, I)>>,
    work: impl Fn(I) -> R,
    results: Sender<Done<R>>,
    stop: &AtomicBool,
) {
    let _report = ReportPanic(results.clone());
    loop {
        // The lock is held only while waiting for an item, not while working on it.
        let next = match queue.lock() {
            Ok(queue) => queue.recv(),
            Err(_) => return,
        };
        let Ok((n, item)) = next else { return };
        if stop.load(Ordering::Relaxed) || results.send(Some((n, work(item)))).is_err() {
            return;
        }
    }
}

/// Tells the calling thread that a worker panicked, so that it stops waiting for the
/// result the worker owed.
struct ReportPanic<R>(Sender<Done<R>>);

impl<R> Drop for ReportPanic<R> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.send(None);
        }
    }
}

/// The calling thread's ends of the channels.
struct Taker<'a, R> {
    stop: &'a AtomicBool,
    slots: SyncSender<()>,
    done: Receiver<Done<R>>,
}

impl<R> Taker<'_, R> {
    /// Results into `sink` in item order, holding back those that come early (no more
    /// than the slots allow).
    fn take_in_order(self, mut sink: impl FnMut(R) -> bool) {
        let mut early = BTreeMap::new();
        let mut next = 0;
        // The results end when every worker has stopped: the source is exhausted, or a
        // thread panicked (the scope passes that on).
        for result in &self.done {
            let Some((n, result)) = result else { return };
            early.insert(n, result);
            while let Some(result) = early.remove(&next) {
                if !sink(result) {
                    return;
                }
                next += 1;
                // Fails only once the source has stopped drawing.
                let _ = self.slots.try_send(());
            }
        }
    }
}

impl<R> Drop for Taker<'_, R> {
    /// However the calling thread stops taking results (all taken, `sink` stopped, a
    /// panic), the other threads are told to stop before the channels close: the source
    /// would otherwise draw an item for each slot still free.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn map_keeps_order_at_every_size() {
        for n in [0, 1, 15, 16, 17, 1000, 1001] {
            let items: Vec<u64> = (0..n).collect();
            let doubled = super::map(&items, |x| x * 2);
            assert_eq!(doubled, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
    }

    /// The items a source has handed out, less those `sink` has had, at most.
    fn most_in_flight(window: usize, n: u64, slow_item: u64) -> usize {
        let drawn = AtomicUsize::new(0);
        let taken = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let source = (0..n).inspect(|_| {
            let now = drawn.fetch_add(1, Ordering::SeqCst) + 1 - taken.load(Ordering::SeqCst);
            most.fetch_max(now, Ordering::SeqCst);
        });
        let mut got = Vec::new();
        super::ordered(
            window,
            source,
            |i| {
                // One slow item: the others pile up behind it, as far as they may.
                if i == slow_item {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                i * 2
            },
            |r| {
                got.push(r);
                taken.fetch_add(1, Ordering::SeqCst);
                true
            },
        );
        assert_eq!(got, (0..n).map(|i| i * 2).collect::<Vec<_>>());
        most.into_inner()
    }

    #[test]
    fn ordered_keeps_order_and_bounds_the_items_in_flight() {
        for window in [1, 2, 3, 8] {
            for n in [0, 1, 5, 200] {
                let most = most_in_flight(window, n, 3);
                assert!(most <= window, "{most} items in flight, window {window}");
            }
        }
    }

    #[test]
    fn ordered_stops_drawing_when_the_sink_stops() {
        let drawn = AtomicUsize::new(0);
        let mut got = Vec::new();
        super::ordered(
            4,
            (0..1_000_000u64).inspect(|_| {
                drawn.fetch_add(1, Ordering::SeqCst);
            }),
            |i| i,
            |r| {
                got.push(r);
                r < 9
            },
        );
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        // The ten taken, and at most a window more.
        assert!(drawn.into_inner() <= 14);
    }

    #[test]
    fn ordered_passes_on_a_panic_instead_of_hanging() {
        let in_work = std::panic::catch_unwind(|| {
            super::ordered(3, 0..100u64, |i| assert_ne!(i, 7, "bad item"), |()| true);
        });
        assert!(in_work.is_err());
        let in_source = std::panic::catch_unwind(|| {
            let source = (0..100u64).inspect(|&i| assert_ne!(i, 7, "bad item"));
            super::ordered(3, source, |i| i, |_| true);
        });
        assert!(in_source.is_err());
        let in_sink = std::panic::catch_unwind(|| {
            super::ordered(
                3,
                0..100u64,
                |i| i,
                |i| {
                    assert_ne!(i, 7, "bad item");
                    true
                },
            );
        });
        assert!(in_sink.is_err());
    }
}
