//! Reading closed epochs by line number of the whole history, for a follower that was
//! behind when an archive moved its lines out of the live box (a hook's cursor,
//! `/log?since=`): it goes on from the epoch file instead of skipping what it had not
//! read yet. Epoch files have no index; a follower reads forward, so the place the
//! last page ended is remembered and the next page starts there without a rescan.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};

use crate::message::Message;

use super::epoch;
use super::format::parse_line;

/// The longest line read from an epoch file: as for a record of the live box, a line
/// of the largest message is well under this, and a damaged file must not make a read
/// allocate without bound.
const MAX_LINE: u64 = 1 << 24;

/// Where the last page read from an epoch ended: the next page of a reader going
/// forward starts at `offset` instead of counting lines from the file's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Resume {
    epoch: u64,
    /// Lines of the whole history up to the end of that page.
    line: u64,
    offset: u64,
}

/// Up to `limit` messages after the first `after` lines of the history, when those
/// lines are in closed epochs, and the line the page ends at. The page never runs
/// past the epoch it starts in. An empty page means no epoch present here holds line
/// `after + 1`; the returned line is then where to go on (past any epoch whose lines
/// were pruned), which may be beyond `after`: the caller reads the live box from there.
pub(super) fn since(
    box_path: &Path,
    after: u64,
    limit: usize,
    resume: &Mutex<Option<Resume>>,
) -> Result<(Vec<Message>, u64)> {
    let mut after = after;
    for e in epoch::list(box_path)? {
        if e.head.lines <= after {
            continue;
        }
        if !e.lines_present {
            // Pruned: what it held is gone from this node; the caller sees the jump.
            after = e.head.lines;
            continue;
        }
        let hint = *resume.lock().expect("epoch resume lock");
        let start = hint.filter(|r| r.epoch == e.n && r.line == after);
        let want = usize::try_from(e.head.lines - after)
            .unwrap_or(usize::MAX)
            .min(limit);
        let path = epoch::epoch_box(box_path, e.n);
        let (messages, offset) = read_page(&path, after + 1 - e.head.first_line, start, want)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let next = after + messages.len() as u64;
        *resume.lock().expect("epoch resume lock") = Some(Resume {
            epoch: e.n,
            line: next,
            offset,
        });
        return Ok((messages, next));
    }
    Ok((Vec::new(), after))
}

/// `want` lines of an epoch file after its first `skip` lines (or from `start`'s
/// offset, which is at that line), and the byte offset after them.
fn read_page(
    path: &Path,
    skip: u64,
    start: Option<Resume>,
    want: usize,
) -> Result<(Vec<Message>, u64)> {
    let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
    let mut offset = 0u64;
    match start {
        Some(r) => {
            file.seek(SeekFrom::Start(r.offset))?;
            offset = r.offset;
        }
        None => {
            let mut skipped = 0u64;
            while skipped < skip {
                let buf = file.fill_buf()?;
                if buf.is_empty() {
                    bail!("the file ends before line {}", skip + 1);
                }
                let (used, lines) = count_lines(buf, skip - skipped);
                skipped += lines;
                offset += used as u64;
                file.consume(used);
            }
        }
    }
    let mut messages = Vec::with_capacity(want.min(4096));
    let mut raw = Vec::new();
    while messages.len() < want {
        raw.clear();
        let n = (&mut file).take(MAX_LINE).read_until(b'\n', &mut raw)?;
        if n == 0 || raw.last() != Some(&b'\n') {
            bail!(
                "line {} is missing or cut short",
                skip + messages.len() as u64 + 1
            );
        }
        offset += n as u64;
        let text = std::str::from_utf8(&raw[..n - 1]).context("a line is not UTF-8")?;
        let line = parse_line(text)
            .map_err(|why| anyhow::anyhow!("line {}: {why}", skip + messages.len() as u64 + 1))?;
        messages.push(line.message);
    }
    Ok((messages, offset))
}

/// How many bytes of `buf` hold its first `most` lines (all of it when fewer), and how
/// many lines that is.
fn count_lines(buf: &[u8], most: u64) -> (usize, u64) {
    let mut lines = 0;
    for (i, &b) in buf.iter().enumerate() {
        if b == b'\n' {
            lines += 1;
            if lines == most {
                return (i + 1, lines);
            }
        }
    }
    (buf.len(), lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_up_to_the_one_asked_for() {
        assert_eq!(count_lines(b"a\nb\nc\n", 2), (4, 2));
        assert_eq!(count_lines(b"a\nb", 5), (3, 1));
        assert_eq!(count_lines(b"", 1), (0, 0));
    }
}
