//! Boxes made fast: ids in order (each names the one before), signatures on every core.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use crate::client::body;

/// Writes a box of `n` messages by one new author into `path` (64 bodies in turn).
pub(crate) fn generate_box(path: &Path, n: usize) {
    let bodies: Vec<String> = (0..64)
        .map(|i| body(&format!("generated {i:02}")))
        .collect();
    crate::util::write_signed_box(path, n as u64, |s| bodies[(s % 64) as usize].clone());
}

/// The first `lines` lines of `from`, written to `to`.
pub(crate) fn prefix(from: &Path, to: &Path, lines: usize) {
    let reader = BufReader::with_capacity(1 << 20, fs::File::open(from).expect("open box"));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, fs::File::create(to).expect("box"));
    for line in reader.split(b'\n').take(lines) {
        out.write_all(&line.expect("read")).expect("write");
        out.write_all(b"\n").expect("write");
    }
    // On disk before anything is timed: gigabytes of a copy still being written back
    // would slow the fsyncs of the node measured next.
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .expect("sync the box");
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
