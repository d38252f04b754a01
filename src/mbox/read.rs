//! Reading a box without a node: for `dshare log` when no node is running.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

use anyhow::{Context, Result};

use crate::message::Message;

use super::format::parse_line;

/// Every well-formed message of the box at `path`, in conversation order
/// (clock, author, seq). Bad lines are skipped with a warning: `log` shows what can be
/// read, and `verify` is the command that judges the file.
pub fn read_messages(path: &Path) -> Result<Vec<Message>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        match std::str::from_utf8(&line)
            .map_err(|e| e.to_string())
            .and_then(parse_line)
        {
            Ok(l) => out.push(l.message),
            Err(e) => crate::warning!("{} line {}: {e}; skipped", path.display(), i + 1),
        }
    }
    sort_conversation(&mut out);
    Ok(out)
}

/// The order every node shows: clock (docs/FORMAT.md §6), then author, then seq.
pub fn sort_conversation(messages: &mut [Message]) {
    messages.sort_by_key(|m| (m.clock, m.author, m.seq));
}
