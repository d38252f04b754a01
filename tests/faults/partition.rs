//! Partitions on real network stacks. Each node runs in its own network namespace,
//! with its own address, joined to the others by a veth pair into a bridge in a
//! "switch" namespace: separate machines on one LAN, as far as the nodes can tell.
//! Pulling a node's cable (its switch port down), and flapping it, must not lose a
//! message: both sides go on accepting sends, and once the link is back every node
//! holds every message.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::harness::{CONVERGE, Rng, box_ids, init_network, report, serial, verify_json};
use crate::util::{BIN, DEADLINE, Scratch, show};

/// The nodes' port; every node has its own address, so they can all use it.
const PORT: u16 = 7070;

/// The test's namespaces, deleted on drop (pass or fail). Their names carry this
/// process's id, so concurrent runs do not meet, and leftovers of a run that was
/// killed outright are recognised and removed by the next one.
struct Namespaces {
    prefix: String,
    names: Vec<String>,
}

const NS_PREFIX: &str = "dshf-";

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Namespaces {
    /// A switch namespace with a bridge, and one namespace per node with `eth0` plugged
    /// into it and the address `10.77.0.<i + 2>/24`.
    fn create(nodes: usize) -> Result<Namespaces, String> {
        static RUN: AtomicU32 = AtomicU32::new(0);
        remove_leftovers();
        let prefix = format!(
            "{NS_PREFIX}{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        );
        let mut ns = Namespaces {
            prefix: prefix.clone(),
            names: Vec::new(),
        };
        let sw = ns.add("sw")?;
        ip(&["-n", &sw, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &sw, "link", "set", "br0", "up"])?;
        for i in 0..nodes {
            let name = ns.add(&format!("n{i}"))?;
            let port = format!("p{i}");
            ip(&[
                "-n", &sw, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns",
                &name,
            ])?;
            ip(&["-n", &sw, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &port, "up"])?;
            ip(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{}/24", addr(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &name, "link", "set", "eth0", "up"])?;
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
        }
        Ok(ns)
    }

    fn add(&mut self, suffix: &str) -> Result<String, String> {
        let name = format!("{}-{suffix}", self.prefix);
        ip(&["netns", "add", &name])?;
        self.names.push(name.clone());
        Ok(name)
    }

    fn node(&self, i: usize) -> String {
        format!("{}-n{i}", self.prefix)
    }

    /// Node `i`'s cable: its port on the switch, down or up.
    fn link(&self, i: usize, up: bool) {
        let sw = format!("{}-sw", self.prefix);
        ip(&[
            "-n",
            &sw,
            "link",
            "set",
            &format!("p{i}"),
            if up { "up" } else { "down" },
        ])
        .unwrap();
    }

    /// Random loss on both directions of node `i`'s link, with `tc netem`; false when
    /// the kernel has no netem.
    fn lossy(&self, i: usize, percent: u32) -> bool {
        let sw = format!("{}-sw", self.prefix);
        let loss = format!("{percent}%");
        let port = format!("p{i}");
        let node = self.node(i);
        [(&node, "eth0"), (&sw, port.as_str())]
            .iter()
            .all(|(ns, dev)| {
                Command::new("tc")
                    .args(["-n", ns, "qdisc", "replace", "dev", dev, "root", "netem"])
                    .args(["loss", &loss, "delay", "5ms"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
    }

    fn clear_loss(&self, i: usize) {
        let sw = format!("{}-sw", self.prefix);
        let port = format!("p{i}");
        let node = self.node(i);
        for (ns, dev) in [(node.as_str(), "eth0"), (sw.as_str(), port.as_str())] {
            let _ = Command::new("tc")
                .args(["-n", ns, "qdisc", "del", "dev", dev, "root"])
                .output();
        }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace deletes its interfaces; the veth pairs go with them.
        for name in self.names.iter().rev() {
            if let Err(e) = ip(&["netns", "del", name]) {
                eprintln!("warning: cannot delete network namespace {name}: {e}");
            }
        }
    }
}

/// Deletes namespaces that an earlier run of this suite left behind when it was
/// killed before its guards ran (their creator's process id is gone).
fn remove_leftovers() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(rest) = name.strip_prefix(NS_PREFIX) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if !pid.is_empty() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

fn addr(i: usize) -> String {
    format!("10.77.0.{}", i + 2)
}

fn url(i: usize) -> String {
    format!("http://{}:{PORT}", addr(i))
}

/// `ip netns exec NS dshare --home HOME ARGS…` with the same clean environment as
/// the other tests.
fn ns_dshare(ns: &str, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new("ip");
    for (k, _) in std::env::vars() {
        if k.starts_with("DSHARE_") || k.starts_with("XDG_") || k == "HOME" {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", home.parent().unwrap_or(home));
    cmd.args(["netns", "exec", ns, BIN, "--home"])
        .arg(home)
        .args(args);
    cmd
}

fn ns_run(ns: &str, home: &Path, args: &[&str]) -> Output {
    ns_dshare(ns, home, args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A node running inside a namespace; killed and reaped on drop.
struct NsNode {
    child: Child,
    log: PathBuf,
}

impl NsNode {
    fn start(ns: &str, home: &Path, i: usize, nodes: usize) -> NsNode {
        let listen = format!("{}:{PORT}", addr(i));
        let mut args = vec!["serve".to_string(), "--listen".into(), listen];
        for j in (0..nodes).filter(|&j| j != i) {
            args.push("--peer".into());
            args.push(url(j));
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let log = home.with_extension("log");
        let _ = fs::remove_file(home.join("node.addr"));
        let child = ns_dshare(ns, home, &args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut node = NsNode { child, log };
        crate::util::wait_for("a node in its namespace to start", DEADLINE, || {
            if let Some(status) = node.child.try_wait().unwrap() {
                panic!(
                    "the node in {ns} exited early ({status}):\n{}",
                    fs::read_to_string(&node.log).unwrap_or_default()
                );
            }
            home.join("node.addr").exists().then_some(())
        });
        node
    }
}

impl Drop for NsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `count` messages on node `i` through its own command line (inside its
/// namespace); returns their ids.
fn send_on(ns: &Namespaces, homes: &[PathBuf], i: usize, label: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|k| {
            let out = ns_run(
                &ns.node(i),
                &homes[i],
                &["send", &format!("{label} #{k} from node {i}")],
            );
            assert!(out.status.success(), "send on node {i}\n{}", show(&out));
            String::from_utf8(out.stdout).unwrap().trim().to_string()
        })
        .collect()
}

/// Waits until the boxes of `homes` hold exactly `ids` each; returns how long that took.
fn converge(homes: &[&PathBuf], ids: &BTreeSet<String>) -> Duration {
    let start = Instant::now();
    loop {
        let held: Vec<BTreeSet<String>> = homes
            .iter()
            .map(|h| box_ids(h).into_iter().collect())
            .collect();
        if held.iter().all(|h| h == ids) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < CONVERGE,
            "no convergence on {} messages within {CONVERGE:?}: nodes hold {:?}",
            ids.len(),
            held.iter().map(BTreeSet::len).collect::<Vec<_>>()
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the test may run: network namespaces need root and iproute2. Where they
/// cannot be created the test says so loudly, and fails when `CI` is set.
fn namespaces_or_skip(t: &str, nodes: usize) -> Option<Namespaces> {
    match Namespaces::create(nodes) {
        Ok(ns) => Some(ns),
        Err(e) => {
            let msg = format!(
                "SKIPPED: cannot create network namespaces ({e}); this test needs root and iproute2"
            );
            report(t, &msg);
            assert!(std::env::var_os("CI").is_none(), "{t}: {msg} (CI is set)");
            None
        }
    }
}

#[test]
fn partition_and_heal_between_network_namespaces_loses_nothing() {
    let _serial = serial();
    let t = "partition";
    let started = Instant::now();
    let mut rng = Rng::new(t);
    const NODES: usize = 3;
    let scratch = Scratch::new();
    // Declared before the nodes, so dropped after them: the namespaces go last.
    let Some(ns) = namespaces_or_skip(t, NODES) else {
        return;
    };
    let homes = init_network(&scratch, &["a", "b", "c"], &url(0));
    let _nodes: Vec<NsNode> = (0..NODES)
        .map(|i| NsNode::start(&ns.node(i), &homes[i], i, NODES))
        .collect();
    let all: Vec<&PathBuf> = homes.iter().collect();
    let mut ids: BTreeSet<String> = BTreeSet::new();
    ids.extend(send_on(&ns, &homes, 0, "hello", 1));
    let joined = converge(&all, &ids);

    // 1. Pull node 0's cable; both sides go on sending.
    ns.link(0, false);
    let cut = Instant::now();
    let island: Vec<String> = send_on(&ns, &homes, 0, "cut off", 15);
    let mut mainland: Vec<String> = send_on(&ns, &homes, 1, "mainland", 15);
    mainland.extend(send_on(&ns, &homes, 2, "mainland", 15));
    let mut main_ids = ids.clone();
    main_ids.extend(mainland.iter().cloned());
    let main_converged = converge(&[&homes[1], &homes[2]], &main_ids);
    let island_ids: BTreeSet<String> = ids.iter().chain(&island).cloned().collect();
    assert_eq!(
        box_ids(&homes[0]).into_iter().collect::<BTreeSet<_>>(),
        island_ids,
        "node 0 is cut off: it holds its own messages and nothing new from the others"
    );
    // The cut-off node sees its peers go down.
    crate::util::wait_for("node 0 to see its peers down", DEADLINE, || {
        let out = ns_run(&ns.node(0), &homes[0], &["peers", "--json"]);
        let peers = crate::util::json_lines(&String::from_utf8_lossy(&out.stdout));
        (peers.len() == 2 && peers.iter().all(|p| p["state"] == "down")).then_some(())
    });
    let partitioned_for = cut.elapsed();

    // 2. Heal.
    ns.link(0, true);
    ids.extend(island.iter().cloned());
    ids.extend(mainland.iter().cloned());
    let healed = converge(&all, &ids);
    report(
        t,
        &format!(
            "{NODES} nodes in namespaces at 10.77.0.2-4 (joined in {joined:.1?}); node 0's link down for {partitioned_for:.1?}: \
             15 sends on the cut-off side, 30 on the other (which converged in {main_converged:.1?} while cut); \
             healed: all {} messages on all nodes {healed:.1?} after the link came back",
            ids.len()
        ),
    );

    // 3. A flapping link: down and up at random for a few seconds while every node sends.
    let flaps_start = Instant::now();
    let mut flaps = 0;
    let mut sent = 0;
    while flaps_start.elapsed() < Duration::from_secs(6) {
        ns.link(0, false);
        thread::sleep(rng.ms(100, 600));
        let i = rng.below(NODES as u64) as usize;
        ids.extend(send_on(&ns, &homes, i, "flap", 3));
        sent += 3;
        ns.link(0, true);
        thread::sleep(rng.ms(100, 600));
        flaps += 1;
    }
    let flapped = converge(&all, &ids);
    report(
        t,
        &format!(
            "flapping link: {flaps} down/up cycles in {:.1?} with {sent} sends; converged {flapped:.1?} after the last",
            flaps_start.elapsed()
        ),
    );

    // 4. A lossy link, where the kernel has tc netem.
    if ns.lossy(0, 30) {
        for i in 0..NODES {
            ids.extend(send_on(&ns, &homes, i, "lossy", 10));
        }
        let lossy = converge(&all, &ids);
        ns.clear_loss(0);
        report(
            t,
            &format!("30% packet loss on node 0's link: 30 sends, converged in {lossy:.1?}"),
        );
    } else {
        report(
            t,
            "lossy link: SKIPPED, this kernel has no tc netem (the cut and flapping phases ran)",
        );
    }

    let digests: BTreeSet<String> = homes
        .iter()
        .map(|h| verify_json(h)["digest"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(digests.len(), 1, "digests differ: {digests:?}");
    for h in &homes {
        let held = box_ids(h);
        assert_eq!(
            held.len(),
            ids.len(),
            "a message is held twice in {}",
            h.display()
        );
    }
    report(
        t,
        &format!(
            "{} messages checked on {NODES} nodes: boxes verify, digests equal, no duplicates; total {:.1?}",
            ids.len(),
            started.elapsed()
        ),
    );
}
