//! The command-line surface: every command, flag and environment variable. Man pages
//! and shell completions are generated from this (`dshare generate`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Default listening address: loopback, so a new node exposes nothing until its
/// operator chooses an address that other machines can reach.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";

#[derive(Debug, Parser)]
#[command(
    name = "dshare",
    version,
    about = "A peer-to-peer, signed, encrypted broadcast channel for a set of machines",
    long_about = "A peer-to-peer, signed, encrypted broadcast channel for a set of machines.\n\n\
        Every machine runs a node (`dshare serve`). A message sent to any node reaches every node, \
        and each node keeps the whole conversation in its message box: a plain-text, append-only, \
        hash-chained file that `dshare verify` checks.",
    after_help = "Exit status: 0 success; 1 failure (verify: integrity failure; send --wait: timed out); 2 usage or I/O trouble.",
    propagate_version = true
)]
pub struct Cli {
    /// The node's home directory: box, keys, token, address [default: <data dir>/dshare]
    #[arg(long, global = true, env = "DSHARE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Print data as JSON, one object per line
    #[arg(long, global = true)]
    pub json: bool,

    /// Print nothing on success
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: serve the box to this machine's clients and to peers
    Serve(ServeArgs),
    /// Send a message to every node; prints its id once it is stored on disk
    Send(SendArgs),
    /// Print the conversation, oldest first
    Log(LogArgs),
    /// Check every line of a message box; exit 1 if anything was tampered with
    Verify(VerifyArgs),
    /// Print this node's page address, with its access token, for a browser
    Web,
    /// Create a home: identity key, network key and client token
    Init(InitArgs),
    /// Print this node's author id (its public key)
    Id,
    /// Write man pages and shell completions (for packagers)
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the real address is recorded
    /// in the home for the other commands)
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,

    /// Seconds a connection may stay silent (reading or writing) before it is closed
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub io_timeout: u64,

    /// Worker threads answering HTTP requests
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
}

/// How to reach a node other than the one running on the home.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Talk to the node at URL instead of the one running on the home
    #[arg(long, env = "DSHARE_NODE", value_name = "URL")]
    pub node: Option<String>,

    /// The node's client token (default: the home's)
    #[arg(
        long,
        env = "DSHARE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The message; words are joined with spaces. Read from stdin when absent or `-`
    #[arg(value_name = "TEXT")]
    pub text: Vec<String>,

    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only the last N messages
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,

    /// Keep printing messages as they arrive
    #[arg(short, long)]
    pub follow: bool,

    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The box file to check [default: the home's box.txt]
    #[arg(value_name = "PATH")]
    pub path: Option<PathBuf>,

    /// A chain hash printed earlier by `verify`: fail unless the box still contains it
    /// (catches lines cut from the end)
    #[arg(long = "head", value_name = "HASH")]
    pub known_head: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Directory that receives man/ and completions/
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
