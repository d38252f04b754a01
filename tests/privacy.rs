//! What crosses the wire, who may post, and how the home's secrets are kept.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::sync::{Arc, Mutex};

use crate::util::{DEADLINE, Node, Scratch, json_lines, ok, wait_for};

/// A TCP relay on loopback that forwards to `target` and records every byte, both ways.
fn recording_relay(target: String) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let tape = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&tape);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&target) else {
                continue;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let record = Arc::clone(&record);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16 * 1024];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 || to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        record.lock().unwrap().extend_from_slice(&buf[..n]);
                    }
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            }
        }
    });
    (format!("http://{addr}"), tape)
}

fn bodies(home: &std::path::Path) -> Vec<String> {
    json_lines(&ok(home, &["log", "--json"]))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn no_byte_of_a_message_body_crosses_the_wire_in_clear() {
    let s = Scratch::new();
    let a_home = s.home("a");
    let a = Node::start(&a_home, &[]);
    let (relay, tape) = recording_relay(a.url.strip_prefix("http://").unwrap().to_string());
    let key = crate::util::read_secret(&a_home.join("network.key"));
    let b_home = s.home("b");
    ok(
        &b_home,
        &["init", "--join", &format!("dshare1:{key}@{relay}")],
    );
    let _b = Node::start(&b_home, &[]);
    let secrets = [
        "PLAINTEXT-CANARY-FROM-B-7f3a",
        "PLAINTEXT-CANARY-FROM-A-91c2",
    ];
    ok(&b_home, &["send", secrets[0]]);
    ok(&a_home, &["send", secrets[1]]);
    for home in [&a_home, &b_home] {
        wait_for("both messages on both nodes", DEADLINE, || {
            (bodies(home).len() == 2).then_some(())
        });
    }
    let recorded = tape.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&recorded);
    eprintln!("the relay recorded {} bytes", recorded.len());
    assert!(
        text.contains("POST /v1/push") || text.contains("POST /v1/range"),
        "no message went through the relay"
    );
    for canary in secrets {
        assert!(!text.contains(canary), "{canary} crossed the wire in clear");
        assert!(
            !text.contains("CANARY"),
            "part of a body crossed the wire in clear"
        );
    }
}

#[test]
fn a_node_with_an_allow_list_stores_only_the_listed_authors() {
    let s = Scratch::new();
    let a_home = s.home("a");
    let a = Node::start(&a_home, &[]);
    let invite = ok(&a_home, &["invite"]).trim().to_string();
    let a_id = ok(&a_home, &["id"]).trim().to_string();
    let (b_home, c_home) = (s.home("b"), s.home("c"));
    ok(&b_home, &["init", "--join", &invite]);
    ok(&c_home, &["init", "--join", &invite]);
    let _b = Node::start(&b_home, &[]);
    let c = Node::start(&c_home, &["--allow-author", &a_id]);
    assert!(c.log().contains("listed authors only"), "{}", c.log());
    ok(&b_home, &["send", "from b"]);
    ok(&a_home, &["send", "from a"]);
    ok(&c_home, &["send", "from c"]);
    wait_for("a to hold all three", DEADLINE, || {
        (bodies(&a_home).len() == 3).then_some(())
    });
    wait_for("c to refuse b's message", DEADLINE, || {
        let peers: serde_json::Value = serde_json::from_str(&c.get("/peers", &[]).1).unwrap();
        (peers["refused"].as_u64().unwrap() > 0).then_some(())
    });
    // The refusal of b's message says nothing of a's, which may arrive a moment
    // later: wait for it, then check that nothing else is held.
    wait_for("c to hold a's message", DEADLINE, || {
        bodies(&c_home).iter().any(|b| b == "from a").then_some(())
    });
    let mut held = bodies(&c_home);
    held.sort();
    assert_eq!(held, ["from a", "from c"]);
    drop(a);
}

#[test]
fn loose_permissions_on_secrets_are_warned_about_at_start() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let key = home.join("identity.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let node = Node::start(&home, &[]);
    assert!(
        node.log().contains("readable by other users"),
        "{}",
        node.log()
    );
    assert!(node.log().contains("chmod 600"), "{}", node.log());
    // The secret itself is never printed.
    let secret = crate::util::read_secret(&key);
    assert!(!node.log().contains(&secret));
}

/// Waits until the node has reloaded its keyring `n` times in all.
fn reloaded(node: &Node, n: usize) {
    wait_for("the node to reload its keys", DEADLINE, || {
        (node.log().matches("network keys reloaded").count() >= n).then_some(())
    });
}

#[test]
fn the_network_key_rotates_without_downtime_and_the_old_key_stops_working() {
    let s = Scratch::new();
    let a_home = s.home("a");
    let a = Node::start(&a_home, &[]);
    let invite = ok(&a_home, &["invite"]).trim().to_string();
    let (b_home, c_home) = (s.home("b"), s.home("c"));
    ok(&b_home, &["init", "--join", &invite]);
    ok(&c_home, &["init", "--join", &invite]);
    let b = Node::start(&b_home, &[]);
    let c = Node::start(&c_home, &[]);
    let has = |home: &std::path::Path, body: &str| bodies(home).iter().any(|b| b == body);
    let old_id = ok(&a_home, &["keys", "list"])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();

    // 1. Every rotating node holds the new key beside the old one.
    let new_key = ok(&a_home, &["keys", "new"]).trim().to_string();
    ok(&b_home, &["keys", "install", &new_key]);
    reloaded(&a, 1);
    reloaded(&b, 1);
    // 2. Each switches to sealing with it; the others still open it.
    ok(&a_home, &["keys", "use", &new_key]);
    reloaded(&a, 2);
    ok(&a_home, &["send", "sealed with the new key"]);
    wait_for("b to get a's message", DEADLINE, || {
        has(&b_home, "sealed with the new key").then_some(())
    });
    ok(&b_home, &["keys", "use", &new_key]);
    reloaded(&b, 2);
    // 3. The old key is retired everywhere: a node holding only it is out.
    ok(&a_home, &["keys", "remove", &old_id]);
    ok(&b_home, &["keys", "remove", &old_id]);
    reloaded(&a, 3);
    reloaded(&b, 3);
    let listed = ok(&a_home, &["keys", "list"]);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(!listed.contains(&old_id));
    ok(&b_home, &["send", "after the old key was retired"]);
    wait_for("a to get b's message", DEADLINE, || {
        has(&a_home, "after the old key was retired").then_some(())
    });
    wait_for("c to see a and b down", DEADLINE, || {
        let peers = json_lines(&ok(&c_home, &["peers", "--json"]));
        peers.iter().all(|p| p["state"] != "up").then_some(())
    });
    ok(&c_home, &["send", "from the old key"]);
    assert!(!has(&c_home, "after the old key was retired"));
    assert!(!has(&a_home, "from the old key"));
    // The key in use cannot be removed; a bad key is refused.
    let out = crate::util::fails(&a_home, &["keys", "remove", &new_key], 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
    crate::util::fails(&a_home, &["keys", "install", "not-a-key"], 2);
    drop((a, b, c));
}

#[test]
fn a_remote_sender_uses_a_revocable_client_key_that_never_crosses_the_wire() {
    let s = Scratch::new();
    let home = s.home("node");
    let node = Node::start(&home, &[]);
    let (relay, tape) = recording_relay(node.url.strip_prefix("http://").unwrap().to_string());
    let line = ok(&home, &["client", "add", "ci-runner", "--url", &relay])
        .trim()
        .to_string();
    assert!(line.starts_with("dshare-client1:"), "{line}");
    let key = line
        .split(':')
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    wait_for("the node to load the client key", DEADLINE, || {
        node.log().contains("client keys reloaded: 1").then_some(())
    });

    // A machine that is not a node: no home of its own, only the line.
    let runner = s.home("runner");
    let id = ok(
        &runner,
        &["send", "--client", &line, "release 1.4 deployed"],
    );
    let mut cmd = crate::util::dshare(&runner, &["--json", "send", "by env"]);
    cmd.env("DSHARE_CLIENT", &line);
    let out = crate::util::run_with_input(cmd, b"");
    assert!(out.status.success(), "{}", crate::util::show(&out));
    assert_eq!(bodies(&home), ["release 1.4 deployed", "by env"]);
    assert!(ok(&home, &["log", "--json"]).contains(id.trim()));

    let recorded = tape.lock().unwrap().clone();
    let text = String::from_utf8_lossy(&recorded);
    assert!(
        text.contains("POST /c/send"),
        "nothing went through the relay"
    );
    for secret in [key.as_str(), node.token.as_str(), "release 1.4", "by env"] {
        assert!(
            !text.contains(secret),
            "{secret:?} crossed the wire in clear"
        );
    }
    // A captured request replayed as is gets a bare 403.
    let start = recorded.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&recorded[..start]).to_string();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    let body = recorded[start..start + len].to_vec();
    let addr = node.url.strip_prefix("http://").unwrap();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /c/send HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    c.write_all(&body).unwrap();
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert_eq!(bodies(&home).len(), 2, "the replay stored nothing");

    // Revoked: refused within a second, with a reason.
    ok(&home, &["client", "revoke", "ci-runner"]);
    wait_for("the node to drop the client key", DEADLINE, || {
        node.log().contains("client keys reloaded: 0").then_some(())
    });
    let out = crate::util::fails(&runner, &["send", "--client", &line, "after revoke"], 2);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refused this client key"),
        "{}",
        crate::util::show(&out)
    );
    assert_eq!(bodies(&home).len(), 2);
    assert_eq!(ok(&home, &["client", "list"]), "");
}
