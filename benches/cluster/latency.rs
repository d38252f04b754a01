//! Section `latency`: one send at a time, and the start of an empty node.

use std::path::Path;
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use crate::client::body;
use crate::config::Config;
use crate::harness::{Node, dshare, init, sequential};
use crate::limits::{Limits, around};
use crate::table::{Goal, Table, ms, stats};
use crate::util::encode;

pub(crate) fn latency(c: &Config, l: &Limits, t: &mut Table, dir: &Path, label: &str) {
    let home = dir.join("lone");
    init(&c.bin, &home, None);
    let (node, _) = Node::start(&c.bin, &home, &[]);
    let (sends, fsync) = around(dir, || -> Vec<f64> {
        (0..c.samples)
            .map(|i| {
                let tx = Instant::now();
                let mut cmd = dshare(&c.bin, &home);
                cmd.args(["-q", "send", &body(&format!("cli {i}"))]);
                let status = cmd
                    .stdin(Stdio::null())
                    .status()
                    .expect("spawn dshare send");
                assert!(status.success(), "dshare send failed");
                ms(tx.elapsed())
            })
            .collect()
    });
    let floor = l.spawn_ms + l.bare_lat.median + l.sign_ms() + fsync.median;
    t.time(
        "latency",
        format!("CLI `dshare send`, process start → durable ack{label}"),
        stats(sends),
        true,
        Goal::AtMost(2.0),
        false,
        Some((floor, "spawn + bare HTTP + sign + fsync")),
    );
    let (http, fsync) = around(dir, || {
        sequential(&node.url, c.samples, |i| {
            node.target(
                "/send",
                &format!("msg={}", encode(&body(&format!("http {i}")))),
            )
        })
    });
    t.time(
        "latency",
        format!("HTTP GET /send, one keep-alive client{label}"),
        stats(http),
        true,
        Goal::None,
        false,
        Some((
            l.bare_lat.median + l.sign_ms() + fsync.median,
            "bare HTTP + sign + fsync",
        )),
    );
}

pub(crate) fn empty_start(c: &Config, l: &Limits, t: &mut Table) {
    let home = c.dir.join("empty");
    init(&c.bin, &home, None);
    let mut starts = Vec::new();
    let mut rss = 0.0;
    for _ in 0..c.reps.max(10) {
        let (node, took) = Node::start(&c.bin, &home, &[]);
        starts.push(ms(took));
        thread::sleep(Duration::from_millis(200));
        rss = node.rss_mb();
    }
    t.time(
        "start-up",
        "first answer, empty home",
        stats(starts),
        false,
        Goal::AtMost(20.0),
        false,
        Some((l.bare_start_ms, "bare tiny_http server's first answer")),
    );
    t.memory(
        "RSS of an idle node (no peers, empty box)",
        rss,
        Goal::AtMost(8.0),
        (l.bare_rss_mb, "bare tiny_http server, 16 workers"),
    );
}
