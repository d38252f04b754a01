//! The command line's contract: exit codes, init, and errors that say what to do.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{
    DEADLINE, Node, Reaped, Scratch, dshare, fails, ok, run, show, wait_for, wait_peer_up,
};

#[test]
fn unknown_commands_and_flags_exit_2() {
    let s = Scratch::new();
    let home = s.home("a");
    fails(&home, &["frobnicate"], 2);
    fails(&home, &["send", "--no-such-flag", "x"], 2);
    fails(&home, &["log", "-n", "many"], 2);
}

#[test]
fn init_creates_private_keys_and_refuses_an_existing_home() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let mode = |p: &std::path::Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&home), 0o700);
    for f in ["identity.key", "network.key", "client.token"] {
        assert_eq!(mode(&home.join(f)), 0o600, "{f}");
    }
    let before: Vec<_> = ["identity.key", "network.key", "client.token"]
        .iter()
        .map(|f| fs::read(home.join(f)).unwrap())
        .collect();
    let out = fails(&home, &["init"], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("already a dshare home"));
    let after: Vec<_> = ["identity.key", "network.key", "client.token"]
        .iter()
        .map(|f| fs::read(home.join(f)).unwrap())
        .collect();
    assert_eq!(before, after, "a refused init must change nothing");
    let id = ok(&home, &["id"]);
    assert_eq!(id.trim().len(), 64);
    assert!(
        fs::read_to_string(home.join("identity.key"))
            .unwrap()
            .contains(id.trim())
    );
}

#[test]
fn send_without_a_node_says_how_to_start_one() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let out = run(&home, &["send", "hello"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("dshare serve"), "{}", show(&out));
}

#[test]
fn a_broken_node_url_is_refused_clearly() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    for url in ["localhost:7070", "ftp://x", "http://", "http://h:1/path"] {
        let out = fails(&home, &["send", "--node", url, "x"], 2);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not a node URL"),
            "{url}: {}",
            show(&out)
        );
    }
}

#[test]
fn verify_of_a_missing_box_exits_2() {
    let s = Scratch::new();
    fails(&s.home("a"), &["verify", "/nonexistent/box.txt"], 2);
}

#[test]
fn serve_on_a_fresh_home_creates_it_and_says_so() {
    let s = Scratch::new();
    let home = s.home("fresh");
    let node = Node::start(&home, &[]);
    assert!(home.join("identity.key").exists());
    assert!(
        node.log().contains("created a new network"),
        "{}",
        node.log()
    );
    let web = ok(&home, &["web"]);
    assert_eq!(web.trim(), format!("{}/?token={}", node.url, node.token));
}

#[test]
fn sigterm_stops_the_node_cleanly() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let status = node.stop();
    assert!(status.success(), "{status}");
    assert!(!home.join("node.addr").exists());
    // The box is intact and readable without a node.
    ok(&home, &["verify"]);
}

/// A stop does not wait out a `log -f` long-poll (up to 30 s) nor a `send --wait`
/// that cannot be satisfied (here up to 10 minutes): both are answered at once.
#[test]
fn sigterm_does_not_wait_for_followers_or_waiting_sends() {
    let s = Scratch::new();
    let (a, b) = (s.home("a"), s.home("b"));
    let node_a = Node::start(&a, &[]);
    let invite = ok(&a, &["invite"]);
    ok(&b, &["init", "--join", invite.trim()]);
    // `b` stores only its own messages, so a wait for it to hold one of `a`'s never ends.
    let b_id = ok(&b, &["id"]);
    let node_b = Node::start(&b, &["--allow-author", b_id.trim()]);
    wait_peer_up(&a, &node_b.url);
    let followed = s.dir.path().join("followed");
    let mut follow = dshare(&a, &["log", "-f"]);
    follow.stdout(fs::File::create(&followed).unwrap());
    follow.stderr(Stdio::null());
    let _follower = Reaped(follow.spawn().unwrap());
    let mut send = dshare(&a, &["send", "--wait", "all", "--timeout", "10m", "held"]);
    send.stdout(Stdio::null()).stderr(Stdio::piped());
    let mut sender = Reaped(send.spawn().unwrap());
    wait_for("the follower to print the message", DEADLINE, || {
        fs::read_to_string(&followed)
            .unwrap()
            .contains("held")
            .then_some(())
    });
    wait_for("b to refuse the message", DEADLINE, || {
        let peers: serde_json::Value = serde_json::from_str(&node_b.get("/peers", &[]).1).unwrap();
        (peers["refused"].as_u64().unwrap() > 0).then_some(())
    });

    let started = Instant::now();
    let status = node_a.stop();
    let took = started.elapsed();
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(5), "the stop took {took:?}");
    // The waiting send is answered: stored here, not confirmed by b.
    let status = wait_for("the send to end", DEADLINE, || sender.0.try_wait().unwrap());
    assert_eq!(status.code(), Some(1), "{status}");
}

#[test]
fn a_second_node_on_the_same_home_is_refused() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    let out = fails(&home, &["serve", "--listen", "127.0.0.1:0"], 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another node is already running"),
        "{}",
        show(&out)
    );
}
