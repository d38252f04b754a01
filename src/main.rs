//! The `dshare` binary: parse, run, print any error once, exit with its code.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use dshare::cli::Cli;

fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().collect();
    let outcome = match dshare::cli::fast::send(&args, |name| std::env::var_os(name)) {
        // A plain `dshare send`, parsed without building clap's tree of every command.
        Some(cli) => dshare::commands::run(cli, &clap::ArgMatches::default()),
        None => {
            // The matches too, not only the parsed values: `serve` asks them whether a
            // setting came from a flag, the environment or a default (its config file
            // sits between).
            let matches = Cli::command().get_matches_from(args);
            let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
            dshare::commands::run(cli, &matches)
        }
    };
    match outcome {
        Ok(code) => code.into(),
        Err(err) => dshare::exit::report(&err).into(),
    }
}
