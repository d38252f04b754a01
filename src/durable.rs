//! Replacing a small file so that a crash leaves the old contents or the new, never
//! a mix, and the new contents are on disk when the call returns.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `bytes` to `temp` (created 0600, never through a symbolic link), fsyncs it,
/// renames it over `path` and fsyncs the directory, so that the rename itself
/// survives a crash. `temp` must be in `path`'s directory (a rename does not cross
/// file systems) and used by one writer at a time; a leftover `temp` from a crash is
/// removed first.
pub fn replace(path: &Path, temp: &Path, bytes: &[u8]) -> io::Result<()> {
    // A leftover keeps its own mode when opened again: start from a new file.
    match fs::remove_file(temp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(crate::home::NO_FOLLOW)
        .open(temp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(temp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_new_contents_replace_the_old_and_the_temporary_file_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let temp = dir.path().join("state.tmp");
        std::fs::write(&path, "old").unwrap();
        std::fs::write(
            &temp,
            "a leftover from a crash, longer than the new contents",
        )
        .unwrap();
        super::replace(&path, &temp, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert!(!temp.exists());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_temporary_path_that_is_a_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "keep me").unwrap();
        let temp = dir.path().join("state.tmp");
        std::os::unix::fs::symlink(&target, &temp).unwrap();
        // The link itself is removed, never followed: the target keeps its bytes.
        super::replace(&dir.path().join("state"), &temp, b"x").unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    }
}
