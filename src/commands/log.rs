//! `dshare log`: the conversation, from the running node or, with none, the file.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::LogArgs;
use crate::exit::{self, Code};
use crate::home::Home;
use crate::hooks::{self, Filter, Guard, Hook, NodeSource, OnFailure, Runner, Start};
use crate::mbox;
use crate::message::Message;
use crate::net::client::NodeClient;

use super::Output;

/// How long one follow request waits at the node for news before asking again.
const FOLLOW_WAIT_S: u64 = 25;
/// How often a file with no node behind it is checked for growth.
const FILE_POLL: Duration = Duration::from_millis(250);

pub fn run(home: &Home, args: &LogArgs, out: Output) -> Result<Code> {
    if args.node.node.is_none() {
        crate::net::client::require_home(home)?;
    }
    let filter = Filter::new(&args.filter.authors, args.filter.grep.as_deref())?;
    if let (Some(who), Some(within)) = (&args.expect_from, args.within) {
        return expect_from(home, args, who, within, &filter, out);
    }
    if let Some(command) = &args.exec {
        return exec(home, args, command, filter, out);
    }
    if args.hook.cursor.is_some() || args.hook.from.is_some() || args.hook.keep_going {
        anyhow::bail!("--cursor, --from and --keep-going go with --exec CMD");
    }
    let out = Shown { out, filter };
    let mut stdout = std::io::stdout().lock();
    if args.node.node.is_some() || home.node_running() {
        let client = NodeClient::connect(home, &args.node)?;
        // Without -n, the whole conversation: a plain `/log` answer is only the
        // node's last page.
        let (messages, mut next) = match args.lines {
            Some(n) => client.last(Some(n))?,
            None => client.everything()?,
        };
        let shown = print_all(&mut stdout, &messages, &out)?;
        if args.lines != Some(0) {
            say_if_none(&out, messages.len(), shown, home);
        }
        if args.follow {
            loop {
                let (messages, after) = client.since(next, FOLLOW_WAIT_S)?;
                print_all(&mut stdout, &messages, &out)?;
                next = after;
            }
        }
        return Ok(Code::Success);
    }
    let path = home.box_path();
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist: no messages yet here; start a node with `dshare serve`",
            path.display()
        );
    }
    let messages = mbox::read_messages(&path)?;
    let skip = args.lines.map_or(0, |n| messages.len().saturating_sub(n));
    let shown = print_all(&mut stdout, &messages[skip..], &out)?;
    if args.lines != Some(0) {
        say_if_none(&out, messages.len(), shown, home);
    }
    if args.follow {
        out.out.note(format!(
            "no node is running for {}: following its box file, which grows only while a node runs (`dshare serve --home {}`)",
            home.dir().display(),
            home.dir().display()
        ));
        follow_file(&mut stdout, &path, &out)?;
    }
    Ok(Code::Success)
}

/// How messages are shown: the output switches and the filters.
struct Shown {
    out: Output,
    filter: Filter,
}

/// An empty output says nothing on its own: a script's log cannot tell "no messages"
/// from "wrong home" or "filters too narrow". Says which, on stderr.
fn say_if_none(shown: &Shown, held: usize, printed: usize, home: &Home) {
    if printed > 0 {
        return;
    }
    if held == 0 {
        shown
            .out
            .note(format!("no messages yet in {}", home.dir().display()));
    } else {
        shown.out.note(format!(
            "none of the {held} messages matches --author/--grep"
        ));
    }
}

/// Prints the messages that pass the filters; how many it printed.
fn print_all(w: &mut impl Write, messages: &[Message], shown: &Shown) -> Result<usize> {
    let mut printed = 0;
    for m in messages.iter().filter(|m| shown.filter.matches(m)) {
        printed += 1;
        if shown.out.json {
            serde_json::to_writer(&mut *w, m)?;
            writeln!(w)?;
        } else {
            writeln!(w, "{}", human(m))?;
        }
    }
    w.flush()?;
    Ok(printed)
}

/// `TIME AUTHOR #SEQ  BODY`, later body lines indented under the first.
pub fn human(m: &Message) -> String {
    let body = m.body.replace('\n', "\n    ");
    format!(
        "{} {} #{}  {body}",
        crate::time::utc(m.ts),
        m.author.short(8),
        m.seq
    )
}

/// Prints complete lines appended to `path` from now on, like `tail -f`.
fn follow_file(w: &mut impl Write, path: &std::path::Path, out: &Shown) -> Result<()> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut offset = file.seek(SeekFrom::End(0))?;
    loop {
        std::thread::sleep(FILE_POLL);
        let len = file.metadata()?.len();
        if len < offset {
            offset = len;
        }
        if len == offset {
            continue;
        }
        file.seek(SeekFrom::Start(offset))?;
        let mut reader = BufReader::new(&file);
        let mut buf = String::new();
        loop {
            buf.clear();
            let n = reader.read_line(&mut buf)?;
            if n == 0 || !buf.ends_with('\n') {
                break;
            }
            offset += n as u64;
            if let Ok(line) = mbox::parse_line(buf.trim_end_matches('\n')) {
                print_all(w, &[line.message], out)?;
            }
        }
    }
}

/// How long one `log -f --exec` request waits at the node for news.
const EXEC_WAIT: Duration = Duration::from_secs(FOLLOW_WAIT_S);

/// `log --exec CMD`: the hook for every message after the cursor (or `--from`), then,
/// with `-f`, for every new one until stopped.
fn exec(home: &Home, args: &LogArgs, command: &str, filter: Filter, out: Output) -> Result<Code> {
    let guard = Guard::new();
    guard.exit_on_signal()?;
    let cursor = args
        .hook
        .cursor
        .as_deref()
        .map(|name| hooks::Cursor::open(home, name))
        .transpose()?;
    // Without -f or a cursor, `now` would do nothing at all.
    let default = if args.follow || cursor.is_some() {
        "now"
    } else {
        "start"
    };
    let start = Start::parse(args.hook.from.as_deref().unwrap_or(default))?;
    if let Some((c, Some(_))) = &cursor
        && args.hook.from.is_some()
    {
        out.note(format!(
            "cursor {:?} exists, so --from is ignored (remove {} to start it again)",
            c.name,
            c.path().display()
        ));
    }
    let source = NodeSource::new(home, &args.node, args.follow)?;
    let hook = Hook {
        command: command.to_string(),
        retries: args.hook.retries,
        on_failure: if args.hook.keep_going {
            OnFailure::Skip
        } else {
            OnFailure::Stop
        },
    };
    let mut runner = Runner::new(source, hook, filter, cursor, &start, Arc::clone(&guard))?;
    runner.run(args.follow, EXEC_WAIT)?;
    // Stopped by a signal after a hook had finished: the cursor is written, so end
    // as the signal asked, not as a follower that ran out of messages.
    guard.end_if_signalled();
    Ok(Code::Success)
}

/// `log --expect-from AUTHOR --within D`: exit 1 unless AUTHOR's latest message is
/// at most D old (by its timestamp).
fn expect_from(
    home: &Home,
    args: &LogArgs,
    who: &str,
    within: Duration,
    filter: &Filter,
    out: Output,
) -> Result<Code> {
    let prefix = hooks::author_prefix(who)?;
    let wanted = |m: &Message| m.author.to_hex().starts_with(&prefix) && filter.matches(m);
    let latest = if args.node.node.is_some() || home.node_running() {
        latest_from_node(home, args, &wanted)?
    } else {
        let path = home.box_path();
        if !path.exists() {
            anyhow::bail!(
                "{} does not exist and no node is running: start one with `dshare serve` (or pass --node URL)",
                path.display()
            );
        }
        mbox::read_messages(&path)?
            .into_iter()
            .filter(|m| wanted(m))
            .max_by_key(|m| m.seq)
    };
    let now = crate::time::now_ms();
    let limit = u64::try_from(within.as_millis()).unwrap_or(u64::MAX);
    let age = latest.as_ref().map(|m| now.saturating_sub(m.ts));
    let fresh = age.is_some_and(|a| a <= limit);
    if out.json {
        let value = serde_json::json!({
            "ok": fresh,
            "author": latest.as_ref().map_or_else(|| prefix.clone(), |m| m.author.to_hex()),
            "within_ms": limit,
            "last": latest,
            "age_ms": age,
        });
        println!("{value}");
    }
    let Some(m) = latest else {
        return Err(exit::failure(format!(
            "nothing from {prefix} within {}: {}",
            span(limit),
            if filter.is_empty() {
                "no message from that author at all"
            } else {
                "no message from that author matches the filters"
            }
        )));
    };
    let age = age.unwrap_or(0);
    let when = format!(
        "#{} at {}, {} ago",
        m.seq,
        crate::time::utc(m.ts),
        span(age)
    );
    if !fresh {
        return Err(exit::failure(format!(
            "nothing from {} within {}: its last message was {when}",
            m.author.short(8),
            span(limit)
        )));
    }
    if !out.json && !out.quiet {
        println!("ok: {} last sent {when}", m.author.short(8));
    }
    Ok(Code::Success)
}

/// The latest message that is `wanted`, reading the box backwards page by page (an
/// author's messages arrive in seq order, so the last one that arrived is its latest).
fn latest_from_node(
    home: &Home,
    args: &LogArgs,
    wanted: &dyn Fn(&Message) -> bool,
) -> Result<Option<Message>> {
    let client = NodeClient::connect(home, &args.node)?;
    let (_, mut end) = client.last(Some(0))?;
    while end > 0 {
        let start = end.saturating_sub(crate::net::client::LOG_PAGE);
        let page = client.page(start, end - start)?;
        if let Some(m) = page.into_iter().rev().find(|m| wanted(m)) {
            return Ok(Some(m));
        }
        end = start;
    }
    Ok(None)
}

/// `1h 5m`, `12m 3s`, `45s`, `800ms`: a duration for people.
pub fn span(ms: u64) -> String {
    let s = ms / 1000;
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) if s == 0 => format!("{ms}ms"),
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) if sec == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        _ if h == 0 => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn spans_read_naturally() {
        assert_eq!(super::span(800), "800ms");
        assert_eq!(super::span(45_000), "45s");
        assert_eq!(super::span(726_000), "12m 6s");
        assert_eq!(super::span(3_900_000), "1h 5m");
        assert_eq!(super::span(90_000_000), "1d 1h");
        assert_eq!(super::span(3_600_000), "1h");
        assert_eq!(super::span(120_000), "2m");
    }
}
