//! Calling a peer: seal the request with the network key, POST it under `/v1/`, open
//! the sealed answer. One ureq agent with short timeouts, so a dead or stalled peer
//! costs its own worker a few seconds and nobody else anything.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::clock::PeerClocks;
use crate::seal::Keyring;

use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// How a failed exchange says that the peer could not open our request: the words
/// `peers` shows and `doctor` looks for.
pub const REFUSED_KEY: &str = "refused our network key";

/// Status of the answer to a sealed request whose timestamp is outside the window
/// (the peer API's server side answers it, this side reads it).
pub const CLOCK_SKEW_STATUS: u16 = 409;

/// How long a connection to a peer is kept for reuse once idle: well inside the
/// time a peer keeps a silent connection open, so that a reused one is never
/// closed under a request.
const IDLE_AGE: Duration = Duration::from_secs(1);

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

/// Why a call failed, when the peer could not be reached, did not answer in time, or
/// refused the seal (403: not a member of this network, or not with this key): the
/// peer is down. Any other failure (an answer too large, malformed, refused or not
/// sealed) comes from a peer that is reachable; it is reported, and the peer stays up
/// for pushes: marking such peers down once partitioned a network for good.
#[derive(Debug)]
pub struct Unreachable(pub String);

impl std::fmt::Display for Unreachable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot reach peer {}", self.0)
    }
}

/// Whether `e` says the peer could not be reached (see [`Unreachable`]).
pub fn is_unreachable(e: &anyhow::Error) -> bool {
    e.downcast_ref::<Unreachable>().is_some()
}

/// Transport failures: nothing, or nothing in time, came back.
fn transport_failed(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::BodyStalled
    )
}

fn classify(e: ureq::Error, base: &str, doing: &str) -> anyhow::Error {
    if transport_failed(&e) {
        anyhow::Error::new(e).context(Unreachable(base.to_string()))
    } else {
        anyhow::Error::new(e).context(format!("{doing} peer {base}"))
    }
}

pub struct PeerClient {
    agent: ureq::Agent,
    keyring: Arc<Keyring>,
    /// Every sealed answer says what the peer's clock read: noted here.
    clocks: Arc<PeerClocks>,
}

impl PeerClient {
    pub fn new(keyring: Arc<Keyring>, clocks: Arc<PeerClocks>, timeout: Duration) -> PeerClient {
        let config = ureq::Agent::config_builder()
            .timeout_connect(Some(timeout.min(Duration::from_secs(2))))
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .no_delay(true)
            // ureq's default of 10 idle connections to all peers together: with 32
            // kept, pushes from an origin reused theirs, but 200 idle nodes sent
            // about 40% more hellos (653 and 750 B/s a node in two runs, against 455
            // and 475 with 10; the path was not traced) and crossed 2 kB/s a node.
            .max_idle_connections_per_host(2)
            .max_idle_age(IDLE_AGE)
            .build();
        let agent =
            ureq::Agent::with_parts(config, DefaultConnector::default(), LiteralFirst::default());
        PeerClient {
            agent,
            keyring,
            clocks,
        }
    }

    /// Calls `op` on the peer at `base` with `request`, returning its answer.
    pub fn call<Q: Serialize, A: DeserializeOwned>(
        &self,
        base: &str,
        op: &str,
        request: &Q,
    ) -> Result<A> {
        self.call_with_nonce(base, op, request)
            .map(|(answer, _)| answer)
    }

    /// [`PeerClient::call`], also returning the nonce the request was sealed with (a
    /// hello's answer proves the peer's identity over it).
    pub fn call_with_nonce<Q: Serialize, A: DeserializeOwned>(
        &self,
        base: &str,
        op: &str,
        request: &Q,
    ) -> Result<(A, Vec<u8>)> {
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
            .map_err(|e| classify(e, base, "cannot talk to"))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|e| classify(e, base, "cannot read the answer of"))?;
        let metrics = &crate::metrics::METRICS;
        metrics
            .peer_bytes_out
            .add(blob.len() as u64 + crate::metrics::PEER_HTTP_HEAD);
        metrics
            .peer_bytes_in
            .add(body.len() as u64 + crate::metrics::PEER_HTTP_HEAD);
        if status == CLOCK_SKEW_STATUS {
            return Err(self.clock_skew(base, &nonce, &body));
        }
        if status == 403 {
            // Our seal does not open there (another network, a rotated key): no
            // exchange is possible, which is what down means.
            return Err(
                anyhow::anyhow!("peer {base} {REFUSED_KEY} (HTTP 403): it holds another network's key, or ours was rotated there")
                    .context(Unreachable(base.to_string())),
            );
        }
        if status != 200 {
            bail!("peer {base} answered HTTP {status} to {op}");
        }
        let now = crate::time::now_ms();
        let opened = self
            .keyring
            .open(&answer_aad(&nonce), &body, now)
            .map_err(|e| anyhow::anyhow!("peer {base}'s answer to {op}: {e}"))?;
        self.clocks.record(base, opened.ts, now);
        let answer = serde_json::from_slice(&opened.plaintext)
            .with_context(|| format!("peer {base} sent a malformed answer to {op}"))?;
        Ok((answer, nonce))
    }
}

impl PeerClient {
    /// The peer found our request's time too far ahead of its own: notes the time its
    /// answer carries (bound to our request, so not a replay) and says so. (A request
    /// too far behind the peer's clock gets a bare 403, as a replay does.)
    fn clock_skew(&self, base: &str, nonce: &[u8], body: &[u8]) -> anyhow::Error {
        let now = crate::time::now_ms();
        match self.keyring.open_at_any_time(&answer_aad(nonce), body) {
            Ok(opened) => {
                self.clocks.record(base, opened.ts, now);
                anyhow::anyhow!(
                    "peer {base} refuses our requests: its clock and ours differ by {} (a sealed request may be off by {} s at most)",
                    crate::clock::span(opened.ts.abs_diff(now)),
                    crate::seal::WINDOW_MS / 1000
                )
            }
            Err(e) => anyhow::anyhow!("peer {base} answered HTTP 409 with a bad seal: {e}"),
        }
    }
}

/// ureq resolves the peer's host on every call, pooled connection or not, and with a
/// timeout set its default resolver starts a thread for each lookup (to bound
/// `getaddrinfo`). Peers are nearly always addressed by IP: such an address is its
/// own answer, with no thread, which took about a tenth of a millisecond off every
/// push. Names still go through the default resolver.
#[derive(Debug, Default)]
struct LiteralFirst(DefaultResolver);

impl Resolver for LiteralFirst {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let literal = uri.authority().and_then(|a| {
            let host = a.host().trim_start_matches('[').trim_end_matches(']');
            let ip: std::net::IpAddr = host.parse().ok()?;
            let port = a
                .port_u16()
                .or_else(|| (uri.scheme_str() == Some("http")).then_some(80))?;
            Some(std::net::SocketAddr::new(ip, port))
        });
        match literal {
            Some(addr) => {
                let mut addrs = self.empty();
                addrs.push(addr);
                Ok(addrs)
            }
            None => self.0.resolve(uri, config, timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use ureq::unversioned::resolver::Resolver;

    use super::LiteralFirst;

    fn resolve(url: &str) -> Vec<std::net::SocketAddr> {
        let uri: ureq::http::Uri = url.parse().unwrap();
        LiteralFirst::default()
            .resolve(&uri, &ureq::config::Config::default(), Default::default())
            .unwrap()
            .iter()
            .copied()
            .collect()
    }

    #[test]
    fn ip_addresses_resolve_to_themselves_and_names_still_resolve() {
        assert_eq!(
            resolve("http://127.0.0.1:7070/v1/push"),
            ["127.0.0.1:7070".parse().unwrap()]
        );
        assert_eq!(
            resolve("http://[::1]/v1/hello"),
            ["[::1]:80".parse().unwrap()]
        );
        assert!(!resolve("http://localhost:7070/").is_empty());
    }
}
