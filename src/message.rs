//! A message: its fields, the canonical encoding its id and signature cover, and the
//! checks every message passes before it is stored, whoever sent it.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::hex::{Hash, Hex};
use crate::{identity, signature};

pub use crate::signature::{AuthorId, Signature};

/// Largest body, in bytes of UTF-8. Large enough for a log excerpt or a release note,
/// small enough that a sealed push of one message fits in a URL.
pub const MAX_BODY: usize = 64 * 1024;

/// The first line of the canonical encoding: names the format version, and keeps
/// signatures made for dshare from being valid anywhere else.
pub const CANONICAL_TAG: &str = "dshare/1";

/// Clocks and sequence numbers above this are refused: they stay exact in every JSON
/// reader (2^53) and leave room that arithmetic on them can never overflow.
pub const MAX_COUNTER: u64 = (1 << 53) - 1;

/// One message, immutable once signed. The order of fields here is the order of keys
/// in the box file and in `--json` output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Message {
    pub id: Hash,
    pub author: AuthorId,
    pub seq: u64,
    pub prev: Option<Hash>,
    pub clock: u64,
    /// Milliseconds since the Unix epoch, as the author's clock said. Informational.
    pub ts: u64,
    pub body: String,
    pub sig: Signature,
}

/// The fields an author fills in; signing one gives a [`Message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Draft<'a> {
    pub author: AuthorId,
    pub seq: u64,
    pub prev: Option<Hash>,
    pub clock: u64,
    pub ts: u64,
    pub body: &'a str,
}

/// The bytes a message's id is the SHA-256 of, and its signature is over
/// (docs/FORMAT.md): one `name value` line per field, then the body's byte length on
/// its own line and the body bytes. Every field but the body has a fixed alphabet and
/// the body's length is given, so no two messages share an encoding.
pub fn canonical(d: &Draft<'_>) -> Vec<u8> {
    // Written byte by byte into one buffer of the right size: this runs for every
    // message signed, checked, and read at start-up.
    let mut out = Vec::with_capacity(CANONICAL_TAG.len() + 250 + d.body.len());
    out.extend_from_slice(CANONICAL_TAG.as_bytes());
    out.extend_from_slice(b"\nauthor ");
    crate::hex::push(&mut out, &d.author.0);
    out.extend_from_slice(b"\nseq ");
    push_decimal(&mut out, d.seq);
    out.extend_from_slice(b"\nprev ");
    match &d.prev {
        Some(p) => crate::hex::push(&mut out, &p.0),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b"\nclock ");
    push_decimal(&mut out, d.clock);
    out.extend_from_slice(b"\nts ");
    push_decimal(&mut out, d.ts);
    out.extend_from_slice(b"\nbody ");
    push_decimal(&mut out, d.body.len() as u64);
    out.push(b'\n');
    out.extend_from_slice(d.body.as_bytes());
    out
}

/// `n` in decimal, no sign, no leading zeros.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Hash {
    Hex(Sha256::digest(bytes).into())
}

/// Why a message is refused. The text is shown to users and peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invalid {
    BodyTooLarge(usize),
    BadSeq,
    BadPrev,
    BadCounter,
    /// A clock over [`MAX_COUNTER`]: refused from peers; in a node's own box, where
    /// nodes signed such clocks before clocks were bound to wall time, reported but
    /// loaded (see [`ClockCap`]).
    ClockOverCap(u64),
    WrongId,
    BadSignature,
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Invalid::BodyTooLarge(n) => {
                write!(
                    f,
                    "body is {n} bytes; the limit is {MAX_BODY} bytes (64 KiB)"
                )
            }
            Invalid::BadSeq => f.write_str("seq must be at least 1"),
            Invalid::BadPrev => f.write_str("prev must be null exactly when seq is 1"),
            Invalid::BadCounter => write!(f, "seq and clock must be 1..={MAX_COUNTER}"),
            Invalid::ClockOverCap(clock) => write!(
                f,
                "clock {clock} is above the limit {MAX_COUNTER} (2^53 - 1)"
            ),
            Invalid::WrongId => f.write_str("id is not the SHA-256 of the canonical encoding"),
            Invalid::BadSignature => f.write_str("signature does not verify for this author"),
        }
    }
}

impl std::error::Error for Invalid {}

/// Whether a clock over [`MAX_COUNTER`] fails a check. Such a clock is refused from
/// the network, but lines a node already holds may carry one (signed before clocks
/// were bound to wall time): their chain, id and signature are intact, and a box
/// holding them must still load, so reading a box tolerates them and reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockCap {
    Enforce,
    Tolerate,
}

/// Refuses a body over [`MAX_BODY`] before any work is done on it.
pub fn check_body(body: &str) -> Result<(), Invalid> {
    if body.len() > MAX_BODY {
        return Err(Invalid::BodyTooLarge(body.len()));
    }
    Ok(())
}

impl Message {
    /// Signs `draft` with `key`, which must be the draft's author.
    pub fn sign(draft: &Draft<'_>, key: &identity::Identity) -> Message {
        debug_assert_eq!(draft.author, key.author());
        let bytes = canonical(draft);
        Message {
            id: sha256(&bytes),
            author: draft.author,
            seq: draft.seq,
            prev: draft.prev,
            clock: draft.clock,
            ts: draft.ts,
            body: draft.body.to_string(),
            sig: key.sign(&bytes),
        }
    }

    pub fn draft(&self) -> Draft<'_> {
        Draft {
            author: self.author,
            seq: self.seq,
            prev: self.prev,
            clock: self.clock,
            ts: self.ts,
            body: &self.body,
        }
    }

    /// Everything that can be checked from the message alone: limits, the id, the
    /// signature. Continuity with the author's earlier messages is the store's check.
    pub fn check(&self) -> Result<(), Invalid> {
        let bytes = self.checked_canonical(ClockCap::Enforce)?;
        if !signature::verify(&self.author, &bytes, &self.sig) {
            return Err(Invalid::BadSignature);
        }
        Ok(())
    }

    /// [`Message::check`] without the signature, for a box this node wrote itself
    /// (which may hold clocks over the cap: [`ClockCap`]).
    pub fn check_without_signature(&self) -> Result<(), Invalid> {
        self.checked_canonical(ClockCap::Tolerate).map(drop)
    }

    /// The canonical encoding, once the limits and the id are checked.
    fn checked_canonical(&self, cap: ClockCap) -> Result<Vec<u8>, Invalid> {
        self.check_fields(cap)?;
        let bytes = canonical(&self.draft());
        if sha256(&bytes) != self.id {
            return Err(Invalid::WrongId);
        }
        Ok(bytes)
    }

    fn check_fields(&self, cap: ClockCap) -> Result<(), Invalid> {
        check_body(&self.body)?;
        if self.seq == 0 {
            return Err(Invalid::BadSeq);
        }
        if self.seq > MAX_COUNTER || self.clock == 0 {
            return Err(Invalid::BadCounter);
        }
        if self.clock > MAX_COUNTER && cap == ClockCap::Enforce {
            return Err(Invalid::ClockOverCap(self.clock));
        }
        if (self.seq == 1) != self.prev.is_none() {
            return Err(Invalid::BadPrev);
        }
        Ok(())
    }
}

/// [`Message::check`] for every message, on every core (see [`crate::par`]), each
/// core checking its share of the signatures as one batch: a catch-up page of 500
/// messages or a block of box lines is checked several times faster than one by one.
/// One result per message, in order; the verdicts are those of [`Message::check`]
/// (see [`crate::signature`] for why a batch cannot disagree with a single check).
pub fn check_all(messages: &[Message]) -> Vec<Result<(), Invalid>> {
    crate::par::map_runs(messages, |run| check_run(run, ClockCap::Enforce))
}

/// [`check_all`] on the calling thread, with clocks over the cap failing or not.
pub fn check_run<'a>(
    messages: impl IntoIterator<Item = &'a Message>,
    cap: ClockCap,
) -> Vec<Result<(), Invalid>> {
    let prepared: Vec<(&Message, Result<Vec<u8>, Invalid>)> = messages
        .into_iter()
        .map(|m| (m, m.checked_canonical(cap)))
        .collect();
    let items: Vec<signature::Item<'_>> = prepared
        .iter()
        .filter_map(|(m, bytes)| Some((&m.author, bytes.as_ref().ok()?.as_slice(), &m.sig)))
        .collect();
    let mut signed = signature::verify_batch(&items).into_iter();
    prepared
        .iter()
        .map(|(_, bytes)| match bytes {
            Err(e) => Err(e.clone()),
            Ok(_) if signed.next().expect("one verdict per signature") => Ok(()),
            Ok(_) => Err(Invalid::BadSignature),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;

    fn sample(key: &Identity, body: &str) -> Message {
        let draft = Draft {
            author: key.author(),
            seq: 1,
            prev: None,
            clock: 1,
            ts: 1_700_000_000_000,
            body,
        };
        Message::sign(&draft, key)
    }

    #[test]
    fn canonical_encoding_is_the_documented_text() {
        let d = Draft {
            author: Hex([0x11; 32]),
            seq: 2,
            prev: Some(Hex([0x22; 32])),
            clock: 7,
            ts: 5,
            body: "a\nb",
        };
        let expected = format!(
            "dshare/1\nauthor {}\nseq 2\nprev {}\nclock 7\nts 5\nbody 3\na\nb",
            "11".repeat(32),
            "22".repeat(32)
        );
        assert_eq!(canonical(&d), expected.as_bytes());
    }

    #[test]
    fn a_signed_message_checks_and_any_change_is_caught() {
        let key = Identity::generate();
        let m = sample(&key, "hello");
        assert_eq!(m.check(), Ok(()));

        let mut body = m.clone();
        body.body = "hellO".into();
        assert_eq!(body.check(), Err(Invalid::WrongId));

        let mut forged = sample(&key, "hellO");
        forged.sig = m.sig;
        assert_eq!(forged.check(), Err(Invalid::BadSignature));

        let other = Identity::generate();
        let mut stolen = m.clone();
        stolen.author = other.author();
        assert_eq!(stolen.check(), Err(Invalid::WrongId));
    }

    #[test]
    fn limits_are_enforced() {
        let key = Identity::generate();
        let big = "x".repeat(MAX_BODY + 1);
        assert_eq!(
            sample(&key, &big).check(),
            Err(Invalid::BodyTooLarge(MAX_BODY + 1))
        );
        assert_eq!(sample(&key, &"x".repeat(MAX_BODY)).check(), Ok(()));
        let mut m = sample(&key, "x");
        m.prev = Some(m.id);
        assert_eq!(m.check(), Err(Invalid::BadPrev));
        m.seq = 0;
        assert_eq!(m.check(), Err(Invalid::BadSeq));
    }

    #[test]
    fn a_clock_over_the_cap_is_refused_but_a_held_one_still_reads() {
        let key = Identity::generate();
        let over = Message::sign(
            &Draft {
                author: key.author(),
                seq: 1,
                prev: None,
                clock: MAX_COUNTER + 1,
                ts: 1,
                body: "poisoned",
            },
            &key,
        );
        assert_eq!(over.check(), Err(Invalid::ClockOverCap(MAX_COUNTER + 1)));
        assert_eq!(over.check_without_signature(), Ok(()));
        assert_eq!(check_run([&over], ClockCap::Tolerate), vec![Ok(())]);
        assert_eq!(
            check_run([&over], ClockCap::Enforce),
            vec![Err(Invalid::ClockOverCap(MAX_COUNTER + 1))]
        );
    }
}
