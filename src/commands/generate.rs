//! `dshare generate`: man pages and shell completions from the clap definition.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use clap::builder::PossibleValuesParser;
use clap::{Arg, Command, CommandFactory, ValueHint};
use clap_complete::Shell;

use crate::cli::Cli;
use crate::exit::Code;

pub fn run(out: &Path) -> Result<Code> {
    let man = out.join("man");
    let completions = out.join("completions");
    fs::create_dir_all(&man).with_context(|| format!("cannot create {}", man.display()))?;
    fs::create_dir_all(&completions)
        .with_context(|| format!("cannot create {}", completions.display()))?;
    for (name, page) in man_pages()? {
        fs::write(man.join(&name), page).with_context(|| format!("cannot write man/{name}"))?;
    }
    for (name, script) in completion_scripts() {
        fs::write(completions.join(&name), script)
            .with_context(|| format!("cannot write completions/{name}"))?;
    }
    Ok(Code::Success)
}

/// The command line as documented: globals copied onto every command (a man page for
/// `dshare send` lists `--home` too) and no `help` command (there is no page for it;
/// `--help` works on every command).
fn documented() -> Command {
    let mut cmd = Cli::command()
        .disable_help_subcommand(true)
        .after_help(None::<&'static str>);
    cmd.build();
    cmd
}

/// `(file name, roff)` for `dshare.1` and one `dshare-COMMAND.1` per visible command.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let cmd = documented();
    let mut pages = Vec::new();
    let mut top = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut top)?;
    top.extend_from_slice(environment_section(&cmd, true).as_bytes());
    top.extend_from_slice(EXIT_STATUS_SECTION.as_bytes());
    top.extend_from_slice(examples_section("dshare").as_bytes());
    pages.push(("dshare.1".to_string(), top));
    add_pages(&cmd, "dshare", "dshare", &mut pages)?;
    Ok(pages)
}

/// A page per visible subcommand of `parent` (page `PAGE-NAME`, typed `TYPED NAME`),
/// and, below it, per subcommand of its own: a page lists its subcommands as
/// `PAGE-NAME(1)`, so each of them needs one.
fn add_pages(
    parent: &Command,
    page: &str,
    typed: &str,
    pages: &mut Vec<(String, Vec<u8>)>,
) -> Result<()> {
    for sub in parent.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("{page}-{}", sub.get_name());
        // The page is named dshare-send(1); the command people type is `dshare send`.
        let typed = format!("{typed} {}", sub.get_name());
        let sub = sub
            .clone()
            .name(name.clone())
            .display_name(name.clone())
            .bin_name(typed.clone());
        let mut roff = Vec::new();
        clap_mangen::Man::new(sub.clone()).render(&mut roff)?;
        if name == "dshare-verify" {
            roff.extend_from_slice(FORMAT_SECTION.as_bytes());
        }
        roff.extend_from_slice(environment_section(&sub, false).as_bytes());
        roff.extend_from_slice(EXIT_STATUS_SECTION.as_bytes());
        roff.extend_from_slice(examples_section(&name).as_bytes());
        pages.push((format!("{name}.1"), roff));
        add_pages(&sub, &name, &typed, pages)?;
    }
    Ok(())
}

/// `(file name, script)` for bash, zsh, fish, elvish and PowerShell.
pub fn completion_scripts() -> Vec<(String, Vec<u8>)> {
    [
        Shell::Bash,
        Shell::Zsh,
        Shell::Fish,
        Shell::Elvish,
        Shell::PowerShell,
    ]
    .into_iter()
    .map(|shell| {
        let mut cmd = completed();
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut cmd, "dshare", &mut script);
        let name = match shell {
            Shell::Bash => "dshare.bash".to_string(),
            Shell::Zsh => "_dshare".to_string(),
            Shell::Fish => "dshare.fish".to_string(),
            Shell::Elvish => "dshare.elv".to_string(),
            _ => "_dshare.ps1".to_string(),
        };
        (name, script)
    })
    .collect()
}

/// The command line as the shells complete it: without the hidden commands (the
/// generators list them all), and with each value completed as what it is.
fn completed() -> Command {
    let full = Cli::command();
    let cmd = Command::new("dshare")
        .version(env!("CARGO_PKG_VERSION"))
        .propagate_version(true)
        .about(full.get_about().cloned().unwrap_or_default())
        .args(full.get_arguments().cloned())
        .subcommands(full.get_subcommands().filter(|s| !s.is_hide_set()).cloned());
    with_value_hints(cmd)
}

fn with_value_hints(cmd: Command) -> Command {
    cmd.mut_args(value_hint).mut_subcommands(with_value_hints)
}

/// What a shell should offer for `arg`'s value: its words for `--wait` and `--from`,
/// file names only where a value is a path, a command line for hooks, and nothing
/// (rather than file names) for a number, a duration, a URL or an id.
fn value_hint(arg: Arg) -> Arg {
    if !arg.get_action().takes_values()
        || arg.get_value_hint() != ValueHint::Unknown
        || !arg.get_possible_values().is_empty()
    {
        return arg;
    }
    let name = arg
        .get_value_names()
        .and_then(|names| names.first())
        .map(|n| n.as_str().to_string())
        .unwrap_or_default();
    match name.as_str() {
        "all|N" => arg.value_parser(PossibleValuesParser::new(["all"])),
        "now|start|ID" => arg.value_parser(PossibleValuesParser::new(["now", "start"])),
        "DIR" => arg.value_hint(ValueHint::DirPath),
        "PATH" => arg.value_hint(ValueHint::FilePath),
        "CMD" => arg.value_hint(ValueHint::CommandString),
        _ => arg.value_hint(ValueHint::Other),
    }
}

/// A roff ENVIRONMENT section: the variables `cmd` reads (for the top page, every
/// command's), each with the option it stands for.
fn environment_section(cmd: &Command, every_command: bool) -> String {
    let mut vars: Vec<(String, String, String)> = Vec::new();
    let mut add = |c: &Command| {
        for arg in c.get_arguments() {
            let (Some(var), Some(long)) = (arg.get_env(), arg.get_long()) else {
                continue;
            };
            let var = var.to_string_lossy().to_string();
            if vars.iter().any(|(v, _, _)| *v == var) {
                continue;
            }
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            vars.push((var, format!("--{long}"), help));
        }
    };
    add(cmd);
    if every_command {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            add(sub);
        }
    }
    vars.sort();
    let mut roff = String::from(".SH ENVIRONMENT\n");
    for (var, flag, help) in &vars {
        roff.push_str(&format!(
            ".TP\n\\fB{var}\\fR\n{} (as {}; the option wins over the variable)\n",
            escape(help),
            escape(flag)
        ));
    }
    let runs_hooks = ["exec", "on_message"]
        .iter()
        .any(|id| cmd.get_arguments().any(|a| a.get_id() == id));
    if every_command || runs_hooks {
        roff.push_str(&format!(
            ".PP\n{}\n",
            escape(
                "Hooks (log --exec, serve --on-message) get the message in DSHARE_ID, DSHARE_AUTHOR, DSHARE_SEQ, DSHARE_PREV, DSHARE_CLOCK, DSHARE_TS, DSHARE_TIME, DSHARE_BODY, DSHARE_JSON, DSHARE_POSITION, DSHARE_CURSOR, DSHARE_ATTEMPT and DSHARE_REDELIVERED; docs/COOKBOOK.md has the contract."
            )
        ));
    }
    roff
}

/// The exit codes, the same for every command; README.md has the table.
const EXIT_STATUS_SECTION: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
Success.
.TP
\fB1\fR
A "no": \fBverify\fR found tampering (or, with \fB\-\-peers\fR, a peer not in sync); a message was refused; \fBsend \-\-wait\fR timed out, or with \fB\-\-wait all\fR no peer was up; a watchdog tripped (\fB\-\-expect\-up\fR, \fB\-\-expect\-from\fR); a hook failed after its retries; \fBdoctor\fR found the node unhealthy.
.TP
\fB2\fR
Usage or I/O trouble: bad flags, not a dshare home, no node running, a missing file, an unreadable home.
.PP
A follower (\fBlog \-f\fR, with or without \fB\-\-exec\fR) stopped by SIGINT or SIGTERM ends as killed by that signal (130 or 143 in a shell).
"#;

/// `(command line, what it does)` for a page's EXAMPLES section; docs/COOKBOOK.md
/// has tested recipes built from the same commands.
fn examples(page: &str) -> &'static [(&'static str, &'static str)] {
    match page {
        "dshare" => &[
            (
                "dshare serve",
                "Run a node on this machine (creates the home on first use).",
            ),
            (
                "dshare send \"backup done on db-3\"",
                "Send a message to every node.",
            ),
            ("dshare log -f", "Print the conversation and follow it."),
            (
                "dshare --json peers | jq -r .url",
                "List the peers' addresses.",
            ),
            (
                "dshare testnet --nodes 3",
                "Start a throwaway network of three nodes on loopback.",
            ),
        ],
        "dshare-serve" => &[
            (
                "dshare serve --listen 0.0.0.0:7070 --advertise http://db-3:7070",
                "Serve on every interface, telling peers the address to use.",
            ),
            (
                "dshare serve --peer http://10.0.0.2:7070",
                "Join a network through one of its members.",
            ),
            (
                "dshare serve --on-message 'printf \"%s\\n\" \"$DSHARE_BODY\" >> /var/log/dshare.txt'",
                "Append every new message to a file, once each, across restarts.",
            ),
            (
                "dshare serve --print-config",
                "Show the settings serve would use and where each comes from (flag, environment, <home>/config.toml, default).",
            ),
        ],
        "dshare-send" => &[
            (
                "dshare send deploy of 1.4 started",
                "Send the words as one message.",
            ),
            ("uptime | dshare send", "Send what a command prints."),
            (
                "dshare send --wait all --timeout 30s \"release 1.4 deployed\" || exit 1",
                "Fail unless every peer that is up confirms within 30 seconds (for CI).",
            ),
        ],
        "dshare-log" => &[
            ("dshare log -n 20", "The last 20 messages."),
            ("dshare log --json | jq -r .body", "Only the bodies."),
            (
                "dshare log -f --exec 'notify-send \"$DSHARE_BODY\"' --cursor desktop",
                "Run a command for every new message; after a restart, for each one missed.",
            ),
            (
                "dshare log --exec ./handle.sh --cursor cron",
                "From cron: run a script for every message since the last run, then exit.",
            ),
            (
                "dshare -q log --expect-from 3fa2c1 --within 1h",
                "Exit 1 unless author 3fa2c1… sent something in the last hour.",
            ),
        ],
        "dshare-peers" => &[
            (
                "dshare peers",
                "Each peer: up or down, last seen, round-trip time, in sync.",
            ),
            (
                "dshare -q peers --expect-up 2",
                "Exit 1, naming the peers that are down, unless at least two are up.",
            ),
        ],
        "dshare-verify" => &[
            (
                "dshare verify",
                "Check this node's box; print its head and digest.",
            ),
            (
                "dshare verify --head 5be1…",
                "Also fail if lines after a head printed earlier were cut.",
            ),
            (
                "dshare verify --peers",
                "Also compare the box with every peer's.",
            ),
        ],
        "dshare-init" => &[
            ("dshare init", "Create a home for a new network."),
            (
                "dshare init --join \"$(ssh db-1 dshare invite)\"",
                "Join the network of another machine.",
            ),
        ],
        "dshare-invite" => &[(
            "dshare invite",
            "Print the line another machine passes to `dshare init --join`.",
        )],
        "dshare-web" => &[(
            "xdg-open \"$(dshare web)\"",
            "Open this node's page in a browser.",
        )],
        "dshare-id" => &[(
            "dshare log --json | jq -r \"select(.author == \\\"$(dshare id)\\\") | .body\"",
            "This node's own messages.",
        )],
        "dshare-testnet" => &[
            (
                "dshare testnet --nodes 5",
                "Five nodes until Ctrl-C; their addresses and homes, then `ready`.",
            ),
            (
                "dshare testnet --json > nodes.jsonl & until grep -q ready nodes.jsonl; do sleep 0.2; done",
                "Start a network in the background of a test script and wait until it is ready.",
            ),
        ],
        _ => &[],
    }
}

/// A roff EXAMPLES section for `page`, or nothing.
fn examples_section(page: &str) -> String {
    let list = examples(page);
    if list.is_empty() {
        return String::new();
    }
    let mut roff = String::from(".SH EXAMPLES\n");
    for (command, what) in list {
        roff.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            escape(command),
            escape(what)
        ));
    }
    roff
}

/// Escapes text for roff: backslashes, hyphens (so they stay ASCII when copied), and
/// a leading dot or quote that roff would read as a request.
fn escape(text: &str) -> String {
    let mut out = text.replace('\\', "\\e").replace('-', "\\-");
    if out.starts_with(['.', '\'']) {
        out.insert_str(0, "\\&");
    }
    out
}

/// The box format in short, for `man dshare-verify`; docs/FORMAT.md has it in full.
const FORMAT_SECTION: &str = r#".SH "FILE FORMAT"
The box (\fIHOME\fR/box.txt) is UTF\-8 text, one JSON object per line, keys in this order:
\fBchain\fR, \fBid\fR, \fBauthor\fR, \fBseq\fR, \fBprev\fR, \fBclock\fR, \fBts\fR, \fBbody\fR, \fBsig\fR.
Hashes, keys and signatures are lowercase hex.
.PP
\fBid\fR is the SHA\-256 of the canonical encoding: the lines
\fBdshare/1\fR, \fBauthor\fR \fIhex\fR, \fBseq\fR \fIn\fR, \fBprev\fR \fIhex\fR (or \fB\-\fR for seq 1),
\fBclock\fR \fIn\fR, \fBts\fR \fIms\fR, \fBbody\fR \fIbyte\-length\fR, each ended by a newline, followed by the body bytes.
\fBsig\fR is the author's ed25519 signature over the same bytes.
.PP
\fBchain\fR is SHA\-256 of the previous line's chain (32 zero bytes before the first line)
followed by this line's id, both as raw 32\-byte values.
\fIHOME\fR/box.head holds the last durable line count (20 digits), a space, and that line's chain.
.PP
The digest is SHA\-256 of the lines "\fIauthor seq id\fR\en", one per author (its latest message),
authors in ascending order. See docs/FORMAT.md for a worked example.
"#;
