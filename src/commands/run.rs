//! `dshare run -- CMD`: runs a command with its input and output passed through, then
//! broadcasts one report of what happened; and `dshare spool`. A job never fails or
//! hangs because of its report: each delivery is bounded in time, and a report no
//! node took waits in the spool.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::cli::{RunArgs, SpoolArgs, SpoolCommand};
use crate::exit::{self, Code};
use crate::home::Home;
use crate::runs::{self, Event, Run};
use crate::spool::{self, Delivery, Entry, Spool, Target};

use super::Output;

/// How long the output pipes may stay open once the command has exited (a daemon it
/// started may hold them): then the report is sent with what was read.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Signals passed on to the command, so that stopping `dshare run` (cron, CI, systemd,
/// Ctrl-C) stops the command and the report says so.
const FORWARDED: [i32; 4] = [
    signal_hook::consts::SIGHUP,
    signal_hook::consts::SIGINT,
    signal_hook::consts::SIGQUIT,
    signal_hook::consts::SIGTERM,
];

pub fn run(home: &Home, args: &RunArgs, out: Output) -> Result<Code> {
    let spool = args.spool.open()?;
    let target = target_of(home, args.client.as_deref(), &args.node);
    let started_ms = crate::time::now_ms();
    let mut report = Run {
        v: runs::VERSION,
        event: Event::Start,
        name: runs::clean_name(&name_of(args)),
        id: spool::random_key(""),
        host: runs::clean_name(&hostname()),
        started_ms,
        status: None,
        signal: None,
        duration_ms: None,
        tail_bytes: None,
        output_bytes: None,
    };
    if args.start {
        send_report(&spool, &target, &report, "", args.timeout, out);
    }
    let tail_limit = usize::try_from(args.tail)
        .unwrap_or(usize::MAX)
        .min(runs::MAX_TAIL);
    let started = Instant::now();
    let finished = supervise(&args.command, tail_limit);
    let tail = runs::tail_text(&finished.tail, tail_limit);
    report.event = Event::End;
    report.status = Some(finished.status);
    report.signal = finished.signal;
    report.duration_ms = Some(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX));
    report.tail_bytes = Some(tail.len() as u64);
    report.output_bytes = Some(finished.total);
    send_report(&spool, &target, &report, &tail, args.timeout, out);
    let _ = std::io::stdout().flush();
    // The command's own status, which `Code` (0, 1, 2) cannot carry.
    std::process::exit(finished.status)
}

/// Where reports and sends go: the client key's node, else `--node`, else the home's.
pub fn target_of(home: &Home, client: Option<&str>, node: &crate::cli::NodeArgs) -> Target {
    match client {
        Some(line) => Target::Client {
            line: line.to_string(),
        },
        None => Target::Node {
            home: Some(home.dir().to_path_buf()),
            url: node.node.clone(),
            // A token file is read now: the spool keeps what delivery needs (0600).
            token: node.token.clone().or_else(|| {
                let file = node.token_file.as_ref()?;
                crate::net::client::read_secret_file(file, "client token").ok()
            }),
        },
    }
}

/// Delivers older requests that are due, then this report; spools it if no node took
/// it. Says what happened on stderr; never fails the job.
fn send_report(
    spool: &Spool,
    target: &Target,
    run: &Run,
    tail: &str,
    timeout: Duration,
    out: Output,
) {
    flush_on_the_way(spool, target, timeout, out);
    let key = format!(
        "run-{}-{}",
        run.id,
        if run.event == Event::Start {
            "start"
        } else {
            "end"
        }
    );
    let body = runs::body(run, tail);
    match spool::deliver(target, &body, &key, timeout) {
        Delivery::Answered(Ok(_)) => {}
        Delivery::Answered(Err(e)) => {
            out.note(format!("the report of run {} was refused: {e:#}", run.id))
        }
        Delivery::Retry(why) => {
            let entry = Entry::new(key, body, target.clone(), crate::time::now_ms());
            match spool.keep(&entry) {
                Ok(path) => out.note(format!(
                    "the report of run {} waits in the spool ({}); it is delivered by the next run or `dshare spool flush`: {why}",
                    run.id,
                    path.display()
                )),
                Err(e) => crate::error!("the report of run {} is lost: {why}; {e:#}", run.id),
            }
        }
    }
}

/// On the way to its own request, a `send` or `run` delivers a few that wait.
pub fn flush_on_the_way(spool: &Spool, target: &Target, timeout: Duration, out: Output) {
    match spool.flush(false, Some(target), spool::FLUSH_ON_THE_WAY, timeout) {
        Ok(done) => {
            if !done.delivered.is_empty() {
                out.note(format!(
                    "delivered {} request(s) from the spool {}",
                    done.delivered.len(),
                    spool.dir().display()
                ));
            }
            for (entry, why) in &done.refused {
                crate::warning!(
                    "a spooled request (key {}) was refused and moved aside: {why}",
                    entry.key
                );
            }
        }
        Err(e) => crate::warning!("cannot flush the spool: {e:#}"),
    }
}

/// `--name`, else the command's file name.
fn name_of(args: &RunArgs) -> String {
    args.name.clone().unwrap_or_else(|| {
        let program = std::path::Path::new(&args.command[0]);
        program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into_owned()
    })
}

/// This machine's name, as the kernel knows it.
fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown".into())
}

/// How the command ended.
struct Finished {
    /// As a shell reports it: the exit code, or 128+N for signal N.
    status: i32,
    signal: Option<i32>,
    /// The last bytes of stdout and stderr, in the order they were read.
    tail: Vec<u8>,
    /// Bytes of output in all.
    total: u64,
}

/// The last bytes of the output, bounded.
struct Tail {
    bytes: VecDeque<u8>,
    limit: usize,
    total: u64,
}

impl Tail {
    fn push(&mut self, chunk: &[u8]) {
        self.total += chunk.len() as u64;
        let keep = chunk.len().min(self.limit);
        self.bytes.extend(&chunk[chunk.len() - keep..]);
        let over = self.bytes.len().saturating_sub(self.limit);
        self.bytes.drain(..over);
    }
}

/// Runs `command` to its end: stdin inherited, stdout and stderr copied byte for byte
/// to ours while their tail is kept, the stopping signals passed on.
fn supervise(command: &[OsString], tail_limit: usize) -> Finished {
    let mut child = match Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            let why = format!("cannot start {}: {e}", command[0].to_string_lossy());
            crate::error!("{why}");
            let why = format!("dshare: {why}\n");
            // The shell's numbers: 127 not found, 126 found but not runnable.
            let status = if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            return Finished {
                status,
                signal: None,
                total: 0,
                tail: why.into_bytes(),
            };
        }
    };
    let forwarder = forward_signals(child.id());
    let tail = Arc::new(Mutex::new(Tail {
        bytes: VecDeque::new(),
        limit: tail_limit,
        total: 0,
    }));
    let (done_tx, done_rx) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");
    copy(
        stdout,
        std::io::stdout(),
        Arc::clone(&tail),
        done_tx.clone(),
    );
    copy(stderr, std::io::stderr(), Arc::clone(&tail), done_tx);
    let status = child.wait();
    let grace = Instant::now() + DRAIN_GRACE;
    for _ in 0..2 {
        let left = grace.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    if let Some(handle) = forwarder {
        handle.close();
    }
    let (status, signal) = match status {
        Ok(s) => match (s.code(), s.signal()) {
            (Some(code), _) => (code, None),
            (None, Some(sig)) => (128 + sig, Some(sig)),
            (None, None) => (1, None),
        },
        Err(_) => (1, None),
    };
    let tail = tail.lock().expect("tail lock");
    Finished {
        status,
        signal,
        tail: tail.bytes.iter().copied().collect(),
        total: tail.total,
    }
}

/// Copies `from` to `to` on a thread, flushing each chunk (pass-through must not wait
/// for a newline), and keeps the tail. A closed `to` does not stop the reading: the
/// command is not made to fail by what happens to our output.
fn copy(
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    tail: Arc<Mutex<Tail>>,
    done: mpsc::Sender<()>,
) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        let mut writing = true;
        loop {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if writing {
                        writing = to.write_all(&buf[..n]).and_then(|()| to.flush()).is_ok();
                    }
                    tail.lock().expect("tail lock").push(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = done.send(());
    });
}

/// Passes the stopping signals sent to this process on to `pid` until closed. A
/// signal the kernel raised (a terminal's Ctrl-C or Ctrl-\\, or a hang-up) went to
/// the whole foreground process group, the job included: passing it on would make
/// the job see it twice.
fn forward_signals(pid: u32) -> Option<signal_hook::iterator::Handle> {
    use signal_hook::iterator::SignalsInfo;
    use signal_hook::iterator::exfiltrator::WithOrigin;
    use signal_hook::low_level::siginfo::Cause;
    let mut signals = SignalsInfo::<WithOrigin>::new(FORWARDED).ok()?;
    let handle = signals.handle();
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    std::thread::spawn(move || {
        for origin in signals.forever() {
            if matches!(origin.cause, Cause::Kernel) {
                continue;
            }
            if let Some(sig) = rustix::process::Signal::from_named_raw(origin.signal) {
                let _ = rustix::process::kill_process(pid, sig);
            }
        }
    });
    Some(handle)
}

/// `dshare spool list|flush`.
pub fn spool(_home: &Home, cmd: &SpoolCommand, out: Output) -> Result<Code> {
    match cmd {
        SpoolCommand::List { spool } => list(spool, out),
        SpoolCommand::Flush {
            all,
            timeout,
            spool,
        } => flush(spool, *all, *timeout, out),
    }
}

fn list(args: &SpoolArgs, out: Output) -> Result<Code> {
    let spool = args.open()?;
    let waiting = spool.list()?;
    let refused = spool.refused()?;
    for (state, items) in [("waiting", &waiting), ("refused", &refused)] {
        for (path, e) in items {
            if out.json {
                let value = serde_json::json!({
                    "state": state,
                    "key": e.key,
                    "to": e.target.describe(),
                    "created_ms": e.created_ms,
                    "attempts": e.attempts,
                    "next_ms": e.next_ms,
                    "last_error": e.last_error,
                    "first_line": e.body.lines().next().unwrap_or(""),
                    "file": path,
                });
                println!("{value}");
            } else {
                println!(
                    "{state} {} key {} to {}, {} tries{}: {}",
                    crate::time::utc(e.created_ms),
                    e.key,
                    e.target.describe(),
                    e.attempts,
                    e.last_error
                        .as_deref()
                        .map(|w| format!(" (last: {w})"))
                        .unwrap_or_default(),
                    e.body.lines().next().unwrap_or("")
                );
            }
        }
    }
    if waiting.is_empty() && refused.is_empty() {
        out.note(format!("the spool {} is empty", spool.dir().display()));
    }
    Ok(Code::Success)
}

fn flush(args: &SpoolArgs, all: bool, timeout: Duration, out: Output) -> Result<Code> {
    let spool = args.open()?;
    let done = spool
        .flush(all, None, usize::MAX, timeout)
        .with_context(|| format!("cannot flush the spool {}", spool.dir().display()))?;
    for (entry, value) in &done.delivered {
        if out.json {
            println!(
                "{}",
                serde_json::json!({"key": entry.key, "delivered": value.message.id, "repeat": value.repeat.then_some(true)})
            );
        } else if !out.quiet {
            println!(
                "delivered {} (key {})",
                value.message.id.to_hex(),
                entry.key
            );
        }
    }
    for (entry, why) in &done.refused {
        crate::warning!("refused (key {}), moved aside: {why}", entry.key);
    }
    if done.failed > 0 || !done.refused.is_empty() {
        return Err(exit::failure(format!(
            "{} request(s) still wait in {}, {} could not be delivered now and {} were refused (`dshare spool list` says why)",
            done.waiting,
            spool.dir().display(),
            done.failed,
            done.refused.len()
        )));
    }
    if done.waiting > 0 {
        out.note(format!(
            "{} request(s) wait for their next try (`dshare spool flush --all` tries them now)",
            done.waiting
        ));
    }
    Ok(Code::Success)
}
