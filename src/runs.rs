//! The report of a `dshare run`: a first line for people and, as the body's last line,
//! a trailer that `log --json` parses into a `run` object. The message format is
//! signed and fixed, so all of it lives in the body (docs/COOKBOOK.md, "Run reports").

use serde::{Deserialize, Serialize};

/// What starts the body's last line when it carries a run's fields.
pub const TRAILER: &str = "dshare-run: ";

/// The trailer's version: a reader ignores a trailer of another version.
pub const VERSION: u32 = 1;

/// Longest `--name` and host name kept, in bytes: the first line stays a line.
pub const MAX_NAME: usize = 200;

/// Room kept in the body for the first line and the trailer, so the tail never pushes
/// a report over the message size limit.
const RESERVE: usize = 2 * 1024;

/// Most bytes of output a report carries, whatever `--tail` asks.
pub const MAX_TAIL: usize = crate::message::MAX_BODY - RESERVE;

/// Which of a run's reports this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    Start,
    End,
}

/// A run's fields, as in the trailer and in `log --json`'s `run` object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub v: u32,
    pub event: Event,
    pub name: String,
    /// The same for a run's start and end reports.
    pub id: String,
    pub host: String,
    /// When the command was started, in milliseconds since the Unix epoch.
    pub started_ms: u64,
    /// The exit status as a shell sees it (128+N for signal N); end reports only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<i32>,
    /// The signal that ended the command, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Bytes of output in the report (the tail), of `output_bytes` in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
}

impl Run {
    /// True for an end report of a command that exited 0.
    pub fn succeeded(&self) -> bool {
        self.event == Event::End && self.status == Some(0)
    }

    /// When the run finished (end reports) or started.
    pub fn at_ms(&self) -> u64 {
        self.started_ms + self.duration_ms.unwrap_or(0)
    }

    /// The first line of the report: what happened, for people.
    pub fn headline(&self) -> String {
        let run = format!("on {} (run {})", self.host, self.id);
        let took = crate::time::span(self.duration_ms.unwrap_or(0));
        match (self.event, self.signal, self.status) {
            (Event::Start, _, _) => format!("run {}: started {run}", self.name),
            (Event::End, Some(sig), _) => format!(
                "run {}: KILLED by signal {sig} ({}) after {took} {run}",
                self.name,
                signal_name(sig)
            ),
            (Event::End, None, Some(0)) => format!("run {}: ok after {took} {run}", self.name),
            (Event::End, None, status) => format!(
                "run {}: FAILED with exit {} after {took} {run}",
                self.name,
                status.unwrap_or(-1)
            ),
        }
    }
}

/// The whole body: the headline, the tail of the output (if any) and the trailer.
pub fn body(run: &Run, tail: &str) -> String {
    let mut body = run.headline();
    if !tail.is_empty() {
        body.push_str(&format!("\n--- last {} bytes of output ---\n", tail.len()));
        body.push_str(tail);
        if !tail.ends_with('\n') {
            body.push('\n');
        }
    } else {
        body.push('\n');
    }
    body.push_str(TRAILER);
    body.push_str(&serde_json::to_string(run).expect("runs serialize"));
    body
}

/// The run a body reports, if its last line is a trailer of this version.
pub fn parse(body: &str) -> Option<Run> {
    let last = body.rsplit_once('\n').map_or(body, |(_, last)| last);
    let run: Run = serde_json::from_str(last.strip_prefix(TRAILER)?).ok()?;
    (run.v == VERSION).then_some(run)
}

/// The last `limit` bytes of `output` as text: invalid UTF-8 shown as U+FFFD, never a
/// character cut in half, never more than `limit` bytes.
pub fn tail_text(output: &[u8], limit: usize) -> String {
    let mut start = output.len().saturating_sub(limit);
    // Skip the continuation bytes of a character the byte limit cut (three at most).
    for _ in 0..3 {
        if start < output.len() && output[start] & 0xC0 == 0x80 {
            start += 1;
        }
    }
    let mut text = String::from_utf8_lossy(&output[start..]).into_owned();
    // U+FFFD is three bytes for as little as one invalid byte: cut again if it grew.
    if text.len() > limit {
        let mut cut = text.len() - limit;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text.drain(..cut);
    }
    text
}

/// A name that stays on one line and within [`MAX_NAME`].
pub fn clean_name(name: &str) -> String {
    let one_line: String = name
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut end = one_line.len().min(MAX_NAME);
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    one_line[..end].trim().to_string()
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => "SIGHUP",
        2 => "SIGINT",
        3 => "SIGQUIT",
        6 => "SIGABRT",
        9 => "SIGKILL",
        11 => "SIGSEGV",
        13 => "SIGPIPE",
        14 => "SIGALRM",
        15 => "SIGTERM",
        _ => "signal",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(status: i32, signal: Option<i32>) -> Run {
        Run {
            v: VERSION,
            event: Event::End,
            name: "backup".into(),
            id: "0123456789abcdef".into(),
            host: "db-1".into(),
            started_ms: 1_000,
            status: Some(status),
            signal,
            duration_ms: Some(61_000),
            tail_bytes: Some(3),
            output_bytes: Some(3),
        }
    }

    #[test]
    fn a_body_reads_well_and_parses_back() {
        let run = ended(0, None);
        let body = body(&run, "ok\n");
        assert!(
            body.starts_with("run backup: ok after 1m 1s on db-1 (run 0123456789abcdef)\n"),
            "{body}"
        );
        assert_eq!(parse(&body), Some(run));
        let killed = ended(137, Some(9));
        assert!(
            super::body(&killed, "")
                .starts_with("run backup: KILLED by signal 9 (SIGKILL) after 1m 1s")
        );
        assert!(ended(1, None).headline().contains("FAILED with exit 1"));
    }

    #[test]
    fn only_a_last_line_trailer_counts() {
        let run = ended(0, None);
        let inner = body(&run, "");
        assert_eq!(parse(&format!("{inner}\nmore")), None);
        assert_eq!(parse("dshare-run: {not json"), None);
        assert_eq!(parse("plain text"), None);
        let other = inner.replace("\"v\":1", "\"v\":2");
        assert_eq!(parse(&other), None);
    }

    #[test]
    fn the_tail_never_cuts_a_character_nor_passes_its_limit() {
        assert_eq!(tail_text(b"hello", 3), "llo");
        // "é" is two bytes; a limit that cuts it drops its half.
        assert_eq!(tail_text("aé".as_bytes(), 1), "");
        assert_eq!(tail_text("aéb".as_bytes(), 2), "b");
        assert_eq!(tail_text("aéb".as_bytes(), 3), "éb");
        let invalid = [b'x', 0xFF, 0xFF, b'y'];
        let text = tail_text(&invalid, 4);
        assert!(text.len() <= 4, "{text:?}");
        assert!(text.ends_with('y'));
        assert_eq!(tail_text(b"", 10), "");
    }

    #[test]
    fn a_report_with_the_largest_tail_fits_in_a_message() {
        let run = Run {
            name: "n".repeat(MAX_NAME),
            host: "h".repeat(MAX_NAME),
            ..ended(255, Some(64))
        };
        let tail = tail_text(&vec![b'z'; MAX_TAIL * 2], MAX_TAIL);
        let body = body(&run, &tail);
        assert!(crate::message::check_body(&body).is_ok(), "{}", body.len());
    }

    #[test]
    fn names_stay_on_one_line() {
        assert_eq!(clean_name("a\nb"), "a b");
        assert_eq!(clean_name(&"é".repeat(200)).len(), MAX_NAME);
    }
}
