//! The box's hash chain and the order-independent digest of a set of messages.

use sha2::{Digest, Sha256};

use crate::hex::{Hash, Hex};
use crate::message::AuthorId;

/// The chain value before the first line: 32 zero bytes.
pub const GENESIS: Hash = Hex([0; 32]);

/// `chain_i = SHA-256(chain_{i-1} || id_i)` over the raw 32-byte values.
pub fn step(prev: &Hash, id: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(prev.0);
    h.update(id.0);
    Hex(h.finalize().into())
}

/// One author's latest message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Head {
    pub author: AuthorId,
    pub seq: u64,
    pub id: Hash,
}

/// SHA-256 over the text `"{author} {seq} {id}\n"` of every head, authors in
/// ascending hex order. Since each author's messages form a signed chain with no
/// gaps, equal heads mean equal messages, whatever order they arrived in.
pub fn digest<'a>(heads: impl IntoIterator<Item = &'a Head>) -> Hash {
    let mut sorted: Vec<&Head> = heads.into_iter().collect();
    sorted.sort_unstable_by_key(|h| h.author);
    let mut h = Sha256::new();
    for head in sorted {
        h.update(format!("{} {} {}\n", head.author, head.seq, head.id));
    }
    Hex(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::sha256;

    #[test]
    fn step_is_sha256_of_the_concatenation() {
        let id = Hex([7; 32]);
        let mut both = [0u8; 64];
        both[32..].copy_from_slice(&id.0);
        assert_eq!(step(&GENESIS, &id), sha256(&both));
    }

    #[test]
    fn digest_ignores_arrival_order_but_not_content() {
        let a = Head {
            author: Hex([1; 32]),
            seq: 3,
            id: Hex([9; 32]),
        };
        let b = Head {
            author: Hex([2; 32]),
            seq: 1,
            id: Hex([8; 32]),
        };
        assert_eq!(digest(&[a, b]), digest(&[b, a]));
        let a2 = Head { seq: 4, ..a };
        assert_ne!(digest(&[a, b]), digest(&[a2, b]));
        assert_eq!(digest(&[]), sha256(b""));
    }
}
