//! The `dshare` binary: parse, run, print any error once, exit with its code.

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    // The matches too, not only the parsed values: `serve` asks them whether a setting
    // came from a flag, the environment or a default (its config file sits between).
    let matches = dshare::cli::Cli::command().get_matches();
    let cli = dshare::cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    match dshare::commands::run(cli, &matches) {
        Ok(code) => code.into(),
        Err(err) => dshare::exit::report(&err).into(),
    }
}
