//! `dshare generate`: man pages and shell completions from the clap definition.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use clap::CommandFactory;
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

/// `(file name, roff)` for `dshare.1` and one `dshare-COMMAND.1` per visible command.
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let cmd = Cli::command();
    let mut pages = Vec::new();
    let mut top = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut top)?;
    top.extend_from_slice(examples_section("dshare").as_bytes());
    pages.push(("dshare.1".to_string(), top));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("dshare-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).display_name(name.clone());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        if name == "dshare-verify" {
            page.extend_from_slice(FORMAT_SECTION.as_bytes());
        }
        page.extend_from_slice(examples_section(&name).as_bytes());
        pages.push((format!("{name}.1"), page));
    }
    Ok(pages)
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
        let mut cmd = Cli::command();
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
