//! `dshare verify`: check a box file line by line.

use anyhow::{Context, Result};

use crate::cli::VerifyArgs;
use crate::exit::Code;
use crate::hex::Hash;
use crate::home::Home;
use crate::mbox;

use super::Output;

pub fn run(home: &Home, args: &VerifyArgs, out: Output) -> Result<Code> {
    let path = args.path.clone().unwrap_or_else(|| home.box_path());
    let known: Option<Hash> = args
        .known_head
        .as_deref()
        .map(str::parse)
        .transpose()
        .context("--head takes a chain hash: 64 lowercase hex digits")?;
    // A running node may be half way through appending a line to its own box.
    let live = args.path.is_none() && home.node_running();
    let report = mbox::verify_file(&path, known, live)?;
    if out.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if report.ok {
        if !out.quiet {
            println!(
                "ok: {} messages from {} authors\nhead   {}\ndigest {}",
                report.messages, report.authors, report.head, report.digest
            );
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
    Ok(if report.ok {
        Code::Success
    } else {
        Code::Failure
    })
}
