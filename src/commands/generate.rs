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
    pages.push(("dshare.1".to_string(), top));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("dshare-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).display_name(name.clone());
        let mut page = Vec::new();
        clap_mangen::Man::new(sub).render(&mut page)?;
        if name == "dshare-verify" {
            page.extend_from_slice(FORMAT_SECTION.as_bytes());
        }
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
