//! One module per subcommand, each thin: resolve the home, call the core, render.

pub(crate) mod archive;
mod client;
mod doctor;
mod generate;
mod init;
mod keys;
mod log;
mod peers;
pub(crate) mod run;
mod send;
mod serve;
mod testnet;
mod verify;

pub use crate::time::span;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::exit::Code;
use crate::home::Home;

/// Runs the parsed command line; `matches` tells where each value came from.
pub fn run(cli: Cli, matches: &clap::ArgMatches) -> Result<Code> {
    crate::diag::init(crate::diag::Settings {
        format: cli.log_format.into(),
        notes: if cli.quiet {
            crate::diag::Notes::Silenced
        } else {
            crate::diag::Notes::Shown
        },
    });
    let home = Home::resolve(cli.home)?;
    let out = Output {
        json: cli.json,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Serve(args) => serve::run(&home, &args, out, matches.subcommand_matches("serve")),
        Command::Send(args) => send::run(&home, &args, out),
        Command::Log(args) => log::run(&home, &args, out),
        Command::Run(args) => run::run(&home, &args, out),
        Command::Spool(cmd) => run::spool(&home, &cmd, out),
        Command::Peers(args) => peers::run(&home, &args, out),
        Command::Verify(args) => verify::run(&home, &args, out),
        Command::Archive(args) => archive::run(&home, &args, out),
        Command::Doctor(args) => doctor::run(&home, &args, out),
        Command::Invite(args) => {
            let url = match args.url {
                Some(u) => crate::node_url::NodeUrl::parse(&u)?.into(),
                None => peers::advertised(&home)?,
            };
            let primary = home.keyring()?.swap_remove(0);
            let invite = crate::invite::format(&primary, &url);
            print_data(
                out,
                &invite,
                || serde_json::json!({"invite": invite, "url": url}),
            );
            Ok(Code::Success)
        }
        Command::Web => {
            let node = crate::net::client::home_node_url(&home, None)?;
            let url = format!("{node}/?token={}", home.token()?.expose_hex());
            print_data(out, &url, || serde_json::json!({"url": url}));
            Ok(Code::Success)
        }
        Command::Init(args) => init::run(&home, args.join.as_deref(), out),
        Command::Id => {
            let id = home.identity()?.author().to_hex();
            print_data(out, &id, || serde_json::json!({"id": id}));
            Ok(Code::Success)
        }
        Command::Keys(cmd) => keys::run(&home, &cmd, out),
        Command::Client(cmd) => client::run(&home, &cmd, out),
        Command::Testnet(args) => testnet::run(&args, out),
        Command::Generate(args) => generate::run(&args.out),
    }
}

/// Prints one datum: the text, or with `--json` the object `json` makes.
fn print_data(out: Output, text: &str, json: impl FnOnce() -> serde_json::Value) {
    if out.json {
        println!("{}", json());
    } else {
        println!("{text}");
    }
}

/// The global switches for what goes to stdout: data as `--json`, or nothing on
/// success with `-q`. Diagnostics on stderr follow [`crate::diag`] instead.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

impl Output {
    /// A note for people on stderr, through [`crate::diag`] (so `-q` silences it and
    /// `--log-format` shapes it).
    pub fn note(&self, text: impl AsRef<str>) {
        crate::note!("{}", text.as_ref());
    }
}
