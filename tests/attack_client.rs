//! Attacks on the parts of a node next to its user: hooks, the browser page, the
//! home directory and its secrets, and secrets on the command line.

use std::fs;
use std::path::Path;

use crate::util::{DEADLINE, Node, Scratch, dshare, ok, run_with_input, show, wait_for};

/// The lines of a file (none if it does not exist).
fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Sends `body` from stdin (no argument list limits, any bytes of UTF-8).
fn send_stdin(home: &Path, body: &str) -> String {
    let out = run_with_input(dshare(home, &["send"]), body.as_bytes());
    assert!(out.status.success(), "send failed\n{}", show(&out));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A hook that records, per message, its id, the body length it read on stdin, and
/// which variables were left out.
fn recording_hook(out: &Path) -> String {
    format!(
        "printf '%s %s [%s]\\n' \"$DSHARE_ID\" \"$(wc -c | tr -d ' ')\" \"$DSHARE_OMITTED\" >> {}",
        out.display()
    )
}

/// 30 KB of control characters: 180 KB once escaped into `DSHARE_JSON`, past the
/// kernel's 128 KiB limit for one environment string.
fn hostile_body() -> String {
    "\u{1}".repeat(30_000)
}

#[test]
fn a_message_of_control_characters_reaches_log_exec_and_so_does_the_next() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    let first = send_stdin(&home, &hostile_body());
    let second = send_stdin(&home, "after it");
    let out = s.dir.path().join("out");
    let started = std::time::Instant::now();
    ok(&home, &["log", "--exec", &recording_hook(&out)]);
    eprintln!("log --exec took {:?}", started.elapsed());
    assert_eq!(
        lines(&out),
        [
            format!("{first} 30000 [DSHARE_JSON]"),
            format!("{second} 8 []")
        ]
    );
}

#[test]
fn a_message_of_control_characters_reaches_serve_on_message_and_so_does_the_next() {
    let s = Scratch::new();
    let home = s.home("a");
    let out = s.dir.path().join("out");
    let hook = recording_hook(&out);
    let node = Node::start(&home, &["--on-message", &hook]);
    let first = send_stdin(&home, &hostile_body());
    let second = send_stdin(&home, "after it");
    let started = std::time::Instant::now();
    wait_for("the hook to run for both messages", DEADLINE, || {
        (lines(&out).len() >= 2).then_some(())
    });
    eprintln!("both hooks ran within {:?}", started.elapsed());
    assert_eq!(
        lines(&out),
        [
            format!("{first} 30000 [DSHARE_JSON]"),
            format!("{second} 8 []")
        ],
        "node log:\n{}",
        node.log()
    );
    assert!(!node.log().contains("failed"), "{}", node.log());
}

/// The form key in the page the node serves for its token.
fn form_key_of_page(node: &Node) -> String {
    let (status, page) = node.get("/", &[]);
    assert_eq!(status, 200, "{page}");
    let at = page.find("name=\"form_key\" value=\"").expect("a form key") + 23;
    page[at..at + 64].to_string()
}

fn bodies(home: &Path) -> Vec<String> {
    crate::util::json_lines(&ok(home, &["log", "--json"]))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_same_site_page_cannot_send_with_the_cookie() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let cookie = format!("Cookie: dshare_token={}", node.token);
    let form_key = form_key_of_page(&node);
    // What a browser sends for `<img src=…>` on a page from another port of
    // 127.0.0.1: same-site, the cookie attached, and no token or form key.
    let forged = format!("{}/send?msg=forged&from=page", node.url);
    let (status, _, answer) = crate::util::raw_request(
        &forged,
        &[
            &cookie,
            "Sec-Fetch-Site: same-site",
            "Sec-Fetch-Mode: no-cors",
        ],
    );
    eprintln!("same-site forgery: {status} {answer}");
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("another site"), "{answer}");
    // Even knowing the form key, a same-site page cannot use the cookie.
    let with_key = format!("{forged}&form_key={form_key}");
    let (status, _, _) =
        crate::util::raw_request(&with_key, &[&cookie, "Sec-Fetch-Site: same-site"]);
    assert_eq!(status, 403);
    // A browser that does not say where a request comes from (no Sec-Fetch-Site):
    // the cookie alone does not send; the page's form key is needed.
    let (status, _, answer) = crate::util::raw_request(&forged, &[&cookie]);
    eprintln!("cookie without a form key: {status} {answer}");
    assert_eq!(status, 403, "{answer}");
    assert!(answer.contains("form key"), "{answer}");
    assert_eq!(bodies(&home), Vec::<String>::new());

    // The page's own form, submitted by the browser without JavaScript: same-origin,
    // the cookie, and the form key from the page.
    let own = format!(
        "{}/send?form_key={form_key}&from=page&msg=from+the+page",
        node.url
    );
    let (status, head, _) =
        crate::util::raw_request(&own, &[&cookie, "Sec-Fetch-Site: same-origin"]);
    assert_eq!(status, 303, "{head}");
    assert_eq!(bodies(&home), ["from the page"]);
    // Reading the page on the cookie, as after the form's redirect, still works.
    let (status, _, _) = crate::util::raw_request(
        &format!("{}/", node.url),
        &[&cookie, "Sec-Fetch-Site: same-origin"],
    );
    assert_eq!(status, 200);
}

/// Runs `dshare --home HOME ARGS…` and requires it to exit with 2 within the deadline
/// (a `serve` that should refuse would otherwise run for ever); returns its stderr.
fn refused(home: &Path, args: &[&str]) -> String {
    let mut child = dshare(home, args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_for("the command to refuse and exit", DEADLINE, || {
        let status = child.try_wait().unwrap();
        if status.is_none() && args[0] == "serve" && home.join("node.addr").exists() {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dshare {args:?} started serving instead of refusing");
        }
        status
    });
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(2), "dshare {args:?}: {err}");
    err
}

/// Changes the owner of `path` to `uid` with chown(1).
fn chown(path: &Path, uid: u32) {
    let status = std::process::Command::new("chown")
        .arg(uid.to_string())
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "chown failed");
}

/// The user id this test runs as.
fn my_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let probe = tempfile::NamedTempFile::new().unwrap();
    fs::metadata(probe.path()).unwrap().uid()
}

#[test]
fn a_home_another_user_owns_or_may_write_is_refused() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let me = my_uid();
    if me != 0 {
        // Only root can give a directory away; the mode check still runs below.
        eprintln!("not root: skipping the chown half of this test");
    } else {
        chown(&home, 65534);
        for args in [
            &["serve", "--listen", "127.0.0.1:0"][..],
            &["send", "hello"],
        ] {
            let err = refused(&home, args);
            eprintln!("{args:?}: {err}");
            assert!(err.contains("belongs to user 65534"), "{err}");
            assert!(err.contains(&format!("chown -R {me}")), "{err}");
        }
        chown(&home, me);
        // An empty directory planted by another user, for a new home: refused too.
        let planted = s.home("planted");
        fs::create_dir(&planted).unwrap();
        chown(&planted, 65534);
        let err = refused(&planted, &["init"]);
        assert!(err.contains("belongs to user 65534"), "{err}");
        assert_eq!(fs::read_dir(&planted).unwrap().count(), 0);
    }
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&home, fs::Permissions::from_mode(0o777)).unwrap();
    let err = refused(&home, &["serve", "--listen", "127.0.0.1:0"]);
    assert!(
        err.contains("can be written by other users (mode 777)"),
        "{err}"
    );
    assert!(err.contains("chmod 700"), "{err}");
    assert!(!home.join("box.txt").exists(), "serve went on regardless");
    // Fixed as the message says, the home serves again.
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    let _node = Node::start(&home, &[]);
    ok(&home, &["send", "hello"]);
}

#[test]
fn a_planted_box_link_is_refused_and_its_target_untouched() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    // A file of the node's user, without a line feed at the end: followed, it looks
    // like a box with a torn last line, which recovery would cut to 0 bytes.
    let victim = s.dir.path().join("victim");
    fs::write(&victim, "precious, no newline").unwrap();
    std::os::unix::fs::symlink(&victim, home.join("box.txt")).unwrap();
    let err = refused(&home, &["serve", "--listen", "127.0.0.1:0"]);
    eprintln!("{err}");
    assert!(err.contains("is a symbolic link"), "{err}");
    assert!(err.contains("Remove the link"), "{err}");
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious, no newline");
    // The head file beside the box is refused the same way.
    fs::remove_file(home.join("box.txt")).unwrap();
    std::os::unix::fs::symlink(&victim, home.join("box.head")).unwrap();
    let node = Node::start(&home, &[]);
    ok(&home, &["send", "hello"]);
    drop(node);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious, no newline");
}

/// What an `init` killed by a full disk left before this was fixed: the home and an
/// empty network key, nothing else.
fn torn_home(s: &Scratch, name: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let home = s.home(name);
    fs::create_dir(&home).unwrap();
    fs::set_permissions(&home, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(home.join("network.key"), "").unwrap();
    home
}

#[test]
fn an_interrupted_init_is_finished_by_the_next_init_or_serve() {
    let s = Scratch::new();
    let by_init = torn_home(&s, "a");
    let out = crate::util::run(&by_init, &["init"]);
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("init on a torn home: {}", show(&out));
    assert!(out.status.success(), "{}", show(&out));
    assert!(err.contains("interrupted `dshare init`"), "{err}");
    let _node = Node::start(&by_init, &[]);
    ok(&by_init, &["send", "after a torn init"]);

    let by_serve = torn_home(&s, "b");
    let _node = Node::start(&by_serve, &[]);
    ok(&by_serve, &["send", "after a torn init"]);
    // What was left is kept aside, not deleted.
    assert!(fs::read_dir(&by_serve).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("network.key.torn-")
    }));
}

#[test]
fn an_empty_secret_in_a_home_that_ran_is_named_with_a_remedy() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    fs::write(home.join("network.key"), "").unwrap();
    let err = refused(&home, &["serve", "--listen", "127.0.0.1:0"]);
    eprintln!("{err}");
    assert!(err.contains("network.key"), "{err}");
    assert!(err.contains("empty"), "{err}");
    assert!(err.contains("Restore"), "{err}");
    // init does not overwrite what is left of a real home.
    let err = refused(&home, &["init"]);
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(home.join("identity.key").exists());
}

#[test]
fn tokens_and_client_keys_can_come_from_files_and_the_help_says_why() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let elsewhere = s.home("elsewhere");
    // A token file with a comment, as a person might write one.
    let token_file = s.dir.path().join("token");
    fs::write(&token_file, format!("# the node's token\n{}\n", node.token)).unwrap();
    let file_arg = token_file.to_str().unwrap();
    ok(
        &elsewhere,
        &[
            "send",
            "--node",
            &node.url,
            "--token-file",
            file_arg,
            "by token file",
        ],
    );
    let mut by_env = dshare(&elsewhere, &["send", "--node", &node.url, "by token env"]);
    by_env.env("DSHARE_TOKEN_FILE", &token_file);
    let out = run_with_input(by_env, b"");
    assert!(out.status.success(), "{}", show(&out));
    // A wrong file is an error that names it, not a silent fallback.
    let missing = s.dir.path().join("missing");
    let out = crate::util::run(
        &elsewhere,
        &[
            "send",
            "--node",
            &node.url,
            "--token-file",
            missing.to_str().unwrap(),
            "x",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing"));

    // A client key line from `dshare client add`, in a file.
    let line = ok(&home, &["client", "add", "ci"]).trim().to_string();
    wait_for("the node to load the client key", DEADLINE, || {
        node.log().contains("client keys reloaded: 1").then_some(())
    });
    let client_file = s.dir.path().join("client");
    fs::write(&client_file, format!("{line}\n")).unwrap();
    ok(
        &elsewhere,
        &[
            "send",
            "--client-file",
            client_file.to_str().unwrap(),
            "by client file",
        ],
    );
    let bodies = bodies(&home);
    assert_eq!(bodies, ["by token file", "by token env", "by client file"]);

    let help = ok(&home, &["send", "--help"]);
    assert!(help.contains("--token-file"), "{help}");
    assert!(help.contains("--client-file"), "{help}");
    assert!(
        help.contains("visible to every local user in `ps`"),
        "{help}"
    );
}
