//! `dshare send`: one message to the node; prints its id once it is on disk.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};

use crate::api::{SendAnswer, Want};
use crate::cli::SendArgs;
use crate::exit::Code;
use crate::home::Home;
use crate::net::client::{NodeClient, Remote};
use crate::spool::{Entry, Target};

use super::Output;

pub fn run(home: &Home, args: &SendArgs, out: Output) -> Result<Code> {
    let body = body(&args.text)?;
    let wait = args.wait.map(|w| (w, args.timeout));
    let client = match (&args.client, &args.client_file) {
        (Some(line), _) => Some(line.clone()),
        (None, Some(file)) => Some(crate::net::client::read_secret_file(
            file,
            "client key line",
        )?),
        (None, None) => None,
    };
    let answer = match &client {
        Some(line) => match client_send(line, &body, wait, args, out)? {
            Some(answer) => answer,
            None => return Ok(Code::Success),
        },
        None => NodeClient::connect(home, &args.node.choice())?
            .allowing(args.timeout)
            .send(&body, wait, args.key.as_deref())?,
    };
    if let Some(reason) = wait.and_then(|(want, _)| unconfirmed(want, &answer)) {
        return Err(crate::exit::failure(reason));
    }
    if out.json {
        println!("{}", serde_json::to_string(&answer)?);
    } else if !out.quiet {
        println!("{}", answer.message.id.to_hex());
    }
    Ok(Code::Success)
}

/// Sends through a client key with an idempotency key (`--key`, else a fresh one):
/// delivers what waits in the spool first, then this; when no node takes it, keeps it
/// in the spool and answers `None` (the send is done: it will be delivered once).
fn client_send(
    line: &str,
    body: &str,
    wait: Option<(Want, std::time::Duration)>,
    args: &SendArgs,
    out: Output,
) -> Result<Option<SendAnswer>> {
    crate::invite::parse_client(line)?;
    let spool = args.spool.open()?;
    let target = Target::Client {
        line: line.to_string(),
    };
    super::run::flush_on_the_way(&spool, &target, CLIENT_TIMEOUT, out);
    let key = args
        .key
        .clone()
        .unwrap_or_else(|| crate::spool::random_key("send-"));
    let why =
        match crate::net::client::remote_exchange(line, body, wait, Some(&key), CLIENT_TIMEOUT)? {
            Remote::Answered(status, answer) => {
                if !matches!(status, 409 | 429 | 502 | 503 | 507) {
                    return crate::net::client::interpret_send(status, &answer).map(Some);
                }
                format!("the node answered HTTP {status}: {}", answer.trim())
            }
            Remote::Unreachable(why) => why,
            // A revoked key stays revoked: keeping the request would only hide that.
            Remote::Refused(why) => anyhow::bail!(why),
        };
    let entry = Entry::new(key.clone(), body.to_string(), target, crate::time::now_ms());
    let path = spool.keep(&entry)?;
    if out.json {
        println!(
            "{}",
            serde_json::json!({"spooled": path, "key": key, "reason": why})
        );
    }
    out.note(format!(
        "not delivered ({why}); kept in the spool as {} (key {key}), delivered by the next `send --client`/`run` or `dshare spool flush`",
        path.display()
    ));
    Ok(None)
}

/// How long a client send may take to reach its node before it is spooled.
const CLIENT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Why an answer the node calls complete does not confirm the message: `--wait all`
/// with no peer up is answered with nobody acked and nobody missing, and a CI step
/// that fails "if the network does not confirm" must not pass on that.
fn unconfirmed(want: Want, answer: &SendAnswer) -> Option<String> {
    let acked = answer.acked.as_ref().map_or(0, Vec::len);
    (want == Want::All && acked == 0).then(|| {
        format!(
            "message {} is stored here, but no peer was up to confirm it (`--wait all` needs at least one); `dshare peers` shows the known peers",
            answer.message.id.to_hex()
        )
    })
}

/// The words joined by spaces, or stdin when there are none (or just `-`). One
/// trailing newline from stdin is dropped, as `$(…)` would: `echo hi | dshare send`
/// sends "hi".
fn body(words: &[String]) -> Result<String> {
    if !(words.is_empty() || words == ["-"]) {
        return Ok(words.join(" "));
    }
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("dshare: reading the message from the terminal; end it with Ctrl-D");
    }
    let mut raw = Vec::new();
    stdin
        .read_to_end(&mut raw)
        .context("cannot read the message from stdin")?;
    let mut text = String::from_utf8(raw).context("the message on stdin is not UTF-8 text")?;
    if text.ends_with('\n') {
        text.pop();
    }
    if text.is_empty() {
        bail!("the message is empty; nothing was sent");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_all_is_confirmed_only_by_at_least_one_peer() {
        let key = crate::identity::Identity::generate();
        let draft = crate::message::Draft {
            author: key.author(),
            seq: 1,
            prev: None,
            clock: 1,
            ts: 1,
            body: "x",
        };
        let nobody = SendAnswer {
            acked: Some(vec![]),
            missing: Some(vec![]),
            ..SendAnswer::stored(crate::message::Message::sign(&draft, &key), false)
        };
        let one = SendAnswer {
            acked: Some(vec!["http://x:1".into()]),
            ..nobody.clone()
        };
        assert!(
            unconfirmed(Want::All, &nobody)
                .unwrap()
                .contains("no peer was up")
        );
        assert_eq!(unconfirmed(Want::All, &one), None);
        assert_eq!(unconfirmed(Want::Count(1), &one), None);
    }
}
