//! One-line credentials: the invite (network key and an address to start from) and
//! the client key line (a revocable key for sending to one node from elsewhere).

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

const PREFIX: &str = "dshare1:";
const CLIENT_PREFIX: &str = "dshare-client1:";

/// `dshare1:<network key hex>@<url>#<check>`. It holds the network key: whoever has
/// it can join, read and post. The check (8 hex digits) catches a line damaged on its
/// way (a changed digit, a cut port) before it makes a node that talks to nobody.
pub fn format(key: &Secret, url: &str) -> String {
    with_check(&format!("{PREFIX}{}@{url}", key.expose_hex()))
}

/// The network key and bootstrap address of an invite.
pub fn parse(invite: &str) -> Result<(Secret, String)> {
    parse_line(invite, PREFIX, "an invite", "`dshare invite` on a member")
}

/// `dshare-client1:<client key hex>@<node url>`: what `dshare client add` prints and
/// `dshare send --client` (or `DSHARE_CLIENT`) takes.
pub fn format_client(key: &Secret, url: &str) -> String {
    with_check(&format!("{CLIENT_PREFIX}{}@{url}", key.expose_hex()))
}

/// The first 4 bytes of SHA-256 over the line, in hex: a typo or a cut has a 1 in 4
/// billion chance of passing.
fn check_of(line: &str) -> String {
    let digest = Sha256::digest(format!("dshare line check\n{line}").as_bytes());
    crate::hex::encode(&digest[..4])
}

fn with_check(line: &str) -> String {
    format!("{line}#{}", check_of(line))
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
    let line = line.trim();
    // Lines made before the check was added have none, and are taken as they are.
    let line = match line.rsplit_once('#') {
        Some((body, check)) => {
            if check != check_of(body) {
                bail!(
                    "this is not {what} as printed: its check does not match (a character changed, or the line was cut); copy it again whole from {source}"
                );
            }
            body
        }
        None => line,
    };
    let rest = line
        .strip_prefix(prefix)
        .with_context(|| format!("{what} starts with {prefix}; print one with {source}"))?;
    let Some((key, url)) = rest.split_once('@') else {
        bail!("{what} has no address after its key (expected {prefix}KEY@http://HOST:PORT)");
    };
    let key = Secret::from_hex(key)
        .with_context(|| format!("the key in {what} is not 64 lowercase hex digits"))?;
    let url = crate::node_url::NodeUrl::parse(url)?.into();
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

    #[test]
    fn a_changed_digit_or_a_cut_is_refused_by_the_check() {
        let key = Secret::random();
        let line = format(&key, "http://10.1.2.3:7070");
        let body = line.rsplit_once('#').unwrap().0;
        // One key digit changed: still 64 hex digits, so only the check can tell.
        let at = PREFIX.len() + 5;
        let digit = if &line[at..=at] == "0" { "1" } else { "0" };
        let typo = format!("{}{digit}{}", &line[..at], &line[at + 1..]);
        let err = parse(&typo).unwrap_err().to_string();
        assert!(err.contains("check does not match"), "{err}");
        // The port cut short.
        let cut = line.replace(":7070", ":707");
        assert!(parse(&cut).is_err());
        // A line without a check (made by an older version) is still read.
        assert_eq!(parse(body).unwrap().0, key);
        let client = format_client(&key, "http://h:1");
        let typo = client.replacen("http://h:1", "http://h:2", 1);
        assert!(parse_client(&typo).is_err());
    }
}
