//! A node's address, `http://HOST:PORT`: checked once where it comes in (a flag, an invite, a peer list), below every layer that takes one.

use std::fmt;
use std::str::FromStr;

use anyhow::{Context, Result, bail};

/// `http://HOST:PORT` without a trailing slash, path, query or credentials.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeUrl(String);

impl NodeUrl {
    /// Accepts `http://HOST:PORT` (with an optional trailing slash), refusing anything
    /// else with a message that shows the expected form.
    pub fn parse(url: &str) -> Result<NodeUrl> {
        let trimmed = url.trim_end_matches('/');
        let rest = trimmed.strip_prefix("http://").with_context(|| {
            format!("{url:?} is not a node URL: expected http://HOST:PORT (for example http://127.0.0.1:7070)")
        })?;
        if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
            bail!("{url:?} is not a node URL: expected http://HOST:PORT with no path");
        }
        Ok(NodeUrl(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `HOST:PORT`, as an HTTP request's authority.
    pub fn authority(&self) -> &str {
        self.0.strip_prefix("http://").unwrap_or(&self.0)
    }
}

impl From<NodeUrl> for String {
    fn from(url: NodeUrl) -> String {
        url.0
    }
}

impl FromStr for NodeUrl {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<NodeUrl> {
        NodeUrl::parse(s)
    }
}

impl fmt::Display for NodeUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::NodeUrl;

    #[test]
    fn only_a_bare_http_host_and_port_is_a_node_url() {
        let url = NodeUrl::parse("http://127.0.0.1:7070/").unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:7070");
        assert_eq!(url.authority(), "127.0.0.1:7070");
        for bad in [
            "127.0.0.1:7070",
            "https://a:1",
            "http://",
            "http://a:1/path",
            "http://a:1?q",
            "http://u@a:1",
            "http://a :1",
        ] {
            assert!(NodeUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
