//! `dshare archive`: close the oldest messages into an epoch, through the running node
//! when there is one (it serves throughout), else on the home directly under its lock.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cli::ArchiveArgs;
use crate::exit::Code;
use crate::home::Home;
use crate::mbox::{self, Until};
use crate::net::client::NodeClient;

use super::Output;

/// An archive of millions of lines copies gigabytes: the node's answer may take this
/// long (the node goes on serving meanwhile).
const ARCHIVE_TIMEOUT: Duration = Duration::from_secs(1800);

pub fn run(home: &Home, args: &ArchiveArgs, out: Output) -> Result<Code> {
    crate::net::client::require_home(home)?;
    let until = match (args.before, args.keep_messages) {
        (Some(t), _) => Some(Until::Before(t)),
        (None, Some(n)) => Some(Until::KeepMessages(n)),
        (None, None) if args.prune => None,
        (None, None) => {
            bail!("say what to archive: --before DATE or --keep-messages N (or --prune alone)")
        }
    };
    let answer = if args.node.node.is_some() || home.node_running() {
        through_node(home, args, until)?
    } else {
        on_home(home, until, args.prune)?
    };
    print(&answer, out);
    Ok(Code::Success)
}

/// The node does the archive, so that it never stops serving (and its writer is the
/// one that swaps the box).
fn through_node(
    home: &Home,
    args: &ArchiveArgs,
    until: Option<Until>,
) -> Result<serde_json::Value> {
    let client = NodeClient::connect(home, &args.node)?.with_timeout(ARCHIVE_TIMEOUT);
    let value;
    let mut params: Vec<(&str, &str)> = Vec::new();
    match until {
        Some(Until::Before(t)) => {
            value = t.to_string();
            params.push(("before", &value));
        }
        Some(Until::KeepMessages(n)) => {
            value = n.to_string();
            params.push(("keep_messages", &value));
        }
        None => {}
    }
    if args.prune {
        params.push(("prune", "1"));
    }
    let answer = client.call("/archive", &params, Some(b""))?;
    if answer.status != 200 {
        bail!(
            "the node answered HTTP {}: {}",
            answer.status,
            answer.body.trim()
        );
    }
    serde_json::from_str(&answer.body).context("the node's archive answer is malformed")
}

/// No node runs: take the home's lock (so none starts meanwhile) and do what the node
/// would.
fn on_home(home: &Home, until: Option<Until>, prune: bool) -> Result<serde_json::Value> {
    let _lock = home.lock()?;
    let path = home.box_path();
    let base = mbox::epoch::settle(&path)?;
    let identity = home.identity()?;
    let mut answer = serde_json::json!({"archived": false});
    if let Some(until) = until {
        let (store, append, tracker) = mbox::Store::open_after(&path, base.as_ref())?;
        let writer =
            mbox::Writer::start(store, append, tracker, home.identity()?, Default::default());
        if let Some(a) = mbox::archive(&writer, &identity, until)? {
            answer = a.to_json(&path);
        }
        writer.store().release_waiters();
    }
    if prune {
        answer["pruned"] = serde_json::json!(mbox::prune(&path)?);
    }
    Ok(answer)
}

fn print(answer: &serde_json::Value, out: Output) {
    if out.json {
        println!("{answer}");
        return;
    }
    if out.quiet {
        return;
    }
    if answer["archived"] == true {
        println!(
            "closed lines {}–{} ({} messages, signed {} – {}) into epoch {}: {}",
            answer["first_line"],
            answer["last_line"],
            answer["moved"],
            crate::time::utc(answer["first_ts"].as_u64().unwrap_or(0)),
            crate::time::utc(answer["last_ts"].as_u64().unwrap_or(0)),
            answer["epoch"],
            answer["file"].as_str().unwrap_or("")
        );
        println!(
            "final head {} (chain {})",
            answer["head_file"].as_str().unwrap_or(""),
            answer["chain"].as_str().unwrap_or("")
        );
    } else {
        println!("nothing to archive");
    }
    if let Some(pruned) = answer["pruned"].as_array().filter(|p| !p.is_empty()) {
        let list: Vec<String> = pruned.iter().map(|n| n.to_string()).collect();
        println!(
            "deleted the lines of epochs {}; their signed heads stay",
            list.join(", ")
        );
    }
}

/// `90d`, `12h`, `30m`, `45s`, `500ms`: an age for `--keep` and `--before`.
pub fn parse_age(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not an age like 90d, 12h, 30m, 45s or 500ms");
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| bad())?;
    let ms = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        "d" => n.checked_mul(86_400_000),
        _ => None,
    }
    .filter(|&ms| ms > 0)
    .ok_or_else(bad)?;
    Ok(Duration::from_millis(ms))
}

/// The shortest spelling [`parse_age`] reads back as `age`.
pub fn render_age(age: Duration) -> String {
    let ms = age.as_millis() as u64;
    [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1000, "s"),
    ]
    .into_iter()
    .find(|(unit, _)| ms.is_multiple_of(*unit))
    .map_or(format!("{ms}ms"), |(unit, name)| {
        format!("{}{name}", ms / unit)
    })
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SSZ` (UTC), or an age before now: a time in ms.
pub fn parse_before(s: &str) -> Result<u64, String> {
    if let Ok(age) = parse_age(s) {
        return Ok(crate::time::now_ms().saturating_sub(age.as_millis() as u64));
    }
    parse_utc(s).ok_or_else(|| {
        format!("{s:?} is not a date (YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, UTC) nor an age (90d)")
    })
}

fn parse_utc(s: &str) -> Option<u64> {
    let (date, time) = match s.split_once('T') {
        Some((d, t)) => (d, Some(t.strip_suffix('Z')?)),
        None => (s, None),
    };
    let num = |v: &str, len: usize| {
        (v.len() == len && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse::<i64>().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (y, m, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() || !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    let secs_of_day = match time {
        None => 0,
        Some(t) => {
            let mut p = t.split(':');
            let (h, mi, sec) = (num(p.next()?, 2)?, num(p.next()?, 2)?, num(p.next()?, 2)?);
            if p.next().is_some() || h > 23 || mi > 59 || sec > 59 {
                return None;
            }
            h * 3600 + mi * 60 + sec
        }
    };
    // Days from civil (H. Hinnant), the inverse of `crate::time::utc`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = (days * 86_400 + secs_of_day).checked_mul(1000)?;
    let ms = u64::try_from(ms).ok()?;
    (crate::time::utc(ms).starts_with(date)).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_back_as_they_print() {
        assert_eq!(parse_utc("2000-02-29"), Some(951_782_400_000));
        assert_eq!(parse_utc("2025-11-30T09:45:35Z"), Some(1_764_495_935_000));
        assert_eq!(parse_utc("2025-02-30"), None, "no such day");
        assert_eq!(parse_utc("2025-1-30"), None);
        assert_eq!(parse_utc("2025-11-30T09:45:35"), None, "UTC must be said");
    }

    #[test]
    fn ages_read_back_as_they_render() {
        for s in ["90d", "12h", "30m", "2s", "1500ms"] {
            assert_eq!(render_age(parse_age(s).unwrap()), s);
        }
        assert!(parse_age("0s").is_err());
        assert!(parse_age("5").is_err());
        assert!(parse_age("5w").is_err());
    }
}
