//! The limits of this machine, measured in the same run: the bare server, the disk's
//! fsync latency, SHA-256 and ed25519 speed per core.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use dshare::identity::Identity;
use dshare::message::{self, Draft, Message};

use crate::bare::Bare;
use crate::client::body;
use crate::config::Config;
use crate::harness::{load, rss_mb, sequential};
use crate::table::{Stats, ms, stats};

pub(crate) struct Limits {
    pub(crate) bare_start_ms: f64,
    pub(crate) bare_rss_mb: f64,
    pub(crate) bare_lat: Stats,
    pub(crate) bare_seq_rps: f64,
    pub(crate) bare_16_rps: f64,
    pub(crate) fsync: Stats,
    pub(crate) fsync_tmpfs: Option<Stats>,
    pub(crate) sha_mb_s: f64,
    /// With one thread per core at once: what the cores give now, on a shared machine.
    pub(crate) sha_all_mb_s: f64,
    /// One signature at a time, as a pushed message is checked.
    pub(crate) verify_per_core: f64,
    pub(crate) verify_all: f64,
    /// In batches of 64 by one author, as catch-up pages and `dshare verify` check.
    pub(crate) batch_per_core: f64,
    pub(crate) batch_all: f64,
    pub(crate) sign_per_core: f64,
    pub(crate) spawn_ms: f64,
    pub(crate) cores: usize,
}

/// Units of work per second of `work` (which returns the units it did) on `threads`
/// threads at once, over about 0.6 s.
pub(crate) fn rate(threads: usize, work: impl Fn() -> f64 + Sync) -> f64 {
    let start = Instant::now();
    let done: f64 = thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut units = 0.0;
                    while start.elapsed() < Duration::from_millis(600) {
                        units += work();
                    }
                    units
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("worker")).sum()
    });
    done / start.elapsed().as_secs_f64()
}

/// `n` messages by `key`, one author's run, with the canonical bytes each is signed over.
pub(crate) fn signed_run(key: &Identity, n: u64) -> Vec<(Message, Vec<u8>)> {
    let b = body("verify");
    (0..n)
        .map(|i| {
            let m = Message::sign(
                &Draft {
                    author: key.author(),
                    seq: i + 1,
                    prev: (i > 0).then_some(dshare::hex::Hex([1; 32])),
                    clock: i + 1,
                    ts: 1,
                    body: &b,
                },
                key,
            );
            let bytes = message::canonical(&m.draft());
            (m, bytes)
        })
        .collect()
}

/// Signatures checked per second on `threads` threads at once, now, the way catch-up
/// and `dshare verify` check them: one author's signatures in batches of `batch`. A
/// signature costs less the larger its batch (the batch's multiscalar multiplication
/// is shared), so each row's floor is measured at the size of the batches it checks.
pub(crate) fn batch_verify_rate(threads: usize, batch: usize) -> f64 {
    let samples = signed_run(&Identity::generate(), batch as u64);
    let items: Vec<dshare::signature::Item<'_>> = samples
        .iter()
        .map(|(m, b)| (&m.author, b.as_slice(), &m.sig))
        .collect();
    rate(threads, || {
        assert!(dshare::signature::verify_batch(&items).iter().all(|&ok| ok));
        items.len() as f64
    })
}

/// The disk's fdatasync latency right now: this machine is shared, and the disk's
/// latency moves with what others do, so each fsync-bound section measures it just
/// before and just after itself and is judged against the pooled samples.
pub(crate) fn probe(dir: &Path, n: usize) -> Vec<f64> {
    let path = dir.join("fsync-probe");
    let mut f = fs::File::create(&path).expect("probe file");
    let line = vec![b'x'; 560];
    let v = (0..n)
        .map(|_| {
            let t = Instant::now();
            f.write_all(&line).expect("write");
            f.sync_data().expect("fdatasync");
            ms(t.elapsed())
        })
        .collect();
    drop(f);
    let _ = fs::remove_file(&path);
    v
}

/// Probes before `measure`, then after it; returns what it returned and the pooled
/// fsync latency.
pub(crate) fn around<T>(dir: &Path, measure: impl FnOnce() -> T) -> (T, Stats) {
    let mut samples = probe(dir, 100);
    let out = measure();
    samples.extend(probe(dir, 100));
    (out, stats(samples))
}

pub(crate) fn limits(c: &Config) -> Limits {
    println!("limits of this machine:");
    let cores = dshare::par::cores();
    let starts: Vec<f64> = (0..c.reps.max(5)).map(|_| ms(Bare::start().1)).collect();
    let (bare, _) = Bare::start();
    thread::sleep(Duration::from_millis(300));
    let bare_rss_mb = rss_mb(bare.child.id());
    let bare_lat = stats(sequential(&bare.url, c.samples.max(1000), |_| {
        "/hello".into()
    }));
    let (bare_seq_rps, _) = load(&bare.url, 1, c.ingest_secs, |_, _| "/hello".into());
    let (bare_16_rps, _) = load(&bare.url, 16, c.ingest_secs, |_, _| "/hello".into());
    drop(bare);
    let fsync = stats(probe(&c.dir, c.samples));
    let fsync_tmpfs = c.tmpfs.as_ref().map(|d| stats(probe(d, c.samples)));
    let buf = vec![0x5au8; 1 << 20];
    let sha = |threads| {
        rate(threads, || {
            std::hint::black_box(message::sha256(&buf));
            1.048_576
        })
    };
    let sha_mb_s = sha(1);
    let sha_all_mb_s = sha(cores);
    let key = Identity::generate();
    let samples = signed_run(&key, 256);
    let verify = |threads| {
        rate(threads, || {
            for (m, b) in &samples {
                assert!(dshare::signature::verify(&m.author, b, &m.sig));
            }
            samples.len() as f64
        })
    };
    let verify_per_core = verify(1);
    let verify_all = verify(cores);
    let batch_per_core = batch_verify_rate(1, 64);
    let batch_all = batch_verify_rate(cores, 64);
    let sign_per_core = rate(1, || {
        for (_, b) in &samples {
            std::hint::black_box(key.sign(b));
        }
        samples.len() as f64
    });
    let spawns: Vec<f64> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let out = Command::new(&c.bin)
                .arg("--version")
                .stdout(Stdio::null())
                .status()
                .expect("spawn dshare --version");
            assert!(out.success());
            ms(t.elapsed())
        })
        .collect();
    let l = Limits {
        bare_start_ms: stats(starts).median,
        bare_rss_mb,
        bare_lat,
        bare_seq_rps,
        bare_16_rps,
        fsync,
        fsync_tmpfs,
        sha_mb_s,
        sha_all_mb_s,
        verify_per_core,
        verify_all,
        batch_per_core,
        batch_all,
        sign_per_core,
        spawn_ms: stats(spawns).median,
        cores,
    };
    println!(
        "  cores {cores}; bare tiny_http: start {:.1} ms, RSS {:.1} MB, 1 client {:.3} ms median ({:.0} req/s), 16 clients {:.0} req/s",
        l.bare_start_ms, l.bare_rss_mb, l.bare_lat.median, l.bare_seq_rps, l.bare_16_rps
    );
    println!(
        "  fdatasync {:.2} ms median, {:.2} ms p99; SHA-256 {:.0} MB/s ({:.0} on all cores); ed25519 verify {:.0}/s ({:.0} on all cores), in batches {:.0}/s ({:.0} on all cores), sign {:.0}/s per core; process spawn {:.2} ms",
        l.fsync.median,
        l.fsync.p99,
        l.sha_mb_s,
        l.sha_all_mb_s,
        l.verify_per_core,
        l.verify_all,
        l.batch_per_core,
        l.batch_all,
        l.sign_per_core,
        l.spawn_ms
    );
    l
}

impl Limits {
    pub(crate) fn sign_ms(&self) -> f64 {
        1000.0 / self.sign_per_core
    }
    pub(crate) fn verify_ms(&self) -> f64 {
        1000.0 / self.verify_per_core
    }
    /// Messages per second the cores can take when each is signed once and verified
    /// by each of `peers` receiving nodes on this same machine, each checking many at
    /// once (the cheapest way the rule allows).
    pub(crate) fn cpu_rate(&self, peers: f64) -> f64 {
        let cores_now = self.batch_all / self.batch_per_core;
        cores_now / (1.0 / self.sign_per_core + peers / self.batch_per_core)
    }
}
