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
use crate::runs;
use crate::time::span;

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
    if let Some(name) = &args.expect_run {
        return expect_run(home, args, name, &filter, out);
    }
    if args.within.is_some() {
        anyhow::bail!("--within goes with --expect-from AUTHOR or --expect-run NAME");
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
        let client = NodeClient::connect(home, &args.node.choice())?;
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
        if args.lines.is_none_or(|n| n > messages.len())
            && let Ok(Some(start)) = client.status().map(|s| s.history)
        {
            say_where_history_begins(&out, &start);
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
    if args.lines.is_none_or(|n| n > messages.len())
        && let Ok(start) = mbox::history_start(&path, messages.first().map(|m| m.ts))
    {
        say_where_history_begins(&out, &start);
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

/// `log` shows the live box: when older lines were closed into epochs, and so were
/// asked for but not shown, says where the box begins and where the rest is.
fn say_where_history_begins(shown: &Shown, start: &crate::api::status::HistoryStart) {
    if start.box_first_line <= 1 {
        return;
    }
    let closed = start.box_first_line - 1;
    let kept = if start.pruned_lines == 0 {
        format!(
            "all with their lines in epochs/ (line {} on)",
            start.first_line
        )
    } else if start.epochs_with_lines == 0 {
        format!(
            "their lines deleted: only their signed heads are here ({} lines), and `dshare verify` proves the box continues from them",
            start.pruned_lines
        )
    } else {
        format!(
            "{} with their lines in epochs/ (line {} on), the lines of {} deleted",
            start.epochs_with_lines, start.first_line, start.pruned_lines
        )
    };
    let since = start
        .first_ts
        .filter(|_| start.first_line == start.box_first_line)
        .map(|ts| format!(", from {}", crate::time::utc(ts)))
        .unwrap_or_default();
    shown.out.note(format!(
        "this box begins at line {}{since}: lines 1–{closed} were closed into {} epoch(s), {kept}",
        start.box_first_line, start.epochs
    ));
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
            serde_json::to_writer(&mut *w, &with_run(m))?;
            writeln!(w)?;
        } else {
            writeln!(w, "{}", human(m))?;
        }
    }
    w.flush()?;
    Ok(printed)
}

/// A message as `--json` shows it: its fields, and a `run` object when its body is a
/// `dshare run` report (the message itself is unchanged).
fn with_run(m: &Message) -> serde_json::Value {
    let mut value = serde_json::to_value(m).expect("messages serialize");
    if let Some(run) = crate::runs::parse(&m.body) {
        value["run"] = serde_json::to_value(run).expect("runs serialize");
    }
    value
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
    let source = NodeSource::new(home, &args.node.choice(), args.follow)?;
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

/// `log --expect-run NAME`: exit 1 unless NAME's last run finished within `--within`
/// (and, as asked, succeeded and took at least `--min-duration`), and at most
/// `--max-runs` finished within `--per`.
fn expect_run(
    home: &Home,
    args: &LogArgs,
    name: &str,
    filter: &Filter,
    out: Output,
) -> Result<Code> {
    let now = crate::time::now_ms();
    let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    let per = args.per.map(ms);
    // Reading back from the newest message: enough once the last run is found and,
    // for --max-runs, messages older than --per (with an hour's slack for clocks).
    let horizon = per.map(|p| now.saturating_sub(p.saturating_add(3_600_000)));
    let mut ends: Vec<runs::Run> = Vec::new();
    let mut visit = |m: &Message| {
        if filter.matches(m)
            && let Some(run) = runs::parse(&m.body)
            && run.event == runs::Event::End
            && run.name == name
        {
            ends.push(run);
        }
        let past = horizon.is_none_or(|h| m.ts < h);
        !ends.is_empty() && past
    };
    scan_back(home, args, &mut visit)?;
    let checks = checks::Expect {
        within: args.within.map(ms),
        success: args.success,
        min_duration: args.min_duration.map(ms),
        max_runs: args.max_runs.zip(per),
    };
    let verdict = checks.judge(&ends, now);
    if out.json {
        println!(
            "{}",
            serde_json::json!({
                "ok": verdict.is_ok(),
                "name": name,
                "last": ends.iter().max_by_key(|r| r.at_ms()),
                "problem": verdict.as_ref().err(),
            })
        );
    }
    match verdict {
        Err(why) => Err(exit::failure(format!("run {name}: {why}"))),
        Ok(fine) => {
            if !out.json && !out.quiet {
                println!("ok: run {name}: {fine}");
            }
            Ok(Code::Success)
        }
    }
}

/// Calls `visit` with messages from the newest back until it answers true.
fn scan_back(home: &Home, args: &LogArgs, visit: &mut dyn FnMut(&Message) -> bool) -> Result<()> {
    if args.node.node.is_some() || home.node_running() {
        let client = NodeClient::connect(home, &args.node.choice())?;
        let (_, mut end) = client.last(Some(0))?;
        while end > 0 {
            let start = end.saturating_sub(crate::net::client::LOG_PAGE);
            for m in client.page(start, end - start)?.iter().rev() {
                if visit(m) {
                    return Ok(());
                }
            }
            end = start;
        }
        return Ok(());
    }
    let path = home.box_path();
    if !path.exists() {
        anyhow::bail!(
            "{} does not exist and no node is running: start one with `dshare serve` (or pass --node URL)",
            path.display()
        );
    }
    for m in mbox::read_messages(&path)?.iter().rev() {
        if visit(m) {
            break;
        }
    }
    Ok(())
}

/// What `--expect-run` asks of a job's runs; pure, so every verdict has a unit test.
mod checks {
    use crate::runs::Run;

    use crate::time::span;

    pub struct Expect {
        pub within: Option<u64>,
        pub success: bool,
        pub min_duration: Option<u64>,
        /// At most N runs finished within the span.
        pub max_runs: Option<(usize, u64)>,
    }

    impl Expect {
        /// `Ok` with a line for people, or the first reason for exit 1.
        pub fn judge(&self, ends: &[Run], now_ms: u64) -> Result<String, String> {
            let Some(last) = ends.iter().max_by_key(|r| r.at_ms()) else {
                return Err("no run reported at all".into());
            };
            let age = now_ms.saturating_sub(last.at_ms());
            let took = last.duration_ms.unwrap_or(0);
            let status = last.status.unwrap_or(-1);
            let when = format!(
                "its last run (id {} on {}) finished {} ago after {}, status {status}",
                last.id,
                last.host,
                span(age),
                span(took)
            );
            if let Some(within) = self.within
                && age > within
            {
                return Err(format!("no run finished within {}: {when}", span(within)));
            }
            if self.success && status != 0 {
                return Err(format!("the last run failed: {when}"));
            }
            if let Some(min) = self.min_duration
                && took < min
            {
                return Err(format!("the last run took less than {}: {when}", span(min)));
            }
            if let Some((most, per)) = self.max_runs {
                let recent = ends
                    .iter()
                    .filter(|r| now_ms.saturating_sub(r.at_ms()) <= per)
                    .count();
                if recent > most {
                    return Err(format!(
                        "{recent} runs finished within {}, more than {most}",
                        span(per)
                    ));
                }
            }
            Ok(when)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::runs::{Event, VERSION};

        fn run(finished_ms: u64, took_ms: u64, status: i32) -> Run {
            Run {
                v: VERSION,
                event: Event::End,
                name: "nightly".into(),
                id: "r".into(),
                host: "h".into(),
                started_ms: finished_ms - took_ms,
                status: Some(status),
                signal: None,
                duration_ms: Some(took_ms),
                tail_bytes: None,
                output_bytes: None,
            }
        }

        const H: u64 = 3_600_000;

        fn expect() -> Expect {
            Expect {
                within: Some(26 * H),
                success: false,
                min_duration: None,
                max_runs: None,
            }
        }

        #[test]
        fn each_check_says_yes_and_no() {
            let now = 100 * H;
            let ok = [run(now - H, 30 * 60_000, 0)];
            assert!(expect().judge(&ok, now).is_ok());
            assert!(expect().judge(&[], now).unwrap_err().contains("no run"));
            let stale = [run(now - 27 * H, 60_000, 0)];
            assert!(
                expect()
                    .judge(&stale, now)
                    .unwrap_err()
                    .contains("within 1d 2h")
            );
            let failed = [run(now - H, 60_000, 1)];
            let success = Expect {
                success: true,
                ..expect()
            };
            assert!(success.judge(&ok, now).is_ok());
            assert!(success.judge(&failed, now).unwrap_err().contains("failed"));
            let long = Expect {
                min_duration: Some(20 * 60_000),
                ..expect()
            };
            assert!(long.judge(&ok, now).is_ok());
            assert!(
                long.judge(&failed, now)
                    .unwrap_err()
                    .contains("less than 20m")
            );
            let rare = Expect {
                max_runs: Some((2, H)),
                ..expect()
            };
            let three = [
                run(now - 1000, 10, 0),
                run(now - 2000, 10, 0),
                run(now - 3000, 10, 0),
            ];
            assert!(rare.judge(&three[..2], now).is_ok());
            assert!(rare.judge(&three, now).unwrap_err().contains("3 runs"));
        }
    }
}

/// The latest message that is `wanted`, reading the box backwards page by page (an
/// author's messages arrive in seq order, so the last one that arrived is its latest).
fn latest_from_node(
    home: &Home,
    args: &LogArgs,
    wanted: &dyn Fn(&Message) -> bool,
) -> Result<Option<Message>> {
    let client = NodeClient::connect(home, &args.node.choice())?;
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
