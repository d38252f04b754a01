//! The Debian package, installed for real: `dpkg -i` of the `.deb` that `cargo deb`
//! built, every file where Debian keeps it, the unit's `ExecStart` run as the unit's
//! user against its home, then `dpkg -r` and both kinds of purge.
//!
//! It changes the machine (a system user, `/usr/bin/dshare`, `/var/lib/dshare`), so it
//! runs only when `DSHARE_DEB` names the package to install, as `.ci/run` does after
//! `cargo deb`; without it the test says SKIPPED (and fails when `CI` is set).

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::util::{DEADLINE, Reaped, get, wait_for};

const HOME: &str = "/var/lib/dshare";
const UNIT: &str = "/usr/lib/systemd/system/dshare.service";

fn sh(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .env_remove("DSHARE_HOME")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn must(program: &str, args: &[&str]) -> String {
    let out = sh(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn installed() -> bool {
    sh("dpkg-query", &["-W", "-f=${Status}", "dshare"])
        .stdout
        .starts_with(b"install ok installed")
}

fn user_exists() -> bool {
    sh("getent", &["passwd", "dshare"]).status.success()
}

/// Purges the package and its home when dropped, so a failed run leaves the machine
/// as it found it.
struct Purged;

impl Drop for Purged {
    fn drop(&mut self) {
        if installed() {
            let _ = Command::new("dpkg")
                .args(["-P", "dshare"])
                .env("DSHARE_PURGE_HOME", "yes")
                .output();
        }
        // Made by this test (none existed before it).
        let _ = fs::remove_dir_all(HOME);
        if user_exists() {
            let _ = Command::new("deluser")
                .args(["--system", "dshare"])
                .output();
        }
    }
}

/// The unit's `[Service]` settings in order, as `key=value` pairs.
fn service_settings(unit: &str) -> Vec<(String, String)> {
    let mut in_service = false;
    let mut settings = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service && !line.is_empty() && !line.starts_with('#') {
            let (k, v) = line.split_once('=').expect("key=value");
            settings.push((k.to_string(), v.to_string()));
        }
    }
    settings
}

#[test]
fn the_debian_package_installs_runs_as_its_user_and_keeps_the_home_on_purge() {
    let Ok(deb) = std::env::var("DSHARE_DEB") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but DSHARE_DEB is not: .ci/run builds the package with `cargo deb` and names it"
        );
        eprintln!("SKIPPED: set DSHARE_DEB to a .deb built by `cargo deb` to test the package");
        return;
    };
    assert!(
        !installed(),
        "a dshare package is already installed on this machine and this test would replace it; remove it first (dpkg -P dshare)"
    );

    assert!(
        !Path::new(HOME).exists() && !user_exists(),
        "{HOME} or a dshare user already exists and this test would take them over; remove them first"
    );

    must("dpkg", &["-i", &deb]);
    let _cleanup = Purged;
    assert!(installed());

    // Every file where Debian keeps it.
    let bin = fs::metadata("/usr/bin/dshare").unwrap();
    assert_eq!(bin.permissions().mode() & 0o777, 0o755);
    for file in [
        UNIT,
        "/usr/share/bash-completion/completions/dshare",
        "/usr/share/zsh/vendor-completions/_dshare",
        "/usr/share/fish/vendor_completions.d/dshare.fish",
        "/usr/share/doc/dshare/README.md",
        "/usr/share/doc/dshare/SECURITY.md",
    ] {
        assert!(Path::new(file).is_file(), "{file} is not installed");
    }
    let listed = must("dpkg", &["-L", "dshare"]);
    for page in ["dshare", "dshare-send", "dshare-serve", "dshare-verify"] {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(&format!("/usr/share/man/man1/{page}.1"))),
            "man page {page}(1) not in the package:\n{listed}"
        );
    }
    // `man` finds the page, and bash's completion registers for the command.
    let found = must("man", &["-w", "dshare-send"]);
    assert!(
        found
            .trim()
            .starts_with("/usr/share/man/man1/dshare-send.1"),
        "{found}"
    );
    let complete = must(
        "bash",
        &[
            "-c",
            ". /usr/share/bash-completion/completions/dshare && complete -p dshare",
        ],
    );
    assert!(complete.contains("dshare"), "{complete}");

    // The system user and its home, private to it.
    assert!(user_exists());
    let home = fs::metadata(HOME).unwrap();
    let uid: u32 = must("id", &["-u", "dshare"]).trim().parse().unwrap();
    assert_eq!(home.uid(), uid, "{HOME} is not owned by dshare");
    assert_eq!(home.permissions().mode() & 0o777, 0o700);

    // The unit: its hardening, and systemd's own check where it can run.
    let unit = fs::read_to_string(UNIT).unwrap();
    let settings = service_settings(&unit);
    let value = |key: &str| {
        settings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{key}= missing from the unit"))
    };
    for (key, want) in [
        ("User", "dshare"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("ReadWritePaths", HOME),
    ] {
        assert_eq!(value(key), want, "{key}=");
    }
    let analyze = sh("systemd-analyze", &["verify", UNIT]);
    if analyze.status.code().is_some() {
        let said = String::from_utf8_lossy(&analyze.stderr);
        assert!(
            analyze.status.success() && !said.contains("dshare.service:"),
            "systemd-analyze verify {UNIT}:\n{said}"
        );
    }

    // The unit's ExecStart, with its Environment=, as its user, against its home. Only
    // the listening address differs (an ephemeral port on loopback).
    let exec = value("ExecStart");
    let mut words = exec.split_whitespace();
    let program = words.next().unwrap();
    assert_eq!(program, "/usr/bin/dshare");
    // setpriv runs the node in its own process (runuser would fork and wait, and a
    // kill of runuser would leave the node running as the dshare user).
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=dshare",
        "--regid=dshare",
        "--init-groups",
        "--",
        "env",
        "-i",
        "PATH=/usr/bin:/bin",
    ]);
    for (_, v) in settings.iter().filter(|(k, _)| k == "Environment") {
        cmd.arg(v);
    }
    // env(1) then execs the node: the pid spawned is the node's.
    cmd.arg("DSHARE_LISTEN=127.0.0.1:0")
        .arg(program)
        .args(words)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let node = Reaped(cmd.spawn().unwrap());
    let addr = Path::new(HOME).join("node.addr");
    let url = wait_for("the packaged node to record its address", DEADLINE, || {
        fs::read_to_string(&addr)
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    });
    let as_user = |args: &[&str]| {
        let mut all = vec!["-u", "dshare", "--", "/usr/bin/dshare", "--home", HOME];
        all.extend_from_slice(args);
        must("runuser", &all)
    };
    let id = as_user(&["send", "hello from the package"]);
    assert_eq!(id.trim().len(), 64, "send printed {id:?}");
    let log = as_user(&["log", "--json"]);
    assert!(log.contains("hello from the package"), "{log}");
    let (status, _, _) = get(&format!("{url}/status"));
    assert_eq!(status, 401, "the client API without the token");
    crate::util::signal(node.0.id(), "TERM");
    drop(node);
    assert!(
        !sh("pgrep", &["-u", "dshare"]).status.success(),
        "a process of the dshare user outlived the node"
    );

    // Removing keeps the home; purging keeps it too unless asked.
    must("dpkg", &["-r", "dshare"]);
    assert!(!Path::new("/usr/bin/dshare").exists());
    assert!(Path::new(HOME).join("box.txt").is_file());
    must("dpkg", &["-P", "dshare"]);
    assert!(!installed());
    assert!(
        Path::new(HOME).join("box.txt").is_file(),
        "purge removed the node's box"
    );

    must("dpkg", &["-i", &deb]);
    let out = Command::new("dpkg")
        .args(["-P", "dshare"])
        .env("DSHARE_PURGE_HOME", "yes")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !Path::new(HOME).exists(),
        "purge with DSHARE_PURGE_HOME=yes kept {HOME}"
    );
    assert!(
        !user_exists(),
        "purge with DSHARE_PURGE_HOME=yes kept the user"
    );
}
