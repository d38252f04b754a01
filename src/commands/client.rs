//! `dshare client`: issue, list and revoke client keys.

use anyhow::{Result, bail};

use crate::cli::ClientCommand;
use crate::exit::Code;
use crate::home::Home;
use crate::seal::key_id;
use crate::secret::Secret;

use super::Output;

pub fn run(home: &Home, cmd: &ClientCommand, out: Output) -> Result<Code> {
    let mut clients = home.clients()?;
    match cmd {
        ClientCommand::Add { name, url } => {
            if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
                bail!("a client name is 1 to 64 printable characters");
            }
            if clients.iter().any(|(n, _)| n == name) {
                bail!("a client named {name:?} exists; revoke it first or choose another name");
            }
            let url = match url {
                Some(u) => crate::node_url::NodeUrl::parse(u)?.into(),
                None => super::peers::advertised(home)?,
            };
            let key = Secret::random();
            clients.push((name.clone(), key.clone()));
            home.write_clients(&clients)?;
            println!("{}", crate::invite::format_client(&key, &url));
            out.note(format!(
                "issued client key {} to {name:?}; pass the line to `dshare send --client` or set DSHARE_CLIENT",
                key_id(&key)
            ));
        }
        ClientCommand::List => {
            for (name, key) in &clients {
                if out.json {
                    println!("{}", serde_json::json!({ "name": name, "id": key_id(key) }));
                } else {
                    println!("{}  {name}", key_id(key));
                }
            }
        }
        ClientCommand::Revoke { name } => {
            let before = clients.len();
            clients.retain(|(n, _)| n != name);
            if clients.len() == before {
                bail!("no client named {name:?}; `dshare client list` shows them");
            }
            home.write_clients(&clients)?;
            out.note(format!("revoked {name:?}"));
        }
    }
    Ok(Code::Success)
}
