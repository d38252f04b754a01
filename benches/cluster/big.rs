//! Section `big`: verify, start-up and memory at a box of a million messages.

use std::fs;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::boxes::{count_lines, prefix};
use crate::config::Config;
use crate::harness::{Node, dshare, init};
use crate::limits::{Limits, batch_verify_rate};
use crate::propagation::cpu_secs;
use crate::table::{Goal, Table, ms, num, stats};

pub(crate) fn big(c: &Config, l: &Limits, t: &mut Table, source: &Path) {
    let home = c.dir.join("big");
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
    let limit_before = batch_verify_rate(l.cores);
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
    let verify_now = (limit_before + batch_verify_rate(l.cores)) / 2.0;
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
        Some((verify_now, "ed25519 batch verify, all cores, around this row")),
    );
    t.rate(
        "verify",
        "… the same, in bytes",
        mb / s.median,
        "MB/s",
        Goal::None,
        Some((l.sha_all_mb_s, "SHA-256, all cores")),
    );

    let mut starts = Vec::new();
    let mut start_cpu = Vec::new();
    let mut rss = 0.0;
    for _ in 0..c.reps {
        let (node, took) = Node::start(&c.bin, &home, &[]);
        starts.push(ms(took));
        start_cpu.push(cpu_secs(node.child.id()));
        rss = node.rss_mb();
    }
    let floor = l.bare_start_ms + bytes / (l.sha_all_mb_s * 1e6) * 1000.0;
    t.time(
        "start-up",
        format!(
            "first answer, box of {} messages (CPU {} s)",
            num(c.big as f64),
            num(stats(start_cpu).median)
        ),
        stats(starts),
        false,
        Goal::AtMost(1500.0),
        false,
        Some((floor, "bare start + hash the box once on every core")),
    );
    let index_floor = l.bare_rss_mb + c.big as f64 * 40.0 / 1e6;
    t.memory(
        format!("RSS of a node holding {} messages", num(c.big as f64)),
        rss,
        Goal::AtMost(100.0),
        (index_floor, "bare server + 40 B/message (id + offset)"),
    );
    archive(c, t, &home);
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
