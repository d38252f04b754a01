//! `dshare testnet`: a joined network of local nodes, removed on SIGTERM or SIGINT
//! unless `--dir` keeps the homes.

use std::fs;
use std::path::Path;
use std::process::Stdio;

use crate::util::testnet::Testnet;
use crate::util::{DEADLINE, Scratch, dshare, json_lines, ok, signal, wait_for};

#[test]
fn testnet_starts_a_joined_network_and_removes_it_on_sigterm() {
    let s = Scratch::new();
    let net = Testnet::start(&s.home("x"), 4);
    let dir = net.dir.clone();
    assert!(dir.exists());
    for i in 1..=4 {
        let peers = json_lines(&ok(&net.home(i), &["--json", "peers"]));
        assert_eq!(peers.len(), 3, "node {i} knows the other three");
        assert!(peers.iter().all(|p| p["state"] == "up"));
        assert!(net.url(i).starts_with("http://127.0.0.1:"));
        assert_eq!(net.id(i), ok(&net.home(i), &["id"]).trim());
    }
    ok(&net.home(2), &["send", "--wait", "all", "to all four"]);
    for i in 1..=4 {
        wait_for("the message everywhere", DEADLINE, || {
            ok(&net.home(i), &["log"])
                .contains("to all four")
                .then_some(())
        });
    }
    let pids: Vec<u32> = (1..=4).map(|i| net.pid(i)).collect();
    let status = net.stop();
    assert!(status.success(), "{status}");
    assert!(!dir.exists(), "the temporary homes are removed");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "node process {pid} must be stopped"
        );
    }

    // Human output: one line per node, then `ready`; --dir keeps the homes.
    let keep = s.dir.path().join("kept");
    let mut child = dshare(
        &s.home("x"),
        &["testnet", "--nodes", "1", "--dir", keep.to_str().unwrap()],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut reader = std::io::BufReader::new(stdout);
    let mut first = String::new();
    let mut second = String::new();
    use std::io::BufRead;
    reader.read_line(&mut first).unwrap();
    reader.read_line(&mut second).unwrap();
    assert!(first.starts_with("node1 http://127.0.0.1:"), "{first}");
    assert!(
        first
            .trim_end()
            .ends_with(&keep.join("node1").display().to_string())
    );
    assert_eq!(second, "ready\n");
    signal(child.id(), "INT");
    let status = wait_for("testnet to stop on SIGINT", DEADLINE, || {
        child.try_wait().unwrap()
    });
    assert!(status.success());
    assert!(keep.join("node1/box.txt").exists(), "--dir keeps the homes");
}
