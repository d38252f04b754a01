//! The watchdogs for cron: `peers --expect-up` and `log --expect-from` exit 1 and
//! say why when a peer is down or an author has gone quiet.

use std::time::Duration;

use crate::util::testnet::Testnet;
use crate::util::{DEADLINE, Node, Scratch, fails, ok, run, signal, wait_for};

#[test]
fn peers_expect_up_and_log_expect_from_are_watchdogs() {
    let s = Scratch::new();
    let net = Testnet::start(&s.home("x"), 3);
    let one = net.home(1);
    let quiet = ok(&one, &["-q", "peers", "--expect-up", "2"]);
    assert!(quiet.is_empty(), "-q: nothing on success, for cron");
    let out = fails(&one, &["peers", "--expect-up", "3"], 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("only 2 of 2 known peers are up, expected at least 3"),
        "{err}"
    );

    // Node 2 stops answering: its peers see it down, and the watchdog says which.
    signal(net.pid(2), "STOP");
    let down = wait_for("node 2 to be seen down", Duration::from_secs(60), || {
        let out = run(&one, &["-q", "peers", "--expect-up", "2"]);
        (out.status.code() == Some(1)).then_some(out)
    });
    signal(net.pid(2), "CONT");
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(
        err.contains("only 1 of 2") && err.contains(&format!("{} (down)", net.url(2))),
        "{err}"
    );

    // --expect-from: by id prefix, with and without a node, by the message's time.
    let id3 = net.id(3);
    fails(
        &one,
        &["log", "--expect-from", &id3[..8], "--within", "1h"],
        1,
    );
    ok(&net.home(3), &["send", "backup ok on db-3"]);
    let seen = wait_for("node 3's message at node 1", DEADLINE, || {
        let out = run(&one, &["log", "--expect-from", &id3[..8], "--within", "1h"]);
        out.status.success().then_some(out)
    });
    assert!(String::from_utf8_lossy(&seen.stdout).starts_with(&format!("ok: {}", &id3[..8])));
    let json = ok(
        &one,
        &[
            "--json",
            "log",
            "--expect-from",
            &id3[..12],
            "--within",
            "10m",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["last"]["body"], "backup ok on db-3");
    ok(
        &one,
        &[
            "log",
            "--expect-from",
            &id3[..8],
            "--within",
            "1h",
            "--grep",
            "backup ok",
        ],
    );
    let filtered = fails(
        &one,
        &[
            "log",
            "--expect-from",
            &id3[..8],
            "--within",
            "1h",
            "--grep",
            "failed",
        ],
        1,
    );
    assert!(String::from_utf8_lossy(&filtered.stderr).contains("matches the filters"));
    let stale = wait_for("the message to be older than 1s", DEADLINE, || {
        let out = run(&one, &["log", "--expect-from", &id3, "--within", "1s"]);
        (out.status.code() == Some(1)).then_some(out)
    });
    let err = String::from_utf8_lossy(&stale.stderr);
    assert!(
        err.contains("nothing from") && err.contains("its last message was #1"),
        "{err}"
    );
    fails(&one, &["log", "--expect-from", "zz", "--within", "1h"], 2);
    fails(&one, &["log", "--expect-from", &id3], 2);
    assert!(net.stop().success());
    // Without a node the box file is read.
    let home = s.home("solo");
    let node = Node::start(&home, &[]);
    let me = ok(&home, &["id"]);
    ok(&home, &["send", "hi"]);
    node.stop();
    ok(
        &home,
        &["-q", "log", "--expect-from", &me[..8], "--within", "1h"],
    );
}
