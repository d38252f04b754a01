//! Epochs: the oldest lines of a box closed into a file of their own, ended by a
//! signed final head that the live box continues from (docs/FORMAT.md §12). This
//! module holds the final head's format, the epoch files' names, and what a start
//! does with an archive that a crash left half done.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::chain::{self, Head};
use crate::hex::Hash;
use crate::identity::Identity;
use crate::message::{AuthorId, Signature};

use super::track::{AuthorHead, Tracker};

/// The first line of every final head: names the format and keeps the signature over
/// it from meaning anything else (a message's encoding starts `dshare/1`).
const MAGIC: &str = "dshare-epoch/1";

/// A final head holds one line per author; more than this is not a head this code
/// wrote, and reading it would let a file on disk take any amount of memory.
const MAX_AUTHORS: usize = 1 << 20;

/// The state of the whole history at the last line of an epoch, signed by the node
/// that closed it. Line numbers count from the first line of epoch 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalHead {
    pub epoch: u64,
    /// The number of this epoch's first line (1 for epoch 1).
    pub first_line: u64,
    /// The number of its last line: every line up to here is in this epoch or before.
    pub lines: u64,
    /// The chain hash before its first line: genesis, or the last epoch's `chain`.
    pub prev_chain: Hash,
    /// The chain hash of its last line.
    pub chain: Hash,
    /// [`chain::digest`] of `heads`.
    pub digest: Hash,
    pub max_clock: u64,
    /// The smallest and largest `ts` of its own lines.
    pub first_ts: u64,
    pub last_ts: u64,
    /// Every author seen up to `lines`, in ascending order, with its last message.
    pub heads: Vec<(AuthorId, AuthorHead)>,
    pub signer: AuthorId,
    pub sig: Signature,
}

impl FinalHead {
    /// The head closing `epoch` after `tracker` (which has read every line up to the
    /// cut), whose own lines started after `before` and spanned `ts_range`.
    pub fn sign(
        epoch: u64,
        before: &Tracker,
        tracker: &Tracker,
        ts_range: (u64, u64),
        identity: &Identity,
    ) -> FinalHead {
        let mut heads: Vec<(AuthorId, AuthorHead)> =
            tracker.heads.iter().map(|(a, h)| (*a, *h)).collect();
        heads.sort_unstable_by_key(|(a, _)| *a);
        let mut head = FinalHead {
            epoch,
            first_line: before.lines + 1,
            lines: tracker.lines,
            prev_chain: before.chain,
            chain: tracker.chain,
            digest: tracker.digest(),
            max_clock: tracker.max_clock,
            first_ts: ts_range.0,
            last_ts: ts_range.1,
            heads,
            signer: identity.author(),
            sig: crate::hex::Hex([0; 64]),
        };
        head.sig = identity.sign(head.signed_text().as_bytes());
        head
    }

    /// Every line but the last: the bytes the signature covers.
    pub fn signed_text(&self) -> String {
        let mut s = format!(
            "{MAGIC}\nepoch {}\nfirst-line {}\nlines {}\nprev-chain {}\nchain {}\ndigest {}\nmax-clock {}\nfirst-ts {}\nlast-ts {}\nauthors {}\n",
            self.epoch,
            self.first_line,
            self.lines,
            self.prev_chain,
            self.chain,
            self.digest,
            self.max_clock,
            self.first_ts,
            self.last_ts,
            self.heads.len()
        );
        for (author, h) in &self.heads {
            s.push_str(&format!("head {author} {} {} {}\n", h.seq, h.id, h.clock));
        }
        s.push_str(&format!("signer {}\n", self.signer));
        s
    }

    pub fn encode(&self) -> String {
        format!("{}sig {}\n", self.signed_text(), self.sig)
    }

    /// Reads a final head, refusing any spelling but the one [`FinalHead::encode`]
    /// writes and a digest that does not follow from its heads. The signature is
    /// checked apart ([`FinalHead::signature_ok`]), since who should have signed is the
    /// reader's to say.
    pub fn parse(text: &str) -> Result<FinalHead, String> {
        let mut lines = text.split_terminator('\n');
        if lines.next() != Some(MAGIC) {
            return Err(format!("does not start with `{MAGIC}`"));
        }
        let mut field = |name: &str| -> Result<&str, String> {
            let line = lines.next().ok_or(format!("ends before `{name}`"))?;
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(' '))
                .ok_or_else(|| {
                    format!(
                        "expected `{name} …`, found `{}`",
                        line.chars().take(40).collect::<String>()
                    )
                })
        };
        let number = |v: &str, name: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("`{name}` is not a number"))
        };
        let hash = |v: &str, name: &str| {
            v.parse::<Hash>()
                .map_err(|_| format!("`{name}` is not 64 hex digits"))
        };
        let epoch = number(field("epoch")?, "epoch")?;
        let first_line = number(field("first-line")?, "first-line")?;
        let last = number(field("lines")?, "lines")?;
        let prev_chain = hash(field("prev-chain")?, "prev-chain")?;
        let chain_hash = hash(field("chain")?, "chain")?;
        let digest = hash(field("digest")?, "digest")?;
        let max_clock = number(field("max-clock")?, "max-clock")?;
        let first_ts = number(field("first-ts")?, "first-ts")?;
        let last_ts = number(field("last-ts")?, "last-ts")?;
        let count = number(field("authors")?, "authors")?;
        if count > MAX_AUTHORS as u64 {
            return Err(format!("{count} authors is more than a final head holds"));
        }
        let mut heads = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let v: Vec<&str> = field("head")?.split(' ').collect();
            let [author, seq, id, clock] = v[..] else {
                return Err("a `head` line needs author, seq, id and clock".into());
            };
            let author: AuthorId = author
                .parse()
                .map_err(|_| "a head's author is not 64 hex digits")?;
            let head = AuthorHead {
                seq: number(seq, "head seq")?,
                id: hash(id, "head id")?,
                clock: number(clock, "head clock")?,
            };
            heads.push((author, head));
        }
        let signer: AuthorId = field("signer")?
            .parse()
            .map_err(|_| "`signer` is not 64 hex digits")?;
        let sig: Signature = field("sig")?
            .parse()
            .map_err(|_| "`sig` is not 128 hex digits")?;
        let head = FinalHead {
            epoch,
            first_line,
            lines: last,
            prev_chain,
            chain: chain_hash,
            digest,
            max_clock,
            first_ts,
            last_ts,
            heads,
            signer,
            sig,
        };
        if head.encode() != text {
            return Err(
                "not in the exact form a node writes (order, spacing, case or extra bytes)".into(),
            );
        }
        if !head.heads.windows(2).all(|w| w[0].0 < w[1].0) {
            return Err("authors are not in ascending order, or one is listed twice".into());
        }
        if head.epoch == 0 || head.first_line == 0 || head.lines < head.first_line {
            return Err("epoch, first-line and lines are out of range".into());
        }
        if chain::digest(&head.head_list()) != head.digest {
            return Err("digest is not the digest of its heads".into());
        }
        Ok(head)
    }

    pub fn signature_ok(&self) -> bool {
        crate::signature::verify(&self.signer, self.signed_text().as_bytes(), &self.sig)
    }

    pub fn head_list(&self) -> Vec<Head> {
        self.heads
            .iter()
            .map(|(author, h)| Head {
                author: *author,
                seq: h.seq,
                id: h.id,
            })
            .collect()
    }

    /// The checker's state after this epoch's last line: where the next line goes on.
    pub fn tracker(&self) -> Tracker {
        Tracker {
            chain: self.chain,
            lines: self.lines,
            max_clock: self.max_clock,
            heads: self.heads.iter().copied().collect(),
            starts: Default::default(),
        }
    }

    /// The first seq of `author` after this head (1 for an author it does not hold).
    pub fn next_seq(&self, author: &AuthorId) -> u64 {
        self.heads
            .binary_search_by_key(author, |(a, _)| *a)
            .map_or(1, |i| self.heads[i].1.seq + 1)
    }
}

/// The directory beside the box that holds the closed epochs.
pub fn epochs_dir(box_path: &Path) -> PathBuf {
    box_path.with_file_name("epochs")
}

/// The lines of epoch `n`.
pub fn epoch_box(box_path: &Path, n: u64) -> PathBuf {
    epochs_dir(box_path).join(format!("box.{n}.txt"))
}

/// The final head of epoch `n`: kept when the epoch's lines are deleted.
pub fn epoch_head(box_path: &Path, n: u64) -> PathBuf {
    epochs_dir(box_path).join(format!("box.{n}.head"))
}

/// The live box being written by an archive; renamed over the box to commit it.
pub fn next_box(box_path: &Path) -> PathBuf {
    box_path.with_extension("txt.next")
}

/// One closed epoch as found on disk.
#[derive(Debug, Clone)]
pub struct Epoch {
    pub n: u64,
    pub head: FinalHead,
    /// Whether its lines are still there (retention may have deleted them).
    pub lines_present: bool,
}

/// The numbers of the final heads in the epochs directory, in order.
fn head_numbers(box_path: &Path) -> Result<Vec<u64>> {
    let dir = epochs_dir(box_path);
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.with_context(|| format!("cannot read {}", dir.display()))?,
    };
    let mut numbers = Vec::new();
    for entry in entries {
        let name = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .file_name();
        let Some(n) = name
            .to_str()
            .and_then(|s| s.strip_prefix("box."))
            .and_then(|s| s.strip_suffix(".head"))
            .filter(|s| !s.starts_with('0'))
            .and_then(|s| s.parse::<u64>().ok())
        else {
            continue;
        };
        numbers.push(n);
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// Every closed epoch, each final head read and checked on its own and against the one
/// before (numbers 1, 2, … with none missing, lines and chain continuing).
pub fn list(box_path: &Path) -> Result<Vec<Epoch>> {
    let mut epochs: Vec<Epoch> = Vec::new();
    for (i, n) in head_numbers(box_path)?.into_iter().enumerate() {
        let path = epoch_head(box_path, n);
        if n != i as u64 + 1 {
            bail!(
                "{} is there but the final head of epoch {} is missing",
                path.display(),
                i + 1
            );
        }
        let text = read_small(&path)?;
        let head = FinalHead::parse(&text)
            .map_err(|why| anyhow::anyhow!("{} is not a final head: {why}", path.display()))?;
        if head.epoch != n {
            bail!("{} says it closes epoch {}", path.display(), head.epoch);
        }
        let (lines, chain) = epochs
            .last()
            .map_or((0, chain::GENESIS), |e| (e.head.lines, e.head.chain));
        if head.first_line != lines + 1 || head.prev_chain != chain {
            bail!(
                "{} does not continue from the epoch before it (first line {}, expected {}; or another chain hash)",
                path.display(),
                head.first_line,
                lines + 1
            );
        }
        if !head.signature_ok() {
            bail!(
                "{} has a signature that does not check: the final head was altered",
                path.display()
            );
        }
        let lines_present = epoch_box(box_path, n).exists();
        epochs.push(Epoch {
            n,
            head,
            lines_present,
        });
    }
    Ok(epochs)
}

/// A final head is a few hundred bytes plus 180 a author: more than this is not one.
fn read_small(path: &Path) -> Result<String> {
    use std::io::Read;
    let limit = 256 + 200 * MAX_AUTHORS as u64;
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(limit).read_to_string(&mut text))
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text)
}

/// How the live box's first line relates to the last final head.
#[derive(Debug, PartialEq, Eq)]
enum Link {
    /// The box is empty or its first line chains from the final head: the archive
    /// that closed the epoch is complete.
    Continues,
    /// Its first line chains from the head before the last epoch: the box still holds
    /// the epoch's lines, so the archive was cut short before its commit.
    Uncommitted,
    Broken,
}

fn link(box_path: &Path, last: &FinalHead) -> Result<Link> {
    use std::io::{BufRead, BufReader, Read};
    let file = match std::fs::File::open(box_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Link::Continues),
        other => other.with_context(|| format!("cannot open {}", box_path.display()))?,
    };
    let mut first = Vec::new();
    BufReader::new(file.take(1 << 20))
        .read_until(b'\n', &mut first)
        .with_context(|| format!("cannot read {}", box_path.display()))?;
    if first.is_empty() {
        return Ok(Link::Continues);
    }
    let Some(line) = first
        .strip_suffix(b"\n")
        .and_then(|l| std::str::from_utf8(l).ok())
        .and_then(|l| super::format::parse_line(l).ok())
    else {
        // A torn only line: the start's own checks deal with it, from the head.
        return Ok(Link::Continues);
    };
    let id = line.message.id;
    Ok(if line.chain == chain::step(&last.chain, &id) {
        Link::Continues
    } else if line.chain == chain::step(&last.prev_chain, &id) {
        Link::Uncommitted
    } else {
        Link::Broken
    })
}

/// Undoes what an archive cut short left behind (the box itself is only ever replaced
/// whole, by one rename), and returns the final head the live box continues from.
pub fn settle(box_path: &Path) -> Result<Option<FinalHead>> {
    remove_if_there(&next_box(box_path))?;
    remove_next_index(box_path);
    remove_epoch_temporaries(box_path)?;
    loop {
        let epochs = list(box_path)?;
        remove_lines_without_head(box_path, epochs.last().map_or(0, |e| e.n))?;
        let Some(last) = epochs.last() else {
            return Ok(None);
        };
        let n = last.n;
        remove_if_there(&epoch_box(box_path, n).with_extension("txt.tmp"))?;
        match link(box_path, &last.head)? {
            Link::Continues => return Ok(Some(last.head.clone())),
            Link::Uncommitted => {
                crate::warning!(
                    "an archive of epoch {n} was interrupted before it replaced the box; the box still holds every line, so the epoch's files are removed"
                );
                // The head first: an epoch's lines without a head are a leftover the
                // next archive overwrites.
                remove_if_there(&epoch_head(box_path, n))?;
                remove_if_there(&epoch_box(box_path, n))?;
            }
            Link::Broken => bail!(
                "the first line of {} does not continue from the final head of epoch {n} ({}): the box or the epoch was replaced; run `dshare verify`",
                box_path.display(),
                epoch_head(box_path, n).display()
            ),
        }
    }
}

/// The files of the epochs directory, by name (none without the directory).
fn epoch_files(box_path: &Path) -> Result<Vec<(String, PathBuf)>> {
    let dir = epochs_dir(box_path);
    let entries = match std::fs::read_dir(&dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other.with_context(|| format!("cannot read {}", dir.display()))?,
    };
    Ok(entries
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path())))
        .collect())
}

/// Removes what an archive was writing when it stopped: an epoch's lines or head
/// not yet renamed into place (`box.<n>.txt.tmp`, `box.<n>.head.tmp`). Nothing else
/// in the directory ends in `.tmp`.
fn remove_epoch_temporaries(box_path: &Path) -> Result<()> {
    for (name, path) in epoch_files(box_path)? {
        if name.starts_with("box.") && name.ends_with(".tmp") {
            remove_if_there(&path)?;
        }
    }
    Ok(())
}

/// Removes the lines of an epoch after `last` (the last one with a final head): an
/// archive stopped between renaming them into place and writing their head, so the
/// live box still holds every one of them.
fn remove_lines_without_head(box_path: &Path, last: u64) -> Result<()> {
    for (name, path) in epoch_files(box_path)? {
        let n = name
            .strip_prefix("box.")
            .and_then(|s| s.strip_suffix(".txt"))
            .filter(|s| !s.starts_with('0'))
            .and_then(|s| s.parse::<u64>().ok());
        if n.is_some_and(|n| n > last) {
            crate::warning!(
                "{} has no final head (an archive stopped before writing it); the box still holds its lines, so it is removed",
                path.display()
            );
            remove_if_there(&path)?;
        }
    }
    Ok(())
}

/// Removes what an archive that did not complete left of the next box's index (its
/// `.index` and runs beside the box, named after the next box: `box.txt.index`,
/// `box.txt.order-F-L`).
pub(super) fn remove_next_index(box_path: &Path) {
    let next = next_box(box_path);
    let _ = std::fs::remove_file(super::index_path(&next));
    let (Some(dir), Some(stem)) = (
        box_path.parent(),
        next.file_stem()
            .and_then(|s| s.to_str())
            .map(|s| format!("{s}.order-")),
    ) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    for entry in entries.flatten() {
        if entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(&stem))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn remove_if_there(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

/// Where a late joiner records the authors whose history it holds from a seq above 1
/// on: one line `<author> <seq> <id>` each, meaning "this node's first line of
/// `author` is seq + 1, and names `id` as its prev" (docs/FORMAT.md §12).
pub fn starts_path(box_path: &Path) -> PathBuf {
    box_path.with_extension("starts")
}

/// The starts recorded beside the box (none when the file is missing). A damaged
/// line stops the start: guessing would let any later line of that author pass.
pub fn read_starts(box_path: &Path) -> Result<std::collections::HashMap<AuthorId, AuthorHead>> {
    let path = starts_path(box_path);
    let text = match std::fs::read_to_string(&path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        other => other.with_context(|| format!("cannot read {}", path.display()))?,
    };
    let mut starts = std::collections::HashMap::new();
    for (i, line) in text.split_terminator('\n').enumerate() {
        let parsed = parse_start(line).with_context(|| {
            format!(
                "{} line {}: not `<author> <seq> <id>`",
                path.display(),
                i + 1
            )
        })?;
        if starts.insert(parsed.0, parsed.1).is_some() {
            bail!(
                "{} line {}: the author is listed twice",
                path.display(),
                i + 1
            );
        }
    }
    Ok(starts)
}

fn parse_start(line: &str) -> Option<(AuthorId, AuthorHead)> {
    let mut parts = line.split(' ');
    let author: AuthorId = parts.next()?.parse().ok()?;
    let seq: u64 = parts.next()?.parse().ok()?;
    let id: Hash = parts.next()?.parse().ok()?;
    let head = AuthorHead { seq, id, clock: 0 };
    (parts.next().is_none() && seq > 0 && format_start(&author, &head) == format!("{line}\n"))
        .then_some((author, head))
}

fn format_start(author: &AuthorId, head: &AuthorHead) -> String {
    format!("{author} {} {}\n", head.seq, head.id)
}

/// Appends a start durably (file and, when it is new, the directory): it must be on
/// disk before the first line it allows.
pub fn append_start(box_path: &Path, author: &AuthorId, head: &AuthorHead) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = starts_path(box_path);
    let new = !path.exists();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(crate::home::NO_FOLLOW)
        .open(&path)?;
    f.write_all(format_start(author, head).as_bytes())?;
    f.sync_all()?;
    if new && let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::Hex;

    fn head() -> (FinalHead, Identity) {
        let identity = Identity::generate();
        let mut tracker = Tracker::default();
        for (i, author) in [Hex([2u8; 32]), Hex([1u8; 32])].into_iter().enumerate() {
            tracker.heads.insert(
                author,
                AuthorHead {
                    seq: 3 + i as u64,
                    id: Hex([7 + i as u8; 32]),
                    clock: 40 + i as u64,
                },
            );
        }
        (tracker.lines, tracker.chain, tracker.max_clock) = (7, Hex([9; 32]), 41);
        let head = FinalHead::sign(1, &Tracker::default(), &tracker, (10, 20), &identity);
        (head, identity)
    }

    #[test]
    fn a_final_head_reads_back_as_written_and_its_signature_checks() {
        let (head, identity) = head();
        let text = head.encode();
        assert!(
            text.starts_with("dshare-epoch/1\nepoch 1\nfirst-line 1\nlines 7\n"),
            "{text}"
        );
        let back = FinalHead::parse(&text).unwrap();
        assert_eq!(back, head);
        assert!(back.signature_ok());
        assert_eq!(back.signer, identity.author());
        assert_eq!(
            back.heads[0].0,
            Hex([1u8; 32]),
            "authors in ascending order"
        );
        assert_eq!(back.next_seq(&Hex([2u8; 32])), 4);
        assert_eq!(back.next_seq(&Hex([3u8; 32])), 1);
        let t = back.tracker();
        assert_eq!(
            (t.lines, t.chain, t.digest()),
            (7, Hex([9; 32]), back.digest)
        );
    }

    #[test]
    fn any_other_spelling_a_wrong_digest_or_signature_is_refused() {
        let (head, _) = head();
        let text = head.encode();
        for (from, to) in [
            ("lines 7\n", "lines 07\n"),
            ("lines 7\n", "lines +7\n"),
            ("epoch 1\n", "epoch  1\n"),
            ("dshare-epoch/1\n", "dshare-epoch/2\n"),
            ("authors 2\n", "authors 3\n"),
        ] {
            assert!(
                FinalHead::parse(&text.replacen(from, to, 1)).is_err(),
                "{to:?}"
            );
        }
        let upper = text.replacen(
            &head.digest.to_hex(),
            &head.digest.to_hex().to_uppercase(),
            1,
        );
        assert_ne!(upper, text);
        assert!(FinalHead::parse(&upper).is_err());
        assert!(
            FinalHead::parse(&format!("{text}\n")).is_err(),
            "bytes after the end"
        );
        assert!(
            FinalHead::parse(&text[..text.len() - 1]).is_err(),
            "no final line feed"
        );
        let mut forged = head.clone();
        forged.digest = Hex([0; 32]);
        let err = FinalHead::parse(&forged.encode()).unwrap_err();
        assert!(err.contains("digest"), "{err}");
        let mut moved = head.clone();
        moved.lines = 6;
        let moved = FinalHead::parse(&moved.encode()).unwrap();
        assert!(
            !moved.signature_ok(),
            "a changed figure breaks the signature"
        );
        let huge = text.replacen("authors 2\n", "authors 99999999999\n", 1);
        assert!(FinalHead::parse(&huge).unwrap_err().contains("more than"));
    }

    #[test]
    fn starts_are_read_in_one_spelling_only() {
        let dir = tempfile::tempdir().unwrap();
        let box_path = dir.path().join("box.txt");
        assert!(read_starts(&box_path).unwrap().is_empty());
        let author = Hex([5u8; 32]);
        let start = AuthorHead {
            seq: 20,
            id: Hex([6u8; 32]),
            clock: 0,
        };
        append_start(&box_path, &author, &start).unwrap();
        assert_eq!(read_starts(&box_path).unwrap()[&author], start);
        let text = std::fs::read_to_string(starts_path(&box_path)).unwrap();
        std::fs::write(starts_path(&box_path), text.replace(" 20 ", " 020 ")).unwrap();
        assert!(read_starts(&box_path).is_err());
        std::fs::write(starts_path(&box_path), format!("{text}{text}")).unwrap();
        assert!(read_starts(&box_path).is_err(), "an author twice");
    }
}
