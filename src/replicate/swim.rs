//! Membership and failure detection by SWIM with suspicion (the `foca` crate), over
//! UDP on the port number of the node's HTTP listener. Every datagram is sealed with
//! the network keyring like all peer traffic; one that does not open is dropped
//! without an answer, so an outsider learns nothing, not even that a node listens.
//!
//! Each probe period a node probes one member, asks a few others to probe it
//! indirectly before it suspects it, and declares it down only after the suspicion
//! had time to be refuted; membership changes ride on the probes. foca's state lives
//! on this module's one thread; what it concludes reaches the replicator as peer
//! states (up, suspect, down) and as events for the core.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::num::{NonZeroU8, NonZeroU32, NonZeroUsize};
use std::sync::Mutex;
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use foca::{
    AccumulatingRuntime, Codec, Foca, Header, Member, Message, OwnedNotification, PostcardCodec,
    State, Timer,
};
use serde::{Deserialize, Serialize};

use super::Replicator;
use crate::seal::{Keyring, Opened, ReplayGuard};

/// What a datagram's seal is bound to: no HTTP request or answer opens as one.
pub const SWIM_AAD: &[u8] = b"dshare/1 swim";
/// Largest foca packet; sealed, it is 52 bytes more, under a typical 1,500-byte MTU.
const MAX_PACKET: usize = 1200;
/// Largest datagram read; anything longer is not one of ours.
const MAX_DATAGRAM: usize = 2048;
/// Most members (of any state) foca may hold before it is started afresh. Only
/// adopted peers (at most [`super::peers::MAX_PEERS`]) stay alive in it; the
/// identities other members name are declared down at once and forgotten after
/// [`REMOVE_DOWN_AFTER`], and a member naming thousands a second would otherwise
/// fill it.
pub const MAX_MEMBERS: usize = 4096;
/// How long a member declared down is remembered (so that old news of it is not
/// taken as new).
const REMOVE_DOWN_AFTER: Duration = Duration::from_secs(120);
/// How long a member that spoke to this node from its own address is admitted like
/// an adopted peer (it probes this node about once every table's length of seconds).
const SPOKE_REMEMBERED: Duration = Duration::from_secs(600);
/// How often a node probes a member. A member is probed by the members that know it
/// (about as many as a table holds), each one member a period, so the first probe of
/// a dead member comes after about `PROBE_PERIOD × table / knowers`: at 1 s and 26
/// knowers of 64 (a 200-node fleet), 2.4 s on average, which with the suspicion left
/// a killed node shown down after 7–8 s. A probe and its ack are two datagrams of
/// about 150 bytes.
const PROBE_PERIOD: Duration = Duration::from_millis(500);
/// How long a probe waits for its ack before asking others to probe indirectly; the
/// rest of the period is left for their answers. An ack on loopback or a LAN takes
/// well under a millisecond; this leaves room for a machine busy on every core.
const PROBE_RTT: Duration = Duration::from_millis(200);
/// How long a suspected member has to refute the suspicion before it is down. News
/// reaches the suspect on the next probe of it or the next gossip (every 200 ms
/// while there is news), and its refutation travels back the same way.
const SUSPECT_TO_DOWN: Duration = Duration::from_secs(2);
/// How many times a node passes on each piece of news (a member suspect, down, or
/// alive again). foca's own count (4 × log10 of the size: 7 for 64) assumes that
/// every member passes news on; here only the members that know the one it is about
/// do (the screen, see [`Membership::admitted`]), and in a fleet larger than the peer
/// table that is a sixth of them at 200 nodes: with 7, the news of a death died out
/// before reaching every node that knew the dead one (some had not heard after 60 s).
/// An update is a few dozen bytes; at rest there is none.
const MAX_TRANSMISSIONS: u8 = 48;
/// Least time between two fresh starts of foca. A fresh start forgets every probe
/// and suspicion under way; were it allowed at every datagram past [`MAX_MEMBERS`],
/// a member naming thousands a second would keep failure detection from ever
/// reaching a verdict. By the time another start is allowed, the down members of
/// the last one have been forgotten anyway.
const AFRESH_AT_MOST_EVERY: Duration = REMOVE_DOWN_AFTER;
/// Longest a look over every active member is put off while nothing seems to have
/// changed (see [`Looked`]): a backstop, so that what the cheap checks could miss
/// (a member no longer remembered as having spoken, two changes that cancel out in
/// a fingerprint) is caught within this long.
const LOOK_AT_LEAST_EVERY: Duration = Duration::from_secs(1);
/// Most datagram nonces remembered against replays (8 bytes each, about 5 MiB with
/// the tables' slack). A node at rest opens a few datagrams a second per peer, a
/// few thousand in the two-minute span of accepted timestamps: the bound is met
/// only by a member sealing a flood, and then datagrams are refused, not
/// remembered less.
const MAX_NONCES: usize = 1 << 18;
/// Datagrams a second, and as many at once, this node sends to addresses it has
/// not adopted: the helpers of an indirect probe may name a target this node has
/// not adopted (in a fleet larger than a peer table), and a hostile member may
/// name any address there. This is what bounds the second.
const STRANGER_DATAGRAMS_PER_SECOND: f64 = 10.0;
/// How long the UDP address of a host name is trusted once looked up.
const RESOLVED_FOR: Duration = Duration::from_secs(60);
/// How long a failed lookup is not tried again.
const UNRESOLVED_FOR: Duration = Duration::from_secs(10);
/// Most datagrams waiting for a lookup; past it they are dropped (SWIM takes a
/// lost datagram in its stride) rather than held.
const MAX_AWAITING_LOOKUP: usize = 64;
/// Most looked-up addresses remembered.
const MAX_RESOLVED: usize = 4 * MAX_MEMBERS;

/// A member: the address others reach it at, and when this run of it started (a
/// restarted node is a new identity on the same address, and the newer one wins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwimId {
    pub url: String,
    pub started_ms: u64,
}

impl foca::Identity for SwimId {
    type Addr = String;

    fn renew(&self) -> Option<SwimId> {
        Some(SwimId {
            url: self.url.clone(),
            started_ms: self.started_ms + 1,
        })
    }

    fn addr(&self) -> String {
        self.url.clone()
    }

    fn win_addr_conflict(&self, adversary: &SwimId) -> bool {
        self.started_ms > adversary.started_ms
    }
}

/// foca's randomness: the core's seeded generator.
pub struct SwimRng(super::core::Rng);

impl SwimRng {
    pub fn new(seed: u64) -> SwimRng {
        SwimRng(super::core::Rng::new(seed))
    }
}

impl rand::TryRng for SwimRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.0.next_u64() >> 32) as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.0.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// A member's state as `dshare peers` words it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    Up,
    Suspect,
    Down,
}

/// What the replicator asks of the membership thread.
enum Command {
    /// Join through this peer (adopted, so proven by a sealed hello).
    Announce(String),
    /// The node stops: tell members it leaves, say when that is sent, and end.
    Leave(mpsc::Sender<()>),
}

/// The replicator's hold on the membership thread.
pub struct Handle {
    commands: mpsc::Sender<Command>,
    /// A clone of the membership socket: an empty datagram to itself rouses the
    /// thread from its wait at once.
    rouse: UdpSocket,
}

impl Handle {
    /// Joins through `url` (an adopted peer) at the thread's next turn.
    pub fn announce(&self, url: &str) {
        let _ = self.commands.send(Command::Announce(url.to_string()));
    }

    /// Leaves gracefully: a few members are told that this node is down, as its
    /// own word, and the news spreads as any other, so a node that stops is shown
    /// down at once instead of after failure detection's probes and suspicion.
    /// Waits until that is sent, `patience` at most; the thread then ends.
    pub fn leave(self, patience: Duration) {
        let (done, sent) = mpsc::channel();
        if self.commands.send(Command::Leave(done)).is_ok() {
            if let Ok(me) = self.rouse.local_addr() {
                let _ = self.rouse.send_to(&[], me);
            }
            let _ = sent.recv_timeout(patience);
        }
    }
}

type Swim = Foca<SwimId, PostcardCodec, SwimRng, foca::NoCustomBroadcast>;

/// foca's settings for a network of up to [`super::peers::MAX_PEERS`] peers: a probe
/// every half second, 200 ms for an answer, three indirect probes. News of members is
/// also gossiped to 3 members every 200 ms, but only while there is news: a node at
/// rest sends nothing more, and a death is known everywhere in a few hundred
/// milliseconds instead of riding on probes for seconds (at 100 nodes, the last of
/// six nodes that held a stopped node showed it down after 9.5 s).
fn config() -> foca::Config {
    let mut config = foca::Config::new_lan(NonZeroU32::new(64).expect("not zero"));
    config.probe_period = PROBE_PERIOD;
    config.probe_rtt = PROBE_RTT;
    config.suspect_to_down_after = SUSPECT_TO_DOWN;
    config.remove_down_after = Some(REMOVE_DOWN_AFTER);
    config.max_packet_size = NonZeroUsize::new(MAX_PACKET).expect("not zero");
    config.max_transmissions = NonZeroU8::new(MAX_TRANSMISSIONS).expect("not zero");
    config
}

/// Binds the membership socket on `at` (the HTTP listener's address) and starts its
/// thread, as the member `url`. `None`, with a warning, if the port is taken for
/// UDP: the node then runs on its exchanges alone, as a node without SWIM would.
pub fn start(
    rep: &Weak<Replicator>,
    keyring: Arc<Keyring>,
    at: SocketAddr,
    url: &str,
    seed: u64,
) -> Option<Handle> {
    let socket = match UdpSocket::bind(at) {
        Ok(s) => s,
        Err(e) => {
            crate::warning!("no membership socket on udp {at} ({e}): liveness from exchanges only");
            return None;
        }
    };
    let started_ms = crate::time::now_ms();
    let me = SwimId {
        url: url.to_string(),
        started_ms,
    };
    let foca = Foca::new(me, config(), SwimRng::new(seed), PostcardCodec);
    let (tx, rx) = mpsc::channel();
    let clones = socket
        .try_clone()
        .and_then(|s| Ok((s, socket.try_clone()?)));
    let (resolver, rouse) = match clones
        .and_then(|(s, rouse)| Ok((Resolver::start(s, Box::new(lookup))?, rouse)))
    {
        Ok(both) => both,
        Err(e) => {
            crate::warning!("no membership socket on udp {at} ({e}): liveness from exchanges only");
            return None;
        }
    };
    let mut member = Membership {
        socket,
        foca,
        runtime: AccumulatingRuntime::new(),
        timers: Vec::new(),
        gossip_held: None,
        keyring,
        rep: Weak::clone(rep),
        commands: rx,
        resolver,
        seen: HashMap::new(),
        replay: ReplayGuard::with_limit(MAX_NONCES),
        last_afresh: None,
        spoke: HashMap::new(),
        started_ms,
        strangers_looked: None,
        states_looked: None,
    };
    thread::Builder::new()
        .name("membership".into())
        .spawn(move || member.run())
        .expect("spawn the membership thread");
    Some(Handle {
        commands: tx,
        rouse,
    })
}

struct Membership {
    socket: UdpSocket,
    foca: Swim,
    runtime: AccumulatingRuntime<SwimId>,
    timers: Vec<(Instant, Timer<SwimId>)>,
    /// foca's periodic-gossip timer, held while foca has no news: it sends nothing
    /// then, and firing it every 200 ms would only wake this thread (five times a
    /// second at rest). It fires as soon as there is news.
    gossip_held: Option<Timer<SwimId>>,
    keyring: Arc<Keyring>,
    rep: Weak<Replicator>,
    commands: mpsc::Receiver<Command>,
    /// UDP addresses of member URLs, looked up off this thread.
    resolver: Resolver,
    /// The state last reported for each member URL.
    seen: HashMap<String, Seen>,
    /// Nonces of the datagrams opened within the seal's window: each is acted on once.
    replay: ReplayGuard,
    /// When foca was last started afresh, to bound how often it is.
    last_afresh: Option<Instant>,
    /// Members whose sealed datagrams came from the address their URL names, and
    /// when they last did, at most [`MAX_MEMBERS`] (see [`Membership::note_sender`]).
    spoke: HashMap<String, Instant>,
    /// This node's identity as last seen: foca renews it when the network holds
    /// the old one down.
    started_ms: u64,
    /// The last look for members not adopted ([`Membership::earn_membership`]).
    strangers_looked: Option<Looked>,
    /// The last look for changes of state to report ([`Membership::flush`]).
    states_looked: Option<Looked>,
}

/// When the active members were last looked over one by one, and what cheap
/// checks said then. A look costs a lookup per member (a string compared or
/// hashed, at every datagram and twice a wake: about a third of the membership
/// thread's time at rest); most datagrams are probes and acks of members that
/// stay alive, and change nothing a look would find.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Looked {
    at: Instant,
    basis: Basis,
}

/// What a look's answer depends on, summed up cheaply: a count and two sums (each
/// look says which; an unused one is 0).
type Basis = (usize, u64, u64);

impl Looked {
    /// Whether a look made now would find what the last one found: the same basis,
    /// and the backstop not yet due.
    fn still_holds(last: Option<Looked>, basis: Basis) -> bool {
        last.is_some_and(|l| l.basis == basis && l.at.elapsed() < LOOK_AT_LEAST_EVERY)
    }

    fn now(basis: Basis) -> Option<Looked> {
        Some(Looked {
            at: Instant::now(),
            basis,
        })
    }
}

impl Membership {
    fn run(&mut self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            let Some(rep) = self.rep.upgrade() else {
                return;
            };
            if rep.stopping() {
                return;
            }
            while let Ok(command) = self.commands.try_recv() {
                match command {
                    Command::Announce(url) => {
                        let to = SwimId { url, started_ms: 0 };
                        let _ = self.foca.announce(to, &mut self.runtime);
                    }
                    Command::Leave(done) => {
                        let _ = self.foca.leave_cluster(&mut self.runtime);
                        self.flush(&rep);
                        let _ = done.send(());
                        return;
                    }
                }
            }
            self.fire_timers();
            // What the timers and commands asked for is sent and scheduled before the
            // wait is reckoned: a probe's deadline set now must bound this wait.
            self.flush(&rep);
            let wait = self
                .timers
                .iter()
                .map(|(at, _)| at.saturating_duration_since(Instant::now()))
                .min()
                .unwrap_or(Duration::from_secs(1))
                .clamp(Duration::from_millis(1), Duration::from_secs(1));
            let _ = self.socket.set_read_timeout(Some(wait));
            // An empty datagram is the replicator rousing this thread.
            if let Ok((n @ 1.., from)) = self.socket.recv_from(&mut buf) {
                self.received(&buf[..n], from);
            }
            self.flush(&rep);
        }
    }

    /// Opens a datagram and hands it to foca; one that does not open is dropped
    /// without a word.
    fn received(&mut self, datagram: &[u8], from: SocketAddr) {
        crate::metrics::METRICS
            .peer_bytes_in
            .add(datagram.len() as u64);
        let Ok(opened) = self.keyring.open(SWIM_AAD, datagram, crate::time::now_ms()) else {
            crate::metrics::METRICS.refused(crate::metrics::Refusal::Seal);
            return;
        };
        let Some((packet, header)) = self.admitted(&opened, from) else {
            return;
        };
        let _ = self.foca.handle_data(&packet, &mut self.runtime);
        if matches!(header.message, Message::Ack(_)) {
            self.acked(&header.src);
        }
        self.earn_membership();
    }

    /// `member` answered a probe directly. foca's timer for the indirect stage of
    /// that probe would find it succeeded and do nothing: it is handled now, while
    /// this thread is awake, rather than on a wake of its own (two of the eight a
    /// node at rest had each second). An ack of an older probe of the same member
    /// (a period late) would make foca start the indirect stage early instead of
    /// on time; it is the same stage, sooner.
    fn acked(&mut self, member: &SwimId) {
        let stage = self.timers.iter().position(|(_, timer)| {
            matches!(timer, Timer::SendIndirectProbe { probed_id, .. } if probed_id == member)
        });
        if let Some(i) = stage {
            let (_, timer) = self.timers.swap_remove(i);
            let _ = self.foca.handle_timer(timer, &mut self.runtime);
        }
    }

    /// Membership is earned: a member foca heard of from another member, but that
    /// this node has not adopted (it answered a sealed hello proving its id), is
    /// declared down here at once, without telling anyone, so it is never probed;
    /// its address goes the way of every address heard of (probed by a hello at a
    /// bounded rate, adopted once it proves an id, then announced to). A member that
    /// names a third party's ports makes this node send them no datagram.
    fn earn_membership(&mut self) {
        let Some(rep) = self.rep.upgrade() else {
            return;
        };
        if self.foca.iter_membership_state().len() > MAX_MEMBERS {
            self.start_afresh(&rep);
        }
        // No datagram brings in a member not adopted (the screen, see
        // [`Membership::admitted`]): one appears when a peer leaves the table or a
        // member is no longer remembered as having spoken, so a look is due when the
        // table or the active members change, and otherwise at the backstop.
        let basis: Basis = (self.foca.num_members(), rep.peers.changes(), 0);
        if Looked::still_holds(self.strangers_looked, basis) {
            return;
        }
        self.strangers_looked = Looked::now(basis);
        let strangers: Vec<SwimId> = self
            .foca
            .iter_members()
            .filter(|m| !rep.peers.contains(&m.id().url) && !self.spoke_lately(&m.id().url))
            .map(|m| m.id().clone())
            .collect();
        for stranger in &strangers {
            rep.heard_of(&stranger.url);
        }
        if !strangers.is_empty() {
            let down = strangers.into_iter().map(Member::down);
            let _ = self.foca.apply_many(down, false, &mut self.runtime);
        }
    }

    /// A new foca, as a new identity of this node, announced to every peer: what
    /// bounds the down members kept when a member names too many.
    fn start_afresh(&mut self, rep: &Replicator) {
        if self
            .last_afresh
            .is_some_and(|at| at.elapsed() < AFRESH_AT_MOST_EVERY)
        {
            return;
        }
        self.last_afresh = Some(Instant::now());
        crate::warning!("membership: more than {MAX_MEMBERS} members named; starting afresh");
        let me = self.foca.identity().clone();
        let renewed = SwimId {
            url: me.url,
            started_ms: crate::time::now_ms().max(me.started_ms + 1),
        };
        let seed = self.foca.identity().started_ms;
        self.started_ms = renewed.started_ms;
        self.foca = Foca::new(renewed, config(), SwimRng::new(seed), PostcardCodec);
        self.timers.clear();
        self.gossip_held = None;
        self.strangers_looked = None;
        self.states_looked = None;
        self.runtime = AccumulatingRuntime::new();
        for url in rep.peers.urls() {
            let to = SwimId { url, started_ms: 0 };
            let _ = self.foca.announce(to, &mut self.runtime);
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        let (due, later): (Vec<_>, Vec<_>) = self.timers.drain(..).partition(|(at, _)| *at <= now);
        self.timers = later;
        for (_, timer) in due {
            if matches!(timer, Timer::PeriodicGossip(_)) && self.foca.updates_backlog() == 0 {
                self.gossip_held = Some(timer);
                continue;
            }
            let _ = self.foca.handle_timer(timer, &mut self.runtime);
        }
    }

    /// Carries out what foca asked for: datagrams (sealed), timers, and what it
    /// concluded about members.
    fn flush(&mut self, rep: &Replicator) {
        let me = self.foca.identity();
        if me.started_ms != self.started_ms {
            self.started_ms = me.started_ms;
            crate::metrics::METRICS.member_renewals.inc();
        }
        while let Some((to, data)) = self.runtime.to_send() {
            self.send(rep, &to.url, &data);
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.timers.push((Instant::now() + after, timer));
        }
        if self.foca.updates_backlog() > 0
            && let Some(timer) = self.gossip_held.take()
        {
            self.timers.push((Instant::now(), timer));
        }
        while let Some(notification) = self.runtime.to_notify() {
            match notification {
                OwnedNotification::MemberUp(id) => self.report(rep, &id.url, Seen::Up),
                OwnedNotification::MemberDown(id) => self.report(rep, &id.url, Seen::Down),
                _ => {}
            }
        }
        // Suspicion has no notification: the states of the active members (alive or
        // suspect; leaving them is `MemberDown`) are compared with those reported,
        // and only a change costs a copy of the URL. Not every member's: the down
        // ones are kept for `REMOVE_DOWN_AFTER`, and past a table's size of nodes
        // they outnumber the active ones. And only when the active members or the
        // suspects among them changed since the last look, which a pass without a
        // lookup tells.
        let basis = self.states_basis();
        if Looked::still_holds(self.states_looked, basis) {
            return;
        }
        self.states_looked = Looked::now(basis);
        let suspects: Vec<(String, Seen)> = self
            .foca
            .iter_members()
            .filter_map(|m| {
                let seen = match m.state() {
                    State::Alive => Seen::Up,
                    State::Suspect => Seen::Suspect,
                    State::Down => Seen::Down,
                };
                let url = &m.id().url;
                (self.seen.get(url) != Some(&seen)).then(|| (url.clone(), seen))
            })
            .collect();
        for (url, seen) in suspects {
            self.report(rep, url.as_str(), seen);
        }
    }

    /// What the states to report depend on, summed up without a lookup: how many
    /// members are active, their identities (a renewed member has a later start),
    /// and which of them are suspect (only those URLs are hashed; at rest, none).
    fn states_basis(&self) -> Basis {
        let mut started = 0u64;
        let mut suspects = 0u64;
        let mut active = 0;
        for m in self.foca.iter_members() {
            active += 1;
            started = started.wrapping_add(m.id().started_ms);
            if m.state() == State::Suspect {
                let mut h = std::hash::DefaultHasher::new();
                std::hash::Hash::hash(&m.id().url, &mut h);
                suspects = suspects.wrapping_add(std::hash::Hasher::finish(&h));
            }
        }
        (active, started, suspects)
    }

    /// A member's state changed: the replicator is told if it is a peer, and a member
    /// it does not know is heard of (it is adopted only once it proves an id).
    fn report(&mut self, rep: &Replicator, url: &str, seen: Seen) {
        if self.seen.get(url) == Some(&seen) {
            return;
        }
        if self.seen.len() >= 2 * MAX_MEMBERS && !self.seen.contains_key(url) {
            self.seen.retain(|u, _| rep.peers.contains(u));
            self.states_looked = None;
        }
        self.seen.insert(url.to_string(), seen);
        if seen == Seen::Suspect {
            crate::metrics::METRICS.member_suspicions.inc();
        }
        if rep.peers.contains(url) {
            rep.member_seen(url, seen);
        } else if seen == Seen::Up {
            rep.heard_of(url);
        }
    }
}

impl Membership {
    /// What of an opened datagram foca may see: nothing if it was opened before (a
    /// replay) or comes from a member this node has not adopted (foca would hold
    /// every such sender for [`REMOVE_DOWN_AFTER`], and a member forging senders
    /// would fill it); otherwise the packet less its news of members not adopted,
    /// whose addresses are heard of instead, as every address heard of is, with its
    /// header (decoded once here for all that reads it).
    fn admitted(&mut self, opened: &Opened, from: SocketAddr) -> Option<(Vec<u8>, Header<SwimId>)> {
        if self.replay.check(opened, crate::time::now_ms()).is_err() {
            crate::metrics::METRICS.refused(crate::metrics::Refusal::Replay);
            return None;
        }
        // Undecodable: the screen below would drop it too.
        let header: Header<SwimId> = PostcardCodec.decode_header(&opened.plaintext[..]).ok()?;
        self.note_sender(&header.src.url, from);
        let rep = self.rep.upgrade()?;
        let me = self.foca.identity().url.clone();
        let known = |url: &str| url == me || rep.peers.contains(url) || self.spoke_lately(url);
        match screen(&opened.plaintext, &known) {
            Screened::Dropped { sender } => {
                if let Some(url) = sender {
                    rep.heard_of(&url);
                }
                None
            }
            Screened::Kept { packet, strangers } => {
                for url in &strangers {
                    rep.heard_of(url);
                }
                Some((packet, header))
            }
        }
    }

    /// Records the sender of a sealed datagram as a member that spoke to this node,
    /// if it came from the address its URL names: it proved it holds the network key
    /// at that address, as a sealed hello answer would. Such a member is admitted
    /// like an adopted peer: a node that adopted this one while this one has no room
    /// for it (any network larger than the peer table) must have its probes
    /// answered, or it would suspect this node, and this node would tell it it is
    /// down at each probe, making it take a new identity each time.
    fn note_sender(&mut self, url: &str, from: SocketAddr) {
        if self.resolver.known_addr(url) != Some(from) {
            return;
        }
        let now = Instant::now();
        if self.spoke.len() >= MAX_MEMBERS && !self.spoke.contains_key(url) {
            self.spoke
                .retain(|_, at| now.duration_since(*at) < SPOKE_REMEMBERED);
            if self.spoke.len() >= MAX_MEMBERS {
                return;
            }
        }
        self.spoke.insert(url.to_string(), now);
    }

    /// Whether the member at `url` spoke to this node lately from its own address.
    fn spoke_lately(&self, url: &str) -> bool {
        self.spoke
            .get(url)
            .is_some_and(|at| at.elapsed() < SPOKE_REMEMBERED)
    }

    /// Seals `data` and sends it to the member at `url`: at once to an adopted peer
    /// or one that spoke lately, within [`STRANGER_DATAGRAMS_PER_SECOND`] to any
    /// other address.
    fn send(&mut self, rep: &Replicator, url: &str, data: &[u8]) {
        if !rep.peers.contains(url)
            && !self.spoke_lately(url)
            && !self.resolver.stranger_budget.take(Instant::now())
        {
            return;
        }
        let sealed = self.keyring.seal(SWIM_AAD, data, crate::time::now_ms());
        crate::metrics::METRICS
            .peer_bytes_out
            .add(sealed.len() as u64);
        self.resolver.send_to(url, sealed);
    }
}

/// What [`screen`] made of a packet.
#[derive(Debug, PartialEq)]
enum Screened {
    /// Not for foca: undecodable, or from `sender`, a member not adopted.
    Dropped { sender: Option<String> },
    /// For foca: `packet`, less its news of `strangers`.
    Kept {
        packet: Vec<u8>,
        strangers: Vec<String>,
    },
}

/// The screen a packet passes before foca sees it (foca's own layout: header, then
/// a big-endian count of member updates and the updates, then custom broadcasts,
/// which this node has none of). `known` says which member URLs may be held.
fn screen(packet: &[u8], known: &dyn Fn(&str) -> bool) -> Screened {
    let mut codec = PostcardCodec;
    let mut rest = packet;
    let Ok(header) = Codec::<SwimId>::decode_header(&mut codec, &mut rest) else {
        return Screened::Dropped { sender: None };
    };
    if !known(&header.src.url) {
        return Screened::Dropped {
            sender: Some(header.src.url),
        };
    }
    let carries_updates =
        rest.len() >= 2 && !matches!(header.message, Message::Broadcast | Message::Announce);
    if !carries_updates {
        return Screened::Kept {
            packet: packet.to_vec(),
            strangers: Vec::new(),
        };
    }
    let count = u16::from_be_bytes([rest[0], rest[1]]);
    rest = &rest[2..];
    let mut kept = Vec::new();
    let mut strangers = Vec::new();
    for _ in 0..count {
        let Ok(member) = Codec::<SwimId>::decode_member(&mut codec, &mut rest) else {
            return Screened::Dropped { sender: None };
        };
        if known(&member.id().url) {
            kept.push(member);
        } else {
            strangers.push(member.id().url.clone());
        }
    }
    if strangers.is_empty() {
        return Screened::Kept {
            packet: packet.to_vec(),
            strangers,
        };
    }
    match reencode(&header, &kept, rest) {
        Some(packet) => Screened::Kept { packet, strangers },
        None => Screened::Dropped { sender: None },
    }
}

/// A packet of `header`, the updates `kept`, and the `tail` after them.
fn reencode(header: &Header<SwimId>, kept: &[Member<SwimId>], tail: &[u8]) -> Option<Vec<u8>> {
    let mut codec = PostcardCodec;
    let mut packet = Vec::with_capacity(MAX_PACKET);
    codec.encode_header(header, &mut packet).ok()?;
    // Fewer than were decoded from a u16 count.
    let count = u16::try_from(kept.len()).ok()?;
    packet.extend_from_slice(&count.to_be_bytes());
    for member in kept {
        codec.encode_member(member, &mut packet).ok()?;
    }
    packet.extend_from_slice(tail);
    Some(packet)
}

/// A token bucket: `take` allows [`STRANGER_DATAGRAMS_PER_SECOND`] a second on
/// average, as many at once.
struct Budget {
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new(now: Instant) -> Budget {
        Budget {
            tokens: STRANGER_DATAGRAMS_PER_SECOND,
            at: now,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + refill * STRANGER_DATAGRAMS_PER_SECOND)
            .min(STRANGER_DATAGRAMS_PER_SECOND);
        self.at = now;
        if self.tokens < 1.0 {
            return false;
        }
        self.tokens -= 1.0;
        true
    }
}

/// How a host name becomes addresses (the system's resolver in a node, a stand-in
/// in tests).
type Lookup = Box<dyn Fn(&str) -> Option<SocketAddr> + Send>;

/// The system's resolver: the first address of `host:port`.
fn lookup(host: &str) -> Option<SocketAddr> {
    host.to_socket_addrs().ok()?.next()
}

/// The `host:port` of a member URL (its UDP port is its HTTP port number).
fn host_of(url: &str) -> Option<&str> {
    url.strip_prefix("http://")?.split('/').next()
}

/// Sends datagrams to member URLs without ever resolving a host name on the
/// membership thread: a name can take seconds to resolve (a slow or dead DNS
/// server), and that thread must answer probes within 200 ms or be
/// suspected. Addresses written as IP literals are sent to at once; names looked up
/// before are sent to from a cache; any other datagram goes to a helper thread that
/// looks the name up (one at a time, so a slow server costs one thread) and sends it.
struct Resolver {
    socket: UdpSocket,
    cache: Arc<Mutex<Resolved>>,
    awaiting: mpsc::SyncSender<(String, Vec<u8>)>,
    stranger_budget: Budget,
}

impl Resolver {
    /// Starts the helper thread, which ends when the resolver is dropped.
    fn start(socket: UdpSocket, lookup: Lookup) -> std::io::Result<Resolver> {
        let helper_socket = socket.try_clone()?;
        let cache = Arc::new(Mutex::new(Resolved::default()));
        let (awaiting, jobs) = mpsc::sync_channel(MAX_AWAITING_LOOKUP);
        let helper_cache = Arc::clone(&cache);
        thread::Builder::new()
            .name("membership-dns".into())
            .spawn(move || look_up_and_send(&jobs, &helper_cache, &helper_socket, &lookup))?;
        Ok(Resolver {
            socket,
            cache,
            awaiting,
            stranger_budget: Budget::new(Instant::now()),
        })
    }

    /// The address of `url` if it is written as an IP literal or was looked up
    /// lately; never looks a name up.
    fn known_addr(&self, url: &str) -> Option<SocketAddr> {
        let host = host_of(url)?;
        if let Ok(addr) = host.parse::<SocketAddr>() {
            return Some(addr);
        }
        self.cache
            .lock()
            .expect("resolver lock")
            .get(host, Instant::now())
            .flatten()
    }

    /// Sends at once if the address is known; hands the datagram to the helper
    /// otherwise, or drops it when [`MAX_AWAITING_LOOKUP`] already wait.
    fn send_to(&self, url: &str, datagram: Vec<u8>) {
        let Some(host) = host_of(url) else {
            return;
        };
        if let Ok(addr) = host.parse::<SocketAddr>() {
            let _ = self.socket.send_to(&datagram, addr);
            return;
        }
        let cached = self
            .cache
            .lock()
            .expect("resolver lock")
            .get(host, Instant::now());
        match cached {
            Some(Some(addr)) => {
                let _ = self.socket.send_to(&datagram, addr);
            }
            Some(None) => {}
            None => {
                let _ = self.awaiting.try_send((host.to_string(), datagram));
            }
        }
    }
}

/// The helper thread's work: looks each host up (unless a lookup just before did)
/// and sends its datagram.
fn look_up_and_send(
    jobs: &mpsc::Receiver<(String, Vec<u8>)>,
    cache: &Mutex<Resolved>,
    socket: &UdpSocket,
    lookup: &Lookup,
) {
    while let Ok((host, datagram)) = jobs.recv() {
        let cached = cache
            .lock()
            .expect("resolver lock")
            .get(&host, Instant::now());
        let addr = match cached {
            Some(addr) => addr,
            None => {
                let addr = lookup(&host);
                cache
                    .lock()
                    .expect("resolver lock")
                    .put(&host, addr, Instant::now());
                addr
            }
        };
        if let Some(addr) = addr {
            let _ = socket.send_to(&datagram, addr);
        }
    }
}

/// Host names looked up, with what they gave and when that stops being trusted.
#[derive(Default)]
struct Resolved {
    by_host: HashMap<String, (Option<SocketAddr>, Instant)>,
}

impl Resolved {
    /// `Some(result)` of a lookup still trusted at `now`.
    fn get(&self, host: &str, now: Instant) -> Option<Option<SocketAddr>> {
        self.by_host
            .get(host)
            .filter(|(_, until)| now < *until)
            .map(|(addr, _)| *addr)
    }

    fn put(&mut self, host: &str, addr: Option<SocketAddr>, now: Instant) {
        if self.by_host.len() >= MAX_RESOLVED {
            self.by_host.retain(|_, (_, until)| now < *until);
            if self.by_host.len() >= MAX_RESOLVED {
                self.by_host.clear();
            }
        }
        let trusted_for = if addr.is_some() {
            RESOLVED_FOR
        } else {
            UNRESOLVED_FOR
        };
        self.by_host
            .insert(host.to_string(), (addr, now + trusted_for));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(url: &str) -> SwimId {
        SwimId {
            url: url.to_string(),
            started_ms: 1,
        }
    }

    fn gossip(src: &str, named: &[&str]) -> Vec<u8> {
        let header = Header {
            src: id(src),
            src_incarnation: 0,
            dst: id("http://me"),
            message: Message::Gossip,
        };
        let members: Vec<Member<SwimId>> = named.iter().map(|u| Member::alive(id(u))).collect();
        reencode(&header, &members, &[]).unwrap()
    }

    fn known(url: &str) -> bool {
        url == "http://me" || url.starts_with("http://peer")
    }

    const TRIO: [&str; 3] = ["http://a", "http://b", "http://c"];

    /// Three foca members wired together in memory; datagrams are delivered by hand.
    struct Trio {
        nodes: Vec<(Swim, AccumulatingRuntime<SwimId>)>,
        timers: Vec<Vec<Timer<SwimId>>>,
    }

    impl Trio {
        fn new() -> Trio {
            let nodes = TRIO
                .iter()
                .enumerate()
                .map(|(i, url)| {
                    let swim = Foca::new(id(url), config(), SwimRng::new(i as u64), PostcardCodec);
                    (swim, AccumulatingRuntime::new())
                })
                .collect();
            Trio {
                nodes,
                timers: vec![Vec::new(); 3],
            }
        }

        fn index(url: &str) -> usize {
            TRIO.iter().position(|u| *u == url).unwrap()
        }

        /// What node `from` has to send, taken out (its timers kept).
        fn outgoing(&mut self, from: usize) -> Vec<(SwimId, Vec<u8>)> {
            let (_, runtime) = &mut self.nodes[from];
            while let Some((_, timer)) = runtime.to_schedule() {
                self.timers[from].push(timer);
            }
            std::iter::from_fn(|| runtime.to_send())
                .map(|(to, data)| (to, data.to_vec()))
                .collect()
        }

        /// Delivers every datagram, and those they set off, until none is left.
        fn settle(&mut self) {
            loop {
                let mut sent = Vec::new();
                for from in 0..3 {
                    sent.extend(self.outgoing(from));
                }
                if sent.is_empty() {
                    return;
                }
                for (to, data) in sent {
                    let (swim, runtime) = &mut self.nodes[Trio::index(&to.url)];
                    let _ = swim.handle_data(&data, &mut *runtime);
                }
            }
        }

        fn take_timer(&mut self, node: usize, which: fn(&Timer<SwimId>) -> bool) -> Timer<SwimId> {
            let i = self.timers[node]
                .iter()
                .position(which)
                .expect("timer scheduled");
            self.timers[node].swap_remove(i)
        }

        fn fire(&mut self, node: usize, timer: Timer<SwimId>) -> Result<(), foca::Error> {
            let (swim, runtime) = &mut self.nodes[node];
            swim.handle_timer(timer, &mut *runtime)
        }
    }

    fn is_probe(t: &Timer<SwimId>) -> bool {
        matches!(t, Timer::ProbeRandomMember(_))
    }

    fn is_indirect_stage(t: &Timer<SwimId>) -> bool {
        matches!(t, Timer::SendIndirectProbe { .. })
    }

    /// What [`Membership::acked`] relies on: once the probed member's ack is in, the
    /// indirect stage of the probe sends nothing and completes the probe cycle, however
    /// soon it is handled; before the ack, the same stage asks the others to probe.
    #[test]
    fn the_indirect_stage_after_an_ack_sends_nothing_and_completes_the_cycle() {
        let mut trio = Trio::new();
        for to in ["http://b", "http://c"] {
            let (swim, runtime) = &mut trio.nodes[0];
            swim.announce(id(to), &mut *runtime).unwrap();
        }
        trio.settle();

        // Acked, then the stage at once: nothing sent, and the next probe finds the
        // cycle complete.
        let probe = trio.take_timer(0, is_probe);
        trio.fire(0, probe).unwrap();
        trio.settle();
        let stage = trio.take_timer(0, is_indirect_stage);
        trio.fire(0, stage).unwrap();
        assert!(trio.outgoing(0).is_empty(), "an acked probe asks no one");
        let probe = trio.take_timer(0, is_probe);
        trio.fire(0, probe).expect("the probe cycle completed");

        // Not acked (the ping is lost): the stage asks the other member.
        let lost = trio.outgoing(0);
        assert_eq!(lost.len(), 1, "one ping");
        let stage = trio.take_timer(0, is_indirect_stage);
        trio.fire(0, stage).unwrap();
        let asked = trio.outgoing(0);
        assert_eq!(asked.len(), 1, "one member asked to probe");
        let mut rest = &asked[0].1[..];
        let header = Codec::<SwimId>::decode_header(&mut PostcardCodec, &mut rest).unwrap();
        assert!(matches!(header.message, Message::PingReq { .. }));
    }

    #[test]
    fn news_of_members_not_adopted_is_taken_out_and_reported() {
        let packet = gossip(
            "http://peer1",
            &["http://peer2", "http://fake1", "http://me"],
        );
        let Screened::Kept { packet, strangers } = screen(&packet, &known) else {
            panic!("dropped");
        };
        assert_eq!(strangers, ["http://fake1"]);
        assert_eq!(
            packet,
            gossip("http://peer1", &["http://peer2", "http://me"])
        );
    }

    #[test]
    fn a_packet_naming_only_adopted_members_passes_unchanged() {
        let packet = gossip("http://peer1", &["http://peer2"]);
        assert_eq!(
            screen(&packet, &known),
            Screened::Kept {
                packet: packet.clone(),
                strangers: Vec::new()
            }
        );
    }

    #[test]
    fn a_packet_from_a_member_not_adopted_or_undecodable_is_dropped() {
        let packet = gossip("http://fake9", &["http://peer2"]);
        assert_eq!(
            screen(&packet, &known),
            Screened::Dropped {
                sender: Some("http://fake9".into())
            }
        );
        let mut cut = gossip("http://peer1", &["http://peer2", "http://peer3"]);
        cut.truncate(cut.len() - 3);
        assert_eq!(screen(&cut, &known), Screened::Dropped { sender: None });
        assert_eq!(screen(b"", &known), Screened::Dropped { sender: None });
    }

    #[test]
    fn the_budget_for_strangers_allows_ten_a_second() {
        let t0 = Instant::now();
        let mut budget = Budget::new(t0);
        let at_once = (0..100).filter(|_| budget.take(t0)).count();
        assert_eq!(at_once, 10);
        let later = t0 + Duration::from_millis(500);
        let after_half_a_second = (0..100).filter(|_| budget.take(later)).count();
        assert_eq!(after_half_a_second, 5);
    }

    #[test]
    fn lookups_expire_and_their_table_is_bounded() {
        let t0 = Instant::now();
        let mut resolved = Resolved::default();
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        resolved.put("a:9", Some(addr), t0);
        resolved.put("b:9", None, t0);
        assert_eq!(resolved.get("a:9", t0), Some(Some(addr)));
        assert_eq!(resolved.get("b:9", t0), Some(None));
        assert_eq!(
            resolved.get("b:9", t0 + UNRESOLVED_FOR),
            None,
            "failure retried"
        );
        assert_eq!(
            resolved.get("a:9", t0 + RESOLVED_FOR),
            None,
            "looked up again"
        );
        for i in 0..3 * MAX_RESOLVED {
            resolved.put(&format!("h{i}:9"), Some(addr), t0);
        }
        assert!(resolved.by_host.len() <= MAX_RESOLVED);
    }

    /// A host name that takes two seconds to resolve: the membership thread's send
    /// returns at once, the datagram arrives once it is resolved, and the next one
    /// goes straight from the cache.
    #[test]
    fn a_slow_lookup_does_not_hold_up_the_sender() {
        let target = UdpSocket::bind("127.0.0.1:0").unwrap();
        target
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let to = target.local_addr().unwrap();
        let lookups = Arc::new(Mutex::new(0));
        let counted = Arc::clone(&lookups);
        let slow: Lookup = Box::new(move |host| {
            *counted.lock().unwrap() += 1;
            thread::sleep(Duration::from_secs(2));
            (host == "slow.example:1").then_some(to)
        });
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let resolver = Resolver::start(socket, slow).unwrap();
        let start = Instant::now();
        resolver.send_to("http://slow.example:1", b"first".to_vec());
        resolver.send_to("http://slow.example:1", b"second".to_vec());
        let spent = start.elapsed();
        assert!(spent < Duration::from_millis(100), "send blocked {spent:?}");
        let mut buf = [0u8; 16];
        let (n, _) = target.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"first");
        let (n, _) = target.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"second");
        let start = Instant::now();
        resolver.send_to("http://slow.example:1", b"third".to_vec());
        let (n, _) = target.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"third");
        assert!(
            start.elapsed() < Duration::from_millis(500),
            "not from the cache"
        );
        assert_eq!(*lookups.lock().unwrap(), 1, "looked up once");
    }
}
