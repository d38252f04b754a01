//! The node `dshare serve` runs: its parts assembled from resolved settings, started, run until a stop signal, and stopped; tests and benches start one in-process with [`Node::start`].

use std::collections::HashSet;
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::config::{Reload, ServeSettings};
use crate::home::Home;
use crate::hooks;
use crate::identity::Identity;
use crate::mbox::{Store, Tracker, Writer};
use crate::message::AuthorId;
use crate::net::client_api::ClientApi;
use crate::net::client_keys::ClientKeys;
use crate::net::http::{self, Handler, Request, Response, Server};
use crate::net::peer_api::PeerApi;
use crate::node_url::NodeUrl;
use crate::replicate::protocol::NodeInfo;
use crate::replicate::{Replicator, Settings};
use crate::seal::{Keyring, ReplayGuard};

/// How long a stopping node waits for a running --on-message hook.
const HOOK_GRACE: Duration = Duration::from_secs(10);

/// How often the watched files' modification times are looked at: a `dshare keys`
/// change is picked up within a second (client keys are also checked on every
/// remote send), at the cost of one wake-up and a `stat` per file.
const WATCH_PERIOD: Duration = Duration::from_secs(1);

/// Runs a node on `home` until SIGINT or SIGTERM. On SIGHUP, `reread` gives the
/// settings again (the command line re-reads the config file) and the live part of
/// them is applied; a reread that fails leaves the running settings as they are.
pub fn run(
    home: &Home,
    settings: &ServeSettings,
    mut reread: impl FnMut() -> Result<ServeSettings>,
) -> Result<()> {
    // Registered first, so a stop request during start-up is not lost.
    let mut signals =
        Signals::new([SIGINT, SIGTERM, SIGHUP]).context("cannot install signal handlers")?;
    let mut node = Node::start(home, settings)?;
    for signal in signals.forever() {
        if signal != SIGHUP {
            break;
        }
        if let Err(e) = reread().and_then(|next| node.reload(next)) {
            crate::note!("config not reloaded, the running settings stay: {e:#}");
        }
    }
    crate::note!("stopping");
    node.stop();
    Ok(())
}

/// A running node: its store's writer, replicator, HTTP servers, hook and watchers.
pub struct Node {
    home: Home,
    local: SocketAddr,
    url: String,
    writer: Writer,
    replicator: Arc<Replicator>,
    server: Server,
    metrics_server: Option<Server>,
    hook: Option<hooks::Background>,
    watcher: Watcher,
    live: Live,
    retention: Option<crate::mbox::RetentionThread>,
    /// Held while the node runs: a second node on the same home refuses to start.
    _lock: File,
}

impl Node {
    /// Starts a node on `home` (created if missing) with `settings`, and returns once
    /// it listens and its address is written in the home.
    pub fn start(home: &Home, settings: &ServeSettings) -> Result<Node> {
        check_hook_settings(settings)?;
        let (lock, identity) = open_home(home)?;
        let author = identity.author();
        let (store, append, tracker) = open_store(home)?;
        let allowed = allowed_authors(home, settings)?;
        let writer = Writer::start(store, append, tracker, identity, allowed.clone());
        let on_message = on_message(home, settings, &writer)?;
        let limits = connection_limits(settings);
        let listener = http::bind(
            &settings.listen.value,
            Duration::from_secs(settings.io_timeout.value),
        )
        .map_err(with_port_remedy)?;
        let local = listener.local_addr()?;
        let url = local_url(local);
        let advertise = match &settings.advertise.value {
            Some(u) => Some(NodeUrl::parse(u)?.into()),
            None => (!local.ip().is_unspecified()).then(|| url.clone()),
        };
        let bootstrap = settings
            .peers
            .value
            .iter()
            .map(|p| NodeUrl::parse(p).map(String::from))
            .collect::<Result<Vec<_>>>()?;
        let keyring = Arc::new(Keyring::from_secrets(&home.keyring()?));
        // Checked on every remote send too; the watcher only makes a reload show in
        // the log when no request comes.
        let remote_keys = Arc::new(ClientKeys::load(home)?);
        let watcher = Watcher::start(vec![
            watch_keyring(home, &keyring),
            watch_clients(home, &remote_keys),
        ]);
        let replicator = Replicator::start(
            writer.clone(),
            keyring,
            Settings {
                me: NodeInfo {
                    id: author,
                    url: advertise.clone(),
                },
                identity: home.identity()?,
                peers_file: home.peers_path(),
                bootstrap,
                fanout: usize::from(settings.fanout.value),
                // UDP on the HTTP listener's own address and port number.
                swim_at: advertise.is_some().then_some(local),
            },
        );
        let workers = usize::from(settings.workers.value);
        let routes = Arc::new(Routes {
            peer: PeerApi {
                replicator: Arc::clone(&replicator),
                replay: ReplayGuard::default(),
            },
            client: client_api(home, author, &writer, &replicator, remote_keys, workers)?,
        });
        let metrics_server = match &settings.metrics_listen.value {
            Some(addr) => Some(serve_metrics(addr, &routes, settings, limits)?),
            None => None,
        };
        let server = Server::start(listener, routes as Arc<dyn Handler>, workers, limits)?;
        let retention = start_retention(home, settings, &writer)?;
        crate::metrics::mark_start();
        home.write_addr(&url)?;
        crate::note!(
            "node {} listening on http://{local} (box {})",
            author.short(12),
            home.box_path().display()
        );
        Ok(Node {
            home: home.clone(),
            local,
            url,
            writer,
            replicator,
            server,
            metrics_server,
            hook: on_message.map(hooks::Background::start),
            watcher,
            live: Live {
                settings: settings.clone(),
                allowed,
            },
            retention,
            _lock: lock,
        })
    }

    /// The address the node listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The URL the local command line reaches the node at (written in the home).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    pub fn replicator(&self) -> &Arc<Replicator> {
        &self.replicator
    }

    /// Applies the live part of `next` (new peers, the allow-list) and says what
    /// changed and what did not. Checks everything first, so bad settings change
    /// nothing.
    pub fn reload(&mut self, settings: ServeSettings) -> Result<()> {
        for url in Reload::plan(&self.live.settings, &settings).peers_added {
            NodeUrl::parse(&url)?;
        }
        let next = Live {
            allowed: self.home.allowed_authors(&settings.allow_authors.value)?,
            settings,
        };
        let said = apply(&self.live, &next, &self.writer, &self.replicator);
        crate::note!("config reloaded: {}", said.join("; "));
        self.live = next;
        Ok(())
    }

    /// Stops the hook (after [`HOOK_GRACE`] at most), the replicator, the servers and
    /// the watchers, and removes the node's address from the home.
    pub fn stop(self) {
        if let Some(retention) = self.retention {
            retention.stop();
        }
        if let Some(hook) = self.hook {
            hook.stop(HOOK_GRACE);
        }
        self.replicator.shutdown();
        self.writer.store().release_waiters();
        self.server.stop();
        // After the last write: the next start reads no line of this run again.
        self.writer.store().save_checkpoint();
        if let Some(metrics) = self.metrics_server {
            metrics.stop();
        }
        self.watcher.stop();
        let _ = std::fs::remove_file(self.home.addr_path());
    }
}

/// The hook's filters without a hook would silently do nothing.
fn check_hook_settings(settings: &ServeSettings) -> Result<()> {
    let hookless = settings.on_message.value.is_none();
    if hookless
        && (settings.cursor.value.is_some()
            || settings.from.value.is_some()
            || !settings.authors.value.is_empty()
            || settings.grep.value.is_some()
            || settings.keep_going.value)
    {
        anyhow::bail!(
            "--cursor, --from, --author, --grep and --keep-going are for the --on-message hook, and none is set"
        );
    }
    Ok(())
}

/// Creates the home if it is missing, takes its lock and loads the node's identity.
fn open_home(home: &Home) -> Result<(File, Identity)> {
    if !home.exists() {
        home.init(None)?;
        crate::note!("created a new network in {}", home.dir().display());
    }
    let lock = home.lock()?;
    home.check_permissions();
    Ok((lock, home.identity()?))
}

/// Opens the box: reads it to its end and checks its chain, under the home's lock.
fn open_store(home: &Home) -> Result<(Arc<Store>, File, Tracker)> {
    let base = crate::mbox::epoch::settle(&home.box_path())?;
    Store::open_after(&home.box_path(), base.as_ref())
}

/// The thread that archives (and prunes) on the `keep` settings, if any is set.
fn start_retention(
    home: &Home,
    settings: &ServeSettings,
    writer: &Writer,
) -> Result<Option<crate::mbox::RetentionThread>> {
    let policy = crate::mbox::Retention {
        keep: settings.keep.value,
        keep_messages: settings.keep_messages.value,
        prune: settings.prune_epochs.value,
    };
    if policy.is_off() {
        anyhow::ensure!(
            !policy.prune,
            "prune-epochs deletes the epochs retention closes, and no retention is set: add --keep AGE or --keep-messages N (or use `dshare archive --prune`)"
        );
        return Ok(None);
    }
    let thread = crate::mbox::RetentionThread::start(writer.clone(), home.identity()?, policy)?;
    Ok(Some(thread))
}

/// The allow-list in force at start: the `allow-author` setting plus `authors.allow`.
fn allowed_authors(home: &Home, settings: &ServeSettings) -> Result<HashSet<AuthorId>> {
    let allowed = home.allowed_authors(&settings.allow_authors.value)?;
    if !allowed.is_empty() {
        crate::note!(
            "accepting messages from {} listed authors only",
            allowed.len()
        );
    }
    Ok(allowed)
}

/// The connection limits asked for, cut to what the open-files limit allows.
fn connection_limits(settings: &ServeSettings) -> http::Limits {
    let fd_limit = raise_descriptor_limit();
    let asked = usize::try_from(settings.max_connections.value).unwrap_or(usize::MAX);
    let limits = http::Limits {
        max_connections: asked,
        max_waiting: http::MAX_WAITING,
        head_timeout: Duration::from_secs(settings.head_timeout.value),
        idle_timeout: Duration::from_secs(settings.io_timeout.value),
    }
    .fit_to(fd_limit);
    if limits.max_connections < asked {
        crate::note!(
            "open-files limit {fd_limit}: at most {} connections served and {} waiting at once",
            limits.max_connections,
            limits.max_waiting
        );
    }
    limits
}

fn client_api(
    home: &Home,
    author: AuthorId,
    writer: &Writer,
    replicator: &Arc<Replicator>,
    remote_keys: Arc<ClientKeys>,
    workers: usize,
) -> Result<ClientApi> {
    Ok(ClientApi {
        remote_keys,
        remote_replay: ReplayGuard::default(),
        replicator: Arc::clone(replicator),
        writer: writer.clone(),
        token: home.token()?,
        identity: home.identity()?,
        author,
        waiting: AtomicUsize::new(0),
        // Half the workers may wait for confirmations; the others stay free to answer.
        max_waiting: workers / 2,
        confirming: crate::net::waits::Waits::default(),
        keys: Arc::new(crate::net::idempotency::Keys::open(
            home.dir(),
            crate::net::idempotency::MAX_KEYS,
            crate::net::idempotency::WINDOW_MS,
            crate::time::now_ms(),
        )?),
    })
}

/// The settings a running node works with, changed by a reload.
struct Live {
    settings: ServeSettings,
    /// The allow-list in force: the `allow-author` setting plus `authors.allow`.
    allowed: HashSet<AuthorId>,
}

/// Applies the live part of `next`; returns what changed and what did not, to say.
fn apply(live: &Live, next: &Live, writer: &Writer, replicator: &Replicator) -> Vec<String> {
    let plan = Reload::plan(&live.settings, &next.settings);
    let mut said = Vec::new();
    let added: Vec<&str> = plan
        .peers_added
        .iter()
        .filter(|url| replicator.peers.add(url))
        .map(String::as_str)
        .collect();
    if !added.is_empty() {
        said.push(format!("peers added: {}", added.join(", ")));
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
    said
}

/// The `--on-message` hook's runner, on its cursor (default name `on-message`), if
/// a hook is configured. Made before the node listens, so a cursor in use by another
/// process stops the start.
fn on_message(
    home: &Home,
    settings: &ServeSettings,
    writer: &Writer,
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
    crate::note!(
        "--on-message hook on cursor {name:?}, after line {} of the box",
        runner.state.position
    );
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
struct Routes {
    client: ClientApi,
    peer: PeerApi,
}

/// Serves `GET /metrics` alone, without the token, for a scrape network.
struct MetricsOnly(Arc<Routes>);

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
    routes: &Arc<Routes>,
    settings: &ServeSettings,
    limits: http::Limits,
) -> Result<Server> {
    let listener = http::bind(addr, Duration::from_secs(settings.io_timeout.value))
        .map_err(with_port_remedy)?;
    let local = listener.local_addr()?;
    let server = Server::start(
        listener,
        Arc::new(MetricsOnly(Arc::clone(routes))),
        2,
        limits,
    )?;
    crate::note!("metrics on http://{local}/metrics (no token)");
    Ok(server)
}

/// Routes a HEAD may ask for: the ones that only read. A HEAD elsewhere would act
/// (a `HEAD /send?msg=` once stored its message) and gets 405 instead.
const READ_ONLY_ROUTES: [&str; 6] = ["/", "/page.js", "/log", "/status", "/peers", "/metrics"];

impl Handler for Routes {
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

/// Reloads the network keys when `dshare keys` changes the keyring file.
fn watch_keyring(home: &Home, keyring: &Arc<Keyring>) -> Watched {
    let (home, keyring) = (home.clone(), Arc::clone(keyring));
    let path = home.keyring_path();
    let reload = move || match home.keyring() {
        Ok(keys) => {
            keyring.replace(&keys);
            crate::note!("network keys reloaded: {}", keyring.ids().join(", "));
        }
        Err(e) => crate::warning!("keeping the current network keys: {e:#}"),
    };
    (path, Box::new(reload))
}

/// Reloads the remote clients' keys when `dshare client` changes their file.
fn watch_clients(home: &Home, remote_keys: &Arc<ClientKeys>) -> Watched {
    let remote_keys = Arc::clone(remote_keys);
    (home.clients_path(), Box::new(move || remote_keys.refresh()))
}

/// A file, and what to do when it changes.
type Watched = (PathBuf, Box<dyn FnMut() + Send>);

/// One thread that calls a file's reload whenever it changes, so `dshare keys` and
/// `dshare client` act on a running node without a restart. Stopped with the node,
/// so a node started and stopped in-process leaves no thread behind.
struct Watcher {
    /// Dropped to stop the thread at once rather than after its next look.
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

impl Watcher {
    fn start(mut files: Vec<Watched>) -> Watcher {
        let modified = |path: &PathBuf| std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let mut seen: Vec<_> = files.iter().map(|(path, _)| modified(path)).collect();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("file-watch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(WATCH_PERIOD) {
                    for ((path, reload), seen) in files.iter_mut().zip(&mut seen) {
                        let now = modified(path);
                        if now != *seen {
                            *seen = now;
                            reload();
                        }
                    }
                }
            })
            .expect("spawn a file watcher");
        Watcher { stop, thread }
    }

    fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, mpsc};
    use std::time::{Duration, Instant};

    use super::{WATCH_PERIOD, Watcher};

    #[test]
    fn a_watcher_sees_a_change_and_stops_without_waiting_out_its_period() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("watched");
        let (seen, changes) = mpsc::channel();
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let reload = move || {
            counted.fetch_add(1, Ordering::SeqCst);
            let _ = seen.send(());
        };
        let watcher = Watcher::start(vec![(path.clone(), Box::new(reload))]);
        std::fs::write(&path, "x").unwrap();
        changes.recv_timeout(Duration::from_secs(10)).unwrap();
        let asked = Instant::now();
        watcher.stop();
        assert!(asked.elapsed() < WATCH_PERIOD, "{:?}", asked.elapsed());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
