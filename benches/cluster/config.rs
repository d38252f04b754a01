//! What to run, from `DSHARE_BENCH_*` environment variables.

use std::path::PathBuf;

/// What to run, from environment variables (defaults in brackets).
pub(crate) struct Config {
    /// `DSHARE_BENCH_BIN` [the `dshare` cargo built for this bench]: the binary measured.
    pub(crate) bin: PathBuf,
    /// `DSHARE_BENCH_DIR` [target/bench-run]: where homes live (on the real disk).
    pub(crate) dir: PathBuf,
    /// `DSHARE_BENCH_TMPFS` [/dev/shm, `none` to skip]: the fsync-bound rows are
    /// measured again with homes here, where fsync costs nothing.
    pub(crate) tmpfs: Option<PathBuf>,
    /// `DSHARE_BENCH_SAMPLES` [200]: sends per latency figure.
    pub(crate) samples: usize,
    /// `DSHARE_BENCH_NODES` [3,10,30]: network sizes for propagation.
    pub(crate) nodes: Vec<usize>,
    /// `DSHARE_BENCH_INGEST_SECS` [3]: seconds of load per ingest figure.
    pub(crate) ingest_secs: f64,
    /// `DSHARE_BENCH_CATCHUP` [10000,100000]: messages a new node catches up on.
    pub(crate) catchup: Vec<usize>,
    /// `DSHARE_BENCH_BIG` [1000000]: messages in the box for verify, memory, start-up.
    pub(crate) big: usize,
    /// `DSHARE_BENCH_REPS` [3]: repetitions of the slow figures (catch-up, verify, start-up).
    pub(crate) reps: usize,
    /// `DSHARE_BENCH_OUT` [BENCHMARKS.md for a full-size run; `none`]: the file whose
    /// generated section is rewritten.
    pub(crate) out: Option<PathBuf>,
    /// `DSHARE_BENCH_ONLY` [all]: comma-separated sections: limits, latency, propagation,
    /// ingest, catchup, big.
    pub(crate) only: Option<Vec<String>>,
}

pub(crate) fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

pub(crate) fn list(text: &str) -> Vec<usize> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .replace('_', "")
                .parse()
                .expect("a list of numbers")
        })
        .collect()
}

impl Config {
    pub(crate) fn from_env() -> Config {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let tmpfs = match env_or("DSHARE_BENCH_TMPFS", "/dev/shm").as_str() {
            "none" | "" => None,
            p => Some(PathBuf::from(p)).filter(|p| p.is_dir()),
        };
        let mut c = Config {
            bin: PathBuf::from(env_or("DSHARE_BENCH_BIN", env!("CARGO_BIN_EXE_dshare"))),
            dir: PathBuf::from(env_or(
                "DSHARE_BENCH_DIR",
                &root.join("target/bench-run").to_string_lossy(),
            )),
            tmpfs,
            samples: env_or("DSHARE_BENCH_SAMPLES", "200")
                .parse()
                .expect("a number"),
            nodes: list(&env_or("DSHARE_BENCH_NODES", "3,10,30")),
            ingest_secs: env_or("DSHARE_BENCH_INGEST_SECS", "3")
                .parse()
                .expect("seconds"),
            catchup: list(&env_or("DSHARE_BENCH_CATCHUP", "10000,100000")),
            big: env_or("DSHARE_BENCH_BIG", "1000000")
                .replace('_', "")
                .parse()
                .expect("a number"),
            reps: env_or("DSHARE_BENCH_REPS", "3").parse().expect("a number"),
            out: None,
            only: std::env::var("DSHARE_BENCH_ONLY")
                .ok()
                .map(|s| s.split(',').map(str::to_string).collect()),
        };
        let full = c.samples >= 200
            && c.nodes == [3, 10, 30]
            && c.catchup == [10_000, 100_000]
            && c.big >= 1_000_000
            && c.only.is_none();
        c.out = match std::env::var("DSHARE_BENCH_OUT").ok().as_deref() {
            Some("none") => None,
            Some(p) => Some(PathBuf::from(p)),
            None => full.then(|| root.join("BENCHMARKS.md")),
        };
        c
    }

    pub(crate) fn runs(&self, section: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|o| o.iter().any(|s| s == section))
    }
}
