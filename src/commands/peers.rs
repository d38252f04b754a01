//! `dshare peers`: the peers the node knows and how they are.

use anyhow::{Context, Result};

use crate::api::PeerView;
use crate::cli::{NodeArgs, PeersArgs};
use crate::exit::Code;
use crate::home::Home;
use crate::net::client::{NodeChoice, NodeClient};

pub use crate::api::PeersAnswer;

use super::Output;

pub fn fetch(home: &Home, node: &NodeArgs) -> Result<PeersAnswer> {
    NodeClient::connect(home, &node.choice())?.peers()
}

pub fn run(home: &Home, args: &PeersArgs, out: Output) -> Result<Code> {
    let answer = fetch(home, &args.node)?;
    if let Some(want) = args.expect_up {
        return expect_up(&answer, want, out);
    }
    if out.json {
        for p in &answer.peers {
            println!("{}", serde_json::to_string(p)?);
        }
        return Ok(Code::Success);
    }
    if answer.peers.is_empty() && !out.quiet {
        crate::note!(
            "no peers known; start the node with --peer URL, or join with `dshare init --join`"
        );
    }
    for p in &answer.peers {
        println!("{}", human(p));
    }
    if answer.refused > 0 && !out.quiet {
        println!("messages refused from peers: {}", answer.refused);
    }
    if !answer.forks.is_empty() {
        println!(
            "forks seen: {} (an author signed two different messages with the same seq)",
            answer.forks.len()
        );
    }
    Ok(Code::Success)
}

/// `peers --expect-up N`: the usual output (none with `-q`), then exit 1 with the
/// reason when fewer than N peers are up.
fn expect_up(answer: &PeersAnswer, want: usize, out: Output) -> Result<Code> {
    for p in &answer.peers {
        if out.json {
            println!("{}", serde_json::to_string(p)?);
        } else if !out.quiet {
            println!("{}", human(p));
        }
    }
    let up = answer.peers.iter().filter(|p| p.is_up()).count();
    if up >= want {
        return Ok(Code::Success);
    }
    let down: Vec<String> = answer
        .peers
        .iter()
        .filter(|p| !p.is_up())
        .map(|p| format!("{} ({})", p.url, p.state))
        .collect();
    Err(crate::exit::failure(format!(
        "only {up} of {} known peers are up, expected at least {want}{}",
        answer.peers.len(),
        if down.is_empty() {
            String::new()
        } else {
            format!("; not up: {}", down.join(", "))
        }
    )))
}

/// `URL  STATE  ID  last seen …  rtt …  SYNC`.
pub fn human(p: &PeerView) -> String {
    let id = p.id.map_or_else(|| "-".repeat(12), |id| id.short(12));
    let seen = p.last_seen.map_or_else(
        || "never".to_string(),
        |ms| {
            let ago = crate::time::now_ms().saturating_sub(ms);
            format!("{:.1}s ago", ago as f64 / 1000.0)
        },
    );
    let rtt = p
        .rtt_ms
        .map_or_else(|| "-".to_string(), |r| format!("{r:.2}ms"));
    let line = format!(
        "{:<28} {:<7} {id}  last seen {seen:<10} rtt {rtt:<9} {}",
        p.url,
        p.state,
        relation(p)
    );
    match &p.last_error {
        Some(e) => format!("{line}  (last exchange failed: {e})"),
        None => line,
    }
}

/// In sync, behind, ahead, diverged, as of the last exchange.
pub fn relation(p: &PeerView) -> String {
    if p.diverged {
        "diverged".into()
    } else if p.in_sync {
        "in sync".into()
    } else if !p.is_up() {
        "unknown".into()
    } else if p.behind > 0 {
        format!("behind: peer has {} more", p.behind)
    } else if p.ahead > 0 {
        format!("ahead: peer lacks {}", p.ahead)
    } else {
        "syncing".into()
    }
}

/// The running node's advertised address, for `invite`.
pub fn advertised(home: &Home) -> Result<String> {
    crate::net::client::home_node_url(home, Some("pass --url URL"))?;
    let client = NodeClient::connect(home, &NodeChoice::default())?;
    client.status()?.url.context(
        "this node has no address other machines can reach: restart it with --advertise http://HOST:PORT, or pass --url to invite",
    )
}
