//! One node end to end: send by every route, read back byte-exact, limits, tokens.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::util::{
    DEADLINE, Node, Scratch, box_lines, dshare, fails, get, json_lines, ok, raw_request,
    run_with_input, show,
};

const AWKWARD: &[&str] = &[
    "plain",
    "two\nlines\n\nand a blank one",
    "a&b=c #frag %41 %zz + plus + \"double\" 'single' \\back\\slash",
    "emoji 🎉🚀 and RTL שלום עולם مرحبا",
    "tabs\tand\r\ncarriage return",
    "  leading and trailing spaces  ",
];

fn log_bodies(home: &std::path::Path) -> Vec<String> {
    json_lines(&ok(home, &["log", "--json"]))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn awkward_bodies_arrive_byte_exact_by_argument_stdin_and_http() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let mut expected = Vec::new();
    for body in AWKWARD {
        let id = ok(&home, &["send", body]);
        assert_eq!(id.trim().len(), 64);
        expected.push(body.to_string());
    }
    for body in AWKWARD {
        // One trailing newline (as `echo` adds) is dropped; everything else is kept.
        let out = run_with_input(dshare(&home, &["send"]), format!("{body}\n").as_bytes());
        assert!(out.status.success(), "{}", show(&out));
        expected.push(body.to_string());
    }
    let out = run_with_input(dshare(&home, &["send", "-"]), b"from dash");
    assert!(out.status.success(), "{}", show(&out));
    expected.push("from dash".into());
    for body in AWKWARD {
        let (status, id) = node.get("/send", &[("msg", body)]);
        assert_eq!(status, 200, "{id}");
        assert_eq!(id.trim().len(), 64);
        expected.push(body.to_string());
    }
    // An HTML form sends spaces as '+'.
    let (status, _, _) = crate::util::get(&format!(
        "{}/send?msg=form+style%2Bplus&token={}",
        node.url, node.token
    ));
    assert_eq!(status, 200);
    expected.push("form style+plus".into());
    assert_eq!(log_bodies(&home), expected);

    let messages = json_lines(&ok(&home, &["log", "--json"]));
    for (i, m) in messages.iter().enumerate() {
        for key in ["id", "author", "seq", "clock", "ts", "body", "prev", "sig"] {
            assert!(m.get(key).is_some(), "missing {key} in {m}");
        }
        assert_eq!(m["seq"], i as u64 + 1);
    }
    let last2 = json_lines(&ok(&home, &["log", "--json", "-n", "2"]));
    assert_eq!(last2, messages[messages.len() - 2..]);
    ok(&home, &["verify"]);

    // The same conversation is read from the file once the node is gone.
    node.stop();
    assert_eq!(log_bodies(&home), expected);
    let human = ok(&home, &["log", "-n", "1"]);
    assert!(human.contains("form style+plus"), "{human}");
}

#[test]
fn send_json_prints_the_stored_message() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    let out = ok(&home, &["--json", "send", "release 1.4 deployed"]);
    let m: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(m["body"], "release 1.4 deployed");
    assert_eq!(m["seq"], 1);
    assert_eq!(ok(&home, &["-q", "send", "quiet"]), "");
}

#[test]
fn oversized_bodies_are_refused_naming_the_limit_and_nothing_is_stored() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let max = "x".repeat(65536);
    ok(&home, &["send", &max]);
    let before = box_lines(&home);

    let over = "x".repeat(65537);
    let out = fails(&home, &["send", &over], 1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("65536"),
        "{}",
        show(&out)
    );
    let out = run_with_input(dshare(&home, &["send"]), over.as_bytes());
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let (status, body) = node.get("/send", &[("msg", &over)]);
    assert_eq!(status, 413);
    assert!(body.contains("65536"), "{body}");
    let (status, _) = node.get("/send", &[]);
    assert_eq!(status, 400);
    assert_eq!(box_lines(&home), before);
}

#[test]
fn every_client_route_needs_the_token() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    let wrong = "0".repeat(64);
    for path in ["/", "/send?msg=x", "/log", "/status"] {
        let sep = if path.contains('?') { '&' } else { '?' };
        assert_eq!(get(&format!("{}{path}", node.url)).0, 401, "{path}");
        assert_eq!(
            get(&format!("{}{path}{sep}token={wrong}", node.url)).0,
            401,
            "{path}"
        );
    }
    assert!(box_lines(&home).is_empty());
    // The page sets an HttpOnly, SameSite=Strict cookie that then works with the
    // page's form key.
    let (status, head, page) = get(&node.url_for("/", &[]));
    assert_eq!(status, 200);
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie_header = format!("Cookie: dshare_token={}", node.token);
    let at = page.find("name=\"form_key\" value=\"").expect("a form key") + 23;
    let form_key = &page[at..at + 64];
    let (status, _, body) = raw_request(
        &format!("{}/send?msg=by+cookie&form_key={form_key}", node.url),
        &[&cookie_header],
    );
    assert_eq!(status, 200, "{body}");
    // …but not when the browser says the request came from another site.
    let (status, _, _) = raw_request(
        &format!("{}/send?msg=forged", node.url),
        &[&cookie_header, "Sec-Fetch-Site: cross-site"],
    );
    assert_eq!(status, 403);
    assert_eq!(log_bodies(&home), vec!["by cookie".to_string()]);
}

#[test]
fn the_page_escapes_bodies() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    ok(
        &home,
        &["send", "<script>alert('x')</script> & <b>bold</b>"],
    );
    let (status, page) = node.get("/", &[]);
    assert_eq!(status, 200);
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(
        page.contains(
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
        )
    );
    assert!(page.contains("<form action=\"/send\" method=\"get\">"));
}

#[test]
fn log_follow_prints_new_messages_as_they_arrive() {
    let s = Scratch::new();
    let home = s.home("a");
    let _node = Node::start(&home, &[]);
    ok(&home, &["send", "before"]);
    let mut child = dshare(&home, &["log", "-f", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let next = |rx: &mpsc::Receiver<String>| {
        let line = rx
            .recv_timeout(DEADLINE)
            .expect("log -f printed nothing in time");
        serde_json::from_str::<serde_json::Value>(&line).unwrap()["body"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(next(&rx), "before");
    for body in ["one", "two", "three"] {
        ok(&home, &["send", body]);
        assert_eq!(next(&rx), body);
    }
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_err(),
        "nothing else was sent"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn status_reports_counts_and_group_commit() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    // Many concurrent senders: every answer follows an fsync, and fsyncs are shared.
    let total = 16 * 25;
    std::thread::scope(|scope| {
        for t in 0..16 {
            let node = &node;
            scope.spawn(move || {
                for i in 0..25 {
                    let (status, body) = node.get("/send", &[("msg", &format!("t{t} m{i}"))]);
                    assert_eq!(status, 200, "{body}");
                }
            });
        }
    });
    let (status, body) = node.get("/status", &[]);
    assert_eq!(status, 200);
    let st: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(st["messages"], total);
    assert_eq!(st["authors"], 1);
    let commits = st["commits"].as_u64().unwrap();
    assert!(commits >= 1 && commits < total, "no fsync was shared: {st}");
    eprintln!("{total} concurrent sends took {commits} fsyncs");
    let report: serde_json::Value =
        serde_json::from_str(&ok(&home, &["verify", "--json"])).unwrap();
    assert_eq!(report["digest"], st["digest"]);
    assert_eq!(report["head"], st["head"]);
}

#[test]
fn send_and_log_reach_a_node_by_url_from_anywhere() {
    let s = Scratch::new();
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    // Another home, with no node of its own: it talks to `node` by --node/--token
    // and by DSHARE_NODE/DSHARE_TOKEN.
    let elsewhere = s.home("elsewhere");
    ok(
        &elsewhere,
        &[
            "send",
            "--node",
            &node.url,
            "--token",
            &node.token,
            "by flag",
        ],
    );
    let mut cmd = dshare(&elsewhere, &["send", "by env"]);
    cmd.env("DSHARE_NODE", &node.url)
        .env("DSHARE_TOKEN", &node.token);
    let out = run_with_input(cmd, b"");
    assert!(out.status.success(), "{}", show(&out));
    let log = ok(
        &elsewhere,
        &["log", "--json", "--node", &node.url, "--token", &node.token],
    );
    let bodies: Vec<_> = json_lines(&log)
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(bodies, ["by flag", "by env"]);
    let wrong = fails(
        &elsewhere,
        &["log", "--node", &node.url, "--token", &"0".repeat(64)],
        2,
    );
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("401"),
        "{}",
        show(&wrong)
    );
}
