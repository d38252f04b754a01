//! The one-line invite: the network key and an address to start from.

use anyhow::{Context, Result, bail};

use crate::secret::Secret;

const PREFIX: &str = "dshare1:";

/// `dshare1:<network key hex>@<url>`. It holds the network key: whoever has it can
/// join, read and post.
pub fn format(key: &Secret, url: &str) -> String {
    format!("{PREFIX}{}@{url}", key.expose_hex())
}

/// The network key and bootstrap address of an invite.
pub fn parse(invite: &str) -> Result<(Secret, String)> {
    let rest = invite.trim().strip_prefix(PREFIX).with_context(|| {
        format!("an invite starts with {PREFIX}; print one with `dshare invite` on a member")
    })?;
    let Some((key, url)) = rest.split_once('@') else {
        bail!("the invite has no address after its key (expected dshare1:KEY@http://HOST:PORT)");
    };
    let key = Secret::from_hex(key).context("the invite's key is not 64 lowercase hex digits")?;
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
    }
}
