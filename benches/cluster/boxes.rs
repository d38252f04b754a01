//! Boxes made fast: ids in order (each names the one before), signatures on every core.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use dshare::identity::Identity;
use dshare::message::{self, Draft, Message};

use crate::client::body;

/// Writes a box of `n` messages by one new author into `path`, in blocks.
pub(crate) fn generate_box(path: &Path, n: usize) {
    let key = Identity::generate();
    let author = key.author();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path).expect("box"));
    let mut prev: Option<dshare::hex::Hash> = None;
    let mut chain = dshare::chain::GENESIS;
    let ts = dshare::time::now_ms();
    let bodies: Vec<String> = (0..64)
        .map(|i| body(&format!("generated {i:02}")))
        .collect();
    let block = 16_384;
    let mut seq = 1u64;
    while (seq as usize) <= n {
        let end = (seq as usize + block).min(n + 1) as u64;
        let mut drafts = Vec::with_capacity(block);
        for s in seq..end {
            let d = Draft {
                author,
                seq: s,
                prev,
                clock: s,
                ts,
                body: &bodies[(s % 64) as usize],
            };
            let id = message::sha256(&message::canonical(&d));
            prev = Some(id);
            drafts.push((d, id));
        }
        let sigs = dshare::par::map(&drafts, |(d, _)| key.sign(&message::canonical(d)));
        for ((d, id), sig) in drafts.into_iter().zip(sigs) {
            let m = Message {
                id,
                author,
                seq: d.seq,
                prev: d.prev,
                clock: d.clock,
                ts,
                body: d.body.to_string(),
                sig,
            };
            chain = dshare::chain::step(&chain, &id);
            out.write_all(dshare::mbox::encode_line(&chain, &m).as_bytes())
                .expect("write");
            out.write_all(b"\n").expect("write");
        }
        seq = end;
    }
    out.flush().expect("flush");
}

/// The first `lines` lines of `from`, written to `to`.
pub(crate) fn prefix(from: &Path, to: &Path, lines: usize) {
    let reader = BufReader::with_capacity(1 << 20, fs::File::open(from).expect("open box"));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(to).expect("box"));
    for line in reader.split(b'\n').take(lines) {
        out.write_all(&line.expect("read")).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
}

pub(crate) fn count_lines(path: &Path) -> usize {
    let mut n = 0;
    let mut r = BufReader::with_capacity(1 << 20, fs::File::open(path).expect("open"));
    loop {
        let buf = r.fill_buf().expect("read");
        if buf.is_empty() {
            return n;
        }
        n += buf.iter().filter(|&&b| b == b'\n').count();
        let len = buf.len();
        r.consume(len);
    }
}
