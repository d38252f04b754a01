//! The peer API, server side: `POST /v1/{hello,heads,range,push}` with a sealed body. A
//! request that does not open with a network key this node holds gets a bare 403:
//! an outsider learns nothing, not even which node this is.

use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::replicate::{Replicator, answer_aad, request_aad};
use crate::seal::ReplayGuard;

use super::http::{Request, Response};

pub struct PeerApi {
    pub replicator: Arc<Replicator>,
    pub replay: ReplayGuard,
}

fn forbidden() -> Response {
    Response::new(403, "application/octet-stream", Vec::new())
}

impl PeerApi {
    pub fn handle(&self, req: &Request) -> Response {
        if !req.post {
            return forbidden();
        }
        let now = crate::time::now_ms();
        let Ok(opened) = self
            .replicator
            .keyring
            .open(&request_aad(&req.path), &req.body, now)
        else {
            return forbidden();
        };
        if self.replay.check(&opened, now).is_err() {
            return forbidden();
        }
        let rep = &self.replicator;
        let answer = match req.path.as_str() {
            "/v1/hello" => parse(&opened.plaintext)
                .map(|h| seal_json(rep, &opened.nonce, &rep.on_hello(h, &opened.nonce))),
            "/v1/heads" => {
                parse(&opened.plaintext).map(|r| seal_json(rep, &opened.nonce, &rep.on_heads(&r)))
            }
            "/v1/range" => parse(&opened.plaintext).map(|r| match rep.on_range(&r) {
                Ok(page) => seal_json(rep, &opened.nonce, &page),
                Err(e) => Response::text(500, format!("cannot read the box: {e:#}")),
            }),
            "/v1/push" => parse(&opened.plaintext).map(|p| match rep.on_push(p) {
                Ok(reply) => seal_json(rep, &opened.nonce, &reply),
                Err(e) => super::client_api::store_error(&e),
            }),
            _ => return forbidden(),
        };
        answer.unwrap_or_else(|e| Response::text(400, format!("malformed request: {e}")))
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
