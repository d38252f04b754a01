//! `dshare doctor`: one verdict and an exit code a watchdog can act on.

use std::fs;

use crate::util::{DEADLINE, Node, Scratch, fails, ok, run, show, wait_for};

fn verdict(home: &std::path::Path) -> (Option<i32>, serde_json::Value) {
    let out = run(home, &["doctor", "--json"]);
    let value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("doctor --json printed no JSON ({e})\n{}", show(&out)));
    (out.status.code(), value)
}

#[test]
fn doctor_says_healthy_for_two_nodes_in_sync_and_names_what_is_wrong_otherwise() {
    let s = Scratch::new();
    let (a, b) = (s.home("a"), s.home("b"));
    let node_a = Node::start(&a, &[]);
    let invite = ok(&a, &["invite"]);
    ok(&b, &["init", "-q", "--join", invite.trim()]);
    let node_b = Node::start(&b, &[]);
    ok(&a, &["send", "hello"]);
    for home in [&a, &b] {
        let v = wait_for("doctor to say healthy", DEADLINE, || {
            let (code, v) = verdict(home);
            // A node adopts the other once it proves its id, a moment after its
            // first hello: until then it knows no peer.
            (code == Some(0) && v["peers"]["up"] == 1 && v["peers"]["in_sync"] == 1).then_some(v)
        });
        assert_eq!(v["healthy"], true, "{v}");
        assert_eq!(v["problems"], serde_json::json!([]), "{v}");
        assert_eq!(v["node"]["answering"], true);
        assert_eq!(v["box"]["ok"], true);
        assert_eq!(v["peers"]["up"], 1);
        assert_eq!(v["peers"]["in_sync"], 1);
        assert_eq!(v["forks"], 0);
        assert!(v["disk"]["available_bytes"].as_u64().unwrap() > 0, "{v}");
    }
    let human = ok(&a, &["doctor"]);
    assert!(human.lines().last() == Some("healthy"), "{human}");
    assert!(human.contains("1 of 1 up, in sync"), "{human}");
    assert_eq!(ok(&a, &["doctor", "-q"]), "", "quiet when healthy");

    // Too little room where the box lives is a problem of its own.
    let out = fails(&a, &["doctor", "--min-free", "1000T"], 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("problem: only") && text.contains("free on"),
        "{text}"
    );

    // Peer b stops: a is cut off from every peer it knows.
    let b_url = node_b.url.clone();
    node_b.stop();
    let v = wait_for("doctor on a to see b down", DEADLINE, || {
        let (code, v) = verdict(&a);
        (code == Some(1)).then_some(v)
    });
    assert!(
        v["problems"][0].as_str().unwrap().contains("cut off"),
        "{v}"
    );
    assert_eq!(v["peers"]["down"][0], b_url.as_str());

    // Node a stops and its box is edited: two problems, each named.
    node_a.stop();
    let text = fs::read_to_string(a.join("box.txt")).unwrap();
    fs::write(a.join("box.txt"), text.replace("hello", "jello")).unwrap();
    let out = fails(&a, &["doctor"], 1);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("problem: no node is running"), "{text}");
    assert!(text.contains("fails verification at line 1"), "{text}");
    assert!(text.contains("unhealthy: 2 problems"), "{text}");
}

#[test]
fn doctor_cannot_check_what_is_not_a_home() {
    let s = Scratch::new();
    let out = fails(&s.home("nothing"), &["doctor"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a dshare home"), "{err}");
}
