//! The replication policy as a state machine without I/O: who gets a push, who is
//! greeted this round, when a peer that could not be reached is tried again. It is
//! fed events (a batch was stored, an exchange was answered or failed, a peer was
//! learned or greeted us, the timer fired) with the time, and returns actions (push
//! that batch to that peer, exchange with that peer, wake me at). Time and
//! randomness come from outside (a seeded generator), so the same events give the
//! same actions: the node drives it with sockets and a few threads
//! (`super::drive`), the simulator in `benches/gossip_sim.rs` with a simulated
//! network, and both run this very code.

mod rng;
pub mod sim;

use std::collections::BTreeMap;

pub use rng::Rng;

use crate::message::AuthorId;

/// A peer, by the address it is reached at.
pub type PeerId = String;

/// How far a batch is pushed, which tells its receivers whether to forward it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    /// This node's own messages, pushed to every peer it knows (`sent_to_all` on the
    /// wire): the receivers need not forward them.
    ToEveryPeer,
    /// Pushed to a few peers, which forward them like any other.
    Forwarded,
    /// Only offered (the ids): the peer asks for those it lacks, which are then
    /// pushed to it as [`Spread::Forwarded`]. The lazy half of eager/lazy push.
    Offered,
}

/// The policy's numbers. [`Config::new`] has the node's.
#[derive(Debug, Clone)]
pub struct Config {
    /// Time between two rounds, before ±20% jitter, while anything changes.
    pub round_ms: u64,
    /// At rest the time between rounds doubles at each round, from `round_ms` up to
    /// this (Trickle, RFC 6206): a network in step greets seldom, and anything
    /// stored here, a peer learned or a peer back brings it back to `round_ms`.
    /// Equal to `round_ms` for a node that receives only through its own rounds.
    pub round_max_ms: u64,
    /// Peers greeted (digest, then repair if the digests differ) each round: the
    /// at-rest cost of a node, whatever the size of the network.
    pub partners_per_round: usize,
    /// Peers that could not be reached, tried again in one round at most.
    pub retries_per_round: usize,
    /// First wait before a peer that could not be reached is tried again; doubled
    /// at each failure up to `max_retry_ms`.
    pub first_retry_ms: u64,
    pub max_retry_ms: u64,
    /// Peers a forwarded batch goes to, once more are known.
    pub fanout: usize,
    /// A node pushes its own messages to every peer while it knows at most this many.
    pub origin_fanout: usize,
    /// Beyond `fanout` peers, a forwarded batch is pushed to between `eager_min` and
    /// `eager_max` peers, eager ones first, and offered to up to `fanout` others
    /// (see [`Core::spread`]).
    pub eager_min: usize,
    pub eager_max: usize,
}

/// A node pushes the messages it writes itself to every peer while it knows at most
/// this many, marked `sent_to_all` so that the receivers do not forward them: one push
/// per peer instead of about `fanout` per node (in the 30-node cluster benchmark, 29
/// pushes a message instead of 240, nearly all of which were duplicates). Beyond it,
/// its own messages go to `fanout` random peers and are forwarded like any other.
pub const ORIGIN_FANOUT: usize = 32;

impl Config {
    /// The node's policy with fan-out `fanout`. One partner a round: each node
    /// starts one exchange a round and answers about one, so a pair of nodes
    /// exchanges at least every N rounds whatever N, and a node's traffic at rest
    /// no longer grows with the network (it greeted every peer every second). A
    /// round a second while messages flow, one every 8 s at rest.
    pub fn new(fanout: usize) -> Config {
        Config {
            round_ms: 1000,
            round_max_ms: 8000,
            partners_per_round: 1,
            retries_per_round: 2,
            first_retry_ms: 1000,
            max_retry_ms: 8000,
            fanout: fanout.max(1),
            origin_fanout: ORIGIN_FANOUT,
            eager_min: 1,
            eager_max: 1,
        }
    }
}

/// What the policy knows of a peer's reachability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Not exchanged with yet.
    Unknown,
    /// The last exchange (or push) was answered.
    Up,
    /// The last exchange or push could not reach it.
    Down,
}

/// How an exchange with a peer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// It answered, proving `id`.
    Up { id: AuthorId },
    /// Nothing, or nothing in time, came back (or our seal is refused there).
    Unreachable,
    /// It answered, but badly: reachable, so it keeps its state.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// A peer was adopted (proven, named by the operator, or loaded from the home).
    Learned { peer: &'a str },
    /// A peer was forgotten (it is this node, or an old address of a node).
    Forgot { peer: &'a str },
    /// A batch was stored here and is to be spread: its messages' authors, and
    /// whether this node wrote them all.
    Stored { authors: &'a [AuthorId], mine: bool },
    /// An exchange this core asked for ended.
    Exchanged { peer: &'a str, answer: Answer },
    /// A push to the peer could not reach it.
    PushFailed { peer: &'a str },
    /// A push to the peer was answered: `fresh` if it stored something, else every
    /// message was a duplicate (it had them from someone else: the peer turns lazy).
    Pushed { peer: &'a str, fresh: bool },
    /// An offer to the peer was answered by asking for messages it lacks: the peer
    /// turns eager again (the graft of eager/lazy push).
    Wanted { peer: &'a str },
    /// The peer greeted this node (a sealed hello from its address): it is alive and
    /// the pair is in step, so it need not be greeted back soon.
    HeardFrom { peer: &'a str },
    /// Failure detection (SWIM) found the peer alive, or declared it down.
    Member { peer: &'a str, alive: bool },
    /// The time of the last [`Action::Wake`] came.
    Timer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Push the batch of the [`Event::Stored`] being handled to `peer`.
    Push { peer: PeerId, spread: Spread },
    /// Greet `peer`: compare digests, repair if they differ; report with
    /// [`Event::Exchanged`].
    Exchange { peer: PeerId },
    /// Send [`Event::Timer`] at this time.
    Wake { at_ms: u64 },
}

#[derive(Debug, Clone)]
struct Slot {
    id: Option<AuthorId>,
    liveness: Liveness,
    /// When the pair last exchanged, either way; 0 for never.
    last_contact_ms: u64,
    /// An exchange was asked for and has not ended.
    exchanging: bool,
    /// While down: when it may be tried again, and the wait after that.
    retry_at_ms: u64,
    retry_wait_ms: u64,
    /// Forwarded batches are pushed to it (else only offered).
    eager: bool,
}

impl Slot {
    fn new(first_retry_ms: u64) -> Slot {
        Slot {
            id: None,
            liveness: Liveness::Unknown,
            last_contact_ms: 0,
            exchanging: false,
            retry_at_ms: 0,
            retry_wait_ms: first_retry_ms,
            eager: true,
        }
    }
}

/// The policy's state: the peers as it sees them, the next round, its generator.
#[derive(Debug, Clone)]
pub struct Core {
    config: Config,
    peers: BTreeMap<PeerId, Slot>,
    next_round_ms: u64,
    /// The earliest time of the next pass over down peers due a retry.
    next_retry_ms: u64,
    /// The time from this round to the next: `round_ms`, doubled at each quiet
    /// round up to `round_max_ms`.
    interval_ms: u64,
    rng: Rng,
}

impl Core {
    pub fn new(config: Config, seed: u64) -> Core {
        Core {
            interval_ms: config.round_ms,
            config,
            peers: BTreeMap::new(),
            next_round_ms: 0,
            next_retry_ms: 0,
            rng: Rng::new(seed),
        }
    }

    /// Handles one event at `now_ms` and says what to do about it.
    pub fn handle(&mut self, event: Event<'_>, now_ms: u64) -> Vec<Action> {
        match event {
            Event::Learned { peer } => {
                let mut actions = self.learned(peer);
                self.hurry(now_ms, &mut actions);
                actions
            }
            Event::Forgot { peer } => {
                self.peers.remove(peer);
                Vec::new()
            }
            Event::Stored { authors, mine } => {
                let mut actions = self.spread(authors, mine);
                self.hurry(now_ms, &mut actions);
                actions
            }
            Event::Exchanged { peer, answer } => {
                self.exchanged(peer, answer, now_ms);
                self.wake_if_down(peer)
            }
            Event::PushFailed { peer } => {
                if let Some(slot) = self.peers.get_mut(peer) {
                    mark_down(slot, now_ms, self.config.max_retry_ms);
                }
                self.wake_if_down(peer)
            }
            Event::Pushed { peer, fresh } => {
                if let Some(slot) = self.peers.get_mut(peer) {
                    slot.eager = fresh;
                }
                Vec::new()
            }
            Event::Wanted { peer } => {
                if let Some(slot) = self.peers.get_mut(peer) {
                    slot.eager = true;
                }
                Vec::new()
            }
            Event::HeardFrom { peer } => {
                let mut actions = Vec::new();
                if let Some(slot) = self.peers.get_mut(peer) {
                    slot.last_contact_ms = now_ms;
                    // Alive: tried again at the next round rather than after its
                    // backoff (not at once: a member replaying a down peer's hellos
                    // would make this node probe that address in a loop).
                    slot.retry_at_ms = slot.retry_at_ms.min(now_ms);
                    if slot.liveness == Liveness::Down {
                        actions.push(self.wake());
                    }
                }
                actions
            }
            Event::Member { peer, alive } => {
                let mut back = false;
                if let Some(slot) = self.peers.get_mut(peer) {
                    if alive {
                        if slot.liveness == Liveness::Down {
                            // Back: greeted at the next round, to repair.
                            slot.liveness = Liveness::Up;
                            slot.last_contact_ms = 0;
                            back = true;
                        }
                        slot.retry_wait_ms = self.config.first_retry_ms;
                    } else {
                        mark_down(slot, now_ms, self.config.max_retry_ms);
                    }
                }
                let mut actions = self.wake_if_down(peer);
                if back {
                    self.hurry(now_ms, &mut actions);
                }
                actions
            }
            Event::Timer => self.round(now_ms),
        }
    }

    /// At most `k` of `items`, at random.
    pub fn sample<T>(&mut self, mut items: Vec<T>, k: usize) -> Vec<T> {
        self.rng.shuffle(&mut items);
        items.truncate(k);
        items
    }

    /// The peers and what the policy knows of them, in address order.
    pub fn peers(&self) -> impl Iterator<Item = (&str, Liveness)> {
        self.peers.iter().map(|(p, s)| (p.as_str(), s.liveness))
    }

    pub fn liveness(&self, peer: &str) -> Option<Liveness> {
        self.peers.get(peer).map(|s| s.liveness)
    }

    /// A new peer is greeted at once: a joining node learns the network, and a
    /// restarted one asks every peer for what it lost, without waiting for rounds.
    fn learned(&mut self, peer: &str) -> Vec<Action> {
        if self.peers.contains_key(peer) {
            return Vec::new();
        }
        let mut slot = Slot::new(self.config.first_retry_ms);
        slot.exchanging = true;
        self.peers.insert(peer.to_string(), slot);
        vec![Action::Exchange {
            peer: peer.to_string(),
        }]
    }

    fn exchanged(&mut self, peer: &str, answer: Answer, now_ms: u64) {
        let Some(slot) = self.peers.get_mut(peer) else {
            return;
        };
        slot.exchanging = false;
        slot.last_contact_ms = now_ms;
        match answer {
            Answer::Up { id } => {
                slot.id = Some(id);
                slot.liveness = Liveness::Up;
                slot.retry_wait_ms = self.config.first_retry_ms;
            }
            Answer::Unreachable => mark_down(slot, now_ms, self.config.max_retry_ms),
            Answer::Failed => {}
        }
    }

    /// Who gets a stored batch: every peer for this node's own messages in a small
    /// network (`sent_to_all`), every peer but the author while the node knows at
    /// most `fanout`. Beyond that, eager/lazy push: the batch is pushed to the peers
    /// still eager (at most `fanout`, at least `eager_min`), and only offered to up
    /// to `fanout` lazy ones. A peer turns lazy when a push to it brought nothing new
    /// (someone else got there first) and eager again when it asks for an offered
    /// message, so the eager links settle into few paths that deliver first copies,
    /// and the offers repair what a lost or slow path misses. Never a peer that is
    /// down (the next exchange with it repairs), nor back to a peer that wrote every
    /// message of the batch.
    fn spread(&mut self, authors: &[AuthorId], mine: bool) -> Vec<Action> {
        let known = self.peers.len();
        let reachable = |s: &Slot| s.liveness != Liveness::Down;
        if mine && known <= self.config.origin_fanout.max(self.config.fanout) {
            return self
                .peers
                .iter()
                .filter(|(_, s)| reachable(s))
                .map(|(p, _)| push(p, Spread::ToEveryPeer))
                .collect();
        }
        let wrote_all = |s: &Slot| {
            s.id.is_some_and(|id| !authors.is_empty() && authors.iter().all(|a| *a == id))
        };
        if known <= self.config.fanout {
            return self
                .peers
                .iter()
                .filter(|(_, s)| !wrote_all(s) && reachable(s))
                .map(|(p, _)| push(p, Spread::Forwarded))
                .collect();
        }
        let mut up: Vec<(&PeerId, bool)> = self
            .peers
            .iter()
            .filter(|(_, s)| !wrote_all(s) && s.liveness == Liveness::Up)
            .map(|(p, s)| (p, s.eager))
            .collect();
        self.rng.shuffle(&mut up);
        // Eager ones first, then lazy ones: the first `pushed` are pushed to, the
        // next `fanout` are offered the batch.
        up.sort_by_key(|(_, eager)| !*eager);
        let eager = up.iter().filter(|(_, e)| *e).count();
        let pushed = eager
            .clamp(
                self.config.eager_min,
                self.config.eager_max.max(self.config.eager_min),
            )
            .min(up.len());
        let offered = (up.len() - pushed).min(self.config.fanout);
        up.iter()
            .take(pushed)
            .map(|(p, _)| push(p, Spread::Forwarded))
            .chain(
                up.iter()
                    .skip(pushed)
                    .take(offered)
                    .map(|(p, _)| push(p, Spread::Offered)),
            )
            .collect()
    }

    /// The timer: a round when one is due (`partners_per_round` reachable peers,
    /// those contacted longest ago first, ties broken at random), and, at most once
    /// every `round_ms`, up to `retries_per_round` down peers whose wait is over, so
    /// retries keep their backoff while rounds slow down at rest. Then the time to
    /// wake again.
    fn round(&mut self, now_ms: u64) -> Vec<Action> {
        let mut chosen: Vec<PeerId> = Vec::new();
        if now_ms >= self.next_round_ms {
            let mut live: Vec<(&PeerId, u64)> = self
                .peers
                .iter()
                .filter(|(_, s)| !s.exchanging && s.liveness != Liveness::Down)
                .map(|(p, s)| (p, s.last_contact_ms))
                .collect();
            self.rng.shuffle(&mut live);
            live.sort_by_key(|(_, at)| *at);
            chosen.extend(
                live.into_iter()
                    .take(self.config.partners_per_round)
                    .map(|(p, _)| p.clone()),
            );
            self.next_round_ms = now_ms + self.jitter(self.interval_ms);
            self.interval_ms = (self.interval_ms * 2).min(self.config.round_max_ms);
        }
        if now_ms >= self.next_retry_ms {
            let mut due: Vec<(&PeerId, u64)> = self
                .peers
                .iter()
                .filter(|(_, s)| !s.exchanging && s.liveness == Liveness::Down)
                .filter(|(_, s)| s.retry_at_ms <= now_ms)
                .map(|(p, s)| (p, s.retry_at_ms))
                .collect();
            due.sort_by_key(|(_, at)| *at);
            let retried: Vec<PeerId> = due
                .into_iter()
                .take(self.config.retries_per_round)
                .map(|(p, _)| p.clone())
                .collect();
            if !retried.is_empty() {
                self.next_retry_ms = now_ms + self.jitter(self.config.round_ms);
            }
            chosen.extend(retried);
        }
        let mut actions = Vec::new();
        for peer in chosen {
            if let Some(slot) = self.peers.get_mut(&peer) {
                slot.exchanging = true;
            }
            actions.push(Action::Exchange { peer });
        }
        actions.push(self.wake());
        actions
    }

    /// When the timer is next needed: the next round, or a down peer's retry if it
    /// comes first (never before the next retry pass).
    fn wake(&self) -> Action {
        let retry = self
            .peers
            .values()
            .filter(|s| !s.exchanging && s.liveness == Liveness::Down)
            .map(|s| s.retry_at_ms.max(self.next_retry_ms))
            .min();
        Action::Wake {
            at_ms: retry.map_or(self.next_round_ms, |r| r.min(self.next_round_ms)),
        }
    }

    /// A wake for the retry of `peer` if it is down (its retry may come before the
    /// wake already set).
    fn wake_if_down(&self, peer: &str) -> Vec<Action> {
        match self.peers.get(peer) {
            Some(slot) if slot.liveness == Liveness::Down => vec![self.wake()],
            _ => Vec::new(),
        }
    }

    /// Something changed here: rounds go back to `round_ms`, and the next one comes
    /// within it if it was due later.
    fn hurry(&mut self, now_ms: u64, actions: &mut Vec<Action>) {
        self.interval_ms = self.config.round_ms;
        if self.next_round_ms > now_ms + self.config.round_ms {
            self.next_round_ms = now_ms + self.jitter(self.config.round_ms);
            actions.push(Action::Wake {
                at_ms: self.next_round_ms,
            });
        }
    }

    /// `base` ± 20%, so the nodes of a network do not all talk in step.
    fn jitter(&mut self, base: u64) -> u64 {
        let spread = base * 2 / 5;
        base - base / 5 + self.rng.below(spread + 1)
    }
}

fn push(peer: &str, spread: Spread) -> Action {
    Action::Push {
        peer: peer.to_string(),
        spread,
    }
}

fn mark_down(slot: &mut Slot, now_ms: u64, max_retry_ms: u64) {
    if slot.liveness != Liveness::Down {
        slot.liveness = Liveness::Down;
    } else {
        slot.retry_wait_ms = (slot.retry_wait_ms * 2).min(max_retry_ms);
    }
    slot.retry_at_ms = now_ms + slot.retry_wait_ms;
}

#[cfg(test)]
mod tests;
