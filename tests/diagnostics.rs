//! Diagnostics: `--log-format json` makes every stderr line a JSON object, `-q`
//! silences notes but not warnings, and the text format stays what people read.

use std::net::TcpListener;
use std::path::Path;

use crate::util::*;

/// A loopback address nothing listens on: a peer that is down.
fn dead_peer() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

/// The stderr of every node started for `home` (the guard names it `HOME.log-…`).
fn logs_of(home: &Path) -> String {
    let prefix = format!("{}.log-", home.file_name().unwrap().to_string_lossy());
    let mut text = String::new();
    for entry in std::fs::read_dir(home.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&prefix)
        {
            text.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    text
}

/// Each line as a JSON object with a `ts` like `2026-12-01T22:00:00.123Z`, a known
/// `level` and a `msg`; panics, naming the line, on anything else.
fn parse_json_log(log: &str) -> Vec<serde_json::Value> {
    assert!(log.ends_with('\n'), "a cut line: {log:?}");
    log.lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\nlog:\n{log}"));
            let ts = v["ts"].as_str().unwrap_or_else(|| panic!("no ts: {line}"));
            let shape = ts.len() == 24
                && ts.ends_with('Z')
                && ts.as_bytes()[10] == b'T'
                && ts.as_bytes()[19] == b'.'
                && ts.starts_with("20");
            assert!(shape, "ts {ts:?} in {line}");
            let level = v["level"].as_str().unwrap_or("");
            assert!(
                ["error", "warning", "note"].contains(&level),
                "level {level:?} in {line}"
            );
            assert!(v["msg"].is_string(), "no msg: {line}");
            v
        })
        .collect()
}

fn has(lines: &[serde_json::Value], level: &str, msg_part: &str) -> bool {
    lines
        .iter()
        .any(|v| v["level"] == level && v["msg"].as_str().unwrap().contains(msg_part))
}

#[test]
fn a_node_with_json_logs_writes_only_json_lines_and_names_the_peer_that_is_down() {
    let s = Scratch::new();
    let home = s.home("a");
    let peer = dead_peer();
    let node = Node::start(&home, &["--log-format", "json", "--peer", &peer]);
    wait_for("the warning about the dead peer", DEADLINE, || {
        node.log().contains("exchange with peer").then_some(())
    });
    let status = node.stop();
    assert!(status.success(), "{status}");
    let log = logs_of(&home);
    let lines = parse_json_log(&log);
    assert!(has(&lines, "note", "created a new network"), "{log}");
    assert!(has(&lines, "note", "stopping"), "{log}");
    let warning = lines
        .iter()
        .find(|v| v["msg"].as_str().unwrap().contains("exchange with peer"))
        .unwrap();
    assert_eq!(warning["level"], "warning", "{log}");
    assert_eq!(warning["peer"], peer.as_str(), "{log}");
    assert!(
        !log.contains("dshare: "),
        "no text line slipped through:\n{log}"
    );
}

#[test]
fn dshare_log_format_in_the_environment_does_the_same() {
    let s = Scratch::new();
    let home = s.home("a");
    let peer = dead_peer();
    let node = Node::start_with_env(
        &home,
        &["serve", "--listen", "127.0.0.1:0", "--peer", &peer],
        &[("DSHARE_LOG_FORMAT", "json")],
    );
    wait_for("the warning about the dead peer", DEADLINE, || {
        node.log().contains("exchange with peer").then_some(())
    });
    let lines = parse_json_log(&node.log());
    assert!(
        has(&lines, "warning", "exchange with peer"),
        "{}",
        node.log()
    );
}

#[test]
fn quiet_silences_notes_and_keeps_warnings() {
    let s = Scratch::new();
    let home = s.home("a");
    let peer = dead_peer();
    let node = Node::start(&home, &["-q", "--log-format", "json", "--peer", &peer]);
    wait_for("the warning about the dead peer", DEADLINE, || {
        node.log().contains("exchange with peer").then_some(())
    });
    assert!(node.stop().success());
    let log = logs_of(&home);
    let lines = parse_json_log(&log);
    assert!(has(&lines, "warning", "exchange with peer"), "{log}");
    let notes: Vec<_> = lines.iter().filter(|v| v["level"] == "note").collect();
    assert!(notes.is_empty(), "-q printed notes: {notes:?}");
}

#[test]
fn text_logs_keep_their_prefixes() {
    let s = Scratch::new();
    let home = s.home("a");
    let peer = dead_peer();
    let node = Node::start(&home, &["--peer", &peer]);
    wait_for("the warning about the dead peer", DEADLINE, || {
        node.log().contains("exchange with peer").then_some(())
    });
    let log = node.log();
    let warning = format!("dshare: warning: exchange with peer {peer} failed: ");
    assert!(log.lines().any(|l| l.starts_with(&warning)), "{log}");
    assert!(
        log.lines()
            .any(|l| l.starts_with("dshare: created a new network in ")),
        "{log}"
    );
    assert!(log.lines().all(|l| l.starts_with("dshare: ")), "{log}");
}

#[test]
fn a_command_that_fails_reports_its_error_as_json() {
    let s = Scratch::new();
    let home = s.home("none");
    ok(&home, &["init"]);
    // No node runs for this home: the one error printer says so, as a JSON line.
    let out = fails(&home, &["--log-format", "json", "peers"], 2);
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines = parse_json_log(&stderr);
    assert_eq!(lines.len(), 1, "{stderr}");
    assert_eq!(lines[0]["level"], "error", "{stderr}");
    // Text, as always, without the flag.
    let out = fails(&home, &["peers"], 2);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with("dshare: error: "), "{stderr}");
}

#[test]
fn an_unknown_log_format_is_a_usage_error() {
    let s = Scratch::new();
    let out = fails(&s.home("a"), &["--log-format", "xml", "id"], 2);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("text") && stderr.contains("json"),
        "{stderr}"
    );
}
