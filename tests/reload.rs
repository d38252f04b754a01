//! `serve` on SIGHUP: the config file is read again, new peers and a new allow-list
//! take effect in the running node, settings that need a restart are named, and a
//! broken file changes nothing and stops nothing.

use std::fs;

use crate::util::{DEADLINE, Node, Scratch, json_lines, ok, signal, wait_for};

fn write_config(home: &std::path::Path, text: &str) {
    fs::write(home.join("config.toml"), text).unwrap();
}

/// Waits until the node's log holds `count` lines with `what`.
fn wait_log(node: &Node, what: &str, count: usize) -> String {
    wait_for(&format!("{what:?} in the node's log"), DEADLINE, || {
        let log = node.log();
        (log.matches(what).count() >= count).then_some(log)
    })
}

fn bodies(home: &std::path::Path) -> Vec<String> {
    json_lines(&ok(home, &["log", "--json"]))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn sighup_applies_a_new_allow_list_and_new_peers() {
    let scratch = Scratch::new();
    let (a, b) = (scratch.home("a"), scratch.home("b"));
    ok(&a, &["init"]);
    let a_id = ok(&a, &["id"]).trim().to_string();
    // Only this node itself: every other author is refused.
    write_config(&a, &format!("allow-author = [\"{a_id}\"]\n"));
    let node_a = Node::start(&a, &[]);
    let invite = ok(&a, &["invite"]).trim().to_string();
    ok(&b, &["init", "--join", &invite]);
    let b_id = ok(&b, &["id"]).trim().to_string();
    let node_b = Node::start(&b, &[]);
    crate::util::wait_peer_up(&b, &node_a.url);
    ok(&b, &["send", "refused before the reload"]);
    wait_for("a's refusal", DEADLINE, || {
        json_lines(&ok(&b, &["--json", "peers"]))
            .iter()
            .any(|p| p["url"] == node_a.url && p["refuses_ours"].is_string())
            .then_some(())
    });
    assert!(bodies(&a).is_empty(), "{:?}", bodies(&a));

    // The allow-list now names b, and a peer that does not answer is added.
    let extra_peer = "http://127.0.0.1:9";
    write_config(
        &a,
        &format!("allow-author = [\"{a_id}\", \"{b_id}\"]\npeers = [\"{extra_peer}\"]\n"),
    );
    signal(node_a.pid(), "HUP");
    let log = wait_log(&node_a, "config reloaded", 1);
    assert!(log.contains("allow-list now 2 authors"), "{log}");
    assert!(log.contains(&format!("peers added: {extra_peer}")), "{log}");
    ok(&b, &["send", "accepted after the reload"]);
    wait_for("b's messages on a", DEADLINE, || {
        let held = bodies(&a);
        held.contains(&"accepted after the reload".to_string())
            .then_some(())
    });
    let peers = json_lines(&ok(&a, &["--json", "peers"]));
    assert!(
        peers.iter().any(|p| p["url"] == extra_peer),
        "the new peer is not known: {peers:?}"
    );
    drop(node_b);
}

#[test]
fn a_broken_or_restart_only_change_on_sighup_changes_nothing() {
    let scratch = Scratch::new();
    let a = scratch.home("a");
    ok(&a, &["init"]);
    write_config(&a, "workers = 8\n");
    let node = Node::start(&a, &[]);

    write_config(&a, "workers = 8\nlisen = \"typo\"\n");
    signal(node.pid(), "HUP");
    let log = wait_log(&node, "config not reloaded", 1);
    assert!(log.contains("unknown key `lisen`"), "{log}");
    write_config(&a, "peers = [\"not a url\"]\n");
    signal(node.pid(), "HUP");
    wait_log(&node, "config not reloaded", 2);

    write_config(&a, "workers = 9\nio-timeout = 20\n");
    signal(node.pid(), "HUP");
    let log = wait_log(&node, "config reloaded", 1);
    assert!(
        log.contains("changed but only applied at the next start: workers, io-timeout"),
        "{log}"
    );
    // Still serving, and nothing of the broken files took.
    ok(&a, &["send", "still here"]);
    assert_eq!(bodies(&a), ["still here"]);
    assert!(json_lines(&ok(&a, &["--json", "peers"])).is_empty());
    // A SIGHUP with nothing changed says so.
    signal(node.pid(), "HUP");
    let log = wait_log(&node, "config reloaded", 2);
    assert!(log.contains("config reloaded: nothing to change"), "{log}");
    let status = node.stop();
    assert!(status.success(), "{status}");
}
