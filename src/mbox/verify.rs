//! `dshare verify`: every check on every line of a box file, reporting each bad line.

use std::fs::File;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::hex::Hash;
use crate::message::AuthorId;

use super::format::{Line, parse_line};
use super::head::{HeadRecord, head_path, read_head_record};
use super::track::Tracker;

/// More errors than this are counted but not listed: one cut in the middle of a big
/// box would otherwise list a million lines.
const MAX_LISTED: usize = 1000;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LineReport {
    pub line: u64,
    pub error: String,
}

/// The outcome of checking a whole box (the `--json` form of `dshare verify`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub messages: u64,
    pub authors: u64,
    pub head: Hash,
    pub digest: Hash,
    pub errors: Vec<LineReport>,
    /// Errors found, listed or not.
    pub error_count: u64,
    /// What the check could not prove, or lines that break a rule but not the box's
    /// integrity (a clock over the cap, signed before clocks were bound to wall time);
    /// not errors. The first [`MAX_LISTED`].
    pub warnings: Vec<LineReport>,
    /// The closed epochs before the live box, when there are any (docs/FORMAT.md §12).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub epochs: Vec<EpochReport>,
    /// What the check could not read because it is no longer on this node, in words:
    /// "history before … not present; continuity from its signed head".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<String>,
    /// Authors whose history on this node begins above seq 1 without an epoch of its
    /// own (taken from peers that had retired the older messages).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub starts: Vec<AuthorStart>,
}

/// An author whose history on this node begins above seq 1 (docs/FORMAT.md §12).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuthorStart {
    pub author: AuthorId,
    pub from_seq: u64,
}

/// One closed epoch in the `--json` form of `verify`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EpochReport {
    pub epoch: u64,
    pub first_line: u64,
    pub last_line: u64,
    pub first_ts: u64,
    pub last_ts: u64,
    /// The chain hash of its last line, from its signed final head.
    pub chain: Hash,
    /// `checked`: its lines are present and end exactly at its final head;
    /// `head only`: its lines were deleted, its signed head links the history.
    pub state: &'static str,
}

impl Report {
    /// A report of nothing checked yet, the chain at `chain`.
    pub(super) fn empty_at(chain: Hash) -> Report {
        Report {
            ok: true,
            messages: 0,
            authors: 0,
            head: chain,
            digest: chain,
            errors: Vec::new(),
            error_count: 0,
            warnings: Vec::new(),
            epochs: Vec::new(),
            history: None,
            starts: Vec::new(),
        }
    }

    fn error(&mut self, line: u64, error: impl Into<String>) {
        self.ok = false;
        self.error_count += 1;
        if self.errors.len() < MAX_LISTED {
            self.errors.push(LineReport {
                line,
                error: error.into(),
            });
        }
    }

    fn warn(&mut self, line: u64, warning: String) {
        if self.warnings.len() < MAX_LISTED {
            self.warnings.push(LineReport {
                line,
                error: warning,
            });
        }
    }
}

/// What `verify` says of a line whose clock is over the cap, when that is all that is
/// wrong with it.
fn over_cap_warning(m: &crate::message::Message) -> String {
    format!(
        "{}: the line is intact (id, signature and chain check) but breaks the clock rule; it was signed before clocks were bound to wall time, peers refuse it, and author {} can sign nothing after it",
        crate::message::Invalid::ClockOverCap(m.clock),
        m.author.short(12)
    )
}

/// Checks format, id, signature, chain and per-author continuity of every line of
/// `path`, then compares the end of the box with the head file beside it (if any) and
/// with `known_head` (if given). With `live` (a node is appending to this file), an
/// unfinished last line is the append in progress, not damage. `Err` only when the
/// file cannot be read at all.
pub fn verify_file(path: &Path, known_head: Option<Hash>, live: bool) -> Result<Report> {
    verify_file_with_progress(path, known_head, live, &mut |_| {})
}

/// [`verify_file`], calling `progress` with the bytes read so far after each line
/// (for a progress bar on a large box).
pub fn verify_file_with_progress(
    path: &Path,
    known_head: Option<Hash>,
    live: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    verify_lines(path, Tracker::default(), known_head, live, true, progress).map(|(r, _)| r)
}

/// [`verify_file_with_progress`] of a file whose first line follows `start` (the
/// final head of the epoch before it), returning the checker's state after its last
/// line too. Without `head_record` no head file beside it is read (an epoch's file
/// has its final head there instead).
pub(super) fn verify_lines(
    path: &Path,
    start: Tracker,
    known_head: Option<Hash>,
    live: bool,
    head_record: bool,
    progress: &mut dyn FnMut(u64),
) -> Result<(Report, Tracker)> {
    // The head file first: the box only grows, so the box read after it holds at least
    // the lines it records, even while a node appends.
    let record = match read_head_record(&head_path(path)) {
        _ if !head_record => HeadRecord::Missing,
        // The node rewrites the record in place: a read that met a write half done
        // gets a clean one on a second try.
        HeadRecord::Unreadable(_) if live => read_head_record(&head_path(path)),
        record => record,
    };
    let recorded = match &record {
        HeadRecord::Recorded { lines, head } => Some((*lines, *head)),
        HeadRecord::Missing | HeadRecord::Unreadable(_) => None,
    };
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut linker = Linker {
        line_no: start.lines,
        report: Report::empty_at(start.chain),
        tracker: start,
        live,
        resync: false,
        recorded_lines: recorded.map(|(lines, _)| lines),
        chain_at_recorded: None,
        known_head,
        known_seen: known_head.is_none(),
        bytes: 0,
        progress,
    };
    // Parsing a line, recomputing its id and checking its signature need no other
    // line: that runs on every core, a block of lines at a time, while this thread
    // links the lines of the blocks before (chain hash, seq, prev, clock) in file
    // order, and a thread of its own reads the blocks after. The window of blocks in
    // flight bounds the memory: with 2 cores, 4 blocks of 1 MiB and their lines.
    let mut failure = None;
    crate::par::ordered(
        crate::par::cores() + 2,
        super::lines::Blocks::new(&file),
        |block| block.map(|block| check_block(&block)),
        |checked| match checked {
            Ok((bytes, lines)) => linker.block(bytes, lines),
            Err(e) => {
                failure = Some(e);
                false
            }
        },
    );
    if let Some(e) = failure {
        return Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display())));
    }
    let Linker {
        mut report,
        tracker,
        line_no,
        chain_at_recorded,
        known_seen,
        ..
    } = linker;
    if let Some((lines, head)) = recorded {
        if lines > line_no {
            report.error(
                line_no + 1,
                format!(
                    "the box ends after line {line_no} but {} records {lines} lines: lines were cut from the end",
                    head_path(path).display()
                ),
            );
        } else if lines > 0 && chain_at_recorded != Some(head) {
            report.error(
                lines,
                format!(
                    "chain hash differs from the head recorded in {}",
                    head_path(path).display()
                ),
            );
        }
    }
    match record {
        HeadRecord::Unreadable(why) => report.error(
            line_no + 1,
            format!(
                "{} is unreadable ({why}): whether lines were cut from the end of the box cannot be checked. The {line_no} lines themselves passed every check; if you trust them, check the end against a known head (--head) or peers (--peers), then remove the file (a node writes a new one)",
                head_path(path).display()
            ),
        ),
        HeadRecord::Missing if known_head.is_none() && line_no > 0 && head_record => {
            report.warn(
                line_no + 1,
                format!(
                    "no head record ({} is missing or empty): lines cut from the end of the box cannot be detected; pass --head HASH or use --peers",
                    head_path(path).display()
                ),
            );
        }
        HeadRecord::Missing | HeadRecord::Recorded { .. } => {}
    }
    if !known_seen {
        report.error(
            line_no + 1,
            format!(
                "the known head {} is not in this box: lines were cut or rewritten",
                known_head.map(|h| h.to_hex()).unwrap_or_default()
            ),
        );
    }
    report.authors = tracker.heads.len() as u64;
    report.head = tracker.chain;
    report.digest = tracker.digest();
    Ok((report, tracker))
}

/// The checks that link lines, in file order, and what they found so far.
struct Linker<'a> {
    tracker: Tracker,
    report: Report,
    /// Lines taken, readable or not.
    line_no: u64,
    live: bool,
    /// The line before was unreadable.
    resync: bool,
    /// The lines the head file beside the box records, and the chain hash at that line.
    recorded_lines: Option<u64>,
    chain_at_recorded: Option<Hash>,
    known_head: Option<Hash>,
    known_seen: bool,
    /// Bytes of the file taken, for `progress`.
    bytes: u64,
    progress: &'a mut dyn FnMut(u64),
}

impl Linker<'_> {
    /// Takes the next block of `bytes` bytes of the file, checked line by line;
    /// `false` once a line ends the check (a torn last line).
    fn block(&mut self, bytes: u64, lines: Vec<Alone>) -> bool {
        self.bytes += bytes;
        (self.progress)(self.bytes);
        for alone in lines {
            if !self.line(alone) {
                return false;
            }
        }
        true
    }

    /// Takes the next line; `false` if it ends the check.
    fn line(&mut self, alone: Alone) -> bool {
        self.line_no += 1;
        match alone {
            Alone::Torn => {
                if !self.live {
                    self.report.error(
                        self.line_no,
                        "line has no newline at the end (torn write or truncated file)",
                    );
                }
                return false;
            }
            Alone::Unreadable(e) => {
                self.report.error(self.line_no, e);
                self.resync = true;
            }
            Alone::Line(line, verdict) => {
                self.judge(&line, verdict);
                self.resync = false;
                self.tracker.advance(&line);
                self.report.messages += 1;
                if Some(self.line_no) == self.recorded_lines {
                    self.chain_at_recorded = Some(line.chain);
                }
                if self.known_head == Some(line.chain) {
                    self.known_seen = true;
                }
            }
        }
        true
    }

    /// Reports what is wrong with a readable line, on its own (`verdict`) or after
    /// the lines before it.
    fn judge(&mut self, line: &Line, verdict: Result<(), crate::message::Invalid>) {
        let (report, line_no) = (&mut self.report, self.line_no);
        if verdict.is_ok() && line.message.clock > crate::message::MAX_COUNTER {
            report.warn(line_no, over_cap_warning(&line.message));
        }
        if let Err(e) = verdict {
            report.error(line_no, e.to_string());
        } else if let Err(e) = self.tracker.check(line) {
            // After an unparseable line the chain cannot be followed; pick it up again
            // from this line rather than report every later line.
            let chain_only = matches!(e, super::LineError::Chain { .. });
            if !(self.resync && chain_only) {
                report.error(line_no, e.to_string());
            }
        }
    }
}

/// The size of a block from [`super::lines::Blocks`] and what each of its lines is
/// on its own.
fn check_block(block: &[u8]) -> (u64, Vec<Alone>) {
    (block.len() as u64, check_alone(&super::lines::split(block)))
}

/// What can be said of one line on its own.
enum Alone {
    /// No line feed at the end: the last line of the file, torn or still being written.
    Torn,
    /// Not UTF-8, or not a box record in canonical form.
    Unreadable(String),
    /// A record, and the result of [`crate::message::Message::check`] (limits, id,
    /// signature).
    Line(Box<Line>, Result<(), crate::message::Invalid>),
}

/// [`Alone`] for each line of a run, the run's signatures checked as one batch.
fn check_alone(raw: &[&[u8]]) -> Vec<Alone> {
    let parsed: Vec<Result<Line, Alone>> = raw.iter().map(|raw| parse_alone(raw)).collect();
    let mut verdicts = crate::message::check_run(
        parsed
            .iter()
            .filter_map(|p| Some(&p.as_ref().ok()?.message)),
        crate::message::ClockCap::Tolerate,
    )
    .into_iter();
    parsed
        .into_iter()
        .map(|p| match p {
            Ok(line) => Alone::Line(
                Box::new(line),
                verdicts.next().expect("one verdict per line"),
            ),
            Err(alone) => alone,
        })
        .collect()
}

fn parse_alone(raw: &[u8]) -> Result<Line, Alone> {
    let Some(text) = raw.strip_suffix(b"\n") else {
        return Err(Alone::Torn);
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return Err(Alone::Unreadable("line is not valid UTF-8".into()));
    };
    parse_line(text).map_err(Alone::Unreadable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    /// `n` box lines of two authors in turn, each about 60 kB: a few make a block.
    fn box_lines(n: u64) -> Vec<String> {
        let authors = [Identity::generate(), Identity::generate()];
        let body = "x".repeat(60_000);
        let mut t = Tracker::default();
        (0..n)
            .map(|i| {
                let line = t.sign_next(&authors[(i % 2) as usize], i + 1, i, &body);
                format!("{}\n", crate::mbox::encode_line(&line.chain, &line.message))
            })
            .collect()
    }

    /// Errors in blocks far apart, more blocks than are in flight at once, and a torn
    /// last line: each is reported at its own line, in order, and the progress counts
    /// the bytes of the file in order up to the torn line.
    #[test]
    fn errors_in_many_blocks_keep_their_line_numbers() {
        let mut lines = box_lines(240);
        // Line 40 unreadable: line 41 picks the chain up again without an error of its
        // own, and line 42, by the author of line 40, reads as a gap in its seqs.
        lines[39] = "not a record\n".into();
        // Line 150: a body edited, so its id no longer matches.
        lines[149] = lines[149].replacen("xxxx", "xxxy", 1);
        // Line 230 moved after line 231.
        lines.swap(229, 230);
        let torn = "{\"chain\":";
        let text = lines.concat() + torn;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box.txt");
        std::fs::write(&path, &text).unwrap();
        let mut seen = Vec::new();
        let report = verify_file_with_progress(&path, None, false, &mut |b| seen.push(b)).unwrap();
        let at: Vec<u64> = report.errors.iter().map(|e| e.line).collect();
        assert_eq!(
            at,
            [40, 42, 150, 230, 231, 232, 241],
            "{:#?}",
            report.errors
        );
        assert!(
            report.errors[1]
                .error
                .contains("should have seq 20 here, found seq 21")
        );
        assert!(
            report.errors[2].error.contains("id"),
            "{:?}",
            report.errors[2]
        );
        assert!(report.errors[6].error.contains("no newline"));
        assert_eq!(report.messages, 239);
        assert!(
            seen.len() > 2 * (crate::par::cores() + 2),
            "{} blocks",
            seen.len()
        );
        assert!(seen.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(seen.last().copied(), Some(text.len() as u64));
        // A node appending to the box: the unfinished line is not an error.
        let live = verify_lines(&path, Tracker::default(), None, true, true, &mut |_| {})
            .unwrap()
            .0;
        assert_eq!(live.errors[..], report.errors[..6]);
    }
}
