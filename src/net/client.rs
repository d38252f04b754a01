//! The HTTP client side: one configured ureq agent, and the calls the command line
//! makes to a node's client API.

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::cli::NodeArgs;
use crate::exit;
use crate::home::Home;
use crate::message::Message;
use crate::replicate::Want;

use super::query;

/// Largest answer read from a node: a full `/log` page of maximum-size messages.
const MAX_RESPONSE: u64 = 128 * 1024 * 1024;

/// An agent with timeouts on connecting and on the whole call, that hands back error
/// statuses as answers (their body says what went wrong) and never follows redirects.
pub fn agent(total: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(3)))
        .timeout_global(Some(total))
        .http_status_as_error(false)
        .max_redirects(0)
        .no_delay(true)
        .build()
        .into()
}

/// A node's client API, as reached from the command line.
pub struct NodeClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

/// What the node answered.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub next: Option<u64>,
}

impl NodeClient {
    /// The node named by `--node`/`DSHARE_NODE`, else the one running on `home`.
    pub fn connect(home: &Home, args: &NodeArgs) -> Result<NodeClient> {
        let base = match &args.node {
            Some(url) => check_url(url)?,
            None => home.node_url()?,
        };
        let token = match &args.token {
            Some(t) => t.clone(),
            None => home
                .token()
                .context("no client token: pass --token or set DSHARE_TOKEN")?
                .expose_hex(),
        };
        Ok(NodeClient {
            base,
            token,
            agent: agent(Duration::from_secs(60)),
        })
    }

    /// Lets each call take `extra` longer than usual (for `send --wait`).
    pub fn allowing(mut self, extra: Duration) -> NodeClient {
        self.agent = agent(Duration::from_secs(60) + extra);
        self
    }

    /// Gives each call `total` at most (for `doctor`, which must not hang on a stuck node).
    pub fn with_timeout(mut self, total: std::time::Duration) -> NodeClient {
        self.agent = agent(total);
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs `path?params`, or POSTs `body` there, with the token in a header (never
    /// in the URL, which proxies and logs keep).
    pub fn call(&self, path: &str, params: &[(&str, &str)], body: Option<&[u8]>) -> Result<Answer> {
        let mut url = format!("{}{path}", self.base);
        for (i, (k, v)) in params.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{k}={}", query::encode(v)));
        }
        let auth = format!("Bearer {}", self.token);
        let sent = match body {
            None => self.agent.get(&url).header("Authorization", &auth).call(),
            Some(bytes) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .content_type("text/plain; charset=utf-8")
                .send(bytes),
        };
        let mut response = sent.map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the node at {}: {e}; is `dshare serve` running there?",
                self.base
            )
        })?;
        let status = response.status().as_u16();
        let next = response
            .headers()
            .get("x-dshare-next")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string()
            .with_context(|| format!("cannot read the answer of {}", self.base))?;
        Ok(Answer { status, body, next })
    }

    /// Sends `body`; returns the node's answer (the stored message, and with `wait`
    /// the peers that confirmed and those that did not) once it is on disk.
    pub fn send(&self, body: &str, wait: Option<(Want, Duration)>) -> Result<serde_json::Value> {
        let mut params = vec![("format", "json".to_string())];
        if let Some((want, timeout)) = wait {
            let want = match want {
                Want::All => "all".to_string(),
                Want::Count(n) => n.to_string(),
            };
            params.push(("wait", want));
            params.push(("timeout_ms", timeout.as_millis().to_string()));
        }
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let answer = self.call("/send", &params, Some(body.as_bytes()))?;
        match answer.status {
            200 | 504 => {
                let value: serde_json::Value = serde_json::from_str(&answer.body)
                    .context("the node's answer is not a message")?;
                if answer.status == 504 {
                    let missing: Vec<&str> = value["missing"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                        .unwrap_or_default();
                    let acked = value["acked"].as_array().map_or(0, Vec::len);
                    return Err(exit::failure(format!(
                        "message {} is stored here, but only {acked} peer(s) confirmed it in time; lacking it: {}",
                        value["id"].as_str().unwrap_or("?"),
                        if missing.is_empty() {
                            "(no other peer was up)".to_string()
                        } else {
                            missing.join(", ")
                        }
                    )));
                }
                Ok(value)
            }
            401 => bail!("the node refused the client token: {}", answer.body.trim()),
            400 | 413 | 414 => Err(exit::failure(format!(
                "the node refused the message: {}",
                answer.body.trim()
            ))),
            s => Err(exit::failure(format!(
                "the node could not store the message (HTTP {s}): {}",
                answer.body.trim()
            ))),
        }
    }

    /// The last `n` messages (or the node's default page), in conversation order,
    /// and the position to follow from.
    pub fn last(&self, n: Option<usize>) -> Result<(Vec<Message>, u64)> {
        let n = n.map(|n| n.to_string());
        let params: Vec<(&str, &str)> = n.iter().map(|n| ("n", n.as_str())).collect();
        let answer = self.expect_ok(self.call("/log", &params, None)?)?;
        let messages = parse_lines(&answer.body)?;
        Ok((messages, answer.next.unwrap_or(0)))
    }

    /// Messages after the first `after` lines, waiting up to `wait_s` seconds for one;
    /// with the position to ask from next.
    pub fn since(&self, after: u64, wait_s: u64) -> Result<(Vec<Message>, u64)> {
        let (a, w) = (after.to_string(), wait_s.to_string());
        let answer = self.expect_ok(self.call("/log", &[("since", &a), ("wait", &w)], None)?)?;
        let messages = parse_lines(&answer.body)?;
        let next = answer.next.unwrap_or(after + messages.len() as u64);
        Ok((messages, next))
    }

    fn expect_ok(&self, answer: Answer) -> Result<Answer> {
        if answer.status != 200 {
            bail!(
                "the node at {} answered HTTP {}: {}",
                self.base,
                answer.status,
                answer.body.trim()
            );
        }
        Ok(answer)
    }
}

fn parse_lines(body: &str) -> Result<Vec<Message>> {
    body.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).context("the node sent a malformed message"))
        .collect()
}

/// Accepts `http://HOST:PORT` (with an optional trailing slash), refusing anything
/// else with a message that shows the expected form.
pub fn check_url(url: &str) -> Result<String> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed.strip_prefix("http://").with_context(|| {
        format!("{url:?} is not a node URL: expected http://HOST:PORT (for example http://127.0.0.1:7070)")
    })?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
        bail!("{url:?} is not a node URL: expected http://HOST:PORT with no path");
    }
    Ok(trimmed.to_string())
}
