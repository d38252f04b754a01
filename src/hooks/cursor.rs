//! A hook's cursor: which messages it has handled, in a small JSON file in the home
//! (`<home>/cursors/NAME`), replaced atomically after every hook run.
//!
//! The handled messages are recorded twice:
//! - as a **position** in this node's box (the first `position` lines, in arrival
//!   order) with the id of the message at that line: the fast way to go on, with
//!   `GET /log?since=position`;
//! - as **heads**, the highest seq handled for each author. Every author's messages
//!   enter a box in seq order with no gap, so "the first K lines" is exactly "for each
//!   author, seqs 1 to heads[author]". This does not depend on any box's line order.
//!
//! When the position no longer holds the recorded id (the box was rebuilt from peers
//! in another order, or the cursor is used against another node), the runner reads
//! the box from its first line and skips every message the heads say was handled:
//! nothing is run twice and nothing is missed.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::hex::Hash;
use crate::home::Home;
use crate::message::{AuthorId, Message};

/// What a cursor records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Lines of the box handled, in its arrival order.
    pub position: u64,
    /// The id of the message at line `position` (none before the first line).
    pub id: Option<Hash>,
    /// For each author, the highest seq handled (run, skipped by a filter, or given
    /// up on with `--keep-going`).
    pub heads: BTreeMap<AuthorId, u64>,
    /// A message handed to the hook whose success was not recorded: the runner
    /// stopped (or was killed) while the hook ran, or the hook failed. It is run again
    /// with `DSHARE_REDELIVERED=1`.
    pub pending: Option<Hash>,
    /// Milliseconds since the Unix epoch of the last update.
    pub updated: u64,
}

impl State {
    /// True when the heads say `m` was handled already.
    pub fn handled(&self, m: &Message) -> bool {
        self.heads.get(&m.author).is_some_and(|&seq| m.seq <= seq)
    }

    /// Records `m`, found at box line `line`, as handled.
    pub fn advance(&mut self, m: &Message, line: u64) {
        self.position = line;
        self.id = Some(m.id);
        let head = self.heads.entry(m.author).or_insert(0);
        *head = (*head).max(m.seq);
    }
}

/// A named cursor, locked for the life of this value: two runners on one cursor
/// would run each message twice.
pub struct Cursor {
    pub name: String,
    path: PathBuf,
    _lock: File,
}

/// Names are file names in `<home>/cursors`: letters, digits, `.`, `_`, `-`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && !name.ends_with(".lock")
        && !name.ends_with(".tmp")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !ok {
        bail!(
            "{name:?} is not a cursor name: use up to 64 letters, digits, `.`, `_` or `-`, not starting with `.`"
        );
    }
    Ok(())
}

impl Cursor {
    /// Opens (and locks) the cursor `name` of `home`; the state it holds, if it
    /// exists already.
    pub fn open(home: &Home, name: &str) -> Result<(Cursor, Option<State>)> {
        check_name(name)?;
        let dir = home.dir().join("cursors");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let path = dir.join(name);
        let lock_path = dir.join(format!("{name}.lock"));
        let lock = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(crate::home::NO_FOLLOW)
            .open(&lock_path)
            .map_err(|e| crate::home::cannot_open(&lock_path, "the cursor lock", e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => bail!(
                "cursor {name:?} is in use by another process (a `log --exec` or a node's --on-message); stop it first or use another --cursor"
            ),
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", lock_path.display()));
            }
        }
        let state = match fs::read(&path) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a dshare cursor; remove it to start the cursor again",
                    path.display()
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let cursor = Cursor {
            name: name.to_string(),
            path,
            _lock: lock,
        };
        Ok((cursor, state))
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Replaces the file atomically and durably: a temporary file, fsync, rename,
    /// fsync of the directory. A crash leaves the old state or the new, never a mix.
    pub fn save(&self, state: &State) -> Result<()> {
        let mut state = state.clone();
        state.updated = crate::time::now_ms();
        let tmp = self.path.with_file_name(format!("{}.tmp", self.name));
        let mut bytes = serde_json::to_vec(&state)?;
        bytes.push(b'\n');
        crate::durable::replace(&self.path, &tmp, &bytes)
            .with_context(|| format!("cannot write the cursor {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_file_names() {
        for good in ["chat", "deploy-bot", "a.b_c", "X1"] {
            check_name(good).unwrap();
        }
        for bad in [
            "",
            ".hidden",
            "a/b",
            "../x",
            "x.lock",
            "x.tmp",
            "sp ace",
            &"n".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
