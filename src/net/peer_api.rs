//! The peer API, server side: `POST /v1/{hello,heads,range,push,reconcile,offer}` with a
//! sealed body. A
//! request that does not open with a network key this node holds gets a bare 403:
//! an outsider learns nothing, not even which node this is.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::replicate::{CLOCK_SKEW_STATUS, Replicator, answer_aad, request_aad};
use crate::seal::ReplayGuard;

use super::http::{Request, Response};

pub struct PeerApi {
    pub replicator: Arc<Replicator>,
    pub replay: ReplayGuard,
}

/// Every route of the peer API; anything else under `/v1/` is screened out unopened.
const ROUTES: [&str; 6] = [
    "/v1/hello",
    "/v1/heads",
    "/v1/range",
    "/v1/push",
    "/v1/reconcile",
    "/v1/offer",
];

fn forbidden() -> Response {
    Response::new(403, "application/octet-stream", Vec::new())
}

impl PeerApi {
    /// The bare 403 for what can never open (no body to open, or not a peer route),
    /// found without a worker: outsiders' junk does not queue behind peers' work.
    pub fn screen(req: &Request) -> Option<Response> {
        let junk = !req.post || req.body.is_empty() || !ROUTES.contains(&req.path.as_str());
        if junk {
            crate::metrics::METRICS.refused(crate::metrics::Refusal::Seal);
        }
        junk.then(forbidden)
    }

    pub fn handle(&self, req: &Request) -> Response {
        let answer = self.answer(req);
        let metrics = &crate::metrics::METRICS;
        metrics.peer_bytes(&req.path, req.body.len(), answer.body.len());
        let head = crate::metrics::PEER_HTTP_HEAD;
        metrics.peer_bytes_in.add(req.body.len() as u64 + head);
        metrics.peer_bytes_out.add(answer.body.len() as u64 + head);
        answer
    }

    fn answer(&self, req: &Request) -> Response {
        if !req.post {
            return forbidden();
        }
        let now = crate::time::now_ms();
        let Ok(opened) = self
            .replicator
            .keyring
            .open_at_any_time(&request_aad(&req.path), &req.body)
        else {
            crate::metrics::METRICS.refused(crate::metrics::Refusal::Seal);
            return forbidden();
        };
        if !crate::seal::within_window(opened.ts, now) {
            if opened.ts < now {
                // Too old: a replay looks just like this, so nothing is said.
                crate::metrics::METRICS.refused(crate::metrics::Refusal::Replay);
                return forbidden();
            }
            // Sealed in our future: no replay can be, so this is a member whose clock
            // is ahead. It is not served, but told our time (in the seal of this
            // answer, bound to its request) so that it can refuse to sign and say why.
            self.note_sender_clock(req, &opened, now);
            return clock_skew(&self.replicator, &opened.nonce);
        }
        if self.replay.check(&opened, now).is_err() {
            crate::metrics::METRICS.refused(crate::metrics::Refusal::Replay);
            return forbidden();
        }
        let rep = &self.replicator;
        let answer =
            match req.path.as_str() {
                "/v1/hello" => parse(&opened.plaintext)
                    .map(|h| seal_json(rep, &opened.nonce, &rep.on_hello(h, &opened.nonce))),
                "/v1/heads" => parse(&opened.plaintext)
                    .map(|r| seal_json(rep, &opened.nonce, &rep.on_heads(&r))),
                "/v1/range" => parse(&opened.plaintext).map(|r| match rep.on_range(&r) {
                    Ok(page) => seal_json(rep, &opened.nonce, &page),
                    Err(e) => Response::text(500, format!("cannot read the box: {e:#}")),
                }),
                "/v1/push" => parse(&opened.plaintext).map(|p| match rep.on_push(p) {
                    Ok(reply) => seal_json(rep, &opened.nonce, &reply),
                    Err(e) => super::client_api::store_error(&e),
                }),
                "/v1/offer" => parse(&opened.plaintext)
                    .map(|o| seal_json(rep, &opened.nonce, &rep.on_offer(&o))),
                "/v1/reconcile" => parse(&opened.plaintext).map(|q| match rep.on_reconcile(&q) {
                    Ok(ranges) => seal_json(rep, &opened.nonce, &ranges),
                    Err(e) => Response::text(400, e.to_string()),
                }),
                _ => return forbidden(),
            };
        answer.unwrap_or_else(|e| Response::text(400, format!("malformed request: {e}")))
    }
}

fn clock_skew(rep: &Replicator, nonce: &[u8]) -> Response {
    let mut answer = seal_json(rep, nonce, &serde_json::json!({ "clock_skew": true }));
    answer.status = CLOCK_SKEW_STATUS;
    answer
}

impl PeerApi {
    /// A hello sealed in our future names its sender: what its clock said counts
    /// among our peers' readings (so a node that is behind learns it too).
    fn note_sender_clock(&self, req: &Request, opened: &crate::seal::Opened, now: u64) {
        if req.path != "/v1/hello" {
            return;
        }
        if let Ok(hello) = parse::<crate::replicate::protocol::Hello>(&opened.plaintext)
            && let Some(url) = hello.from.url
            && hello.from.id != self.replicator.me.id
            && self.replicator.peers.urls().contains(&url)
        {
            self.replicator
                .writer
                .peer_clocks()
                .record(&url, opened.ts, now);
        }
    }
}

fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

fn seal_json(rep: &Replicator, nonce: &[u8], value: &impl Serialize) -> Response {
    let plain = serde_json::to_vec(value).expect("answers serialize");
    let sealed = rep
        .keyring
        .seal(&answer_aad(nonce), &plain, crate::time::now_ms());
    Response::new(200, "application/octet-stream", sealed)
}
