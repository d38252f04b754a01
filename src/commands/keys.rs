//! `dshare keys`: the network keyring, for rotating the network key without downtime.

use anyhow::{Result, bail};

use crate::cli::KeysCommand;
use crate::exit::Code;
use crate::home::Home;
use crate::seal::key_id;
use crate::secret::Secret;

use super::Output;

pub fn run(home: &Home, cmd: &KeysCommand, out: Output) -> Result<Code> {
    let mut keys = home.keyring()?;
    match cmd {
        KeysCommand::List => {
            for (i, k) in keys.iter().enumerate() {
                let role = if i == 0 { "primary" } else { "accepted" };
                if out.json {
                    println!(
                        "{}",
                        serde_json::json!({ "id": key_id(k), "primary": i == 0 })
                    );
                } else {
                    println!("{}  {role}", key_id(k));
                }
            }
            return Ok(Code::Success);
        }
        KeysCommand::New => {
            let key = Secret::random();
            keys.push(key.clone());
            home.write_keyring(&keys)?;
            // Printed because it was asked for: it must reach the other nodes.
            println!("{}", key.expose_hex());
            out.note(format!(
                "holding new key {} beside the others; install it on every node, then `dshare keys use {}` everywhere",
                key_id(&key),
                key_id(&key)
            ));
        }
        KeysCommand::Install { key } => {
            let Some(key) = Secret::from_hex(key.trim()) else {
                bail!("a network key is 64 lowercase hex digits (as `dshare keys new` prints)");
            };
            if keys.contains(&key) {
                out.note(format!("key {} is already held", key_id(&key)));
                return Ok(Code::Success);
            }
            keys.push(key.clone());
            home.write_keyring(&keys)?;
            out.note(format!("holding key {}", key_id(&key)));
        }
        KeysCommand::Use { key } => {
            let at = find(&keys, key)?;
            let chosen = keys.remove(at);
            keys.insert(0, chosen);
            home.write_keyring(&keys)?;
            out.note(format!("sealing with key {} from now on", key_id(&keys[0])));
        }
        KeysCommand::Remove { key } => {
            let at = find(&keys, key)?;
            if at == 0 {
                bail!(
                    "key {} is the one in use; `dshare keys use` another key first",
                    key_id(&keys[0])
                );
            }
            let gone = keys.remove(at);
            home.write_keyring(&keys)?;
            out.note(format!("no longer holding key {}", key_id(&gone)));
        }
    }
    Ok(Code::Success)
}

/// The position of a key named by its id or by the key itself.
fn find(keys: &[Secret], name: &str) -> Result<usize> {
    let name = name.trim();
    keys.iter()
        .position(|k| key_id(k) == name || k.expose_hex() == name)
        .ok_or_else(|| {
            anyhow::anyhow!("no key {name:?} is held here; `dshare keys list` shows them")
        })
}
