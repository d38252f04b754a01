//! The command-line surface: every command, flag and environment variable. Man pages
//! and shell completions are generated from this (`dshare generate`).
//!
//! The layers below never see these types: a group of flags is handed down as the
//! core's own value ([`NodeArgs::choice`], [`ServeArgs::settings`], [`SpoolArgs::open`]),
//! so only `main`, `cli` and `commands` import the command line (tests/layers.rs).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{ServeSettings, Setting, Source};

pub mod fast;

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
    after_help = "Exit status: 0 success; 1 failure (verify: integrity failure; send --wait: timed out, or no peer up for --wait all; a watchdog or a hook failed); 2 usage or I/O trouble (not a dshare home, no node running).",
    propagate_version = true
)]
pub struct Cli {
    /// The node's home directory: box, keys, token, address [default: <data dir>/dshare]
    #[arg(long, global = true, env = "DSHARE_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Print data as JSON, one object per line
    #[arg(long, global = true)]
    pub json: bool,

    /// Print nothing on success, and no notes on stderr (warnings and errors still print)
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// How diagnostics on stderr are written: text for people, or json (one object per
    /// line with ts, level, msg and fields such as peer) for log shippers
    #[arg(
        long,
        global = true,
        env = "DSHARE_LOG_FORMAT",
        value_name = "FORMAT",
        value_enum,
        default_value_t = LogFormat::Text
    )]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

/// `--log-format`: the command line's names for [`crate::diag::Format`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl From<LogFormat> for crate::diag::Format {
    fn from(format: LogFormat) -> Self {
        match format {
            LogFormat::Text => crate::diag::Format::Text,
            LogFormat::Json => crate::diag::Format::Json,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: serve the box to this machine's clients and to peers
    Serve(ServeArgs),
    /// Send a message to every node; prints its id once it is stored on disk
    Send(SendArgs),
    /// Print the conversation, oldest first
    Log(LogArgs),
    /// Show the known peers: up or down, last seen, round-trip time, in sync
    Peers(PeersArgs),
    /// Check every line of a message box; exit 1 if anything was tampered with
    Verify(VerifyArgs),
    /// Close the oldest messages of the box into an epoch file with a signed final head
    #[command(
        long_about = "Close the oldest messages of the box into an epoch file with a signed final head.\n\n\
            The lines move, in arrival order, into <home>/epochs/box.<n>.txt, and \
            <home>/epochs/box.<n>.head records where the history stands after them (line \
            count, chain hash, digest, each author's last message, time range), signed with \
            this node's key. The live box goes on from that head, so its chain, the digest \
            and `verify` are unchanged. With a node running on the home the node does the \
            archive and serves throughout; without one the command works on the home \
            directly (under its lock).",
        after_help = "Exit status: 0 archived, or nothing to archive; 2 trouble (nothing changed)."
    )]
    Archive(ArchiveArgs),
    /// Run a command (cron job, CI step) and broadcast what happened: exit status,
    /// duration, host and the end of its output; exits with the command's status
    #[command(
        long_about = "Run a command (a cron job, a CI step) and broadcast what happened.\n\n\
            The command's stdin, stdout and stderr pass through unchanged. When it ends, one \
            signed message reports its name, exit status (or signal), duration, host, a run id \
            and the last --tail bytes of its output; `log --json` shows these fields as a `run` \
            object. A report that cannot be delivered waits in the spool and is delivered later.",
        after_help = "Exit status: the command's own (128+N when signal N ended it; 127 when it \
            could not be started), whatever became of the report."
    )]
    Run(RunArgs),
    /// Show or deliver the requests that wait in the spool (sends that found no node)
    #[command(subcommand)]
    Spool(SpoolCommand),
    /// One health verdict for a watchdog: node, box, peers, forks, disk space
    #[command(
        long_about = "One health verdict for a watchdog (cron, systemd timer, monitoring).\n\n\
            Checks that the node of this home is running and answering, that its box passes \
            every check of `dshare verify`, that its peers are up and in sync (or how far behind \
            it is), that no forks were seen, and how much disk space is free where the box lives. \
            Prints one line per check, then each problem and warning.",
        after_help = "Exit status: 0 healthy; 1 unhealthy (the problems are printed); 2 could not check (not a dshare home, box unreadable)."
    )]
    Doctor(DoctorArgs),
    /// Print a one-line invite that lets another machine join this network
    Invite(InviteArgs),
    /// Print this node's page address, with its access token, for a browser
    Web,
    /// Create a home: identity key, network key and client token
    Init(InitArgs),
    /// Print this node's author id (its public key)
    Id,
    /// Issue, list and revoke client keys, for sending from machines that are not nodes
    #[command(subcommand)]
    Client(ClientCommand),
    /// List, add, switch and retire network keys (rotation without downtime)
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Start N nodes on loopback in temporary homes, joined into one network, until
    /// Ctrl-C: a real network for testing scripts
    Testnet(TestnetArgs),
    /// Write man pages and shell completions (for packagers)
    #[command(hide = true)]
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the real address is recorded
    /// in the home for the other commands)
    #[arg(long, env = "DSHARE_LISTEN", value_name = "ADDR", default_value = DEFAULT_LISTEN)]
    pub listen: String,

    /// Seconds a connection may stay silent (reading or writing) before it is closed
    #[arg(long, env = "DSHARE_IO_TIMEOUT", value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub io_timeout: u64,

    /// A peer to start from, as http://HOST:PORT (repeatable, or comma-separated; more
    /// are learned from it)
    #[arg(
        long = "peer",
        env = "DSHARE_PEERS",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,

    /// The address other nodes should use to reach this one [default: the listen
    /// address, unless it is a wildcard such as 0.0.0.0]
    #[arg(long, env = "DSHARE_ADVERTISE", value_name = "URL")]
    pub advertise: Option<String>,

    /// Peers each new message is pushed to at once when more are known; the rest get
    /// it from them
    #[arg(long, env = "DSHARE_FANOUT", value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub fanout: u16,

    /// Also serve GET /metrics (Prometheus) on ADDR, without the client token: for a
    /// scrape network that only the monitoring host reaches. The main address serves
    /// /metrics too, with the token
    #[arg(long, env = "DSHARE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,

    /// Most connections open at once (each has a thread); more are closed on arrival
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(16..=65536))]
    pub max_connections: u32,

    /// Seconds a client has to send a whole request head once it has begun
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub head_timeout: u64,

    /// Accept messages only from this author (repeatable; also read from
    /// <home>/authors.allow, one id per line). This node's own author is always allowed
    #[arg(long = "allow-author", value_name = "ID")]
    pub allow_authors: Vec<String>,

    /// HTTP requests served at once (each on its connection's thread); more wait
    /// for a turn
    #[arg(long, env = "DSHARE_WORKERS", value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,

    /// Run CMD (with `sh -c`) once for every new message this node stores, in arrival
    /// order, the message in DSHARE_* variables and its body on stdin. A cursor (default
    /// name `on-message`) makes it run once per message across restarts
    #[arg(long, env = "DSHARE_ON_MESSAGE", value_name = "CMD")]
    pub on_message: Option<String>,

    #[command(flatten)]
    pub hook: HookArgs,

    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub retention: RetentionArgs,

    /// Print the settings serve would use, and where each comes from (flag, env,
    /// <home>/config.toml, default); then exit
    #[arg(long)]
    pub print_config: bool,
}

impl ServeArgs {
    /// The settings as the command line gives them: each value with its source (a
    /// flag, the environment, or clap's default when neither gave it). `matches` is
    /// serve's part of the parsed command line, which knows each value's source.
    pub fn settings(&self, matches: Option<&clap::ArgMatches>) -> ServeSettings {
        use clap::parser::ValueSource;
        let at = |id: &str| -> Source {
            match matches.and_then(|m| m.value_source(id)) {
                Some(ValueSource::CommandLine) => Source::Flag,
                Some(ValueSource::EnvVariable) => Source::Env,
                _ => Source::Default,
            }
        };
        fn setting<T>(value: T, source: Source) -> Setting<T> {
            Setting { value, source }
        }
        ServeSettings {
            listen: setting(self.listen.clone(), at("listen")),
            advertise: setting(self.advertise.clone(), at("advertise")),
            peers: setting(self.peers.clone(), at("peers")),
            fanout: setting(self.fanout, at("fanout")),
            workers: setting(self.workers, at("workers")),
            io_timeout: setting(self.io_timeout, at("io_timeout")),
            head_timeout: setting(self.head_timeout, at("head_timeout")),
            max_connections: setting(self.max_connections, at("max_connections")),
            metrics_listen: setting(self.metrics_listen.clone(), at("metrics_listen")),
            allow_authors: setting(self.allow_authors.clone(), at("allow_authors")),
            on_message: setting(self.on_message.clone(), at("on_message")),
            cursor: setting(self.hook.cursor.clone(), at("cursor")),
            from: setting(self.hook.from.clone(), at("from")),
            authors: setting(self.filter.authors.clone(), at("authors")),
            grep: setting(self.filter.grep.clone(), at("grep")),
            retries: setting(self.hook.retries, at("retries")),
            keep_going: setting(self.hook.keep_going, at("keep_going")),
            keep: setting(self.retention.keep, at("keep")),
            keep_messages: setting(self.retention.keep_messages, at("keep_messages")),
            prune_epochs: setting(self.retention.prune_epochs, at("prune_epochs")),
            file: None,
        }
    }
}

/// How long the node keeps messages in its live box (`dshare archive` on a schedule).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Retention")]
pub struct RetentionArgs {
    /// Close messages signed more than AGE ago (90d, 12h, 30s) into epochs, checked
    /// every AGE/8 (at least every second, at most daily)
    #[arg(long, value_name = "AGE", value_parser = crate::time::parse_age)]
    pub keep: Option<std::time::Duration>,

    /// Keep at most about N messages in the live box: close the rest into epochs
    /// (checked every minute, and once N/8 more arrived)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_messages: Option<u64>,

    /// Delete the lines of each epoch once closed, keeping its signed final head: the
    /// node then holds only the live box (and serves only that)
    #[arg(long)]
    pub prune_epochs: bool,
}

/// A hook's cursor and failure policy (`log --exec`, `serve --on-message`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Hook options")]
pub struct HookArgs {
    /// Record the last message handled under NAME (in <home>/cursors/NAME), so that a
    /// restarted hook runs once for every message it missed, and never twice
    #[arg(long, value_name = "NAME")]
    pub cursor: Option<String>,

    /// Where a new cursor starts: `now` (messages that arrive from now on), `start`
    /// (every message in the box) or a message ID or prefix (the messages after it)
    /// [default: now; `start` for `log --exec` without -f or --cursor]
    #[arg(long, value_name = "now|start|ID")]
    pub from: Option<String>,

    /// Times a failing hook (non-zero exit) is run again, after 1s, 2s, 4s…, before
    /// it counts as failed
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: u32,

    /// After the retries, report a failed hook and go on with the next message. Without
    /// it `log --exec` stops (exit 1) and the next run starts with that message, and
    /// `serve --on-message` tries it again every minute
    #[arg(long)]
    pub keep_going: bool,
}

/// Which messages to show, or to run a hook for.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Filters")]
pub struct FilterArgs {
    /// Only messages from this author: an id or a prefix of one (repeatable)
    #[arg(long = "author", value_name = "ID")]
    pub authors: Vec<String>,

    /// Only messages whose body contains TEXT (plain substring, case-sensitive)
    #[arg(long, value_name = "TEXT")]
    pub grep: Option<String>,
}

/// How to reach a node other than the one running on the home.
#[derive(Debug, Clone, Args)]
pub struct NodeArgs {
    /// Talk to the node at URL instead of the one running on the home
    #[arg(long, env = "DSHARE_NODE", value_name = "URL")]
    pub node: Option<String>,

    /// The node's client token (default: the home's). A value given here is visible
    /// to every local user in `ps`: prefer DSHARE_TOKEN or --token-file
    #[arg(
        long,
        env = "DSHARE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Read the node's client token from FILE (its first line that is not a `#`
    /// comment), so it never shows on a command line
    #[arg(
        long,
        env = "DSHARE_TOKEN_FILE",
        value_name = "FILE",
        conflicts_with = "token"
    )]
    pub token_file: Option<std::path::PathBuf>,
}

impl NodeArgs {
    /// The node these flags name, as the client takes it.
    pub fn choice(&self) -> crate::net::client::NodeChoice {
        crate::net::client::NodeChoice {
            url: self.node.clone(),
            token: self.token.clone(),
            token_file: self.token_file.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The message; words are joined with spaces. Read from stdin when absent or `-`
    #[arg(value_name = "TEXT")]
    pub text: Vec<String>,

    /// Wait until `all` peers that are up (at least one), or N of them, have stored
    /// the message
    #[arg(long, value_name = "all|N", value_parser = parse_want)]
    pub wait: Option<crate::api::Want>,

    /// Send through a node with a client key line from `dshare client add` (sealed:
    /// nothing reusable crosses the wire). A line given here is visible to every
    /// local user in `ps`: prefer DSHARE_CLIENT or --client-file
    #[arg(
        long,
        env = "DSHARE_CLIENT",
        value_name = "LINE",
        hide_env_values = true,
        conflicts_with = "node"
    )]
    pub client: Option<String>,

    /// Like --client, with the key line read from FILE (its first line that is not a
    /// `#` comment), so it never shows on a command line
    #[arg(
        long,
        env = "DSHARE_CLIENT_FILE",
        value_name = "FILE",
        conflicts_with_all = ["node", "client"]
    )]
    pub client_file: Option<std::path::PathBuf>,

    /// How long --wait waits, e.g. 10s, 500ms, 2m
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,

    /// An idempotency key: the node stores one message for a repeat of this key by the
    /// same sender within 24 hours, and answers the first one's id
    #[arg(long, value_name = "KEY", value_parser = parse_key)]
    pub key: Option<String>,

    #[command(flatten)]
    pub spool: SpoolArgs,

    #[command(flatten)]
    pub node: NodeArgs,
}

/// Where requests that found no node wait (`send --client`, `run`).
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Spool options")]
pub struct SpoolArgs {
    /// The spool directory [default: <cache dir>/dshare/spool]
    #[arg(long = "spool", env = "DSHARE_SPOOL", value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Largest the spool may grow; a request that would pass it is refused
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    pub spool_limit: u64,
}

impl SpoolArgs {
    pub fn open(&self) -> anyhow::Result<crate::spool::Spool> {
        crate::spool::Spool::open(self.dir.as_deref(), self.spool_limit)
    }
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job's name in the report [default: the command's file name]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Bytes of the end of the output (stdout and stderr together) to put in the report
    /// (at most 62k, to stay within the message size limit)
    #[arg(long, value_name = "BYTES", default_value = "4k", value_parser = parse_size)]
    pub tail: u64,

    /// Also report when the command starts, with the same run id
    #[arg(long)]
    pub start: bool,

    /// Send the reports through a node with a client key line from `dshare client add`
    #[arg(
        long,
        env = "DSHARE_CLIENT",
        value_name = "LINE",
        hide_env_values = true,
        conflicts_with = "node"
    )]
    pub client: Option<String>,

    /// How long a report may take to reach the node before it goes to the spool
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,

    #[command(flatten)]
    pub spool: SpoolArgs,

    #[command(flatten)]
    pub node: NodeArgs,

    /// The command and its arguments, after `--`
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<std::ffi::OsString>,
}

/// The spool: requests kept because no node answered, delivered later with the same
/// idempotency key, so a request is stored once however often it is tried.
#[derive(Debug, Subcommand)]
pub enum SpoolCommand {
    /// List the requests that wait, oldest first
    List {
        #[command(flatten)]
        spool: SpoolArgs,
    },
    /// Try to deliver the requests that wait (those due after their backoff, or all
    /// with --all); exit 1 if some are still waiting
    Flush {
        /// Try every request now, whatever its backoff
        #[arg(long)]
        all: bool,

        /// How long each delivery may take
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        timeout: std::time::Duration,

        #[command(flatten)]
        spool: SpoolArgs,
    },
}

/// An idempotency key: 1 to 128 characters, letters, digits and `-_.:/@+=`.
fn parse_key(s: &str) -> Result<String, String> {
    crate::net::idempotency::check_key(s).map(|()| s.to_string())
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Only the last N messages
    #[arg(short = 'n', long = "lines", value_name = "N")]
    pub lines: Option<usize>,

    /// Keep printing messages as they arrive
    #[arg(short, long)]
    pub follow: bool,

    /// Run CMD (with `sh -c`) once for each message instead of printing it, in the
    /// box's arrival order: the message in DSHARE_* variables, its body on stdin
    #[arg(long, value_name = "CMD", conflicts_with = "lines")]
    pub exec: Option<String>,

    /// Check that AUTHOR (an id or prefix) sent a message within --within; exit 1,
    /// saying when it last did, if not
    #[arg(long, value_name = "AUTHOR", requires = "within", conflicts_with_all = ["exec", "follow", "lines"])]
    pub expect_from: Option<String>,

    /// How recent --expect-from's last message, or --expect-run's last run, must be
    /// (by its timestamp), e.g. 90s, 15m, 26h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub within: Option<std::time::Duration>,

    /// Check the runs of NAME (`dshare run --name NAME`): that the last one finished
    /// within --within, and the checks below; exit 1 with the reason if not
    #[arg(long, value_name = "NAME", conflicts_with_all = ["exec", "follow", "lines", "expect_from"])]
    pub expect_run: Option<String>,

    /// With --expect-run: the last run must have succeeded (exit 0)
    #[arg(long, requires = "expect_run")]
    pub success: bool,

    /// With --expect-run: the last run must have taken at least this long (a job that
    /// ends early did not do its work), e.g. 20m
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "expect_run")]
    pub min_duration: Option<std::time::Duration>,

    /// With --expect-run and --per: at most N runs may have finished within --per
    #[arg(long, value_name = "N", requires_all = ["expect_run", "per"])]
    pub max_runs: Option<usize>,

    /// The span --max-runs counts over, e.g. 1h
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "max_runs")]
    pub per: Option<std::time::Duration>,

    #[command(flatten)]
    pub node: NodeArgs,

    #[command(flatten)]
    pub filter: FilterArgs,

    #[command(flatten)]
    pub hook: HookArgs,
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

    /// Also compare this node's digest with each peer's: in sync, behind, ahead or
    /// diverged (exit 1 unless every peer that is up is in sync)
    #[arg(long)]
    pub peers: bool,

    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("cut").args(["before", "keep_messages"]).multiple(false)))]
pub struct ArchiveArgs {
    /// Close every message signed before DATE: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SSZ (UTC),
    /// or an age such as 90d, 12h, 30s. Stops at the first line signed later
    #[arg(long, value_name = "DATE", value_parser = crate::time::parse_before)]
    pub before: Option<u64>,

    /// Close all but the last N messages
    #[arg(long, value_name = "N")]
    pub keep_messages: Option<u64>,

    /// Then delete the lines of every closed epoch, keeping their signed heads (verify
    /// then proves continuity from the heads; the messages are gone from this node)
    #[arg(long)]
    pub prune: bool,

    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Unhealthy when less than this is free where the box lives (e.g. 64M, 1G)
    #[arg(long, value_name = "SIZE", default_value = "64M", value_parser = parse_size)]
    pub min_free: u64,

    /// Unhealthy when a peer holds more than N messages this node lacks
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub max_behind: u64,

    /// How long to wait for each answer of the node, e.g. 5s, 500ms
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub timeout: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct PeersArgs {
    /// Exit 1, naming the peers that are down, unless at least N peers are up (a
    /// watchdog for cron or CI)
    #[arg(long, value_name = "N")]
    pub expect_up: Option<usize>,

    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Debug, Args)]
pub struct TestnetArgs {
    /// How many nodes to start
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub nodes: u16,

    /// Put the homes in DIR (created if needed, kept at the end) instead of a
    /// temporary directory that is removed at the end
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InviteArgs {
    /// The address to put in the invite [default: the running node's advertised address]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Join the network of an invite printed by `dshare invite` instead of making a new one
    #[arg(long, value_name = "INVITE")]
    pub join: Option<String>,
}

/// `all` or a positive count.
fn parse_want(s: &str) -> Result<crate::api::Want, String> {
    s.parse().map_err(|e: crate::api::BadWant| e.to_string())
}

/// `10s`, `500ms`, `2m`, `1h`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 10s or 500ms"))?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    }
    .ok_or_else(|| format!("{s:?} is not a duration like 10s or 500ms"))?;
    Ok(std::time::Duration::from_millis(ms))
}

/// Client keys let a machine that is not a node (a CI runner, a laptop) send through
/// this node without the network key and without a reusable secret on the wire: each
/// request is sealed with the client's own key, which can be revoked.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Issue a key for NAME and print its line for `dshare send --client` (DSHARE_CLIENT)
    Add {
        #[arg(value_name = "NAME")]
        name: String,
        /// The node address to put in the line [default: the running node's advertised address]
        #[arg(long, value_name = "URL")]
        url: Option<String>,
    },
    /// List the clients by name and key id
    List,
    /// Revoke NAME's key; the running node refuses it within a second
    Revoke {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// Rotating a network key without downtime: `new` (or `install`) the new key on every
/// node, then `use` it on every node, then `remove` the old one everywhere. A running
/// node picks up each change within a second.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the network keys by id; the first one seals, all of them open
    List,
    /// Create a new key, hold it beside the others, and print it (for `install` elsewhere)
    New,
    /// Hold another network key (64 hex digits) beside the others
    Install {
        #[arg(value_name = "KEY")]
        key: String,
    },
    /// Seal with this key from now on (by id from `list`, or the key itself)
    Use {
        #[arg(value_name = "ID|KEY")]
        key: String,
    },
    /// Stop holding a key (by id or key); the key in use cannot be removed
    Remove {
        #[arg(value_name = "ID|KEY")]
        key: String,
    },
}

/// `512k`, `64M`, `1G`, `1T` (powers of 1024), or plain bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size like 64M or 1G"))?;
    let shift = match unit
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{s:?} is not a size like 64M or 1G")),
    };
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{s:?} is too large"))
}

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

    #[test]
    fn sizes_parse_in_powers_of_1024() {
        assert_eq!(super::parse_size("512"), Ok(512));
        assert_eq!(super::parse_size("512k"), Ok(512 << 10));
        assert_eq!(super::parse_size("64M"), Ok(64 << 20));
        assert_eq!(super::parse_size("1GiB"), Ok(1 << 30));
        assert!(super::parse_size("1X").is_err());
        assert!(super::parse_size("M").is_err());
        assert!(super::parse_size("99999999999T").is_err());
    }
}
