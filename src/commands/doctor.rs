//! `dshare doctor`: one health verdict for a cron watchdog. Is the node running and
//! answering, is its box intact, are its peers up and in sync, were forks seen, is
//! there room left where the box lives. Exit 0 healthy, 1 unhealthy (with the
//! reasons), 2 could not check.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Serialize;

use crate::cli::DoctorArgs;
use crate::exit::Code;
use crate::home::Home;
use crate::mbox;
use crate::net::client::{NodeChoice, NodeClient};

use super::Output;
use crate::api::{PeerState, PeersAnswer};

/// The whole verdict; `--json` prints it as one object.
#[derive(Debug, Serialize)]
struct Verdict {
    healthy: bool,
    /// Why the node is unhealthy; empty when healthy.
    problems: Vec<String>,
    /// Worth knowing, not unhealthy by themselves (a peer down, a short lag).
    warnings: Vec<String>,
    node: NodeCheck,
    #[serde(rename = "box")]
    box_: Option<BoxCheck>,
    peers: Option<PeersCheck>,
    forks: Option<usize>,
    disk: Option<DiskCheck>,
    /// The last full `dshare verify` of the box, if one was recorded: the node starts
    /// from its checkpoint, so that is what last proved the lines before it.
    last_full_verify: Option<mbox::Audit>,
}

#[derive(Debug, Serialize, Default)]
struct NodeCheck {
    running: bool,
    answering: bool,
    url: Option<String>,
    messages: Option<u64>,
    digest: Option<String>,
}

#[derive(Debug, Serialize)]
struct BoxCheck {
    path: String,
    ok: bool,
    messages: u64,
    errors: u64,
    first_error: Option<String>,
    /// Where the history this node holds begins, when epochs were closed or retired
    /// history was never received (`verify` says the same).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    history: Vec<String>,
}

#[derive(Debug, Serialize)]
struct PeersCheck {
    known: usize,
    up: usize,
    in_sync: usize,
    down: Vec<String>,
    /// Messages held by the peer furthest ahead that this node lacks.
    max_behind: u64,
    refused: u64,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
struct DiskCheck {
    path: String,
    mount: String,
    total_bytes: u64,
    available_bytes: u64,
    min_free_bytes: u64,
}

pub fn run(home: &Home, args: &DoctorArgs, out: Output) -> Result<Code> {
    if !home.exists() {
        bail!(
            "{} is not a dshare home, so there is nothing to check; create one with `dshare init`",
            home.dir().display()
        );
    }
    let mut v = Verdict {
        healthy: true,
        problems: Vec::new(),
        warnings: Vec::new(),
        node: NodeCheck::default(),
        box_: None,
        peers: None,
        forks: None,
        disk: None,
        last_full_verify: mbox::last_audit(&home.box_path()),
    };
    check_node(home, args, &mut v);
    check_box(home, &mut v)?;
    check_disk(home, args.min_free, &mut v);
    v.healthy = v.problems.is_empty();
    if out.json {
        println!("{}", serde_json::to_string(&v)?);
    } else if !(out.quiet && v.healthy) {
        print_human(&v);
    }
    Ok(if v.healthy {
        Code::Success
    } else {
        Code::Failure
    })
}

/// The node: running (holds the home's lock), answering `/status`, then its peers.
fn check_node(home: &Home, args: &DoctorArgs, v: &mut Verdict) {
    v.node.running = home.node_running();
    if !v.node.running {
        v.problems.push(format!(
            "no node is running for {}; start one with `dshare serve`",
            home.dir().display()
        ));
        return;
    }
    let client = match NodeClient::connect(home, &NodeChoice::default()) {
        Ok(c) => c.with_timeout(args.timeout),
        Err(e) => {
            v.problems
                .push(format!("the node is running but cannot be reached: {e:#}"));
            return;
        }
    };
    v.node.url = Some(client.base().to_string());
    match client.status() {
        Ok(s) => {
            v.node.answering = true;
            v.node.messages = Some(s.messages);
            v.node.digest = Some(s.digest.to_hex());
            if s.recovering {
                v.warnings.push(
                    "the node lost the end of its box before it started and refuses new sends until a peer has sent it back"
                        .into(),
                );
            }
        }
        Err(e) => {
            v.problems.push(format!(
                "the node at {} does not answer within {:?}: {e:#}",
                client.base(),
                args.timeout
            ));
            return;
        }
    }
    match client.peers() {
        Ok(answer) => check_peers(&answer, args.max_behind, v),
        Err(e) => v
            .problems
            .push(format!("cannot read the node's peer table: {e:#}")),
    }
}

/// Peers: none up while some are known is a problem (the node is cut off); a single
/// peer down is a warning (that machine's own watchdog speaks for it). Lagging behind
/// an up peer by more than `max_behind` messages is a problem; forks always are.
fn check_peers(answer: &PeersAnswer, max_behind: u64, v: &mut Verdict) {
    let up: Vec<_> = answer.peers.iter().filter(|p| p.is_up()).collect();
    // A peer not greeted yet (the node has just started) is neither up nor down.
    let down: Vec<String> = answer
        .peers
        .iter()
        .filter(|p| p.state == PeerState::Down)
        .map(|p| p.url.clone())
        .collect();
    let furthest = up.iter().max_by_key(|p| p.behind);
    let check = PeersCheck {
        known: answer.peers.len(),
        up: up.len(),
        in_sync: up.iter().filter(|p| p.in_sync).count(),
        down: down.clone(),
        max_behind: furthest.map_or(0, |p| p.behind),
        refused: answer.refused,
    };
    if check.known == 0 {
        v.warnings.push(
            "no peers known: messages stay on this node (start it with --peer URL, or join with `dshare init --join`)"
                .into(),
        );
    } else if check.up == 0 && down.is_empty() {
        v.warnings
            .push("no peer contacted yet: the node has just started".into());
    } else if check.up == 0 {
        v.problems.push(format!(
            "none of the {} known peers is up: this node is cut off ({})",
            check.known,
            down.join(", ")
        ));
    } else {
        for url in &down {
            v.warnings.push(format!("peer {url} is down"));
        }
    }
    if let Some(p) = furthest.filter(|p| p.behind > 0) {
        let text = format!("{} messages behind peer {}", p.behind, p.url);
        if p.behind > max_behind {
            v.problems
                .push(format!("{text} (more than --max-behind {max_behind})"));
        } else {
            v.warnings.push(text);
        }
    }
    for p in &answer.peers {
        let key_refused = p
            .last_error
            .as_deref()
            .is_some_and(|e| e.contains(crate::replicate::REFUSED_KEY));
        if key_refused {
            v.problems.push(format!(
                "peer {} {}: this node cannot exchange with it; compare `dshare keys list` on both, or join again with a fresh `dshare invite`",
                p.url,
                crate::replicate::REFUSED_KEY
            ));
        }
        if let Some(why) = &p.refuses_ours {
            v.problems
                .push(format!("peer {} refuses our messages: {why}", p.url));
        }
    }
    for p in up.iter().filter(|p| p.diverged) {
        v.problems.push(format!(
            "peer {} holds a different history for some author (diverged)",
            p.url
        ));
    }
    if answer.refused > 0 {
        v.warnings.push(format!(
            "{} messages from peers were refused by a check",
            answer.refused
        ));
    }
    if !answer.forks.is_empty() {
        v.problems.push(format!(
            "{} forks seen: an author signed two different messages with the same seq (`dshare peers` lists them)",
            answer.forks.len()
        ));
    }
    v.forks = Some(answer.forks.len());
    v.peers = Some(check);
}

/// The box, with every check `dshare verify` makes. A running node may be half way
/// through appending a line.
fn check_box(home: &Home, v: &mut Verdict) -> Result<()> {
    let path = home.box_path();
    if !path.exists() {
        v.warnings
            .push(format!("{} does not exist yet", path.display()));
        return Ok(());
    }
    let signer = home.identity().ok().map(|i| i.author());
    let report = mbox::verify_history(&path, None, v.node.running, signer, &mut |_| {})?;
    let first_error = report
        .errors
        .first()
        .map(|e| format!("line {}: {}", e.line, e.error));
    if let Some(first) = &first_error {
        v.problems.push(format!(
            "the box {} fails verification at {first}{} (`dshare verify --json` lists every problem)",
            path.display(),
            if report.error_count > 1 {
                format!(" and {} more", report.error_count - 1)
            } else {
                String::new()
            }
        ));
    }
    if let Some(first) = report.warnings.first() {
        v.warnings.push(format!(
            "the box {} holds {} line(s) over the clock cap, first line {}: {}",
            path.display(),
            report.warnings.len(),
            first.line,
            first.error
        ));
    }
    v.box_ = Some(BoxCheck {
        path: path.display().to_string(),
        ok: report.ok,
        messages: report.messages,
        errors: report.error_count,
        first_error,
        history: history_lines(&report),
    });
    Ok(())
}

/// What `verify` said of the history before the live box, in lines for people.
fn history_lines(report: &mbox::Report) -> Vec<String> {
    let epochs = report.epochs.len();
    let kept = report
        .epochs
        .iter()
        .filter(|e| e.state == "checked")
        .count();
    let mut lines = Vec::new();
    if epochs > 0 {
        lines.push(format!("{epochs} closed epoch(s), {kept} with their lines"));
    }
    lines.extend(report.history.clone());
    lines.extend(report.starts.iter().map(|s| {
        format!(
            "author {}: history from seq {} on",
            s.author.short(12),
            s.from_seq
        )
    }));
    lines
}

/// Free space where the box lives, from `df -Pk` (POSIX output, 1024-byte units).
fn check_disk(home: &Home, min_free: u64, v: &mut Verdict) {
    match free_space(home.dir()) {
        Ok((mount, total_kib, available_kib)) => {
            let disk = DiskCheck {
                path: home.dir().display().to_string(),
                mount,
                total_bytes: total_kib.saturating_mul(1024),
                available_bytes: available_kib.saturating_mul(1024),
                min_free_bytes: min_free,
            };
            if disk.available_bytes < min_free {
                v.problems.push(format!(
                    "only {} free on {} where the box lives (minimum {}): a node refuses every send when its disk is full",
                    human_bytes(disk.available_bytes),
                    disk.mount,
                    human_bytes(min_free)
                ));
            }
            v.disk = Some(disk);
        }
        Err(e) => v
            .warnings
            .push(format!("cannot tell the free disk space: {e:#}")),
    }
}

/// `(mount point, total KiB, available KiB)` of the file system holding `dir`.
fn free_space(dir: &Path) -> Result<(String, u64, u64)> {
    let out = Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .context("cannot run df")?;
    if !out.status.success() {
        bail!("df failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    parse_df(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `df -P` output. The data line is `FILESYSTEM BLOCKS USED AVAILABLE CAPACITY%
/// MOUNT`; the file system name and the mount point may hold spaces, so the numbers
/// are found around the capacity column.
fn parse_df(text: &str) -> Result<(String, u64, u64)> {
    let line = text.lines().nth(1).context("df printed no data line")?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let cap = words
        .iter()
        .rposition(|w| w.ends_with('%') && w[..w.len() - 1].chars().all(|c| c.is_ascii_digit()))
        .filter(|&i| i >= 4)
        .with_context(|| format!("cannot read df's line {line:?}"))?;
    let number = |w: &str| {
        w.parse::<u64>()
            .with_context(|| format!("cannot read df's line {line:?}"))
    };
    let total = number(words[cap - 3])?;
    let available = number(words[cap - 1])?;
    Ok((words[cap + 1..].join(" "), total, available))
}

/// When the last full verify ran and what it found, for people.
fn describe_audit(audit: Option<&mbox::Audit>, now_ms: u64) -> String {
    let Some(a) = audit else {
        return "none  no full verify recorded; `dshare verify` checks every line".into();
    };
    let verdict = if a.ok { "ok  " } else { "FAIL" };
    format!(
        "{verdict}  last full verify {} ago ({}): {}, {} lines",
        human_age(now_ms.saturating_sub(a.at_ms)),
        crate::time::utc(a.at_ms),
        if a.ok { "intact" } else { "failed" },
        a.lines
    )
}

/// A duration in its largest whole unit.
fn human_age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} days", s / 86_400),
    }
}

/// Bytes in binary units, one decimal.
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn print_human(v: &Verdict) {
    let node = if !v.node.running {
        "FAIL  not running".to_string()
    } else if !v.node.answering {
        "FAIL  running, not answering".to_string()
    } else {
        format!(
            "ok    {} ({} messages)",
            v.node.url.as_deref().unwrap_or("?"),
            v.node.messages.unwrap_or(0)
        )
    };
    println!("node   {node}");
    if let Some(b) = &v.box_ {
        if b.ok {
            println!("box    ok    {} lines intact", b.messages);
            for line in &b.history {
                println!("       {line}");
            }
        } else {
            println!(
                "box    FAIL  {}",
                b.first_error.as_deref().unwrap_or("damaged")
            );
        }
    }
    if let Some(p) = &v.peers {
        let state = if p.known > 0 && p.up == 0 && !p.down.is_empty() {
            "FAIL"
        } else {
            "ok  "
        };
        let sync = if p.up == 0 {
            String::new()
        } else if p.in_sync == p.up {
            ", in sync".to_string()
        } else if p.max_behind > 0 {
            format!(", {} messages behind", p.max_behind)
        } else {
            format!(", {} of {} in sync", p.in_sync, p.up)
        };
        println!("peers  {state}  {} of {} up{sync}", p.up, p.known);
    }
    if let Some(f) = v.forks {
        println!(
            "forks  {}",
            if f == 0 {
                "ok    none seen".to_string()
            } else {
                format!("FAIL  {f} seen")
            }
        );
    }
    println!(
        "audit  {}",
        describe_audit(v.last_full_verify.as_ref(), crate::time::now_ms())
    );
    if let Some(d) = &v.disk {
        let state = if d.available_bytes < d.min_free_bytes {
            "FAIL"
        } else {
            "ok  "
        };
        println!(
            "disk   {state}  {} free on {}",
            human_bytes(d.available_bytes),
            d.mount
        );
    }
    for w in &v.warnings {
        println!("warning: {w}");
    }
    for p in &v.problems {
        println!("problem: {p}");
    }
    if v.healthy {
        println!("healthy");
    } else {
        println!(
            "unhealthy: {} problem{}",
            v.problems.len(),
            if v.problems.len() == 1 { "" } else { "s" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_output_is_read_around_the_capacity_column() {
        let plain = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n\
                     /dev/vda         264091980  15000000 249091980       6% /\n";
        assert_eq!(
            parse_df(plain).unwrap(),
            ("/".to_string(), 264_091_980, 249_091_980)
        );
        let spaced = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                      my disk 1024 0 1024 0% /mnt/with space\n";
        assert_eq!(
            parse_df(spaced).unwrap(),
            ("/mnt/with space".to_string(), 1024, 1024)
        );
        assert!(parse_df("Filesystem\n").is_err());
        assert!(parse_df("header\nnot a df line\n").is_err());
    }

    #[test]
    fn the_last_full_verify_reads_as_an_age() {
        assert!(describe_audit(None, 0).starts_with("none"));
        let a = mbox::Audit {
            at_ms: 0,
            ok: true,
            lines: 7,
            head: crate::chain::GENESIS,
        };
        let text = describe_audit(Some(&a), 2 * 3_600_000 + 5);
        assert!(
            text.contains("last full verify 2 h ago") && text.ends_with("intact, 7 lines"),
            "{text}"
        );
        assert_eq!(human_age(59_999), "59 s");
        assert_eq!(human_age(3 * 86_400_000), "3 days");
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(64 << 20), "64.0 MiB");
    }
}
