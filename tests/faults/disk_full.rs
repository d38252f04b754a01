//! A full disk: a node whose home lives on a tiny tmpfs. A send it cannot store gets
//! a clear refusal (HTTP 507, `dshare send` exit 1), nothing half-written stays in the
//! box, and once space is freed the node stores again and catches up with its peer.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{
    agent, box_ids, free_port, init_network, post_send, report, serial, verify_json,
};
use crate::util::{Node, Scratch, run, show};

/// The tmpfs holding the full node's home: room for the keys and a few hundred
/// messages.
const SIZE: &str = "512k";

/// A tmpfs mounted for the test, unmounted on drop (pass or fail).
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Result<Tmpfs, String> {
        fs::create_dir_all(path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(path)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let done = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !done {
            // Still busy (a process that was not reaped): detach it now, the kernel
            // frees it when the last user goes.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// Writes a filler file until the file system refuses more; returns its size.
fn fill(path: &Path) -> u64 {
    let mut f = fs::File::create(path).unwrap();
    let chunk = vec![0u8; 4096];
    let mut written = 0u64;
    while f.write_all(&chunk).is_ok() {
        written += chunk.len() as u64;
    }
    let _ = f.sync_all();
    written
}

#[test]
fn a_full_disk_refuses_sends_clearly_keeps_the_box_valid_and_recovers() {
    let _serial = serial();
    let t = "disk full";
    let started = Instant::now();
    let scratch = Scratch::new();
    let full_home = scratch.home("full");
    let tmpfs = match Tmpfs::mount(&full_home, SIZE) {
        Ok(m) => m,
        Err(e) => {
            let msg = format!("SKIPPED: cannot mount a tmpfs ({e}); this test needs root");
            report(t, &msg);
            assert!(std::env::var_os("CI").is_none(), "{t}: {msg} (CI is set)");
            return;
        }
    };
    let ports = [free_port(), free_port()];
    let url = |i: usize| format!("http://127.0.0.1:{}", ports[i]);
    let homes = init_network(&scratch, &["full", "b"], &url(0));
    assert_eq!(homes[0], tmpfs.path);
    let start = |i: usize| {
        Node::start_with(
            &homes[i],
            &[
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", ports[i]),
                "--peer",
                &url(1 - i),
            ],
        )
    };
    let full = start(0);
    let peer = start(1);
    let http = agent(Duration::from_secs(30));
    let mut acked = Vec::new();
    for i in 0..20 {
        acked.push(post_send(&http, &full.url, &full.token, &format!("before {i}")).unwrap());
    }

    // Fill the disk, then send until the slack left in the box's last page is gone.
    let filler = full_home.join("filler");
    let filled = fill(&filler);
    let body = "y".repeat(2000);
    let mut refused = None;
    let mut squeezed = 0;
    for _ in 0..200 {
        match post_send(&http, &full.url, &full.token, &body) {
            Ok(id) => {
                acked.push(id);
                squeezed += 1;
            }
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("a send on a full disk is refused");
    assert_eq!(refused.status, 507, "{refused:?}");
    assert!(refused.text.contains("full"), "{refused:?}");
    let lines_when_full = box_ids(&full_home).len();
    let mut refusals = 1;
    for _ in 0..5 {
        let e = post_send(&http, &full.url, &full.token, &body).unwrap_err();
        assert_eq!(e.status, 507, "{e:?}");
        refusals += 1;
    }
    let out = run(&full_home, &["send", &body]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("507") && stderr.contains("full"),
        "{stderr}"
    );
    refusals += 1;
    // Nothing half-written: the box verifies and holds exactly what was acknowledged.
    verify_json(&full_home);
    assert_eq!(box_ids(&full_home).len(), lines_when_full);
    // The peer goes on meanwhile; what it stores cannot reach the full node yet.
    let mut from_peer = Vec::new();
    for i in 0..10 {
        from_peer.push(post_send(&http, &peer.url, &peer.token, &format!("from b {i}")).unwrap());
    }
    let doctor = run(&full_home, &["doctor", "--json"]);
    let verdict: serde_json::Value = serde_json::from_slice(&doctor.stdout).unwrap_or_default();

    // Free the space: sends work again and the full node catches up.
    fs::remove_file(&filler).unwrap();
    let recovered = Instant::now();
    let id = crate::util::wait_for(
        "a send after space is freed",
        Duration::from_secs(10),
        || post_send(&http, &full.url, &full.token, "after").ok(),
    );
    let first_send = recovered.elapsed();
    acked.push(id);
    let out = run(&full_home, &["send", "after, by the command line"]);
    assert!(out.status.success(), "{}", show(&out));
    acked.extend(from_peer.iter().cloned());
    crate::util::wait_for(
        "both nodes to hold every message",
        Duration::from_secs(30),
        || {
            let a = box_ids(&full_home);
            let b = box_ids(&homes[1]);
            (a.len() == b.len() && acked.iter().all(|id| a.contains(id) && b.contains(id)))
                .then_some(())
        },
    );
    let caught_up = recovered.elapsed();
    let da = verify_json(&full_home)["digest"].clone();
    let db = verify_json(&homes[1])["digest"].clone();
    assert_eq!(da, db);
    drop((full, peer));
    report(
        t,
        &format!(
            "home on a {SIZE} tmpfs, filled with {filled} bytes of filler; {squeezed} more 2 KB sends fit, then \
             {refusals} refused (HTTP 507 \"full\", CLI exit 1), box still verifies with {lines_when_full} lines; \
             doctor said healthy={} exit {:?}; after freeing space the first send worked in {first_send:.1?} and \
             both nodes held all {} acknowledged messages {caught_up:.1?} later; total {:.1?}",
            verdict["healthy"],
            doctor.status.code(),
            acked.len(),
            started.elapsed()
        ),
    );
    assert_eq!(doctor.status.code(), Some(1), "doctor: {}", show(&doctor));
    assert_eq!(verdict["healthy"], false);
    assert!(
        verdict["problems"].to_string().contains("free on"),
        "{verdict}"
    );
}
