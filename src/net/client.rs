//! The HTTP client side: the calls the command line makes to a node's client API (one
//! plain exchange each, see [`super::exchange`]; the types are [`crate::api`]'s), and
//! sending through a remote node with a client key (a ureq agent).

use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::api::send::{REMOTE_AAD, REMOTE_PATH};
use crate::api::{
    LogQuery, PeersAnswer, RemoteAnswer, RemoteSend, SendAnswer, SendQuery, Status, Want, log,
    peers, send, status,
};
use crate::exit;
use crate::home::Home;
use crate::message::Message;
use crate::node_url::NodeUrl;

use super::{exchange, query};

/// Largest answer read from a node: a full `/log` page of maximum-size messages.
const MAX_RESPONSE: u64 = 128 * 1024 * 1024;

/// Most messages asked for in one `/log?since=` call (the node answers no more).
pub const LOG_PAGE: u64 = 1000;

/// Longest a call to the node may take, unless the command allows more.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// An agent with timeouts on connecting and on the whole call, that hands back error
/// statuses as answers (their body says what went wrong) and never follows redirects.
fn agent(total: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(3)))
        .timeout_global(Some(total))
        .http_status_as_error(false)
        .max_redirects(0)
        .no_delay(true)
        .build()
        .into()
}

/// Which node to call and with what token: `--node`/`DSHARE_NODE`, `--token`,
/// `--token-file` as the command line gave them (`None`: the home's).
#[derive(Debug, Clone, Default)]
pub struct NodeChoice {
    pub url: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<std::path::PathBuf>,
}

/// A node's client API, as reached from the command line.
pub struct NodeClient {
    base: String,
    token: String,
    /// Longest a call may take, answer included.
    timeout: Duration,
}

/// What the node answered.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub next: Option<u64>,
}

impl NodeClient {
    /// The node named by `--node`/`DSHARE_NODE`, else the one running on `home`.
    pub fn connect(home: &Home, args: &NodeChoice) -> Result<NodeClient> {
        let base = match &args.url {
            Some(url) => NodeUrl::parse(url)?.into(),
            None => home_node_url(home, Some("pass --node URL"))?,
        };
        let token = match (&args.token, &args.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(file)) => read_secret_file(file, "client token")?,
            (None, None) => home
                .token()
                .context("no client token: pass --token-file or set DSHARE_TOKEN")?
                .expose_hex(),
        };
        Ok(NodeClient {
            base,
            token,
            timeout: CALL_TIMEOUT,
        })
    }

    /// Lets each call take `extra` longer than usual (for `send --wait`).
    pub fn allowing(mut self, extra: Duration) -> NodeClient {
        self.timeout = CALL_TIMEOUT + extra;
        self
    }

    /// Gives each call `total` at most (for `doctor`, which must not hang on a stuck node).
    pub fn with_timeout(mut self, total: std::time::Duration) -> NodeClient {
        self.timeout = total;
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// GETs `path?params`, or POSTs `body` there, with the token in a header (never
    /// in the URL, which proxies and logs keep).
    pub fn call(&self, path: &str, params: &[(&str, &str)], body: Option<&[u8]>) -> Result<Answer> {
        let mut target = path.to_string();
        for (i, (k, v)) in params.iter().enumerate() {
            target.push(if i == 0 { '?' } else { '&' });
            target.push_str(&format!("{k}={}", query::encode(v)));
        }
        let auth = format!("Bearer {}", self.token);
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "text/plain; charset=utf-8"));
        }
        let request = exchange::Request {
            // `check_url` and the home's address file both give http://HOST[:PORT].
            authority: self.base.strip_prefix("http://").unwrap_or(&self.base),
            method: if body.is_some() { "POST" } else { "GET" },
            target: &target,
            headers: &headers,
            body,
        };
        let response = exchange::send(&request, self.timeout).map_err(|e| {
            anyhow::anyhow!(
                "cannot reach the node at {}: {e}; is `dshare serve` running there?",
                self.base
            )
        })?;
        let status = response.status;
        let next = response
            .header(&log::NEXT_HEADER.to_ascii_lowercase())
            .and_then(|v| v.parse().ok());
        let cannot_read =
            |e: String| anyhow::anyhow!("cannot read the answer of {}: {e}", self.base);
        let body = response.body(MAX_RESPONSE).map_err(cannot_read)?;
        let body = String::from_utf8(body)
            .map_err(|_| cannot_read("the answer is not UTF-8 text".into()))?;
        Ok(Answer { status, body, next })
    }

    /// Sends `body`; returns the node's answer (the stored message, and with `wait`
    /// the peers that confirmed and those that did not) once it is on disk.
    pub fn send(
        &self,
        body: &str,
        wait: Option<(Want, Duration)>,
        key: Option<&str>,
    ) -> Result<SendAnswer> {
        let answer = self.send_raw(body, wait, key)?;
        interpret_send(answer.status, &answer.body)
    }

    /// [`NodeClient::send`] without reading the answer: an error is a node that could
    /// not be reached or did not answer (worth another try later).
    pub fn send_raw(
        &self,
        body: &str,
        wait: Option<(Want, Duration)>,
        key: Option<&str>,
    ) -> Result<Answer> {
        let query = SendQuery {
            key: key.map(str::to_string),
            wait,
        };
        self.call_with(send::PATH, &query.params(), Some(body.as_bytes()))
    }

    fn call_with(
        &self,
        path: &str,
        params: &[(&'static str, String)],
        body: Option<&[u8]>,
    ) -> Result<Answer> {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.call(path, &params, body)
    }

    fn log(&self, query: LogQuery) -> Result<Answer> {
        self.expect_ok(self.call_with(log::PATH, &query.params(), None)?)
    }

    /// The last `n` messages (or the node's default page), in conversation order,
    /// and the position to follow from.
    pub fn last(&self, n: Option<usize>) -> Result<(Vec<Message>, u64)> {
        let answer = self.log(LogQuery::Last {
            n: n.map(|n| n as u64),
        })?;
        let messages = parse_lines(&answer.body)?;
        Ok((messages, answer.next.unwrap_or(0)))
    }

    /// Up to `n` messages after the first `after` lines of the box, in arrival order,
    /// answered at once.
    pub fn page(&self, after: u64, n: u64) -> Result<Vec<Message>> {
        let answer = self.log(LogQuery::Since {
            after,
            n: Some(n),
            wait_s: None,
        })?;
        parse_lines(&answer.body)
    }

    /// Every message the node holds, in conversation order, and the position to follow
    /// from. Read page by page in arrival order, as `log -f` does, because a `/log`
    /// answer without `since` holds only the node's last page.
    pub fn everything(&self) -> Result<(Vec<Message>, u64)> {
        let (_, end) = self.last(Some(0))?;
        let mut all = Vec::new();
        let mut next = 0;
        while next < end {
            let answer = self.log(LogQuery::Since {
                after: next,
                n: Some((end - next).min(LOG_PAGE)),
                wait_s: None,
            })?;
            let page = parse_lines(&answer.body)?;
            if page.is_empty() {
                break;
            }
            // After an archive the live box begins after line 0: the node says where
            // each page ended, and counting from 0 would ask for its first lines again.
            next = answer
                .next
                .unwrap_or(next + page.len() as u64)
                .max(next + page.len() as u64);
            all.extend(page);
        }
        crate::mbox::sort_conversation(&mut all);
        Ok((all, next))
    }

    /// Messages after the first `after` lines, waiting up to `wait_s` seconds for one;
    /// with the position to ask from next.
    pub fn since(&self, after: u64, wait_s: u64) -> Result<(Vec<Message>, u64)> {
        let answer = self.log(LogQuery::Since {
            after,
            n: None,
            wait_s: Some(wait_s),
        })?;
        let messages = parse_lines(&answer.body)?;
        let next = answer.next.unwrap_or(after + messages.len() as u64);
        Ok((messages, next))
    }

    /// `GET /status`: what the node is and what its box holds.
    pub fn status(&self) -> Result<Status> {
        self.get_json(status::PATH)
    }

    /// `GET /peers`: the node's peers, the forks it saw, what it refused.
    pub fn peers(&self) -> Result<PeersAnswer> {
        self.get_json(peers::PATH)
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let answer = self.expect_ok(self.call(path, &[], None)?)?;
        serde_json::from_str(&answer.body)
            .with_context(|| format!("the node at {} sent a malformed {path} answer", self.base))
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

/// Fails unless `home` is a dshare home, naming a mistyped `--home` as such: the
/// usual remedy, starting a node there, would create a new network.
pub fn require_home(home: &Home) -> Result<()> {
    if !home.exists() {
        bail!(
            "{} is not a dshare home (it holds no identity key); check --home and DSHARE_HOME, or create a home with `dshare init`",
            home.dir().display()
        );
    }
    Ok(())
}

/// The URL of the node running on `home`, for the command line. `otherwise` is the
/// way around a stopped node that the command offers, if any (`pass --node URL`).
pub fn home_node_url(home: &Home, otherwise: Option<&str>) -> Result<String> {
    require_home(home)?;
    // Before anything of the home is trusted, even whether a node runs there.
    home.check_owner()?;
    if !home.node_running() {
        bail!(
            "no node is running for {}; start it with `dshare serve --home {}`{}",
            home.dir().display(),
            home.dir().display(),
            otherwise.map(|o| format!(", or {o}")).unwrap_or_default()
        );
    }
    home.node_url()
}

/// What `dshare send` makes of the node's answer (direct or remote): the stored message
/// on 200; exit 1 naming the peers that lack it on 504 (`--wait` timed out); exit 1
/// with the node's reason when it refused the message.
pub fn interpret_send(status: u16, body: &str) -> Result<SendAnswer> {
    match status {
        200 | 504 => {
            let answer: SendAnswer =
                serde_json::from_str(body).context("the node's answer is not a message")?;
            if status == 504 {
                let missing = answer.missing.clone().unwrap_or_default();
                let acked = answer.acked.as_ref().map_or(0, Vec::len);
                return Err(exit::failure(format!(
                    "message {} is stored here, but only {acked} peer(s) confirmed it in time; lacking it: {}",
                    answer.message.id.to_hex(),
                    if missing.is_empty() {
                        "(no other peer was up)".to_string()
                    } else {
                        missing.join(", ")
                    }
                )));
            }
            Ok(answer)
        }
        401 => bail!("the node refused the client token: {}", body.trim()),
        400 | 413 | 414 => Err(exit::failure(format!(
            "the node refused the message: {}",
            refusal_reason(body)
        ))),
        s => Err(exit::failure(format!(
            "the node could not store the message (HTTP {s}): {}",
            body.trim()
        ))),
    }
}

/// The node's reason without its own "message refused: " (the caller says that once).
fn refusal_reason(body: &str) -> &str {
    let reason = body.trim();
    reason.strip_prefix("message refused: ").unwrap_or(reason)
}

/// Sends through the node named in a client key line, sealing the request with the
/// client key: the key itself never crosses the wire, and a captured request cannot be
/// replayed.
/// The secret in `file`: its first line that is not empty or a `#` comment, so a key
/// file written by dshare (with its comment header) works as it is.
pub fn read_secret_file(file: &std::path::Path, what: &str) -> Result<String> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the {what} from {}", file.display()))?;
    match text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
    {
        Some(line) => Ok(line.to_string()),
        None => bail!("{} holds no {what}", file.display()),
    }
}

pub fn remote_send(
    line: &str,
    body: &str,
    wait: Option<(Want, Duration)>,
    key: Option<&str>,
) -> Result<SendAnswer> {
    match remote_exchange(line, body, wait, key, CALL_TIMEOUT)? {
        Remote::Answered(code, inner) => interpret_send(code, &inner),
        Remote::Unreachable(why) | Remote::Refused(why) => bail!(why),
    }
}

/// What became of a sealed remote send.
pub enum Remote {
    /// The node opened the request and answered: the inner status and answer.
    Answered(u16, String),
    /// No answer that opens: the node is down, too slow, or the answer was lost.
    Unreachable(String),
    /// The node refused the seal itself (a revoked key, clocks a minute apart).
    Refused(String),
}

/// Seals `body` (with its key) for the node named in `line`, sealed at this moment:
/// a request kept in a spool is sealed again at each delivery, since the node refuses
/// a seal older than a minute.
pub fn remote_exchange(
    line: &str,
    body: &str,
    wait: Option<(Want, Duration)>,
    key: Option<&str>,
    timeout: Duration,
) -> Result<Remote> {
    let (secret, base) = crate::invite::parse_client(line)?;
    let keyring = crate::seal::Keyring::new(&secret);
    let request = RemoteSend {
        body: body.to_string(),
        wait: wait.map(|(w, _)| w),
        timeout_ms: wait.map(|(_, t)| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        key: key.map(str::to_string),
    };
    let plain = serde_json::to_vec(&request)?;
    let blob = keyring.seal(REMOTE_AAD, &plain, crate::time::now_ms());
    let extra = wait.map_or(Duration::ZERO, |(_, t)| t);
    Ok(match sealed_post(&base, &keyring, &blob, timeout + extra) {
        Ok(pair) => Remote::Answered(pair.0, pair.1),
        Err(SealedError::Refused(why)) => Remote::Refused(why),
        Err(SealedError::Unreachable(why)) => Remote::Unreachable(why),
    })
}

enum SealedError {
    Unreachable(String),
    Refused(String),
}

/// POSTs a sealed request to `base`/c/send; the inner status and answer once opened.
fn sealed_post(
    base: &str,
    keyring: &crate::seal::Keyring,
    blob: &[u8],
    total: Duration,
) -> std::result::Result<(u16, String), SealedError> {
    let unreachable = SealedError::Unreachable;
    let mut response = agent(total)
        .post(&format!("{base}{REMOTE_PATH}"))
        .content_type("application/octet-stream")
        .send(blob)
        .map_err(|e| unreachable(format!("cannot reach the node at {base}: {e}")))?;
    let status = response.status().as_u16();
    let sealed = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE)
        .read_to_vec()
        .map_err(|e| unreachable(format!("cannot read the answer of {base}: {e}")))?;
    if status == 403 {
        return Err(SealedError::Refused(format!(
            "the node at {base} refused this client key: it was revoked, was issued by another node, or the clocks differ by more than a minute"
        )));
    }
    if status != 200 {
        return Err(unreachable(format!(
            "the node at {base} answered HTTP {status}"
        )));
    }
    let opened = keyring
        .open(
            &crate::replicate::answer_aad(&blob[4..28]),
            &sealed,
            crate::time::now_ms(),
        )
        .map_err(|e| unreachable(format!("the answer of {base} does not open: {e}")))?;
    let answer: RemoteAnswer = serde_json::from_slice(&opened.plaintext)
        .map_err(|_| unreachable(format!("the answer of {base} is malformed")))?;
    Ok((answer.status, answer.answer.text()))
}
