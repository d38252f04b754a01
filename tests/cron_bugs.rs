//! What a cron job or a CI step hits: `log` cut at one page, a fresh client key
//! refused, `--wait all` with no peer, and the messages that send people astray.

use std::path::Path;
use std::time::Instant;

use crate::util::{Node, Scratch, dshare, fails, json_lines, ok, run_with_input, show};

/// More than one page of the node's `/log` answer (1,000).
const MANY: usize = 1_200;

/// Sends `count` messages `tag 0` … from four threads at once.
fn burst(node: &Node, tag: &str, count: usize) {
    let started = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..4 {
            scope.spawn(move || {
                for i in (t..count).step_by(4) {
                    let (code, body) = node.get("/send", &[("msg", &format!("{tag} {i}"))]);
                    assert_eq!(code, 200, "{body}");
                }
            });
        }
    });
    eprintln!("{count} sends took {:?}", started.elapsed());
}

fn count_lines(text: &str) -> usize {
    text.lines().filter(|l| !l.is_empty()).count()
}

#[test]
fn log_with_a_node_running_prints_the_whole_conversation_not_one_page() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    burst(&node, "bulk", MANY);
    let me = ok(&home, &["id"]).trim().to_string();

    let from_node = ok(&home, &["log", "--json"]);
    assert_eq!(count_lines(&from_node), MANY, "log --json with the node up");
    assert_eq!(count_lines(&ok(&home, &["log"])), MANY, "plain log");
    assert_eq!(count_lines(&ok(&home, &["log", "-n", "5"])), 5);
    assert_eq!(count_lines(&ok(&home, &["log", "--grep", "bulk"])), MANY);
    assert_eq!(count_lines(&ok(&home, &["log", "--author", &me])), MANY);
    // `bulk 11`, `bulk 110`…`bulk 119`, `bulk 1100`…`bulk 1199`: most sent last.
    let grep = ok(&home, &["log", "--grep", "bulk 11"]);
    assert_eq!(count_lines(&grep), 111, "{grep}");
    let hits = s.home("hits");
    let command = format!("echo \"$DSHARE_SEQ\" >> {}", hits.display());
    ok(
        &home,
        &["log", "--exec", &command, "--grep", "bulk 11", "-q"],
    );
    let ran = std::fs::read_to_string(&hits).unwrap_or_default();
    assert_eq!(count_lines(&ran), 111, "the hook ran once per match");

    // The same conversation, in the same order, as the file read with no node.
    node.stop();
    assert_eq!(ok(&home, &["log", "--json"]), from_node);
}

/// `dshare client add NAME` on `home`: the line it printed.
fn add_client(home: &Path, name: &str) -> String {
    ok(home, &["client", "add", name]).trim().to_string()
}

#[test]
fn a_client_key_works_as_soon_as_client_add_returns_and_stops_when_revoke_returns() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    let runner = s.home("runner");
    for round in 0..3 {
        let name = format!("ci-{round}");
        let line = add_client(&home, &name);
        let mut cmd = dshare(&runner, &["send", "hi"]);
        cmd.env("DSHARE_CLIENT", &line);
        let out = run_with_input(cmd, b"");
        assert!(
            out.status.success(),
            "round {round}: the new key was refused\n{}",
            show(&out)
        );
        ok(&home, &["client", "revoke", &name]);
        let out = fails(&runner, &["send", "--client", &line, "after revoke"], 2);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("refused this client key"),
            "round {round}\n{}",
            show(&out)
        );
    }
    let bodies: Vec<String> = json_lines(&ok(&home, &["log", "--json"]))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies, ["hi", "hi", "hi"]);
}

#[test]
fn send_wait_all_with_no_peer_up_fails_naming_the_reason() {
    let s = Scratch::new();
    let home = s.home("alone");
    let _node = Node::start(&home, &[]);
    let wait_all = ["send", "--wait", "all", "--timeout", "2s", "nobody hears"];
    let out = fails(&home, &wait_all, 1);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no peer was up"), "{}", show(&out));
    // Through a client key, too.
    let line = add_client(&home, "ci");
    let runner = s.home("runner");
    let out = fails(
        &runner,
        &["send", "--client", &line, "--wait", "all", "remote"],
        1,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no peer was up"),
        "{}",
        show(&out)
    );
    fails(&home, &["send", "--wait", "1", "--timeout", "1s", "one"], 1);
    // Stored here every time: it reaches the others when they are back.
    assert_eq!(count_lines(&ok(&home, &["log"])), 3);
}

#[test]
fn a_mistyped_home_is_named_as_such_and_nothing_is_created() {
    let s = Scratch::new();
    let typo = s.home("no-such-home");
    for args in [
        &["send", "hi"][..],
        &["peers"],
        &["web"],
        &["invite"],
        &["verify"],
        &["verify", "--peers"],
        &["log"],
        &["log", "-f"],
        &["log", "--exec", "true"],
        &["client", "add", "ci"],
    ] {
        let out = fails(&typo, args, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not a dshare home"),
            "{args:?}\n{}",
            show(&out)
        );
        assert!(!err.contains("dshare serve"), "{args:?}\n{}", show(&out));
        assert!(!typo.exists(), "{args:?} created the home");
    }
    // A real home with its node stopped: start that node; `web` and `invite` do not
    // take --node, so they do not suggest it.
    let home = s.home("stopped");
    ok(&home, &["init"]);
    for (args, otherwise) in [
        (&["web"][..], None),
        (&["invite"], Some("--url")),
        (&["client", "add", "ci"], Some("--url")),
        (&["send", "hi"], Some("--node")),
        (&["peers"], Some("--node")),
    ] {
        let out = fails(&home, args, 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("no node is running"),
            "{args:?}\n{}",
            show(&out)
        );
        assert!(err.contains("serve"), "{args:?}\n{}", show(&out));
        match otherwise {
            Some(flag) => assert!(err.contains(flag), "{args:?}\n{}", show(&out)),
            None => assert!(!err.contains("--node"), "{args:?}\n{}", show(&out)),
        }
        if otherwise != Some("--node") {
            assert!(!err.contains("--node"), "{args:?}\n{}", show(&out));
        }
    }
}

#[test]
fn a_busy_port_says_another_node_may_hold_it_and_how_to_pick_another() {
    let s = Scratch::new();
    let first = Node::start(&s.home("a"), &[]);
    let taken = first.url.strip_prefix("http://").unwrap();
    let out = fails(&s.home("b"), &["serve", "--listen", taken], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Address already in use"), "{}", show(&out));
    assert!(err.contains("another dshare node"), "{}", show(&out));
    assert!(err.contains("--listen 127.0.0.1:0"), "{}", show(&out));
}

fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn the_readme_curl_one_liner_sends_through_the_quick_start_home() {
    if !have("curl") {
        eprintln!("SKIPPED: no curl");
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = readme
        .split("```sh\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains("curl -G"))
        .expect("the README's curl block");
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    let script = block.replace("/tmp/a", &home.display().to_string());
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(id.len(), 64, "{}", show(&out));
    assert!(ok(&home, &["log"]).contains("backup done on db-3"));
}

#[test]
fn print_config_shows_the_limits_and_the_allow_list_and_the_file_sets_them() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let me = ok(&home, &["id"]).trim().to_string();
    std::fs::write(
        home.join("config.toml"),
        format!("head-timeout = 7\nmax-connections = 64\nallow-author = [\"{me}\"]\n"),
    )
    .unwrap();
    let rows = json_lines(&ok(
        &home,
        &["--json", "serve", "--print-config", "--head-timeout", "9"],
    ));
    let row = |key: &str| {
        rows.iter()
            .find(|r| r["key"] == key)
            .unwrap_or_else(|| panic!("no {key} row in {rows:?}"))
            .clone()
    };
    assert_eq!(row("head-timeout")["value"], 9);
    assert_eq!(row("head-timeout")["source"], "flag");
    assert_eq!(row("max-connections")["value"], 64);
    assert_eq!(row("max-connections")["source"], "file");
    assert_eq!(row("allow-author")["value"], serde_json::json!([me]));
    // The node runs with them: the file's allow-list is announced at start.
    let node = Node::start(&home, &[]);
    assert!(node.log().contains("listed authors only"), "{}", node.log());
}

/// Spawns `dshare --home HOME ARGS…` with stderr into `err`.
fn spawn(home: &Path, args: &[&str], err: &Path) -> crate::util::Reaped {
    let mut cmd = dshare(home, args);
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(err).unwrap());
    crate::util::Reaped(cmd.spawn().unwrap())
}

/// Sends `name` to the process and waits for it to end; the signal that ended it.
fn stopped_by(child: &mut crate::util::Reaped, name: &str) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    crate::util::signal(child.0.id(), name);
    let status = crate::util::wait_for("the follower to stop", crate::util::DEADLINE, || {
        child.0.try_wait().unwrap()
    });
    status.signal()
}

#[test]
fn a_stopped_exec_follower_ends_like_an_interrupted_command() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    let (started, done) = (s.home("started"), s.home("done"));
    let hook = format!(
        "touch {}; sleep 1; echo \"$DSHARE_SEQ\" >> {}",
        started.display(),
        done.display()
    );
    let err = s.home("err");
    for (signal, number) in [("INT", 2), ("TERM", 15)] {
        // Plain `log -f`, the reference.
        let mut plain = spawn(&home, &["log", "-f"], &err);
        assert_eq!(stopped_by(&mut plain, signal), Some(number), "log -f");

        // Idle after a hook ran (so its signal handler is in place): ends at once,
        // by the signal.
        let woke = s.home(&format!("woke-{signal}"));
        let touch = format!("touch {}", woke.display());
        let mut idle = spawn(&home, &["log", "-f", "--exec", &touch], &err);
        poke_until(&home, &woke);
        assert_eq!(stopped_by(&mut idle, signal), Some(number), "idle runner");
    }
    // With a hook running: the hook finishes, then the runner ends by the signal.
    let mut busy = spawn(&home, &["log", "-f", "--exec", &hook], &err);
    poke_until(&home, &started);
    assert_eq!(stopped_by(&mut busy, "TERM"), Some(15), "busy runner");
    let finished = std::fs::read_to_string(&done).unwrap_or_default();
    assert_eq!(count_lines(&finished), 1, "the running hook finished first");
}

/// Sends messages until `path` exists: a follower started with `--from now` sees only
/// what is sent once it has asked the node where the box ends.
fn poke_until(home: &Path, path: &Path) {
    let end = Instant::now() + crate::util::DEADLINE;
    while !path.exists() {
        assert!(Instant::now() < end, "{} never appeared", path.display());
        ok(home, &["send", "poke"]);
        let poked = Instant::now();
        while !path.exists() && poked.elapsed() < std::time::Duration::from_secs(1) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

#[test]
fn an_empty_log_and_a_follower_without_a_node_say_so_on_stderr() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let out = run_with_input(dshare(&home, &["log"]), b"");
    assert!(out.status.success(), "{}", show(&out));
    assert!(out.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no messages yet"),
        "{}",
        show(&out)
    );
    let out = run_with_input(dshare(&home, &["-q", "log"]), b"");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        show(&out)
    );
    ok(&home, &["send", "hi"]);
    let out = run_with_input(dshare(&home, &["log", "--grep", "nothing like it"]), b"");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("none of the 1 messages matches"),
        "{}",
        show(&out)
    );
    node.stop();
    let err = s.home("err");
    let mut follower = spawn(&home, &["log", "-f"], &err);
    crate::util::wait_for("the follower's note", crate::util::DEADLINE, || {
        std::fs::read_to_string(&err)
            .unwrap()
            .contains("no node is running")
            .then_some(())
    });
    stopped_by(&mut follower, "TERM");
}

#[test]
fn a_refusal_says_refused_once_and_verify_of_a_home_checks_its_box() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let big = "x".repeat(70_000);
    let out = run_with_input(dshare(&home, &["send"]), big.as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("refused").count(), 1, "{err}");
    assert!(err.contains("65536") || err.contains("64 KiB"), "{err}");

    ok(&home, &["send", "one"]);
    let dir = home.display().to_string();
    // While the node runs, and once it is stopped.
    assert!(ok(&home, &["verify", &dir]).starts_with("ok: 1 messages"));
    node.stop();
    assert!(ok(&home, &["verify", &dir]).starts_with("ok: 1 messages"));
    let empty = s.home("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = fails(&home, &["verify", &empty.display().to_string()], 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("directory without a box.txt"), "{err}");
    assert!(err.contains("--home"), "{err}");
}

#[test]
fn man_pages_name_real_commands_and_say_environment_and_exit_status() {
    let s = Scratch::new();
    let out = s.dir.path().join("gen");
    ok(&s.home("a"), &["generate", "--out", out.to_str().unwrap()]);
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let send = read("man/dshare-send.1");
    let synopsis = send.split(".SH SYNOPSIS\n").nth(1).unwrap();
    assert!(synopsis.starts_with("\\fBdshare send\\fR"), "{synopsis}");
    for wanted in [
        ".SH ENVIRONMENT",
        "DSHARE_NODE",
        "DSHARE_TOKEN",
        "DSHARE_CLIENT",
        "DSHARE_HOME",
        ".SH \"EXIT STATUS\"",
        "\\fB\\-\\-home\\fR",
        "\\fB\\-\\-json\\fR",
    ] {
        assert!(send.contains(wanted), "dshare-send.1 lacks {wanted}");
    }
    let top = read("man/dshare.1");
    assert!(
        !top.contains("dshare\\-help(1)"),
        "a page for a help command"
    );
    assert!(top.contains("DSHARE_LISTEN") && top.contains(".SH \"EXIT STATUS\""));
    for page in std::fs::read_dir(out.join("man")).unwrap() {
        let page = std::fs::read_to_string(page.unwrap().path()).unwrap();
        for line in page.lines().filter(|l| l.ends_with("(1)")) {
            let name = line.trim_end_matches("(1)").replace("\\-", "-");
            assert!(out.join(format!("man/{name}.1")).exists(), "{name}(1)");
        }
    }
    let bash = read("completions/dshare.bash");
    for script in [
        "dshare.bash",
        "_dshare",
        "dshare.fish",
        "dshare.elv",
        "_dshare.ps1",
    ] {
        assert!(
            !read(&format!("completions/{script}")).contains("generate"),
            "{script}"
        );
    }
    let offered = |flag: &str| {
        bash.split(&format!("                {flag})\n"))
            .nth(1)
            .and_then(|rest| rest.lines().next())
            .unwrap_or_default()
            .to_string()
    };
    assert!(
        offered("--wait").contains("\"all\""),
        "{}",
        offered("--wait")
    );
    assert!(
        offered("--from").contains("\"now start\""),
        "{}",
        offered("--from")
    );
    assert!(
        !offered("--timeout").contains("compgen -f"),
        "{}",
        offered("--timeout")
    );
}

/// A mistyped invite (one key digit changed, the port cut short) is refused at
/// `init --join`, and changes nothing; a node whose requests a peer cannot open
/// (another network's key) says so in `peers` and `doctor`.
#[test]
fn a_mistyped_invite_is_refused_and_a_refused_network_key_is_named() {
    let s = Scratch::new();
    let a = Node::start(&s.home("a"), &[]);
    let invite = ok(&a.home, &["invite"]).trim().to_string();
    let at = "dshare1:".len() + 7;
    let digit = if &invite[at..=at] == "0" { "1" } else { "0" };
    let typo = format!("{}{digit}{}", &invite[..at], &invite[at + 1..]);
    let port = a.url.rsplit(':').next().unwrap();
    let cut = invite.replace(
        &format!(":{port}"),
        &format!(":{}", &port[..port.len() - 1]),
    );
    for (name, line) in [("typo", &typo), ("cut", &cut)] {
        let home = s.home(name);
        let out = fails(&home, &["init", "--join", line], 2);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("check does not match"), "{name}: {err}");
        assert!(!home.exists(), "{name}: a refused invite made a home");
    }

    // Another network's key, joined through an invite without a check (as older
    // versions printed): the first exchanges say what is wrong.
    let other = format!("dshare1:{}@{}", "ab".repeat(32), a.url);
    ok(&s.home("b"), &["init", "--join", &other]);
    let b = Node::start(&s.home("b"), &[]);
    let said = crate::util::wait_for("b to say a refused its key", crate::util::DEADLINE, || {
        let peers = ok(&b.home, &["peers"]);
        peers.contains("refused our network key").then_some(peers)
    });
    assert!(said.contains(&a.url), "{said}");
    let doctor = fails(&b.home, &["doctor"], 1);
    let text = String::from_utf8_lossy(&doctor.stdout).to_string()
        + &String::from_utf8_lossy(&doctor.stderr);
    assert!(
        text.contains(&format!("peer {} refused our network key", a.url)),
        "{text}"
    );
}
