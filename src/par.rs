//! Spreading independent work (signature checks, line parsing) over the machine's
//! cores with scoped std threads: no thread pool and no new dependency. Checking an
//! ed25519 signature costs tens of microseconds, so a page of 500 messages or a block
//! of box lines is worth splitting; a single pushed message is not.

use std::num::NonZeroUsize;
use std::sync::OnceLock;

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

#[cfg(test)]
mod tests {
    #[test]
    fn map_keeps_order_at_every_size() {
        for n in [0, 1, 15, 16, 17, 1000, 1001] {
            let items: Vec<u64> = (0..n).collect();
            let doubled = super::map(&items, |x| x * 2);
            assert_eq!(doubled, items.iter().map(|x| x * 2).collect::<Vec<_>>());
        }
    }
}
