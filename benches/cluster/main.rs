//! The cluster benchmark: real `dshare serve` processes on loopback, measured against
//! the limits of this machine measured in the same run (a bare tiny_http server with
//! the same client, the disk's fsync latency, SHA-256 and ed25519 speed per core).
//!
//! ```sh
//! cargo bench --bench cluster          # prints the table and rewrites it in BENCHMARKS.md
//! ```
//!
//! Every figure is a median (and p99 where it is a latency) and is also shown against
//! its limit. Sizes can be scaled down with environment variables (see [`Config`] and
//! BENCHMARKS.md); a smaller run does not rewrite BENCHMARKS.md unless
//! `DSHARE_BENCH_OUT` names a file.
//!
//! The machine is shared and noisy: that is why every figure is a median and why each
//! limit is measured in the same run rather than quoted.

// The integration tests' helpers, shared rather than copied.
#[path = "../../tests/util/mod.rs"]
mod util;

mod bare;
mod big;
mod boxes;
mod catchup;
mod client;
mod config;
mod fleet;
mod harness;
mod ingest;
mod latency;
mod limits;
mod procfs;
mod propagation;
mod table;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::bare::{BARE_ENV, bare_server, in_own_netns};
use crate::big::big;
use crate::boxes::{count_lines, generate_box};
use crate::catchup::catchup;
use crate::config::Config;
use crate::fleet::fleet;
use crate::ingest::ingest;
use crate::latency::{empty_start, latency};
use crate::limits::limits;
use crate::propagation::propagation;
use crate::table::{Table, num, write_generated_section};

/// About 150 bytes, like the messages of the comparison in BENCHMARKS.md.
pub(crate) const BODY_LEN: usize = 150;
/// How long to wait for anything (a node to start, a network to form, a message to
/// arrive) before the benchmark gives up on it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(60);

fn machine() -> String {
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{} cores (nproc), {cpu}, Linux {}",
        dshare::par::cores(),
        kernel.trim()
    )
}

fn filesystem(dir: &Path) -> String {
    let out = Command::new("df")
        .arg("--output=fstype,source")
        .arg(dir)
        .output();
    out.ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| {
            s.lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" on "))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Stops the nodes with a home under `dir` that no benchmark runs any more: a run
/// stopped by a signal leaves its nodes running (they outlive its network namespace),
/// and hundreds of them would share the cores with the figures of the next run. The
/// nodes of a benchmark still running are its children and are left alone.
fn stop_orphaned_nodes(dir: &Path) {
    let dir = dir.to_string_lossy();
    let args_of = |pid: &str| -> Vec<String> {
        fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| {
                b.split(|&c| c == 0)
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let parent_of = |pid: &str| -> Option<String> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command name: state, then the parent's pid.
        let after = stat.rsplit_once(')')?.1;
        after.split_whitespace().nth(1).map(str::to_string)
    };
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    let mut stopped = 0;
    for entry in entries.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let args = args_of(&pid);
        let home_here = args
            .windows(2)
            .any(|w| w[0] == "--home" && w[1].starts_with(dir.as_ref()));
        if !home_here || !args.iter().any(|a| a == "serve") {
            continue;
        }
        let benched = parent_of(&pid)
            .is_some_and(|ppid| args_of(&ppid).iter().any(|a| a.contains("/deps/cluster-")));
        if !benched
            && Command::new("kill")
                .args(["-KILL", &pid])
                .status()
                .is_ok_and(|s| s.success())
        {
            stopped += 1;
        }
    }
    if stopped > 0 {
        let nodes = if stopped == 1 { "node" } else { "nodes" };
        println!("stopped {stopped} {nodes} that an earlier run left running");
    }
}

fn main() {
    if std::env::var_os(BARE_ENV).is_some() {
        return bare_server();
    }
    if let Some(code) = in_own_netns() {
        std::process::exit(code);
    }
    let c = Config::from_env();
    fs::create_dir_all(&c.dir).expect("create the bench dir");
    stop_orphaned_nodes(&c.dir);
    let started = Instant::now();
    let date = dshare::time::utc(dshare::time::now_ms());
    println!("dshare cluster benchmark, {date}, {}", machine());
    println!("binary {}; homes in {}", c.bin.display(), c.dir.display());
    let mut t = Table::default();
    let l = limits(&c);
    let label_tmpfs = " — tmpfs, no disk flush";
    let tmpfs_dir = c
        .tmpfs
        .as_ref()
        .map(|d| d.join(format!("dshare-bench-{}", std::process::id())));

    if c.runs("latency") {
        println!("latency:");
        latency(&c, &l, &mut t, &c.dir, "");
        if let Some(d) = &tmpfs_dir {
            latency(&c, &l, &mut t, d, label_tmpfs);
        }
        empty_start(&c, &l, &mut t);
    }
    if c.runs("propagation") {
        println!("propagation:");
        propagation(&c, &l, &mut t, &c.dir, "");
        if let Some(d) = &tmpfs_dir {
            propagation(&c, &l, &mut t, d, label_tmpfs);
        }
    }
    // Hundreds of nodes: only when asked for by name (DSHARE_BENCH_ONLY=fleet).
    if c.only
        .as_ref()
        .is_some_and(|o| o.iter().any(|s| s == "fleet"))
    {
        println!("fleet:");
        fleet(&c, &mut t, &c.dir);
    }
    if c.runs("ingest") {
        println!("ingest:");
        ingest(&c, &l, &mut t, &c.dir, "");
        if let Some(d) = &tmpfs_dir {
            ingest(&c, &l, &mut t, d, label_tmpfs);
        }
    }
    if let Some(d) = &tmpfs_dir {
        let _ = fs::remove_dir_all(d);
    }
    let need = c.catchup.iter().copied().chain([c.big]).max().unwrap_or(0);
    if need > 0 && (c.runs("catchup") || c.runs("big")) {
        let source = c.dir.join(format!("generated-{need}.txt"));
        let tg = Instant::now();
        if count_lines_or_zero(&source) != need {
            generate_box(&source, need);
        }
        println!(
            "generated a box of {need} messages in {:.1} s",
            tg.elapsed().as_secs_f64()
        );
        if c.runs("catchup") {
            println!("catch-up:");
            catchup(&c, &l, &mut t, &source);
        }
        if c.runs("big") {
            println!("verify, start-up and memory at {} messages:", c.big);
            big(&c, &l, &mut t, &source);
        }
    }
    let took = started.elapsed().as_secs_f64();
    let mut md = String::new();
    let _ = writeln!(md, "Run on {date}: {}.", machine());
    let _ = writeln!(
        md,
        "Boxes on `{}` ({}); tmpfs rows on `{}`. Binary: `dshare` {} as built by `cargo bench` (release profile). The run took {:.0} s.\n",
        c.dir.display(),
        filesystem(&c.dir),
        c.tmpfs
            .as_ref()
            .map_or("-".into(), |d| d.display().to_string()),
        env!("CARGO_PKG_VERSION"),
        took
    );
    let _ = writeln!(
        md,
        "Limits measured in this run: bare tiny_http (same socket options, 16 workers, same client) {} ms per request median, {} ms p99, {} req/s from 1 client, {} req/s from 16; first answer {} ms after spawn; RSS {} MB. fdatasync of a 560-byte append: {} ms median, {} ms p99{} at the start (each fsync-bound row is judged against fdatasync measured just before and after it, pooled). SHA-256 {} MB/s on one core, {} MB/s on all {} at once; ed25519 verification (ZIP 215) one at a time {} /s on one core, {} /s on all, in batches of 64 by one author {} /s on one core, {} /s on all; signing {} /s per core; spawning `dshare --version` {} ms.\n",
        num(l.bare_lat.median),
        num(l.bare_lat.p99),
        num(l.bare_seq_rps),
        num(l.bare_16_rps),
        num(l.bare_start_ms),
        num(l.bare_rss_mb),
        num(l.fsync.median),
        num(l.fsync.p99),
        l.fsync_tmpfs
            .map_or(String::new(), |f| format!(" (tmpfs: {} ms)", num(f.median))),
        num(l.sha_mb_s),
        num(l.sha_all_mb_s),
        l.cores,
        num(l.verify_per_core),
        num(l.verify_all),
        num(l.batch_per_core),
        num(l.batch_all),
        num(l.sign_per_core),
        num(l.spawn_ms),
    );
    md.push_str(&t.markdown());
    println!("\n{md}");
    if let Some(path) = &c.out {
        write_generated_section(path, &md);
    }
}

fn count_lines_or_zero(path: &Path) -> usize {
    if path.exists() { count_lines(path) } else { 0 }
}
