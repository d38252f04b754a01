//! `dshare send`: one message to the node; prints its id once it is on disk.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};

use crate::cli::SendArgs;
use crate::exit::Code;
use crate::home::Home;
use crate::net::client::NodeClient;
use crate::replicate::Want;

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
        Some(line) => crate::net::client::remote_send(line, &body, wait)?,
        None => NodeClient::connect(home, &args.node)?
            .allowing(args.timeout)
            .send(&body, wait)?,
    };
    if let Some(reason) = wait.and_then(|(want, _)| unconfirmed(want, &answer)) {
        return Err(crate::exit::failure(reason));
    }
    if out.json {
        println!("{}", serde_json::to_string(&answer)?);
    } else if !out.quiet {
        println!("{}", answer["id"].as_str().unwrap_or_default());
    }
    Ok(Code::Success)
}

/// Why an answer the node calls complete does not confirm the message: `--wait all`
/// with no peer up is answered with nobody acked and nobody missing, and a CI step
/// that fails "if the network does not confirm" must not pass on that.
fn unconfirmed(want: Want, answer: &serde_json::Value) -> Option<String> {
    let acked = answer["acked"].as_array().map_or(0, Vec::len);
    (want == Want::All && acked == 0).then(|| {
        format!(
            "message {} is stored here, but no peer was up to confirm it (`--wait all` needs at least one); `dshare peers` shows the known peers",
            answer["id"].as_str().unwrap_or("?")
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
        let nobody = serde_json::json!({"id": "ab", "acked": [], "missing": []});
        let one = serde_json::json!({"id": "ab", "acked": ["http://x:1"], "missing": []});
        assert!(
            unconfirmed(Want::All, &nobody)
                .unwrap()
                .contains("no peer was up")
        );
        assert_eq!(unconfirmed(Want::All, &one), None);
        assert_eq!(unconfirmed(Want::Count(1), &one), None);
    }
}
