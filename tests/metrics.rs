//! `GET /metrics` against the real tools: `promtool check metrics` on a node's answer,
//! a real Prometheus server scraping a node on loopback with the token from the
//! cookbook's recipe and reading a counter back from its API, and `promtool check
//! rules` on the cookbook's alert rules. Debian's `prometheus` package has both
//! programs; `.ci/run` installs it.

use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::process::{Command, Stdio};

use crate::cookbook::{have, recipe};
use crate::util::{DEADLINE, Node, Reaped, Scratch, get, ok, raw_request, wait_for};

fn scrape(node: &Node) -> (u16, String) {
    let auth = format!("Authorization: Bearer {}", node.token);
    let (status, _, body) = raw_request(&format!("{}/metrics", node.url), &[&auth]);
    (status, body)
}

/// The value of the sample `series` (name and labels exactly as written).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Runs `promtool ARGS` with `input` on stdin: whether it succeeded, and what it said.
fn promtool(args: &[&str], input: &[u8]) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn metrics_pass_promtool_and_count_what_the_node_did() {
    if !have("promtool") {
        return;
    }
    let s = Scratch::new();
    let node = Node::start(&s.home("a"), &["--metrics-listen", "127.0.0.1:0"]);
    for i in 0..3 {
        ok(&node.home, &["send", &format!("counted {i}")]);
    }
    let (status, text) = scrape(&node);
    assert_eq!(status, 200, "{text}");
    // promtool says nothing about a clean exposition: any line is a lint problem.
    let (passed, said) = promtool(&["check", "metrics"], text.as_bytes());
    assert!(
        passed && said.trim().is_empty(),
        "promtool check metrics:\n{said}\n{text}"
    );

    assert_eq!(sample(&text, "dshare_messages"), Some(3.0), "{text}");
    assert_eq!(sample(&text, "dshare_authors"), Some(1.0));
    assert_eq!(
        sample(&text, "dshare_messages_stored_total{origin=\"local\"}"),
        Some(3.0)
    );
    assert_eq!(
        sample(&text, "dshare_messages_stored_total{origin=\"push\"}"),
        Some(0.0)
    );
    let commits = sample(&text, "dshare_commits_total").unwrap();
    assert!((1.0..=3.0).contains(&commits), "{commits} commits");
    assert_eq!(sample(&text, "dshare_fsync_seconds_count"), Some(commits));
    assert_eq!(sample(&text, "dshare_send_seconds_count"), Some(3.0));
    let box_bytes = fs::metadata(node.home.join("box.txt")).unwrap().len();
    assert_eq!(sample(&text, "dshare_box_bytes"), Some(box_bytes as f64));
    assert!(text.contains("dshare_build_info{version=\""));

    // The token is needed on the main address, and a refusal is counted.
    let (status, _, _) = get(&format!("{}/metrics", node.url));
    assert_eq!(status, 401);
    let (_, text) = scrape(&node);
    assert_eq!(
        sample(&text, "dshare_inputs_refused_total{reason=\"auth\"}"),
        Some(1.0)
    );

    // --metrics-listen serves /metrics without the token, and nothing else.
    let addr = wait_for("the metrics address in the log", DEADLINE, || {
        let log = node.log();
        let at = log.find("metrics on ")? + "metrics on ".len();
        let url = log[at..].split_whitespace().next()?;
        url.strip_suffix("/metrics").map(str::to_string)
    });
    let (status, _, body) = get(&format!("{addr}/metrics"));
    assert_eq!(status, 200);
    assert_eq!(sample(&body, "dshare_messages"), Some(3.0));
    let (status, _, _) = get(&format!("{addr}/log?n=1"));
    assert_eq!(
        status, 404,
        "the metrics address serves nothing but /metrics"
    );
}

/// A node that joins late catches up by repair: the repair counters, the pull origin
/// and the peer gauges move.
#[test]
fn a_catch_up_moves_the_repair_counters_and_the_peer_gauges() {
    let s = Scratch::new();
    let a = Node::start(&s.home("a"), &[]);
    for i in 0..20 {
        ok(&a.home, &["send", &format!("before b joined {i}")]);
    }
    let invite = ok(&a.home, &["invite"]);
    ok(&s.home("b"), &["init", "--join", invite.trim()]);
    // Without an advertised address b cannot be called back, so a's own repair round
    // cannot push the 20 to it first: what b holds, it pulled.
    let b = Node::start_with(&s.home("b"), &["serve", "--listen", "0.0.0.0:0"]);
    let text = wait_for("b to pull what a holds", DEADLINE, || {
        let (_, text) = scrape(&b);
        (sample(&text, "dshare_messages") == Some(20.0)).then_some(text)
    });
    assert_eq!(
        sample(&text, "dshare_messages_stored_total{origin=\"pull\"}"),
        Some(20.0),
        "{text}"
    );
    assert!(sample(&text, "dshare_repair_rounds_total").unwrap() >= 1.0);
    let bytes = sample(&text, "dshare_repair_bytes_total").unwrap();
    assert!(bytes >= 20.0 * 20.0, "{bytes} bytes for 20 messages");
    // a answered b's requests: its hello, then the pull (by range or reconciliation);
    // b, which a cannot call back, answered none.
    let (_, served) = scrape(&a);
    let requests = |text: &str, route: &str| {
        sample(
            text,
            &format!("dshare_peer_requests_total{{route=\"{route}\"}}"),
        )
        .unwrap()
    };
    assert!(requests(&served, "hello") >= 1.0, "{served}");
    assert!(
        requests(&served, "range") + requests(&served, "reconcile") >= 1.0,
        "{served}"
    );
    for route in dshare::metrics::PEER_ROUTES {
        assert_eq!(requests(&text, route), 0.0, "b answered a {route}: {text}");
    }
    // Behind is what the last exchange found: 20 before the pull, 0 at the next one.
    wait_for("b to count a up and nothing behind", DEADLINE, || {
        let (_, text) = scrape(&b);
        let up = sample(&text, "dshare_peers{state=\"up\"}") == Some(1.0);
        let behind = sample(&text, "dshare_peer_behind_max_messages") == Some(0.0);
        (up && behind).then_some(())
    });
}

/// What a node pulled is not pushed or offered back to the peer that served it: the
/// source of a catch-up receives about nothing of its own history back. The history
/// is a third node's, which a push would otherwise carry back to its holder.
#[test]
fn a_catch_up_sends_nothing_back_to_its_source() {
    let s = Scratch::new();
    let a = Node::start(&s.home("a"), &[]);
    let invite = ok(&a.home, &["invite"]);
    ok(&s.home("c"), &["init", "--join", invite.trim()]);
    let c = Node::start(&s.home("c"), &[]);
    let body = "x".repeat(1_000);
    for i in 0..100 {
        ok(&c.home, &["send", &format!("{i} {body}")]);
    }
    wait_for("a to hold what c sent", DEADLINE, || {
        (a.metric("dshare_messages") == 100.0).then_some(())
    });
    c.stop();
    let before = received_pushes_and_offers(&scrape(&a).1);
    ok(&s.home("b"), &["init", "--join", invite.trim()]);
    let b = Node::start(&s.home("b"), &[]);
    wait_for("b to pull what a holds", DEADLINE, || {
        (b.metric("dshare_messages") == 100.0).then_some(())
    });
    // b's own message travels to a after anything b queued for it before.
    ok(&b.home, &["send", "b caught up"]);
    let text = wait_for("a to hold b's message", DEADLINE, || {
        let (_, text) = scrape(&a);
        (sample(&text, "dshare_messages") == Some(101.0)).then_some(text)
    });
    let received = received_pushes_and_offers(&text) - before;
    assert!(
        received < 20_000.0,
        "a received {received} bytes of pushes and offers from b, which pulled 100 kB from it"
    );
}

/// Bytes a node received on the push and offer routes of its peer API.
fn received_pushes_and_offers(metrics: &str) -> f64 {
    ["push", "offer"]
        .iter()
        .map(|r| {
            let series = format!("dshare_peer_bytes_total{{route=\"{r}\",direction=\"in\"}}");
            sample(metrics, &series).unwrap()
        })
        .sum()
}

#[test]
fn cookbook_alert_rules_pass_promtool() {
    if !have("promtool") {
        return;
    }
    let s = Scratch::new();
    let rules = s.dir.path().join("dshare.rules.yml");
    fs::write(&rules, recipe("prometheus-rules")).unwrap();
    let (passed, said) = promtool(&["check", "rules", rules.to_str().unwrap()], b"");
    assert!(
        passed && said.contains("SUCCESS: 6 rules found"),
        "promtool check rules:\n{said}"
    );
}

/// A port on loopback that was free a moment ago (Prometheus takes an address, not a
/// listening socket).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_real_prometheus_scrapes_a_node_with_the_token_and_sees_a_counter_move() {
    if !have("prometheus") {
        return;
    }
    let s = Scratch::new();
    let node = Node::start(&s.home("a"), &[]);
    ok(&node.home, &["send", "before the first scrape"]);
    let etc = s.dir.path().join("etc-prometheus");
    fs::create_dir(&etc).unwrap();

    // The cookbook's recipes, on this node's home and a scratch /etc/prometheus.
    let swap = |text: String| {
        text.replace("/var/lib/dshare", node.home.to_str().unwrap())
            .replace("/etc/prometheus", etc.to_str().unwrap())
            .replace(
                "db-1.example.net:7070",
                node.url.trim_start_matches("http://"),
            )
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
    };
    let status = Command::new("sh")
        .args(["-ec", &swap(recipe("prometheus-token"))])
        .status()
        .unwrap();
    assert!(status.success());
    fs::write(etc.join("dshare.rules.yml"), recipe("prometheus-rules")).unwrap();
    let config = etc.join("prometheus.yml");
    fs::write(&config, swap(recipe("prometheus-scrape"))).unwrap();

    let port = free_port();
    let prometheus = Reaped(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                s.dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(fs::File::create(s.dir.path().join("prometheus.log")).unwrap())
            .spawn()
            .expect("prometheus starts"),
    );
    let api = format!("http://127.0.0.1:{port}");
    let query = |q: &str| -> Option<f64> {
        let (status, _, body) = get(&format!(
            "{api}/api/v1/query?query={}",
            crate::util::encode(q)
        ));
        if status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    };
    let log = || fs::read_to_string(s.dir.path().join("prometheus.log")).unwrap_or_default();
    let series = "dshare_messages_stored_total{origin=\"local\",job=\"dshare\"}";
    let first = wait_for("Prometheus to scrape the node", DEADLINE * 2, || {
        query("up{job=\"dshare\"}").filter(|up| *up == 1.0)?;
        query(series)
    });
    assert!(first >= 1.0, "{first}\n{}", log());

    for i in 0..4 {
        ok(
            &node.home,
            &["send", &format!("after the first scrape {i}")],
        );
    }
    let moved = wait_for("the counter to move in Prometheus", DEADLINE * 2, || {
        query(series).filter(|v| *v >= first + 4.0)
    });
    assert_eq!(moved, 5.0);

    // The rules loaded, and the node-down rule is not firing.
    let (_, _, rules) = get(&format!("{api}/api/v1/rules"));
    assert!(rules.contains("DshareNodeDown"), "{rules}");
    let (_, _, alerts) = get(&format!("{api}/api/v1/alerts"));
    assert!(!alerts.contains("DshareNodeDown"), "{alerts}");
    drop(prometheus);
}
