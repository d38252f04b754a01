//! `dshare serve`: run a node until SIGINT or SIGTERM; SIGHUP re-reads the config
//! file for the settings that can change live ([`crate::config::LIVE_KEYS`]).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::cli::ServeArgs;
use crate::config::{ConfigFile, Reload, ServeSettings};
use crate::exit::Code;
use crate::home::Home;
use crate::hooks;
use crate::mbox::{Store, Writer};
use crate::message::AuthorId;
use crate::net::client_api::ClientApi;
use crate::net::client_keys::ClientKeys;
use crate::net::http::{self, Handler, Request, Response, Server};
use crate::net::peer_api::PeerApi;
use crate::replicate::protocol::NodeInfo;
use crate::replicate::{Replicator, Settings};
use crate::seal::{Keyring, ReplayGuard};

use super::Output;

/// How long a stopping node waits for a running --on-message hook.
const HOOK_GRACE: Duration = Duration::from_secs(10);

pub fn run(
    home: &Home,
    args: &ServeArgs,
    out: Output,
    matches: Option<&clap::ArgMatches>,
) -> Result<Code> {
    let settings = ServeSettings::resolve(args, matches, &ConfigFile::load(home.dir())?)?;
    if args.print_config {
        return print_config(&settings, home, out);
    }
    let cli_args = args;
    let args = &settings;
    let hookless = args.on_message.value.is_none();
    if hookless
        && (args.cursor.value.is_some()
            || args.from.value.is_some()
            || !args.authors.value.is_empty()
            || args.grep.value.is_some()
            || args.keep_going.value)
    {
        anyhow::bail!(
            "--cursor, --from, --author, --grep and --keep-going are for the --on-message hook, and none is set"
        );
    }
    // Registered first, so a stop request during start-up is not lost.
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;
    if !home.exists() {
        home.init(None)?;
        out.note(format!("created a new network in {}", home.dir().display()));
    }
    let _lock = home.lock()?;
    home.check_permissions();
    let identity = home.identity()?;
    let author = identity.author();
    let (store, append, tracker) = Store::open(&home.box_path())?;
    let allowed = home.allowed_authors(&args.allow_authors.value)?;
    if !allowed.is_empty() {
        out.note(format!(
            "accepting messages from {} listed authors only",
            allowed.len()
        ));
    }
    let writer = Writer::start(store, append, tracker, identity, allowed.clone());
    let on_message = on_message(home, args, &writer, out)?;
    let fd_limit = raise_descriptor_limit();
    let limits = http::Limits {
        max_connections: usize::try_from(args.max_connections.value).unwrap_or(usize::MAX),
        max_waiting: http::MAX_WAITING,
        head_timeout: Duration::from_secs(args.head_timeout.value),
        idle_timeout: Duration::from_secs(args.io_timeout.value),
    }
    .fit_to(fd_limit);
    if limits.max_connections < usize::try_from(args.max_connections.value).unwrap_or(usize::MAX) {
        out.note(format!(
            "open-files limit {fd_limit}: at most {} connections served and {} waiting at once",
            limits.max_connections, limits.max_waiting
        ));
    }
    let listener = http::bind(
        &args.listen.value,
        Duration::from_secs(args.io_timeout.value),
    )
    .map_err(with_port_remedy)?;
    let local = listener.local_addr()?;
    let url = local_url(local);
    let advertise = match &args.advertise.value {
        Some(u) => Some(crate::net::client::check_url(u)?),
        None => (!local.ip().is_unspecified()).then(|| url.clone()),
    };
    let bootstrap = args
        .peers
        .value
        .iter()
        .map(|p| crate::net::client::check_url(p))
        .collect::<Result<Vec<_>>>()?;
    let keyring = Arc::new(Keyring::from_secrets(&home.keyring()?));
    {
        let (home, keyring) = (home.clone(), Arc::clone(&keyring));
        watch(home.keyring_path(), move || match home.keyring() {
            Ok(keys) => {
                keyring.replace(&keys);
                out.note(format!(
                    "network keys reloaded: {}",
                    keyring.ids().join(", ")
                ));
            }
            Err(e) => crate::warning!("keeping the current network keys: {e:#}"),
        });
    }
    // Checked on every remote send too; the watcher only makes a reload show in the
    // log when no request comes.
    let remote_keys = Arc::new(ClientKeys::load(home)?);
    {
        let remote_keys = Arc::clone(&remote_keys);
        watch(home.clients_path(), move || remote_keys.refresh());
    }
    let replicator = Replicator::start(
        writer.clone(),
        keyring,
        Settings {
            me: NodeInfo {
                id: author,
                url: advertise,
            },
            identity: home.identity()?,
            peers_file: home.peers_path(),
            bootstrap,
            fanout: usize::from(args.fanout.value),
        },
    );
    let workers = usize::from(args.workers.value);
    let node = Node {
        peer: PeerApi {
            replicator: Arc::clone(&replicator),
            replay: ReplayGuard::default(),
        },
        client: ClientApi {
            remote_keys,
            remote_replay: ReplayGuard::default(),
            replicator: Arc::clone(&replicator),
            writer: writer.clone(),
            token: home.token()?,
            author,
            waiting: AtomicUsize::new(0),
            max_waiting: workers / 2,
            confirming: crate::net::waits::Waits::default(),
            keys: Arc::new(crate::net::idempotency::Keys::open(
                home.dir(),
                crate::net::idempotency::MAX_KEYS,
                crate::net::idempotency::WINDOW_MS,
                crate::time::now_ms(),
            )?),
        },
    };
    let node = Arc::new(node);
    let metrics_server = match &args.metrics_listen.value {
        Some(addr) => Some(serve_metrics(addr, &node, args, limits, out)?),
        None => None,
    };
    let server = Server::start(
        listener,
        Arc::clone(&node) as Arc<dyn Handler>,
        workers,
        limits,
    )?;
    crate::metrics::mark_start();
    home.write_addr(&url)?;
    out.note(format!(
        "node {} listening on http://{local} (box {})",
        author.short(12),
        home.box_path().display()
    ));
    let on_message = on_message.map(hooks::Background::start);
    let mut live = Live {
        settings: settings.clone(),
        allowed,
    };
    for signal in signals.forever() {
        if signal != SIGHUP {
            break;
        }
        match reload(home, cli_args, matches, &live) {
            Ok(next) => {
                apply(&live, &next, &writer, &replicator, out);
                live = next;
            }
            Err(e) => out.note(format!(
                "config not reloaded, the running settings stay: {e:#}"
            )),
        }
    }
    out.note("stopping");
    if let Some(hook) = on_message {
        hook.stop(HOOK_GRACE);
    }
    replicator.shutdown();
    writer.store().release_waiters();
    server.stop();
    writer.store().save_checkpoint();
    if let Some(metrics) = metrics_server {
        metrics.stop();
    }
    let _ = std::fs::remove_file(home.addr_path());
    Ok(Code::Success)
}

/// The settings a running node works with, changed by a SIGHUP.
struct Live {
    settings: ServeSettings,
    /// The allow-list in force: the `allow-author` setting plus `authors.allow`.
    allowed: HashSet<AuthorId>,
}

/// Reads the config file and `authors.allow` again, merged with the same flags and
/// environment as at start (which still win over the file). Checks everything
/// before anything is applied, so a broken file changes nothing.
fn reload(
    home: &Home,
    args: &ServeArgs,
    matches: Option<&clap::ArgMatches>,
    live: &Live,
) -> Result<Live> {
    let settings = ServeSettings::resolve(args, matches, &ConfigFile::load(home.dir())?)?;
    for url in Reload::plan(&live.settings, &settings).peers_added {
        crate::net::client::check_url(&url)?;
    }
    let allowed = home.allowed_authors(&settings.allow_authors.value)?;
    Ok(Live { settings, allowed })
}

/// Applies the live part of `next` and says what changed and what did not.
fn apply(live: &Live, next: &Live, writer: &Writer, replicator: &Replicator, out: Output) {
    let plan = Reload::plan(&live.settings, &next.settings);
    let mut said = Vec::new();
    let added: Vec<&String> = plan
        .peers_added
        .iter()
        .filter(|url| replicator.peers.add(url))
        .collect();
    if !added.is_empty() {
        said.push(format!(
            "peers added: {}",
            added
                .iter()
                .map(|u| u.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !plan.peers_kept.is_empty() {
        said.push(format!(
            "peers no longer listed stay known (a node keeps its peers): {}",
            plan.peers_kept.join(", ")
        ));
    }
    if next.allowed != live.allowed {
        writer.set_allowed(next.allowed.clone());
        said.push(if next.allowed.is_empty() {
            "allow-list off: messages from every author of the network are accepted".into()
        } else {
            format!("allow-list now {} authors", next.allowed.len())
        });
    }
    if !plan.need_restart.is_empty() {
        said.push(format!(
            "changed but only applied at the next start: {}",
            plan.need_restart.join(", ")
        ));
    }
    if said.is_empty() {
        said.push("nothing to change".into());
    }
    out.note(format!("config reloaded: {}", said.join("; ")));
}

/// The `--on-message` hook's runner, on its cursor (default name `on-message`), if
/// a hook is configured. Made before the node listens, so a cursor in use by another
/// process stops the start.
fn on_message(
    home: &Home,
    settings: &ServeSettings,
    writer: &Writer,
    out: Output,
) -> Result<Option<hooks::Runner<hooks::StoreSource>>> {
    let Some(command) = settings.on_message.value.clone() else {
        return Ok(None);
    };
    let name = settings.cursor.value.as_deref().unwrap_or("on-message");
    let cursor = hooks::Cursor::open(home, name)?;
    let start = hooks::Start::parse(settings.from.value.as_deref().unwrap_or("now"))?;
    let filter = hooks::Filter::new(&settings.authors.value, settings.grep.value.as_deref())?;
    let hook = hooks::Hook {
        command,
        retries: settings.retries.value,
        on_failure: if settings.keep_going.value {
            hooks::OnFailure::Skip
        } else {
            hooks::OnFailure::Pause(Duration::from_secs(60))
        },
    };
    let source = hooks::StoreSource(Arc::clone(writer.store()));
    let runner = hooks::Runner::new(
        source,
        hook,
        filter,
        Some(cursor),
        &start,
        hooks::Guard::new(),
    )?;
    out.note(format!(
        "--on-message hook on cursor {name:?}, after line {} of the box",
        runner.state.position
    ));
    Ok(Some(runner))
}

/// Raises the soft open-files limit to the hard one (the common soft default of 1024
/// is far below what thousands of connections need) and returns the soft limit in
/// force. An unlimited hard limit is taken as 2^20, the usual kernel ceiling.
fn raise_descriptor_limit() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    const CEILING: u64 = 1 << 20;
    let now = getrlimit(Resource::Nofile);
    let hard = now.maximum.unwrap_or(CEILING).min(CEILING);
    let soft = now.current.unwrap_or(CEILING);
    if soft < hard {
        let raised = Rlimit {
            current: Some(hard),
            maximum: now.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return hard;
        }
    }
    soft.min(CEILING)
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

/// A busy port says only "Address already in use"; most often the holder is another
/// node (another home, or a `serve` left running), and the way out is another port.
fn with_port_remedy(e: anyhow::Error) -> anyhow::Error {
    let in_use = e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    });
    if !in_use {
        return e;
    }
    anyhow::anyhow!(
        "{e:#}; another program, perhaps another dshare node, holds that port: pick another with --listen HOST:PORT (or DSHARE_LISTEN, or `listen` in config.toml), or --listen 127.0.0.1:0 for any free one"
    )
}

/// The URL the local command line uses: a wildcard listen address is reached through
/// loopback.
fn local_url(addr: SocketAddr) -> String {
    let ip = addr.ip();
    let host = match ip {
        std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_string(),
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => format!("[{v6}]"),
    };
    format!("http://{host}:{}", addr.port())
}

/// Everything the node answers over HTTP.
struct Node {
    client: ClientApi,
    peer: PeerApi,
}

/// Serves `GET /metrics` alone, without the token, for a scrape network.
struct MetricsOnly(Arc<Node>);

impl Handler for MetricsOnly {
    fn handle(&self, req: &Request) -> Response {
        match (req.post, req.path.as_str()) {
            (false, "/metrics") => self.0.client.metrics(),
            _ => Response::text(404, "this address serves GET /metrics only"),
        }
    }
}

/// Listens on `addr` for scrapes; two workers (a scrape is one cheap answer).
fn serve_metrics(
    addr: &str,
    node: &Arc<Node>,
    settings: &ServeSettings,
    limits: http::Limits,
    out: Output,
) -> Result<Server> {
    let listener = http::bind(addr, Duration::from_secs(settings.io_timeout.value))
        .map_err(with_port_remedy)?;
    let local = listener.local_addr()?;
    let server = Server::start(listener, Arc::new(MetricsOnly(Arc::clone(node))), 2, limits)?;
    out.note(format!("metrics on http://{local}/metrics (no token)"));
    Ok(server)
}

/// Routes a HEAD may ask for: the ones that only read. A HEAD elsewhere would act
/// (a `HEAD /send?msg=` once stored its message) and gets 405 instead.
const READ_ONLY_ROUTES: [&str; 6] = ["/", "/page.js", "/log", "/status", "/peers", "/metrics"];

impl Handler for Node {
    fn handle(&self, req: &Request) -> Response {
        if req.path.starts_with("/v1/") {
            self.peer.handle(req)
        } else {
            self.client.handle(req)
        }
    }

    fn screen(&self, req: &Request) -> Option<Response> {
        if req.path.starts_with("/v1/") {
            return PeerApi::screen(req);
        }
        if req.head && !READ_ONLY_ROUTES.contains(&req.path.as_str()) {
            return Some(
                Response::text(405, "HEAD only reads: use GET or POST to act")
                    .with("Allow", "GET, POST"),
            );
        }
        None
    }
}

/// Calls `reload` whenever the file at `path` changes (checked twice a second), so
/// `dshare keys` and `dshare client` act on a running node without a restart.
fn watch(path: std::path::PathBuf, mut reload: impl FnMut() + Send + 'static) {
    let modified = move || std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let mut seen = modified();
    std::thread::Builder::new()
        .name("file-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(500));
                let now = modified();
                if now != seen {
                    seen = now;
                    reload();
                }
            }
        })
        .expect("spawn a file watcher");
}
