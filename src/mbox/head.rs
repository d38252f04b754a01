//! The head file beside a box: the last durable line count and chain hash, so a cut from the end can be told.
//!
//! Its own module because the store writes it and verify reads it: neither sits
//! above the other.

use std::path::{Path, PathBuf};

use crate::hex::Hash;

/// The file that records the last durable line count and chain hash, beside the box,
/// so `verify` can tell when lines were cut from the end.
pub fn head_path(box_path: &Path) -> PathBuf {
    box_path.with_extension("head")
}

/// What the head file beside a box says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadRecord {
    /// No file, or an empty one (the node creates it before its first write): nothing
    /// recorded, so a cut from the end cannot be told from a short box.
    Missing,
    Recorded {
        lines: u64,
        head: Hash,
    },
    /// A file that is not a head record: damaged or tampered with. Whether lines were
    /// cut from the end cannot be told either, and that is itself a warning sign.
    Unreadable(String),
}

/// Reads the head file at `path`.
pub fn read_head_record(path: &Path) -> HeadRecord {
    let bytes = match std::fs::read(path) {
        Ok(bytes) if bytes.is_empty() => return HeadRecord::Missing,
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HeadRecord::Missing,
        Err(e) => return HeadRecord::Unreadable(e.to_string()),
    };
    parse_head_record(&bytes).map_or_else(
        || HeadRecord::Unreadable("not `<20 digits> <64 hex digits>` and a line feed".into()),
        |(lines, head)| HeadRecord::Recorded { lines, head },
    )
}

fn parse_head_record(bytes: &[u8]) -> Option<(u64, Hash)> {
    let text = std::str::from_utf8(bytes).ok()?.strip_suffix('\n')?;
    let (lines, head) = text.split_once(' ')?;
    if lines.len() != 20 || !lines.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((lines.parse().ok()?, head.parse().ok()?))
}

/// The `(lines, head)` recorded beside a box, if the file holds a record.
pub fn read_head_file(path: &Path) -> Option<(u64, Hash)> {
    match read_head_record(path) {
        HeadRecord::Recorded { lines, head } => Some((lines, head)),
        HeadRecord::Missing | HeadRecord::Unreadable(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_exact_head_record_is_read_as_one() {
        let head = "80943a556f4364d81fd6ea801c715f40d0d7375ee649eb7c9a708d961f5ec0a3";
        let good = format!("00000000000000000002 {head}\n");
        assert_eq!(
            parse_head_record(good.as_bytes()),
            Some((2, head.parse().unwrap()))
        );
        for bad in [
            format!("00000000000000000002 {head}"),
            format!("00000000000000000002 {head}\ngarbage after a shorter record"),
            format!("2 {head}\n"),
            format!("+0000000000000000002 {head}\n"),
            format!("00000000000000000002 {}\n", &head[1..]),
            "garbage\n".to_string(),
        ] {
            assert_eq!(parse_head_record(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[test]
    fn an_empty_or_absent_head_file_records_nothing_and_garbage_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box.head");
        assert_eq!(read_head_record(&path), HeadRecord::Missing);
        std::fs::write(&path, "").unwrap();
        assert_eq!(read_head_record(&path), HeadRecord::Missing);
        std::fs::write(&path, "garbage").unwrap();
        assert!(matches!(read_head_record(&path), HeadRecord::Unreadable(_)));
    }
}
