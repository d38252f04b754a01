//! The hybrid logical clock a node signs with (docs/FORMAT.md §6), and what its peers
//! say of its wall clock: the rules that keep any member from moving the clocks honest
//! nodes sign beyond real time, and a node with a wrong clock from signing.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::message::MAX_COUNTER;

/// How far past this node's wall clock a received message may move the clock it signs
/// with. A message's own clock is kept whatever it is (it is signed, and only sorts its
/// author's messages late), but the clock this node signs next takes at most this from
/// it: a member that pushes clocks near the cap moves honest clocks 10 minutes ahead at
/// most, and they fall back to wall time as it catches up.
pub const MAX_AHEAD_MS: u64 = 10 * 60 * 1000;

/// A node refuses to sign while most of its peers' wall clocks differ from its own by
/// more than this: it is the window a sealed request must fall in (peers that far off
/// cannot exchange anything anyway), and a clock that wrong would sign times its
/// history keeps for good.
pub const MAX_SKEW_MS: u64 = crate::seal::WINDOW_MS;

/// A peer's reading older than this no longer counts (a peer is heard from about once
/// a second while it is up).
pub const READING_FRESH_MS: u64 = 30_000;

/// Most peers whose clock readings are kept; a bound on the table, whatever addresses
/// the node is told of.
pub const MAX_READINGS: usize = 4096;

/// Why this node will not sign now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockError {
    /// The clock it would sign is over the cap every reader accepts.
    OverCap { would_sign: u64 },
    /// Most peers heard from lately say this node's wall clock is off by `offset_ms`
    /// (positive: this node is behind).
    Skewed {
        offset_ms: i64,
        off: usize,
        heard: usize,
    },
}

impl std::fmt::Display for ClockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClockError::OverCap { would_sign } => write!(
                f,
                "this node's clock would be {would_sign}, above the limit {MAX_COUNTER} (2^53 - 1): its own earlier messages carry clocks that high (signed before clocks were bound to wall time), and no later message of this author can follow them; give the node a new identity (stop it, move identity.key aside, start it again) to go on sending"
            ),
            ClockError::Skewed {
                offset_ms,
                off,
                heard,
            } => write!(
                f,
                "this node's wall clock is {} {} its peers' ({off} of the {heard} peers heard from in the last {} s differ by more than {} s); it signs nothing until the clock is set right (check NTP)",
                span(offset_ms.unsigned_abs()),
                if *offset_ms > 0 { "behind" } else { "ahead of" },
                READING_FRESH_MS / 1000,
                MAX_SKEW_MS / 1000
            ),
        }
    }
}

impl std::error::Error for ClockError {}

/// The clock of the next message this node signs: after its own previous message,
/// after everything it holds (but never taking more than [`MAX_AHEAD_MS`] past its wall
/// clock from what others signed), and at least its wall clock in milliseconds.
pub fn next(own_previous: Option<u64>, held_max: u64, now_ms: u64) -> Result<u64, ClockError> {
    let bounded_held = held_max.min(now_ms.saturating_add(MAX_AHEAD_MS));
    let after_own = own_previous.map_or(1, |c| c.saturating_add(1));
    let clock = after_own
        .max(bounded_held.saturating_add(1))
        .max(now_ms)
        .max(1);
    if clock > MAX_COUNTER {
        return Err(ClockError::OverCap { would_sign: clock });
    }
    Ok(clock)
}

/// `90 ms`, `42 s`, `3 min`, `2 h 5 min`.
pub fn span(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..120_000 => format!("{} s", ms / 1000),
        120_000..7_200_000 => format!("{} min", ms / 60_000),
        _ => format!("{} h {} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// What each peer's sealed answers say of its wall clock, against this node's.
#[derive(Default)]
pub struct PeerClocks {
    /// Peer URL -> (its clock minus ours, in ms; when we read it, by our clock).
    readings: Mutex<HashMap<String, (i64, u64)>>,
}

impl PeerClocks {
    /// Notes that `peer` said its time was `peer_ms` when ours was `now_ms`.
    pub fn record(&self, peer: &str, peer_ms: u64, now_ms: u64) {
        let offset = i128::from(peer_ms) - i128::from(now_ms);
        let offset = i64::try_from(offset).unwrap_or(if offset > 0 { i64::MAX } else { i64::MIN });
        let mut readings = self.readings.lock().expect("clock readings lock");
        if !readings.contains_key(peer) && readings.len() >= MAX_READINGS {
            readings.retain(|_, (_, at)| now_ms.saturating_sub(*at) <= READING_FRESH_MS);
            if readings.len() >= MAX_READINGS {
                return;
            }
        }
        readings.insert(peer.to_string(), (offset, now_ms));
    }

    /// The last offset read from `peer` (its clock minus ours), if still fresh.
    pub fn offset_of(&self, peer: &str, now_ms: u64) -> Option<i64> {
        let readings = self.readings.lock().expect("clock readings lock");
        let &(offset, at) = readings.get(peer)?;
        (now_ms.saturating_sub(at) <= READING_FRESH_MS).then_some(offset)
    }

    /// `Err` when most peers heard from lately disagree with this node's clock by more
    /// than [`MAX_SKEW_MS`]. With no fresh reading (no peers, or none answering) the
    /// node's own clock is all there is, and it signs.
    pub fn check(&self, now_ms: u64) -> Result<(), ClockError> {
        let readings = self.readings.lock().expect("clock readings lock");
        let mut fresh: Vec<i64> = readings
            .values()
            .filter(|(_, at)| now_ms.saturating_sub(*at) <= READING_FRESH_MS)
            .map(|&(offset, _)| offset)
            .collect();
        let heard = fresh.len();
        let off = fresh
            .iter()
            .filter(|o| o.unsigned_abs() > MAX_SKEW_MS)
            .count();
        if heard == 0 || off * 2 <= heard {
            return Ok(());
        }
        fresh.sort_unstable();
        Err(ClockError::Skewed {
            offset_ms: fresh[heard / 2],
            off,
            heard,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000_000;

    #[test]
    fn signs_wall_time_after_its_own_and_held_clocks() {
        assert_eq!(next(None, 0, NOW), Ok(NOW));
        // Old Lamport boxes (clocks 1, 2, 3…) go on at wall time.
        assert_eq!(next(Some(3), 3, NOW), Ok(NOW));
        // Many messages in one millisecond still get increasing clocks.
        assert_eq!(next(Some(NOW), NOW, NOW), Ok(NOW + 1));
        assert_eq!(next(None, NOW + 5, NOW), Ok(NOW + 6));
        // A wall clock before 1970 still signs a valid clock.
        assert_eq!(next(None, 0, 0), Ok(1));
    }

    #[test]
    fn a_poisoned_clock_moves_ours_at_most_the_bound_past_wall_time() {
        assert_eq!(next(None, MAX_COUNTER, NOW), Ok(NOW + MAX_AHEAD_MS + 1));
        assert_eq!(
            next(Some(NOW + MAX_AHEAD_MS + 1), MAX_COUNTER, NOW),
            Ok(NOW + MAX_AHEAD_MS + 2)
        );
        // Once wall time passes it, the poison is forgotten.
        let later = NOW + MAX_AHEAD_MS + 60_000;
        assert_eq!(
            next(Some(NOW + MAX_AHEAD_MS + 2), NOW + MAX_AHEAD_MS + 2, later),
            Ok(later)
        );
    }

    #[test]
    fn never_signs_above_the_cap() {
        assert_eq!(
            next(Some(MAX_COUNTER), 0, NOW),
            Err(ClockError::OverCap {
                would_sign: MAX_COUNTER + 1
            })
        );
        assert_eq!(next(Some(MAX_COUNTER - 1), 0, NOW), Ok(MAX_COUNTER));
        assert!(next(Some(u64::MAX), 0, NOW).is_err());
    }

    #[test]
    fn most_peers_far_off_refuse_signing_and_one_does_not() {
        let clocks = PeerClocks::default();
        assert_eq!(clocks.check(NOW), Ok(()));
        clocks.record("a", NOW - 2 * 3_600_000, NOW);
        let err = clocks.check(NOW).unwrap_err();
        assert!(err.to_string().contains("2 h 0 min ahead of"), "{err}");
        clocks.record("b", NOW + 10, NOW);
        assert_eq!(clocks.check(NOW), Ok(()), "one of two is not most");
        clocks.record("c", NOW - 2 * 3_600_000, NOW);
        assert!(clocks.check(NOW).is_err());
        // Readings go stale.
        assert_eq!(clocks.check(NOW + READING_FRESH_MS + 1), Ok(()));
        assert_eq!(clocks.offset_of("b", NOW), Some(10));
    }

    #[test]
    fn the_readings_table_is_bounded() {
        let clocks = PeerClocks::default();
        for i in 0..MAX_READINGS + 100 {
            clocks.record(&format!("http://p{i}"), NOW, NOW);
        }
        assert_eq!(clocks.readings.lock().unwrap().len(), MAX_READINGS);
        // Stale readings make room for new peers.
        clocks.record("http://new", NOW, NOW + READING_FRESH_MS + 1);
        assert_eq!(clocks.readings.lock().unwrap().len(), 1);
    }
}
