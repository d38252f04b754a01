//! `dshare verify`: check a box file line by line.

use anyhow::{Context, Result};

use crate::cli::VerifyArgs;
use crate::exit::Code;
use crate::hex::Hash;
use crate::home::Home;
use crate::mbox;

use super::Output;

pub fn run(home: &Home, args: &VerifyArgs, out: Output) -> Result<Code> {
    if args.path.is_none() {
        crate::net::client::require_home(home)?;
    }
    let given = args.path.as_deref().map(box_in).transpose()?;
    let path = given.clone().unwrap_or_else(|| home.box_path());
    let known: Option<Hash> = args
        .known_head
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("--head takes a chain hash: 64 lowercase hex digits")?;
    // A running node may be half way through appending a line to its own box.
    let live = match &given {
        None => home.node_running(),
        Some(p) => p
            .parent()
            .and_then(|dir| Home::resolve(Some(dir.to_path_buf())).ok())
            .is_some_and(|h| h.box_path() == *p && h.node_running()),
    };
    // Only this node closes its epochs, so only its key may sign their final heads.
    let signer = (given.is_none() || live_home_box(&path))
        .then(|| Home::resolve(path.parent().map(|d| d.to_path_buf())).ok())
        .flatten()
        .and_then(|h| h.identity().ok())
        .map(|i| i.author());
    let report = with_bar(&path, out, |progress| {
        mbox::verify_history(&path, known, live, signer, progress)
    })?;
    if given.is_none() || live_home_box(&path) {
        record(&path, &report);
    }
    if !out.json {
        // On stderr: the verdict on stdout stays the one scripts read.
        for w in &report.warnings {
            crate::warning!("{}: line {}: {}", path.display(), w.line, w.error);
        }
    }
    if args.peers {
        return with_peers(home, args, out, &report);
    }
    if out.json {
        println!("{}", serde_json::to_string(&report)?);
        return Ok(code(&report));
    }
    if report.ok {
        if !out.quiet {
            println!(
                "ok: {} messages from {} authors\nhead   {}\ndigest {}",
                report.messages, report.authors, report.head, report.digest
            );
            print_epochs(&report);
        }
    } else if let Some(first) = report.errors.first() {
        println!("{}: line {}: {}", path.display(), first.line, first.error);
        if report.error_count > 1 {
            println!(
                "({} more problems; --json lists them)",
                report.error_count - 1
            );
        }
    }
    Ok(code(&report))
}

/// One line per closed epoch, and what could not be read, after the verdict.
fn print_epochs(report: &mbox::Report) {
    for e in &report.epochs {
        println!(
            "epoch {} lines {}–{} ({} – {}): {}",
            e.epoch,
            e.first_line,
            e.last_line,
            crate::time::utc(e.first_ts),
            crate::time::utc(e.last_ts),
            match e.state {
                "checked" => "every line checked, ends at its signed head",
                _ => "lines not present; signed head checked and linked",
            }
        );
    }
    if let Some(history) = &report.history {
        println!("{history}");
    }
    for s in &report.starts {
        println!(
            "author {}: history from seq {} on (taken from peers that had retired the older messages)",
            s.author.short(12),
            s.from_seq
        );
    }
}

/// Whether `path` is the box of a dshare home (only those get a record: a copy of a
/// box checked elsewhere gets no file written beside it).
fn live_home_box(path: &std::path::Path) -> bool {
    path.parent()
        .and_then(|dir| Home::resolve(Some(dir.to_path_buf())).ok())
        .is_some_and(|h| h.box_path() == *path && h.exists())
}

/// Notes that the whole box was checked, for `doctor`: a node starting from its
/// checkpoint does not re-read the lines before it, so this is what proves them.
fn record(path: &std::path::Path, report: &mbox::Report) {
    let audit = mbox::Audit {
        at_ms: crate::time::now_ms(),
        ok: report.ok,
        lines: report.messages,
        head: report.head,
    };
    if let Err(e) = mbox::record_audit(path, &audit) {
        crate::warning!(
            "cannot record this verify in {}: {e}",
            mbox::audit_path(path).display()
        );
    }
}

fn code(report: &mbox::Report) -> Code {
    if report.ok {
        Code::Success
    } else {
        Code::Failure
    }
}

/// The box file `path` names: itself, or for a directory the box of the home it is.
fn box_in(path: &std::path::Path) -> Result<std::path::PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let inside = path.join("box.txt");
    if inside.is_file() {
        return Ok(inside);
    }
    anyhow::bail!(
        "{} is a directory without a box.txt; pass a box file, or `dshare --home DIR verify` for a home's box",
        path.display()
    )
}

/// Boxes at least this large show a progress bar (on a terminal): below it the check
/// takes well under a second.
const BAR_FROM_BYTES: u64 = 8 << 20;

/// Runs `check` with a progress bar on stderr when it is a terminal, the box is large,
/// and neither `-q` nor `--json` asked for quiet output.
fn with_bar<T>(
    path: &std::path::Path,
    out: Output,
    check: impl FnOnce(&mut dyn FnMut(u64)) -> Result<T>,
) -> Result<T> {
    use std::io::IsTerminal;
    let size = std::fs::metadata(path).map_or(0, |m| m.len());
    let show = size >= BAR_FROM_BYTES && !out.quiet && !out.json && std::io::stderr().is_terminal();
    if !show {
        return check(&mut |_| {});
    }
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "verifying {bar:30} {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let result = check(&mut |done| bar.set_position(done));
    bar.finish_and_clear();
    result
}

/// `verify --peers`: the box's own check, then this node's digest against each peer's.
fn with_peers(home: &Home, args: &VerifyArgs, out: Output, report: &mbox::Report) -> Result<Code> {
    let answer = super::peers::fetch(home, &args.node)?;
    let up: Vec<_> = answer.peers.iter().filter(|p| p.is_up()).collect();
    let all_in_sync = up.iter().all(|p| p.in_sync);
    let ok = report.ok && all_in_sync && answer.forks.is_empty();
    if out.json {
        let peers: Vec<_> = answer
            .peers
            .iter()
            .map(|p| {
                serde_json::json!({
                    "url": p.url, "state": p.state, "in_sync": p.in_sync,
                    "behind": p.behind, "ahead": p.ahead, "diverged": p.diverged,
                    "relation": super::peers::relation(p),
                })
            })
            .collect();
        let mut value = serde_json::to_value(report)?;
        value["peers"] = serde_json::json!(peers);
        value["forks"] = serde_json::json!(answer.forks);
        value["ok"] = serde_json::json!(ok);
        println!("{value}");
    } else {
        if let Some(first) = report.errors.first() {
            println!("box: line {}: {}", first.line, first.error);
        } else if !out.quiet {
            println!(
                "box: ok, {} messages, digest {}",
                report.messages, report.digest
            );
        }
        for p in &answer.peers {
            if !out.quiet || !p.in_sync {
                println!("{:<28} {:<7} {}", p.url, p.state, super::peers::relation(p));
            }
        }
        if !answer.forks.is_empty() {
            println!("forks seen: {}", answer.forks.len());
        }
    }
    Ok(if ok { Code::Success } else { Code::Failure })
}
