//! `GET /peers`: every peer the node knows and its state, the forks seen, and what peers sent that was refused.

use serde::{Deserialize, Serialize};

use super::{Fork, PeerView};

pub const PATH: &str = "/peers";

/// The `/peers` answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PeersAnswer {
    pub peers: Vec<PeerView>,
    pub forks: Vec<Fork>,
    /// Messages from peers that failed a check and were not stored.
    pub refused: u64,
}
