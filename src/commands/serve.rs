//! `dshare serve`: resolve the settings and run a node ([`crate::node`]) until SIGINT
//! or SIGTERM; SIGHUP re-reads the config file for the settings that can change live
//! ([`crate::config::LIVE_KEYS`]).

use anyhow::Result;

use crate::cli::ServeArgs;
use crate::config::{ConfigFile, ServeSettings};
use crate::exit::Code;
use crate::home::Home;

use super::Output;

pub fn run(
    home: &Home,
    args: &ServeArgs,
    out: Output,
    matches: Option<&clap::ArgMatches>,
) -> Result<Code> {
    // Flags and environment as at start still win over the file at a reload.
    let cli = args.settings(matches);
    let resolve = || ServeSettings::resolve(&cli, &ConfigFile::load(home.dir())?);
    let settings = resolve()?;
    if args.print_config {
        return print_config(&settings, home, out);
    }
    crate::node::run(home, &settings, resolve)?;
    Ok(Code::Success)
}

/// `serve --print-config`: each setting, its value, and where it came from.
fn print_config(settings: &ServeSettings, home: &Home, out: Output) -> Result<Code> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    for (key, value, source) in settings.rows() {
        if out.json {
            let row = serde_json::json!({"key": key, "value": value, "source": source});
            writeln!(stdout, "{row}")?;
        } else {
            let shown = match &value {
                serde_json::Value::Null => "-".to_string(),
                serde_json::Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            writeln!(stdout, "{key:<16} {shown:<40} {}", source.name())?;
        }
    }
    if !out.json && !out.quiet {
        let path = home.dir().join(crate::config::FILE_NAME);
        crate::note!(
            "config file {} ({}); a flag overrides its environment variable, which overrides the file",
            path.display(),
            if settings.file.is_some() {
                "read"
            } else {
                "none"
            }
        );
    }
    Ok(Code::Success)
}
