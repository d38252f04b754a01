//! Man pages and completions in the repository match the command-line definition.

use std::fs;
use std::path::Path;

use crate::util::{Scratch, ok};

#[test]
fn man_pages_and_completions_are_current() {
    let s = Scratch::new();
    let out = s.dir.path().join("gen");
    ok(&s.home("a"), &["generate", "--out", out.to_str().unwrap()]);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["man", "completions"] {
        let fresh = list(&out.join(dir));
        let checked_in = list(&repo.join(dir));
        assert!(
            fresh == checked_in,
            "{dir}/ is stale: regenerate it with `cargo run -- generate --out .` and commit the result"
        );
    }
    assert!(
        list(&out.join("man"))
            .iter()
            .any(|(n, _)| n == "dshare-send.1")
    );
    assert_eq!(list(&out.join("completions")).len(), 5);
}

fn list(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let p = e.unwrap().path();
                (
                    p.file_name().unwrap().to_string_lossy().to_string(),
                    fs::read(&p).unwrap(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
