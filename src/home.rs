//! The home directory: where a node keeps its box, keys, token, lock and address.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::identity::Identity;
use crate::secret::Secret;

/// A node's home. Several homes on one machine are several nodes.
#[derive(Debug, Clone)]
pub struct Home {
    dir: PathBuf,
}

/// `open(2)` flag that refuses a symbolic link as the last part of a path. Every file
/// dshare writes in a home is opened with it: a link planted there could otherwise
/// point a write, or the truncation of a torn box, at any file the node's user owns.
pub const NO_FOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

/// The error for a file of the home that could not be opened, with the remedy when
/// it is a symbolic link (which [`NO_FOLLOW`] refuses with ELOOP).
pub fn cannot_open(path: &Path, what: &str, e: std::io::Error) -> anyhow::Error {
    if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) {
        return anyhow::anyhow!(
            "{what} {} is a symbolic link, and dshare follows none in a home (one planted there could point its writes at any file of this user); nothing was changed. Remove the link, and put the file itself there",
            path.display()
        );
    }
    anyhow::Error::new(e).context(format!("cannot open {what} {}", path.display()))
}

const IDENTITY: &str = "identity.key";
const NETWORK: &str = "network.key";
const TOKEN: &str = "client.token";
/// The files that make a home; `init` writes the identity key last.
const SECRETS: [&str; 3] = [NETWORK, TOKEN, IDENTITY];

impl Home {
    /// `--home`, else `DSHARE_HOME` (clap fills both into `dir`), else
    /// `<data dir>/dshare`.
    pub fn resolve(dir: Option<PathBuf>) -> Result<Home> {
        let dir = match dir {
            Some(d) => d,
            None => dirs::data_dir()
                .context(
                    "cannot find this user's data directory; pass --home DIR or set DSHARE_HOME",
                )?
                .join("dshare"),
        };
        Ok(Home { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn box_path(&self) -> PathBuf {
        self.dir.join("box.txt")
    }

    pub fn addr_path(&self) -> PathBuf {
        self.dir.join("node.addr")
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("node.lock")
    }

    pub fn peers_path(&self) -> PathBuf {
        self.dir.join("peers.json")
    }

    /// Refuses a home that another user owns or may write to: that user could replace
    /// its keys, or plant a link where the node writes (and a node run by root would
    /// follow it). Called before any secret is read or written.
    pub fn check_owner(&self) -> Result<()> {
        let meta = match fs::metadata(&self.dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot inspect {}", self.dir.display()));
            }
        };
        let me = rustix::process::geteuid().as_raw();
        match owner_problem(meta.uid(), meta.mode(), me) {
            None => Ok(()),
            Some(why) => bail!(
                "{} {why}; another user could replace its keys or plant links in it, so it is refused and nothing was changed. Use a home of your own (--home DIR), or if this one is yours: `chown -R {me} {d}` and `chmod 700 {d}`",
                self.dir.display(),
                d = self.dir.display()
            ),
        }
    }

    /// True once `init` (or a first `serve`) has completed here: every secret file
    /// holds a key.
    pub fn exists(&self) -> bool {
        SECRETS
            .iter()
            .all(|name| read_key_file(&self.dir.join(name)).is_ok())
    }

    /// Creates a new home: identity key, network key (new, or the one given to join a
    /// network) and client token, each written once with mode 0600 in a 0700 directory.
    /// Finishes a home whose `init` was interrupted before the identity key was
    /// written (such a home never ran a node): what it left is set aside, not reused.
    pub fn init(&self, network_key: Option<&Secret>) -> Result<()> {
        self.check_owner()?;
        if self.exists() {
            bail!(
                "{} is already a dshare home; nothing was changed (use another --home for another node)",
                self.dir.display()
            );
        }
        let present: Vec<&str> = SECRETS
            .iter()
            .copied()
            .filter(|name| fs::symlink_metadata(self.dir.join(name)).is_ok())
            .collect();
        if !present.is_empty() {
            self.set_aside_torn_init(&present)?;
        }
        fs::create_dir_all(&self.dir)
            .with_context(|| format!("cannot create {}", self.dir.display()))?;
        // A directory created between the check and here is checked too.
        self.check_owner()?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", self.dir.display()))?;
        let identity = Identity::generate();
        let network = network_key.cloned().unwrap_or_else(Secret::random);
        // The identity key last: until it is there, the home is an interrupted `init`
        // that the next `init` (or `serve`) finishes.
        write_secret(&self.dir, NETWORK, "network key", None, &network)?;
        write_secret(&self.dir, TOKEN, "client token", None, &Secret::random())?;
        write_secret(
            &self.dir,
            IDENTITY,
            "identity key",
            Some(&identity.author().to_hex()),
            &identity.secret(),
        )?;
        Ok(())
    }

    /// Moves the secret files of an interrupted `init` to `NAME.torn-MS`, or refuses
    /// when the home is more than that (its identity key is there, or it has a box).
    fn set_aside_torn_init(&self, present: &[&str]) -> Result<()> {
        let damaged: Vec<String> = SECRETS
            .iter()
            .filter_map(|name| {
                let path = self.dir.join(name);
                let why = read_key_file(&path).err()?;
                Some(format!("{} {why}", path.display()))
            })
            .collect();
        if present.contains(&IDENTITY) || self.box_path().exists() {
            bail!(
                "{} is a dshare home, but {}; nothing was changed. Restore from a backup (the network key can be copied from another node of the network); a home that is beyond repair can be moved away and created again with `dshare init --join`",
                self.dir.display(),
                damaged.join(", ")
            );
        }
        let stamp = crate::time::now_ms();
        for name in present {
            let from = self.dir.join(name);
            let to = self.dir.join(format!("{name}.torn-{stamp}"));
            fs::rename(&from, &to)
                .with_context(|| format!("cannot move {} aside", from.display()))?;
            crate::note!(
                "{} was left by an interrupted `dshare init` (no identity key was written); moved it to {} and finishing the home",
                from.display(),
                to.display()
            );
        }
        sync_dir(&self.dir)
    }

    pub fn identity(&self) -> Result<Identity> {
        Ok(Identity::from_secret(&self.read_secret(IDENTITY)?))
    }

    pub fn network_key(&self) -> Result<Secret> {
        self.read_secret(NETWORK)
    }

    /// The keyring file: network keys, primary first. Absent until `dshare keys`
    /// changes anything; until then the keyring is `network.key` alone.
    pub fn keyring_path(&self) -> PathBuf {
        self.dir.join("network.keys")
    }

    /// The network keys this node holds, primary first.
    pub fn keyring(&self) -> Result<Vec<Secret>> {
        let path = self.keyring_path();
        match fs::read_to_string(&path) {
            Ok(text) => {
                let keys: Vec<Secret> = text
                    .lines()
                    .map(|l| l.split('#').next().unwrap_or("").trim())
                    .filter(|l| !l.is_empty())
                    .map(|l| {
                        Secret::from_hex(l).with_context(|| {
                            format!("{} holds a line that is not a key", path.display())
                        })
                    })
                    .collect::<Result<_>>()?;
                if keys.is_empty() {
                    bail!(
                        "{} holds no key; restore it or remove it to use network.key",
                        path.display()
                    );
                }
                Ok(keys)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(vec![self.network_key()?]),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    /// Writes the keyring (primary first) atomically, mode 0600.
    pub fn write_keyring(&self, keys: &[Secret]) -> Result<()> {
        let mut text = format!(
            "# dshare network keys: secret, keep this file private; the first seals, all open\n# written: {}\n",
            crate::time::utc(crate::time::now_ms())
        );
        for k in keys {
            text.push_str(&format!(
                "{}  # id {}\n",
                k.expose_hex(),
                crate::seal::key_id(k)
            ));
        }
        write_private(&self.dir, &self.keyring_path(), text.as_bytes())
    }

    /// The file of client keys issued by `dshare client add`.
    pub fn clients_path(&self) -> PathBuf {
        self.dir.join("clients.json")
    }

    /// Client keys by name.
    pub fn clients(&self) -> Result<Vec<(String, Secret)>> {
        let path = self.clients_path();
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let map: std::collections::BTreeMap<String, String> = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a JSON object of name: key", path.display()))?;
        map.into_iter()
            .map(|(name, key)| {
                let key = Secret::from_hex(&key).with_context(|| {
                    format!("client {name:?} in {} has a malformed key", path.display())
                })?;
                Ok((name, key))
            })
            .collect()
    }

    /// Writes the client keys atomically, mode 0600.
    pub fn write_clients(&self, clients: &[(String, Secret)]) -> Result<()> {
        let map: std::collections::BTreeMap<&str, String> = clients
            .iter()
            .map(|(n, k)| (n.as_str(), k.expose_hex()))
            .collect();
        let text = serde_json::to_string_pretty(&map)?;
        write_private(&self.dir, &self.clients_path(), text.as_bytes())
    }

    pub fn token(&self) -> Result<Secret> {
        self.read_secret(TOKEN)
    }

    fn read_secret(&self, name: &str) -> Result<Secret> {
        self.check_owner()?;
        let path = self.dir.join(name);
        let no_home = || {
            SECRETS
                .iter()
                .all(|n| fs::symlink_metadata(self.dir.join(n)).is_err())
        };
        match read_key_file(&path) {
            Ok(key) => Ok(key),
            Err(_) if no_home() => bail!(
                "{} is not a dshare home yet; run `dshare init` (or `dshare serve`, which creates it)",
                self.dir.display()
            ),
            Err(why) if !self.dir.join(IDENTITY).exists() => bail!(
                "{} {why}: a `dshare init` was interrupted (a full disk?) before it finished this home; run `dshare init` again to finish it",
                path.display()
            ),
            Err(why) => bail!(
                "{} {why}; restore it from a backup (the network key can be copied from another node of the network)",
                path.display()
            ),
        }
    }

    /// The author allow-list: `extra` ids from the command line plus the ids in
    /// `<home>/authors.allow` (one a line, `#` comments). Empty means everyone.
    pub fn allowed_authors(
        &self,
        extra: &[String],
    ) -> Result<std::collections::HashSet<crate::message::AuthorId>> {
        let path = self.dir.join("authors.allow");
        let from_file = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        from_file
            .lines()
            .map(|l| l.split('#').next().unwrap_or("").trim())
            .filter(|l| !l.is_empty())
            .chain(extra.iter().map(String::as_str))
            .map(|id| {
                id.parse().map_err(|e| {
                    anyhow::anyhow!("{id:?} is not an author id (`dshare id` prints one): {e}")
                })
            })
            .collect()
    }

    /// Takes the home's lock for the life of the returned file: one node per home.
    pub fn lock(&self) -> Result<File> {
        self.check_owner()?;
        let path = self.lock_path();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(NO_FOLLOW)
            .open(&path)
            .map_err(|e| cannot_open(&path, "the lock file", e))?;
        match file.try_lock() {
            Ok(()) => Ok(file),
            Err(fs::TryLockError::WouldBlock) => bail!(
                "another node is already running on {} (its address is in {}); stop it first or use another --home",
                self.dir.display(),
                self.addr_path().display()
            ),
            Err(fs::TryLockError::Error(e)) => {
                Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
    }

    /// True when a node holds this home's lock.
    pub fn node_running(&self) -> bool {
        let Ok(file) = File::open(self.lock_path()) else {
            return false;
        };
        matches!(file.try_lock(), Err(fs::TryLockError::WouldBlock))
    }

    /// Records the running node's URL, atomically, for `send`, `log` and `web`.
    pub fn write_addr(&self, url: &str) -> Result<()> {
        let tmp = self.dir.join("node.addr.tmp");
        let _ = fs::remove_file(&tmp);
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .and_then(|mut f| f.write_all(format!("{url}\n").as_bytes()))
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, self.addr_path()).context("cannot record the node's address")
    }

    /// The URL of the node running on this home.
    pub fn node_url(&self) -> Result<String> {
        let no_node = || {
            format!(
                "no node is running for {}; start one with `dshare serve` (or pass --node URL)",
                self.dir.display()
            )
        };
        // The address and token of a home another user controls could send this
        // user's messages to any node.
        self.check_owner()?;
        if !self.node_running() {
            bail!(no_node());
        }
        let text = fs::read_to_string(self.addr_path()).with_context(no_node)?;
        Ok(text.trim().to_string())
    }

    /// Warns when a secret file or the home can be read by others.
    pub fn check_permissions(&self) {
        let loose = |p: &Path, allowed: u32| {
            fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o777 & !allowed != 0)
        };
        if loose(&self.dir, 0o700) {
            crate::warning!(
                "{} is accessible to other users; run `chmod 700 {}`",
                self.dir.display(),
                self.dir.display()
            );
        }
        for name in [IDENTITY, NETWORK, TOKEN, "network.keys", "clients.json"] {
            let p = self.dir.join(name);
            if loose(&p, 0o600) {
                crate::warning!(
                    "{} is readable by other users; run `chmod 600 {}`",
                    p.display(),
                    p.display()
                );
            }
        }
    }
}

/// Why a home with this owner and mode is not safe for user `me`, if it is not.
fn owner_problem(owner: u32, mode: u32, me: u32) -> Option<String> {
    if owner != me {
        return Some(format!("belongs to user {owner}, not to this user ({me})"));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "can be written by other users (mode {:o})",
            mode & 0o777
        ));
    }
    None
}

/// The key in a secret file, or why there is none.
fn read_key_file(path: &Path) -> std::result::Result<Secret, String> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err("is missing".into()),
        Err(e) => return Err(format!("cannot be read ({e})")),
    };
    if text.trim().is_empty() {
        return Err("is empty".into());
    }
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .and_then(Secret::from_hex)
        .ok_or_else(|| "does not hold a 64-hex-digit key".into())
}

/// Writes a secret once, so that it appears whole or not at all: a 0600 temp file
/// with a comment header saying what it is, fsync, then a hard link to its name
/// (which, unlike a rename, never replaces an existing key), and fsync of the
/// directory. A full disk or a crash leaves at most a `.tmp` file behind.
fn write_secret(
    dir: &Path,
    name: &str,
    what: &str,
    public: Option<&str>,
    secret: &Secret,
) -> Result<()> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut text = format!(
        "# dshare {what}: secret, keep this file private\n# created: {}\n",
        crate::time::utc(crate::time::now_ms())
    );
    if let Some(p) = public {
        text.push_str(&format!("# public key: {p}\n"));
    }
    text.push_str(&secret.expose_hex());
    text.push('\n');
    let written = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", tmp.display()));
    }
    let linked = fs::hard_link(&tmp, &path);
    let _ = fs::remove_file(&tmp);
    linked.with_context(|| format!("cannot create {}", path.display()))?;
    sync_dir(dir)
}

/// Makes the directory's entries (a new or renamed file) durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// Replaces `path` with `bytes` atomically (a 0600 temp file in `dir`, fsync, rename),
/// so a reader sees the old file or the new one, never half of one.
fn write_private(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!("{name}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::owner_problem;

    #[test]
    fn a_home_must_be_the_users_and_closed_to_other_writers() {
        assert_eq!(owner_problem(1000, 0o40700, 1000), None);
        assert_eq!(owner_problem(1000, 0o40755, 1000), None);
        assert!(
            owner_problem(65534, 0o40700, 0)
                .unwrap()
                .contains("user 65534")
        );
        assert!(owner_problem(0, 0o40770, 0).unwrap().contains("mode 770"));
        assert!(owner_problem(0, 0o40707, 0).unwrap().contains("mode 707"));
    }
}
