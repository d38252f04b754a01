//! The `--json` shapes README.md documents, key for key and in order, against what a
//! real two-node network prints: scripts that read them (and people who read the
//! README) see exactly what is written there.

use std::fs;
use std::path::Path;

use crate::util::testnet::Testnet;
use crate::util::{Scratch, json_lines, ok, raw_request, wait_peer_up};

/// The keys of the first `{…}` in backticks after `label` in README.md, at the top
/// level (nested lists and objects are left out), in order.
fn documented(label: &str) -> Vec<String> {
    let readme =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let at = readme
        .find(label)
        .unwrap_or_else(|| panic!("README.md does not mention {label}"));
    let rest = &readme[at + label.len()..];
    let open = rest.find("`{").expect("a `{…}` shape after the label") + 1;
    keys_of(&rest[open..])
}

/// The top-level quoted keys of the object that `text` starts with.
fn keys_of(text: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut depth = 0;
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            '"' => {
                let end = text[i + 1..].find('"').unwrap() + i + 1;
                if depth == 1 {
                    keys.push(text[i + 1..end].to_string());
                }
                for _ in i + 1..=end {
                    chars.next();
                }
            }
            _ => {}
        }
    }
    keys
}

fn keys(value: &serde_json::Value) -> Vec<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .cloned()
        .collect()
}

fn with(mut base: Vec<String>, more: &[&str]) -> Vec<String> {
    base.extend(more.iter().map(|s| s.to_string()));
    base
}

#[test]
fn the_json_shapes_in_the_readme_are_what_the_commands_print() {
    let s = Scratch::new();
    let net = Testnet::start(&s.home("x"), 2);
    let (a, b) = (net.home(1), net.home(2));
    wait_peer_up(&a, &net.url(2));
    wait_peer_up(&b, &net.url(1));

    let message = documented("- `log --json`:");
    let sent = json_lines(&ok(&a, &["--json", "send", "--wait", "all", "shapes"]));
    assert_eq!(keys(&sent[0]), with(message.clone(), &["acked", "missing"]));
    let plain = json_lines(&ok(&a, &["--json", "send", "plain"]));
    assert_eq!(keys(&plain[0]), message);
    let log = json_lines(&ok(&a, &["--json", "log"]));
    assert_eq!(keys(&log[0]), message);

    let report = documented("- `verify --json`:");
    let verified = json_lines(&ok(&a, &["--json", "verify"]));
    assert_eq!(keys(&verified[0]), report);
    let peers_entry = documented("with `--peers` also `\"peers\"`");
    let with_peers = json_lines(&ok(&a, &["--json", "verify", "--peers"]));
    assert_eq!(keys(&with_peers[0]), with(report, &["peers", "forks"]));
    assert_eq!(keys(&with_peers[0]["peers"][0]), peers_entry);

    // `last_error` is there only after an exchange failed, `link` only when true.
    let peer = documented("- `peers --json`:");
    let listed = json_lines(&ok(&a, &["--json", "peers"]));
    let got: Vec<String> = keys(&listed[0])
        .into_iter()
        .filter(|k| k != "link")
        .collect();
    let expected: Vec<String> = peer
        .iter()
        .filter(|k| *k != "last_error" && *k != "link")
        .cloned()
        .collect();
    assert_eq!(got, expected);

    let auth = format!("Authorization: Bearer {}", net.token(1));
    let (status, _, body) = raw_request(&format!("{}/peers", net.url(1)), &[&auth]);
    assert_eq!(status, 200);
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(keys(&answer), documented("| `GET /peers` |"));
    let got: Vec<String> = keys(&answer["peers"][0])
        .into_iter()
        .filter(|k| k != "link")
        .collect();
    assert_eq!(got, expected);
    let (_, _, body) = raw_request(&format!("{}/status", net.url(1)), &[&auth]);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(keys(&status), documented("| `GET /status` |"));

    assert_eq!(keys(&net.nodes[0]), documented("`testnet --json`:"));
}

#[test]
fn the_key_reader_takes_top_level_keys_in_order() {
    assert_eq!(
        keys_of(r#"{"ok","errors":[{"line","error"}],"n"}` and"#),
        ["ok", "errors", "n"]
    );
}
