//! A node started in-process through `dshare::node`, as tests and benches can: it
//! serves like `dshare serve`, and its stop releases the home for the next one.

use std::path::Path;
use std::time::Duration;

use dshare::cli::{Cli, Command};
use dshare::config::{ConfigFile, ServeSettings};
use dshare::home::Home;
use dshare::node::Node;

use crate::util::{Scratch, encode, get, ok, read_secret, wait_for};

/// The settings `dshare serve ARGS…` would resolve on `home`, from its config file.
fn settings(home: &Path, args: &[&str]) -> ServeSettings {
    let argv = ["dshare", "serve"].iter().chain(args);
    let Command::Serve(serve) = <Cli as clap::Parser>::parse_from(argv).command else {
        unreachable!("parsed as serve");
    };
    ServeSettings::resolve(&serve.settings(None), &ConfigFile::load(home).unwrap()).unwrap()
}

#[test]
fn a_node_started_in_process_serves_sends_and_stops_cleanly() {
    let scratch = Scratch::new();
    let dir = scratch.home("a");
    let home = Home::resolve(Some(dir.clone())).unwrap();
    let node = Node::start(&home, &settings(&dir, &["--listen", "127.0.0.1:0"])).unwrap();
    assert!(
        node.url().starts_with("http://127.0.0.1:"),
        "{}",
        node.url()
    );
    assert_eq!(
        std::fs::read_to_string(home.addr_path()).unwrap().trim(),
        node.url(),
        "the command line finds the node through its home"
    );
    // A separate `dshare send` process reaches it the way it reaches `dshare serve`.
    ok(&dir, &["send", "from a separate process"]);
    let token = read_secret(&dir.join("client.token"));
    let (status, _, body) = get(&format!("{}/log?token={}", node.url(), encode(&token)));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("from a separate process"), "{body}");

    // A second node on a running home is refused (the lock is held), not started.
    let second = Node::start(&home, &settings(&dir, &["--listen", "127.0.0.1:0"]));
    assert!(second.is_err(), "a second node started on a locked home");

    let url = node.url().to_string();
    node.stop();
    assert!(!home.addr_path().exists(), "the address outlived the node");
    wait_for("the port to close", Duration::from_secs(10), || {
        std::net::TcpStream::connect(url.trim_start_matches("http://"))
            .is_err()
            .then_some(())
    });
    // Stopped, the home is free again: the next node opens the same box.
    let again = Node::start(&home, &settings(&dir, &["--listen", "127.0.0.1:0"])).unwrap();
    assert_eq!(again.writer().store().summary().messages, 1);
    again.stop();
}

#[test]
fn an_in_process_node_refuses_hook_filters_without_a_hook() {
    let scratch = Scratch::new();
    let dir = scratch.home("a");
    let home = Home::resolve(Some(dir.clone())).unwrap();
    let refused = Node::start(
        &home,
        &settings(&dir, &["--listen", "127.0.0.1:0", "--grep", "x"]),
    );
    let error = format!("{:#}", refused.err().expect("started without a hook"));
    assert!(error.contains("--on-message"), "{error}");
    assert!(!home.addr_path().exists());
}
