//! `dshare verify` of a whole history: each closed epoch whose lines are present, the
//! links between epochs, and the live box, each from the final head before it; and,
//! for epochs whose lines were deleted, what is proved without them.

use std::path::Path;

use anyhow::Result;

use crate::hex::Hash;
use crate::message::AuthorId;

use super::epoch::{self, FinalHead};
use super::track::Tracker;
use super::verify::{AuthorStart, EpochReport, Report, verify_lines};

/// Checks the box at `box_path` with the epochs before it. A box without epochs is
/// checked exactly as before. `signer`, when known, is the only key a final head may
/// be signed with (the home's own: no one else closes its epochs).
pub fn verify_history(
    box_path: &Path,
    known_head: Option<Hash>,
    live: bool,
    signer: Option<AuthorId>,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    let (epochs, starts) =
        match epoch::list(box_path).and_then(|e| Ok((e, epoch::read_starts(box_path)?))) {
            Ok(found) => found,
            Err(e) => return Ok(refused(format!("{e:#}"))),
        };
    if epochs.is_empty() && starts.is_empty() {
        return super::verify_file_with_progress(box_path, known_head, live, progress);
    }
    let with_starts = |mut t: Tracker| {
        t.starts = starts.clone();
        t
    };
    let mut listed: Vec<AuthorStart> = starts
        .iter()
        .map(|(author, h)| AuthorStart {
            author: *author,
            from_seq: h.seq + 1,
        })
        .collect();
    listed.sort_unstable_by_key(|s| s.author);
    if epochs.is_empty() {
        let (mut report, _) = verify_lines(
            box_path,
            with_starts(Tracker::default()),
            known_head,
            live,
            true,
            progress,
        )?;
        report.starts = listed;
        return Ok(report);
    }
    let mut before = with_starts(Tracker::default());
    let mut found: Vec<(EpochReport, Option<Report>)> = Vec::new();
    for e in &epochs {
        let state = if e.lines_present {
            "checked"
        } else {
            "head only"
        };
        let lines = e
            .lines_present
            .then(|| check_epoch(box_path, e.n, &before, &e.head))
            .transpose()?;
        found.push((epoch_report(&e.head, state), lines));
        before = with_starts(e.head.tracker());
    }
    let last = &epochs.last().expect("at least one epoch").head;
    let known_in_epochs = known_head.is_some_and(|k| epochs.iter().any(|e| e.head.chain == k));
    let live_known = known_head.filter(|_| !known_in_epochs);
    let (mut report, _) = verify_lines(
        box_path,
        with_starts(last.tracker()),
        live_known,
        live,
        true,
        progress,
    )?;
    report.starts = listed;
    for e in &epochs {
        if let Some(s) = signer.filter(|s| *s != e.head.signer) {
            report_error(
                &mut report,
                e.head.lines,
                format!(
                    "the final head of epoch {} is signed by {}, not by this node ({})",
                    e.n,
                    e.head.signer.short(12),
                    s.short(12)
                ),
            );
        }
    }
    for (_, lines) in &found {
        if let Some(r) = lines {
            absorb(&mut report, r);
        }
    }
    report.history = missing_history(&epochs);
    report.epochs = found.into_iter().map(|(e, _)| e).collect();
    Ok(report)
}

/// Verifies an epoch's lines from the head before it and compares where they end with
/// its own final head.
fn check_epoch(box_path: &Path, n: u64, before: &Tracker, head: &FinalHead) -> Result<Report> {
    let path = epoch::epoch_box(box_path, n);
    let (mut report, after) = verify_lines(&path, before.clone(), None, false, false, &mut |_| {})?;
    let mut heads: Vec<_> = after.heads.iter().map(|(a, h)| (*a, *h)).collect();
    heads.sort_unstable_by_key(|(a, _)| *a);
    let ends_at_head = after.lines == head.lines
        && after.chain == head.chain
        && after.max_clock == head.max_clock
        && heads == head.heads;
    if !ends_at_head {
        report_error(
            &mut report,
            after.lines,
            format!(
                "{}: its lines end at line {} with chain {}, but its final head {} says line {} with chain {} (or other heads): the epoch's lines or its head were altered",
                path.display(),
                after.lines,
                after.chain.short(16),
                epoch::epoch_head(box_path, n).display(),
                head.lines,
                head.chain.short(16)
            ),
        );
    }
    Ok(report)
}

fn epoch_report(head: &FinalHead, state: &'static str) -> EpochReport {
    EpochReport {
        epoch: head.epoch,
        first_line: head.first_line,
        last_line: head.lines,
        first_ts: head.first_ts,
        last_ts: head.last_ts,
        chain: head.chain,
        state,
    }
}

/// "history before … not present": the deleted epochs are always the oldest ones a
/// node prunes, but any epoch may be missing, so each gap is named.
fn missing_history(epochs: &[epoch::Epoch]) -> Option<String> {
    let missing: Vec<&epoch::Epoch> = epochs.iter().filter(|e| !e.lines_present).collect();
    let last = missing.last()?;
    let oldest_first = missing.len() == last.n as usize;
    Some(if oldest_first {
        format!(
            "history before {} (lines 1–{}, epochs 1–{}) not present; continuity from its signed head",
            crate::time::utc(last.head.last_ts),
            last.head.lines,
            last.n
        )
    } else {
        let names: Vec<String> = missing
            .iter()
            .map(|e| format!("{} (lines {}–{})", e.n, e.head.first_line, e.head.lines))
            .collect();
        format!(
            "the lines of epochs {} not present; continuity from their signed heads",
            names.join(", ")
        )
    })
}

/// Where the history held at `box_path` begins, from its final heads alone; the live
/// box's first line (line `base + 1`, its `ts` as `live_first_ts`) when no epoch's
/// lines are here.
pub fn history_start(
    box_path: &Path,
    live_first_ts: Option<u64>,
) -> Result<crate::api::status::HistoryStart> {
    let epochs = epoch::list(box_path)?;
    let base = epochs.last().map_or(0, |e| e.head.lines);
    let first_present = epochs.iter().find(|e| e.lines_present);
    let (first_line, first_ts) = match first_present {
        Some(e) => (e.head.first_line, Some(e.head.first_ts)),
        None => (base + 1, live_first_ts),
    };
    Ok(crate::api::status::HistoryStart {
        first_line,
        first_ts,
        box_first_line: base + 1,
        epochs: epochs.len() as u64,
        epochs_with_lines: epochs.iter().filter(|e| e.lines_present).count() as u64,
        pruned_lines: epochs
            .iter()
            .filter(|e| !e.lines_present)
            .map(|e| e.head.lines + 1 - e.head.first_line)
            .sum(),
    })
}

/// Adds the errors and counts of an epoch's check to the whole report.
fn absorb(report: &mut Report, part: &Report) {
    report.ok &= part.ok;
    report.messages += part.messages;
    report.error_count += part.error_count;
    let room = 1000usize.saturating_sub(report.errors.len());
    report.errors.extend(part.errors.iter().take(room).cloned());
    report.warnings.extend(part.warnings.iter().cloned());
    report.errors.sort_by_key(|e| e.line);
}

fn report_error(report: &mut Report, line: u64, error: String) {
    report.ok = false;
    report.error_count += 1;
    report.errors.push(super::LineReport { line, error });
}

/// The report of a history whose epochs cannot be followed at all.
fn refused(error: String) -> Report {
    let mut report = Report::empty_at(crate::chain::GENESIS);
    report_error(&mut report, 0, error);
    report
}
