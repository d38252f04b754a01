//! `dshare archive`: close the oldest messages into an epoch, through the running node
//! when there is one (it serves throughout), else on the home directly under its lock.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cli::ArchiveArgs;
use crate::exit::Code;
use crate::home::Home;
use crate::mbox::{self, Until};
use crate::net::client::NodeClient;

use super::Output;

/// An archive of millions of lines copies gigabytes: the node's answer may take this
/// long (the node goes on serving meanwhile).
const ARCHIVE_TIMEOUT: Duration = Duration::from_secs(1800);

pub fn run(home: &Home, args: &ArchiveArgs, out: Output) -> Result<Code> {
    crate::net::client::require_home(home)?;
    let until = match (args.before, args.keep_messages) {
        (Some(t), _) => Some(Until::Before(t)),
        (None, Some(n)) => Some(Until::KeepMessages(n)),
        (None, None) if args.prune => None,
        (None, None) => {
            bail!("say what to archive: --before DATE or --keep-messages N (or --prune alone)")
        }
    };
    let answer = if args.node.node.is_some() || home.node_running() {
        through_node(home, args, until)?
    } else {
        on_home(home, until, args.prune)?
    };
    print(&answer, out);
    Ok(Code::Success)
}

/// The node does the archive, so that it never stops serving (and its writer is the
/// one that swaps the box).
fn through_node(
    home: &Home,
    args: &ArchiveArgs,
    until: Option<Until>,
) -> Result<serde_json::Value> {
    let client = NodeClient::connect(home, &args.node.choice())?.with_timeout(ARCHIVE_TIMEOUT);
    let value;
    let mut params: Vec<(&str, &str)> = Vec::new();
    match until {
        Some(Until::Before(t)) => {
            value = t.to_string();
            params.push(("before", &value));
        }
        Some(Until::KeepMessages(n)) => {
            value = n.to_string();
            params.push(("keep_messages", &value));
        }
        None => {}
    }
    if args.prune {
        params.push(("prune", "1"));
    }
    let answer = client.call("/archive", &params, Some(b""))?;
    if answer.status != 200 {
        bail!(
            "the node answered HTTP {}: {}",
            answer.status,
            answer.body.trim()
        );
    }
    serde_json::from_str(&answer.body).context("the node's archive answer is malformed")
}

/// No node runs: take the home's lock (so none starts meanwhile) and do what the node
/// would.
fn on_home(home: &Home, until: Option<Until>, prune: bool) -> Result<serde_json::Value> {
    let _lock = home.lock()?;
    let path = home.box_path();
    let base = mbox::epoch::settle(&path)?;
    let identity = home.identity()?;
    let mut answer = serde_json::json!({"archived": false});
    if let Some(until) = until {
        let (store, append, tracker) = mbox::Store::open_after(&path, base.as_ref())?;
        let writer =
            mbox::Writer::start(store, append, tracker, home.identity()?, Default::default());
        if let Some(a) = mbox::archive(&writer, &identity, until)? {
            answer = a.to_json(&path);
        }
        writer.store().release_waiters();
        // As a node does at a clean stop: a checkpoint of the new box, written (or
        // waited for, if the background one is under way) before the process ends,
        // so no half-written one is left behind.
        writer.store().save_checkpoint();
    }
    if prune {
        answer["pruned"] = serde_json::json!(mbox::prune(&path)?);
    }
    Ok(answer)
}

fn print(answer: &serde_json::Value, out: Output) {
    if out.json {
        println!("{answer}");
        return;
    }
    if out.quiet {
        return;
    }
    if answer["archived"] == true {
        println!(
            "closed lines {}–{} ({} messages, signed {} – {}) into epoch {}: {}",
            answer["first_line"],
            answer["last_line"],
            answer["moved"],
            crate::time::utc(answer["first_ts"].as_u64().unwrap_or(0)),
            crate::time::utc(answer["last_ts"].as_u64().unwrap_or(0)),
            answer["epoch"],
            answer["file"].as_str().unwrap_or("")
        );
        println!(
            "final head {} (chain {})",
            answer["head_file"].as_str().unwrap_or(""),
            answer["chain"].as_str().unwrap_or("")
        );
    } else {
        println!("nothing to archive");
    }
    if let Some(pruned) = answer["pruned"].as_array().filter(|p| !p.is_empty()) {
        let list: Vec<String> = pruned.iter().map(|n| n.to_string()).collect();
        println!(
            "deleted the lines of epochs {}; their signed heads stay",
            list.join(", ")
        );
    }
}
