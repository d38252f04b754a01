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

/// Longest value of one variable a hook is given. Linux refuses to start a program
/// when one `NAME=value` string of its environment passes 128 KiB (MAX_ARG_STRLEN,
/// "Argument list too long"), and a message's JSON escapes each control character to
/// six bytes, so a 64 KiB body can make a 384 KiB `DSHARE_JSON`. A variable that
/// would pass this cap is left out and named in `DSHARE_OMITTED` instead: the hook
/// still runs, and the body is always whole on stdin.
pub const MAX_VARIABLE: usize = 120 * 1024;

/// Every variable [`environment`] may set; a runner's own values of these are
/// removed, so a hook never sees one left from an outer hook.
pub const VARIABLES: [&str; 14] = [
    "DSHARE_ID",
    "DSHARE_AUTHOR",
    "DSHARE_SEQ",
    "DSHARE_PREV",
    "DSHARE_CLOCK",
    "DSHARE_TS",
    "DSHARE_TIME",
    "DSHARE_JSON",
    "DSHARE_POSITION",
    "DSHARE_CURSOR",
    "DSHARE_ATTEMPT",
    "DSHARE_REDELIVERED",
    "DSHARE_BODY",
    "DSHARE_OMITTED",
];

/// The environment a hook sees, beside the runner's own: every value at most
/// [`MAX_VARIABLE`] bytes and free of NUL bytes (which no variable can carry).
/// `DSHARE_OMITTED` names, space-separated, the variables left out for that reason.
pub fn environment(d: &Delivery<'_>) -> Vec<(&'static str, String)> {
    let m = d.message;
    let wanted = [
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
        ("DSHARE_BODY", m.body.clone()),
    ];
    let (mut env, omitted): (Vec<_>, Vec<_>) = wanted
        .into_iter()
        .partition(|(_, value)| fits_a_variable(value));
    let omitted: Vec<&str> = omitted.into_iter().map(|(name, _)| name).collect();
    env.push(("DSHARE_OMITTED", omitted.join(" ")));
    env
}

/// True when `value` can be passed in one environment variable within the cap.
fn fits_a_variable(value: &str) -> bool {
    value.len() <= MAX_VARIABLE && !value.contains('\0')
}

/// Runs `command` with `sh -c` for one delivery and waits for it. The hook gets its
/// own process group, so a Ctrl-C meant for the runner lets a running hook finish
/// (the runner then stops after it).
pub fn run(command: &str, d: &Delivery<'_>) -> Result<ExitStatus> {
    let mut command_line = Command::new("sh");
    for name in VARIABLES {
        command_line.env_remove(name);
    }
    let mut child = command_line
        .arg("-c")
        .arg(command)
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::identity::Identity;
    use crate::message::{Draft, MAX_BODY};

    fn message(body: &str) -> Message {
        let who = Identity::generate();
        Message::sign(
            &Draft {
                author: who.author(),
                seq: 1,
                prev: None,
                clock: 1,
                ts: 1,
                body,
            },
            &who,
        )
    }

    fn env_of(m: &Message) -> Vec<(&'static str, String)> {
        environment(&Delivery {
            message: m,
            position: 1,
            cursor: Some("c"),
            attempt: 1,
            redelivered: false,
        })
    }

    fn value<'a>(env: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        env.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn a_body_of_control_characters_leaves_out_only_the_json() {
        // 30 KB of \u{1} is 180 KB of JSON: past the kernel's limit for one variable.
        let m = message(&"\u{1}".repeat(30_000));
        let env = env_of(&m);
        assert_eq!(value(&env, "DSHARE_JSON"), None);
        assert_eq!(value(&env, "DSHARE_OMITTED"), Some("DSHARE_JSON"));
        assert_eq!(value(&env, "DSHARE_BODY").map(str::len), Some(30_000));
    }

    #[test]
    fn a_plain_message_has_every_variable_and_omits_nothing() {
        let env = env_of(&message("hello"));
        for name in VARIABLES {
            assert!(value(&env, name).is_some(), "{name} missing");
        }
        assert_eq!(value(&env, "DSHARE_OMITTED"), Some(""));
    }

    #[test]
    fn a_nul_byte_keeps_the_body_out_of_the_environment() {
        let env = env_of(&message("a\0b"));
        assert_eq!(value(&env, "DSHARE_BODY"), None);
        assert_eq!(value(&env, "DSHARE_OMITTED"), Some("DSHARE_BODY"));
        assert!(value(&env, "DSHARE_JSON").unwrap().contains("\\u0000"));
    }

    /// Bodies up to [`MAX_BODY`] bytes, often made of the characters JSON escapes most.
    fn bodies() -> impl Strategy<Value = String> {
        let character = prop_oneof![
            (0u8..0x20).prop_map(char::from),
            Just('"'),
            Just('\0'),
            any::<char>(),
        ];
        proptest::collection::vec(character, 0..=MAX_BODY).prop_map(|chars| {
            let mut body = String::new();
            for c in chars {
                if body.len() + c.len_utf8() > MAX_BODY {
                    break;
                }
                body.push(c);
            }
            body
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn every_variable_stays_within_the_cap_and_omissions_are_named(body in bodies()) {
            let env = env_of(&message(&body));
            let omitted: Vec<&str> = value(&env, "DSHARE_OMITTED")
                .unwrap()
                .split_whitespace()
                .collect();
            for (name, v) in &env {
                prop_assert!(v.len() <= MAX_VARIABLE, "{} is {} bytes", name, v.len());
                prop_assert!(!v.contains('\0'), "{} holds a NUL", name);
            }
            for name in VARIABLES {
                let present = value(&env, name).is_some();
                prop_assert_eq!(present, !omitted.contains(&name), "{}", name);
            }
            // The JSON goes only when it would not fit, never for another reason.
            let json_len = serde_json::to_string(&message(&body)).unwrap().len();
            prop_assert_eq!(omitted.contains(&"DSHARE_JSON"), json_len > MAX_VARIABLE);
        }
    }
}
