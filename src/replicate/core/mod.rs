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

use serde::{Deserialize, Serialize};

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

/// What a node says of a link with a peer, in a hello and in the answer to one, with
/// the number of its word (see [`Word`]). Links are the few peers a node pushes to in
/// a large network: a link is held when both ends want it, so a node is pushed to by
/// as many as it pushes to, however late it joined, and a node holds few, as in
/// HyParView's active view, on which Plumtree runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Link {
    /// The sender holds the link, or asks for it.
    Want,
    /// As `Want`, from a node with fewer than [`Config::urgent_links`] links: the
    /// peer takes it even with no room, in the place of one of its own.
    Urgent,
    /// The sender does not want the link (it never did, refuses it, dropped it for
    /// another, or found the peer down).
    Drop,
}

/// A word on a link and its number. The numbers of a node's words to one peer go
/// up (milliseconds since the epoch, or one more when that would not), so a word
/// that took longer than a later one, on another connection, is known for older and
/// left: two nodes then agree, whichever order their hellos and answers arrive in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Word {
    #[serde(rename = "word")]
    pub link: Link,
    pub seq: u64,
}

impl Word {
    /// No link, numbered before any other word: what an exchange that reached
    /// nobody says.
    pub const NONE: Word = Word {
        link: Link::Drop,
        seq: 0,
    };

    /// The word of a node on a peer it does not hold (never adopted, or forgotten to
    /// make room): no link, numbered with the node's clock, so newer than any word
    /// it said before it forgot the peer. Numbered before everything, a peer that
    /// held a link with it took it for old news and kept the link for ever, pushing
    /// into it while nothing came back the other way.
    pub fn unheld(now_ms: u64) -> Word {
        Word {
            link: Link::Drop,
            seq: now_ms,
        }
    }
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
    /// Links a node holds at most, and seeks while it holds fewer.
    pub links: usize,
    /// Below this many links a node's requests are [`Link::Urgent`].
    pub urgent_links: usize,
    /// A peer that refused a link is not asked again for this long.
    pub link_refused_ms: u64,
    /// Least time between two links dropped for urgent requests: a member cannot
    /// churn a node's links faster than this.
    pub evict_every_ms: u64,
}

/// Links a node holds (see [`Link`]): about the logarithm of the network's size
/// plus one, as HyParView's active view. A message takes a tree over them, and each
/// node offers it to its other links: about `links` requests a node a message.
pub const LINKS: usize = 5;

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
            links: LINKS,
            urgent_links: 2,
            link_refused_ms: 30_000,
            evict_every_ms: 1_000,
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
    /// The peer's hello said this of a link (`None`: nothing, as an older node's
    /// or a probe's); [`Core::word`] then is the answer's. A peer that asks is
    /// taken while there is room, or, when urgent, in the place of a link, which is
    /// greeted to learn it was dropped.
    Proposed { peer: &'a str, word: Option<Word> },
    /// The answer to this node's hello said this; `None` from a node that does not
    /// know links (it is pushed to as before links).
    LinkAnswered { peer: &'a str, word: Option<Word> },
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
    /// This node wants a link with it (it holds one if the peer wants it too).
    want: bool,
    /// The peer's latest word said it wants the link.
    their_want: bool,
    /// The number of this node's word to it, and of the latest word from it.
    my_seq: u64,
    their_seq: u64,
    /// This node asked it for a link, and no answer has come.
    link_asked: bool,
    /// It refused a link: not asked again before this time.
    refused_until_ms: u64,
    /// It answered without a word on links (an older node): pushed to as before
    /// links.
    legacy: bool,
    /// It is to be told this node's word once the exchange under way ends (whose
    /// hello said otherwise).
    owes_word: bool,
}

impl Slot {
    fn linked(&self) -> bool {
        self.want && self.their_want
    }

    /// This node's word to it changes: `want` or not, numbered after the last.
    fn set_want(&mut self, want: bool, now_ms: u64) {
        if want != self.want {
            self.want = want;
            self.my_seq = (self.my_seq + 1).max(now_ms);
            if want {
                self.eager = true;
            }
        }
    }

    /// A peer learned at `now_ms`: its words are numbered from then, after any word
    /// this node said to it before it forgot it.
    fn new(first_retry_ms: u64, now_ms: u64) -> Slot {
        Slot {
            id: None,
            liveness: Liveness::Unknown,
            last_contact_ms: 0,
            exchanging: false,
            retry_at_ms: 0,
            retry_wait_ms: first_retry_ms,
            eager: true,
            want: false,
            their_want: false,
            my_seq: now_ms,
            their_seq: 0,
            link_asked: false,
            refused_until_ms: 0,
            legacy: false,
            owes_word: false,
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
    /// When a link was last dropped for an urgent request (0: never).
    evicted_ms: u64,
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
            evicted_ms: 0,
            rng: Rng::new(seed),
        }
    }

    /// Handles one event at `now_ms` and says what to do about it.
    pub fn handle(&mut self, event: Event<'_>, now_ms: u64) -> Vec<Action> {
        match event {
            // Greeted at once; rounds keep their pace (a table that turns over,
            // as links are made, would otherwise keep a node at a round a second).
            Event::Learned { peer } => self.learned(peer, now_ms),
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
                let mut actions = self.wake_if_down(peer);
                if let Some(slot) = self.peers.get_mut(peer)
                    && std::mem::take(&mut slot.owes_word)
                    && slot.liveness != Liveness::Down
                {
                    slot.exchanging = true;
                    actions.push(Action::Exchange {
                        peer: peer.to_string(),
                    });
                }
                actions
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
            Event::Proposed { peer, word } => self.heard_word(peer, word, false, now_ms),
            Event::LinkAnswered { peer, word } => self.heard_word(peer, word, true, now_ms),
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

    /// Whether both ends hold a link with `peer`.
    pub fn linked(&self, peer: &str) -> bool {
        self.peers.get(peer).is_some_and(Slot::linked)
    }

    /// Links held now.
    pub fn links(&self) -> usize {
        self.peers.values().filter(|s| s.linked()).count()
    }

    /// The word of the answer to `peer`'s hello: a peer not held hears
    /// [`Word::unheld`].
    pub fn answer_word(&self, peer: &str, now_ms: u64) -> Word {
        self.word(peer).unwrap_or(Word::unheld(now_ms))
    }

    /// This node's word on a link with `peer`, for a hello to it or the answer to
    /// its hello: `Want` (`Urgent` while this node holds almost no link) when it
    /// wants the link (holds it, or asked for it when it asked for the exchange),
    /// else `Drop`. `None` for a peer that does not know links.
    pub fn word(&self, peer: &str) -> Option<Word> {
        let slot = self.peers.get(peer)?;
        if slot.legacy {
            return None;
        }
        let link = if !slot.want {
            Link::Drop
        } else if self.links() < self.config.urgent_links {
            Link::Urgent
        } else {
            Link::Want
        };
        Some(Word {
            link,
            seq: slot.my_seq,
        })
    }

    /// An exchange with `peer`, which asks it for a link if this node seeks one and
    /// the peer may give it: up, not linked, not asked, not refused lately.
    fn exchange(&mut self, peer: PeerId, now_ms: u64) -> Action {
        let seeking = self.has_link_room();
        if let Some(slot) = self.peers.get_mut(&peer) {
            slot.exchanging = true;
            if seeking && open_for_link(slot, now_ms) {
                slot.link_asked = true;
                slot.set_want(true, now_ms);
            }
        }
        Action::Exchange { peer }
    }

    /// Whether a node outside the table that asked for a link (`urgent` or not)
    /// is to be adopted for it once it proves its address: there is room, or it is
    /// urgent and a link may be dropped for it now.
    pub fn takes_link(&self, urgent: bool, now_ms: u64) -> bool {
        self.has_link_room() || (urgent && self.may_evict(now_ms))
    }

    /// Fewer links wanted (held or asked for) than [`Config::links`].
    fn has_link_room(&self) -> bool {
        self.peers.values().filter(|s| s.want).count() < self.config.links
    }

    fn may_evict(&self, now_ms: u64) -> bool {
        self.evicted_ms == 0 || now_ms.saturating_sub(self.evicted_ms) >= self.config.evict_every_ms
    }

    /// The peer said `word`, in a hello (`answer` false) or in the answer to this
    /// node's (true). A word numbered below one already heard is older and left.
    /// Otherwise: a peer that wants the link is wanted back while there is room, or
    /// when urgent in the place of a random link; a peer that does not want it, in
    /// the answer to this node's request, refused it (not asked again for a while);
    /// a link this node wants but the peer's answer says it cannot hold is dropped.
    fn heard_word(
        &mut self,
        peer: &str,
        word: Option<Word>,
        answer: bool,
        now_ms: u64,
    ) -> Vec<Action> {
        let room = self.has_link_room();
        let may_evict = self.may_evict(now_ms);
        let refused_ms = self.config.link_refused_ms;
        let Some(slot) = self.peers.get_mut(peer) else {
            return Vec::new();
        };
        let pending = slot.link_asked;
        let asked = answer && std::mem::take(&mut slot.link_asked);
        let Some(word) = word else {
            if answer {
                slot.legacy = true;
                slot.set_want(false, now_ms);
            }
            return Vec::new();
        };
        slot.legacy = false;
        if word.seq < slot.their_seq {
            return Vec::new();
        }
        slot.their_seq = word.seq;
        slot.their_want = word.link != Link::Drop;
        if !slot.their_want {
            // Refused or dropped: not wanted here any more. A hello written before
            // the peer saw this node's request is not its answer: the answer is.
            if answer || !pending {
                slot.set_want(false, now_ms);
            }
            if asked {
                slot.refused_until_ms = now_ms + refused_ms;
            }
            return Vec::new();
        }
        if slot.want {
            return Vec::new();
        }
        if room {
            slot.set_want(true, now_ms);
            return self.told_if_answer(peer, answer);
        }
        if word.link != Link::Urgent || !may_evict {
            // No room: it hears `Drop` in this answer, or in the next hello.
            return self.told_if_answer(peer, answer);
        }
        let held: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(p, s)| s.linked() && p.as_str() != peer)
            .map(|(p, _)| p.clone())
            .collect();
        let Some(dropped) = self.sample(held, 1).pop() else {
            return self.told_if_answer(peer, answer);
        };
        self.evicted_ms = now_ms;
        if let Some(slot) = self.peers.get_mut(peer) {
            slot.set_want(true, now_ms);
        }
        let mut actions = self.told_if_answer(peer, answer);
        if let Some(slot) = self.peers.get_mut(&dropped) {
            slot.set_want(false, now_ms);
        }
        actions.extend(self.tell(&dropped));
        actions
    }

    /// The peer learns this node's new word from the answer to its hello; after an
    /// answer of its own, only from another exchange.
    fn told_if_answer(&mut self, peer: &str, answer: bool) -> Vec<Action> {
        if answer { self.tell(peer) } else { Vec::new() }
    }

    /// Greets `peer` to tell it this node's word: at once, or after the exchange
    /// under way.
    fn tell(&mut self, peer: &str) -> Vec<Action> {
        let Some(slot) = self.peers.get_mut(peer) else {
            return Vec::new();
        };
        if slot.exchanging {
            slot.owes_word = true;
            return Vec::new();
        }
        slot.exchanging = true;
        vec![Action::Exchange {
            peer: peer.to_string(),
        }]
    }

    /// A new peer is greeted at once: a joining node learns the network, and a
    /// restarted one asks every peer for what it lost, without waiting for rounds.
    fn learned(&mut self, peer: &str, now_ms: u64) -> Vec<Action> {
        if self.peers.contains_key(peer) {
            return Vec::new();
        }
        let slot = Slot::new(self.config.first_retry_ms, now_ms);
        self.peers.insert(peer.to_string(), slot);
        vec![self.exchange(peer.to_string(), now_ms)]
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
            Answer::Failed => slot.link_asked = false,
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
        let up = |s: &Slot| !wrote_all(s) && s.liveness == Liveness::Up;
        let candidates = |keep: &dyn Fn(&Slot) -> bool| -> Vec<(PeerId, bool)> {
            self.peers
                .iter()
                .filter(|(_, s)| up(s) && keep(s))
                .map(|(p, s)| (p.clone(), s.eager))
                .collect()
        };
        let links = candidates(&|s| s.linked());
        if links.is_empty() {
            let all = candidates(&|_| true);
            return self.eager_and_lazy(all, self.config.eager_max, self.config.fanout);
        }
        // Plumtree over the links: pushed to the eager ones, offered to every other
        // one, so a message reaches every node its links connect. Peers that do not
        // know links get it as they did before links.
        let legacy = candidates(&|s| s.legacy);
        let mut actions = self.eager_and_lazy(links, usize::MAX, usize::MAX);
        actions.extend(self.eager_and_lazy(legacy, self.config.eager_max, self.config.fanout));
        actions
    }

    /// Pushes to the eager ones of `peers` (between `eager_min` and `eager_max` of
    /// them, eager ones first, at random), and offers to up to `offered` others.
    fn eager_and_lazy(
        &mut self,
        mut peers: Vec<(PeerId, bool)>,
        eager_max: usize,
        offered: usize,
    ) -> Vec<Action> {
        self.rng.shuffle(&mut peers);
        peers.sort_by_key(|(_, eager)| !*eager);
        let eager = peers.iter().filter(|(_, e)| *e).count();
        let pushed = eager
            .clamp(self.config.eager_min, eager_max.max(self.config.eager_min))
            .min(peers.len());
        let offered = (peers.len() - pushed).min(offered);
        peers
            .iter()
            .take(pushed)
            .map(|(p, _)| push(p, Spread::Forwarded))
            .chain(
                peers
                    .iter()
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
            if let Some(peer) = self.link_to_seek(&chosen, now_ms) {
                chosen.push(peer);
                // Rounds stay fast while a node has almost no link: it would
                // otherwise get messages only from its own slow rounds. With a few,
                // it seeks more at the pace of its rounds.
                if self.links() < self.config.urgent_links {
                    self.interval_ms = self.config.round_ms;
                }
            }
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
        let mut actions: Vec<Action> = chosen
            .into_iter()
            .map(|peer| self.exchange(peer, now_ms))
            .collect();
        actions.push(self.wake());
        actions
    }

    /// While this node has room for links, a peer to ask for one this round (besides
    /// `chosen`): one that is up, not linked, not asked and not refused lately.
    fn link_to_seek(&mut self, chosen: &[PeerId], now_ms: u64) -> Option<PeerId> {
        if !self.has_link_room() {
            return None;
        }
        let open: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(p, s)| !s.exchanging && open_for_link(s, now_ms) && !chosen.contains(p))
            .map(|(p, _)| p.clone())
            .collect();
        self.sample(open, 1).pop()
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

/// Whether a link may be asked of this peer now.
fn open_for_link(slot: &Slot, now_ms: u64) -> bool {
    !slot.want && !slot.legacy && slot.liveness != Liveness::Down && slot.refused_until_ms <= now_ms
}

fn mark_down(slot: &mut Slot, now_ms: u64, max_retry_ms: u64) {
    // A link to a node that is down carries nothing: it is dropped (the node hears
    // it in the next hello, if it answers again), and another sought.
    slot.set_want(false, now_ms);
    slot.link_asked = false;
    if slot.liveness != Liveness::Down {
        slot.liveness = Liveness::Down;
    } else {
        slot.retry_wait_ms = (slot.retry_wait_ms * 2).min(max_retry_ms);
    }
    slot.retry_at_ms = now_ms + slot.retry_wait_ms;
}

#[cfg(test)]
mod tests;
