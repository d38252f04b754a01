//! A simulated network that runs the real core: every simulated node is a [`Core`],
//! fed through [`Core::handle`] the events a node's drive would feed it, with link
//! delays, packet loss (a lost packet of a TCP exchange costs a retransmission, it
//! does not lose the exchange), partitions and nodes that stop. The simulator in
//! `benches/gossip_sim.rs` runs it at 1,000 and 10,000 nodes; since it calls the very
//! code the node calls, it cannot drift from it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};

use super::{Action, Answer, Config, Core, Event, Rng, Spread};
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
    },
    Answered {
        node: usize,
        peer: usize,
        reached: bool,
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

/// The address a simulated node is known by.
pub fn name(i: usize) -> String {
    format!("n{i}")
}

fn index(name: &str) -> usize {
    name[1..].parse().unwrap_or(0)
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
        for i in 0..n {
            let mut peers: Vec<usize> = Vec::new();
            let want = sim.config.table.min(n.saturating_sub(1));
            if want + 1 >= n {
                peers.extend((0..n).filter(|&j| j != i));
            } else {
                while peers.len() < want {
                    let j = usize::try_from(rng.below(n as u64)).unwrap_or(0);
                    if j != i && !peers.contains(&j) {
                        peers.push(j);
                    }
                }
            }
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
                        self.counts.offers += 1;
                        if self.reachable(i, to) {
                            let delay = self.transit();
                            self.at(
                                delay,
                                Happening::Offer {
                                    to,
                                    from: i,
                                    message,
                                },
                            );
                        }
                        continue;
                    }
                    self.push(i, to, message, spread == Spread::ToEveryPeer);
                }
                Action::Exchange { peer } => {
                    let to = index(&peer);
                    self.counts.exchanges += 1;
                    if self.reachable(i, to) {
                        let delay = self.transit();
                        self.at(delay, Happening::Greeted { to, from: i });
                    } else {
                        self.at(
                            REFUSED_MS,
                            Happening::Answered {
                                node: i,
                                peer: to,
                                reached: false,
                            },
                        );
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
            Happening::Offer { to, from, message } => {
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
            Happening::Greeted { to, from } => {
                // A partition or a stop cuts an exchange in flight, too.
                if !self.reachable(from, to) {
                    self.at(
                        REFUSED_MS,
                        Happening::Answered {
                            node: from,
                            peer: to,
                            reached: false,
                        },
                    );
                    return;
                }
                self.feed(to, Fed::HeardFrom(name(from)));
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
                    },
                );
            }
            Happening::Answered {
                node,
                peer,
                reached,
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
