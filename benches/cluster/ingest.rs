//! Section `ingest`: many clients sending at once to one node.

use std::path::Path;
use std::time::Instant;

use crate::client::{Conn, body};
use crate::config::Config;
use crate::harness::{Node, load, network, wait};
use crate::limits::{Limits, around};
use crate::table::{Goal, Stats, Table, ms, num};
use crate::util::encode;

pub(crate) fn ingest(c: &Config, l: &Limits, t: &mut Table, dir: &Path, label: &str) {
    let nodes = network(&c.bin, &dir.join("ingest"), 3);
    for clients in [1usize, 16] {
        let ((rps, _), fsync) = around(dir, || {
            load(&nodes[0].url, clients, c.ingest_secs, |cl, i| {
                nodes[0].target(
                    "/send",
                    &format!("msg={}", encode(&body(&format!("load {cl} {i}")))),
                )
            })
        });
        let stopped = Instant::now();
        let mut c0 = nodes[0].conn();
        let total = nodes[0].messages(&mut c0);
        let mut conns: Vec<Conn> = nodes.iter().map(Node::conn).collect();
        wait("every peer to hold the load", || {
            nodes
                .iter()
                .zip(conns.iter_mut())
                .all(|(n, c)| n.messages(c) >= total)
                .then_some(())
        });
        let settle = ms(stopped.elapsed());
        // Each message is signed here and checked by both peers, on these same cores.
        let cpu = l.cpu_rate(2.0);
        let (ceiling, how, goal) = if clients == 1 {
            // One client sends its next request only after the answer to the last,
            // and each answer waits for its own signature and fsync: the costs add up.
            (
                1000.0 / (l.bare_lat.median + l.sign_ms() + fsync.median),
                "1 / (bare HTTP + sign + fsync): one request at a time",
                Goal::AtLeast(6000.0),
            )
        } else {
            (
                l.bare_16_rps.min(cpu),
                "min(bare 16 clients, CPU)",
                Goal::AtLeast(30_000.0),
            )
        };
        t.rate(
            "ingest",
            format!("durable sends accepted at node 0 of 3, {clients} keep-alive client(s){label}"),
            rps,
            "msgs/s",
            goal,
            Some((ceiling, how)),
        );
        t.time(
            "ingest",
            format!("… then until both peers hold all {total} ({clients} client(s)){label}"),
            Stats {
                median: settle,
                p99: settle,
            },
            false,
            Goal::AtMost(1000.0),
            false,
            None,
        );
        if clients == 16 {
            t.notes.push(format!(
                "ingest with 16 clients{label}: {:.0}% of the bare tiny_http server's 16-client rate ({} req/s). CPU limit: one signature and two peer verifications (in batches) per message, over the cores as measured = {} msgs/s. fdatasync around this run: {} ms median.",
                100.0 * rps / l.bare_16_rps,
                num(l.bare_16_rps),
                num(cpu),
                num(fsync.median),
            ));
        }
    }
}
