//! Author ids and signatures, and checking ed25519 signatures one at a time or many at once, by one rule.
//!
//! Every node must accept exactly the same messages, so a signature is valid or not
//! whatever path checks it: a push of one message, a catch-up page of 500, or
//! `dshare verify` over a whole box. The rule is the one of ZIP 215 (the cofactored
//! equation `[8][s]B = [8]R + [8][k]A`, `s` below the group order, `A` and `R` points
//! of the curve), which batch verification computes exactly, plus one rule of
//! dshare's own: an author key of small order is refused, because anyone can sign for
//! such a key. Every signature an RFC 8032 signer makes is valid under it.
//!
//! The strict single check used before (ed25519-dalek's `verify_strict`, cofactorless)
//! cannot be batched: a signature whose `R` carries a small-order component can pass a
//! randomised batch and fail alone, so nodes could disagree. Under this rule a batch
//! passes exactly when each of its signatures would pass alone, so a batch that fails
//! is checked again one by one to find which.

use std::collections::HashMap;

use curve25519_dalek::edwards::CompressedEdwardsY;
use ed25519_zebra::batch;
use ed25519_zebra::{VerificationKey, VerificationKeyBytes};

use crate::hex::Hex;

/// An author is an ed25519 public key. Defined here, below messages and identities,
/// because both name it and checking a signature needs nothing else.
pub type AuthorId = Hex<32>;
/// An ed25519 signature.
pub type Signature = Hex<64>;

/// Whether `sig` is `author`'s signature over `bytes`.
pub fn verify(author: &AuthorId, bytes: &[u8], sig: &Signature) -> bool {
    usable_key(author)
        && VerificationKey::try_from(author.0)
            .is_ok_and(|key| key.verify(&zebra_signature(sig), bytes).is_ok())
}

/// One signature to check: who signed, what, and the signature.
pub type Item<'a> = (&'a AuthorId, &'a [u8], &'a Signature);

/// [`verify`] for every item, in order, checked as one batch (about twice as fast per
/// signature, more when one author signed them all). Runs on the calling thread.
pub fn verify_batch(items: &[Item<'_>]) -> Vec<bool> {
    if items.len() < 2 {
        return items.iter().map(|(a, b, s)| verify(a, b, s)).collect();
    }
    let mut usable: HashMap<AuthorId, bool> = HashMap::new();
    let mut verdicts = Vec::with_capacity(items.len());
    let mut queued = Vec::with_capacity(items.len());
    let mut verifier = batch::Verifier::new();
    for (i, (author, bytes, sig)) in items.iter().enumerate() {
        let ok = *usable.entry(**author).or_insert_with(|| usable_key(author));
        verdicts.push(ok);
        if ok {
            let item = batch::Item::from((
                VerificationKeyBytes::from(author.0),
                zebra_signature(sig),
                *bytes,
            ));
            verifier.queue(item.clone());
            queued.push((i, item));
        }
    }
    if verifier
        .verify(BatchRandom::for_batch(queued.len()))
        .is_err()
    {
        // At least one is bad: the same rule, one at a time, says which.
        for (i, item) in queued {
            verdicts[i] = item.verify_single().is_ok();
        }
    }
    verdicts
}

/// An author key must be a point of the curve and not of small order: for a key of
/// small order, a signature valid for every message is easy to make.
fn usable_key(author: &AuthorId) -> bool {
    CompressedEdwardsY(author.0)
        .decompress()
        .is_some_and(|point| !point.is_small_order())
}

fn zebra_signature(sig: &Signature) -> ed25519_zebra::Signature {
    ed25519_zebra::Signature::from_bytes(&sig.0)
}

/// The batch's random coefficients, from the operating system: an attacker who could
/// predict them could make a bad signature cancel out in a batch. Drawn for the whole
/// batch in one call (one call per signature was a system call per signature).
struct BatchRandom {
    pool: Vec<u8>,
    taken: usize,
}

/// Bytes the batch verifier draws for each signature's coefficient (a `u128`).
const COEFFICIENT_BYTES: usize = 16;

impl BatchRandom {
    fn for_batch(signatures: usize) -> BatchRandom {
        BatchRandom {
            pool: os_random(signatures * COEFFICIENT_BYTES),
            taken: 0,
        }
    }
}

fn os_random(n: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random generator works");
    bytes
}

impl rand_core::RngCore for BatchRandom {
    fn next_u32(&mut self) -> u32 {
        rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        if self.pool.len() - self.taken < dest.len() {
            // More than the batch was expected to draw: never reuse a byte.
            self.pool = os_random(dest.len().max(1024));
            self.taken = 0;
        }
        dest.copy_from_slice(&self.pool[self.taken..self.taken + dest.len()]);
        self.taken += dest.len();
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for BatchRandom {}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION};
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::scalar::Scalar;
    use sha2::{Digest, Sha512};

    /// Signs `msg` with secret scalar `a`, adding `torsion` to the nonce point `R`:
    /// with a torsion component the signature passes the cofactored equation and fails
    /// the cofactorless one (the case where batch and strict single checks differ).
    fn sign_raw(a: Scalar, msg: &[u8], torsion: EdwardsPoint) -> (AuthorId, Signature) {
        let public = (a * B).compress().to_bytes();
        let r = Scalar::from_bytes_mod_order_wide(&Sha512::digest(msg).into());
        let big_r = (r * B + torsion).compress().to_bytes();
        let mut h = Sha512::new();
        h.update(big_r);
        h.update(public);
        h.update(msg);
        let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
        let s = r + k * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&big_r);
        sig[32..].copy_from_slice(s.as_bytes());
        (Hex(public), Hex(sig))
    }

    /// An RFC 8032 signer (ed25519-dalek, as `Identity` signs), without the identity
    /// module: it sits above this one.
    struct Signer(ed25519_dalek::SigningKey);

    impl Signer {
        fn new() -> Signer {
            Signer(ed25519_dalek::SigningKey::from_bytes(&[0x5a; 32]))
        }

        fn author(&self) -> AuthorId {
            Hex(self.0.verifying_key().to_bytes())
        }

        fn sign(&self, bytes: &[u8]) -> Signature {
            use ed25519_dalek::Signer as _;
            Hex(self.0.sign(bytes).to_bytes())
        }
    }

    fn secret(n: u8) -> Scalar {
        Scalar::from_bytes_mod_order([n; 32])
    }

    #[test]
    fn honest_signatures_pass_alone_and_in_a_batch() {
        let key = Signer::new();
        let bodies: Vec<Vec<u8>> = (0..40).map(|i| format!("m{i}").into_bytes()).collect();
        let author = key.author();
        let sigs: Vec<Signature> = bodies.iter().map(|b| key.sign(b)).collect();
        let items: Vec<Item<'_>> = bodies
            .iter()
            .zip(&sigs)
            .map(|(b, s)| (&author, b.as_slice(), s))
            .collect();
        assert!(items.iter().all(|(a, b, s)| verify(a, b, s)));
        assert_eq!(verify_batch(&items), vec![true; 40]);
    }

    #[test]
    fn batch_coefficients_are_never_reused_even_past_the_pool() {
        use rand_core::RngCore;
        let mut rng = BatchRandom::for_batch(2);
        let draws: Vec<[u8; COEFFICIENT_BYTES]> = (0..5)
            .map(|_| {
                let mut c = [0u8; COEFFICIENT_BYTES];
                rng.fill_bytes(&mut c);
                c
            })
            .collect();
        for (i, a) in draws.iter().enumerate() {
            assert_ne!(*a, [0; COEFFICIENT_BYTES]);
            assert!(draws[i + 1..].iter().all(|b| b != a), "draw {i} repeats");
        }
    }

    #[test]
    fn a_bad_signature_in_a_batch_is_found_and_only_it() {
        let key = Signer::new();
        let author = key.author();
        let bodies: Vec<Vec<u8>> = (0..20).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<Signature> = bodies.iter().map(|b| key.sign(b)).collect();
        sigs[7].0[40] ^= 1;
        sigs[13] = key.sign(b"another message");
        let items: Vec<Item<'_>> = bodies
            .iter()
            .zip(&sigs)
            .map(|(b, s)| (&author, b.as_slice(), s))
            .collect();
        let expected: Vec<bool> = (0..20).map(|i| i != 7 && i != 13).collect();
        assert_eq!(verify_batch(&items), expected);
    }

    #[test]
    fn torsion_in_r_gets_the_same_verdict_alone_and_in_any_batch() {
        let msg = b"dshare/1 torsion";
        for (t, torsion) in EIGHT_TORSION.iter().enumerate().skip(1) {
            let (author, sig) = sign_raw(secret(7), msg, *torsion);
            // The cofactorless strict rule refuses it: this is the case that matters.
            let dalek = ed25519_dalek::VerifyingKey::from_bytes(&author.0).expect("a key");
            assert!(
                dalek
                    .verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig.0))
                    .is_err()
            );
            let alone = verify(&author, msg, &sig);
            assert!(alone, "the cofactored rule accepts torsion {t}");
            // Many batches (random coefficients each time) all agree with it.
            for _ in 0..20 {
                let (other, other_sig) = sign_raw(secret(9), b"x", EIGHT_TORSION[0]);
                let items: Vec<Item<'_>> = vec![
                    (&author, msg, &sig),
                    (&other, b"x", &other_sig),
                    (&author, msg, &sig),
                ];
                assert_eq!(verify_batch(&items), vec![alone; 3]);
            }
        }
    }

    #[test]
    fn small_order_author_keys_are_refused_alone_and_in_a_batch() {
        // With A of small order and R = [s]B, the equation holds for every message.
        let s = secret(3);
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&(s * B).compress().to_bytes());
        sig[32..].copy_from_slice(s.as_bytes());
        let sig = Hex(sig);
        for point in EIGHT_TORSION {
            let weak = Hex(point.compress().to_bytes());
            assert!(!verify(&weak, b"anything", &sig));
            let (good, good_sig) = sign_raw(secret(5), b"ok", EIGHT_TORSION[0]);
            let items: Vec<Item<'_>> = vec![(&weak, b"anything", &sig), (&good, b"ok", &good_sig)];
            assert_eq!(verify_batch(&items), vec![false, true]);
        }
    }

    #[test]
    fn a_non_canonical_s_is_refused() {
        let (author, mut sig) = sign_raw(secret(11), b"m", EIGHT_TORSION[0]);
        assert!(verify(&author, b"m", &sig));
        // s + l: the same value modulo l, but not the one canonical encoding.
        let mut s = [0u8; 32];
        s.copy_from_slice(&sig.0[32..]);
        let plus_l = add_le(&s, &GROUP_ORDER);
        sig.0[32..].copy_from_slice(&plus_l);
        assert!(!verify(&author, b"m", &sig));
        let items: Vec<Item<'_>> = vec![(&author, b"m", &sig), (&author, b"m", &sig)];
        assert_eq!(verify_batch(&items), vec![false, false]);
    }

    /// l, the order of the prime-order subgroup, little-endian.
    const GROUP_ORDER: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];

    fn add_le(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(a[i]) + u16::from(b[i]) + carry;
            out[i] = (sum & 0xff) as u8;
            carry = sum >> 8;
        }
        out
    }
}
