//! The config file: its settings apply, environment and flags win over it, and a
//! typo is an error naming the file and line.

use std::fs;
use std::process::Command;

use crate::util::{DEADLINE, Node, Scratch, dshare, fails, json_lines, ok, show, wait_for};

use super::lines;

#[test]
fn the_config_file_yields_to_environment_and_flags() {
    let s = Scratch::new();
    let home = s.home("a");
    ok(&home, &["init"]);
    let out = s.dir.path().join("out");
    fs::write(
        home.join("config.toml"),
        format!(
            "# a test node\nlisten = \"127.0.0.1:0\"\nfanout = 3\nworkers = 4\npeers = [\"http://127.0.0.1:9\"]\non-message = 'printf \"%s\\n\" \"$DSHARE_BODY\" >> {}'\n",
            out.display()
        ),
    )
    .unwrap();
    let settings = |cmd: &mut Command| {
        let output = cmd.output().unwrap();
        assert!(output.status.success(), "{}", show(&output));
        json_lines(&String::from_utf8(output.stdout).unwrap())
            .into_iter()
            .map(|row| {
                let key = row["key"].as_str().unwrap().to_string();
                (
                    key,
                    (
                        row["value"].clone(),
                        row["source"].as_str().unwrap().to_string(),
                    ),
                )
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let mut cmd = dshare(
        &home,
        &["--json", "serve", "--print-config", "--workers", "2"],
    );
    cmd.env("DSHARE_FANOUT", "5").env("DSHARE_WORKERS", "7");
    let got = settings(&mut cmd);
    assert_eq!(
        got["listen"],
        (serde_json::json!("127.0.0.1:0"), "file".into())
    );
    assert_eq!(got["fanout"], (serde_json::json!(5), "env".into()));
    assert_eq!(got["workers"], (serde_json::json!(2), "flag".into()));
    assert_eq!(got["io-timeout"], (serde_json::json!(10), "default".into()));
    assert_eq!(got["peers"].1, "file");
    let mut cmd = dshare(
        &home,
        &[
            "--json",
            "serve",
            "--print-config",
            "--peer",
            "http://127.0.0.1:8",
        ],
    );
    cmd.env("DSHARE_PEERS", "http://127.0.0.1:6,http://127.0.0.1:7");
    let got = settings(&mut cmd);
    assert_eq!(
        got["peers"],
        (serde_json::json!(["http://127.0.0.1:8"]), "flag".into())
    );
    let got = settings(
        dshare(&home, &["--json", "serve", "--print-config"])
            .env("DSHARE_PEERS", "http://127.0.0.1:6,http://127.0.0.1:7"),
    );
    assert_eq!(
        got["peers"],
        (
            serde_json::json!(["http://127.0.0.1:6", "http://127.0.0.1:7"]),
            "env".into()
        )
    );

    // The node really runs with the file's settings: its listen address and its hook.
    let node = Node::start_with(&home, &["serve"]);
    ok(&home, &["send", "configured"]);
    wait_for("the configured hook", DEADLINE, || {
        (lines(&out) == ["configured"]).then_some(())
    });
    drop(node);

    // A typo is an error naming the file and line, not a silently ignored setting.
    fs::write(
        home.join("config.toml"),
        "listen = \"127.0.0.1:0\"\nfanuot = 3\n",
    )
    .unwrap();
    let bad = fails(&home, &["serve"], 2);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("config.toml: line 2: unknown key `fanuot`"),
        "{}",
        show(&bad)
    );
}
