//! What scripts read: `--json` on every data command, the help's command order,
//! and no progress bar or colour code unless on a terminal.

use std::process::{Command, Stdio};

use crate::util::{Node, Scratch, json_lines, ok, run, show};

#[test]
fn every_data_command_speaks_json() {
    let s = Scratch::new();
    let home = s.home("a");
    let init = json_lines(&ok(&home, &["--json", "init"]));
    assert_eq!(init[0]["home"], home.display().to_string());
    let node = Node::start(&home, &[]);
    let id = json_lines(&ok(&home, &["--json", "id"]));
    assert_eq!(id[0]["id"], init[0]["author"]);
    let web = json_lines(&ok(&home, &["--json", "web"]));
    assert!(web[0]["url"].as_str().unwrap().starts_with(&node.url));
    let invite = json_lines(&ok(&home, &["--json", "invite"]));
    assert!(
        invite[0]["invite"]
            .as_str()
            .unwrap()
            .starts_with("dshare1:")
    );
    assert_eq!(invite[0]["url"], node.url);
    let sent = json_lines(&ok(&home, &["--json", "send", "hello"]));
    assert_eq!(sent[0]["body"], "hello");
    let log = json_lines(&ok(&home, &["--json", "log"]));
    assert_eq!(log[0]["id"], sent[0]["id"]);
    let verify = json_lines(&ok(&home, &["--json", "verify"]));
    assert_eq!(verify[0]["ok"], true);
    assert!(json_lines(&ok(&home, &["--json", "peers"])).is_empty());
    let joined = s.home("b");
    let b = json_lines(&ok(
        &joined,
        &[
            "--json",
            "init",
            "--join",
            invite[0]["invite"].as_str().unwrap(),
        ],
    ));
    assert_eq!(b[0]["joined"], node.url);
    // No colour codes anywhere, terminal or not: dshare prints none.
    let human = ok(&home, &["log"]);
    assert!(!human.contains('\u{1b}'));
}

#[test]
fn help_lists_the_five_main_commands_first() {
    let s = Scratch::new();
    let help = ok(&s.home("a"), &["--help"]);
    let commands: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(commands[..5], ["serve", "send", "log", "peers", "verify"]);
    assert!(commands.contains(&"testnet"));
}

/// POSTs `body` to the node's `/send`, as `dshare send` does.
fn post(node: &Node, body: &str) {
    let auth = format!("Authorization: Bearer {}", node.token);
    let url = format!("{}/send", node.url);
    let answer = crate::util::http::once(&url, "POST", &[&auth], Some(body.as_bytes()));
    let answer = answer.expect("an answer");
    assert_eq!(answer.status, 200, "{}", answer.head);
}

#[test]
fn verify_shows_a_progress_bar_only_on_a_terminal() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    // Past the 8 MiB from which verify shows a bar: 135 bodies of 65,000 bytes.
    let body = "x".repeat(65_000);
    std::thread::scope(|scope| {
        for _ in 0..5 {
            scope.spawn(|| {
                for _ in 0..27 {
                    post(&node, &body);
                }
            });
        }
    });
    drop(node);
    // `script` (util-linux) runs the command on a pseudo-terminal.
    let on_tty = |args: &str| {
        let mut cmd = Command::new("script");
        cmd.args([
            "-qec",
            &format!("{} --home {} {args}", crate::util::BIN, home.display()),
            "/dev/null",
        ]);
        let out = cmd.stdin(Stdio::null()).output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let shown = on_tty("verify");
    assert!(
        shown.contains("verifying") && shown.contains("ok: 135 messages"),
        "{shown}"
    );
    for quiet in ["-q verify", "--json verify"] {
        assert!(!on_tty(quiet).contains("verifying"), "{quiet}");
    }
    let piped = run(&home, &["verify"]);
    assert!(piped.status.success());
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("verifying"));
    assert!(!String::from_utf8_lossy(&piped.stderr).contains('\u{1b}'));
}
