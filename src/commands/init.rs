//! `dshare init`: create a home, for a new network or to join one.

use anyhow::{Context, Result};

use crate::exit::Code;
use crate::home::Home;
use crate::replicate::peers::PeerTable;

use super::Output;

pub fn run(home: &Home, join: Option<&str>, out: Output) -> Result<Code> {
    let Some(invite) = join else {
        home.init(None)?;
        print_json(home, None, out)?;
        out.note(format!(
            "created a new network in {} (author {})",
            home.dir().display(),
            home.identity()?.author()
        ));
        return Ok(Code::Success);
    };
    let (key, url) = crate::invite::parse(invite).context("cannot use that invite")?;
    home.init(Some(&key))?;
    PeerTable::load(home.peers_path()).add(&url);
    print_json(home, Some(&url), out)?;
    out.note(format!(
        "joined the network of {url} in {} (author {}); start the node with `dshare serve`",
        home.dir().display(),
        home.identity()?.author()
    ));
    Ok(Code::Success)
}

/// With `--json`: the new home, its author id, and the node it joined (if any).
fn print_json(home: &Home, joined: Option<&str>, out: Output) -> Result<()> {
    if out.json {
        let value = serde_json::json!({
            "home": home.dir(),
            "author": home.identity()?.author(),
            "joined": joined,
        });
        println!("{value}");
    }
    Ok(())
}
