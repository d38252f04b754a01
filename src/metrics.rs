//! The node's counters and histograms, and their rendering in the Prometheus text
//! exposition format (version 0.0.4) for `GET /metrics`.
//!
//! One process-wide [`METRICS`]: the node is one process, and a counter bumped where
//! the event happens (the writer, the peer API, a hook) needs no handle threaded
//! through every layer. Every label has a fixed set of values named by an enum, so no
//! series appears per message, per author or per peer: the number of series is a
//! constant of the build.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// A number that only goes up (resets only when the process starts).
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Relaxed)
    }
}

/// Upper bounds of the latency histograms, in seconds: from 50 µs (an fsync on tmpfs,
/// a send to a warm node) to 2.5 s (a disk that stalls), roughly ×2.5 apart.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5,
];

/// Durations counted into [`LATENCY_BUCKETS`], with their sum in nanoseconds (exact
/// integer addition; rendered in seconds).
#[derive(Debug)]
pub struct Histogram {
    /// Observations at or below each bound (not cumulative: summed when rendered).
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    /// Observations above the last bound.
    over: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub const fn new() -> Histogram {
        Histogram {
            buckets: [const { AtomicU64::new(0) }; LATENCY_BUCKETS.len()],
            over: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        match LATENCY_BUCKETS.iter().position(|&b| secs <= b) {
            Some(i) => self.buckets[i].fetch_add(1, Relaxed),
            None => self.over.fetch_add(1, Relaxed),
        };
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    /// Cumulative counts per bound, then the total count.
    fn cumulative(&self) -> (Vec<u64>, u64) {
        let mut running = 0;
        let per_bound = self
            .buckets
            .iter()
            .map(|b| {
                running += b.load(Relaxed);
                running
            })
            .collect();
        (per_bound, running + self.over.load(Relaxed))
    }
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram::new()
    }
}

/// Where a stored message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Signed here (`send`, the page, a client key).
    Local,
    /// Pushed by a peer.
    Push,
    /// Pulled from a peer by repair.
    Pull,
}

impl Origin {
    pub const ALL: [Origin; 3] = [Origin::Local, Origin::Push, Origin::Pull];

    pub fn label(self) -> &'static str {
        match self {
            Origin::Local => "local",
            Origin::Push => "push",
            Origin::Pull => "pull",
        }
    }
}

/// Why an input was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A sealed request that did not open (wrong key, tampered, not sealed at all).
    Seal,
    /// A sealed request seen before, or sealed too long ago.
    Replay,
    /// A message whose signature does not verify.
    Signature,
    /// A message whose id is not the hash of its fields.
    Id,
    /// Over a size limit (body, URL, request, message).
    Size,
    /// Refused by a rule: author list, sequence, clock.
    Rule,
    /// The client API without a valid token or client key.
    Auth,
}

impl Refusal {
    pub const ALL: [Refusal; 7] = [
        Refusal::Seal,
        Refusal::Replay,
        Refusal::Signature,
        Refusal::Id,
        Refusal::Size,
        Refusal::Rule,
        Refusal::Auth,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Refusal::Seal => "seal",
            Refusal::Replay => "replay",
            Refusal::Signature => "signature",
            Refusal::Id => "id",
            Refusal::Size => "size",
            Refusal::Rule => "rule",
            Refusal::Auth => "auth",
        }
    }

    fn index(self) -> usize {
        Refusal::ALL.iter().position(|&r| r == self).unwrap_or(0)
    }
}

/// The routes of the peer API, for the bytes counted on each.
pub const PEER_ROUTES: [&str; 6] = ["hello", "heads", "range", "push", "reconcile", "offer"];

/// Every counter and histogram the node keeps. Values known elsewhere (messages
/// held, peers by state) are read when a scrape comes, into a [`Snapshot`].
#[derive(Debug)]
pub struct Metrics {
    pub stored: [Counter; 3],
    pub refused: [Counter; 7],
    pub commits: Counter,
    pub fsync: Histogram,
    pub send: Histogram,
    pub repair_rounds: Counter,
    pub repair_bytes: Counter,
    /// Sealed bytes this node's peer API received (requests) and sent (answers), by
    /// route as in [`PEER_ROUTES`]: what each operation costs the side that serves it.
    pub peer_api_bytes_in: [Counter; PEER_ROUTES.len()],
    pub peer_api_bytes_out: [Counter; PEER_ROUTES.len()],
    /// Requests this node's peer API answered, by route: each costs a request and
    /// an answer on both sides whatever its size, which bytes alone do not show.
    pub peer_api_requests: [Counter; PEER_ROUTES.len()],
    /// Bytes of node-to-node traffic, both ways, each request and answer counted with
    /// [`PEER_HTTP_HEAD`] for its HTTP head: a node's cost on the wire at rest.
    pub peer_bytes_out: Counter,
    pub peer_bytes_in: Counter,
    /// Times failure detection came to suspect a member (its probe and the indirect
    /// probes through others went unanswered), whether or not it was down after.
    pub member_suspicions: Counter,
    /// Times this node took a new membership identity because the network held the
    /// old one down (it was declared down, or told so when it spoke).
    pub member_renewals: Counter,
    /// Times a peer of the table turned `down` (SWIM declared it, or an exchange or
    /// push could not reach it): with no node stopped, each one was false.
    pub peers_shown_down: Counter,
    pub hook_runs: Counter,
    pub hook_failures: Counter,
}

pub static METRICS: Metrics = Metrics::new();

/// What the peer byte counters add for the HTTP head of one request or answer (a
/// peer request's head is about 130 bytes, an answer's about 160): the bodies are
/// counted exactly, the heads by this estimate, TCP/IP framing not at all.
pub const PEER_HTTP_HEAD: u64 = 150;

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    pub const fn new() -> Metrics {
        Metrics {
            stored: [const { Counter::new() }; 3],
            refused: [const { Counter::new() }; 7],
            commits: Counter::new(),
            fsync: Histogram::new(),
            send: Histogram::new(),
            repair_rounds: Counter::new(),
            repair_bytes: Counter::new(),
            peer_api_bytes_in: [const { Counter::new() }; PEER_ROUTES.len()],
            peer_api_bytes_out: [const { Counter::new() }; PEER_ROUTES.len()],
            peer_api_requests: [const { Counter::new() }; PEER_ROUTES.len()],
            peer_bytes_out: Counter::new(),
            peer_bytes_in: Counter::new(),
            member_suspicions: Counter::new(),
            member_renewals: Counter::new(),
            peers_shown_down: Counter::new(),
            hook_runs: Counter::new(),
            hook_failures: Counter::new(),
        }
    }

    pub fn stored(&self, origin: Origin, n: u64) {
        let i = Origin::ALL.iter().position(|&o| o == origin).unwrap_or(0);
        self.stored[i].add(n);
    }

    pub fn refused(&self, why: Refusal) {
        self.refused[why.index()].inc();
    }

    /// Counts one peer-API exchange on `path` (`/v1/hello`…), and its bytes: what
    /// travels between nodes, the figure repair is judged by. Other paths count
    /// nothing.
    pub fn peer_bytes(&self, path: &str, received: usize, sent: usize) {
        let route = path.strip_prefix("/v1/").unwrap_or_default();
        if let Some(i) = PEER_ROUTES.iter().position(|&r| r == route) {
            self.peer_api_bytes_in[i].add(received as u64);
            self.peer_api_bytes_out[i].add(sent as u64);
            self.peer_api_requests[i].inc();
        }
    }
}

static START_MS: AtomicU64 = AtomicU64::new(0);

/// Records now as the node's start (the first call wins).
pub fn mark_start() {
    let _ = START_MS.compare_exchange(0, crate::time::now_ms(), Relaxed, Relaxed);
}

/// When [`mark_start`] was called, in seconds since the Unix epoch.
pub fn start_time() -> f64 {
    START_MS.load(Relaxed) as f64 / 1000.0
}

/// Peers by state, as a scrape finds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerCounts {
    pub up: u64,
    pub down: u64,
    pub unknown: u64,
}

/// The values a scrape reads from the node's parts.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: &'static str,
    /// Seconds since the Unix epoch when the node started.
    pub start_time: f64,
    pub messages: u64,
    pub authors: u64,
    pub box_bytes: u64,
    pub forks: u64,
    pub peers: PeerCounts,
    /// Messages the peer furthest behind lacks, from the last exchanges.
    pub worst_peer_behind: u64,
    pub push_queue_bytes: u64,
    pub recovering: bool,
}

/// The whole exposition: the snapshot's gauges, then every counter and histogram.
pub fn render(m: &Metrics, s: &Snapshot) -> String {
    let mut out = Exposition::default();
    out.family(
        "dshare_build_info",
        "gauge",
        "Always 1; the version is its label.",
    );
    out.sample("dshare_build_info", &[("version", s.version)], 1.0);
    out.single(
        "dshare_start_time_seconds",
        "gauge",
        "When the node started, in seconds since the Unix epoch.",
        s.start_time,
    );
    out.single(
        "dshare_messages",
        "gauge",
        "Messages held in the box.",
        s.messages as f64,
    );
    out.single(
        "dshare_authors",
        "gauge",
        "Authors with at least one message in the box.",
        s.authors as f64,
    );
    out.single(
        "dshare_box_bytes",
        "gauge",
        "Size of the box file.",
        s.box_bytes as f64,
    );
    out.single(
        "dshare_recovering",
        "gauge",
        "1 while the node waits for its peers to send back the lost end of its box.",
        if s.recovering { 1.0 } else { 0.0 },
    );
    out.single(
        "dshare_forks",
        "gauge",
        "Forks recorded: an author signed two messages with the same seq.",
        s.forks as f64,
    );
    out.family("dshare_peers", "gauge", "Known peers by state.");
    for (state, n) in [
        ("up", s.peers.up),
        ("down", s.peers.down),
        ("unknown", s.peers.unknown),
    ] {
        out.sample("dshare_peers", &[("state", state)], n as f64);
    }
    out.single(
        "dshare_peer_behind_max_messages",
        "gauge",
        "Messages the peer furthest behind lacks, as of the last exchanges.",
        s.worst_peer_behind as f64,
    );
    out.single(
        "dshare_push_queue_bytes",
        "gauge",
        "Bytes of messages queued for peers.",
        s.push_queue_bytes as f64,
    );

    out.family(
        "dshare_messages_stored_total",
        "counter",
        "Messages stored, by where they came from.",
    );
    for origin in Origin::ALL {
        let c = &m.stored[Origin::ALL.iter().position(|&o| o == origin).unwrap_or(0)];
        out.sample(
            "dshare_messages_stored_total",
            &[("origin", origin.label())],
            c.get() as f64,
        );
    }
    out.family(
        "dshare_inputs_refused_total",
        "counter",
        "Requests and messages refused by a check, by reason.",
    );
    for why in Refusal::ALL {
        out.sample(
            "dshare_inputs_refused_total",
            &[("reason", why.label())],
            m.refused[why.index()].get() as f64,
        );
    }
    out.single(
        "dshare_commits_total",
        "counter",
        "Group commits: writes of the box followed by one fsync.",
        m.commits.get() as f64,
    );
    out.histogram(
        "dshare_fsync_seconds",
        "Time one group commit's fsync took.",
        &m.fsync,
    );
    out.histogram(
        "dshare_send_seconds",
        "Time from a local send's arrival to its answer (stored and on disk).",
        &m.send,
    );
    out.single(
        "dshare_repair_rounds_total",
        "counter",
        "Repair exchanges with peers (digest compared, differences pulled).",
        m.repair_rounds.get() as f64,
    );
    out.single(
        "dshare_repair_bytes_total",
        "counter",
        "Bytes of messages pulled by repair.",
        m.repair_bytes.get() as f64,
    );
    out.family(
        "dshare_peer_bytes_total",
        "counter",
        "Sealed bytes this node's peer API served, by route: received (requests) and sent (answers).",
    );
    for (i, route) in PEER_ROUTES.iter().enumerate() {
        for (direction, c) in [
            ("in", &m.peer_api_bytes_in[i]),
            ("out", &m.peer_api_bytes_out[i]),
        ] {
            out.sample(
                "dshare_peer_bytes_total",
                &[("route", route), ("direction", direction)],
                c.get() as f64,
            );
        }
    }
    out.family(
        "dshare_peer_requests_total",
        "counter",
        "Requests this node's peer API answered, by route.",
    );
    for (i, route) in PEER_ROUTES.iter().enumerate() {
        out.sample(
            "dshare_peer_requests_total",
            &[("route", route)],
            m.peer_api_requests[i].get() as f64,
        );
    }
    out.single(
        "dshare_peer_bytes_sent_total",
        "counter",
        "Bytes sent to peers (requests and answers), HTTP heads estimated.",
        m.peer_bytes_out.get() as f64,
    );
    out.single(
        "dshare_peer_bytes_received_total",
        "counter",
        "Bytes received from peers (requests and answers), HTTP heads estimated.",
        m.peer_bytes_in.get() as f64,
    );
    out.single(
        "dshare_member_suspicions_total",
        "counter",
        "Times failure detection suspected a member: its probes went unanswered.",
        m.member_suspicions.get() as f64,
    );
    out.single(
        "dshare_member_renewals_total",
        "counter",
        "Times this node took a new membership identity: the network held it down.",
        m.member_renewals.get() as f64,
    );
    out.single(
        "dshare_peers_shown_down_total",
        "counter",
        "Times a peer turned down: declared by failure detection, or unreachable.",
        m.peers_shown_down.get() as f64,
    );
    out.single(
        "dshare_hook_runs_total",
        "counter",
        "Runs of the --on-message hook.",
        m.hook_runs.get() as f64,
    );
    out.single(
        "dshare_hook_failures_total",
        "counter",
        "Runs of the --on-message hook that failed.",
        m.hook_failures.get() as f64,
    );
    out.text
}

/// Writes families and samples in the text format.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn single(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {}", number(value));
    }

    fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.family(name, "histogram", help);
        let (per_bound, count) = h.cumulative();
        let bucket = format!("{name}_bucket");
        for (bound, n) in LATENCY_BUCKETS.iter().zip(per_bound) {
            self.sample(&bucket, &[("le", &number(*bound))], n as f64);
        }
        self.sample(&bucket, &[("le", "+Inf")], count as f64);
        let sum = h.sum_ns.load(Relaxed) as f64 / 1e9;
        self.sample(&format!("{name}_sum"), &[], sum);
        self.sample(&format!("{name}_count"), &[], count as f64);
    }
}

/// A sample value as Prometheus writes it: integers without a fraction.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Metrics {
        Metrics::new()
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_the_count() {
        let m = fresh();
        m.fsync.observe(Duration::from_micros(30)); // first bucket
        m.fsync.observe(Duration::from_millis(3)); // le=0.005
        m.fsync.observe(Duration::from_secs(10)); // over every bound
        let text = render(&m, &Snapshot::default());
        assert!(text.contains("dshare_fsync_seconds_bucket{le=\"0.00005\"} 1\n"));
        assert!(text.contains("dshare_fsync_seconds_bucket{le=\"0.0025\"} 1\n"));
        assert!(text.contains("dshare_fsync_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("dshare_fsync_seconds_bucket{le=\"2.5\"} 2\n"));
        assert!(text.contains("dshare_fsync_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("dshare_fsync_seconds_count 3\n"));
        assert!(text.contains("dshare_fsync_seconds_sum 10.00303\n"));
    }

    #[test]
    fn counters_carry_their_fixed_labels() {
        let m = fresh();
        m.stored(Origin::Push, 5);
        m.refused(Refusal::Replay);
        m.refused(Refusal::Replay);
        let text = render(&m, &Snapshot::default());
        assert!(text.contains("dshare_messages_stored_total{origin=\"push\"} 5\n"));
        assert!(text.contains("dshare_messages_stored_total{origin=\"local\"} 0\n"));
        assert!(text.contains("dshare_inputs_refused_total{reason=\"replay\"} 2\n"));
        assert!(text.contains("# TYPE dshare_inputs_refused_total counter\n"));
    }

    #[test]
    fn every_family_is_declared_once_before_its_samples() {
        let text = render(&fresh(), &Snapshot::default());
        let mut declared = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap();
                assert!(declared.insert(name.to_string()), "{name} declared twice");
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| declared.contains(*f)))
                    .unwrap_or(name);
                assert!(declared.contains(family), "{name} before its # TYPE");
            }
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
