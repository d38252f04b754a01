//! A fleet, not a room: threads per node and calls to peers stay bounded whatever
//! the number of peers, and the cost of a node at rest is measured (an ignored test
//! prints the figures).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::attack_peers::{FakePeer, keyring_of};
use crate::util::{DEADLINE, Node, Scratch, json_lines, ok, wait_for};

/// Members played by the test: each proves its own id and stores what it is pushed.
fn members(home: &Path, n: usize) -> Vec<FakePeer> {
    (0..n)
        .map(|_| FakePeer::proving(keyring_of(home)))
        .collect()
}

fn hellos(fakes: &[FakePeer]) -> usize {
    fakes.iter().map(|f| f.count("hello")).sum()
}

/// A node named "a" started with `n` self-proving fake members as its peers, once it
/// shows every one of them up.
fn node_with_members(s: &Scratch, n: usize) -> (std::path::PathBuf, Vec<FakePeer>, Node) {
    let home = s.home("a");
    ok(&home, &["init"]);
    let fakes = members(&home, n);
    let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
    for f in &fakes {
        args.extend(["--peer", f.url.as_str()]);
    }
    let node = Node::start_with(&home, &args);
    wait_for("every peer up", DEADLINE, || {
        (peers_up(&home) == n).then_some(())
    });
    (home, fakes, node)
}

/// 40 peers: one thread per peer made 40 more threads (over 50 in all), and a hello
/// to each every second. Now a fixed pool calls them: threads stay at or under 32,
/// and the node starts about one exchange a round (plus retries, bounded) whatever
/// the number of peers.
#[test]
fn forty_peers_cost_no_more_threads_or_calls_than_a_few() {
    const PEERS: usize = 40;
    let s = Scratch::new();
    let (home, fakes, node) = node_with_members(&s, PEERS);
    let at_rest = threads(node.pid());
    let before = hellos(&fakes);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(5));
    let per_second = (hellos(&fakes) - before) as f64 / start.elapsed().as_secs_f64();
    // A send to all of them, waiting for every confirmation.
    ok(
        &home,
        &["send", "--wait", "all", "--timeout", "20s", "hello fleet"],
    );
    let after_send = threads(node.pid());
    eprintln!(
        "{PEERS} peers: threads {at_rest} at rest, {after_send} after a send --wait all; {per_second:.1} hellos a second"
    );
    assert!(at_rest <= 32, "threads at rest: {at_rest}");
    assert!(after_send <= 32, "threads after a send: {after_send}");
    assert!(per_second <= 4.0, "hellos a second: {per_second:.1}");
    assert!(
        fakes.iter().all(|f| f.count("push") >= 1),
        "every peer got the message"
    );
}

/// Threads of the process `pid`, from /proc.
fn threads(pid: u32) -> u64 {
    crate::util::proc_status(pid, "Threads:")
}

/// CPU time (user + system) of `pid` in clock ticks (100 a second on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name may hold spaces: fields are counted after its closing paren.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the paren.
    field(11) + field(12)
}

/// Bytes the node sent to and received from peers so far, from its metrics (bodies
/// exact, HTTP heads estimated; TCP/IP framing not counted).
fn peer_bytes(node: &Node) -> (u64, u64) {
    (
        node.metric("dshare_peer_bytes_sent_total") as u64,
        node.metric("dshare_peer_bytes_received_total") as u64,
    )
}

/// The first node makes a network; each of the others joins it with its invite.
fn network(s: &Scratch, n: usize) -> Vec<Node> {
    let first = s.home("n0");
    ok(&first, &["init"]);
    let mut nodes = vec![Node::start(&first, &[])];
    let invite = ok(&first, &["invite"]).trim().to_string();
    for i in 1..n {
        let home = s.home(&format!("n{i}"));
        ok(&home, &["init", "--join", &invite]);
        nodes.push(Node::start(&home, &[]));
    }
    nodes
}

fn peers_up(home: &Path) -> usize {
    json_lines(&ok(home, &["--json", "peers"]))
        .iter()
        .filter(|p| p["state"] == "up")
        .count()
}

/// Waits until every node lists `want` peers up.
fn wait_all_know(nodes: &[Node], want: usize, deadline: Duration) {
    wait_for("every node to list its peers up", deadline, || {
        nodes
            .iter()
            .all(|n| peers_up(&n.home) >= want)
            .then_some(())
    });
}

/// Per-node averages over `span` at rest: threads, share of a core, bytes out and in
/// per second; and the most threads of any node.
struct AtRest {
    threads_mean: f64,
    threads_max: u64,
    cpu_percent: f64,
    out_per_s: f64,
    in_per_s: f64,
}

/// CPU ticks, and peer bytes out and in, of one node at one moment.
type Reading = (u64, (u64, u64));

fn at_rest(nodes: &[Node], span: Duration) -> AtRest {
    let pids: Vec<u32> = nodes.iter().map(Node::pid).collect();
    let sample = || -> Vec<Reading> {
        nodes
            .iter()
            .map(|n| (cpu_ticks(n.pid()), peer_bytes(n)))
            .collect()
    };
    let before = sample();
    let start = Instant::now();
    std::thread::sleep(span);
    let secs = start.elapsed().as_secs_f64();
    let after = sample();
    let n = nodes.len() as f64;
    let threads: Vec<u64> = pids.iter().map(|&p| threads(p)).collect();
    let sum = |f: &dyn Fn(&Reading, &Reading) -> u64| {
        before.iter().zip(&after).map(|(b, a)| f(b, a)).sum::<u64>() as f64
    };
    AtRest {
        threads_mean: threads.iter().sum::<u64>() as f64 / n,
        threads_max: threads.iter().copied().max().unwrap_or(0),
        cpu_percent: sum(&|b, a| a.0 - b.0) / n / secs,
        out_per_s: sum(&|b, a| a.1.0 - b.1.0) / n / secs,
        in_per_s: sum(&|b, a| a.1.1 - b.1.1) / n / secs,
    }
}

/// Prints the at-rest figures of a network of `DSHARE_FLEET_NODES` nodes (3 unless
/// set). `cargo test --test tests fleet::at_rest -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement: starts many nodes and prints figures"]
fn at_rest_cost_per_node() {
    let n: usize = std::env::var("DSHARE_FLEET_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let s = Scratch::new();
    let nodes = network(&s, n);
    wait_all_know(
        &nodes,
        (n - 1).min(dshare::replicate::peers::MAX_PEERS),
        DEADLINE * 4,
    );
    // Let the start-up catch-up and peer exchange settle.
    std::thread::sleep(Duration::from_secs(5));
    let total = |series: &str| nodes.iter().map(|n| n.metric(series)).sum::<f64>();
    let churn = || {
        (
            total("dshare_member_suspicions_total"),
            total("dshare_member_renewals_total"),
        )
    };
    let churn_before = churn();
    let r = at_rest(&nodes, Duration::from_secs(20));
    let churn_after = churn();
    eprintln!(
        "at rest, {n} nodes, per node: threads {:.1} (max {}), CPU {:.3}% of a core, {:.0} B/s sent to peers, {:.0} B/s received",
        r.threads_mean, r.threads_max, r.cpu_percent, r.out_per_s, r.in_per_s
    );
    eprintln!(
        "all nodes, before the 20 s and during them: {} and {} suspicions, {} and {} identity renewals",
        churn_before.0,
        churn_after.0 - churn_before.0,
        churn_before.1,
        churn_after.1 - churn_before.1,
    );
    // Which threads the busiest node runs, by name.
    if let Some(busiest) = nodes.iter().max_by_key(|n| threads(n.pid())) {
        let mut names: Vec<String> = std::fs::read_dir(format!("/proc/{}/task", busiest.pid()))
            .map(|tasks| {
                tasks
                    .flatten()
                    .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
                    .map(|c| c.trim().to_string())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        eprintln!("threads of the busiest node: {names:?}");
    }
}

/// The state a node's `/peers` shows for `url`, if it lists it. Read over HTTP, not
/// with `dshare peers`, so that seven nodes are polled in milliseconds and a
/// suspicion lasting a few seconds is not missed on a busy machine.
fn state_of(node: &Node, url: &str) -> Option<String> {
    let (status, body) = node.get("/peers", &[]);
    if status != 200 {
        return None;
    }
    let answer: serde_json::Value = serde_json::from_str(&body).ok()?;
    answer["peers"]
        .as_array()?
        .iter()
        .find(|p| p["url"] == url)
        .and_then(|p| p["state"].as_str().map(str::to_string))
}

/// A node killed with -9 in a network of eight is shown down by all seven others
/// within seconds: SWIM probes it, asks others to probe it, suspects it, and the
/// news rides on the probes. With one exchange a round alone, each node would meet
/// the dead one only when its turn came, after up to seven rounds.
#[test]
fn a_killed_node_is_suspected_then_shown_down_by_every_other_within_seconds() {
    const NODES: usize = 8;
    let s = Scratch::new();
    let mut nodes = network(&s, NODES);
    wait_all_know(&nodes, NODES - 1, DEADLINE * 2);
    let dead = nodes.pop().unwrap();
    let dead_url = dead.url.clone();
    let suspicions_before = suspicions(&nodes);
    let start = Instant::now();
    dead.kill9();
    let mut down_at = vec![None; nodes.len()];
    while down_at.iter().any(Option::is_none) {
        assert!(
            start.elapsed() < DEADLINE,
            "not every node shows it down: {down_at:?}"
        );
        for (i, n) in nodes.iter().enumerate() {
            if down_at[i].is_none() && state_of(n, &dead_url).as_deref() == Some("down") {
                down_at[i] = Some(start.elapsed());
            }
        }
    }
    let last = down_at.iter().flatten().max().copied().unwrap();
    // An exchange that fails may show it down before failure detection does, so
    // SWIM's part is read from the counter, not from a state that may be skipped.
    let suspected = suspicions(&nodes) - suspicions_before;
    eprintln!(
        "shown down by all {} others after {last:?} (new suspicions: {suspected})",
        nodes.len()
    );
    assert!(suspected >= 1.0, "failure detection never suspected it");
    assert!(last < Duration::from_secs(10), "down after {last:?}");
}

/// A node stopped with SIGTERM says so as it leaves: every other node shows it down
/// at once, before failure detection could (a probe, then 2 s of suspicion), without
/// suspecting it first and without an exchange with it failing.
#[test]
fn a_node_that_stops_is_shown_down_by_every_other_at_once_without_suspicion() {
    const NODES: usize = 4;
    let s = Scratch::new();
    let mut nodes = network(&s, NODES);
    wait_all_know(&nodes, NODES - 1, DEADLINE * 2);
    let leaving = nodes.pop().unwrap();
    let url = leaving.url.clone();
    let before = suspicions(&nodes);
    let start = Instant::now();
    assert!(leaving.stop().success());
    let soon = Duration::from_secs(2);
    let mut pending: Vec<&Node> = nodes.iter().collect();
    while !pending.is_empty() {
        assert!(
            start.elapsed() < soon,
            "{} of {} nodes do not show the node that left down after {soon:?}",
            pending.len(),
            nodes.len()
        );
        pending.retain(|n| state_of(n, &url).as_deref() != Some("down"));
    }
    eprintln!(
        "shown down by all {} others after {:?}",
        nodes.len(),
        start.elapsed()
    );
    assert_eq!(suspicions(&nodes), before, "it was suspected, not told");
    for node in &nodes {
        assert!(
            node.metric("dshare_peers_shown_down_total") >= 1.0,
            "a peer turned down is counted"
        );
        let (_, body) = node.get("/peers", &[]);
        let peers: serde_json::Value = serde_json::from_str(&body).unwrap();
        let entry = peers["peers"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["url"] == url))
            .cloned()
            .unwrap();
        assert!(
            entry
                .get("last_error")
                .is_none_or(serde_json::Value::is_null),
            "shown down by a failed exchange, not by its word: {entry}"
        );
    }
}

/// How many times the nodes have suspected a member, all together.
fn suspicions(nodes: &[Node]) -> f64 {
    nodes
        .iter()
        .map(|n| n.metric("dshare_member_suspicions_total"))
        .sum()
}

/// The UDP address of a node's URL: SWIM listens on the HTTP port number.
fn udp_of(url: &str) -> std::net::SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// An outsider's datagrams (garbage, or sealed with another network's key) get no
/// answer at all on the membership port.
#[test]
fn membership_datagrams_of_outsiders_get_no_answer() {
    let s = Scratch::new();
    let nodes = network(&s, 2);
    wait_all_know(&nodes, 1, DEADLINE);
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let other = dshare::seal::Keyring::new(&dshare::secret::Secret::new([7; 32]));
    let to = udp_of(&nodes[0].url);
    socket.send_to(b"hello?", to).unwrap();
    let sealed = other.seal(
        dshare::replicate::swim::SWIM_AAD,
        b"\x00\x01",
        dshare::time::now_ms(),
    );
    socket.send_to(&sealed, to).unwrap();
    let mut buf = [0u8; 2048];
    let answer = socket.recv_from(&mut buf);
    assert!(answer.is_err(), "an outsider got {answer:?}");
}

/// A member (it holds the network key) that tells a node of 400 members at a third
/// party's UDP ports makes it send that party no datagram and adds no thread: before
/// members were earned, the node sent the third party 84 datagrams in 12 s (pings,
/// and indirect-probe requests to members it took for helpers).
#[test]
fn a_hostile_member_naming_400_fake_members_cannot_raise_probes_or_threads() {
    use dshare::replicate::swim::{SWIM_AAD, SwimId, SwimRng};
    use foca::{AccumulatingRuntime, Codec, Foca, Header, Member, PostcardCodec};

    let s = Scratch::new();
    let nodes = network(&s, 2);
    wait_all_know(&nodes, 1, DEADLINE);
    let victim_node = &nodes[0];
    let ring = keyring_of(&victim_node.home);
    let third_party: Vec<std::net::UdpSocket> = (0..8)
        .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let fakes: Vec<SwimId> = (0..400)
        .map(|i| SwimId {
            url: format!(
                "http://{}/fake{i}",
                third_party[i % third_party.len()].local_addr().unwrap()
            ),
            started_ms: 1,
        })
        .collect();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let me = SwimId {
        url: format!("http://{}", socket.local_addr().unwrap()),
        started_ms: 1,
    };
    let config = foca::Config::new_lan(std::num::NonZeroU32::new(64).unwrap());
    let mut foca = Foca::new(me.clone(), config, SwimRng::new(5), PostcardCodec);
    let mut runtime = AccumulatingRuntime::new();
    let target = SwimId {
        url: victim_node.url.clone(),
        started_ms: 0,
    };
    foca.announce(target, &mut runtime).unwrap();
    let before = threads(victim_node.pid());
    let start = Instant::now();
    let mut buf = [0u8; 2048];
    let mut told = 0;
    let mut last_told = Instant::now();
    let (mut sent_to_node, mut from_node) = (0, 0);
    while start.elapsed() < Duration::from_secs(12) {
        while let Some((to, data)) = runtime.to_send() {
            // Only to the node: the fakes are there to be named, not talked to.
            if to.url == victim_node.url {
                sent_to_node += 1;
                let sealed = ring.seal(SWIM_AAD, &data, dshare::time::now_ms());
                socket.send_to(&sealed, udp_of(&to.url)).unwrap();
            }
        }
        while runtime.to_schedule().is_some() {}
        while runtime.to_notify().is_some() {}
        if let Ok((n, _)) = socket.recv_from(&mut buf)
            && let Ok(opened) = ring.open(SWIM_AAD, &buf[..n], dshare::time::now_ms())
        {
            from_node += 1;
            let _ = foca.handle_data(&opened.plaintext, &mut runtime);
        }
        // Joined: tell the node of the fakes, 20 a datagram, 5 datagrams a second.
        let node_id = foca
            .iter_members()
            .map(|m| m.id().clone())
            .find(|id| id.url == victim_node.url);
        if let Some(dst) = node_id
            && last_told.elapsed() >= Duration::from_millis(200)
            && told < fakes.len()
        {
            let header = Header {
                src: me.clone(),
                src_incarnation: 0,
                dst,
                message: foca::Message::Gossip,
            };
            let mut packet = Vec::new();
            PostcardCodec.encode_header(&header, &mut packet).unwrap();
            let batch = &fakes[told..(told + 20).min(fakes.len())];
            packet.extend_from_slice(&u16::try_from(batch.len()).unwrap().to_be_bytes());
            for fake in batch {
                PostcardCodec
                    .encode_member(&Member::alive(fake.clone()), &mut packet)
                    .unwrap();
            }
            let sealed = ring.seal(SWIM_AAD, &packet, dshare::time::now_ms());
            socket.send_to(&sealed, udp_of(&victim_node.url)).unwrap();
            told += batch.len();
            last_told = Instant::now();
        }
    }
    // A member that speaks from the address its URL names is let in, adopted or
    // not (a node that adopted this one must have its probes answered); what it
    // names is not (an adopted member naming thousands is tried in fleet_bounds).
    assert_eq!(
        told,
        fakes.len(),
        "the member speaking from its own address never joined"
    );
    // Nor is it told it is down at every datagram, which made it take a new
    // identity each time (foca's TurnUndead) when strangers were declared down.
    assert_eq!(foca.identity(), &me, "the node told the member it was down");
    let spent = start.elapsed().as_secs_f64();
    let mut received = 0;
    for party in &third_party {
        party.set_nonblocking(true).unwrap();
        while party.recv_from(&mut buf).is_ok() {
            received += 1;
        }
    }
    let after = threads(victim_node.pid());
    eprintln!(
        "third party got {received} datagrams in {spent:.1} s; threads {before} -> {after}; {sent_to_node} datagrams to the node, {from_node} from it"
    );
    // Membership is earned: named members are not probed until they prove an id
    // over HTTP (at the candidates' bounded rate), which these never do.
    assert_eq!(received, 0, "datagrams to the third party in {spent:.1} s");
    assert!(after <= before + 2, "threads {before} -> {after}");
    assert!(
        json_lines(&ok(&victim_node.home, &["--json", "peers"])).len() <= 2,
        "no fake member is adopted as a peer"
    );
}

/// Eager/lazy push, on real nodes. `offer` says which ids a node lacks, and asks
/// for each once (a second offer of the same id at once is not asked for: the first
/// offerer's push is on its way). With `--fanout 1`, a node of four forwards a
/// message it received over its links (pushed to those still eager, offered to the
/// others); every node ends with it.
#[test]
fn offers_ask_for_what_is_lacking_once_and_forwarded_messages_reach_every_node() {
    use crate::attack_peers::{call, many_authors};

    let s = Scratch::new();
    let first = s.home("n0");
    ok(&first, &["init"]);
    let mut nodes = vec![Node::start(&first, &["--fanout", "1"])];
    let invite = ok(&first, &["invite"]).trim().to_string();
    for i in 1..4 {
        let home = s.home(&format!("n{i}"));
        ok(&home, &["init", "--join", &invite]);
        nodes.push(Node::start(&home, &["--fanout", "1"]));
    }
    wait_all_know(&nodes, 3, DEADLINE);
    let ring = keyring_of(&first);
    let messages = many_authors(2);
    let head = |m: &dshare::message::Message| json!({"author": m.author, "seq": m.seq, "id": m.id});
    let offer = json!({"ids": [head(&messages[0]), head(&messages[1])]});
    let (answer, _) = call(&ring, &nodes[0].url, "offer", &offer).unwrap();
    assert_eq!(answer["want"], json!([true, true]), "lacking: asked for");
    let (again, _) = call(&ring, &nodes[0].url, "offer", &offer).unwrap();
    assert_eq!(again["want"], json!([false, false]), "asked once: {again}");
    // A message from an author outside the network, pushed to node 0 alone: node 0
    // forwards it (it was not sent to all), eagerly to one peer and by offer to one.
    let (pushed, _) = call(
        &ring,
        &nodes[0].url,
        "push",
        &json!({"messages": [messages[0]]}),
    )
    .unwrap();
    assert_eq!(pushed["outcomes"][0]["status"], "stored");
    let id = messages[0].id.to_string();
    for n in &nodes {
        wait_for("the forwarded message everywhere", DEADLINE, || {
            ok(&n.home, &["log", "--json"]).contains(&id).then_some(())
        });
    }
    let held = json!({"ids": [head(&messages[0])]});
    let (answer, _) = call(&ring, &nodes[1].url, "offer", &held).unwrap();
    assert_eq!(answer["want"], json!([false]), "held: not asked for");
}

/// The peers a node's `/peers` shows as links (read over HTTP, as [`state_of`]).
fn links_of(node: &Node) -> Vec<String> {
    let (_, body) = node.get("/peers", &[]);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    answer["peers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["link"] == true)
        .filter_map(|p| p["url"].as_str().map(str::to_string))
        .collect()
}

/// A node that joins when every table is full still gets a place, and a link: its
/// hello asks for one, and a node with room for links takes it in the place of a
/// peer that is not a link (at most one a second). A greeter that asks for no link
/// (an older node) takes a place at most once every 30 s, counted from the last
/// place given. Before, a late joiner was set aside for want of room, so in a fleet
/// whose tables were full it was in no table at all (nobody pushed to it or watched
/// it).
#[test]
fn a_node_greeting_a_full_table_gets_a_place_and_a_link_and_the_table_keeps_its_bound() {
    use crate::attack_peers::call;

    const FULL: usize = 64;
    let s = Scratch::new();
    let (home, _fakes, node) = node_with_members(&s, FULL);
    let invite = ok(&home, &["invite"]).trim().to_string();
    let joiner = |name: &str| {
        let h = s.home(name);
        ok(&h, &["init", "--join", &invite]);
        Node::start(&h, &[])
    };
    let joiners = [joiner("j1"), joiner("j2")];
    for j in &joiners {
        wait_for(
            "a joiner in the full table, linked both ways",
            DEADLINE,
            || {
                let both = links_of(&node).contains(&j.url) && links_of(j).contains(&node.url);
                both.then_some(())
            },
        );
    }
    // A member outside the table that greets without asking for a link, proving its
    // address: no place within 30 s of the last one.
    let ring = keyring_of(&home);
    let older = FakePeer::proving(keyring_of(&home));
    let hello = json!({
        "from": {"id": dshare::identity::Identity::generate().author(), "url": older.url},
        "digest": "0".repeat(64),
        "peers": [],
    });
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        call(&ring, &node.url, "hello", &hello).expect("a sealed hello");
        assert!(
            state_of(&node, &older.url).is_none(),
            "a place given up within 30 s of the last"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let listed = json_lines(&ok(&home, &["--json", "peers"])).len();
    assert_eq!(listed, FULL, "the table stays at its bound");
}

/// Links are held by both ends and bounded: in a network of eight, every node holds
/// between one and five, and each link a node shows, its peer shows too.
#[test]
fn links_are_held_by_both_ends_and_bounded() {
    let s = Scratch::new();
    let nodes = network(&s, 8);
    wait_all_know(&nodes, 7, DEADLINE);
    wait_for(
        "every node's links, held back by each peer",
        DEADLINE,
        || {
            let links: Vec<Vec<String>> = nodes.iter().map(links_of).collect();
            let symmetric = nodes.iter().zip(&links).all(|(n, held)| {
                (1..=5).contains(&held.len())
                    && held.iter().all(|u| {
                        nodes
                            .iter()
                            .position(|m| &m.url == u)
                            .is_some_and(|j| links[j].contains(&n.url))
                    })
            });
            symmetric.then_some(())
        },
    );
    // A message still reaches every node, and a send's confirmations still come
    // from every peer (they do not depend on links).
    ok(
        &nodes[3].home,
        &["send", "--wait", "all", "--timeout", "20s", "over links"],
    );
    for n in &nodes {
        wait_for("the message everywhere", DEADLINE, || {
            ok(&n.home, &["log"]).contains("over links").then_some(())
        });
    }
}

/// A hostile member asking for links urgently from many proven addresses cannot
/// raise a node's links past five nor its table past 64: an urgent request drops at
/// most one link a second, and takes a place in a full table at most as often.
#[test]
fn urgent_link_requests_from_many_addresses_keep_links_and_table_bounded() {
    use crate::attack_peers::call;

    const FULL: usize = 64;
    let s = Scratch::new();
    let (home, _fakes, node) = node_with_members(&s, FULL);
    let ring = keyring_of(&home);
    let askers: Vec<FakePeer> = members(&home, 30);
    let until = Instant::now() + Duration::from_secs(4);
    let mut most_links = 0;
    while Instant::now() < until {
        for a in &askers {
            let hello = json!({
                "from": {"id": dshare::identity::Identity::generate().author(), "url": a.url},
                "digest": "0".repeat(64),
                "peers": [],
                "link": {"word": "urgent", "seq": dshare::time::now_ms()},
            });
            call(&ring, &node.url, "hello", &hello).expect("a sealed hello");
        }
        most_links = most_links.max(links_of(&node).len());
        let listed = json_lines(&ok(&home, &["--json", "peers"])).len();
        assert!(listed <= FULL, "{listed} peers");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(most_links <= 5, "{most_links} links");
    let taken = askers
        .iter()
        .filter(|a| state_of(&node, &a.url).is_some())
        .count();
    assert!(taken <= 5 + 5, "{taken} askers took a place in 4 s");
}

/// A message is neither pushed nor offered back to the peer that pushed it, nor to
/// one that offered it: with ten peers (past the fan-out of eight), the node
/// forwards a pushed message to one peer and offers it to eight of the other nine,
/// so without `from` each of the two was among them nine times in ten.
#[test]
fn a_message_goes_back_neither_to_its_pusher_nor_to_its_offerer() {
    use crate::attack_peers::{call, many_authors};

    let s = Scratch::new();
    let (home, fakes, node) = node_with_members(&s, 10);
    let ring = keyring_of(&home);
    let messages = many_authors(2);
    let head = |m: &dshare::message::Message| json!({"author": m.author, "seq": m.seq, "id": m.id});
    let ids: Vec<_> = messages.iter().map(head).collect();
    let (want, _) = call(
        &ring,
        &node.url,
        "offer",
        &json!({"ids": ids, "from": fakes[1].url}),
    )
    .unwrap();
    assert_eq!(want["want"], json!([true, true]));
    for m in &messages {
        let (pushed, _) = call(
            &ring,
            &node.url,
            "push",
            &json!({"messages": [m], "from": fakes[0].url}),
        )
        .unwrap();
        assert_eq!(pushed["outcomes"][0]["status"], "stored");
    }
    // Each message goes to at least 7 of the 8 others (9 of 10 chosen, the two
    // holders left out).
    let reached = |f: &FakePeer| f.count("push") + f.count("offer");
    wait_for("the messages forwarded", DEADLINE, || {
        (fakes[2..].iter().map(reached).sum::<usize>() >= 2 * 7).then_some(())
    });
    // Offers wait 50 ms: anything due to the two would have gone by now.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(reached(&fakes[0]), 0, "the pusher");
    assert_eq!(reached(&fakes[1]), 0, "the offerer");
}

/// Context switches so far (each a sleep and a wake) of each thread of `pid` named
/// `name`, summed.
fn wakes_of(pid: u32, name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.trim() == name))
        .map(|t| {
            let status = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            status
                .lines()
                .filter_map(|l| {
                    l.strip_prefix("voluntary_ctxt_switches:")
                        .or_else(|| l.strip_prefix("nonvoluntary_ctxt_switches:"))
                })
                .filter_map(|v| v.trim().parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// An idle node's threads sleep until something is due: the offers thread and the
/// HTTP waiting room woke once a second each with nothing to do (a wake costs tens
/// of microseconds of CPU on a virtual machine, and at rest the wakes were most of
/// a node's CPU). Over four seconds with no request, no peer and no offer, each
/// wakes at most once.
#[test]
fn an_idle_node_does_not_wake_on_a_clock() {
    let s = Scratch::new();
    let node = Node::start(&s.home("a"), &[]);
    let pid = node.pid();
    let names = ["offers", "waiting-room"];
    wait_for("the node's threads to start", DEADLINE, || {
        names.iter().all(|n| wakes_of(pid, n) > 0).then_some(())
    });
    let before: Vec<u64> = names.iter().map(|n| wakes_of(pid, n)).collect();
    std::thread::sleep(Duration::from_secs(4));
    let woke: Vec<u64> = names
        .iter()
        .zip(&before)
        .map(|(n, b)| wakes_of(pid, n) - b)
        .collect();
    eprintln!("wakes over 4 s: {names:?} {woke:?}");
    assert!(woke[0] <= 1, "offers woke {} times", woke[0]);
    assert!(woke[1] <= 1, "the waiting room woke {} times", woke[1]);
}
