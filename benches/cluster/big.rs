//! Section `big`: verify, start-up, memory, reads and catch-up at a box of a million
//! messages (`DSHARE_BENCH_BIG=10000000` for the ten-million rows of issue 14: the
//! generated box is written once into the bench directory and reused by later runs).

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::boxes::{count_lines, prefix};
use crate::config::Config;
use crate::harness::{Node, dshare, init};
use crate::limits::{Limits, batch_verify_rate};
use crate::procfs::cpu_secs;
use crate::table::{Goal, Table, ms, num, stats};

pub(crate) fn big(c: &Config, l: &Limits, t: &mut Table, source: &Path) {
    let home = c.dir.join("big");
    let _ = fs::remove_dir_all(&home);
    init(&c.bin, &home, None);
    let boxp = home.join("box.txt");
    if c.big == count_lines(source) {
        fs::copy(source, &boxp).expect("copy the big box");
    } else {
        prefix(source, &boxp, c.big);
    }
    let bytes = fs::metadata(&boxp).expect("box").len() as f64;
    let mb = bytes / 1e6;
    // Warm the page cache the same way for every reader.
    let _ = fs::read(&boxp);
    let mut runs = Vec::new();
    let mut cpu = Vec::new();
    // `verify` checks each block of the box (1 MiB) as one batch.
    let batch = ((1 << 20) as f64 * c.big as f64 / bytes).round().max(2.0) as usize;
    let limit_before = batch_verify_rate(l.cores, batch);
    for _ in 0..c.reps {
        let t0 = Instant::now();
        let mut child = dshare(&c.bin, &home)
            .args(["-q", "verify"])
            .arg(&boxp)
            .spawn()
            .expect("spawn dshare verify");
        // Read its CPU time once it has exited, before it is reaped.
        let pid = child.id();
        let mut took = None;
        while took.is_none() {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            if stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
            {
                took = Some(t0.elapsed().as_secs_f64());
                cpu.push(cpu_secs(pid));
            } else {
                thread::sleep(Duration::from_millis(2));
            }
        }
        assert!(
            child.wait().expect("wait").success(),
            "dshare verify failed on the generated box"
        );
        runs.push(took.expect("timed"));
    }
    let s = stats(runs);
    let rate = c.big as f64 / s.median;
    let verify_now = (limit_before + batch_verify_rate(l.cores, batch)) / 2.0;
    let cpu = stats(cpu).median;
    t.rate(
        "verify",
        format!(
            "`dshare verify` of {} messages ({} MB), with signatures (CPU {} s: {} msgs per CPU-second)",
            num(c.big as f64),
            num(mb),
            num(cpu),
            num(c.big as f64 / cpu)
        ),
        rate,
        "msgs/s",
        Goal::AtLeast(40_000.0),
        Some((
            verify_now,
            "ed25519 batch verify, all cores, batches of a block, around this row",
        )),
    );
    t.rate(
        "verify",
        "… the same, in bytes",
        mb / s.median,
        "MB/s",
        Goal::None,
        Some((l.sha_all_mb_s, "SHA-256, all cores")),
    );

    start_up_memory_and_reads(c, l, t, source, &home, bytes);
}

/// Removes the checkpoint and the index files of a home's box, so that the next start
/// reads the box whole and builds them.
fn remove_index(home: &Path) {
    let _ = fs::remove_file(home.join("box.checkpoint"));
    let _ = fs::remove_file(home.join("box.index"));
    for entry in fs::read_dir(home).expect("home").flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with("box.order-")
        {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Start-up (with no checkpoint, with a clean one, after a kill -9 with 10,000 lines
/// after it), memory, the last-10 reads, and a node behind by 100,000 catching up.
fn start_up_memory_and_reads(
    c: &Config,
    l: &Limits,
    t: &mut Table,
    source: &Path,
    home: &Path,
    bytes: f64,
) {
    let n = num(c.big as f64);
    remove_index(home);
    let (node, first) = Node::start(&c.bin, home, &[]);
    let first_cpu = cpu_secs(node.child.id());
    node.stop();
    let floor = l.bare_start_ms + bytes / (l.sha_all_mb_s * 1e6) * 1000.0;
    t.time(
        "start-up",
        format!(
            "first answer, box of {n} messages, no checkpoint: reads the box and writes its index (CPU {} s)",
            num(first_cpu)
        ),
        stats(vec![ms(first)]),
        false,
        Goal::None,
        false,
        Some((floor, "bare start + hash the box once on every core")),
    );

    let mut starts = Vec::new();
    let mut start_cpu = Vec::new();
    let mut rss = 0.0;
    let (mut page, mut cli) = (Vec::new(), Vec::new());
    for _ in 0..c.reps {
        let (node, took) = Node::start(&c.bin, home, &[]);
        starts.push(ms(took));
        start_cpu.push(cpu_secs(node.child.id()));
        page = crate::harness::sequential(&node.url, 200, |_| node.target("/log", "n=10"));
        cli = (0..20)
            .map(|_| {
                let t0 = Instant::now();
                crate::harness::run_ok({
                    let mut cmd = dshare(&c.bin, home);
                    cmd.args(["log", "-n", "10"]);
                    cmd
                });
                ms(t0.elapsed())
            })
            .collect();
        rss = node.rss_mb();
        node.stop();
    }
    t.time(
        "start-up",
        format!(
            "first answer, box of {n} messages, clean checkpoint and index (CPU {} s)",
            num(stats(start_cpu).median)
        ),
        stats(starts),
        false,
        Goal::AtMost(50.0),
        false,
        Some((l.bare_start_ms, "bare tiny_http server's first answer")),
    );
    t.memory(
        format!("RSS of a node holding {n} messages, after a start from its checkpoint and the reads below"),
        rss,
        Goal::AtMost(16.0),
        (l.bare_rss_mb, "bare tiny_http server, 16 workers"),
    );
    t.time(
        "reads",
        format!("`GET /log?n=10` (the last 10 in conversation order), box of {n}"),
        stats(page),
        true,
        Goal::AtMost(10.0),
        false,
        Some((l.bare_lat.median, "bare tiny_http request")),
    );
    t.time(
        "reads",
        format!("`dshare log -n 10` through the node, box of {n} (a process spawned each time)"),
        stats(cli),
        true,
        Goal::AtMost(10.0 + l.spawn_ms),
        false,
        Some((l.spawn_ms, "spawning `dshare --version`")),
    );

    // A kill -9 with 10,000 lines after the checkpoint: the node stopped cleanly with
    // 10,000 lines fewer, then the box grew by them (as appends do) without a new
    // checkpoint.
    let killed = c.dir.join("big-kill9");
    init(&c.bin, &killed, None);
    prefix(
        source,
        &killed.join("box.txt"),
        c.big.saturating_sub(10_000),
    );
    let _ = fs::remove_file(killed.join("box.head"));
    remove_index(&killed);
    let (node, _) = Node::start(&c.bin, &killed, &[]);
    node.stop();
    // Once: the start it measures writes a new checkpoint and may merge runs, so a
    // second round would not start from the same state.
    fs::copy(home.join("box.txt"), killed.join("box.txt")).expect("the whole box");
    let (node, took) = Node::start(&c.bin, &killed, &[]);
    drop(node);
    let after_kill = vec![ms(took)];
    t.time(
        "start-up",
        format!("first answer after a kill -9 with 10,000 lines after the checkpoint, box of {n}"),
        stats(after_kill),
        false,
        Goal::AtMost(200.0),
        false,
        None,
    );
    catch_up_the_last_100_000(c, t, source, home);
}

/// A node holding all but the last 100,000 messages catches up on them from one
/// holding them all: range pulls answered from the index on disk at high seqs.
fn catch_up_the_last_100_000(c: &Config, t: &mut Table, source: &Path, home: &Path) {
    let behind_by = 100_000.min(c.big / 2);
    let behind = c.dir.join("big-behind");
    let _ = fs::remove_dir_all(&behind);
    let (a, _) = Node::start(&c.bin, home, &[]);
    let inv = crate::harness::invite(&c.bin, home, &a.url);
    a.stop();
    init(&c.bin, &behind, Some(&inv));
    prefix(source, &behind.join("box.txt"), c.big - behind_by);
    // Its own start (reading and indexing its box) is not the figure: done first,
    // alone.
    let (b, _) = Node::start(&c.bin, &behind, &[]);
    b.stop();
    // The node holding everything comes back on another port: the one behind is told
    // where (as a restarted peer is found again through its peers).
    let (a, _) = Node::start(&c.bin, home, &[]);
    let t0 = Instant::now();
    let (b, _) = Node::start(&c.bin, &behind, &["--peer", &a.url]);
    let mut conn = b.conn();
    crate::harness::wait("the node behind to catch up", || {
        (b.messages(&mut conn) >= c.big as u64).then_some(())
    });
    let took = t0.elapsed();
    drop(b);
    drop(a);
    t.time(
        "catch-up",
        format!(
            "a node holding {} messages catches up the last {} from one holding {}",
            num((c.big - behind_by) as f64),
            num(behind_by as f64),
            num(c.big as f64)
        ),
        stats(vec![ms(took)]),
        false,
        Goal::AtMost(3000.0),
        false,
        None,
    );
    archive(c, t, home);
}

/// `dshare archive` of 90% of the box on a running node, `/status` polled throughout
/// (its slowest answer says whether the node kept serving), then `verify` of the
/// history it leaves (epoch file + live box).
fn archive(c: &Config, t: &mut Table, home: &Path) {
    let (node, _) = Node::start(&c.bin, home, &[]);
    let keep = (c.big / 10).to_string();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (mut conn, target) = (node.conn(), node.target("/status", ""));
        let stop = std::sync::Arc::clone(&stop);
        thread::spawn(move || {
            let mut worst = 0.0f64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let t0 = Instant::now();
                conn.get(&target).expect("GET /status during the archive");
                worst = worst.max(ms(t0.elapsed()));
                thread::sleep(Duration::from_millis(5));
            }
            worst
        })
    };
    let t0 = Instant::now();
    crate::harness::run_ok({
        let mut cmd = dshare(&c.bin, home);
        cmd.args(["-q", "archive", "--keep-messages", &keep]);
        cmd
    });
    let took = t0.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let worst = poller.join().expect("the poller");
    drop(node);
    t.time(
        "archive",
        format!(
            "`dshare archive` of {} of {} messages on a running node (slowest `/status` meanwhile {} ms)",
            num((c.big - c.big / 10) as f64),
            num(c.big as f64),
            num(worst)
        ),
        stats(vec![ms(took)]),
        false,
        Goal::AtMost(60_000.0),
        false,
        None,
    );
    let t0 = Instant::now();
    crate::harness::run_ok({
        let mut cmd = dshare(&c.bin, home);
        cmd.args(["-q", "verify"]);
        cmd
    });
    t.rate(
        "archive",
        "… then `dshare verify` of the epoch and the live box, with signatures",
        c.big as f64 / t0.elapsed().as_secs_f64(),
        "msgs/s",
        Goal::AtLeast(150_000.0),
        None,
    );
}
