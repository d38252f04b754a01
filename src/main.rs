//! The `dshare` binary: parse, run, print any error once, exit with its code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = dshare::cli::Cli::parse();
    match dshare::commands::run(cli) {
        Ok(code) => code.into(),
        Err(err) => dshare::exit::report(&err).into(),
    }
}
