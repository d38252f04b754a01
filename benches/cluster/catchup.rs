//! Section `catchup`: a new node catching up on a box of many messages.

use std::fs;
use std::path::Path;
use std::time::Instant;

use crate::boxes::prefix;
use crate::config::Config;
use crate::harness::{Node, init, invite, wait};
use crate::limits::{Limits, batch_verify_rate};
use crate::table::{Goal, Table, ms, num, stats};

pub(crate) fn catchup(c: &Config, l: &Limits, t: &mut Table, source: &Path) {
    for &size in &c.catchup {
        let dir = c.dir.join(format!("catchup{size}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        let a = dir.join("a");
        init(&c.bin, &a, None);
        prefix(source, &a.join("box.txt"), size);
        let (node_a, _) = Node::start(&c.bin, &a, &[]);
        let inv = invite(&c.bin, &a, &node_a.url);
        let mut times = Vec::new();
        // A page of 500 is checked in one batch a core.
        let batch = 500usize.div_ceil(l.cores);
        let before = batch_verify_rate(l.cores, batch);
        for r in 0..c.reps {
            let b = dir.join(format!("b{r}"));
            init(&c.bin, &b, Some(&inv));
            let t0 = Instant::now();
            let (node_b, _) = Node::start(&c.bin, &b, &[]);
            let mut conn = node_b.conn();
            wait("the new node to catch up", || {
                (node_b.messages(&mut conn) >= size as u64).then_some(())
            });
            times.push(ms(t0.elapsed()));
        }
        let s = stats(times);
        let verify_now = (before + batch_verify_rate(l.cores, batch)) / 2.0;
        let floor = size as f64 / verify_now * 1000.0;
        t.time(
            "catch-up",
            format!(
                "new node joins a network holding {} messages, until in sync ({} msgs/s)",
                num(size as f64),
                num(size as f64 / s.median * 1000.0)
            ),
            s,
            false,
            Goal::AtMost(if size <= 10_000 { 300.0 } else { 3000.0 }),
            false,
            Some((
                floor,
                "every signature checked in batches, all cores, around this row",
            )),
        );
    }
}
