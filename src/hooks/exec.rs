//! Running a hook command once for one message: `sh -c CMD`, the message in
//! environment variables, its body on stdin.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitStatus, Stdio};

use anyhow::{Context, Result};

use crate::message::Message;

/// One delivery of a message to a hook.
pub struct Delivery<'a> {
    pub message: &'a Message,
    /// The message's line in this node's box (1 for the first).
    pub position: u64,
    pub cursor: Option<&'a str>,
    /// 1 for the first try, 2 for the first retry…
    pub attempt: u32,
    /// The hook may have run for this message before without its success being
    /// recorded (a crash during the hook, or a failure).
    pub redelivered: bool,
}

/// The environment a hook sees, beside the runner's own.
pub fn environment(d: &Delivery<'_>) -> Vec<(&'static str, String)> {
    let m = d.message;
    let mut env = vec![
        ("DSHARE_ID", m.id.to_hex()),
        ("DSHARE_AUTHOR", m.author.to_hex()),
        ("DSHARE_SEQ", m.seq.to_string()),
        (
            "DSHARE_PREV",
            m.prev.map(|p| p.to_hex()).unwrap_or_default(),
        ),
        ("DSHARE_CLOCK", m.clock.to_string()),
        ("DSHARE_TS", m.ts.to_string()),
        ("DSHARE_TIME", crate::time::utc(m.ts)),
        (
            "DSHARE_JSON",
            serde_json::to_string(m).expect("messages serialize"),
        ),
        ("DSHARE_POSITION", d.position.to_string()),
        ("DSHARE_CURSOR", d.cursor.unwrap_or_default().to_string()),
        ("DSHARE_ATTEMPT", d.attempt.to_string()),
        (
            "DSHARE_REDELIVERED",
            if d.redelivered { "1" } else { "0" }.to_string(),
        ),
    ];
    // An environment variable cannot hold a NUL byte: such a body is on stdin and in
    // DSHARE_JSON (as \u0000) only.
    if !m.body.contains('\0') {
        env.push(("DSHARE_BODY", m.body.clone()));
    }
    env
}

/// Runs `command` with `sh -c` for one delivery and waits for it. The hook gets its
/// own process group, so a Ctrl-C meant for the runner lets a running hook finish
/// (the runner then stops after it).
pub fn run(command: &str, d: &Delivery<'_>) -> Result<ExitStatus> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .env_remove("DSHARE_BODY")
        .envs(environment(d))
        .stdin(Stdio::piped())
        .process_group(0)
        .spawn()
        .context("cannot start the hook with `sh -c`")?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let body = d.message.body.clone();
    // A separate thread: a hook that never reads stdin must not block the runner once
    // the pipe is full. A hook that exits without reading is not an error (EPIPE).
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(body.as_bytes());
    });
    let status = child.wait().context("cannot wait for the hook")?;
    let _ = feeder.join();
    Ok(status)
}
