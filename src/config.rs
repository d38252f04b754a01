//! `<home>/config.toml`: `dshare serve`'s settings in a file, for a node run by
//! systemd, cron or a container. A flag overrides its environment variable, which
//! overrides the file, which overrides the built-in default.
//!
//! The format is a small subset of TOML, so TOML tools read it too: one `key = value`
//! per line, `#` comments, values a "basic string" (with `\"`, `\\`, `\n`, `\t`
//! escapes), a 'literal string' (no escapes: handy for shell commands), a whole
//! number, `true`/`false`, or a one-line list of strings `["a", "b"]`. Keys are
//! serve's long flag names. Unknown keys and sections are errors, so a typo is never
//! silently ignored. There is no TOML crate among the dependencies and this is all
//! serve needs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

/// The file's name in the home.
pub const FILE_NAME: &str = "config.toml";

/// The keys the file may hold: `serve`'s long flag names (`peers` for `--peer`,
/// `author` for `--author`).
pub const KEYS: &[&str] = &[
    "listen",
    "advertise",
    "peers",
    "fanout",
    "workers",
    "io-timeout",
    "head-timeout",
    "max-connections",
    "metrics-listen",
    "allow-author",
    "on-message",
    "cursor",
    "from",
    "author",
    "grep",
    "retries",
    "keep-going",
    "keep",
    "keep-messages",
    "prune-epochs",
];

/// One value of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Int(u64),
    Bool(bool),
    List(Vec<String>),
}

/// Key to (line number, value).
pub type Entries = BTreeMap<String, (usize, Value)>;

/// Parses the file's text. Errors name the line and say what was expected.
pub fn parse(text: &str) -> Result<Entries, String> {
    let mut entries = Entries::new();
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            return Err(format!(
                "line {n}: sections are not supported; put every key at the top level"
            ));
        }
        let (key, rest) = line
            .split_once('=')
            .ok_or_else(|| format!("line {n}: expected `key = value`"))?;
        let key = key.trim();
        if !KEYS.contains(&key) {
            return Err(format!(
                "line {n}: unknown key `{key}`; the keys are {}",
                KEYS.join(", ")
            ));
        }
        let (value, tail) = parse_value(rest.trim()).map_err(|e| format!("line {n}: {e}"))?;
        let tail = tail.trim();
        if !(tail.is_empty() || tail.starts_with('#')) {
            return Err(format!("line {n}: unexpected `{tail}` after the value"));
        }
        if entries.insert(key.to_string(), (n, value)).is_some() {
            return Err(format!("line {n}: `{key}` is set twice"));
        }
    }
    Ok(entries)
}

/// One value at the start of `s`, and what follows it.
fn parse_value(s: &str) -> Result<(Value, &str), String> {
    const EXPECTED: &str =
        "expected a value: a \"string\", a 'string', a number, true, false or a [list]";
    match s.chars().next() {
        Some('"' | '\'') => {
            let (text, rest) = parse_string(s)?;
            Ok((Value::Str(text), rest))
        }
        Some('[') => {
            let mut items = Vec::new();
            let mut rest = s[1..].trim_start();
            loop {
                if let Some(after) = rest.strip_prefix(']') {
                    return Ok((Value::List(items), after));
                }
                if !rest.starts_with(['"', '\'']) {
                    return Err("a list holds \"strings\", separated by commas, on one line".into());
                }
                let (item, after) = parse_string(rest)?;
                items.push(item);
                rest = after.trim_start();
                if let Some(after) = rest.strip_prefix(',') {
                    rest = after.trim_start();
                } else if !rest.starts_with(']') {
                    return Err("a list holds \"strings\", separated by commas, on one line".into());
                }
            }
        }
        Some(c) if c.is_ascii_digit() => {
            let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let n = s[..end]
                .parse()
                .map_err(|_| format!("{} is too large", &s[..end]))?;
            Ok((Value::Int(n), &s[end..]))
        }
        _ => {
            for (word, b) in [("true", true), ("false", false)] {
                if let Some(rest) = s.strip_prefix(word)
                    && !rest.starts_with(|c: char| c.is_alphanumeric())
                {
                    return Ok((Value::Bool(b), rest));
                }
            }
            Err(EXPECTED.into())
        }
    }
}

/// A "basic" (escapes) or 'literal' (none) string at the start of `s`.
fn parse_string(s: &str) -> Result<(String, &str), String> {
    let quote = s.chars().next().ok_or("expected a string")?;
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Ok((out, &s[i + 1..]));
        }
        if c == '\\' && quote == '"' {
            let escaped = match chars.next().map(|(_, e)| e) {
                Some('"') => '"',
                Some('\\') => '\\',
                Some('n') => '\n',
                Some('t') => '\t',
                Some('r') => '\r',
                other => {
                    return Err(format!(
                        "unknown escape \\{} in a \"string\" (use a 'literal string' for backslashes)",
                        other.map(String::from).unwrap_or_default()
                    ));
                }
            };
            out.push(escaped);
        } else {
            out.push(c);
        }
    }
    Err(format!("the string has no closing {quote}"))
}

/// The config file of a home (empty when there is none).
#[derive(Debug, Default)]
pub struct ConfigFile {
    /// Where it was read from; `None` when the home has no config file.
    pub path: Option<PathBuf>,
    entries: Entries,
}

impl ConfigFile {
    /// Reads `<dir>/config.toml`; a missing file is an empty configuration.
    pub fn load(dir: &Path) -> Result<ConfigFile> {
        let path = dir.join(FILE_NAME);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ConfigFile::default());
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let entries = parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        Ok(ConfigFile {
            path: Some(path),
            entries,
        })
    }

    fn wrong(&self, key: &str, line: usize, expected: &str) -> anyhow::Error {
        let path = self.path.as_deref().unwrap_or(Path::new(FILE_NAME));
        anyhow::anyhow!(
            "{}: line {line}: `{key}` must be {expected}",
            path.display()
        )
    }

    pub fn string(&self, key: &str) -> Result<Option<String>> {
        match self.entries.get(key) {
            None => Ok(None),
            Some((_, Value::Str(s))) => Ok(Some(s.clone())),
            Some((line, _)) => Err(self.wrong(key, *line, "a \"string\"")),
        }
    }

    pub fn number(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>> {
        match self.entries.get(key) {
            None => Ok(None),
            Some((_, Value::Int(n))) if (min..=max).contains(n) => Ok(Some(*n)),
            Some((line, _)) => {
                Err(self.wrong(key, *line, &format!("a number from {min} to {max}")))
            }
        }
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>> {
        match self.entries.get(key) {
            None => Ok(None),
            Some((_, Value::Bool(b))) => Ok(Some(*b)),
            Some((line, _)) => Err(self.wrong(key, *line, "true or false")),
        }
    }

    /// A list of strings; a single string is a list of one.
    pub fn list(&self, key: &str) -> Result<Option<Vec<String>>> {
        match self.entries.get(key) {
            None => Ok(None),
            Some((_, Value::List(l))) => Ok(Some(l.clone())),
            Some((_, Value::Str(s))) => Ok(Some(vec![s.clone()])),
            Some((line, _)) => Err(self.wrong(key, *line, "a [\"list\", \"of strings\"]")),
        }
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::File => "file",
            Source::Default => "default",
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// Everything `serve` runs with, merged from flags, environment, file and defaults.
#[derive(Debug, Clone)]
pub struct ServeSettings {
    pub listen: Setting<String>,
    pub advertise: Setting<Option<String>>,
    pub peers: Setting<Vec<String>>,
    pub fanout: Setting<u16>,
    pub workers: Setting<u16>,
    pub io_timeout: Setting<u64>,
    pub head_timeout: Setting<u64>,
    pub max_connections: Setting<u32>,
    pub metrics_listen: Setting<Option<String>>,
    /// Authors accepted besides those in `<home>/authors.allow`.
    pub allow_authors: Setting<Vec<String>>,
    pub on_message: Setting<Option<String>>,
    pub cursor: Setting<Option<String>>,
    pub from: Setting<Option<String>>,
    pub authors: Setting<Vec<String>>,
    pub grep: Setting<Option<String>>,
    pub retries: Setting<u32>,
    pub keep_going: Setting<bool>,
    /// Retention: close messages older than this into epochs.
    pub keep: Setting<Option<std::time::Duration>>,
    /// Retention: keep about this many messages in the live box.
    pub keep_messages: Setting<Option<u64>>,
    /// Retention: delete each epoch's lines once closed (its head stays).
    pub prune_epochs: Setting<bool>,
    /// The config file read, if the home has one.
    pub file: Option<PathBuf>,
}

/// The command line's value if it was given there or in the environment, else the
/// file's, else the command line's (which is then the default).
fn merge<T: Clone>(cli: &Setting<T>, file: Option<T>) -> Setting<T> {
    match (cli.source, file) {
        (Source::Flag | Source::Env, _) | (_, None) => cli.clone(),
        (_, Some(value)) => Setting {
            value,
            source: Source::File,
        },
    }
}

fn narrow<T: TryFrom<u64>>(n: Option<u64>) -> Option<T> {
    n.and_then(|n| T::try_from(n).ok())
}

impl ServeSettings {
    /// Merges `cli` (flags and environment as parsed, each with its source: flag,
    /// environment or default) with `file`.
    pub fn resolve(cli: &ServeSettings, file: &ConfigFile) -> Result<ServeSettings> {
        Ok(ServeSettings {
            listen: merge(&cli.listen, file.string("listen")?),
            advertise: merge(&cli.advertise, file.string("advertise")?.map(Some)),
            peers: merge(&cli.peers, file.list("peers")?),
            fanout: merge(
                &cli.fanout,
                narrow(file.number("fanout", 1, u64::from(u16::MAX))?),
            ),
            workers: merge(&cli.workers, narrow(file.number("workers", 1, 256)?)),
            io_timeout: merge(&cli.io_timeout, file.number("io-timeout", 1, 3600)?),
            head_timeout: merge(&cli.head_timeout, file.number("head-timeout", 1, 3600)?),
            max_connections: merge(
                &cli.max_connections,
                narrow(file.number("max-connections", 16, 65536)?),
            ),
            metrics_listen: merge(
                &cli.metrics_listen,
                file.string("metrics-listen")?.map(Some),
            ),
            allow_authors: merge(&cli.allow_authors, file.list("allow-author")?),
            on_message: merge(&cli.on_message, file.string("on-message")?.map(Some)),
            cursor: merge(&cli.cursor, file.string("cursor")?.map(Some)),
            from: merge(&cli.from, file.string("from")?.map(Some)),
            authors: merge(&cli.authors, file.list("author")?),
            grep: merge(&cli.grep, file.string("grep")?.map(Some)),
            retries: merge(&cli.retries, narrow(file.number("retries", 0, 20)?)),
            keep_going: merge(&cli.keep_going, file.boolean("keep-going")?),
            keep: merge(
                &cli.keep,
                match file.string("keep")? {
                    Some(age) => Some(Some(crate::time::parse_age(&age).map_err(|e| {
                        anyhow::anyhow!(
                            "{}: `keep`: {e}",
                            file.path
                                .as_deref()
                                .unwrap_or(Path::new(FILE_NAME))
                                .display()
                        )
                    })?)),
                    None => None,
                },
            ),
            keep_messages: merge(
                &cli.keep_messages,
                file.number("keep-messages", 1, u64::MAX)?.map(Some),
            ),
            prune_epochs: merge(&cli.prune_epochs, file.boolean("prune-epochs")?),
            file: file.path.clone(),
        })
    }

    /// `(key, value as JSON, source)` for `serve --print-config`.
    pub fn rows(&self) -> Vec<(&'static str, serde_json::Value, Source)> {
        use serde_json::json;
        vec![
            ("listen", json!(self.listen.value), self.listen.source),
            (
                "advertise",
                json!(self.advertise.value),
                self.advertise.source,
            ),
            ("peers", json!(self.peers.value), self.peers.source),
            ("fanout", json!(self.fanout.value), self.fanout.source),
            ("workers", json!(self.workers.value), self.workers.source),
            (
                "io-timeout",
                json!(self.io_timeout.value),
                self.io_timeout.source,
            ),
            (
                "head-timeout",
                json!(self.head_timeout.value),
                self.head_timeout.source,
            ),
            (
                "max-connections",
                json!(self.max_connections.value),
                self.max_connections.source,
            ),
            (
                "metrics-listen",
                json!(self.metrics_listen.value),
                self.metrics_listen.source,
            ),
            (
                "allow-author",
                json!(self.allow_authors.value),
                self.allow_authors.source,
            ),
            (
                "on-message",
                json!(self.on_message.value),
                self.on_message.source,
            ),
            ("cursor", json!(self.cursor.value), self.cursor.source),
            ("from", json!(self.from.value), self.from.source),
            ("author", json!(self.authors.value), self.authors.source),
            ("grep", json!(self.grep.value), self.grep.source),
            ("retries", json!(self.retries.value), self.retries.source),
            (
                "keep-going",
                json!(self.keep_going.value),
                self.keep_going.source,
            ),
            (
                "keep",
                json!(self.keep.value.map(crate::time::render_age)),
                self.keep.source,
            ),
            (
                "keep-messages",
                json!(self.keep_messages.value),
                self.keep_messages.source,
            ),
            (
                "prune-epochs",
                json!(self.prune_epochs.value),
                self.prune_epochs.source,
            ),
        ]
    }
}

/// The settings a running node takes from the file on SIGHUP. Adding peers and
/// changing the allow-list touch one table each and need no thread restarted; the
/// others (addresses, pool sizes, timeouts, the hook and its cursor) are fixed when
/// the node starts, and a reload only says they differ.
pub const LIVE_KEYS: &[&str] = &["peers", "allow-author"];

/// What a reload changes in a running node, worked out from the settings before and
/// after; the allow-list is compared by the caller, since `<home>/authors.allow`
/// adds to it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Reload {
    pub peers_added: Vec<String>,
    /// In the old settings but not the new: a node keeps every peer it knows, so
    /// these stay.
    pub peers_kept: Vec<String>,
    /// Keys whose value differs but takes effect only at the next start.
    pub need_restart: Vec<&'static str>,
}

impl Reload {
    pub fn plan(old: &ServeSettings, new: &ServeSettings) -> Reload {
        let missing_from = |a: &[String], b: &[String]| -> Vec<String> {
            a.iter().filter(|p| !b.contains(p)).cloned().collect()
        };
        Reload {
            peers_added: missing_from(&new.peers.value, &old.peers.value),
            peers_kept: missing_from(&old.peers.value, &new.peers.value),
            need_restart: old
                .rows()
                .into_iter()
                .zip(new.rows())
                .filter(|((key, before, _), (_, after, _))| {
                    before != after && !LIVE_KEYS.contains(key)
                })
                .map(|((key, ..), _)| key)
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_of_value_and_comments() {
        let text = r#"
# a node on the LAN
listen = "0.0.0.0:7070"   # every interface
peers = ["http://10.0.0.2:7070", 'http://10.0.0.3:7070',]
fanout = 4
keep-going = true
on-message = 'printf "%s\n" "$DSHARE_BODY" >> /var/lib/dshare/out'
grep = "a \"quoted\"\tword"
"#;
        let e = parse(text).unwrap();
        assert_eq!(e["listen"].1, Value::Str("0.0.0.0:7070".into()));
        assert_eq!(
            e["peers"].1,
            Value::List(vec![
                "http://10.0.0.2:7070".into(),
                "http://10.0.0.3:7070".into()
            ])
        );
        assert_eq!(e["fanout"], (5, Value::Int(4)));
        assert_eq!(e["keep-going"].1, Value::Bool(true));
        assert_eq!(
            e["on-message"].1,
            Value::Str(r#"printf "%s\n" "$DSHARE_BODY" >> /var/lib/dshare/out"#.into())
        );
        assert_eq!(e["grep"].1, Value::Str("a \"quoted\"\tword".into()));
    }

    #[test]
    fn refuses_typos_sections_and_broken_values_naming_the_line() {
        for (text, says) in [
            ("lisen = \"x\"", "line 1: unknown key `lisen`"),
            ("\n[serve]", "line 2: sections are not supported"),
            ("listen = 0.0.0.0:1", "line 1: unexpected `.0.0.0:1`"),
            ("listen = \"open", "line 1: the string has no closing \""),
            ("listen", "line 1: expected `key = value`"),
            ("peers = [\"a\" \"b\"]", "line 1: a list holds"),
            ("fanout = 1\nfanout = 2", "line 2: `fanout` is set twice"),
            ("grep = \"\\d\"", "unknown escape \\d"),
            ("keep-going = yes", "line 1: expected a value"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }

    #[test]
    fn a_missing_file_is_empty_and_types_are_checked() {
        let dir = std::env::temp_dir().join(format!("dshare-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(ConfigFile::load(&dir).unwrap().path.is_none());
        std::fs::write(dir.join(FILE_NAME), "fanout = \"8\"\nworkers = 999\n").unwrap();
        let file = ConfigFile::load(&dir).unwrap();
        let err = file.number("fanout", 1, 10).unwrap_err().to_string();
        assert!(err.contains("line 1: `fanout` must be a number"), "{err}");
        let err = file.number("workers", 1, 256).unwrap_err().to_string();
        assert!(err.contains("from 1 to 256"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod reload_tests {
    use super::*;

    /// Defaults for every key (their values do not matter here, only that both sides
    /// of a plan start from the same ones).
    fn defaults() -> ServeSettings {
        fn default<T>(value: T) -> Setting<T> {
            Setting {
                value,
                source: Source::Default,
            }
        }
        ServeSettings {
            listen: default("127.0.0.1:7070".into()),
            advertise: default(None),
            peers: default(vec![]),
            fanout: default(3),
            workers: default(8),
            io_timeout: default(10),
            head_timeout: default(10),
            max_connections: default(512),
            metrics_listen: default(None),
            allow_authors: default(vec![]),
            on_message: default(None),
            cursor: default(None),
            from: default(None),
            authors: default(vec![]),
            grep: default(None),
            retries: default(0),
            keep_going: default(false),
            keep: default(None),
            keep_messages: default(None),
            prune_epochs: default(false),
            file: None,
        }
    }

    fn settings(text: &str) -> ServeSettings {
        let file = ConfigFile {
            path: None,
            entries: parse(text).unwrap(),
        };
        ServeSettings::resolve(&defaults(), &file).unwrap()
    }

    #[test]
    fn a_flag_or_variable_beats_the_file_which_beats_a_default() {
        let mut cli = defaults();
        cli.workers.source = Source::Flag;
        cli.fanout.source = Source::Env;
        let file = ConfigFile {
            path: None,
            entries: parse(
                "workers = 3
fanout = 9
retries = 4
",
            )
            .unwrap(),
        };
        let merged = ServeSettings::resolve(&cli, &file).unwrap();
        assert_eq!(merged.workers, cli.workers);
        assert_eq!(merged.fanout, cli.fanout);
        assert_eq!(
            merged.retries,
            Setting {
                value: 4,
                source: Source::File
            }
        );
        assert_eq!(merged.grep, cli.grep);
    }

    #[test]
    fn new_peers_are_added_and_restart_only_keys_are_named() {
        let old = settings("peers = [\"http://a:1\", \"http://b:1\"]\nworkers = 8\n");
        let new = settings(
            "peers = [\"http://b:1\", \"http://c:1\"]\nworkers = 9\nallow-author = []\nlisten = \"127.0.0.1:1\"\n",
        );
        assert_eq!(
            Reload::plan(&old, &new),
            Reload {
                peers_added: vec!["http://c:1".into()],
                peers_kept: vec!["http://a:1".into()],
                need_restart: vec!["listen", "workers"],
            }
        );
        assert_eq!(Reload::plan(&new, &new), Reload::default());
    }
}
