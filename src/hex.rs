//! Fixed-size byte strings (ids, keys, signatures) written as lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `N` bytes that print, parse and serialize as `2 * N` lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hex<const N: usize>(pub [u8; N]);

/// A SHA-256 value: a message id, a chain hash, a digest.
pub type Hash = Hex<32>;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of any byte slice.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Why a hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexError(String);

impl fmt::Display for HexError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HexError {}

impl<const N: usize> Default for Hex<N> {
    fn default() -> Self {
        Hex([0; N])
    }
}

impl<const N: usize> Hex<N> {
    pub fn to_hex(&self) -> String {
        encode(&self.0)
    }

    /// The first `chars` hex digits, for people.
    pub fn short(&self, chars: usize) -> String {
        let mut s = self.to_hex();
        s.truncate(chars);
        s
    }
}

impl<const N: usize> FromStr for Hex<N> {
    type Err = HexError;

    /// Only lowercase is accepted, so every value has exactly one spelling.
    fn from_str(s: &str) -> Result<Self, HexError> {
        let raw = s.as_bytes();
        if raw.len() != 2 * N {
            return Err(HexError(format!(
                "expected {} lowercase hex digits, got {} characters",
                2 * N,
                s.chars().count()
            )));
        }
        let mut out = [0u8; N];
        for (i, pair) in raw.chunks_exact(2).enumerate() {
            match (nibble(pair[0]), nibble(pair[1])) {
                (Some(hi), Some(lo)) => out[i] = hi << 4 | lo,
                _ => return Err(HexError("not lowercase hex".into())),
            }
        }
        Ok(Hex(out))
    }
}

impl<const N: usize> fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl<const N: usize> Serialize for Hex<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_uppercase_and_wrong_length() {
        let h = Hex([0xab, 0x01]);
        assert_eq!(h.to_hex(), "ab01");
        assert_eq!("ab01".parse::<Hex<2>>().unwrap(), h);
        assert!("AB01".parse::<Hex<2>>().is_err());
        assert!("ab0".parse::<Hex<2>>().is_err());
        assert!("ab0g".parse::<Hex<2>>().is_err());
        assert!("ab01ff".parse::<Hex<2>>().is_err());
    }
}
