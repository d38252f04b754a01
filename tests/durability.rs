//! Nothing acknowledged is lost: kill -9 under load, torn writes on restart.

use std::collections::HashSet;
use std::fs;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::util::{Node, Scratch, json_lines, ok};

#[test]
fn kill_9_during_concurrent_sends_loses_no_acknowledged_message() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let acked = Mutex::new(Vec::<String>::new());
    let stop = AtomicBool::new(false);
    let (url, token) = (node.url.clone(), node.token.clone());
    std::thread::scope(|scope| {
        for t in 0..8 {
            let (url, token, acked, stop) = (&url, &token, &acked, &stop);
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let (status, _, body) =
                        crate::util::get(&format!("{url}/send?msg=t{t}+%23{i}&token={token}"));
                    if status == 200 {
                        acked.lock().unwrap().push(body.trim().to_string());
                    }
                    i += 1;
                }
            });
        }
        crate::util::wait_for("300 acknowledged sends", crate::util::DEADLINE, || {
            (acked.lock().unwrap().len() >= 300).then_some(())
        });
        crate::util::signal(node.pid(), "KILL");
        stop.store(true, Ordering::Relaxed);
    });
    let home = node.kill9();
    let acked = acked.into_inner().unwrap();
    let _node = Node::start(&home, &[]);
    let held: HashSet<String> = json_lines(&ok(&home, &["log", "--json", "-n", "1000000"]))
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<_> = acked.iter().filter(|id| !held.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages lost",
        lost.len(),
        acked.len()
    );
    ok(&home, &["verify"]);
    eprintln!(
        "{} acknowledged before kill -9, {} held after restart",
        acked.len(),
        held.len()
    );
}

#[test]
fn a_torn_last_line_is_moved_aside_and_the_node_starts() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    ok(&home, &["send", "one"]);
    ok(&home, &["send", "two"]);
    let good = fs::read(home.join("box.txt")).unwrap();
    let home = node.kill9();
    let torn = b"{\"chain\":\"0123456789abcdef\",\"id\":\"trunc";
    let mut damaged = good.clone();
    damaged.extend_from_slice(torn);
    fs::write(home.join("box.txt"), &damaged).unwrap();

    let node = Node::start(&home, &[]);
    assert!(node.log().contains("moved"), "{}", node.log());
    assert_eq!(fs::read(home.join("box.txt")).unwrap(), good);
    let aside = crate::util::torn_files(&home);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(fs::read(&aside[0]).unwrap(), torn);
    ok(&home, &["send", "three"]);
    ok(&home, &["verify"]);
    let bodies: Vec<_> = json_lines(&ok(&home, &["log", "--json"]))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies, ["one", "two", "three"]);
}

#[test]
fn a_garbage_line_at_the_end_is_moved_aside_but_damage_in_the_middle_stops_the_node() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    ok(&home, &["send", "one"]);
    ok(&home, &["send", "two"]);
    let home = node.kill9();
    let good = fs::read(home.join("box.txt")).unwrap();
    let mut damaged = good.clone();
    damaged.extend_from_slice(b"garbage line\n");
    fs::write(home.join("box.txt"), &damaged).unwrap();
    let node = Node::start(&home, &[]);
    assert_eq!(fs::read(home.join("box.txt")).unwrap(), good);
    let home = node.kill9();

    let text = String::from_utf8(good).unwrap();
    let edited = text.replacen("\"body\":\"one\"", "\"body\":\"One\"", 1);
    fs::write(home.join("box.txt"), edited).unwrap();
    // A start from the checkpoint does not re-read the lines before it (`verify`
    // does: tests/checkpoint.rs); without one, the start-up scan reads them all.
    let _ = fs::remove_file(home.join("box.checkpoint"));
    let out = crate::util::fails(&home, &["serve", "--listen", "127.0.0.1:0"], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("corrupt at line 1"), "{err}");
}
