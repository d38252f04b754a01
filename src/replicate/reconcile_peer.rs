//! `/v1/reconcile` on both ends: the repair path asks a peer which heads differ
//! ([`peer_heads`]), and the peer API answers from the store ([`Replicator::on_reconcile`]).
//! The rules are in [`super::reconcile`]; this file only carries its messages.

use anyhow::{Context, Result};

use crate::chain::Head;

use super::client::PeerClient;
use super::reconcile::{Difference, Initiator, Malformed, Ranges, peer_heads as rebuilt};
use super::{Replicator, protocol::Reconcile};

/// Reconciles `ours` with the peer at `url`: what differs, in at most
/// [`super::reconcile::MAX_ROUNDS`] round trips.
pub fn differing(client: &PeerClient, url: &str, ours: Vec<Head>) -> Result<Difference> {
    let mut initiator = Initiator::new(ours);
    let mut query = initiator.first();
    loop {
        let answer: Reconcile = client.call(url, "reconcile", &query)?;
        let next = initiator
            .take(&answer)
            .with_context(|| format!("peer {url}'s answer to reconcile"))?;
        match next {
            Some(next) => query = next,
            None => return Ok(initiator.finish()),
        }
    }
}

/// The peer's heads, as reconciliation finds them: `ours` (one snapshot, taken
/// before the first request) with what differs put in. This stands for the list
/// of heads a peer used to send whole, so the rest of the repair is unchanged.
pub fn peer_heads(client: &PeerClient, url: &str, ours: Vec<Head>) -> Result<Vec<Head>> {
    let diff = differing(client, url, ours.clone())?;
    Ok(rebuilt(&ours, &diff))
}

impl Replicator {
    /// The answer to a peer's reconcile message, from this node's heads now (the
    /// responder keeps nothing between requests).
    pub fn on_reconcile(&self, query: &Ranges) -> Result<Ranges, Malformed> {
        super::reconcile::respond(self.writer.store().heads(), query)
    }
}
