//! The client keys a node accepts for remote sends, kept in step with
//! `<home>/clients.json` on every sealed request, so a key `dshare client add` printed
//! works at once and a key `dshare client revoke` removed is refused at once.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Result;

use crate::home::Home;
use crate::seal::Keyring;

/// What identifies one version of the key file without reading it. `dshare client`
/// replaces the file by renaming a new one over it, so the inode changes with every
/// write; size and change times catch an editor that rewrites it in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    inode: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    /// The file's stamp, or `None` when there is no file (no key issued yet).
    fn of(path: &std::path::Path) -> Option<Stamp> {
        let m = std::fs::metadata(path).ok()?;
        Some(Stamp {
            dev: m.dev(),
            inode: m.ino(),
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The client keyring and the version of the file it was loaded from.
pub struct ClientKeys {
    home: Home,
    path: PathBuf,
    keys: Keyring,
    /// The file's stamp when last read. Held while a changed file is read, so
    /// concurrent requests read it once.
    seen: Mutex<Option<Stamp>>,
}

impl ClientKeys {
    /// The keys in `home`'s file now; a malformed file stops the start.
    pub fn load(home: &Home) -> Result<ClientKeys> {
        let path = home.clients_path();
        let seen = Stamp::of(&path);
        let keys = Keyring::empty();
        keys.set(&secrets(home)?);
        Ok(ClientKeys {
            home: home.clone(),
            path,
            keys,
            seen: Mutex::new(seen),
        })
    }

    /// The keys as the file holds them now. Costs one `stat` when the file has not
    /// changed; it is read again only when its stamp changed, which only someone who
    /// can write the home can cause, so requests from outside never make the node
    /// read the file more often than it is written.
    pub fn current(&self) -> &Keyring {
        self.refresh();
        &self.keys
    }

    /// Reloads the keys if the file changed since it was last read. A file that does
    /// not parse leaves the keys as they were (and is not read again until it changes).
    pub fn refresh(&self) {
        let now = Stamp::of(&self.path);
        let mut seen = self.seen.lock().expect("client keys lock");
        if *seen == now {
            return;
        }
        *seen = now;
        match secrets(&self.home) {
            Ok(keys) => {
                self.keys.set(&keys);
                crate::note!("client keys reloaded: {} held", keys.len());
            }
            Err(e) => crate::warning!("keeping the current client keys: {e:#}"),
        }
    }
}

fn secrets(home: &Home) -> Result<Vec<crate::secret::Secret>> {
    Ok(home.clients()?.into_iter().map(|(_, k)| k).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;

    fn sealed_by(key: &Secret) -> Vec<u8> {
        Keyring::new(key).seal(b"aad", b"hi", crate::time::now_ms())
    }

    #[test]
    fn a_key_written_to_the_file_opens_at_once_and_a_removed_one_stops_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::resolve(Some(dir.path().to_path_buf())).unwrap();
        let keys = ClientKeys::load(&home).unwrap();
        let (a, b) = (Secret::random(), Secret::random());
        let now = crate::time::now_ms;
        assert!(keys.current().open(b"aad", &sealed_by(&a), now()).is_err());
        home.write_clients(&[("a".into(), a.clone())]).unwrap();
        assert!(keys.current().open(b"aad", &sealed_by(&a), now()).is_ok());
        home.write_clients(&[("b".into(), b.clone())]).unwrap();
        assert!(keys.current().open(b"aad", &sealed_by(&a), now()).is_err());
        assert!(keys.current().open(b"aad", &sealed_by(&b), now()).is_ok());
    }

    #[test]
    fn a_broken_file_keeps_the_keys_it_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::resolve(Some(dir.path().to_path_buf())).unwrap();
        let a = Secret::random();
        home.write_clients(&[("a".into(), a.clone())]).unwrap();
        let keys = ClientKeys::load(&home).unwrap();
        std::fs::write(home.clients_path(), "not json").unwrap();
        let now = crate::time::now_ms();
        assert!(keys.current().open(b"aad", &sealed_by(&a), now).is_ok());
    }
}
