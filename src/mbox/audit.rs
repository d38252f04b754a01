//! The record of the last full `dshare verify` of a box (`box.verified`, docs/FORMAT.md
//! §10): start-up trusts the checkpoint for the lines before it, so only a full verify
//! proves those lines, and `doctor` says how long ago one ran.

use std::path::{Path, PathBuf};

use crate::hex::Hash;

/// The record beside the box at `box_path`.
pub fn audit_path(box_path: &Path) -> PathBuf {
    box_path.with_extension("verified")
}

/// One full verify: when, what it found, how far it read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Audit {
    pub at_ms: u64,
    pub ok: bool,
    pub lines: u64,
    pub head: Hash,
}

impl Audit {
    fn encode(&self) -> String {
        let verdict = if self.ok { "ok" } else { "failed" };
        format!("{} {verdict} {} {}\n", self.at_ms, self.lines, self.head)
    }

    fn parse(text: &str) -> Option<Audit> {
        let mut words = text.strip_suffix('\n')?.split(' ');
        let audit = Audit {
            at_ms: words.next()?.parse().ok()?,
            ok: match words.next()? {
                "ok" => true,
                "failed" => false,
                _ => return None,
            },
            lines: words.next()?.parse().ok()?,
            head: words.next()?.parse().ok()?,
        };
        words.next().is_none().then_some(audit)
    }
}

/// Replaces the record (temp file and rename, so a reader never sees half of one).
pub fn record_audit(box_path: &Path, audit: &Audit) -> std::io::Result<()> {
    let path = audit_path(box_path);
    let temp = path.with_extension("verified.tmp");
    std::fs::write(&temp, audit.encode())?;
    std::fs::rename(&temp, &path)
}

/// The last record, if there is a readable one.
pub fn last_audit(box_path: &Path) -> Option<Audit> {
    let text = std::fs::read_to_string(audit_path(box_path)).ok()?;
    Audit::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_and_anything_else_is_no_record() {
        let audit = Audit {
            at_ms: 1_700_000_000_000,
            ok: true,
            lines: 42,
            head: crate::chain::GENESIS,
        };
        assert_eq!(Audit::parse(&audit.encode()), Some(audit.clone()));
        let failed = Audit { ok: false, ..audit };
        assert_eq!(Audit::parse(&failed.encode()), Some(failed));
        for bad in ["", "1 ok 2\n", "x ok 1 00\n", "1 maybe 1 00\n"] {
            assert_eq!(Audit::parse(bad), None, "{bad:?}");
        }
    }
}
