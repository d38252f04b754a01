//! docs/FORMAT.md is exact: Python, knowing nothing but `hashlib`, `json` and the rules
//! written there, recomputes every id, every chain hash, the digest and the head file of
//! a box written by a real node, and the checker script printed in the document agrees
//! with `dshare verify`, on a real box and on the document's own worked example.

use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::util::{Node, Scratch, dshare, json_lines, ok, run_with_input, show};

const FORMAT_MD: &str = include_str!("../docs/FORMAT.md");

/// Bodies that stress the line encoding and the canonical encoding: JSON escapes,
/// multi-byte UTF-8, characters other tools take for line breaks, bidi controls.
const AWKWARD: &[&str] = &[
    "plain words",
    "two lines\nand a third\n\nafter a blank one",
    r#"double "quotes", 'single', a backslash \ and a literal \n and \u0041"#,
    "emoji 🎉👍🏽, a family 👨‍👩‍👧, accents naïve café, CJK 漢字",
    "symbols &#%+ = ? / ; : < > &amp; %41 +1 #fragment",
    "right-to-left: שלום עולם · مرحبا بالعالم · \u{202e}reversed\u{202c} done",
    "controls: tab\there, cr\r\nlf, bell \u{7}, escape \u{1b}[0m, del \u{7f}",
    "not line feeds: \u{2028} \u{2029} \u{85} \u{b} \u{c} end",
    "  leading and trailing spaces  ",
];

/// Sent on stdin (argv cannot carry NUL); `send` drops one trailing newline.
const ON_STDIN: &str = "a NUL \u{0} byte, and a trailing newline dropped by send";

/// The test's own reading of docs/FORMAT.md: builds each canonical encoding byte by
/// byte from the fields of the line, hashes it, chains the ids from 32 zero bytes,
/// forms the digest from the heads and the head file's text. Prints JSON.
const RECOMPUTE: &str = r#"
import hashlib, json, sys

box = sys.argv[1]
KEYS = ["chain", "id", "author", "seq", "prev", "clock", "ts", "body", "sig"]
with open(box, "rb") as f:
    raw = f.read()
assert raw.endswith(b"\n"), "the box must end with a line feed"
chain = b"\x00" * 32
heads = {}
out = {"ids": [], "chains": [], "canonical": [], "bodies": []}
for line in raw[:-1].split(b"\n"):
    text = line.decode("utf-8")
    m = json.loads(text)
    out["canonical"].append(
        list(m) == KEYS
        and json.dumps(m, ensure_ascii=False, separators=(",", ":")) == text)
    body = m["body"].encode("utf-8")
    encoding = (
        b"dshare/1\n"
        + b"author " + m["author"].encode("ascii") + b"\n"
        + b"seq " + str(m["seq"]).encode("ascii") + b"\n"
        + b"prev " + (b"-" if m["prev"] is None else m["prev"].encode("ascii")) + b"\n"
        + b"clock " + str(m["clock"]).encode("ascii") + b"\n"
        + b"ts " + str(m["ts"]).encode("ascii") + b"\n"
        + b"body " + str(len(body)).encode("ascii") + b"\n"
        + body)
    mid = hashlib.sha256(encoding).hexdigest()
    chain = hashlib.sha256(chain + bytes.fromhex(mid)).digest()
    heads[m["author"]] = (m["seq"], mid)
    out["ids"].append(mid)
    out["chains"].append(chain.hex())
    out["bodies"].append(m["body"])
text = "".join("%s %d %s\n" % (a, s, i) for a, (s, i) in sorted(heads.items()))
out["digest"] = hashlib.sha256(text.encode("ascii")).hexdigest()
out["head"] = chain.hex()
out["head_file"] = "%020d %s\n" % (len(out["ids"]), chain.hex())
print(json.dumps(out))
"#;

/// Runs `python3 -c SCRIPT ARGS…`.
fn python(script: &str, args: &[&Path]) -> Output {
    Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("python3 is needed by this test (it recomputes the box independently)")
}

/// The body of the first fenced code block after `marker` in docs/FORMAT.md, whose
/// opening fence is ```` ```info ````.
fn block_after(marker: &str, info: &str) -> String {
    let at = FORMAT_MD
        .find(marker)
        .unwrap_or_else(|| panic!("docs/FORMAT.md no longer contains {marker:?}"));
    let fence = format!("```{info}\n");
    let start = at
        + FORMAT_MD[at..]
            .find(&fence)
            .unwrap_or_else(|| panic!("no ```{info} block after {marker:?} in docs/FORMAT.md"))
        + fence.len();
    let len = FORMAT_MD[start..]
        .find("\n```")
        .expect("an unclosed code block in docs/FORMAT.md");
    FORMAT_MD[start..=start + len].to_string()
}

/// The checker script of docs/FORMAT.md §9.
fn documented_checker() -> String {
    let script = block_after("## 9.", "python");
    assert!(script.starts_with("#!/usr/bin/env python3"), "{script}");
    script
}

fn verify_json(home: &Path, path: Option<&Path>) -> Value {
    let mut args = vec!["verify", "--json"];
    let path = path.map(|p| p.to_str().unwrap().to_string());
    if let Some(p) = &path {
        args.push(p);
    }
    serde_json::from_str(&ok(home, &args)).unwrap()
}

#[test]
fn python_recomputes_ids_chains_digest_and_head_file_of_a_real_box() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let node = Node::start(&home, &[]);

    let mut sent: Vec<String> = Vec::new();
    for body in AWKWARD {
        ok(&home, &["send", body]);
        sent.push((*body).to_string());
    }
    let out = run_with_input(dshare(&home, &["send"]), format!("{ON_STDIN}\n").as_bytes());
    assert!(out.status.success(), "send on stdin\n{}", show(&out));
    sent.push(ON_STDIN.to_string());

    // The node stored the bodies exactly as sent.
    let logged: Vec<String> = json_lines(&ok(&home, &["log", "--json"]))
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(logged, sent);

    let box_path = home.join("box.txt");
    let file: Vec<Value> = crate::util::box_lines(&home)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(file.len(), sent.len());

    let out = python(RECOMPUTE, &[&box_path]);
    assert!(out.status.success(), "python failed\n{}", show(&out));
    let py: Value = serde_json::from_slice(&out.stdout).unwrap();

    for (i, line) in file.iter().enumerate() {
        let n = i + 1;
        assert_eq!(
            py["canonical"][i], true,
            "line {n} is not in the documented form"
        );
        assert_eq!(
            py["bodies"][i], line["body"],
            "line {n}: python read another body"
        );
        assert_eq!(
            py["ids"][i], line["id"],
            "line {n}: the id python computed from docs/FORMAT.md differs from the box"
        );
        assert_eq!(
            py["chains"][i], line["chain"],
            "line {n}: the chain python computed from docs/FORMAT.md differs from the box"
        );
    }

    let report = verify_json(&home, None);
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["messages"], sent.len());
    assert_eq!(
        py["digest"], report["digest"],
        "digest differs from `dshare verify`"
    );
    assert_eq!(
        py["head"], report["head"],
        "head differs from `dshare verify`"
    );
    let status: Value = serde_json::from_str(&node.get("/status", &[]).1).unwrap();
    assert_eq!(
        py["digest"], status["digest"],
        "digest differs from /status"
    );

    let head_file = fs::read_to_string(home.join("box.head")).unwrap();
    assert_eq!(py["head_file"].as_str().unwrap(), head_file);
    assert_eq!(head_file.len(), 86);

    // The checker printed in the document agrees with `dshare verify` word for word.
    let out = python(&documented_checker(), &[&box_path]);
    assert!(
        out.status.success(),
        "the checker of docs/FORMAT.md refused a good box\n{}",
        show(&out)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        ok(&home, &["verify"]),
        "the checker of docs/FORMAT.md and `dshare verify` disagree"
    );
}

#[test]
fn the_documented_example_box_and_its_values_are_right() {
    let scratch = Scratch::new();
    let home = scratch.home("unused");
    let dir = scratch.dir.path().join("example");
    fs::create_dir(&dir).unwrap();
    let box_path = dir.join("box.txt");
    let example = block_after("Here is a real two-message box", "jsonl");
    assert_eq!(example.lines().count(), 2, "{example}");
    fs::write(&box_path, &example).unwrap();

    let report = verify_json(&home, Some(&box_path));
    assert_eq!(
        report["ok"], true,
        "the example box of docs/FORMAT.md fails verify: {report}"
    );
    let expected = block_after("Run on the example box", "text");
    assert_eq!(
        ok(&home, &["verify", box_path.to_str().unwrap()]),
        expected,
        "`dshare verify` on the example box prints other values than docs/FORMAT.md"
    );
    let out = python(&documented_checker(), &[&box_path]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);

    // Every value the document derives by hand appears in it as computed here.
    let head_line = format!("{:020} {}", 2, report["head"].as_str().unwrap());
    for value in [
        report["head"].as_str().unwrap(),
        report["digest"].as_str().unwrap(),
        &head_line,
    ] {
        assert!(FORMAT_MD.contains(value), "docs/FORMAT.md lacks {value}");
    }

    // The checker is a checker: one changed body byte is caught by the id.
    fs::write(&box_path, example.replace("\"second\"", "\"Second\"")).unwrap();
    let out = python(&documented_checker(), &[&box_path]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2: id is not the SHA-256"),
        "{}",
        show(&out)
    );
}

/// The epochs script of docs/FORMAT.md §12 recomputes every final head of a real home
/// (ids, chains and per-author heads of the epoch's lines from the head before it, the
/// digest, the link between heads, the Ed25519 signature over the documented bytes),
/// then follows the live box, and agrees with `dshare verify`.
#[test]
fn python_recomputes_the_final_heads_and_the_history_across_epochs() {
    let scratch = Scratch::new();
    let home = scratch.home("a");
    let node = Node::start(&home, &[]);
    for body in AWKWARD {
        ok(&home, &["send", body]);
    }
    ok(&home, &["archive", "--keep-messages", "3"]);
    ok(&home, &["send", "after the first epoch"]);
    ok(&home, &["archive", "--keep-messages", "2"]);
    ok(&home, &["send", "in the live box"]);
    let script = block_after("## 12.", "python");
    assert!(script.starts_with("#!/usr/bin/env python3"), "{script}");
    let report = verify_json(&home, None);
    assert_eq!(report["ok"], true, "{report}");
    let expected_end = format!(
        "ok: {} lines in the history\nhead   {}\ndigest {}\n",
        AWKWARD.len() + 2,
        report["head"].as_str().unwrap(),
        report["digest"].as_str().unwrap()
    );
    let out = python(&script, &[&home]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    let first = AWKWARD.len() - 3;
    assert!(
        text.starts_with(&format!(
            "epoch 1 lines 1-{first}: lines recomputed, signature ok\nepoch 2 lines {}-{}: lines recomputed, signature ok\n",
            first + 1,
            first + 2
        )),
        "{text}"
    );
    assert!(
        text.ends_with(&expected_end),
        "{text}\nexpected the end:\n{expected_end}"
    );

    // With the epochs' lines deleted the heads alone still link the history.
    ok(&home, &["archive", "--prune"]);
    let out = python(&script, &[&home]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("epoch 2 lines"), "{text}");
    assert!(text.contains("lines not present, signature ok"), "{text}");
    assert!(text.ends_with(&expected_end), "{text}");

    // One changed figure in a head: its signature no longer checks.
    let head = home.join("epochs").join("box.1.head");
    let original = fs::read_to_string(&head).unwrap();
    fs::write(&head, original.replace("first-ts ", "first-ts 1")).unwrap();
    let out = python(&script, &[&home]);
    assert!(!out.status.success(), "{}", show(&out));
    drop(node);
}
