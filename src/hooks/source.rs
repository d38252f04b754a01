//! Where a hook runner reads messages from: a node's client API (`log --exec`), or
//! the node's own store (`serve --on-message`). Both read in the box's arrival order,
//! by position.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};

use crate::home::Home;
use crate::mbox::Store;
use crate::message::Message;
use crate::net::client::{NodeChoice, NodeClient};

/// A box, read by position.
pub trait Source {
    /// Up to `limit` messages after the first `after` lines of the box, in arrival
    /// order, waiting up to `wait` for one to arrive when there is none yet; and the
    /// line the page ends at. That is more than `after` plus the messages when lines
    /// after `after` are no longer held (their epoch was pruned): the page then starts
    /// where this node's history goes on.
    fn since(&mut self, after: u64, limit: usize, wait: Duration) -> Result<(Vec<Message>, u64)>;
}

/// The node's own store, for `serve --on-message`.
pub struct StoreSource(pub Arc<Store>);

impl Source for StoreSource {
    fn since(&mut self, after: u64, limit: usize, wait: Duration) -> Result<(Vec<Message>, u64)> {
        if !wait.is_zero() {
            self.0.wait_beyond(after, wait);
        }
        self.0.since_history(after, limit)
    }
}

/// Longest pause between two tries to reach a node that does not answer.
const MAX_RECONNECT: Duration = Duration::from_secs(2);

/// A node's client API, for `log --exec`. With `patient`, a node that cannot be
/// reached (stopped, restarting, not started yet) is waited for: a hook runner under
/// systemd or in a terminal outlives a node restart. Without it (a one-shot run from
/// cron) that is an error, which cron reports.
pub struct NodeSource {
    home: Home,
    node: NodeChoice,
    client: Option<NodeClient>,
    patient: bool,
    /// Said once per outage, so a long one does not fill the log.
    down: bool,
}

enum Failure {
    /// Worth trying again: the node is not answering, or answered 5xx.
    Transient(anyhow::Error),
    /// Trying again will not help: a refused token, a malformed answer.
    Permanent(anyhow::Error),
}

impl NodeSource {
    /// Checks what can be checked at once (the URL, a token to present), so a typo
    /// fails now rather than being waited on forever.
    pub fn new(home: &Home, node: &NodeChoice, patient: bool) -> Result<NodeSource> {
        if let Some(url) = &node.url {
            crate::node_url::NodeUrl::parse(url)?;
        }
        if node.token.is_none() {
            home.token().map_err(|e| {
                anyhow!("{e:#}; a hook runner needs the node's client token: pass --token or set DSHARE_TOKEN")
            })?;
        }
        Ok(NodeSource {
            home: home.clone(),
            node: node.clone(),
            client: None,
            patient,
            down: false,
        })
    }

    fn try_since(
        &mut self,
        after: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<(Vec<Message>, u64), Failure> {
        if self.client.is_none() {
            let client = NodeClient::connect(&self.home, &self.node).map_err(Failure::Transient)?;
            self.client = Some(client);
        }
        let client = self.client.as_ref().expect("connected above");
        let (a, n, w) = (
            after.to_string(),
            limit.to_string(),
            wait.as_secs().to_string(),
        );
        // `epochs=1`: lines an archive closed since the cursor last read are read from
        // the epoch files, not skipped.
        let params = [("since", &*a), ("n", &n), ("wait", &w), ("epochs", "1")];
        let answer = match client.call("/log", &params, None) {
            Ok(answer) => answer,
            Err(e) => {
                // The node may come back on another port: find it again next time.
                self.client = None;
                return Err(Failure::Transient(e));
            }
        };
        let failed = || {
            anyhow!(
                "the node at {} answered HTTP {}: {}",
                client.base(),
                answer.status,
                answer.body.trim()
            )
        };
        match answer.status {
            200 => {
                let messages: Vec<Message> = answer
                    .body
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        serde_json::from_str(l).map_err(|e| {
                            Failure::Permanent(anyhow!("the node sent a malformed message: {e}"))
                        })
                    })
                    .collect::<Result<_, _>>()?;
                // A node without the header numbers pages without gaps.
                let next = answer.next.unwrap_or(after + messages.len() as u64);
                if next < after + messages.len() as u64 {
                    return Err(Failure::Permanent(anyhow!(
                        "the node said a page of {} messages after line {after} ends at line {next}",
                        messages.len()
                    )));
                }
                Ok((messages, next))
            }
            500..=599 => Err(Failure::Transient(failed())),
            _ => Err(Failure::Permanent(failed())),
        }
    }
}

impl Source for NodeSource {
    fn since(&mut self, after: u64, limit: usize, wait: Duration) -> Result<(Vec<Message>, u64)> {
        let mut pause = Duration::from_millis(100);
        loop {
            let asked = Instant::now();
            match self.try_since(after, limit, wait) {
                Ok((messages, next)) => {
                    if self.down {
                        crate::note!("the node answers again");
                    }
                    self.down = false;
                    // A node whose long-poll slots are all taken answers at once;
                    // do not turn that into a busy loop.
                    if messages.is_empty() && !wait.is_zero() && asked.elapsed() < wait / 4 {
                        std::thread::sleep(Duration::from_millis(500));
                    }
                    return Ok((messages, next));
                }
                Err(Failure::Permanent(e)) => return Err(e),
                Err(Failure::Transient(e)) => {
                    if !self.patient {
                        return Err(e);
                    }
                    if !self.down {
                        crate::note!("{e:#}");
                        crate::note!("waiting for the node; every message will still be handled");
                    }
                    self.down = true;
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_RECONNECT);
                }
            }
        }
    }
}
