//! Calling a peer: seal the request with the network key, POST it under `/v1/`, open
//! the sealed answer. One ureq agent with short timeouts, so a dead or stalled peer
//! costs its own worker a few seconds and nobody else anything.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::seal::Keyring;

/// Most bytes read from a peer's answer: a range page is capped near 1 MiB.
const MAX_ANSWER: u64 = 8 * 1024 * 1024;

/// The associated data a request's seal is bound to: its path.
pub fn request_aad(path: &str) -> Vec<u8> {
    format!("dshare/1 req {path}").into_bytes()
}

/// The associated data an answer's seal is bound to: the nonce of the request it
/// answers, so an answer cannot be replayed to another request.
pub fn answer_aad(request_nonce: &[u8]) -> Vec<u8> {
    let mut aad = b"dshare/1 ans ".to_vec();
    aad.extend_from_slice(request_nonce);
    aad
}

pub struct PeerClient {
    agent: ureq::Agent,
    keyring: Arc<Keyring>,
}

impl PeerClient {
    pub fn new(keyring: Arc<Keyring>, timeout: Duration) -> PeerClient {
        let agent = ureq::Agent::config_builder()
            .timeout_connect(Some(timeout.min(Duration::from_secs(2))))
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .no_delay(true)
            .max_idle_connections_per_host(2)
            .build()
            .into();
        PeerClient { agent, keyring }
    }

    /// Calls `op` on the peer at `base` with `request`, returning its answer.
    pub fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        base: &str,
        op: &str,
        request: &Q,
    ) -> Result<A> {
        let path = format!("/v1/{op}");
        let plain = serde_json::to_vec(request).expect("requests serialize");
        let now = crate::time::now_ms();
        let blob = self.keyring.seal(&request_aad(&path), &plain, now);
        let nonce = blob[4..28].to_vec();
        let mut response = self
            .agent
            .post(&format!("{base}{path}"))
            .content_type("application/octet-stream")
            .send(&blob[..])
            .with_context(|| format!("cannot reach peer {base}"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .with_context(|| format!("cannot read the answer of peer {base}"))?;
        if status != 200 {
            bail!("peer {base} answered HTTP {status} to {op}");
        }
        let opened = self
            .keyring
            .open(&answer_aad(&nonce), &body, crate::time::now_ms())
            .map_err(|e| anyhow::anyhow!("peer {base}'s answer to {op}: {e}"))?;
        serde_json::from_slice(&opened.plaintext)
            .with_context(|| format!("peer {base} sent a malformed answer to {op}"))
    }
}
