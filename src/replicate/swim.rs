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
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::thread;
use std::time::{Duration, Instant};

use foca::{AccumulatingRuntime, Foca, Member, OwnedNotification, PostcardCodec, State, Timer};
use serde::{Deserialize, Serialize};

use super::Replicator;
use crate::seal::Keyring;

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
/// How long a suspected member has to refute the suspicion before it is down.
const SUSPECT_TO_DOWN: Duration = Duration::from_secs(3);

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
pub enum Command {
    /// Join through this peer (adopted, so proven by a sealed hello).
    Announce(String),
}

type Swim = Foca<SwimId, PostcardCodec, SwimRng, foca::NoCustomBroadcast>;

/// foca's settings for a network of up to [`super::peers::MAX_PEERS`] peers: a probe a
/// second, half a second for an answer, three indirect probes, no gossip beyond
/// what rides on probes (it sent three packets every 200 ms).
fn config() -> foca::Config {
    let mut config = foca::Config::new_lan(NonZeroU32::new(64).expect("not zero"));
    config.suspect_to_down_after = SUSPECT_TO_DOWN;
    config.remove_down_after = Some(REMOVE_DOWN_AFTER);
    config.max_packet_size = NonZeroUsize::new(MAX_PACKET).expect("not zero");
    config.periodic_gossip = None;
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
) -> Option<mpsc::Sender<Command>> {
    let socket = match UdpSocket::bind(at) {
        Ok(s) => s,
        Err(e) => {
            crate::warning!("no membership socket on udp {at} ({e}): liveness from exchanges only");
            return None;
        }
    };
    let me = SwimId {
        url: url.to_string(),
        started_ms: crate::time::now_ms(),
    };
    let foca = Foca::new(me, config(), SwimRng::new(seed), PostcardCodec);
    let (tx, rx) = mpsc::channel();
    let mut member = Membership {
        socket,
        foca,
        runtime: AccumulatingRuntime::new(),
        timers: Vec::new(),
        keyring,
        rep: Weak::clone(rep),
        commands: rx,
        addrs: HashMap::new(),
        seen: HashMap::new(),
    };
    thread::Builder::new()
        .name("membership".into())
        .spawn(move || member.run())
        .expect("spawn the membership thread");
    Some(tx)
}

struct Membership {
    socket: UdpSocket,
    foca: Swim,
    runtime: AccumulatingRuntime<SwimId>,
    timers: Vec<(Instant, Timer<SwimId>)>,
    keyring: Arc<Keyring>,
    rep: Weak<Replicator>,
    commands: mpsc::Receiver<Command>,
    /// UDP addresses of member URLs, looked up once.
    addrs: HashMap<String, Option<SocketAddr>>,
    /// The state last reported for each member URL.
    seen: HashMap<String, Seen>,
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
            while let Ok(Command::Announce(url)) = self.commands.try_recv() {
                let to = SwimId { url, started_ms: 0 };
                let _ = self.foca.announce(to, &mut self.runtime);
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
            if let Ok((n, _from)) = self.socket.recv_from(&mut buf) {
                self.received(&buf[..n]);
            }
            self.flush(&rep);
        }
    }

    /// Opens a datagram and hands it to foca; one that does not open is dropped
    /// without a word.
    fn received(&mut self, datagram: &[u8]) {
        crate::metrics::METRICS
            .peer_bytes_in
            .add(datagram.len() as u64);
        let Ok(opened) = self.keyring.open(SWIM_AAD, datagram, crate::time::now_ms()) else {
            crate::metrics::METRICS.refused(crate::metrics::Refusal::Seal);
            return;
        };
        let _ = self.foca.handle_data(&opened.plaintext, &mut self.runtime);
        self.earn_membership();
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
        let strangers: Vec<SwimId> = self
            .foca
            .iter_members()
            .filter(|m| !rep.peers.contains(&m.id().url))
            .map(|m| m.id().clone())
            .collect();
        for stranger in &strangers {
            rep.heard_of(&stranger.url);
        }
        if !strangers.is_empty() {
            let down = strangers.into_iter().map(Member::down);
            let _ = self.foca.apply_many(down, false, &mut self.runtime);
        }
        if self.foca.iter_membership_state().len() > MAX_MEMBERS {
            self.start_afresh(&rep);
        }
    }

    /// A new foca, as a new identity of this node, announced to every peer: what
    /// bounds the down members kept when a member names too many.
    fn start_afresh(&mut self, rep: &Replicator) {
        crate::warning!("membership: more than {MAX_MEMBERS} members named; starting afresh");
        let me = self.foca.identity().clone();
        let renewed = SwimId {
            url: me.url,
            started_ms: crate::time::now_ms().max(me.started_ms + 1),
        };
        let seed = self.foca.identity().started_ms;
        self.foca = Foca::new(renewed, config(), SwimRng::new(seed), PostcardCodec);
        self.timers.clear();
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
            let _ = self.foca.handle_timer(timer, &mut self.runtime);
        }
    }

    /// Carries out what foca asked for: datagrams (sealed), timers, and what it
    /// concluded about members.
    fn flush(&mut self, rep: &Replicator) {
        while let Some((to, data)) = self.runtime.to_send() {
            if let Some(addr) = self.addr_of(&to.url) {
                let sealed = self.keyring.seal(SWIM_AAD, &data, crate::time::now_ms());
                crate::metrics::METRICS
                    .peer_bytes_out
                    .add(sealed.len() as u64);
                let _ = self.socket.send_to(&sealed, addr);
            }
        }
        while let Some((after, timer)) = self.runtime.to_schedule() {
            self.timers.push((Instant::now() + after, timer));
        }
        while let Some(notification) = self.runtime.to_notify() {
            match notification {
                OwnedNotification::MemberUp(id) => self.report(rep, &id.url, Seen::Up),
                OwnedNotification::MemberDown(id) => self.report(rep, &id.url, Seen::Down),
                _ => {}
            }
        }
        // Suspicion has no notification: states are compared with those reported,
        // and only a change costs a copy of the URL.
        let suspects: Vec<(String, Seen)> = self
            .foca
            .iter_membership_state()
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

    /// A member's state changed: the replicator is told if it is a peer, and a member
    /// it does not know is heard of (it is adopted only once it proves an id).
    fn report(&mut self, rep: &Replicator, url: &str, seen: Seen) {
        if self.seen.get(url) == Some(&seen) {
            return;
        }
        if self.seen.len() >= 2 * MAX_MEMBERS && !self.seen.contains_key(url) {
            self.seen.retain(|u, _| rep.peers.contains(u));
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

    /// The UDP address of a member URL: its host and port (the same port number as
    /// its HTTP listener).
    fn addr_of(&mut self, url: &str) -> Option<SocketAddr> {
        if let Some(addr) = self.addrs.get(url) {
            return *addr;
        }
        let addr = url
            .strip_prefix("http://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|host| host.to_socket_addrs().ok()?.next());
        if self.addrs.len() >= 4 * MAX_MEMBERS {
            self.addrs.clear();
        }
        self.addrs.insert(url.to_string(), addr);
        addr
    }
}
