//! Sealing peer traffic: XChaCha20-Poly1305 under a key derived from the network key,
//! with a timestamp inside and a replay guard. Without the network key a request can
//! be neither read, nor forged, nor replayed.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Mutex, RwLock};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use crate::secret::Secret;

/// A sealed request older or newer than this (by the sender's clock) is refused;
/// clocks of member machines must agree to within it.
pub const WINDOW_MS: u64 = 60_000;

const KEY_ID_LEN: usize = 4;
const NONCE_LEN: usize = 24;
const TS_LEN: usize = 8;
/// Bytes a seal adds to its payload: key id, nonce, timestamp, tag.
pub const OVERHEAD: usize = KEY_ID_LEN + NONCE_LEN + TS_LEN + 16;

/// One network key, ready to seal and open.
pub struct NetworkKey {
    id: [u8; KEY_ID_LEN],
    cipher: XChaCha20Poly1305,
}

impl NetworkKey {
    /// Derives the cipher key and a short public key id from the network key, each
    /// with its own label, so the raw network key is never used directly.
    pub fn new(secret: &Secret) -> NetworkKey {
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut h = Sha256::new();
            h.update(label);
            h.update(secret.expose());
            h.finalize().into()
        };
        let key = derive(b"dshare/1 peer key\n");
        let idh = derive(b"dshare/1 key id\n");
        NetworkKey {
            id: [idh[0], idh[1], idh[2], idh[3]],
            cipher: XChaCha20Poly1305::new((&key).into()),
        }
    }

    /// `key id || nonce || AEAD(ts || plaintext)`, with `aad` bound in (the request's
    /// path, or the request's nonce for a response) so a seal cannot be moved to
    /// another place.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8], now_ms: u64) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the operating system's random generator failed");
        let mut inner = Vec::with_capacity(TS_LEN + plaintext.len());
        inner.extend_from_slice(&now_ms.to_be_bytes());
        inner.extend_from_slice(plaintext);
        let ct = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: &inner, aad })
            .expect("encryption of a bounded message cannot fail");
        let mut out = Vec::with_capacity(KEY_ID_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }
}

/// Why a sealed blob was refused. Deliberately coarse: the other side learns nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealError {
    Malformed,
    UnknownKey,
    Forged,
    Stale,
    Replayed,
    /// The replay guard holds as many nonces as it may: refused, not forgotten.
    TooMany,
}

impl std::fmt::Display for SealError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SealError::Malformed => "not a sealed message",
            SealError::UnknownKey => "sealed with a key this node does not hold",
            SealError::Forged => "seal does not open (wrong key, or altered)",
            SealError::Stale => "sealed too long ago or in the future",
            SealError::Replayed => "sealed message seen before",
            SealError::TooMany => "too many sealed requests in the last minute",
        })
    }
}

impl std::error::Error for SealError {}

/// What an opened seal held.
pub struct Opened {
    pub plaintext: Vec<u8>,
    pub nonce: [u8; NONCE_LEN],
    pub ts: u64,
}

/// The keys a node accepts: the first (primary) seals, all open. Holding an old and
/// a new key at once is what lets a network key be rotated without downtime; the set
/// can be replaced while the node runs.
pub struct Keyring {
    keys: RwLock<Vec<NetworkKey>>,
}

impl Keyring {
    pub fn new(primary: &Secret) -> Keyring {
        Keyring::from_secrets(std::slice::from_ref(primary))
    }

    /// A keyring of `secrets`, the first one primary. There must be at least one.
    pub fn from_secrets(secrets: &[Secret]) -> Keyring {
        assert!(!secrets.is_empty(), "a keyring holds at least one key");
        Keyring {
            keys: RwLock::new(secrets.iter().map(NetworkKey::new).collect()),
        }
    }

    /// A keyring that opens nothing yet (client keys before any is issued).
    pub fn empty() -> Keyring {
        Keyring {
            keys: RwLock::new(Vec::new()),
        }
    }

    /// Replaces the keys, allowing none (client keys: every one may be revoked).
    pub fn set(&self, secrets: &[Secret]) {
        *self.keys.write().expect("keyring lock") = secrets.iter().map(NetworkKey::new).collect();
    }

    /// Replaces the keys (an empty list is ignored: a node never drops its last key).
    pub fn replace(&self, secrets: &[Secret]) {
        if !secrets.is_empty() {
            *self.keys.write().expect("keyring lock") =
                secrets.iter().map(NetworkKey::new).collect();
        }
    }

    /// Seals with the primary key. Only a keyring that holds a key seals (a network
    /// keyring always does).
    pub fn seal(&self, aad: &[u8], plaintext: &[u8], now_ms: u64) -> Vec<u8> {
        self.keys.read().expect("keyring lock")[0].seal(aad, plaintext, now_ms)
    }

    /// Seals with the key whose id starts `blob` (the key that sealed a request seals
    /// its answer), or `None` if this keyring does not hold it.
    pub fn seal_as(
        &self,
        blob: &[u8],
        aad: &[u8],
        plaintext: &[u8],
        now_ms: u64,
    ) -> Option<Vec<u8>> {
        let keys = self.keys.read().expect("keyring lock");
        let key = keys
            .iter()
            .find(|k| blob.get(..KEY_ID_LEN) == Some(&k.id[..]))?;
        Some(key.seal(aad, plaintext, now_ms))
    }

    /// The public ids of the keys, primary first.
    pub fn ids(&self) -> Vec<String> {
        self.keys
            .read()
            .expect("keyring lock")
            .iter()
            .map(|k| crate::hex::encode(&k.id))
            .collect()
    }

    /// Opens `blob`, checking the timestamp against `now_ms` but not replays.
    pub fn open(&self, aad: &[u8], blob: &[u8], now_ms: u64) -> Result<Opened, SealError> {
        let opened = self.open_at_any_time(aad, blob)?;
        if !within_window(opened.ts, now_ms) {
            return Err(SealError::Stale);
        }
        Ok(opened)
    }

    /// Opens `blob` whatever its timestamp: only to learn what a member's clock said
    /// (a request too far off in time is not acted on, but its sender is told our time).
    pub fn open_at_any_time(&self, aad: &[u8], blob: &[u8]) -> Result<Opened, SealError> {
        if blob.len() < OVERHEAD {
            return Err(SealError::Malformed);
        }
        let (id, rest) = blob.split_at(KEY_ID_LEN);
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let keys = self.keys.read().expect("keyring lock");
        let key = keys
            .iter()
            .find(|k| k.id == id)
            .ok_or(SealError::UnknownKey)?;
        let inner = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| SealError::Forged)?;
        let (ts, plaintext) = inner.split_at(TS_LEN);
        let ts = u64::from_be_bytes(ts.try_into().expect("8 bytes"));
        Ok(Opened {
            plaintext: plaintext.to_vec(),
            nonce: nonce.try_into().expect("24 bytes"),
            ts,
        })
    }
}

/// Whether a seal made at `ts` by its sender's clock may be acted on at `now_ms`.
pub fn within_window(ts: u64, now_ms: u64) -> bool {
    ts.abs_diff(now_ms) <= WINDOW_MS
}

/// The public id of a key (4 bytes, hex), as `dshare keys list` shows it.
pub fn key_id(secret: &Secret) -> String {
    crate::hex::encode(&NetworkKey::new(secret).id)
}

/// Remembers the nonces of requests opened within the window, so each sealed request
/// is acted on once.
///
/// Nonces are kept in buckets by the timestamp sealed with them, [`BUCKET_MS`] each. A
/// replay carries the same timestamp (it is inside the seal), so a check looks in one
/// bucket: O(1) however many nonces are held. A bucket is dropped whole once its newest
/// timestamp is out of the window (the timestamp check refuses those anyway), which
/// costs one step per bucket, not a scan of every nonce.
///
/// Memory: at most [`ReplayGuard::MAX`] nonces, 8 bytes each (about 20 MiB with the
/// hash tables' slack). At the bound a request is refused, not remembered less: a
/// nonce forgotten early could be replayed. Only a member (the key holder) can fill it,
/// and it empties as the window moves on.
pub struct ReplayGuard {
    seen: Mutex<Buckets>,
    limit: usize,
}

impl Default for ReplayGuard {
    fn default() -> Self {
        ReplayGuard::with_limit(ReplayGuard::MAX)
    }
}

/// Width of one bucket of nonces: 12 buckets cover the two-minute span of accepted
/// timestamps, so expiring one is rare and a check touches one small table.
pub const BUCKET_MS: u64 = 10_000;

#[derive(Default)]
struct Buckets {
    /// Bucket number (timestamp / BUCKET_MS) to the nonces sealed in it. Only buckets
    /// with a timestamp inside the window, so never more than a dozen or so.
    by_time: BTreeMap<u64, HashSet<u64>>,
    held: usize,
    /// Timestamps below this may have been forgotten: a request sealed earlier is
    /// refused even if the clock stepped back and the window would take it.
    forgotten_before: u64,
}

impl Buckets {
    /// Drops every bucket whose newest timestamp is older than the window.
    fn expire(&mut self, now_ms: u64) {
        let oldest_kept = now_ms.saturating_sub(WINDOW_MS);
        while let Some(entry) = self.by_time.first_entry() {
            let bucket_end = (entry.key() + 1).saturating_mul(BUCKET_MS);
            if bucket_end > oldest_kept {
                break;
            }
            self.held -= entry.remove().len();
            self.forgotten_before = self.forgotten_before.max(bucket_end);
        }
    }
}

impl ReplayGuard {
    /// Most nonces remembered; past this, requests are refused until old ones expire.
    pub const MAX: usize = 1 << 20;

    /// A guard that holds at most `limit` nonces.
    pub fn with_limit(limit: usize) -> ReplayGuard {
        ReplayGuard {
            seen: Mutex::default(),
            limit,
        }
    }

    pub fn check(&self, opened: &Opened, now_ms: u64) -> Result<(), SealError> {
        let mut seen = self.seen.lock().expect("replay lock");
        seen.expire(now_ms);
        if opened.ts < seen.forgotten_before {
            return Err(SealError::Stale);
        }
        // Eight bytes of a random nonce: a replay repeats all of them, so it is always
        // caught; two different requests share them by chance about once in 2^44 at
        // the bound, and the second is then refused (and retried), never accepted.
        let short = u64::from_be_bytes(opened.nonce[..8].try_into().expect("8 bytes"));
        let bucket = opened.ts / BUCKET_MS;
        if seen
            .by_time
            .get(&bucket)
            .is_some_and(|nonces| nonces.contains(&short))
        {
            return Err(SealError::Replayed);
        }
        if seen.held >= self.limit {
            return Err(SealError::TooMany);
        }
        seen.by_time.entry(bucket).or_default().insert(short);
        seen.held += 1;
        Ok(())
    }

    /// Nonces held now.
    pub fn held(&self) -> usize {
        self.seen.lock().expect("replay lock").held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_with_the_key_the_place_and_the_time() {
        let secret = Secret::random();
        let ring = Keyring::new(&secret);
        let blob = ring.seal(b"/v1/push", b"hello", 1_000_000);
        let opened = ring.open(b"/v1/push", &blob, 1_000_500).unwrap();
        assert_eq!(opened.plaintext, b"hello");

        assert_eq!(
            ring.open(b"/v1/hello", &blob, 1_000_000).err(),
            Some(SealError::Forged)
        );
        let other = Keyring::new(&Secret::random());
        assert_eq!(
            other.open(b"/v1/push", &blob, 1_000_000).err(),
            Some(SealError::UnknownKey)
        );
        assert_eq!(
            ring.open(b"/v1/push", &blob, 1_000_000 + WINDOW_MS + 1)
                .err(),
            Some(SealError::Stale)
        );
        let mut flipped = blob.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(
            ring.open(b"/v1/push", &flipped, 1_000_000).err(),
            Some(SealError::Forged)
        );
        assert_eq!(
            ring.open(b"/v1/push", &blob[..20], 1_000_000).err(),
            Some(SealError::Malformed)
        );
        let text = String::from_utf8_lossy(&blob);
        assert!(!text.contains("hello"));
    }

    #[test]
    fn a_request_is_accepted_once() {
        let ring = Keyring::new(&Secret::random());
        let guard = ReplayGuard::default();
        let blob = ring.seal(b"x", b"y", 5_000_000);
        let opened = ring.open(b"x", &blob, 5_000_000).unwrap();
        assert_eq!(guard.check(&opened, 5_000_000), Ok(()));
        let again = ring.open(b"x", &blob, 5_000_001).unwrap();
        assert_eq!(guard.check(&again, 5_000_001), Err(SealError::Replayed));
    }

    /// An opened request with nonce number `i` sealed at `ts` (no cipher needed: the
    /// guard sees only the nonce and the timestamp).
    fn opened(i: u64, ts: u64) -> Opened {
        let mut nonce = [7u8; NONCE_LEN];
        nonce[..8].copy_from_slice(&i.to_be_bytes());
        Opened {
            plaintext: Vec::new(),
            nonce,
            ts,
        }
    }

    /// Item 14: with more than half a million live nonces, every check used to scan
    /// them all. The same checks against a guard holding 10 and one holding 600,000.
    #[test]
    fn a_check_costs_the_same_with_ten_or_six_hundred_thousand_live_nonces() {
        let now = 50_000_000;
        let time_checks = |live: u64| {
            let guard = ReplayGuard::default();
            for i in 0..live {
                // Spread over the window, as a flood over a minute would be.
                let ts = now - WINDOW_MS + 1 + i % WINDOW_MS;
                assert_eq!(guard.check(&opened(i, ts), now), Ok(()));
            }
            let started = std::time::Instant::now();
            for i in 0..300 {
                assert_eq!(guard.check(&opened(1 << 40 | i, now), now), Ok(()));
            }
            started.elapsed()
        };
        let few = time_checks(10);
        let many = time_checks(600_000);
        eprintln!("300 checks: {few:?} with 10 live nonces, {many:?} with 600,000");
        assert!(
            many < few * 20 + std::time::Duration::from_millis(20),
            "{few:?} vs {many:?}"
        );
    }

    #[test]
    fn nonces_expire_a_bucket_at_a_time_once_out_of_the_window() {
        let guard = ReplayGuard::default();
        let t0 = 100 * BUCKET_MS;
        for i in 0..5 {
            assert_eq!(guard.check(&opened(i, t0 + i), t0), Ok(()));
        }
        let next_bucket = t0 + BUCKET_MS;
        assert_eq!(guard.check(&opened(9, next_bucket), next_bucket), Ok(()));
        assert_eq!(guard.held(), 6);
        // Still inside the window for the newest of the first bucket: all kept.
        let t = t0 + 4 + WINDOW_MS;
        assert_eq!(guard.check(&opened(3, t0 + 4), t), Err(SealError::Replayed));
        assert_eq!(guard.held(), 6);
        // The first bucket's end leaves the window: its five go, the sixth stays.
        let t = t0 + BUCKET_MS + WINDOW_MS;
        assert_eq!(guard.check(&opened(20, t), t), Ok(()));
        assert_eq!(guard.held(), 2);
        assert_eq!(
            guard.check(&opened(9, next_bucket), t),
            Err(SealError::Replayed)
        );
    }

    #[test]
    fn at_the_bound_requests_are_refused_not_forgotten_until_the_window_moves_on() {
        let guard = ReplayGuard::with_limit(100);
        let t0 = 10 * WINDOW_MS;
        for i in 0..100 {
            assert_eq!(guard.check(&opened(i, t0), t0), Ok(()));
        }
        assert_eq!(guard.check(&opened(100, t0), t0), Err(SealError::TooMany));
        // Every nonce is still remembered at the bound.
        assert_eq!(guard.check(&opened(0, t0), t0), Err(SealError::Replayed));
        assert_eq!(guard.held(), 100);
        let later = t0 + WINDOW_MS + BUCKET_MS;
        assert_eq!(guard.check(&opened(100, later), later), Ok(()));
        assert_eq!(guard.held(), 1);
    }

    #[test]
    fn after_the_clock_steps_back_a_forgotten_nonce_is_refused_not_accepted_again() {
        let guard = ReplayGuard::default();
        let t0 = 10 * WINDOW_MS;
        assert_eq!(guard.check(&opened(1, t0), t0), Ok(()));
        let later = t0 + WINDOW_MS + BUCKET_MS;
        assert_eq!(guard.check(&opened(2, later), later), Ok(()));
        // The clock steps back: the first request is inside the window again, but its
        // nonce was forgotten, so it must not pass as new.
        assert_eq!(guard.check(&opened(1, t0), t0), Err(SealError::Stale));
    }
}

#[cfg(test)]
mod rotation_tests {
    use super::*;

    #[test]
    fn a_keyring_opens_with_every_key_and_seals_with_the_first() {
        let (old, new) = (Secret::random(), Secret::random());
        let old_only = Keyring::new(&old);
        let both = Keyring::from_secrets(&[new.clone(), old.clone()]);
        let from_old = old_only.seal(b"p", b"x", 10_000_000);
        assert!(both.open(b"p", &from_old, 10_000_000).is_ok());
        let from_both = both.seal(b"p", b"x", 10_000_000);
        assert_eq!(
            old_only.open(b"p", &from_both, 10_000_000).err(),
            Some(SealError::UnknownKey)
        );
        old_only.replace(&[old.clone(), new.clone()]);
        assert!(old_only.open(b"p", &from_both, 10_000_000).is_ok());
        assert_eq!(both.ids()[0], key_id(&new));
    }
}
