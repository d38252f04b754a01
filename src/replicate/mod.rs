//! Replication: every node pushes what it stores to its peers and pulls what it
//! lacks, so all nodes end with the same messages. Peers are learned from each other
//! and watched for liveness. The policy (who gets a push, who is greeted when) is
//! [`core`], a state machine without I/O; this module feeds it events and carries
//! out its actions on a fixed pool of threads ([`drive`]).

mod candidates;
mod client;
pub mod core;
mod deferred;
mod drive;
mod holders;
mod outbox;
pub mod peers;
pub mod protocol;
pub mod reconcile;
mod reconcile_peer;
mod rounds;
pub mod swim;
mod worker;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use self::core::{Action, Answer, Core, Event, Link, Word};
pub use self::core::{ORIGIN_FANOUT, Spread};
pub use client::{CLOCK_SKEW_STATUS, PeerClient, REFUSED_KEY, answer_aad, request_aad};
use drive::{Alarm, Lane, Lanes, Pool};
use peers::{PeerState, PeerTable};
use protocol::{
    HeadsPage, HeadsRequest, Hello, HelloReply, MAX_HEADS_PAGE, MAX_PAGE, Messages, NodeInfo,
    PushReply, RangeRequest,
};

use crate::api::Want;
use crate::hex::Hash;
use crate::identity::Identity;
use crate::mbox::{Outcome, StoreError, Writer};
use crate::message::{AuthorId, Message};
use crate::seal::Keyring;

/// Most bytes of messages in one range answer (at least one message is sent).
const MAX_RANGE_BYTES: usize = 1024 * 1024;
/// Most peer addresses a node sends in one hello or answer (it takes up to
/// [`MAX_PEERS_SHARED`] from older nodes). Knowing one member is still enough to
/// join: every exchange brings another sample, and the table holds
/// [`peers::MAX_PEERS`] at most.
const PEERS_SHARED_SAMPLE: usize = 8;
/// How long an offered message asked for is not asked for again.
const ASK_AGAIN_MS: u64 = 2_000;
/// Most ids remembered as asked for; past it the stale ones go, or all of them.
const MAX_ASKED: usize = 100_000;
/// Time between two probes of addresses not yet proven (see [`candidates`]).
const PROBE_EVERY: Duration = Duration::from_millis(100);
/// Least time between two peers of a full table replaced by nodes that greeted this
/// one: the table turns over slowly, whatever a member does.
const REPLACE_EVERY_MS: u64 = 30_000;
/// Least time between two peers of a full table replaced by nodes that asked for a
/// link this node takes (the core bounds how many it takes: see `core::Link`).
const LINK_ROOM_EVERY_MS: u64 = 1_000;
/// Longest sleep of the prober with nothing due (it is woken when an address is
/// taken, and at shutdown).
const PROBER_IDLE: Duration = Duration::from_secs(5);
/// Longest a stopping node waits for its leave to be sent to members.
const LEAVE_PATIENCE: Duration = Duration::from_millis(500);
/// Ids of messages received with `sent_to_all` and not to be forwarded, until the
/// dispatcher sees them stored. A bound, in case the dispatcher never does.
const MAX_NO_FORWARD: usize = 100_000;

/// A batch for a peer's worker, and how far it is pushed.
pub type Batch = (Arc<Vec<Message>>, Spread);

/// A fork seen: an author signed two different messages with the same seq.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fork {
    pub author: AuthorId,
    pub seq: u64,
    pub held: Option<Hash>,
    pub offered: Hash,
}

/// Settings from the command line.
pub struct Settings {
    pub me: NodeInfo,
    /// The node's identity key: a hello's answer is signed with it, to prove the id.
    pub identity: Identity,
    pub peers_file: PathBuf,
    pub bootstrap: Vec<String>,
    /// Peers that each new message is pushed to at once, once more are known.
    pub fanout: usize,
    /// Where the membership socket (UDP) binds: the HTTP listener's address. `None`
    /// for a node without an advertised address, which no one could probe.
    pub swim_at: Option<std::net::SocketAddr>,
}

pub struct Replicator {
    pub me: NodeInfo,
    identity: Identity,
    /// Most heads in one answer: [`MAX_HEADS_PAGE`], or fewer in tests
    /// (`DSHARE_TEST_HEADS_PAGE`), to page many authors' heads with few authors.
    heads_page: usize,
    pub writer: Writer,
    pub peers: PeerTable,
    pub keyring: Arc<Keyring>,
    client: PeerClient,
    /// The policy; locked only while it handles one event, never during I/O.
    core: Mutex<Core>,
    lanes: Lanes,
    pool: Pool,
    alarm: Arc<Alarm>,
    /// Tells the membership thread whom to join through; `None` without one.
    swim: Mutex<Option<swim::Handle>>,
    /// Local sends wait here while a peer is too far behind (see [`outbox`]).
    pace: Arc<outbox::Pace>,
    /// Addresses heard of, waiting to prove themselves before they are adopted.
    candidates: Mutex<candidates::Candidates>,
    /// Wakes the prober: an address was taken to be probed, or the node stops.
    candidate_taken: Condvar,
    /// When a peer last made room for a node that greeted this one (0: never).
    last_replaced: AtomicU64,
    /// Messages asked for after an offer, and when: asked again only after
    /// [`ASK_AGAIN_MS`] (the push that was asked for may have been lost).
    asked: Mutex<std::collections::HashMap<Hash, u64>>,
    /// Received with `sent_to_all`: stored here but not forwarded.
    no_forward: Mutex<HashSet<Hash>>,
    /// Peers known to hold a message lately: not offered it, nor pushed it.
    holders: Mutex<holders::Holders>,
    /// Offers waiting to go (see [`deferred`]).
    deferred: deferred::Deferred,
    self_urls: Mutex<HashSet<String>>,
    stop: AtomicBool,
    /// When a pushed message was last stored here, in ms since the Unix epoch.
    push_stored_ms: AtomicU64,
    /// Messages from peers refused by a check (signature, id, limits, rules).
    pub refused: AtomicU64,
    pub forks: Mutex<Vec<Fork>>,
    /// While the store is recovering a lost end: the peers asked so far, and whether
    /// one of them answered (and its missing messages were pulled).
    recovery: Mutex<(HashSet<String>, bool)>,
}

impl Replicator {
    pub fn start(writer: Writer, keyring: Arc<Keyring>, settings: Settings) -> Arc<Replicator> {
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        let mut policy = self::core::Config::new(settings.fanout);
        if settings.me.url.is_none() {
            // No one can push to a node without an address: its own rounds are how
            // it receives, so they do not slow down at rest.
            policy.round_max_ms = policy.round_ms;
        }
        let core = Core::new(policy, u64::from_le_bytes(seed));
        let rep = Arc::new_cyclic(|me| Replicator {
            client: PeerClient::new(
                Arc::clone(&keyring),
                Arc::clone(writer.peer_clocks()),
                Duration::from_secs(3),
            ),
            me: settings.me,
            identity: settings.identity,
            heads_page: heads_page_setting(),
            writer,
            peers: PeerTable::load(settings.peers_file),
            keyring,
            core: Mutex::new(core),
            lanes: Mutex::default(),
            pool: Pool::start(me, worker::serve),
            alarm: Arc::default(),
            swim: Mutex::new(None),
            pace: Arc::default(),
            candidates: Mutex::default(),
            candidate_taken: Condvar::new(),
            last_replaced: AtomicU64::new(0),
            no_forward: Mutex::new(HashSet::new()),
            holders: Mutex::default(),
            deferred: deferred::Deferred::default(),
            asked: Mutex::default(),
            self_urls: Mutex::new(HashSet::new()),
            stop: AtomicBool::new(false),
            push_stored_ms: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            forks: Mutex::new(Vec::new()),
            recovery: Mutex::new((HashSet::new(), false)),
        });
        if let Some(url) = &rep.me.url {
            rep.self_urls.lock().expect("self lock").insert(url.clone());
        }
        // The operator named these: adopted at once, proven at their first hello.
        for url in &settings.bootstrap {
            rep.peers.add(url);
        }
        if rep.writer.store().recovering() {
            if rep.peers.urls().is_empty() {
                // Nobody could hold what was lost: nothing to wait for.
                rep.writer.store().end_recovery();
            } else {
                crate::warning!(
                    "the end of the box was lost: new sends wait until the peers have been asked for it"
                );
            }
        }
        if let (Some(at), Some(url)) = (settings.swim_at, &rep.me.url) {
            let seed = u64::from_le_bytes(seed).rotate_left(17);
            *rep.swim.lock().expect("swim lock") = swim::start(
                &Arc::downgrade(&rep),
                Arc::clone(&rep.keyring),
                at,
                url,
                seed,
            );
        }
        for url in rep.peers.urls() {
            rep.add_lane(&url);
        }
        drive::start_timer(&Arc::downgrade(&rep), Arc::clone(&rep.alarm));
        let prober = Arc::clone(&rep);
        thread::Builder::new()
            .name("prober".into())
            .spawn(move || prober.probe_candidates())
            .expect("spawn the prober");
        let offerer = Arc::downgrade(&rep);
        thread::Builder::new()
            .name("offers".into())
            .spawn(move || {
                while let Some(rep) = offerer.upgrade()
                    && !rep.stopping()
                {
                    // A new offer and the shutdown wake it: the bound is only a
                    // backstop, long enough that an idle node does not wake for it.
                    let due = rep
                        .deferred
                        .take_due(Duration::from_secs(60), crate::time::now_ms);
                    for (_, peer, batch) in due {
                        rep.offer_now(&peer, &batch);
                    }
                }
            })
            .expect("spawn the offers thread");
        // The pushes start on the thread that stored the messages, as soon as they
        // are durable: no hand-off to a dispatcher thread on the way to the peers.
        // A weak reference, so that the store (which lives as long as any writer)
        // does not keep the replicator alive.
        let dispatcher = Arc::downgrade(&rep);
        rep.writer.store().subscribe(move |batch| {
            if let Some(rep) = dispatcher.upgrade() {
                rep.dispatch(batch);
            }
        });
        rep
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    pub fn shutdown(&self) {
        if let Some(swim) = self.swim.lock().expect("swim lock").take() {
            swim.leave(LEAVE_PATIENCE);
        }
        self.stop.store(true, Ordering::Relaxed);
        {
            // Under the lock, so the prober cannot miss it between its check and its wait.
            let _candidates = self.candidates.lock().expect("candidates lock");
            self.candidate_taken.notify_all();
        }
        self.pool.stop();
        self.deferred.stop();
        self.alarm.stop();
        self.lanes.lock().expect("lanes lock").clear();
    }

    /// Hands `event` to the core and carries out what it says; `batch` is the one a
    /// [`Event::Stored`] is about. The core's lock is let go before any action.
    fn feed(&self, event: Event<'_>, batch: Option<&Arc<Vec<Message>>>) {
        let actions = self
            .core
            .lock()
            .expect("core lock")
            .handle(event, crate::time::now_ms());
        self.act(actions, batch);
    }

    fn act(&self, actions: Vec<Action>, batch: Option<&Arc<Vec<Message>>>) {
        for action in actions {
            match action {
                Action::Push { peer, spread } => {
                    let Some(batch) = batch else { continue };
                    if spread == Spread::Offered {
                        let now = crate::time::now_ms();
                        if let Some((peer, batch)) = self.deferred.hold(&peer, batch, now) {
                            self.offer_now(&peer, &batch);
                        }
                    } else if !self.holds_all(&peer, batch) {
                        self.queue_for(&peer, Arc::clone(batch), spread);
                    }
                }
                Action::Exchange { peer } => {
                    let lane = self.lanes.lock().expect("lanes lock").get(&peer).cloned();
                    match lane {
                        Some(lane) => self.pool.kick(&lane, true),
                        // Forgotten meanwhile: the core is told, or it would wait
                        // for that exchange's end for ever.
                        None => self.feed(
                            Event::Exchanged {
                                peer: &peer,
                                answer: Answer::Failed,
                            },
                            None,
                        ),
                    }
                }
                Action::Wake { at_ms } => self.alarm.set(at_ms),
            }
        }
    }

    /// Queues `batch` for the peer's lane, and has it served.
    fn queue_for(&self, peer: &str, batch: Arc<Vec<Message>>, spread: Spread) {
        let lane = self.lanes.lock().expect("lanes lock").get(peer).cloned();
        // A full queue means the peer is slow or gone: dropped for it, and repair
        // brings it.
        if let Some(lane) = lane
            && lane.outbox.offer(&batch, spread)
        {
            self.pool.kick(&lane, false);
        }
    }

    /// Offers the peer those messages of `batch` it is not known to hold.
    fn offer_now(&self, peer: &str, batch: &Arc<Vec<Message>>) {
        let lacking: Vec<Message> = {
            let holders = self.holders.lock().expect("holders lock");
            batch
                .iter()
                .filter(|m| !holders.holds(&m.id, peer))
                .cloned()
                .collect()
        };
        if lacking.len() == batch.len() {
            self.queue_for(peer, Arc::clone(batch), Spread::Offered);
        } else if !lacking.is_empty() {
            self.queue_for(peer, Arc::new(lacking), Spread::Offered);
        }
    }

    /// Whether the peer is known to hold every message of `batch`.
    fn holds_all(&self, peer: &str, batch: &[Message]) -> bool {
        let holders = self.holders.lock().expect("holders lock");
        batch.iter().all(|m| holders.holds(&m.id, peer))
    }

    /// `from` (a peer's own word, in a push or an offer) holds these messages.
    fn held_by(&self, from: Option<&str>, ids: impl Iterator<Item = Hash>) {
        if let Some(from) = from {
            let mut holders = self.holders.lock().expect("holders lock");
            for id in ids {
                holders.note(id, from);
            }
        }
    }

    /// A random sample of the proven peers, at most [`PEERS_SHARED_SAMPLE`], for a
    /// hello or its answer: each node hands out different ones (the first 256 in
    /// address order were the same everywhere), and a hello's size no longer grows
    /// with the network.
    fn peers_to_share(&self) -> Vec<String> {
        let proven = self.peers.proven_urls();
        self.core
            .lock()
            .expect("core lock")
            .sample(proven, PEERS_SHARED_SAMPLE)
    }

    /// The timer's call: a round of the core.
    fn timer_fired(&self) {
        self.feed(Event::Timer, None);
    }

    /// Hands a batch of newly stored messages to the core, which says who gets it
    /// (see [`Core`]). Runs on the thread that committed the batch, before its writers
    /// are answered: it only queues, never waits.
    fn dispatch(&self, batch: &Arc<Vec<Message>>) {
        // Messages whose author pushed them to every peer are not forwarded.
        let batch = {
            let mut no_forward = self.no_forward.lock().expect("no-forward lock");
            if no_forward.is_empty() {
                Arc::clone(batch)
            } else {
                let keep: Vec<Message> = batch
                    .iter()
                    .filter(|m| !no_forward.remove(&m.id))
                    .cloned()
                    .collect();
                if keep.is_empty() {
                    return;
                }
                Arc::new(keep)
            }
        };
        let mine = batch.iter().all(|m| m.author == self.me.id);
        let mut authors: Vec<AuthorId> = Vec::new();
        for m in batch.iter() {
            if !authors.contains(&m.author) {
                authors.push(m.author);
            }
        }
        self.feed(
            Event::Stored {
                authors: &authors,
                mine,
            },
            Some(&batch),
        );
    }

    /// Waits, before this node signs a new message, while a peer that keeps pace has
    /// more than [`outbox::WINDOW`] of this node's pushes unanswered: senders then go
    /// at the pace the peers can check signatures, and no peer falls seconds behind.
    /// A peer that answers nothing for [`outbox::STALL`] stops counting.
    pub fn pace(&self) {
        self.pace.wait(Duration::from_secs(1), || {
            self.lanes
                .lock()
                .expect("lanes lock")
                .values()
                .any(|lane| lane.outbox.holds_back())
        });
    }

    /// Heard of `url` (a hello's sender, a peer's list): if it is new and not this
    /// node, it waits to be probed, and is adopted only once it proves an id.
    pub fn heard_of(&self, url: &str) {
        self.take_candidate(url, None);
    }

    /// A node not in the table greeted this one (so it holds this node in its own):
    /// it waits to be probed like any address heard of, and once proven it may take
    /// a peer's place if the table is full (see [`Replicator::make_room_for`]).
    fn greeted_by(&self, url: &str, word: Option<Word>) {
        // Only a request is worth adopting it for.
        self.take_candidate(url, Some(word.filter(|w| w.link != Link::Drop)));
    }

    /// `greeted`: `None` for an address heard of, else what the greeter's hello
    /// said of a link.
    fn take_candidate(&self, url: &str, greeted: Option<Option<Word>>) {
        let Ok(url) = crate::node_url::NodeUrl::parse(url).map(String::from) else {
            return;
        };
        if self.self_urls.lock().expect("self lock").contains(&url) || self.peers.contains(&url) {
            return;
        }
        let taken = {
            let mut candidates = self.candidates.lock().expect("candidates lock");
            let now = crate::time::now_ms();
            match greeted {
                Some(Some(word)) => candidates.offer_link(&url, word, now),
                Some(None) => candidates.offer_greeter(&url, now),
                None => candidates.offer(&url, now),
            }
        };
        if taken {
            self.candidate_taken.notify_one();
        }
    }

    /// Probes the waiting addresses one at a time, at most one every
    /// [`PROBE_EVERY`]: this node never probes unproven addresses faster than that,
    /// whatever its peers tell it. Runs on its own thread until the node stops, and
    /// sleeps until the next probe is due or an address is taken: a node whose table
    /// is settled does not wake ten times a second for nothing.
    fn probe_candidates(self: Arc<Self>) {
        let mut candidates = self.candidates.lock().expect("candidates lock");
        while !self.stopping() {
            let now = crate::time::now_ms();
            if let Some(url) = candidates.next_due(now) {
                drop(candidates);
                self.probe(&url);
                thread::sleep(PROBE_EVERY);
                candidates = self.candidates.lock().expect("candidates lock");
                continue;
            }
            let wait = candidates
                .first_due_ms()
                .map_or(PROBER_IDLE, |at| {
                    Duration::from_millis(at.saturating_sub(now))
                })
                .min(PROBER_IDLE);
            candidates = self
                .candidate_taken
                .wait_timeout(candidates, wait)
                .expect("candidates lock")
                .0;
        }
    }

    fn probe(self: &Arc<Self>, url: &str) {
        let proven = worker::probe(self, url);
        let mut candidates = self.candidates.lock().expect("candidates lock");
        match proven {
            Ok(id) if id == self.me.id => {
                candidates.done(url);
                self.self_urls
                    .lock()
                    .expect("self lock")
                    .insert(url.to_string());
            }
            Ok(_) => {
                let greeted = candidates.greeted(url);
                let link = candidates.link(url);
                // Not under the candidates lock: adopting tells the core and SWIM.
                drop(candidates);
                let adopted = match link {
                    Some(word) => self.adopt_for_link(url, word),
                    None => Some(
                        self.adopt(url) || (greeted && self.make_room_for(url, REPLACE_EVERY_MS)),
                    ),
                };
                let mut candidates = self.candidates.lock().expect("candidates lock");
                let now = crate::time::now_ms();
                match adopted {
                    Some(true) => candidates.done(url),
                    Some(false) => candidates.no_room(url, now),
                    None => candidates.later(url, now + LINK_ROOM_EVERY_MS),
                }
            }
            Err(_) => candidates.failed(url, crate::time::now_ms()),
        }
    }

    /// Adopts `url`, a proven node that greeted this one, in the place of a peer of
    /// the full table (one that is down if there is one, else one at random), at
    /// most once every [`REPLACE_EVERY_MS`]. Without it, a node that joins a fleet
    /// whose tables are all full is in no table: nobody pushes to it or watches it,
    /// and it gets messages only by its own pulls. The peer that makes room is still
    /// in other tables, and is heard of again like any address.
    fn make_room_for(&self, url: &str, every_ms: u64) -> bool {
        let now = crate::time::now_ms();
        let last = self.last_replaced.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < every_ms {
            return false;
        }
        let views: Vec<_> = {
            // A link is never the peer that makes room: it is what the room is for.
            let core = self.core.lock().expect("core lock");
            let views = self.peers.views();
            views.into_iter().filter(|v| !core.linked(&v.url)).collect()
        };
        let down: Vec<String> = views
            .iter()
            .filter(|v| v.state == PeerState::Down)
            .map(|v| v.url.clone())
            .collect();
        let pool = if down.is_empty() {
            views.into_iter().map(|v| v.url).collect()
        } else {
            down
        };
        let Some(leaving) = self.core.lock().expect("core lock").sample(pool, 1).pop() else {
            return false;
        };
        self.last_replaced.store(now, Ordering::Relaxed);
        self.peers.remove(&leaving);
        self.remove_lane(&leaving);
        self.adopt(url)
    }

    /// Adopts `url`, a proven node whose hello asked for `link`, and takes the link,
    /// if the core would (it has room for a link, or the request is urgent): in a
    /// full table, in the place of a peer that is not a link, at most one a second.
    /// In a network larger than a table, most hellos come from nodes outside it; a
    /// link taken only within the table would leave a node that joined late with
    /// none.
    /// Whether it was adopted, or `None` when a place is to be made for it but
    /// not this second (it is probed again after [`LINK_ROOM_EVERY_MS`]).
    fn adopt_for_link(&self, url: &str, word: Word) -> Option<bool> {
        let now = crate::time::now_ms();
        let urgent = word.link == Link::Urgent;
        if !self.core.lock().expect("core lock").takes_link(urgent, now) {
            return Some(self.adopt(url));
        }
        if !(self.adopt(url) || self.make_room_for(url, LINK_ROOM_EVERY_MS)) {
            return None;
        }
        self.link_proposed(url, Some(word));
        Some(true)
    }

    /// Tells the core what the hello of `url` said of a link: this node's word for
    /// the answer.
    fn link_proposed(&self, url: &str, word: Option<Word>) -> Word {
        let (actions, answer) = {
            let mut core = self.core.lock().expect("core lock");
            let now = crate::time::now_ms();
            let actions = core.handle(Event::Proposed { peer: url, word }, now);
            (actions, core.answer_word(url, now))
        };
        self.act(actions, None);
        answer
    }

    /// Gives `url` a lane, unless the table is full (see [`peers::MAX_PEERS`]):
    /// whether it has one now.
    fn adopt(&self, url: &str) -> bool {
        let held = self.peers.add(url) || self.peers.contains(url);
        if held {
            self.add_lane(url);
        }
        held
    }

    /// A lane for `url`, and the core told of the peer (it greets it at once).
    fn add_lane(&self, url: &str) {
        {
            let mut lanes = self.lanes.lock().expect("lanes lock");
            if lanes.contains_key(url) {
                return;
            }
            lanes.insert(url.to_string(), Lane::new(url, Arc::clone(&self.pace)));
        }
        self.feed(Event::Learned { peer: url }, None);
        if let Some(swim) = &*self.swim.lock().expect("swim lock") {
            swim.announce(url);
        }
    }

    /// What SWIM concluded about the peer at `url`: shown by `dshare peers`, and told
    /// to the core (a peer down gets no pushes; one that came back is greeted).
    fn member_seen(&self, url: &str, seen: swim::Seen) {
        let state = match seen {
            swim::Seen::Up => PeerState::Up,
            swim::Seen::Suspect => PeerState::Suspect,
            swim::Seen::Down => PeerState::Down,
        };
        self.peers.update(url, |p| {
            // An exchange that found it unreachable already knows more than a
            // suspicion.
            if state == PeerState::Suspect && p.state == PeerState::Down {
                return;
            }
            if state == PeerState::Down && p.state != PeerState::Down {
                crate::metrics::METRICS.peers_shown_down.inc();
            }
            p.state = state;
            if state == PeerState::Up {
                p.last_seen = Some(crate::time::now_ms());
            }
        });
        if seen != swim::Seen::Suspect {
            let alive = seen == swim::Seen::Up;
            self.feed(Event::Member { peer: url, alive }, None);
        }
    }

    /// Takes `url`'s lane out and tells the core.
    fn remove_lane(&self, url: &str) {
        self.lanes.lock().expect("lanes lock").remove(url);
        self.feed(Event::Forgot { peer: url }, None);
        self.greeted(url, false);
    }

    /// The peer at `url` answered as this very node: forget it.
    fn forget_self(&self, url: &str) {
        self.self_urls
            .lock()
            .expect("self lock")
            .insert(url.to_string());
        self.peers.remove(url);
        self.remove_lane(url);
    }

    /// The node with `id` now answers at `url`: its other addresses that are down
    /// are old ones (it restarted on another port) and are forgotten.
    fn forget_stale_addresses(&self, url: &str, id: &AuthorId) {
        let stale: Vec<String> = self
            .peers
            .views()
            .into_iter()
            .filter(|p| p.url != url && p.id.as_ref() == Some(id) && !p.is_up())
            .map(|p| p.url)
            .collect();
        for old in stale {
            self.peers.remove(&old);
            self.remove_lane(&old);
        }
    }

    /// Records one exchange with the peer at `url` (`answered`: it answered and what
    /// it held was pulled). While the store recovers a lost end, new sends wait until
    /// every known peer has been asked once and at least one answered: the messages
    /// this node lost are then back, unless only a peer that is down holds them.
    fn greeted(&self, url: &str, answered: bool) {
        let store = self.writer.store();
        if !store.recovering() {
            return;
        }
        let mut recovery = self.recovery.lock().expect("recovery lock");
        recovery.0.insert(url.to_string());
        recovery.1 |= answered;
        if recovery.1 && self.peers.urls().iter().all(|u| recovery.0.contains(u)) {
            store.end_recovery();
            crate::note!(
                "the peers were asked for the lost end of the box: sends are accepted again"
            );
        }
    }

    /// The peers as `/peers` shows them, each with whether it is a link.
    pub fn peer_views(&self) -> Vec<peers::PeerView> {
        let mut views = self.peers.views();
        let core = self.core.lock().expect("core lock");
        for v in &mut views {
            v.link = core.linked(&v.url);
        }
        views
    }

    /// Bytes of messages queued for every peer, or being pushed.
    pub fn queued_bytes(&self) -> u64 {
        let lanes = self.lanes.lock().expect("lanes lock");
        lanes.values().map(|l| l.outbox.queued_bytes() as u64).sum()
    }

    /// An exchange with `url` failed. A peer that could not be reached is down (and
    /// gets no pushes until it answers again); one that answered badly (too large,
    /// malformed, refused) is reachable, so it keeps its state and its pushes. Either
    /// way the reason is kept for `dshare peers` and logged when it changes.
    fn failed(&self, url: &str, why: &anyhow::Error) {
        self.trouble(url, format!("{why:#}"), client::is_unreachable(why));
    }

    /// Keeps `reason` as the peer's last error (logged when it changes), and marks
    /// the peer down if it could not be reached.
    fn trouble(&self, url: &str, reason: String, unreachable: bool) {
        let mut changed = false;
        self.peers.update(url, |p| {
            if unreachable && p.state != PeerState::Down {
                crate::metrics::METRICS.peers_shown_down.inc();
                p.state = PeerState::Down;
            }
            p.in_sync = false;
            changed = p.last_error.as_deref() != Some(reason.as_str());
            p.last_error = Some(reason.clone());
        });
        if changed {
            crate::warning!(peer = url; "exchange with peer {url} failed: {reason}");
        }
    }

    /// Checks messages `from` a peer served (limits, id, signature) and offers the good
    /// ones to the store. Returns how many were stored or already held.
    pub fn accept(&self, from: &str, messages: Vec<Message>) -> Result<usize> {
        // Before they are stored, as for a push: storing forwards them to the other
        // links only, not back to the peer they came from.
        self.held_by(Some(from), messages.iter().map(|m| m.id));
        let outcomes = self.offer(messages)?;
        count_stored(crate::metrics::Origin::Pull, &outcomes);
        Ok(outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Stored | Outcome::Duplicate))
            .count())
    }

    /// Checks then stores; one outcome per message, in order. Refusals are counted
    /// and forks recorded.
    fn offer(&self, messages: Vec<Message>) -> Result<Vec<Outcome>, StoreError> {
        let keys: Vec<(AuthorId, u64, Hash)> =
            messages.iter().map(|m| (m.author, m.seq, m.id)).collect();
        let store = self.writer.store();
        // Pushes come back around (each node forwards what it newly stores); a
        // message already held is answered without checking its signature.
        let held: Vec<bool> = messages
            .iter()
            .map(|m| store.id_at(&m.author, m.seq) == Some(m.id))
            .collect();
        let fresh: Vec<Message> = messages
            .into_iter()
            .zip(&held)
            .filter_map(|(m, &held)| (!held).then_some(m))
            .collect();
        // A catch-up page holds up to 500 messages: their signatures are checked on
        // every core at once.
        let verdicts = crate::message::check_all(&fresh);
        let mut fresh = fresh.into_iter().zip(verdicts);
        let mut checked: Vec<Option<Outcome>> = Vec::with_capacity(held.len());
        let mut good = Vec::with_capacity(held.len());
        for held in held {
            if held {
                checked.push(Some(Outcome::Duplicate));
                continue;
            }
            let (m, verdict) = fresh.next().expect("one verdict per fresh message");
            match verdict {
                Ok(()) => {
                    checked.push(None);
                    good.push(m);
                }
                Err(e) => {
                    crate::metrics::METRICS.refused(refusal_of(&e));
                    checked.push(Some(Outcome::Refused {
                        reason: e.to_string(),
                    }));
                }
            }
        }
        let mut stored = self.writer.offer(good)?.into_iter();
        let outcomes: Vec<Outcome> = checked
            .into_iter()
            .map(|o| {
                o.unwrap_or_else(|| {
                    let outcome = stored.next().expect("one outcome per message");
                    if matches!(outcome, Outcome::Refused { .. }) {
                        // Refused by the store's rules (author list, chain, clock).
                        crate::metrics::METRICS.refused(crate::metrics::Refusal::Rule);
                    }
                    outcome
                })
            })
            .collect();
        for (outcome, (author, seq, id)) in outcomes.iter().zip(keys) {
            match outcome {
                Outcome::Refused { .. } => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                }
                Outcome::Fork => self.record_fork(author, seq, id),
                _ => {}
            }
        }
        Ok(outcomes)
    }

    fn record_fork(&self, author: AuthorId, seq: u64, offered: Hash) {
        let held = self.writer.store().id_at(&author, seq);
        if held == Some(offered) {
            // The same message, met twice (the writer answers `duplicate` for that;
            // this guards the record itself): a fork is two different ids.
            return;
        }
        let mut forks = self.forks.lock().expect("forks lock");
        if forks.len() < 1000
            && !forks
                .iter()
                .any(|f| f.author == author && f.offered == offered)
        {
            forks.push(Fork {
                author,
                seq,
                held,
                offered,
            });
        }
    }

    // The peer API, server side.

    /// Answers a hello sealed with `nonce`: this node's digest, its peers, the first
    /// page of its heads if the digests differ, and a proof of its id over the nonce.
    pub fn on_hello(self: &Arc<Self>, hello: Hello, nonce: &[u8]) -> HelloReply {
        let mut word = Word::unheld(crate::time::now_ms());
        if hello.from.id != self.me.id
            && let Some(url) = &hello.from.url
        {
            if self.peers.contains(url) {
                self.feed(Event::HeardFrom { peer: url }, None);
                word = self.link_proposed(url, hello.link);
            } else {
                self.greeted_by(url, hello.link);
            }
        }
        let summary = self.writer.store().summary();
        let peers = self.peers_to_share();
        // A peer that reconciles asks for what differs itself: no heads for it.
        let (heads, heads_next) = if hello.digest == summary.digest || hello.reconcile {
            (None, None)
        } else {
            let (page, next) =
                protocol::heads_page(self.writer.store().heads(), None, self.heads_page);
            (Some(page), next)
        };
        HelloReply {
            node: self.me.clone(),
            digest: summary.digest,
            peers,
            heads,
            heads_next,
            proof: Some(
                self.identity
                    .sign(&protocol::proof_bytes(nonce, &self.me.id)),
            ),
            reconcile: true,
            link: Some(word),
        }
    }

    /// Which offered messages this node lacks (looked up by id, nothing checked or
    /// stored): the sender pushes those. At most [`MAX_PAGE`] ids are looked at.
    /// A message is asked for once, from the first peer that offers it: the others
    /// offering it at the same moment would each push it, and all but one push would
    /// be a duplicate (in the simulation, 2.6 pushes a message per node instead of
    /// 1.9).
    pub fn on_offer(&self, offer: &protocol::Offer) -> protocol::OfferReply {
        let store = self.writer.store();
        let now = crate::time::now_ms();
        let offered = offer.ids.iter().take(MAX_PAGE).map(|h| h.id);
        self.held_by(offer.from.as_deref(), offered);
        let mut asked = self.asked.lock().expect("asked lock");
        // Only the ids looked at can be added: a long offer empties the table no
        // sooner than a page would.
        let looked_at = offer.ids.len().min(MAX_PAGE);
        if asked.len() + looked_at > MAX_ASKED {
            asked.retain(|_, at| now.saturating_sub(*at) < ASK_AGAIN_MS);
            if asked.len() + looked_at > MAX_ASKED {
                asked.clear();
            }
        }
        let want = offer
            .ids
            .iter()
            .take(MAX_PAGE)
            .map(|h| {
                let lacking = store.id_at(&h.author, h.seq) != Some(h.id);
                let fresh_ask = asked
                    .get(&h.id)
                    .is_none_or(|at| now.saturating_sub(*at) >= ASK_AGAIN_MS);
                if lacking && fresh_ask {
                    asked.insert(h.id, now);
                }
                lacking && fresh_ask
            })
            .collect();
        protocol::OfferReply { want }
    }

    /// The page of heads after `req.after`.
    pub fn on_heads(&self, req: &HeadsRequest) -> HeadsPage {
        let (heads, next) = protocol::heads_page(
            self.writer.store().heads(),
            Some(&req.after),
            self.heads_page,
        );
        HeadsPage { heads, next }
    }

    pub fn on_range(&self, req: &RangeRequest) -> Result<Messages> {
        let page = self
            .writer
            .store()
            .range(&req.author, req.from, req.limit.min(MAX_PAGE))?;
        let mut bytes = 0;
        let messages = page
            .into_iter()
            .take_while(|m| {
                let fits = bytes == 0 || bytes + m.body.len() <= MAX_RANGE_BYTES;
                bytes += m.body.len() + 300;
                fits
            })
            .collect();
        let first = self.writer.store().first_seq(&req.author);
        Ok(Messages {
            messages,
            sent_to_all: false,
            first: (first > 1).then_some(first),
            from: None,
        })
    }

    pub fn on_push(&self, push: Messages) -> Result<PushReply, StoreError> {
        let reply = self.store_push(push)?;
        count_stored(crate::metrics::Origin::Push, &reply.outcomes);
        if reply.outcomes.contains(&Outcome::Stored) {
            self.push_stored_ms
                .store(crate::time::now_ms(), Ordering::Relaxed);
        }
        Ok(reply)
    }

    fn store_push(&self, push: Messages) -> Result<PushReply, StoreError> {
        let mut messages = push.messages;
        messages.truncate(MAX_PAGE);
        // Before they are stored: storing forwards them, past the pusher.
        self.held_by(push.from.as_deref(), messages.iter().map(|m| m.id));
        if !push.sent_to_all {
            return Ok(PushReply {
                outcomes: self.offer(messages)?,
            });
        }
        // The author pushed these to every peer: store them, but do not forward them
        // (the dispatcher drops the ids it finds here). Ids not stored now never
        // reach the dispatcher, so they are taken out again at once.
        let ids: Vec<Hash> = messages.iter().map(|m| m.id).collect();
        {
            let mut no_forward = self.no_forward.lock().expect("no-forward lock");
            if no_forward.len() + ids.len() > MAX_NO_FORWARD {
                no_forward.clear();
            }
            no_forward.extend(ids.iter().copied());
        }
        let outcomes = self.offer(messages);
        let mut no_forward = self.no_forward.lock().expect("no-forward lock");
        match &outcomes {
            Ok(outcomes) => {
                for (id, outcome) in ids.iter().zip(outcomes) {
                    if *outcome != Outcome::Stored {
                        no_forward.remove(id);
                    }
                }
            }
            Err(_) => {
                for id in &ids {
                    no_forward.remove(id);
                }
            }
        }
        Ok(PushReply {
            outcomes: outcomes?,
        })
    }

    /// Pushes `m` to the peers that are up until `want` of them hold it or `timeout`
    /// passes. Returns the peers that confirmed and those that did not.
    pub fn confirm(
        self: &Arc<Self>,
        m: &Message,
        want: Want,
        timeout: Duration,
    ) -> (Vec<String>, Vec<String>) {
        let targets = self.peers.up();
        let need = match want {
            Want::All => targets.len(),
            Want::Count(n) => n,
        };
        let deadline = Instant::now() + timeout;
        let (tx, rx) = mpsc::channel();
        // A few threads share the peers, whatever their number (one thread per peer
        // was 64 threads for one `send --wait` on a full table).
        let share = targets.len().div_ceil(CONFIRM_THREADS).max(1);
        for urls in targets.chunks(share) {
            let (rep, urls, m, tx) = (Arc::clone(self), urls.to_vec(), m.clone(), tx.clone());
            thread::spawn(move || rep.confirm_some(&m, urls, deadline, &tx));
        }
        drop(tx);
        let mut acked = Vec::new();
        // Looks at the stop flag between slices, so a stopping node answers at once.
        while acked.len() < need && !self.stopping() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(url) => acked.push(url),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let missing = targets.into_iter().filter(|u| !acked.contains(u)).collect();
        (acked, missing)
    }
}

/// Longest pause between two pushes of a message a `send --wait` waits for.
const CONFIRM_RETRY_MAX: Duration = Duration::from_secs(2);
/// Threads one `send --wait` pushes with.
const CONFIRM_THREADS: usize = 4;

impl Replicator {
    /// Pushes `m` to each of `urls` until it holds it, refuses it, or `deadline`
    /// passes; each that confirms is sent on `confirmed`. A failed push is tried
    /// again, less and less often; a refusal (or a fork) is an answer, and pushing
    /// the same message again every 100 ms for minutes only made the peer refuse it
    /// thousands of times.
    fn confirm_some(
        &self,
        m: &Message,
        urls: Vec<String>,
        deadline: Instant,
        confirmed: &mpsc::Sender<String>,
    ) {
        let start = Duration::from_millis(100);
        let mut left: Vec<(String, Instant, Duration)> = urls
            .into_iter()
            .map(|u| (u, Instant::now(), start))
            .collect();
        while !left.is_empty() && Instant::now() < deadline && !self.stopping() {
            let now = Instant::now();
            left.retain_mut(|(url, due, pause)| {
                if *due > now {
                    return true;
                }
                match worker::push(self, url, &[m], Spread::Forwarded).map(|o| o.into_iter().next())
                {
                    Ok(Some(Outcome::Stored | Outcome::Duplicate)) => {
                        let _ = confirmed.send(url.clone());
                        false
                    }
                    Ok(Some(Outcome::Refused { .. } | Outcome::Fork)) => false,
                    Ok(_) | Err(_) => {
                        *due = Instant::now() + *pause;
                        *pause = (*pause * 2).min(CONFIRM_RETRY_MAX);
                        true
                    }
                }
            });
            let Some(next) = left.iter().map(|(_, due, _)| *due).min() else {
                return;
            };
            thread::sleep(next.min(deadline).saturating_duration_since(Instant::now()));
        }
    }
}

/// [`MAX_HEADS_PAGE`], or the smaller page a test asks for with
/// `DSHARE_TEST_HEADS_PAGE` (never more: the bound holds whatever the environment).
fn heads_page_setting() -> usize {
    std::env::var("DSHARE_TEST_HEADS_PAGE")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map_or(MAX_HEADS_PAGE, |n| n.clamp(1, MAX_HEADS_PAGE))
}

/// Counts the messages stored (not those already held) by their origin.
fn count_stored(origin: crate::metrics::Origin, outcomes: &[Outcome]) {
    let stored = outcomes.iter().filter(|o| **o == Outcome::Stored).count();
    crate::metrics::METRICS.stored(origin, stored as u64);
}

/// The metrics reason of a message that failed its checks.
fn refusal_of(e: &crate::message::Invalid) -> crate::metrics::Refusal {
    use crate::message::Invalid;
    use crate::metrics::Refusal;
    match e {
        Invalid::BadSignature => Refusal::Signature,
        Invalid::WrongId => Refusal::Id,
        Invalid::BodyTooLarge(_) => Refusal::Size,
        _ => Refusal::Rule,
    }
}
