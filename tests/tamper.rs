//! `dshare verify` catches every kind of tampering and names the line.

use std::fs;
use std::path::Path;

use crate::util::{Node, Scratch, fails, ok, show};

/// A home whose box holds 6 messages, with no node running.
fn six_messages(s: &Scratch) -> std::path::PathBuf {
    let home = s.home("a");
    let node = Node::start(&home, &[]);
    for i in 1..=6 {
        ok(&home, &["send", &format!("message {i}")]);
    }
    node.stop();
    ok(&home, &["verify"]);
    home
}

fn lines(home: &Path) -> Vec<String> {
    crate::util::box_lines(home)
}

fn write_lines(home: &Path, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(home.join("box.txt"), text).unwrap();
}

/// Runs verify, requires exit 1, and returns the first error's line number, checking
/// that the human output names the same line.
fn first_bad_line(home: &Path) -> (u64, String) {
    let out = fails(home, &["verify", "--json"], 1);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let first = &report["errors"][0];
    let line = first["line"].as_u64().unwrap();
    let human = fails(home, &["verify"], 1);
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains(&format!("line {line}:")), "{}", show(&human));
    (line, first["error"].as_str().unwrap().to_string())
}

#[test]
fn an_edited_body_is_caught_at_its_line() {
    let s = Scratch::new();
    let home = six_messages(&s);
    let mut l = lines(&home);
    l[2] = l[2].replace("message 3", "message X");
    write_lines(&home, &l);
    assert_eq!(first_bad_line(&home).0, 3);
}

#[test]
fn an_edit_that_keeps_the_json_meaning_is_caught() {
    let s = Scratch::new();
    let home = six_messages(&s);
    let mut l = lines(&home);
    l[3] = l[3].replacen("\"seq\":", "\"seq\": ", 1);
    write_lines(&home, &l);
    assert_eq!(first_bad_line(&home).0, 4);
}

#[test]
fn a_deleted_line_is_caught_where_it_was() {
    let s = Scratch::new();
    let home = six_messages(&s);
    let mut l = lines(&home);
    l.remove(3);
    write_lines(&home, &l);
    assert_eq!(first_bad_line(&home).0, 4);
}

#[test]
fn swapped_lines_are_caught_at_the_first_of_them() {
    let s = Scratch::new();
    let home = six_messages(&s);
    let mut l = lines(&home);
    l.swap(1, 2);
    write_lines(&home, &l);
    assert_eq!(first_bad_line(&home).0, 2);
}

#[test]
fn a_line_cut_from_the_end_is_caught_by_the_head_file() {
    let s = Scratch::new();
    let home = six_messages(&s);
    let mut l = lines(&home);
    l.pop();
    write_lines(&home, &l);
    let (line, error) = first_bad_line(&home);
    assert_eq!(line, 6);
    assert!(error.contains("cut from the end"), "{error}");
}

#[test]
fn a_file_truncated_mid_line_is_caught() {
    let s = Scratch::new();
    let home = six_messages(&s);
    let text = fs::read(home.join("box.txt")).unwrap();
    fs::write(home.join("box.txt"), &text[..text.len() - 40]).unwrap();
    assert_eq!(first_bad_line(&home).0, 6);
}

#[test]
fn a_cut_without_the_head_file_is_caught_by_a_known_head() {
    let s = Scratch::new();
    let home = six_messages(&s);
    let report: serde_json::Value =
        serde_json::from_str(&ok(&home, &["verify", "--json"])).unwrap();
    let head = report["head"].as_str().unwrap().to_string();
    let mut l = lines(&home);
    l.pop();
    write_lines(&home, &l);
    fs::remove_file(home.join("box.head")).unwrap();
    ok(&home, &["verify"]); // nothing left to compare with…
    let out = fails(&home, &["verify", "--head", &head], 1); // …but the known head is gone
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("line 6:"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_forged_signature_is_caught() {
    let s = Scratch::new();
    let home = six_messages(&s);
    let mut l = lines(&home);
    let at = l[4].find("\"sig\":\"").unwrap() + 7;
    let flipped = if &l[4][at..at + 1] == "0" { "1" } else { "0" };
    l[4].replace_range(at..at + 1, flipped);
    write_lines(&home, &l);
    let (line, error) = first_bad_line(&home);
    assert_eq!(line, 5);
    assert!(error.contains("signature"), "{error}");
}

#[test]
fn verify_json_describes_an_intact_box() {
    let s = Scratch::new();
    let home = six_messages(&s);
    let report: serde_json::Value =
        serde_json::from_str(&ok(&home, &["verify", "--json"])).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["messages"], 6);
    assert_eq!(report["authors"], 1);
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);
    assert_eq!(report["head"].as_str().unwrap().len(), 64);
    assert_eq!(report["digest"].as_str().unwrap().len(), 64);
    // An explicit path works the same.
    let path = home.join("box.txt");
    ok(&home, &["verify", path.to_str().unwrap()]);
}
