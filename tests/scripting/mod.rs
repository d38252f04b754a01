//! Made for scripts: hooks with cursors (`log --exec`, `serve --on-message`), the
//! watchdogs (`peers --expect-up`, `log --expect-from`), `testnet`, the config file,
//! and `--json` on every command whose output is data; one file per topic.

use std::fs;
use std::path::Path;

mod config;
mod hooks;
mod json;
mod testnet;
mod watchdogs;

/// The lines of a file (none if it does not exist).
pub(super) fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}
