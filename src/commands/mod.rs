//! One module per subcommand, each thin: resolve the home, call the core, render.

mod doctor;
mod generate;
mod init;
mod log;
mod peers;
mod send;
mod serve;
mod verify;

use anyhow::Result;

use crate::cli::{Cli, Command};
use crate::exit::Code;
use crate::home::Home;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<Code> {
    let home = Home::resolve(cli.home)?;
    let out = Output {
        json: cli.json,
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Serve(args) => serve::run(&home, &args, out),
        Command::Send(args) => send::run(&home, &args, out),
        Command::Log(args) => log::run(&home, &args, out),
        Command::Peers(args) => peers::run(&home, &args, out),
        Command::Verify(args) => verify::run(&home, &args, out),
        Command::Doctor(args) => doctor::run(&home, &args, out),
        Command::Invite(args) => {
            let url = match args.url {
                Some(u) => crate::net::client::check_url(&u)?,
                None => peers::advertised(&home)?,
            };
            println!("{}", crate::invite::format(&home.network_key()?, &url));
            Ok(Code::Success)
        }
        Command::Web => {
            let url = home.node_url()?;
            println!("{url}/?token={}", home.token()?.expose_hex());
            Ok(Code::Success)
        }
        Command::Init(args) => init::run(&home, args.join.as_deref(), out),
        Command::Id => {
            println!("{}", home.identity()?.author());
            Ok(Code::Success)
        }
        Command::Generate(args) => generate::run(&args.out),
    }
}

/// The global output switches.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
}

impl Output {
    /// A line for people on stderr, unless `-q`.
    pub fn note(&self, text: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("dshare: {}", text.as_ref());
        }
    }
}
