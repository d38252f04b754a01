//! A simulated network that runs the real core: every simulated node is a [`Core`],
//! fed through [`Core::handle`] the events a node's drive would feed it, with link
//! delays, packet loss (a lost packet of a TCP exchange costs a retransmission, it
//! does not lose the exchange), partitions and nodes that stop. The simulator in
//! `benches/gossip_sim.rs` runs it at 1,000 and 10,000 nodes; since it calls the very
//! code the node calls, it cannot drift from it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use super::super::deferred::OFFER_DELAY_MS;
use super::super::holders::Holders;
use super::{Action, Answer, Config, Core, Event, Link, Rng, Spread, Word};
use crate::message::AuthorId;

/// A simulated network's settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub nodes: usize,
    /// Peers each node knows (the real table holds 64 at most).
    pub table: usize,
    /// One-way link delay, drawn uniformly from this range (ms).
    pub delay_ms: (u64, u64),
    /// Share of packets lost; each loss delays a TCP exchange by [`RETRANSMIT_MS`].
    pub loss: f64,
    pub fanout: usize,
    pub seed: u64,
    /// Tables filled in joining order, as a real network forms through one invite:
    /// each node knows up to `table` nodes that joined before it, and each of those
    /// takes it back while its own table has room. Otherwise `table` random nodes.
    pub joining: bool,
}

/// What a lost packet costs a TCP exchange: the minimum retransmission timeout.
pub const RETRANSMIT_MS: u64 = 200;
/// How long a call to a stopped node takes to fail (connection refused: one round
/// trip).
const REFUSED_MS: u64 = 1;

/// An event as a node's core was fed it, kept to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fed {
    Learned(String),
    Stored(Vec<AuthorId>, bool),
    Exchanged(String, Answer),
    PushFailed(String),
    Pushed(String, bool),
    Wanted(String),
    HeardFrom(String),
    Proposed(String, Option<Word>),
    LinkAnswered(String, Option<Word>),
    Timer,
}

impl Fed {
    pub fn as_event(&self) -> Event<'_> {
        match self {
            Fed::Learned(peer) => Event::Learned { peer },
            Fed::Stored(authors, mine) => Event::Stored {
                authors,
                mine: *mine,
            },
            Fed::Exchanged(peer, answer) => Event::Exchanged {
                peer,
                answer: *answer,
            },
            Fed::PushFailed(peer) => Event::PushFailed { peer },
            Fed::Pushed(peer, fresh) => Event::Pushed {
                peer,
                fresh: *fresh,
            },
            Fed::Wanted(peer) => Event::Wanted { peer },
            Fed::HeardFrom(peer) => Event::HeardFrom { peer },
            Fed::Proposed(peer, word) => Event::Proposed { peer, word: *word },
            Fed::LinkAnswered(peer, word) => Event::LinkAnswered { peer, word: *word },
            Fed::Timer => Event::Timer,
        }
    }
}

/// One simulated node: the crate's core, and the messages it holds.
pub struct SimNode {
    pub core: Core,
    pub held: HashSet<u32>,
    /// Messages asked for after an offer: asked once, from the first offerer (the
    /// node keeps the same set, see `Replicator::on_offer`).
    pub asked: HashSet<u32>,
    /// Peers known to hold a message: not pushed nor offered it (the node's own
    /// table, `holders`).
    holders: Holders,
    /// Every event fed and the actions returned, when tracing.
    pub trace: Option<Vec<(u64, Fed, Vec<Action>)>>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Happening {
    Timer {
        node: usize,
    },
    Push {
        to: usize,
        from: usize,
        message: u32,
        spread: bool,
    },
    Greeted {
        to: usize,
        from: usize,
        word: Option<Word>,
    },
    Answered {
        node: usize,
        peer: usize,
        reached: bool,
        word: Word,
    },
    /// A push's answer back at its sender: whether it brought something new.
    PushAnswered {
        node: usize,
        peer: usize,
        fresh: bool,
    },
    PushRefused {
        node: usize,
        peer: usize,
    },
    /// An offer of `message` from `node` to `to` comes due (offers wait
    /// [`OFFER_DELAY_MS`], as the node's do).
    OfferDue {
        node: usize,
        to: usize,
        message: u32,
    },
    /// An offer of `message` arriving at `to`.
    Offer {
        to: usize,
        from: usize,
        message: u32,
    },
    /// `peer` asked `node` for the offered `message`.
    Want {
        node: usize,
        peer: usize,
        message: u32,
    },
}

/// Counters of a run.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub pushes: u64,
    pub duplicates: u64,
    pub exchanges: u64,
    pub repaired: u64,
    pub offers: u64,
}

/// When each node first held one message (ms), `None` for never.
pub type Arrivals = Vec<Option<u64>>;

pub struct Sim {
    pub config: SimConfig,
    pub nodes: Vec<SimNode>,
    pub now: u64,
    pub counts: Counts,
    queue: BinaryHeap<Reverse<(u64, u64, Happening)>>,
    sequence: u64,
    rng: Rng,
    stopped: Vec<bool>,
    /// Nodes below this index cannot reach those at or above it, and back.
    partition: Option<usize>,
    /// Each message's author node.
    authors: Vec<usize>,
    arrivals: Vec<Arrivals>,
}

/// Each node's `table` peers, drawn at random.
fn random_tables(n: usize, table: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let want = table.min(n.saturating_sub(1));
    (0..n)
        .map(|i| {
            if want + 1 >= n {
                return (0..n).filter(|&j| j != i).collect();
            }
            let mut peers: Vec<usize> = Vec::new();
            while peers.len() < want {
                let j = usize::try_from(rng.below(n as u64)).unwrap_or(0);
                if j != i && !peers.contains(&j) {
                    peers.push(j);
                }
            }
            peers
        })
        .collect()
}

/// Tables as a network joining one node at a time fills them: a node adopts up to
/// `table` of the nodes before it, and each of those adopts it back while it has
/// room, so the first nodes are in nearly every table and the last in few.
fn joining_tables(n: usize, table: usize, rng: &mut Rng) -> Vec<Vec<usize>> {
    let mut tables: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in 1..n {
        let mut earlier: Vec<usize> = (0..i).collect();
        rng.shuffle(&mut earlier);
        for j in earlier.into_iter().take(table) {
            if tables[i].len() >= table {
                break;
            }
            tables[i].push(j);
            if tables[j].len() < table {
                tables[j].push(i);
            }
        }
    }
    tables
}

/// The address a simulated node is known by.
pub fn name(i: usize) -> String {
    format!("n{i}")
}

fn index(name: &str) -> usize {
    name[1..].parse().unwrap_or(0)
}

/// The id a simulated message is known by in a node's [`Holders`].
fn id_of(message: u32) -> crate::hex::Hash {
    let mut id = [0u8; 32];
    id[..4].copy_from_slice(&message.to_le_bytes());
    crate::hex::Hex(id)
}

/// The author id of node `i`.
pub fn author(i: usize) -> AuthorId {
    let mut id = [0u8; 32];
    id[..8].copy_from_slice(&(i as u64).to_le_bytes());
    crate::hex::Hex(id)
}

impl Sim {
    /// A network where each node knows `table` random others, all of them learned at
    /// time 0 (so each greets all of its peers at once, as a node does at start).
    pub fn new(config: SimConfig) -> Sim {
        let mut rng = Rng::new(config.seed);
        let n = config.nodes;
        let nodes = (0..n)
            .map(|i| SimNode {
                core: Core::new(Config::new(config.fanout), config.seed ^ (i as u64 + 1)),
                held: HashSet::new(),
                asked: HashSet::new(),
                holders: Holders::default(),
                trace: None,
            })
            .collect();
        let mut sim = Sim {
            nodes,
            now: 0,
            counts: Counts::default(),
            queue: BinaryHeap::new(),
            sequence: 0,
            stopped: vec![false; n],
            partition: None,
            authors: Vec::new(),
            arrivals: Vec::new(),
            rng: Rng::new(rng.next_u64()),
            config,
        };
        let tables = if sim.config.joining {
            joining_tables(n, sim.config.table, &mut rng)
        } else {
            random_tables(n, sim.config.table, &mut rng)
        };
        for (i, peers) in tables.into_iter().enumerate() {
            for j in peers {
                sim.feed(i, Fed::Learned(name(j)));
            }
            sim.feed(i, Fed::Timer);
        }
        sim
    }

    /// Records every event node `i` is fed from now on, with the actions returned.
    pub fn trace(&mut self, i: usize) {
        self.nodes[i].trace = Some(Vec::new());
    }

    pub fn stop(&mut self, i: usize) {
        self.stopped[i] = true;
    }

    pub fn restart(&mut self, i: usize) {
        self.stopped[i] = false;
    }

    /// Cuts the network in two: nodes below `at`, and the others.
    pub fn partition(&mut self, at: Option<usize>) {
        self.partition = at;
    }

    /// Node `i` writes a new message now; returns its number.
    pub fn send(&mut self, i: usize) -> u32 {
        let message = u32::try_from(self.authors.len()).unwrap_or(u32::MAX);
        self.authors.push(i);
        let mut arrivals = vec![None; self.nodes.len()];
        arrivals[i] = Some(self.now);
        self.arrivals.push(arrivals);
        self.nodes[i].held.insert(message);
        self.stored(i, message, true);
        message
    }

    /// When each node first held `message`.
    pub fn arrivals(&self, message: u32) -> &Arrivals {
        &self.arrivals[message as usize]
    }

    /// Runs every happening up to time `until` (ms).
    pub fn run_until(&mut self, until: u64) {
        while let Some(Reverse((at, _, _))) = self.queue.peek() {
            if *at > until {
                break;
            }
            let Some(Reverse((at, _, happening))) = self.queue.pop() else {
                break;
            };
            self.now = at;
            self.happen(happening);
        }
        self.now = until;
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        let split = self.partition.is_some_and(|at| (a < at) != (b < at));
        !self.stopped[b] && !split
    }

    /// One way across the network: a delay, and a retransmission per lost packet.
    fn transit(&mut self) -> u64 {
        let (low, high) = self.config.delay_ms;
        let mut delay = low + self.rng.below(high.saturating_sub(low) + 1);
        while (self.rng.below(1_000_000) as f64) < self.config.loss * 1_000_000.0 {
            delay += RETRANSMIT_MS;
        }
        delay
    }

    fn at(&mut self, delay: u64, happening: Happening) {
        self.sequence += 1;
        self.queue
            .push(Reverse((self.now + delay, self.sequence, happening)));
    }

    /// Feeds node `i`'s core and carries out what it says; `message` is the one a
    /// `Stored` is about.
    fn feed_about(&mut self, i: usize, fed: Fed, message: Option<u32>) {
        let now = self.now;
        let actions = self.nodes[i].core.handle(fed.as_event(), now);
        if let Some(trace) = &mut self.nodes[i].trace {
            trace.push((now, fed, actions.clone()));
        }
        for action in actions {
            match action {
                Action::Push { peer, spread } => {
                    let (to, Some(message)) = (index(&peer), message) else {
                        continue;
                    };
                    if spread == Spread::Offered {
                        self.at(
                            OFFER_DELAY_MS,
                            Happening::OfferDue {
                                node: i,
                                to,
                                message,
                            },
                        );
                    } else if !self.nodes[i].holders.holds(&id_of(message), &peer) {
                        self.push(i, to, message, spread == Spread::ToEveryPeer);
                    }
                }
                Action::Exchange { peer } => {
                    let to = index(&peer);
                    self.counts.exchanges += 1;
                    let word = self.nodes[i].core.word(&peer);
                    if self.reachable(i, to) {
                        let delay = self.transit();
                        self.at(delay, Happening::Greeted { to, from: i, word });
                    } else {
                        self.refused(i, to);
                    }
                }
                Action::Wake { at_ms } => self.at(
                    at_ms.saturating_sub(now).max(1),
                    Happening::Timer { node: i },
                ),
            }
        }
    }

    fn push(&mut self, i: usize, to: usize, message: u32, to_all: bool) {
        self.counts.pushes += 1;
        if self.reachable(i, to) {
            let delay = self.transit();
            let spread = to_all;
            self.at(
                delay,
                Happening::Push {
                    to,
                    from: i,
                    message,
                    spread,
                },
            );
        } else {
            self.at(REFUSED_MS, Happening::PushRefused { node: i, peer: to });
        }
    }

    fn feed(&mut self, i: usize, fed: Fed) {
        self.feed_about(i, fed, None);
    }

    /// An exchange of `node` with `peer` that could not reach it.
    fn refused(&mut self, node: usize, peer: usize) {
        self.at(
            REFUSED_MS,
            Happening::Answered {
                node,
                peer,
                reached: false,
                word: Word::NONE,
            },
        );
    }

    /// Node `to` greeted by `from`, whose hello said `word`: what the node's
    /// `Replicator::on_hello` does, a peer in the table told to the core, one outside
    /// adopted for a link the core would take (the node first proves its address with
    /// a probe, which the simulation skips). The word of the answer.
    fn greeted(&mut self, to: usize, from: usize, word: Option<Word>) -> Word {
        let known = self.nodes[to].core.liveness(&name(from)).is_some();
        if known {
            self.feed(to, Fed::HeardFrom(name(from)));
        } else {
            let Some(asked) = word.filter(|w| w.link != Link::Drop) else {
                return Word::unheld(self.now);
            };
            let (core, now) = (&self.nodes[to].core, self.now);
            if !core.takes_link(asked.link == Link::Urgent, now) {
                return Word::unheld(now);
            }
            self.feed(to, Fed::Learned(name(from)));
        }
        self.feed(to, Fed::Proposed(name(from), word));
        self.nodes[to].core.answer_word(&name(from), self.now)
    }

    fn stored(&mut self, i: usize, message: u32, mine: bool) {
        let author = author(self.authors[message as usize]);
        self.feed_about(i, Fed::Stored(vec![author], mine), Some(message));
    }

    fn receive(&mut self, i: usize, message: u32) -> bool {
        if !self.nodes[i].held.insert(message) {
            return false;
        }
        if let Some(slot) = self.arrivals[message as usize].get_mut(i) {
            slot.get_or_insert(self.now);
        }
        true
    }

    fn happen(&mut self, happening: Happening) {
        match happening {
            Happening::Timer { node } => {
                if !self.stopped[node] {
                    self.feed(node, Fed::Timer);
                } else {
                    // A stopped node's timer waits for its restart.
                    self.at(1000, Happening::Timer { node });
                }
            }
            Happening::Push {
                to,
                from,
                message,
                spread,
            } => {
                if !self.reachable(from, to) {
                    return;
                }
                self.nodes[to].holders.note(id_of(message), &name(from));
                let fresh = self.receive(to, message);
                if !fresh {
                    self.counts.duplicates += 1;
                } else if !spread {
                    self.stored(to, message, false);
                }
                let back = self.transit();
                self.at(
                    back,
                    Happening::PushAnswered {
                        node: from,
                        peer: to,
                        fresh,
                    },
                );
            }
            Happening::PushAnswered { node, peer, fresh } => {
                if !self.stopped[node] {
                    self.feed(node, Fed::Pushed(name(peer), fresh));
                }
            }
            Happening::PushRefused { node, peer } => {
                if !self.stopped[node] {
                    self.feed(node, Fed::PushFailed(name(peer)));
                }
            }
            Happening::OfferDue { node, to, message } => {
                if self.stopped[node] || self.nodes[node].holders.holds(&id_of(message), &name(to))
                {
                    return;
                }
                self.counts.offers += 1;
                if self.reachable(node, to) {
                    let delay = self.transit();
                    self.at(
                        delay,
                        Happening::Offer {
                            to,
                            from: node,
                            message,
                        },
                    );
                }
            }
            Happening::Offer { to, from, message } => {
                if self.reachable(from, to) {
                    self.nodes[to].holders.note(id_of(message), &name(from));
                }
                if self.reachable(from, to)
                    && !self.nodes[to].held.contains(&message)
                    && self.nodes[to].asked.insert(message)
                {
                    let back = self.transit();
                    self.at(
                        back,
                        Happening::Want {
                            node: from,
                            peer: to,
                            message,
                        },
                    );
                }
            }
            Happening::Want {
                node,
                peer,
                message,
            } => {
                if !self.stopped[node] {
                    self.feed(node, Fed::Wanted(name(peer)));
                    self.push(node, peer, message, false);
                }
            }
            Happening::Greeted { to, from, word } => {
                // A partition or a stop cuts an exchange in flight, too.
                if !self.reachable(from, to) {
                    self.refused(from, to);
                    return;
                }
                let answer = self.greeted(to, from, word);
                // Digest first: only a difference costs more; the greeted side gets
                // what it lacks (pushed to it by the greeter) at once.
                let missing: Vec<u32> = self.nodes[from]
                    .held
                    .difference(&self.nodes[to].held)
                    .copied()
                    .collect();
                for message in missing {
                    if self.receive(to, message) {
                        self.counts.repaired += 1;
                        self.stored(to, message, false);
                    }
                }
                let back = self.transit();
                self.at(
                    back,
                    Happening::Answered {
                        node: from,
                        peer: to,
                        reached: true,
                        word: answer,
                    },
                );
            }
            Happening::Answered {
                node,
                peer,
                reached,
                word,
            } => {
                if self.stopped[node] {
                    return;
                }
                if !reached || !self.reachable(node, peer) {
                    self.feed(node, Fed::Exchanged(name(peer), Answer::Unreachable));
                    return;
                }
                let missing: Vec<u32> = self.nodes[peer]
                    .held
                    .difference(&self.nodes[node].held)
                    .copied()
                    .collect();
                self.feed(node, Fed::LinkAnswered(name(peer), Some(word)));
                let answer = Answer::Up { id: author(peer) };
                self.feed(node, Fed::Exchanged(name(peer), answer));
                for message in missing {
                    if self.receive(node, message) {
                        self.counts.repaired += 1;
                        self.stored(node, message, false);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Core, Sim, SimConfig};

    fn config(nodes: usize) -> SimConfig {
        SimConfig {
            nodes,
            table: 64,
            delay_ms: (1, 50),
            loss: 0.01,
            fanout: 8,
            seed: 3,
            joining: false,
        }
    }

    /// The simulator runs the crate's core and nothing else: the events node 0 was
    /// fed, replayed into a fresh core with the same seed, give the very actions
    /// the simulation carried out.
    #[test]
    fn the_simulator_runs_the_real_core() {
        let mut sim = Sim::new(config(50));
        sim.trace(0);
        // Node 0's core as tracing begins (it has learned its peers).
        let mut replay: Core = sim.nodes[0].core.clone();
        sim.run_until(3_000);
        sim.send(0);
        sim.run_until(6_000);
        let trace = sim.nodes[0].trace.take().unwrap();
        assert!(trace.len() > 5, "{} events", trace.len());
        for (now, fed, actions) in &trace {
            assert_eq!(
                &replay.handle(fed.as_event(), *now),
                actions,
                "at {now}: {fed:?}"
            );
        }
    }

    /// Tables filled in joining order hold the first nodes in nearly every table
    /// and the last in few; links are symmetric and bounded whatever the tables, and
    /// a message over them reaches every node within a second.
    #[test]
    fn in_a_network_that_joined_in_order_links_carry_a_message_to_every_node() {
        let n = 200;
        let mut sim = Sim::new(SimConfig {
            joining: true,
            ..config(n)
        });
        sim.run_until(20_000);
        let links: Vec<Vec<usize>> = (0..n)
            .map(|i| {
                (0..n)
                    .filter(|&j| sim.nodes[i].core.linked(&super::name(j)))
                    .collect()
            })
            .collect();
        for (i, held) in links.iter().enumerate() {
            assert!(
                (1..=super::super::LINKS).contains(&held.len()),
                "node {i}: {held:?}"
            );
            for &j in held {
                assert!(links[j].contains(&i), "{i} holds {j}, not back");
            }
        }
        for author in [0, 7, 150, 199] {
            let at = sim.now;
            let m = sim.send(author);
            sim.run_until(at + 1_000);
            let missing = sim.arrivals(m).iter().filter(|a| a.is_none()).count();
            assert_eq!(missing, 0, "from node {author}, within 1 s");
        }
    }

    #[test]
    fn a_message_reaches_every_node_and_a_partition_heals() {
        let mut sim = Sim::new(config(200));
        sim.run_until(3_000);
        let m = sim.send(5);
        sim.run_until(4_000);
        assert!(
            sim.arrivals(m).iter().all(Option::is_some),
            "all within 1 s"
        );
        sim.partition(Some(100));
        let cut = sim.send(150);
        sim.run_until(8_000);
        assert!(sim.arrivals(cut)[..100].iter().all(Option::is_none));
        sim.partition(None);
        sim.run_until(20_000);
        assert!(sim.arrivals(cut).iter().all(Option::is_some), "healed");
        sim.stop(7);
        let missed = sim.send(9);
        sim.run_until(25_000);
        assert!(sim.arrivals(missed)[7].is_none());
        sim.restart(7);
        sim.run_until(60_000);
        assert!(
            sim.arrivals(missed)[7].is_some(),
            "a restarted node catches up"
        );
    }
}
