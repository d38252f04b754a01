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
}
