//! Diagnostics on stderr: one process-wide setting, made once at start, and the
//! [`error!`](crate::error), [`warning!`](crate::warning) and [`note!`](crate::note)
//! macros that every diagnostic goes through.
//!
//! Before this, `-q` reached only the code it was passed to as a `bool`, and the core
//! printed with raw `eprintln!` whatever `-q` said; a log shipper had no format to
//! parse. Now the command line decides once (ripgrep's `messages.rs` is the model):
//! - `-q` silences notes. Warnings and errors always print: they report something
//!   wrong (a peer down, a damaged line, a hook that failed), and a quiet cron job or
//!   service is exactly where nobody else would see it.
//! - `--log-format text` (the default) prints `dshare: error: …`, `dshare: warning: …`
//!   and `dshare: …` for notes, as people read them. `--log-format json` prints one
//!   JSON object per line, `{"ts":"…","level":"warning","msg":"…"}` plus fields such
//!   as `"peer"`, for log shippers; a panic is reported the same way, so every line a
//!   node writes on stderr parses.
//!
//! Data a command was asked for (ids, the log, `--json` answers) is not a diagnostic:
//! it goes to stdout and is not affected.

use std::fmt;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// How diagnostics are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// `dshare: warning: …`, for people.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Whether notes are printed (`-q` silences them; warnings and errors always print).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Notes {
    #[default]
    Shown,
    Silenced,
}

/// How bad it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// The command, or a part of the node, could not do its job.
    Error,
    /// Something is wrong and the node carries on (peer down, damaged file, hook failed).
    Warning,
    /// What the node is doing, for the operator; silenced by `-q`.
    Note,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Note => "note",
        }
    }
}

/// The process-wide setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    pub format: Format,
    pub notes: Notes,
}

static SETTINGS: OnceLock<Settings> = OnceLock::new();

/// Makes the setting, once, before anything is printed; a later call changes nothing
/// (two parts of one process must not disagree on the format of its stderr). In the
/// JSON format a panic is reported as an error line too.
pub fn init(settings: Settings) {
    if SETTINGS.set(settings).is_ok() && settings.format == Format::Json {
        std::panic::set_hook(Box::new(|info| {
            let thread = std::thread::current();
            let thread = thread.name().unwrap_or("<unnamed>");
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| info.payload().downcast_ref::<String>().map(String::as_str))
                .unwrap_or("Box<dyn Any>");
            let place = info
                .location()
                .map(|l| format!(" at {}:{}:{}", l.file(), l.line(), l.column()))
                .unwrap_or_default();
            emit(
                Level::Error,
                &[("thread", thread)],
                format_args!("thread '{thread}' panicked{place}: {payload}"),
            );
        }));
    }
}

/// The setting in force: the default (text, notes shown) until [`init`].
pub fn settings() -> Settings {
    SETTINGS.get().copied().unwrap_or_default()
}

/// Writes one diagnostic on stderr, unless it is a note and notes are silenced.
/// `fields` are extra keys for the JSON format (the text format has them in `msg`).
/// The line goes out in one write, so lines from different threads do not mix.
pub fn emit(level: Level, fields: &[(&str, &str)], msg: fmt::Arguments<'_>) {
    let settings = settings();
    if level == Level::Note && settings.notes == Notes::Silenced {
        return;
    }
    let line = match settings.format {
        Format::Text => text_line(level, &msg),
        Format::Json => json_line(now_ms(), level, &msg.to_string(), fields),
    };
    write_line(&line);
}

/// One write, with any failure ignored: a node whose log pipe was closed keeps
/// serving (`eprint!` would panic on EPIPE), and there is nowhere to report it.
#[cfg(not(test))]
fn write_line(line: &str) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// In unit tests, through `eprint!` so that the test harness captures it.
#[cfg(test)]
fn write_line(line: &str) {
    eprint!("{line}");
}

/// `dshare: error: …`, `dshare: warning: …`, or `dshare: …` for a note. Control
/// characters are escaped (`\n` as the two characters `\` `n`): a message carries
/// text from files and peers, and a newline in it must not start a line that looks
/// like another diagnostic.
fn text_line(level: Level, msg: &dyn fmt::Display) -> String {
    let msg = msg.to_string();
    let msg = escape_controls(&msg);
    match level {
        Level::Note => format!("dshare: {msg}\n"),
        _ => format!("dshare: {}: {msg}\n", level.name()),
    }
}

/// `text` with every control character written as its Rust escape; the rest as is
/// (UTF-8 stays readable).
fn escape_controls(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return text.into();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// `{"ts":"…","level":"…","msg":"…",fields…}` and a newline. Keys come in this order
/// (easier to read than serde_json's sorted map); every string is escaped by
/// serde_json, so the line is valid JSON whatever the message holds. A field named
/// like one of the fixed keys is dropped rather than written twice.
fn json_line(ts_ms: u64, level: Level, msg: &str, fields: &[(&str, &str)]) -> String {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let mut line = format!(
        "{{\"ts\":{},\"level\":{},\"msg\":{}",
        quoted(&crate::time::utc_millis(ts_ms)),
        quoted(level.name()),
        quoted(msg)
    );
    for (key, value) in fields {
        if !["ts", "level", "msg"].contains(key) {
            line.push_str(&format!(",{}:{}", quoted(key), quoted(value)));
        }
    }
    line.push_str("}\n");
    line
}

/// The real wall clock: a log line's time is when it was written, whatever test
/// offset the node's message clock runs with.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// An error on stderr: `crate::error!("cannot …: {e}")`, or with JSON fields,
/// `crate::error!(peer = url; "…")`. Always printed.
#[macro_export]
macro_rules! error {
    ($($key:ident = $value:expr),+ ; $($arg:tt)+) => {
        $crate::diag::emit(
            $crate::diag::Level::Error,
            &[$((stringify!($key), &*$value)),+],
            format_args!($($arg)+),
        )
    };
    ($($arg:tt)+) => {
        $crate::diag::emit($crate::diag::Level::Error, &[], format_args!($($arg)+))
    };
}

/// A warning on stderr: `crate::warning!("cannot …: {e}")`, or with JSON fields,
/// `crate::warning!(peer = url; "…")`. Always printed.
#[macro_export]
macro_rules! warning {
    ($($key:ident = $value:expr),+ ; $($arg:tt)+) => {
        $crate::diag::emit(
            $crate::diag::Level::Warning,
            &[$((stringify!($key), &*$value)),+],
            format_args!($($arg)+),
        )
    };
    ($($arg:tt)+) => {
        $crate::diag::emit($crate::diag::Level::Warning, &[], format_args!($($arg)+))
    };
}

/// A note on stderr, silenced by `-q`: `crate::note!("listening on {url}")`.
#[macro_export]
macro_rules! note {
    ($($key:ident = $value:expr),+ ; $($arg:tt)+) => {
        $crate::diag::emit(
            $crate::diag::Level::Note,
            &[$((stringify!($key), &*$value)),+],
            format_args!($($arg)+),
        )
    };
    ($($arg:tt)+) => {
        $crate::diag::emit($crate::diag::Level::Note, &[], format_args!($($arg)+))
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_are_those_printed_before_levels_existed() {
        let msg = format_args!("peer {} is down", "http://a:1").to_string();
        assert_eq!(
            text_line(Level::Warning, &msg),
            "dshare: warning: peer http://a:1 is down\n"
        );
        assert_eq!(text_line(Level::Error, &"x"), "dshare: error: x\n");
        assert_eq!(text_line(Level::Note, &"stopping"), "dshare: stopping\n");
        assert_eq!(
            text_line(Level::Note, &"é 🦀 \"q\""),
            "dshare: é 🦀 \"q\"\n"
        );
    }

    #[test]
    fn a_newline_in_a_message_cannot_forge_a_text_line() {
        let forged = "peer said no\ndshare: error: the box is corrupt\r\x1b[2K";
        let line = text_line(Level::Warning, &forged);
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert_eq!(
            line,
            "dshare: warning: peer said no\\ndshare: error: the box is corrupt\\r\\u{1b}[2K\n"
        );
    }

    #[test]
    fn json_lines_have_the_fixed_keys_first_then_the_fields() {
        let line = json_line(
            1_795_384_800_123,
            Level::Warning,
            "exchange failed",
            &[("peer", "http://a:1")],
        );
        assert_eq!(
            line,
            "{\"ts\":\"2026-11-22T22:00:00.123Z\",\"level\":\"warning\",\"msg\":\"exchange failed\",\"peer\":\"http://a:1\"}\n"
        );
    }

    #[test]
    fn json_lines_stay_one_valid_object_whatever_the_message_holds() {
        let nasty =
            "quote \" backslash \\ newline \n cr \r tab \t nul \0 bell \x07 \u{2028} é 🦀 }{";
        let line = json_line(0, Level::Error, nasty, &[("peer", nasty), ("msg", "dup")]);
        assert!(line.ends_with("}\n"));
        assert_eq!(line.matches('\n').count(), 1, "one line: {line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["msg"], nasty);
        assert_eq!(v["peer"], nasty);
        assert_eq!(v["level"], "error");
        assert_eq!(v["ts"], "1970-01-01T00:00:00.000Z");
        assert_eq!(
            v.as_object().unwrap().len(),
            4,
            "the duplicate key is dropped"
        );
    }

    #[test]
    fn the_macros_take_fields_and_format_arguments() {
        let url = String::from("http://a:1");
        // Printed with the default setting (text, notes shown): these only have to
        // compile and not panic.
        crate::note!("a note {}", 1);
        crate::warning!(peer = url; "exchange with peer {url} failed: {}", "down");
        crate::error!(peer = url, thread = "t"; "worker for {url}");
    }
}
