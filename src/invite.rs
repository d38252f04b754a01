//! One-line credentials: the invite (network key and an address to start from) and
//! the client key line (a revocable key for sending to one node from elsewhere).

use anyhow::{Context, Result, bail};

use crate::secret::Secret;

const PREFIX: &str = "dshare1:";
const CLIENT_PREFIX: &str = "dshare-client1:";

/// `dshare1:<network key hex>@<url>`. It holds the network key: whoever has it can
/// join, read and post.
pub fn format(key: &Secret, url: &str) -> String {
    format!("{PREFIX}{}@{url}", key.expose_hex())
}

/// The network key and bootstrap address of an invite.
pub fn parse(invite: &str) -> Result<(Secret, String)> {
    parse_line(invite, PREFIX, "an invite", "`dshare invite` on a member")
}

/// `dshare-client1:<client key hex>@<node url>`: what `dshare client add` prints and
/// `dshare send --client` (or `DSHARE_CLIENT`) takes.
pub fn format_client(key: &Secret, url: &str) -> String {
    format!("{CLIENT_PREFIX}{}@{url}", key.expose_hex())
}

pub fn parse_client(line: &str) -> Result<(Secret, String)> {
    parse_line(
        line,
        CLIENT_PREFIX,
        "a client key line",
        "`dshare client add NAME` on the node",
    )
}

fn parse_line(line: &str, prefix: &str, what: &str, source: &str) -> Result<(Secret, String)> {
    let rest = line
        .trim()
        .strip_prefix(prefix)
        .with_context(|| format!("{what} starts with {prefix}; print one with {source}"))?;
    let Some((key, url)) = rest.split_once('@') else {
        bail!("{what} has no address after its key (expected {prefix}KEY@http://HOST:PORT)");
    };
    let key = Secret::from_hex(key)
        .with_context(|| format!("the key in {what} is not 64 lowercase hex digits"))?;
    let url = crate::net::client::check_url(url)?;
    Ok((key, url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_damage() {
        let key = Secret::random();
        let line = format(&key, "http://10.1.2.3:7070");
        let (k, url) = parse(&line).unwrap();
        assert_eq!(k, key);
        assert_eq!(url, "http://10.1.2.3:7070");
        assert!(parse("dshare2:abc@http://x:1").is_err());
        assert!(parse(&line.replace('@', "#")).is_err());
        assert!(parse(&line[..20]).is_err());
        let client = format_client(&key, "http://h:1");
        assert_eq!(parse_client(&client).unwrap().0, key);
        assert!(parse(&client).is_err(), "a client line is not an invite");
    }
}
