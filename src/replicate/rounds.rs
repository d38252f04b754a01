//! What anti-entropy repairs. Under load, most of what a peer lacks at a hello is
//! being pushed to it at that very moment; pulling it (or pushing it again from the
//! other side) as well made the node that was already behind check the same
//! signatures two or three times, and fall further behind. So each peer worker keeps
//! what both sides held at its previous exchange, and repairs only messages that
//! were held then: those had a whole round (about a second) to arrive by push, and
//! did not. This holds only while pushes flow (this worker pushed to the peer, or
//! this node stored a push, since the last round) and that round was recent (a few
//! seconds: the pair exchanges often, as under load); otherwise nothing is on its way
//! and everything missing is repaired at once, as it is after a failed exchange or
//! on a worker's first (a new node, a restart, a healed partition, a node that no
//! push reaches in a large network).

use std::collections::HashMap;

use crate::chain::Head;
use crate::message::AuthorId;

/// How long after an exchange the messages held then may still be on their way by
/// push: a few rounds under load.
pub const IN_FLIGHT_MS: u64 = 3_000;

/// Each author's highest seq on both sides at the last exchange that went through.
pub struct LastRound {
    theirs: HashMap<AuthorId, u64>,
    ours: HashMap<AuthorId, u64>,
    /// When, in ms since the Unix epoch.
    at_ms: u64,
}

impl LastRound {
    pub fn new(theirs: &[Head], ours: &[Head], at_ms: u64) -> LastRound {
        let seqs = |heads: &[Head]| heads.iter().map(|h| (h.author, h.seq)).collect();
        LastRound {
            theirs: seqs(theirs),
            ours: seqs(ours),
            at_ms,
        }
    }

    /// This round, if it was recent (within [`IN_FLIGHT_MS`] of `now_ms`) and pushes
    /// went through since it (the last at `pushed_ms`): only then may the messages
    /// the peer lacks be on their way. After an older round they had time to arrive
    /// and did not: in a fleet a pair of nodes exchanges once in many rounds, which
    /// at rest are 8 s apart, and capping the repair at what was held then left a
    /// node that missed a push without it for minutes.
    pub fn if_pushes_since(&self, pushed_ms: u64, now_ms: u64) -> Option<&LastRound> {
        (pushed_ms >= self.at_ms && now_ms.saturating_sub(self.at_ms) <= IN_FLIGHT_MS)
            .then_some(self)
    }
}

/// The peer's heads, each cut back to what the peer held at the last round: what
/// this node should pull now.
pub fn to_pull(last: Option<&LastRound>, theirs: &[Head]) -> Vec<Head> {
    let Some(last) = last else {
        return theirs.to_vec();
    };
    theirs
        .iter()
        .map(|h| Head {
            seq: h.seq.min(last.theirs.get(&h.author).copied().unwrap_or(0)),
            ..*h
        })
        .collect()
}

/// The highest seq of `author` this node should send the peer now: what this node
/// held at the last round (`held`, all it holds, when there was none).
pub fn to_push(last: Option<&LastRound>, author: &AuthorId, held: u64) -> u64 {
    last.map_or(held, |l| held.min(l.ours.get(author).copied().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::{IN_FLIGHT_MS, LastRound, to_pull, to_push};
    use crate::chain::Head;

    fn head(author: u8, seq: u64) -> Head {
        Head {
            author: crate::hex::Hex([author; 32]),
            seq,
            id: crate::hex::Hex([u8::try_from(seq).unwrap_or(0); 32]),
        }
    }

    #[test]
    fn only_what_was_held_a_round_ago_is_repaired() {
        // No round yet: everything.
        assert_eq!(to_pull(None, &[head(1, 9)])[0].seq, 9);
        assert_eq!(to_push(None, &head(1, 0).author, 9), 9);
        // They held 5 of author 1 then; 9 now: 6..9 are probably on their way.
        let last = LastRound::new(&[head(1, 5)], &[head(1, 7)], 1000);
        assert!(
            last.if_pushes_since(999, 1500).is_none(),
            "no push since: all"
        );
        assert!(
            last.if_pushes_since(1000, 1000 + IN_FLIGHT_MS + 1)
                .is_none(),
            "long ago: all"
        );
        let last = last.if_pushes_since(1000, 1500).unwrap();
        let pull = to_pull(Some(last), &[head(1, 9), head(2, 3)]);
        assert_eq!((pull[0].seq, pull[1].seq), (5, 0));
        assert_eq!(pull[0].author, head(1, 0).author);
        // We held 7 of author 1 then, 12 now; nothing of author 2.
        assert_eq!(to_push(Some(last), &head(1, 0).author, 12), 7);
        assert_eq!(to_push(Some(last), &head(1, 0).author, 4), 4);
        assert_eq!(to_push(Some(last), &head(2, 0).author, 3), 0);
    }
}
