//! `dshare testnet`: N nodes on loopback, each a child `dshare serve` of this same
//! binary in its own home, joined into one network. Prints the nodes, then `ready`,
//! and runs until SIGINT or SIGTERM, when it stops the nodes and removes the homes.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::TestnetArgs;
use crate::exit::Code;
use crate::home::Home;
use crate::net::client::{NodeChoice, NodeClient};

use super::Output;

/// How long the nodes get to start and to find each other. Generous: on a loaded
/// two-core machine a debug build of many nodes starts slowly.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long a node gets to stop on SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// How often the running network is checked for signals and for nodes that died.
const TICK: Duration = Duration::from_millis(100);

/// Environment variables of `serve` that would make a test node differ from what
/// testnet sets up.
const SERVE_ENV: &[&str] = &[
    "DSHARE_LISTEN",
    "DSHARE_ADVERTISE",
    "DSHARE_PEERS",
    "DSHARE_FANOUT",
    "DSHARE_WORKERS",
    "DSHARE_IO_TIMEOUT",
    "DSHARE_ON_MESSAGE",
    "DSHARE_NODE",
    "DSHARE_TOKEN",
];

/// One node of the network.
struct Member {
    home: Home,
    log: PathBuf,
    child: Option<Child>,
    url: String,
}

/// The network; dropping it stops every node and, if temporary, removes the homes.
struct Net {
    root: PathBuf,
    temporary: bool,
    members: Vec<Member>,
}

pub fn run(args: &TestnetArgs, out: Output) -> Result<Code> {
    // Registered first, so a stop request during start-up is not lost.
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let (root, temporary) = match &args.dir {
        Some(dir) => {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
            (dir.clone(), false)
        }
        None => (temp_root()?, true),
    };
    let mut net = Net {
        root,
        temporary,
        members: Vec::new(),
    };
    net.start(usize::from(args.nodes), &mut signals)?;
    for (i, m) in net.members.iter().enumerate() {
        print_member(i + 1, m, out)?;
    }
    if out.json {
        let ready = serde_json::json!({"ready": true, "nodes": net.members.len(), "dir": net.root});
        println!("{ready}");
    } else {
        println!("ready");
    }
    net.watch(signals, out);
    out.note("stopping the test network");
    drop(net);
    Ok(Code::Success)
}

/// A new private directory under the system's temporary directory.
fn temp_root() -> Result<PathBuf> {
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let dir = std::env::temp_dir().join(format!(
        "dshare-testnet-{}-{}",
        std::process::id(),
        crate::hex::encode(&random)
    ));
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn print_member(n: usize, m: &Member, out: Output) -> Result<()> {
    if out.json {
        let line = serde_json::json!({
            "node": n,
            "url": m.url,
            "home": m.home.dir(),
            "id": m.home.identity()?.author(),
            "token": m.home.token()?.expose_hex(),
            "pid": m.child.as_ref().map(Child::id),
            "log": m.log,
        });
        println!("{line}");
    } else {
        println!("node{n} {} {}", m.url, m.home.dir().display());
    }
    Ok(())
}

impl Net {
    /// Makes the homes (one network key), starts the nodes, the first one alone so
    /// that the others can be pointed at it, and waits until every node sees every
    /// other one up.
    fn start(&mut self, n: usize, signals: &mut Signals) -> Result<()> {
        let exe = std::env::current_exe().context("cannot find the dshare binary")?;
        let deadline = Instant::now() + START_DEADLINE;
        let mut key = None;
        for i in 1..=n {
            let home = Home::resolve(Some(self.root.join(format!("node{i}"))))?;
            if !home.exists() {
                home.init(key.as_ref())?;
            }
            if key.is_none() {
                key = Some(home.network_key()?);
            }
            let log = self.root.join(format!("node{i}.log"));
            let mut cmd = Command::new(&exe);
            for var in SERVE_ENV {
                cmd.env_remove(var);
            }
            cmd.arg("--home")
                .arg(home.dir())
                .args(["serve", "--listen", "127.0.0.1:0"]);
            if let Some(first) = self.members.first() {
                cmd.args(["--peer", &first.url]);
            }
            let child = cmd
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(
                    fs::File::create(&log)
                        .with_context(|| format!("cannot create {}", log.display()))?,
                )
                .spawn()
                .context("cannot start `dshare serve`")?;
            self.members.push(Member {
                home,
                log,
                child: Some(child),
                url: String::new(),
            });
            if i == 1 {
                self.wait_for_addresses(deadline, signals)?;
            }
        }
        self.wait_for_addresses(deadline, signals)?;
        self.wait_until_joined(deadline, signals)
    }

    /// Fails when a node has exited, showing the end of its log.
    fn check_alive(&mut self) -> Result<()> {
        for (i, m) in self.members.iter_mut().enumerate() {
            if let Some(status) = m.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let log = fs::read_to_string(&m.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                bail!(
                    "node{} exited during start-up ({status}):\n{}",
                    i + 1,
                    tail.join("\n")
                );
            }
        }
        Ok(())
    }

    fn wait_for_addresses(&mut self, deadline: Instant, signals: &mut Signals) -> Result<()> {
        loop {
            self.check_alive()?;
            for m in &mut self.members {
                if m.url.is_empty()
                    && let Ok(url) = m.home.node_url()
                {
                    m.url = url;
                }
            }
            if self.members.iter().all(|m| !m.url.is_empty()) {
                return Ok(());
            }
            wait_tick(deadline, signals, "the nodes to start")?;
        }
    }

    fn wait_until_joined(&mut self, deadline: Instant, signals: &mut Signals) -> Result<()> {
        let want = self.members.len() - 1;
        loop {
            self.check_alive()?;
            let mut joined = true;
            for m in &self.members {
                if up_peers(m).unwrap_or(0) < want {
                    joined = false;
                    break;
                }
            }
            if joined {
                return Ok(());
            }
            wait_tick(deadline, signals, "every node to see every other one up")?;
        }
    }

    /// Runs until a signal; says when a node exits (a script may stop one on purpose).
    fn watch(&mut self, mut signals: Signals, out: Output) {
        loop {
            if signals.pending().next().is_some() {
                return;
            }
            for (i, m) in self.members.iter_mut().enumerate() {
                if let Some(child) = m.child.as_mut()
                    && let Ok(Some(status)) = child.try_wait()
                {
                    out.note(format!(
                        "node{} exited ({status}); its log: {}",
                        i + 1,
                        m.log.display()
                    ));
                    m.child = None;
                }
            }
            std::thread::sleep(TICK);
        }
    }
}

/// Peers `m` sees up.
fn up_peers(m: &Member) -> Result<usize> {
    let client = NodeClient::connect(
        &m.home,
        &NodeChoice {
            url: Some(m.url.clone()),
            ..NodeChoice::default()
        },
    )?;
    Ok(client.peers()?.peers.iter().filter(|p| p.is_up()).count())
}

/// One tick of a start-up wait: fails on a signal or when the deadline passed.
fn wait_tick(deadline: Instant, signals: &mut Signals, what: &str) -> Result<()> {
    if signals.pending().next().is_some() {
        bail!("stopped by a signal while waiting for {what}");
    }
    if Instant::now() > deadline {
        bail!(
            "timed out after {}s waiting for {what}",
            START_DEADLINE.as_secs()
        );
    }
    std::thread::sleep(TICK);
    Ok(())
}

/// Sends SIGTERM with kill(1): std has no safe way to send a signal other than
/// SIGKILL, and this crate forbids unsafe code.
fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Net {
    fn drop(&mut self) {
        let mut running: Vec<Child> = self
            .members
            .iter_mut()
            .filter_map(|m| m.child.take())
            .collect();
        for child in &running {
            terminate(child);
        }
        let end = Instant::now() + STOP_DEADLINE;
        while !running.is_empty() {
            running.retain_mut(|c| !matches!(c.try_wait(), Ok(Some(_))));
            if Instant::now() > end {
                for c in &mut running {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.temporary {
            remove(&self.root);
        }
    }
}

fn remove(dir: &Path) {
    if let Err(e) = fs::remove_dir_all(dir) {
        crate::warning!("cannot remove {}: {e}", dir.display());
    }
}
