//! `dshare log`: the conversation, from the running node or, with none, the file.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::LogArgs;
use crate::exit::Code;
use crate::home::Home;
use crate::mbox;
use crate::message::Message;
use crate::net::client::NodeClient;

use super::Output;

/// How long one follow request waits at the node for news before asking again.
const FOLLOW_WAIT_S: u64 = 25;
/// How often a file with no node behind it is checked for growth.
const FILE_POLL: Duration = Duration::from_millis(250);

pub fn run(home: &Home, args: &LogArgs, out: Output) -> Result<Code> {
    let mut stdout = std::io::stdout().lock();
    if args.node.node.is_some() || home.node_running() {
        let client = NodeClient::connect(home, &args.node)?;
        let (messages, mut next) = client.last(args.lines)?;
        print_all(&mut stdout, &messages, out)?;
        if args.follow {
            loop {
                let (messages, after) = client.since(next, FOLLOW_WAIT_S)?;
                print_all(&mut stdout, &messages, out)?;
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
    print_all(&mut stdout, &messages[skip..], out)?;
    if args.follow {
        follow_file(&mut stdout, &path, out)?;
    }
    Ok(Code::Success)
}

fn print_all(w: &mut impl Write, messages: &[Message], out: Output) -> Result<()> {
    for m in messages {
        if out.json {
            serde_json::to_writer(&mut *w, m)?;
            writeln!(w)?;
        } else {
            writeln!(w, "{}", human(m))?;
        }
    }
    w.flush()?;
    Ok(())
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
fn follow_file(w: &mut impl Write, path: &std::path::Path, out: Output) -> Result<()> {
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
