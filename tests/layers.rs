//! The crate's layers run one way: its module graph has no cycle, and only the command line imports the command line.
//!
//! The test reads every `src/**/*.rs` (not `main.rs`, a crate of its own that sees the
//! library as `dshare::`), strips comments and string literals, and collects each
//! module's paths into the crate: `use crate::…`, `use super::…`, `use self::…`, a
//! `use child::…` naming a child module, and inline `crate::…`/`super::…` paths. A
//! path is resolved to the deepest module file it names (`crate::mbox::store::Store`
//! is `mbox::store`); a name a directory module re-exports with `pub use` is followed
//! to the child that defines it (`crate::mbox::Store` is `mbox::store` too), so a
//! facade does not hide an arrow. Inline modules (`mod tests { … }`) count as part of
//! their file: test code is code, and may not import upwards either.
//!
//! Directory modules: a directory module (`mbox/mod.rs`, or `cli.rs` beside `cli/`)
//! declares its children and re-exports them, so its arrows into its own children are
//! left out; a child's arrows to its parent (for what the parent itself defines) stay.
//! A cycle therefore needs either siblings that import each other, or an arrow leaving
//! the directory and coming back into it, which are both real cycles.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use crate::util::testnet::Testnet;
use crate::util::{Node, Scratch, box_lines, ok, raw_request, wait_peer_up};

/// A module's path from the crate root, `["mbox", "store"]`.
type ModPath = Vec<String>;

/// Where an arrow was seen, for the failure message.
type Seen = BTreeMap<(String, String), String>;

/// The modules that may import the command line (`cli`, `commands`): themselves.
const COMMAND_LINE: [&str; 2] = ["cli", "commands"];

/// Cycles left to the work that removes them, listed exactly, so that a new module
/// joining one fails, and the test below fails once one is gone, so an entry cannot
/// outlive its cycle. None is left: the last (the checkpoint reading the index types
/// from the store, which calls the checkpoint) went when those types moved to
/// `mbox::held`.
const KNOWN_CYCLES: [&[&str]; 0] = [];

#[test]
fn module_graph_has_no_cycle() {
    let graph = Graph::of_crate();
    let all = graph.cycles();
    let known = |c: &Vec<String>| KNOWN_CYCLES.iter().any(|k| k == c);
    let cycles: Vec<&Vec<String>> = all.iter().filter(|c| !known(c)).collect();
    let described: Vec<String> = cycles.iter().map(|c| graph.describe(c)).collect();
    assert!(
        cycles.is_empty(),
        "the module graph has {} cycle(s):\n{}",
        cycles.len(),
        described.join("\n")
    );
}

#[test]
fn every_known_cycle_is_still_there() {
    let cycles = Graph::of_crate().cycles();
    for known in KNOWN_CYCLES {
        assert!(
            cycles.iter().any(|c| c == known),
            "{known:?} is no longer a cycle: remove it from KNOWN_CYCLES"
        );
    }
}

#[test]
fn only_the_command_line_imports_the_command_line() {
    let graph = Graph::of_crate();
    let mut wrong = Vec::new();
    for ((from, to), at) in &graph.arrows {
        let into_cli = COMMAND_LINE.iter().any(|m| is_within(to, m));
        let from_cli = COMMAND_LINE.iter().any(|m| is_within(from, m));
        if into_cli && !from_cli {
            wrong.push(format!("  {from} -> {to} ({at})"));
        }
    }
    assert!(
        wrong.is_empty(),
        "core modules import the command line:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_reader_sees_grouped_relative_and_reexported_paths() {
    let modules: BTreeSet<ModPath> = ["a", "a::b", "a::c", "d"]
        .iter()
        .map(|m| split(m))
        .collect();
    assert!(is_public_use("pub(crate) use a::B;", 11));
    assert!(is_public_use("pub use a::B;", 4));
    assert!(!is_public_use("use a::B;", 0));
    let mut reexports = BTreeMap::new();
    reexports.insert(
        split("a"),
        BTreeMap::from([("Thing".to_string(), split("a::b::Thing"))]),
    );
    let text = "// crate::d in a comment\nuse crate::{d, a::Thing};\nfn f() { let s = \"crate::d::x\"; super::c::g(); }\nmod tests { use super::*; }";
    let found = references(&split("a::b"), false, text, &modules, &reexports);
    let targets: BTreeSet<String> = found.iter().map(|(m, _)| m.join("::")).collect();
    assert_eq!(
        targets,
        BTreeSet::from(["a::b".into(), "a::c".into(), "d".into()])
    );
}

/// The answers typed in `dshare::api` print the bytes they printed as JSON values: a
/// send's answer is the message's own line with `repeat`, `acked` and `missing` after
/// it, direct or sealed through a client key; `/status` and `/peers` keep their keys,
/// order and compact form. Each expected text is built here from the parts, not by
/// the types under test.
#[test]
fn typed_answers_print_the_bytes_they_always_did() {
    let s = Scratch::new();
    let net = Testnet::start(&s.home("x"), 2);
    let (a, b) = (net.home(1), net.home(2));
    wait_peer_up(&a, &net.url(2));
    wait_peer_up(&b, &net.url(1));
    let line_of = |body: &str| -> String {
        let log = ok(&a, &["--json", "log"]);
        let found = log
            .lines()
            .find(|l| l.contains(&format!("\"body\":\"{body}\"")));
        found
            .unwrap_or_else(|| panic!("{body} not in {log}"))
            .to_string()
    };
    let open = |line: &str| line.strip_suffix('}').unwrap().to_string();

    let waited = ok(&a, &["--json", "send", "--wait", "all", "waited"]);
    let expected = format!(
        "{},\"acked\":[\"{}\"],\"missing\":[]}}\n",
        open(&line_of("waited")),
        net.url(2)
    );
    assert_eq!(waited, expected);
    let first = ok(&a, &["--json", "send", "--key", "k1", "keyed"]);
    assert_eq!(first, format!("{}\n", line_of("keyed")));
    let again = ok(&a, &["--json", "send", "--key", "k1", "keyed"]);
    assert_eq!(
        again,
        format!("{},\"repeat\":true}}\n", open(&line_of("keyed")))
    );

    let client = ok(&a, &["client", "add", "laptop", "--url", &net.url(1)]);
    let (c, spool) = (s.home("c"), s.home("spool"));
    let remote = |args: &[&str]| {
        let mut all = vec![
            "--json",
            "send",
            "--client",
            client.trim(),
            "--spool",
            spool.to_str().unwrap(),
        ];
        all.extend(args);
        ok(&c, &all)
    };
    assert_eq!(remote(&["sealed"]), format!("{}\n", line_of("sealed")));
    let expected_wait = |body: &str| {
        format!(
            "{},\"acked\":[\"{}\"],\"missing\":[]}}\n",
            open(&line_of(body)),
            net.url(2)
        )
    };
    assert_eq!(
        remote(&["--wait", "1", "sealed-waited"]),
        expected_wait("sealed-waited")
    );

    let auth = format!("Authorization: Bearer {}", net.token(1));
    let (code, _, status) = raw_request(&format!("{}/status", net.url(1)), &[&auth]);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&status).unwrap();
    let expected = format!(
        "{{\"node\":\"{}\",\"url\":{},\"version\":\"{}\",\"messages\":{},\"authors\":{},\"head\":\"{}\",\"digest\":\"{}\",\"commits\":{},\"recovering\":false,\"history\":{{\"first_line\":1,\"first_ts\":{},\"box_first_line\":1,\"epochs\":0,\"epochs_with_lines\":0,\"pruned_lines\":0}}}}\n",
        net.id(1),
        v["url"],
        env!("CARGO_PKG_VERSION"),
        v["messages"],
        v["authors"],
        v["head"].as_str().unwrap(),
        v["digest"].as_str().unwrap(),
        v["commits"],
        v["history"]["first_ts"],
    );
    // The fields before `history` are as they always were; `history` came later.
    assert_eq!(status, expected);
    let (code, _, peers) = raw_request(&format!("{}/peers", net.url(1)), &[&auth]);
    assert_eq!(code, 200);
    let listed: Vec<String> = ok(&a, &["--json", "peers"])
        .lines()
        .map(str::to_string)
        .collect();
    let expected = format!(
        "{{\"peers\":[{}],\"forks\":[],\"refused\":0}}\n",
        listed.join(",")
    );
    assert_eq!(peers, expected);
}

/// A `wait` that is not `all` or a positive count is refused before the message is
/// stored, on `/send` as in a sealed remote send (whose request type cannot hold one).
#[test]
fn a_send_with_an_unreadable_wait_stores_nothing() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let answers: Vec<(u16, String)> = ["0", "-1", "some", ""]
        .iter()
        .map(|wait| node.get("/send", &[("msg", "hello"), ("wait", wait)]))
        .collect();
    assert_eq!(box_lines(&home).len(), 0, "stored: {:?}", box_lines(&home));
    for (status, body) in answers {
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("nothing was stored"), "{body}");
    }
    let (status, _) = node.get(
        "/send",
        &[("msg", "hello"), ("wait", "1"), ("timeout_ms", "1")],
    );
    assert_eq!(status, 504, "no peer to confirm it, but stored");
    assert_eq!(box_lines(&home).len(), 1);
}

/// The crate's modules and the arrows between them, each with the first place it was seen.
struct Graph {
    arrows: Seen,
}

impl Graph {
    fn of_crate() -> Graph {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let files = module_files(&src);
        let modules: BTreeSet<ModPath> = files.keys().cloned().collect();
        let texts: BTreeMap<ModPath, String> = files
            .iter()
            .map(|(m, f)| (m.clone(), strip(&fs::read_to_string(f).unwrap())))
            .collect();
        let reexports: BTreeMap<ModPath, BTreeMap<String, ModPath>> = texts
            .iter()
            .map(|(m, t)| (m.clone(), reexported(m, is_directory(&files[m]), t)))
            .collect();
        let mut arrows = Seen::new();
        for (module, text) in &texts {
            let directory = is_directory(&files[module]);
            for (target, line) in references(module, directory, text, &modules, &reexports) {
                if target == *module || target.starts_with(module) {
                    continue;
                }
                let file = files[module]
                    .strip_prefix(&src)
                    .unwrap()
                    .display()
                    .to_string();
                arrows
                    .entry((module.join("::"), target.join("::")))
                    .or_insert(format!("src/{file}:{line}"));
            }
        }
        Graph { arrows }
    }

    /// Every strongly connected component of more than one module (Tarjan's algorithm).
    fn cycles(&self) -> Vec<Vec<String>> {
        let mut next: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (from, to) in self.arrows.keys() {
            next.entry(from).or_default().push(to);
            next.entry(to).or_default();
        }
        let mut tarjan = Tarjan::default();
        for node in next.keys() {
            if !tarjan.index.contains_key(node) {
                tarjan.visit(node, &next);
            }
        }
        tarjan
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .collect()
    }

    fn describe(&self, component: &[String]) -> String {
        let inside: BTreeSet<&String> = component.iter().collect();
        let arrows: Vec<String> = self
            .arrows
            .iter()
            .filter(|((f, t), _)| inside.contains(f) && inside.contains(t))
            .map(|((f, t), at)| format!("    {f} -> {t} ({at})"))
            .collect();
        format!("  {{{}}}\n{}", component.join(", "), arrows.join("\n"))
    }
}

#[derive(Default)]
struct Tarjan<'a> {
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    components: Vec<Vec<String>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, node: &'a str, next: &BTreeMap<&'a str, Vec<&'a str>>) {
        let n = self.index.len();
        self.index.insert(node, n);
        self.low.insert(node, n);
        self.stack.push(node);
        self.on_stack.insert(node);
        for &to in &next[node] {
            if !self.index.contains_key(to) {
                self.visit(to, next);
                let low = self.low[node].min(self.low[to]);
                self.low.insert(node, low);
            } else if self.on_stack.contains(to) {
                let low = self.low[node].min(self.index[to]);
                self.low.insert(node, low);
            }
        }
        if self.low[node] == self.index[node] {
            let mut component = Vec::new();
            while let Some(top) = self.stack.pop() {
                self.on_stack.remove(top);
                component.push(top.to_string());
                if top == node {
                    break;
                }
            }
            component.sort();
            self.components.push(component);
        }
    }
}

fn split(path: &str) -> ModPath {
    path.split("::").map(str::to_string).collect()
}

fn is_within(module: &str, top: &str) -> bool {
    module == top || module.starts_with(&format!("{top}::"))
}

/// A file whose children live beside it in a directory: `x/mod.rs`, or `x.rs` with `x/`.
fn is_directory(file: &Path) -> bool {
    file.file_name().is_some_and(|n| n == "mod.rs") || file.with_extension("").is_dir()
}

/// Every module file under `src`, by module path; `lib.rs` and `main.rs` are roots, not modules.
fn module_files(src: &Path) -> BTreeMap<ModPath, PathBuf> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: ModPath = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().to_string())
                .collect();
            if module.last().is_some_and(|l| l == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] {
                continue;
            }
            found.insert(module, path);
        }
    }
    found
}

/// The text with comments, strings and character literals blanked (newlines kept, for line numbers).
fn strip(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let blank = |out: &mut String, c: char| out.push(if c == '\n' { '\n' } else { ' ' });
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, chars[i]);
                    i += 1;
                }
            }
        } else if c == 'r' && (next == Some('#') || next == Some('"')) && !ident_before(&chars, i) {
            let hashes = chars[i + 1..].iter().take_while(|&&h| h == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            i += 2 + hashes;
            while i < chars.len() {
                if chars[i] == '"'
                    && chars[i + 1..]
                        .iter()
                        .take(hashes)
                        .filter(|&&h| h == '#')
                        .count()
                        == hashes
                {
                    i += 1 + hashes;
                    break;
                }
                blank(&mut out, chars[i]);
                i += 1;
            }
            out.push_str("\"\"");
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if i < chars.len() {
                    blank(&mut out, chars[i]);
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && is_char_literal(&chars, i) {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// `'x'` or `'\n'`, as against a lifetime `'a`.
fn is_char_literal(chars: &[char], i: usize) -> bool {
    match chars.get(i + 1) {
        Some('\\') => true,
        Some(_) => chars.get(i + 2) == Some(&'\''),
        None => false,
    }
}

/// A cursor over stripped text that reads identifiers, `::` and punctuation.
struct Tokens<'a> {
    text: &'a [u8],
    at: usize,
}

impl Tokens<'_> {
    fn skip_space(&mut self) {
        while self.at < self.text.len() && self.text[self.at].is_ascii_whitespace() {
            self.at += 1;
        }
    }

    fn ident(&mut self) -> Option<String> {
        self.skip_space();
        let start = self.at;
        while self.at < self.text.len()
            && (self.text[self.at].is_ascii_alphanumeric() || self.text[self.at] == b'_')
        {
            self.at += 1;
        }
        (self.at > start).then(|| String::from_utf8_lossy(&self.text[start..self.at]).to_string())
    }

    fn eat(&mut self, punct: &str) -> bool {
        self.skip_space();
        if self.text[self.at..].starts_with(punct.as_bytes()) {
            self.at += punct.len();
            true
        } else {
            false
        }
    }

    /// A use tree (`a::b::{c, d::e as f, self}`), flattened into its full paths.
    fn use_tree(&mut self, prefix: &[String], out: &mut Vec<Vec<String>>) {
        let mut path = prefix.to_vec();
        loop {
            if self.eat("{") {
                loop {
                    if self.eat("}") {
                        return;
                    }
                    self.use_tree(&path, out);
                    if !self.eat(",") {
                        self.eat("}");
                        return;
                    }
                }
            }
            if self.eat("*") {
                out.push(path);
                return;
            }
            match self.ident() {
                Some(name) if name == "self" && !path.is_empty() => {}
                Some(name) => path.push(name),
                None => return,
            }
            if self.eat("as") {
                self.ident();
            }
            if !self.eat("::") {
                out.push(path);
                return;
            }
        }
    }
}

/// The line (1-based) of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()[..at]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Inline modules (`mod name {`) open at each offset, so `super` resolves against them.
fn inline_module_at(text: &str, at: usize) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut open: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while i < at {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => {
                depth = depth.saturating_sub(1);
                if open.last().is_some_and(|(_, d)| *d > depth) {
                    open.pop();
                }
            }
            b'm' if text[i..].starts_with("mod ")
                && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'_') =>
            {
                let mut t = Tokens {
                    text: bytes,
                    at: i + 3,
                };
                if let Some(name) = t.ident()
                    && t.eat("{")
                {
                    depth += 1;
                    open.push((name, depth));
                    i = t.at;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    open.into_iter().map(|(n, _)| n).collect()
}

/// A path as written in `module` (plus `inline` modules), made absolute; `None` for an external crate.
fn absolute(
    module: &[String],
    directory: bool,
    inline: &[String],
    path: &[String],
    modules: &BTreeSet<ModPath>,
) -> Option<ModPath> {
    let (first, rest) = path.split_first()?;
    let mut here: ModPath = module.iter().chain(inline).cloned().collect();
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => Some(here.into_iter().chain(rest.iter().cloned()).collect()),
        "super" => {
            let mut rest = rest;
            here.pop();
            while rest.first().is_some_and(|s| s == "super") {
                here.pop();
                rest = &rest[1..];
            }
            Some(here.into_iter().chain(rest.iter().cloned()).collect())
        }
        _ => {
            let child: ModPath = module
                .iter()
                .chain(std::iter::once(first))
                .cloned()
                .collect();
            (directory && inline.is_empty() && modules.contains(&child))
                .then(|| child.into_iter().chain(rest.iter().cloned()).collect())
        }
    }
}

/// The module an absolute path lands in: the deepest module file, then through re-exports.
fn resolve(
    path: &[String],
    modules: &BTreeSet<ModPath>,
    reexports: &BTreeMap<ModPath, BTreeMap<String, ModPath>>,
) -> Option<ModPath> {
    let mut path = path.to_vec();
    for _ in 0..8 {
        let depth = (1..=path.len())
            .rev()
            .find(|&d| modules.contains(&path[..d]))?;
        let module = path[..depth].to_vec();
        let Some(name) = path.get(depth) else {
            return Some(module);
        };
        match reexports.get(&module).and_then(|r| r.get(name)) {
            Some(target) => path = target.iter().chain(&path[depth + 1..]).cloned().collect(),
            None => return Some(module),
        }
    }
    None
}

/// Every use path in `text` that points into the crate, absolute, with the byte offset it starts at.
fn use_paths(
    module: &[String],
    directory: bool,
    text: &str,
    modules: &BTreeSet<ModPath>,
) -> Vec<(ModPath, usize)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("use ") {
        let at = from + offset;
        from = at + 4;
        if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
            continue;
        }
        let mut tokens = Tokens {
            text: bytes,
            at: at + 3,
        };
        let mut paths = Vec::new();
        tokens.use_tree(&[], &mut paths);
        let inline = inline_module_at(text, at);
        for path in paths {
            if let Some(abs) = absolute(module, directory, &inline, &path, modules) {
                found.push((abs, at));
            }
        }
    }
    found
}

/// Whether the `use` at `at` is `pub use` or `pub(…) use`.
fn is_public_use(text: &str, at: usize) -> bool {
    let before = text[..at].trim_end();
    let restricted = before
        .rsplit_once("pub(")
        .is_some_and(|(_, rest)| rest.ends_with(')') && !rest.contains(['\n', ';', '{', '}']));
    before.ends_with("pub") && !before.ends_with("_pub") || restricted
}

/// What a module re-exports: the name it gives (last segment) and the path it points at.
fn reexported(module: &[String], directory: bool, text: &str) -> BTreeMap<String, ModPath> {
    // In a directory module a bare `pub use x::Y` names a child: dshare re-exports
    // nothing from other crates.
    let bytes = text.as_bytes();
    let mut out = BTreeMap::new();
    let mut from = 0;
    while let Some(offset) = text[from..].find("use ") {
        let at = from + offset;
        from = at + 4;
        if !is_public_use(text, at) {
            continue;
        }
        let mut tokens = Tokens {
            text: bytes,
            at: at + 3,
        };
        let mut paths = Vec::new();
        tokens.use_tree(&[], &mut paths);
        for path in paths {
            let Some(name) = path.last().cloned() else {
                continue;
            };
            let absolute = match path[0].as_str() {
                "crate" => path[1..].to_vec(),
                "self" => module.iter().chain(&path[1..]).cloned().collect(),
                "super" => module[..module.len().saturating_sub(1)]
                    .iter()
                    .chain(&path[1..])
                    .cloned()
                    .collect(),
                _ if directory => module.iter().chain(&path).cloned().collect(),
                _ => continue,
            };
            out.insert(name, absolute);
        }
    }
    out
}

/// The modules `module`'s text refers to, each with the line of its first mention.
fn references(
    module: &[String],
    directory: bool,
    text: &str,
    modules: &BTreeSet<ModPath>,
    reexports: &BTreeMap<ModPath, BTreeMap<String, ModPath>>,
) -> Vec<(ModPath, usize)> {
    let mut found = Vec::new();
    for (path, at) in use_paths(module, directory, text, modules) {
        if let Some(target) = resolve(&path, modules, reexports) {
            found.push((target, line_of(text, at)));
        }
    }
    for root in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(offset) = text[from..].find(root) {
            let at = from + offset;
            from = at + root.len();
            let before = text
                .as_bytes()
                .get(at.wrapping_sub(1))
                .copied()
                .unwrap_or(b' ');
            if before.is_ascii_alphanumeric() || before == b'_' || before == b':' {
                continue;
            }
            let mut tokens = Tokens {
                text: text.as_bytes(),
                at,
            };
            let mut path = Vec::new();
            while let Some(segment) = tokens.ident() {
                path.push(segment);
                if !tokens.eat("::") || tokens.eat("{") || tokens.eat("*") {
                    break;
                }
            }
            let inline = inline_module_at(text, at);
            if let Some(abs) = absolute(module, directory, &inline, &path, modules)
                && let Some(target) = resolve(&abs, modules, reexports)
            {
                found.push((target, line_of(text, at)));
            }
        }
    }
    found
}
