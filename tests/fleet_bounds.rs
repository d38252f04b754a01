//! Bounds of the fleet protocol, tried by a hostile member (it holds the network
//! key) against real nodes: offers naming more ids than the asked-for table holds,
//! SWIM datagrams naming thousands of fake members, replayed datagrams.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dshare::identity::Identity;
use dshare::replicate::swim::{SWIM_AAD, SwimId};
use dshare::seal::Keyring;
use foca::{Codec, Header, Member, Message, PostcardCodec};
use serde_json::{Value, json};

use crate::attack_peers::{FakePeer, call, keyring_of, many_authors};
use crate::util::{DEADLINE, Node, Scratch, json_lines, ok, wait_for};

/// Resident memory of `pid` in KiB, from /proc.
fn rss_kib(pid: u32) -> u64 {
    crate::util::proc_status(pid, "VmRSS:")
}

fn threads(pid: u32) -> u64 {
    crate::util::proc_status(pid, "Threads:")
}

// 1. Offers naming more ids than MAX_ASKED.

/// `n` heads of messages no node holds, numbered from `from`: one real author, each
/// seq with a made-up id.
fn unheld_heads(author: &Value, from: usize, n: usize) -> Vec<Value> {
    (from..from + n)
        .map(|i| {
            let id = dshare::hex::encode(&sha2_of(i));
            json!({"author": author, "seq": i + 1, "id": id})
        })
        .collect()
}

fn sha2_of(i: usize) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(i.to_be_bytes()).into()
}

fn wanted(answer: &Value) -> (usize, usize) {
    let want = answer["want"].as_array().expect("a want list");
    (
        want.len(),
        want.iter().filter(|w| **w == json!(true)).count(),
    )
}

/// A member offers 600,000 ids the node lacks, 500 an offer (all an offer is
/// looked at for), after one offer of 6,000: the node asks for at most 500 an offer,
/// its memory stays within a few MiB of where it started (the asked-for table holds
/// at most 100,000 ids), it keeps serving, and an honest offer afterwards is asked
/// for once, as before.
#[test]
fn offers_naming_600_000_ids_leave_memory_and_asks_bounded() {
    const IDS: usize = 600_000;
    const PER_OFFER: usize = 500;
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let node = Node::start(&home, &[]);
    let ring = keyring_of(&home);
    let author = json!(Identity::generate().author());
    let rss_before = rss_kib(node.pid());

    let (big, _) = call(
        &ring,
        &node.url,
        "offer",
        &json!({"ids": unheld_heads(&author, 0, 6_000)}),
    )
    .expect("an offer of 6,000 ids is answered");
    assert_eq!(
        wanted(&big),
        (PER_OFFER, PER_OFFER),
        "one offer: 500 looked at"
    );

    let start = Instant::now();
    let mut asked = 0;
    let mut from = 6_000;
    while from < IDS {
        let ids = unheld_heads(&author, from, PER_OFFER);
        let (answer, _) = call(&ring, &node.url, "offer", &json!({ "ids": ids }))
            .unwrap_or_else(|status| panic!("offer at {from} refused: {status}"));
        let (len, yes) = wanted(&answer);
        assert!(len <= PER_OFFER, "want list of {len}");
        asked += yes;
        from += PER_OFFER;
    }
    let spent = start.elapsed();
    let rss_after = rss_kib(node.pid());
    let grown_mib = rss_after.saturating_sub(rss_before) as f64 / 1024.0;
    eprintln!(
        "{IDS} ids offered in {spent:.1?}: {asked} asked for; RSS {rss_before} KiB -> {rss_after} KiB (+{grown_mib:.1} MiB)"
    );
    // A table of 600,000 ids alone is over 40 MiB (its capacity doubles to a million); 100,000 take about 5 MiB.
    assert!(grown_mib < 30.0, "RSS grew {grown_mib:.1} MiB");

    let messages = many_authors(2);
    let head = |m: &dshare::message::Message| json!({"author": m.author, "seq": m.seq, "id": m.id});
    let honest = json!({"ids": [head(&messages[0]), head(&messages[1])]});
    let (first, _) = call(&ring, &node.url, "offer", &honest).unwrap();
    assert_eq!(first["want"], json!([true, true]), "lacking: asked for");
    let (again, _) = call(&ring, &node.url, "offer", &honest).unwrap();
    assert_eq!(again["want"], json!([false, false]), "asked once: {again}");
    let (pushed, _) = call(&ring, &node.url, "push", &json!({ "messages": messages })).unwrap();
    assert_eq!(pushed["outcomes"][0]["status"], "stored");
    assert_eq!(pushed["outcomes"][1]["status"], "stored");
}

// 2 and 3. A hostile member on the membership port.

/// A member played by the test: an HTTP peer that proves its id (so that the node
/// adopts it), with a UDP socket on the same port number for SWIM.
struct HostileMember {
    _http: FakePeer,
    socket: UdpSocket,
    id: SwimId,
    ring: Keyring,
}

impl HostileMember {
    /// Starts the member; the node on `home` is to be given `url` as a peer.
    fn start(home: &std::path::Path) -> HostileMember {
        loop {
            let http = FakePeer::proving(keyring_of(home));
            // The UDP port of the same number is almost always free; if not, again.
            let Ok(socket) = UdpSocket::bind(udp_of(&http.url)) else {
                continue;
            };
            let id = SwimId {
                url: http.url.clone(),
                started_ms: dshare::time::now_ms(),
            };
            return HostileMember {
                _http: http,
                socket,
                id,
                ring: keyring_of(home),
            };
        }
    }

    fn url(&self) -> &str {
        &self.id.url
    }

    /// Waits for a datagram from the node and returns its foca header (the node's
    /// identity is its `src`).
    fn next_header(&self, deadline: Duration) -> Option<Header<SwimId>> {
        let until = Instant::now() + deadline;
        let mut buf = [0u8; 2048];
        while Instant::now() < until {
            let left = until.saturating_duration_since(Instant::now());
            self.socket
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let Ok((n, _)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(opened) = self.ring.open(SWIM_AAD, &buf[..n], dshare::time::now_ms()) else {
                continue;
            };
            let mut rest = opened.plaintext.as_slice();
            if let Ok(header) = Codec::<SwimId>::decode_header(&mut PostcardCodec, &mut rest) {
                return Some(header);
            }
        }
        None
    }

    /// A sealed packet from `src` to `dst` carrying `message` and news of `named`.
    fn packet(
        &self,
        src: &SwimId,
        dst: &SwimId,
        message: Message<SwimId>,
        named: &[SwimId],
    ) -> Vec<u8> {
        let header = Header {
            src: src.clone(),
            src_incarnation: 0,
            dst: dst.clone(),
            message,
        };
        let mut packet = Vec::new();
        PostcardCodec.encode_header(&header, &mut packet).unwrap();
        if !named.is_empty() {
            packet.extend_from_slice(&u16::try_from(named.len()).unwrap().to_be_bytes());
            for m in named {
                PostcardCodec
                    .encode_member(&Member::alive(m.clone()), &mut packet)
                    .unwrap();
            }
        }
        self.ring.seal(SWIM_AAD, &packet, dshare::time::now_ms())
    }
}

/// The UDP address of a node's URL: SWIM listens on the HTTP port number.
fn udp_of(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// Datagrams waiting on each socket, drained.
fn drain(sockets: &[UdpSocket]) -> usize {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    for s in sockets {
        s.set_nonblocking(true).unwrap();
        while s.recv_from(&mut buf).is_ok() {
            n += 1;
        }
    }
    n
}

/// Two real nodes and a hostile member the first one adopted; waits until the
/// node has announced itself to the member, and returns the node's SWIM identity.
fn victim_with_hostile_member(s: &Scratch) -> (Node, Node, HostileMember, SwimId) {
    let first = s.home("n0");
    ok(&first, &["init"]);
    let hostile = HostileMember::start(&first);
    let victim = Node::start(&first, &["--peer", hostile.url()]);
    let invite = ok(&first, &["invite"]).trim().to_string();
    let other_home = s.home("n1");
    ok(&other_home, &["init", "--join", &invite]);
    let other = Node::start(&other_home, &[]);
    wait_for("the victim lists both peers up", DEADLINE, || {
        let up = json_lines(&ok(&first, &["--json", "peers"]))
            .iter()
            .filter(|p| p["state"] == "up")
            .count();
        (up >= 2).then_some(())
    });
    let victim_id = wait_for("a datagram from the victim", DEADLINE, || {
        hostile
            .next_header(Duration::from_millis(500))
            .map(|h| h.src)
            .filter(|src| src.url == victim.url)
    });
    (victim, other, hostile, victim_id)
}

/// What the flood did, counted by the test.
#[derive(Default, Debug)]
struct Flood {
    datagrams: usize,
    named: usize,
    ping_reqs: usize,
}

/// For as long as `running`: 200 datagrams a second to the node, each naming 25
/// fake members (at `fakes`' ports), half from the adopted member and half from a
/// forged sender each time, and 50 requests a second to probe a `reflected`
/// address indirectly. The node's current identity is read from what it sends (it
/// changes when foca starts afresh).
fn flood(
    hostile: &HostileMember,
    mut victim_id: SwimId,
    fakes: &[UdpSocket],
    reflected: &[UdpSocket],
    running: &AtomicBool,
) -> Flood {
    let fake_url = |i: usize| {
        format!(
            "http://{}/fake{i}",
            fakes[i % fakes.len()].local_addr().unwrap()
        )
    };
    let to = udp_of(&victim_id.url);
    let mut counts = Flood::default();
    let mut next_fake = 0;
    let start = Instant::now();
    while running.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * 200.0) as usize;
        while counts.datagrams < due {
            let named: Vec<SwimId> = (next_fake..next_fake + 25)
                .map(|i| SwimId {
                    url: fake_url(i),
                    started_ms: 1,
                })
                .collect();
            next_fake += 25;
            let src = if counts.datagrams % 2 == 0 {
                hostile.id.clone()
            } else {
                SwimId {
                    url: fake_url(next_fake),
                    started_ms: 1,
                }
            };
            let sealed = hostile.packet(&src, &victim_id, Message::Gossip, &named);
            let _ = hostile.socket.send_to(&sealed, to);
            counts.datagrams += 1;
            counts.named += named.len();
            if counts.datagrams % 4 == 0 {
                let target = SwimId {
                    url: format!(
                        "http://{}",
                        reflected[counts.ping_reqs % reflected.len()]
                            .local_addr()
                            .unwrap()
                    ),
                    started_ms: 1,
                };
                let message = Message::PingReq {
                    target,
                    probe_number: 1,
                };
                let sealed = hostile.packet(&hostile.id, &victim_id, message, &[]);
                let _ = hostile.socket.send_to(&sealed, to);
                counts.ping_reqs += 1;
            }
        }
        if let Some(header) = hostile.next_header(Duration::from_millis(5))
            && header.src.url == victim_id.url
        {
            victim_id = header.src;
        }
    }
    counts
}

fn restarts(node: &Node) -> usize {
    node.log().matches("starting afresh").count()
}

/// A member names 5,000 fake members a second for 8 s (from itself and from forged
/// senders) and asks 50 times a second for indirect probes of third-party
/// addresses. The node sends the fake members nothing, the third party at most 10
/// datagrams a second (before: all 400 requests were carried out, 117 reached it),
/// its threads and memory stay put, foca is never started afresh (before: twice in
/// 8 s, each time forgetting every probe under way), and a node killed during the
/// flood is still suspected and shown down within seconds.
#[test]
fn a_member_naming_thousands_of_fake_members_a_second_bounds_nothing_but_itself() {
    let s = Scratch::new();
    let (victim, other, hostile, victim_id) = victim_with_hostile_member(&s);
    let fakes: Vec<UdpSocket> = (0..8)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let reflected: Vec<UdpSocket> = (0..2)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let (threads_before, rss_before) = (threads(victim.pid()), rss_kib(victim.pid()));
    let suspicions = "dshare_member_suspicions_total";
    let suspicions_before = victim.metric(suspicions);
    let running = AtomicBool::new(true);
    let start = Instant::now();
    let (counts, killed_down_after, restarts_seen) = std::thread::scope(|scope| {
        let flooding = scope.spawn(|| flood(&hostile, victim_id, &fakes, &reflected, &running));
        // The flood has run long enough to fill foca's table more than once.
        std::thread::sleep(Duration::from_secs(5));
        let restarts_seen = restarts(&victim);
        let other_url = other.url.clone();
        let killed_at = Instant::now();
        other.kill9();
        let down = wait_for("the killed node shown down", DEADLINE, || {
            let (status, body) = victim.get("/peers", &[]);
            let peers: Value = serde_json::from_str(&body).ok()?;
            let state = peers["peers"]
                .as_array()?
                .iter()
                .find(|p| p["url"] == other_url.as_str())?["state"]
                .clone();
            (status == 200 && state == "down").then(|| killed_at.elapsed())
        });
        // Suspicion, not a failed exchange, is what is proven here.
        wait_for("the killed node suspected", DEADLINE, || {
            (victim.metric(suspicions) > suspicions_before).then_some(())
        });
        let flood_more = Duration::from_secs(8).saturating_sub(start.elapsed());
        std::thread::sleep(flood_more);
        running.store(false, Ordering::Relaxed);
        (flooding.join().unwrap(), down, restarts_seen)
    });
    let spent = start.elapsed().as_secs_f64();
    let to_fakes = drain(&fakes);
    let to_reflected = drain(&reflected);
    let (threads_after, rss_after) = (threads(victim.pid()), rss_kib(victim.pid()));
    let restarts_total = restarts(&victim);
    eprintln!(
        "{counts:?} in {spent:.1} s; to fake members {to_fakes}, to reflected {to_reflected}; \
         threads {threads_before} -> {threads_after}; RSS {rss_before} -> {rss_after} KiB; \
         foca started afresh {restarts_seen} times in the first 5 s, {restarts_total} in all; \
         killed node down after {killed_down_after:.1?}"
    );
    assert!(counts.named >= 30_000, "the flood named {}", counts.named);
    assert_eq!(to_fakes, 0, "datagrams to fake members");
    let reflected_bound = (10.0 * spent + 10.0) as usize;
    assert!(
        to_reflected <= reflected_bound,
        "{to_reflected} datagrams to a third party in {spent:.1} s"
    );
    assert!(
        threads_after <= threads_before + 2,
        "threads {threads_before} -> {threads_after}"
    );
    let grown_mib = rss_after.saturating_sub(rss_before) as f64 / 1024.0;
    assert!(grown_mib < 16.0, "RSS grew {grown_mib:.1} MiB");
    assert!(
        restarts_total <= 1,
        "foca started afresh {restarts_total} times"
    );
    assert!(
        killed_down_after < Duration::from_secs(10),
        "down after {killed_down_after:?}"
    );
}

/// A datagram the member sealed once (a ping) is answered once: three replays of it
/// within the seal's window get no answer and are counted as refused.
#[test]
fn a_replayed_membership_datagram_is_acted_on_once() {
    let s = Scratch::new();
    let (victim, _other, hostile, victim_id) = victim_with_hostile_member(&s);
    let refused = "dshare_inputs_refused_total{reason=\"replay\"}";
    let refused_before = victim.metric(refused);
    let ping = hostile.packet(&hostile.id, &victim_id, Message::Ping(42), &[]);
    let to = udp_of(&victim.url);
    // The node also pings the member now and then: acks are counted over a span.
    let acks = |hostile: &HostileMember| {
        let until = Instant::now() + Duration::from_millis(1500);
        let mut n = 0;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if hostile
                .next_header(left)
                .is_some_and(|h| h.message == Message::Ack(42))
            {
                n += 1;
            }
        }
        n
    };
    hostile.socket.send_to(&ping, to).unwrap();
    let first = acks(&hostile);
    for _ in 0..3 {
        hostile.socket.send_to(&ping, to).unwrap();
    }
    let replayed = acks(&hostile);
    let refused_now = victim.metric(refused) - refused_before;
    eprintln!(
        "acks: {first} to the ping, {replayed} to 3 replays; refused as replays: {refused_now}"
    );
    assert_eq!(first, 1, "the ping is answered");
    assert_eq!(replayed, 0, "replays answered");
    assert!(refused_now >= 3.0, "replays counted: {refused_now}");
}
