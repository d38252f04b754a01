//! The most common command line, `dshare [--home DIR] [-q] [--json] send WORDS…`,
//! recognised without clap.
//!
//! `dshare send` is called from scripts, once per event, and its latency is mostly
//! process start-up. Building clap's definition of every command and flag, which
//! parsing any command line needs, took about 0.15 ms of that. This takes a strict
//! subset of what clap accepts and gives up on anything else, returning `None` so that
//! clap parses as always: another command, any other flag (`--wait`, `--node`, `-h`…),
//! a flag given twice, a word after `send` that starts with `-` (other than `-` itself),
//! an argument that is not UTF-8, an empty `--home` or `DSHARE_HOME`, or a variable
//! that `send` reads being set (`DSHARE_NODE`, `DSHARE_TOKEN`, `DSHARE_CLIENT`, `DSHARE_SPOOL`). What
//! it accepts, it parses exactly as clap does; the tests check both against each other,
//! and fail when the global or `send` flags change without this file.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use super::{Cli, Command, LogFormat, NodeArgs, SendArgs, SpoolArgs};

/// Variables that would change what `send` does (or how it reports); when one is set,
/// clap decides.
const SEND_ENV: [&str; 7] = [
    "DSHARE_NODE",
    "DSHARE_TOKEN",
    "DSHARE_TOKEN_FILE",
    "DSHARE_CLIENT",
    "DSHARE_CLIENT_FILE",
    "DSHARE_SPOOL",
    "DSHARE_LOG_FORMAT",
];

/// `send --timeout`'s default (only `--wait` uses it).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `--spool-limit`'s default, 16M.
const DEFAULT_SPOOL_LIMIT: u64 = 16 << 20;

/// The parsed command line if `args` (program name first) is a plain `send`; `env`
/// reads an environment variable.
pub fn send(args: &[OsString], env: impl Fn(&str) -> Option<OsString>) -> Option<Cli> {
    if SEND_ENV.iter().any(|name| env(name).is_some()) {
        return None;
    }
    let mut args = args.iter().skip(1).map(|a| a.to_str());
    let (mut home, mut json, mut quiet) = (None, false, false);
    // The global flags, up to `send`.
    loop {
        match args.next()?? {
            "send" => break,
            "-q" | "--quiet" if !quiet => quiet = true,
            "--json" if !json => json = true,
            "--home" if home.is_none() => home = Some(path(args.next()??)?),
            arg => match arg.strip_prefix("--home=") {
                Some(dir) if home.is_none() => home = Some(path(dir)?),
                _ => return None,
            },
        }
    }
    let text = args
        .map(|word| word.filter(|w| *w == "-" || !w.starts_with('-')))
        .map(|word| word.map(str::to_string))
        .collect::<Option<Vec<_>>>()?;
    let home = match home {
        Some(dir) => Some(dir),
        None => match env("DSHARE_HOME") {
            Some(dir) if dir.is_empty() => return None,
            dir => dir.map(PathBuf::from),
        },
    };
    Some(Cli {
        home,
        json,
        quiet,
        log_format: LogFormat::Text,
        command: Command::Send(SendArgs {
            text,
            wait: None,
            client: None,
            client_file: None,
            timeout: DEFAULT_TIMEOUT,
            key: None,
            spool: SpoolArgs {
                dir: None,
                spool_limit: DEFAULT_SPOOL_LIMIT,
            },
            node: NodeArgs {
                node: None,
                token: None,
                token_file: None,
            },
        }),
    })
}

/// A `--home` value as clap takes it: not empty, not something that looks like a flag.
fn path(value: &str) -> Option<PathBuf> {
    (!value.is_empty() && !value.starts_with('-')).then(|| PathBuf::from(value))
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    use clap::{CommandFactory, FromArgMatches};
    use proptest::prelude::*;

    use super::super::Cli;

    fn real_env(name: &str) -> Option<OsString> {
        std::env::var_os(name)
    }

    fn argv(words: &[&str]) -> Vec<OsString> {
        std::iter::once("dshare")
            .chain(words.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// What clap makes of `args`, as text (`Cli` has no `PartialEq`), or its error.
    fn by_clap(args: &[OsString]) -> Result<String, String> {
        let matches = Cli::command()
            .try_get_matches_from(args)
            .map_err(|e| e.to_string())?;
        let cli = Cli::from_arg_matches(&matches).map_err(|e| e.to_string())?;
        Ok(format!("{cli:?}"))
    }

    /// Whenever the fast path takes a command line, clap takes it too, the same way.
    fn agrees_with_clap(args: &[OsString]) -> bool {
        let Some(fast) = super::send(args, real_env) else {
            return false;
        };
        assert_eq!(
            by_clap(args),
            Ok(format!("{fast:?}")),
            "the fast path and clap differ on {args:?}"
        );
        true
    }

    #[test]
    fn plain_sends_take_the_fast_path_as_clap_would() {
        if super::SEND_ENV.iter().any(|name| real_env(name).is_some()) {
            return; // The fast path rightly stands aside; nothing to compare.
        }
        for words in [
            &["send", "hello"][..],
            &["send"],
            &["send", "-"],
            &["-q", "send", "two", "words"],
            &["--home", "/tmp/h", "-q", "--json", "send", "x"],
            &["--json", "--home=/tmp/h", "--quiet", "send", "a", "-", "b"],
            &["--home", "send", "send", "help"],
            &["send", "help"],
            &["send", "héllo wörld", "a=b", "+1"],
        ] {
            assert!(agrees_with_clap(&argv(words)), "{words:?} is a plain send");
        }
    }

    #[test]
    fn anything_else_is_left_to_clap() {
        for words in [
            &[][..],
            &["serve"],
            &["send", "--wait", "all", "x"],
            &["send", "-q", "x"],
            &["send", "--", "-x"],
            &["send", "-5"],
            &["send", "--node", "http://127.0.0.1:1", "x"],
            &["-q", "-q", "send", "x"],
            &["--home", "/a", "--home", "/b", "send", "x"],
            &["--home", "", "send", "x"],
            &["--home=", "send", "x"],
            &["--home", "-q", "send", "x"],
            &["--home"],
            &["-h"],
            &["--version"],
            &["-qj", "send", "x"],
            &["sen", "x"],
            &["--log-format", "json", "send", "x"],
            &["--log-format=json", "send", "x"],
        ] {
            assert!(super::send(&argv(words), real_env).is_none(), "{words:?}");
        }
        let not_utf8 = OsString::from_vec(vec![b'h', 0xff]);
        let args = vec!["dshare".into(), "send".into(), not_utf8];
        assert!(super::send(&args, real_env).is_none());
        let with_node = |name: &str| (name == "DSHARE_NODE").then(|| "http://x:1".into());
        assert!(super::send(&argv(&["send", "x"]), with_node).is_none());
        let empty_home = |name: &str| (name == "DSHARE_HOME").then(OsString::new);
        assert!(super::send(&argv(&["send", "x"]), empty_home).is_none());
        let json_logs = |name: &str| (name == "DSHARE_LOG_FORMAT").then(|| "json".into());
        assert!(super::send(&argv(&["send", "x"]), json_logs).is_none());
    }

    #[test]
    fn dshare_home_counts_unless_home_is_given() {
        let home = |name: &str| (name == "DSHARE_HOME").then(|| "/from/env".into());
        let cli = super::send(&argv(&["send", "x"]), home).unwrap();
        assert_eq!(cli.home, Some("/from/env".into()));
        let cli = super::send(&argv(&["--home", "/flag", "send", "x"]), home).unwrap();
        assert_eq!(cli.home, Some("/flag".into()));
    }

    /// The fast path knows every global flag and every `send` flag by name: a new one
    /// (or a new variable) must be taught to it, or it would ignore it.
    #[test]
    fn the_fast_path_knows_every_global_and_send_flag() {
        let cmd = Cli::command();
        let describe = |c: &clap::Command| -> Vec<String> {
            c.get_arguments()
                .map(|a| {
                    format!(
                        "{} {:?} {:?} {:?}",
                        a.get_id(),
                        a.get_long(),
                        a.get_short(),
                        a.get_env()
                    )
                })
                .collect()
        };
        assert_eq!(
            describe(&cmd),
            [
                r#"home Some("home") None Some("DSHARE_HOME")"#,
                r#"json Some("json") None None"#,
                r#"quiet Some("quiet") Some('q') None"#,
                r#"log_format Some("log-format") None Some("DSHARE_LOG_FORMAT")"#,
            ],
            "a global flag changed: teach src/cli/fast.rs about it"
        );
        let send = cmd.find_subcommand("send").unwrap();
        assert_eq!(
            describe(send),
            [
                "text None None None",
                r#"wait Some("wait") None None"#,
                r#"client Some("client") None Some("DSHARE_CLIENT")"#,
                r#"client_file Some("client-file") None Some("DSHARE_CLIENT_FILE")"#,
                r#"timeout Some("timeout") None None"#,
                r#"key Some("key") None None"#,
                r#"dir Some("spool") None Some("DSHARE_SPOOL")"#,
                r#"spool_limit Some("spool-limit") None None"#,
                r#"node Some("node") None Some("DSHARE_NODE")"#,
                r#"token Some("token") None Some("DSHARE_TOKEN")"#,
                r#"token_file Some("token-file") None Some("DSHARE_TOKEN_FILE")"#,
            ],
            "a send flag changed: teach src/cli/fast.rs about it"
        );
        let timeout = send.get_arguments().find(|a| a.get_id() == "timeout");
        let default = timeout.unwrap().get_default_values();
        assert_eq!(default, ["10s"], "send --timeout's default changed");
        let limit = send.get_arguments().find(|a| a.get_id() == "spool_limit");
        let default = limit.unwrap().get_default_values();
        assert_eq!(default, ["16M"], "send --spool-limit's default changed");
    }

    /// Global flags (and things that are not), `send`, then words (and flags).
    fn command_lines() -> impl Strategy<Value = Vec<&'static str>> {
        let before = prop::sample::select(vec![
            "-q",
            "--quiet",
            "--json",
            "--home",
            "/h",
            "--home=/h",
            "--home=",
            "",
            "-x",
            "send",
            "serve",
            "-V",
        ]);
        let after = prop::sample::select(vec![
            "hi", "", "-", "help", "send", "/h", "all", "--", "-x", "-q", "--wait", "--node",
        ]);
        (
            prop::collection::vec(before, 0..5),
            prop::collection::vec(after, 0..5),
        )
            .prop_map(|(mut words, after)| {
                words.push("send");
                words.extend(after);
                words
            })
    }

    proptest! {
        /// Whatever the fast path takes, clap takes the same way.
        #[test]
        fn any_mix_of_flags_and_words_agrees_with_clap(words in command_lines()) {
            let _ = agrees_with_clap(&argv(&words));
        }
    }
}
