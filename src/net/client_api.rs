//! The client API, server side: what `dshare send`/`log`, scripts and browsers use
//! (its request and answer types are in [`crate::api`]). Every route needs the
//! node's client token, from `?token=` or the cookie the page sets.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::api::send::REMOTE_AAD;
use crate::api::{
    LogQuery, PeerState, PeersAnswer, RemoteAnswer, RemoteBody, RemoteSend, SendAnswer, Status,
    Want, log, peers, send, status,
};
use crate::mbox::{StoreError, Writer};
use crate::message::{self, AuthorId};
use crate::replicate::Replicator;
use crate::secret::Secret;

use super::http::{Request, Response};
use super::idempotency::{self, Claim, Sender};
use super::page;

/// Name of the cookie that carries the token for the browser page.
pub const COOKIE: &str = "dshare_token";
/// Longest a `/log?since=` request may wait for new messages.
const MAX_WAIT: Duration = Duration::from_secs(30);
/// Most messages in one `/log` answer without `n`.
const PAGE: usize = 1000;

/// The state the client API needs.
pub struct ClientApi {
    /// Keys of clients allowed to send from elsewhere (`dshare client add`).
    pub remote_keys: Arc<super::client_keys::ClientKeys>,
    pub remote_replay: crate::seal::ReplayGuard,
    pub writer: Writer,
    pub replicator: Arc<Replicator>,
    pub token: Secret,
    pub author: AuthorId,
    /// Long-polls in progress and the most allowed, so waiting clients can never take
    /// every worker thread.
    pub waiting: AtomicUsize,
    pub max_waiting: usize,
    /// `send --wait` confirmations in progress, capped in all and per key.
    pub confirming: super::waits::Waits,
    /// Idempotency keys of recent sends (`send --key`), and the messages they stored.
    pub keys: Arc<super::idempotency::Keys>,
    /// Signs the final heads of the epochs `/archive` closes.
    pub identity: crate::identity::Identity,
}

/// Longest a remote client (`/c/send`) may wait for confirmations; a node's own
/// token may ask for up to ten minutes.
const MAX_REMOTE_WAIT: Duration = Duration::from_secs(60);
/// Longest any confirmation wait.
const MAX_LOCAL_WAIT: Duration = Duration::from_secs(600);
/// The wait key of sends made with the node's client token.
const TOKEN_KEY: &str = "token";

impl ClientApi {
    pub fn handle(&self, req: &Request) -> Response {
        if req.path == send::REMOTE_PATH {
            return self.remote_send(req);
        }
        if req.path == "/page.js" && !req.post {
            return page::script();
        }
        let by_query = req.param("token");
        let by_header = req
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "));
        let by_cookie = cookie_allowed(req).then(|| cookie(req, COOKIE)).flatten();
        let (presented, credential) = match (by_header, by_query, by_cookie) {
            (Some(t), _, _) | (None, Some(t), _) => (Some(t), Credential::Token),
            (None, None, Some(t)) => (Some(t), Credential::Cookie),
            (None, None, None) => (None, Credential::Token),
        };
        if presented.is_none() && !req.post && cookie(req, COOKIE).is_some() {
            return Response::text(
                403,
                "a request from another site's page cannot use the page's cookie; nothing was done",
            );
        }
        let authorized = presented
            .and_then(Secret::from_hex)
            .is_some_and(|t| t == self.token);
        if !authorized {
            crate::metrics::METRICS.refused(crate::metrics::Refusal::Auth);
            return Response::text(
                401,
                "missing or wrong client token: use the address `dshare web` prints, or pass ?token=",
            );
        }
        // A browser says when a request comes from another site's page; such a request
        // must not act with this user's cookie (cross-site request forgery).
        if req.header("sec-fetch-site") == Some("cross-site") {
            return Response::text(403, "cross-site requests are refused");
        }
        // Another port of the same host is the same site, and a browser that sends no
        // Sec-Fetch-Site cannot tell: a send on the cookie alone must also carry the
        // form key that only this node's page holds.
        if credential == Credential::Cookie
            && req.path == send::PATH
            && !self.form_key_matches(if req.post {
                req.header(page::FORM_KEY_HEADER)
            } else {
                req.param(page::FORM_KEY)
            })
        {
            return Response::text(
                403,
                "a send with the page's cookie must come from the page's own form (its form key is missing or wrong); nothing was stored. Reload the page, or pass ?token=",
            );
        }
        // The token in the address is needed only until the browser shows the cookie
        // holds it; from then on the page and its form leave it out of the address.
        let token_only_in_url = by_query.is_some()
            && by_cookie
                .and_then(Secret::from_hex)
                .is_none_or(|t| t != self.token);
        let mut response = match (req.post, req.path.as_str()) {
            (false, "/") if by_query.is_some() && !token_only_in_url => {
                Response::text(303, "the cookie holds the token").with("Location", "/")
            }
            (false, "/") => self.page(token_only_in_url),
            (_, send::PATH) => self.send(req, token_only_in_url),
            (false, log::PATH) => self.log(req),
            (false, status::PATH) => self.status(),
            (false, peers::PATH) => self.peers(),
            (false, "/metrics") => self.metrics(),
            (true, "/archive") if credential == Credential::Token => self.archive(req),
            (_, "/archive") => Response::text(
                405,
                "POST /archive with the token in the Authorization header (`dshare archive`)",
            ),
            (true, "/" | "/log" | "/status" | "/peers" | "/metrics") => {
                Response::text(405, "use GET here")
            }
            _ => Response::text(
                404,
                "no such path; the client API has /, /page.js, /send, /log, /status, /peers and /metrics",
            ),
        };
        if by_query.is_some() {
            let t = self.token.expose_hex();
            response = response.with(
                "Set-Cookie",
                format!("{COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict"),
            );
        }
        response
            .with("Cache-Control", "no-store")
            .with("Referrer-Policy", "no-referrer")
            .with("X-Content-Type-Options", "nosniff")
    }

    fn form_key_matches(&self, presented: Option<&str>) -> bool {
        presented
            .and_then(Secret::from_hex)
            .is_some_and(|k| k == page::form_key(&self.token))
    }

    fn page(&self, token_in_url: bool) -> Response {
        match self.writer.store().last(Some(page::SHOWN)) {
            Ok((messages, next)) => {
                let token = token_in_url.then(|| self.token.expose_hex());
                let form_key = page::form_key(&self.token).expose_hex();
                page::render(&page::View {
                    messages: &messages,
                    next,
                    peers: &self.replicator.peers.views(),
                    me: &self.author,
                    token: token.as_deref(),
                    form_key: &form_key,
                })
            }
            Err(e) => Response::text(500, format!("cannot read the box: {e:#}")),
        }
    }

    /// `GET /send?msg=TEXT` (browsers, curl) or `POST /send` with the text as the
    /// body (the command line: no URL length limit, no percent-encoding).
    fn send(&self, req: &Request, token_in_url: bool) -> Response {
        let body = if req.post {
            match std::str::from_utf8(&req.body) {
                Ok(text) => text,
                Err(_) => {
                    return Response::text(
                        400,
                        "the message is not UTF-8 text; nothing was stored",
                    );
                }
            }
        } else {
            match req.param("msg") {
                Some(text) => text,
                None => return Response::text(400, "missing the msg parameter: /send?msg=TEXT"),
            }
        };
        // Read before storing: a send whose wait is unreadable stores nothing.
        let Ok(wait) = req.param("wait").map(str::parse::<Want>).transpose() else {
            return Response::text(
                400,
                "wait must be `all` or a number of peers; nothing was stored",
            );
        };
        let keyed = req
            .param("key")
            .map(|k| (TOKEN_KEY.to_string(), k.to_string()));
        let (stored, repeat) = match self.store(body, keyed) {
            Ok(m) => m,
            Err(refusal) => return refusal,
        };
        if req.param("from") == Some("page") {
            let to = if token_in_url {
                format!("/?token={}", self.token.expose_hex())
            } else {
                "/".to_string()
            };
            return Response::text(303, "sent").with("Location", to);
        }
        if let Some(want) = wait {
            return self.wait(req, want, stored, repeat);
        }
        if wants_json(req) {
            Response::json(200, &SendAnswer::stored(stored, repeat))
        } else {
            Response::text(200, stored.id.to_hex())
        }
    }

    /// Checks a body and stores it as this node's next message; with a sender's
    /// idempotency key, a repeat is answered with the first message (and `true`).
    fn store(
        &self,
        body: &str,
        keyed: Option<Sender>,
    ) -> Result<(crate::message::Message, bool), Response> {
        let Some(sender) = keyed else {
            return self.store_new(body).map(|m| (m, false));
        };
        if let Err(e) = idempotency::check_key(&sender.1) {
            return Err(Response::text(400, format!("{e}; nothing was stored")));
        }
        let now = crate::time::now_ms();
        match self.keys.claim(&sender, now) {
            Claim::Known(first) => {
                if let Some(m) = self.own_message(first) {
                    return Ok((m, true));
                }
                // Not in the box (it was cut back): nothing to answer with.
                Err(Response::text(
                    409,
                    format!(
                        "key {:?} was used for message {}, which this box no longer holds; send with another key",
                        sender.1,
                        first.id.to_hex()
                    ),
                ))
            }
            Claim::Busy => Err(Response::text(
                409,
                format!("a send with key {:?} is being stored; try again", sender.1),
            )
            .with("Retry-After", "1")),
            Claim::Claimed => {
                let stored = match self.store_new(body) {
                    Ok(m) => m,
                    Err(refusal) => {
                        self.keys.release(&sender);
                        return Err(refusal);
                    }
                };
                let first = idempotency::Stored {
                    at_ms: now,
                    id: stored.id,
                    seq: stored.seq,
                };
                if let Err(e) = self.keys.record(&sender, first, now) {
                    // Stored but not remembered: the sender is told, so a retry that
                    // would store it again is its choice.
                    return Err(Response::text(
                        500,
                        format!(
                            "message {} is stored, but its key could not be recorded ({e}); do not retry with this key",
                            stored.id.to_hex()
                        ),
                    ));
                }
                Ok((stored, false))
            }
        }
    }

    /// This node's message `first` stands for, if the box holds it.
    fn own_message(&self, first: idempotency::Stored) -> Option<crate::message::Message> {
        let found = self.writer.store().range(&self.author, first.seq, 1).ok()?;
        found.into_iter().next().filter(|m| m.id == first.id)
    }

    /// Checks a body and stores it as this node's next message.
    fn store_new(&self, body: &str) -> Result<crate::message::Message, Response> {
        if body.is_empty() {
            return Err(Response::text(
                400,
                "the message is empty; nothing was stored",
            ));
        }
        if let Err(e) = message::check_body(body) {
            return Err(Response::text(
                413,
                format!("message refused: {e}; nothing was stored"),
            ));
        }
        let started = std::time::Instant::now();
        self.replicator.pace();
        let stored = self
            .writer
            .send(body.to_string())
            .map_err(|e| store_error(&e))?;
        crate::metrics::METRICS.send.observe(started.elapsed());
        crate::metrics::METRICS.stored(crate::metrics::Origin::Local, 1);
        Ok(stored)
    }

    /// `POST /c/send` from a machine that is not a node: the body is sealed with a
    /// client key (`dshare client add`), and so is the answer. Anything that does not
    /// open gets an empty 403, as on the peer API.
    fn remote_send(&self, req: &Request) -> Response {
        let forbidden = || Response::new(403, "application/octet-stream", Vec::new());
        let now = crate::time::now_ms();
        if !req.post {
            return forbidden();
        }
        let Ok(opened) = self.remote_keys.current().open(REMOTE_AAD, &req.body, now) else {
            return forbidden();
        };
        if self.remote_replay.check(&opened, now).is_err() {
            return forbidden();
        }
        let refused = |refusal: Response| RemoteAnswer {
            status: refusal.status,
            answer: RemoteBody::Refused(String::from_utf8_lossy(&refusal.body).trim().to_string()),
        };
        let sent = |(status, answer)| RemoteAnswer {
            status,
            answer: RemoteBody::Sent(Box::new(answer)),
        };
        let answer = match serde_json::from_slice::<RemoteSend>(&opened.plaintext) {
            Err(e) => refused(Response::text(400, format!("malformed request: {e}"))),
            Ok(r) => match self.store(&r.body, r.key.map(|k| (remote_key(&req.body), k))) {
                Err(refusal) => refused(refusal),
                Ok((stored, repeat)) => match r.wait {
                    None => sent((200, SendAnswer::stored(stored, repeat))),
                    Some(want) => match self.confirmations(
                        want,
                        r.timeout_ms,
                        stored,
                        repeat,
                        &remote_key(&req.body),
                    ) {
                        Ok(pair) => sent(pair),
                        Err(refusal) => refused(refusal),
                    },
                },
            },
        };
        let plain = serde_json::to_string(&answer).expect("answers serialize");
        let aad = crate::replicate::answer_aad(&opened.nonce);
        match self.remote_keys.current().seal_as(
            &req.body,
            &aad,
            plain.as_bytes(),
            crate::time::now_ms(),
        ) {
            Some(sealed) => Response::new(200, "application/octet-stream", sealed),
            // The key was revoked between opening and answering.
            None => forbidden(),
        }
    }

    /// `/send?wait=all|N&timeout_ms=T`: once stored here, pushes the message to the
    /// peers that are up until enough hold it. 200 when they do, 504 when the time ran
    /// out (the message is stored here either way); JSON names the peers.
    fn wait(
        &self,
        req: &Request,
        want: Want,
        stored: crate::message::Message,
        repeat: bool,
    ) -> Response {
        let timeout_ms = req.param("timeout_ms").and_then(|t| t.parse::<u64>().ok());
        match self.confirmations(want, timeout_ms, stored, repeat, TOKEN_KEY) {
            Ok((status, value)) => Response::json(status, &value),
            Err(refusal) => refusal,
        }
    }

    /// Pushes `stored` to the up peers until `want` of them hold it: 200 and the
    /// message with `acked` and `missing`, or 504 and the same when time ran out or
    /// the peers still missing refused it. Waits without a worker's turn, in one of
    /// the slots of `key` (429 when they are all taken: the message is stored).
    fn confirmations(
        &self,
        want: Want,
        timeout_ms: Option<u64>,
        stored: crate::message::Message,
        repeat: bool,
        key: &str,
    ) -> Result<(u16, SendAnswer), Response> {
        let (longest, key_cap) = if key == TOKEN_KEY {
            (MAX_LOCAL_WAIT, super::waits::MAX_WAITS)
        } else {
            (MAX_REMOTE_WAIT, super::waits::MAX_WAITS_PER_KEY)
        };
        let timeout = Duration::from_millis(timeout_ms.unwrap_or(10_000)).min(longest);
        let Some(_slot) = self.confirming.take(key, key_cap) else {
            return Err(Response::text(
                429,
                format!(
                    "message {} is stored, but too many sends are waiting for confirmations; not waiting",
                    stored.id.to_hex()
                ),
            )
            .with("Retry-After", "1"));
        };
        let (acked, missing) =
            super::http::without_turn(|| self.replicator.confirm(&stored, want, timeout));
        let enough = match want {
            Want::All => missing.is_empty(),
            Want::Count(n) => acked.len() >= n,
        };
        let answer = SendAnswer {
            acked: Some(acked),
            missing: Some(missing),
            ..SendAnswer::stored(stored, repeat)
        };
        Ok((if enough { 200 } else { 504 }, answer))
    }

    /// `/peers`: every known peer's state, the forks seen, and how many messages from
    /// peers were refused.
    fn peers(&self) -> Response {
        let rep = &self.replicator;
        Response::json(
            200,
            &PeersAnswer {
                peers: rep.peer_views(),
                forks: rep.forks.lock().expect("forks lock").clone(),
                refused: rep.refused.load(Ordering::Relaxed),
            },
        )
    }

    /// `/log?n=N`: the last N messages in conversation order, one JSON object a line.
    /// `/log?since=K[&wait=S]`: messages after the first K lines of the box, in
    /// arrival order, waiting up to S seconds for one; `X-Dshare-Next` says where to
    /// continue.
    fn log(&self, req: &Request) -> Response {
        let store = self.writer.store();
        let query = match LogQuery::parse(|name| req.param(name)) {
            Ok(query) => query,
            Err(why) => return Response::text(400, why),
        };
        let read = match query {
            LogQuery::Last { n } => store.last(Some(
                n.map_or(PAGE, |n| usize::try_from(n).unwrap_or(usize::MAX)),
            )),
            LogQuery::Since {
                after,
                n,
                wait_s: wait,
            } => {
                let wait = Duration::from_secs(wait.unwrap_or(0)).min(MAX_WAIT);
                if !wait.is_zero() && self.waiting.fetch_add(1, Ordering::SeqCst) < self.max_waiting
                {
                    store.wait_beyond(after, wait);
                }
                if !wait.is_zero() {
                    self.waiting.fetch_sub(1, Ordering::SeqCst);
                }
                let limit = n.map_or(PAGE, |n| usize::try_from(n).unwrap_or(PAGE).min(PAGE));
                if req.param("epochs") == Some("1") {
                    store.since_history(after, limit)
                } else {
                    store.since_next(after, limit)
                }
            }
        };
        match read {
            Ok((messages, next)) => {
                let mut body = Vec::new();
                for m in &messages {
                    serde_json::to_writer(&mut body, m).expect("messages serialize");
                    body.push(b'\n');
                }
                Response::new(200, "application/x-ndjson", body)
                    .with(log::NEXT_HEADER, next.to_string())
            }
            Err(e) => Response::text(500, format!("cannot read the box: {e:#}")),
        }
    }

    /// `/metrics`: the Prometheus text exposition.
    pub fn metrics(&self) -> Response {
        let store = self.writer.store();
        let summary = store.summary();
        let rep = &self.replicator;
        let views = rep.peers.views();
        let mut peers = crate::metrics::PeerCounts::default();
        for v in &views {
            match v.state {
                // A suspect is treated as alive until it is declared down.
                PeerState::Up | PeerState::Suspect => peers.up += 1,
                PeerState::Down => peers.down += 1,
                PeerState::Unknown => peers.unknown += 1,
            }
        }
        let snapshot = crate::metrics::Snapshot {
            version: env!("CARGO_PKG_VERSION"),
            start_time: crate::metrics::start_time(),
            messages: summary.messages,
            authors: summary.authors,
            box_bytes: std::fs::metadata(store.path()).map_or(0, |m| m.len()),
            forks: rep.forks.lock().expect("forks lock").len() as u64,
            peers,
            worst_peer_behind: views.iter().map(|v| v.behind).max().unwrap_or(0),
            push_queue_bytes: rep.queued_bytes(),
            recovering: store.recovering(),
        };
        let text = crate::metrics::render(&crate::metrics::METRICS, &snapshot);
        Response::new(200, "text/plain; version=0.0.4; charset=utf-8", text)
    }

    fn status(&self) -> Response {
        let s = self.writer.store().summary();
        Response::json(
            200,
            &Status {
                node: self.author,
                url: self.replicator.me.url.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                messages: s.messages,
                authors: s.authors,
                head: s.head,
                digest: s.digest,
                commits: self.writer.store().commits(),
                recovering: self.writer.store().recovering(),
                history: self.writer.store().history_start().ok(),
            },
        )
    }
}

/// The HTTP answer for a failed write: 507 when the disk is full, 503 when stopping
/// or while the end of a damaged box is being fetched back from peers.
pub fn store_error(e: &StoreError) -> Response {
    match e {
        StoreError::Full => Response::text(507, e.to_string()),
        StoreError::IndexStalled(_) => Response::text(507, e.to_string()).with("Retry-After", "5"),
        StoreError::Closed | StoreError::Recovering => {
            Response::text(503, e.to_string()).with("Retry-After", "1")
        }
        StoreError::Io(_) => Response::text(500, e.to_string()),
        StoreError::Clock(_) => Response::text(409, e.to_string()),
    }
}

/// The wait key of a remote send: the id of the client key that sealed it (the
/// seal's first bytes, authenticated by the opening).
fn remote_key(sealed: &[u8]) -> String {
    let id = sealed.get(..4).unwrap_or_default();
    format!("client:{}", crate::hex::encode(id))
}

fn wants_json(req: &Request) -> bool {
    req.param("format") == Some("json")
        || req
            .header("accept")
            .is_some_and(|a| a.contains("application/json"))
}

/// How a request proved it may use the client API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Credential {
    /// The token itself, in a header or the URL: only its holder can send it.
    Token,
    /// The page's cookie, which a browser attaches for any page of the same site.
    Cookie,
}

/// Whether the cookie may stand for the token. Never for a POST without the page's
/// form-key header: a browser attaches cookies to another site's form posts but
/// cannot add a header to one (the key itself is checked later). Never when
/// the browser says the request comes from another origin's page (`same-site` is
/// another port of the same host, or a sibling subdomain); only for this origin's
/// pages (`same-origin`), the user's own navigation (`none`), or a client that does
/// not say (an older browser, a non-secure origin, curl), where the form key still
/// guards `/send`.
fn cookie_allowed(req: &Request) -> bool {
    let site = req.header("sec-fetch-site").map(str::to_ascii_lowercase);
    let by_page_script = req.path == "/send" && req.header(page::FORM_KEY_HEADER).is_some();
    (!req.post || by_page_script) && matches!(site.as_deref(), None | Some("same-origin" | "none"))
}

fn cookie<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header("cookie")?
        .split(';')
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}
