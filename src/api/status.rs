//! `GET /status`: what the node is (its author id and address) and what its box holds.

use serde::{Deserialize, Serialize};

use crate::hex::Hash;
use crate::message::AuthorId;

pub const PATH: &str = "/status";

/// The `/status` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    pub node: AuthorId,
    /// The address peers use to reach this node, if it has one.
    pub url: Option<String>,
    pub version: String,
    pub messages: u64,
    pub authors: u64,
    pub head: Hash,
    pub digest: Hash,
    /// Group commits since start: each is one fsync covering one or more messages.
    pub commits: u64,
    /// The end of the box was lost before this start and is being fetched back from
    /// peers; until then new sends are refused (503).
    pub recovering: bool,
    /// Where the history this node holds begins (absent from nodes before it was
    /// added, and when the epochs' final heads cannot be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<HistoryStart>,
}

/// Where a node's history begins: `dshare archive` and retention close the oldest
/// lines into epochs, whose lines `--prune` deletes, keeping their signed heads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryStart {
    /// The first line of the whole history whose message is here, in an epoch file or
    /// the live box (1 when nothing was pruned; one past the end when nothing is held).
    pub first_line: u64,
    /// The `ts` of that message (ms since the Unix epoch), when there is one.
    pub first_ts: Option<u64>,
    /// The first line of the live box (`box.txt`): lines before it are in epochs.
    pub box_first_line: u64,
    /// Epochs closed, and how many of them still have their lines here.
    pub epochs: u64,
    pub epochs_with_lines: u64,
    /// Lines of epochs whose lines were deleted: only their signed final head is here.
    pub pruned_lines: u64,
}
