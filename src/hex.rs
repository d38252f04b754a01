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

/// Appends the lowercase hex of `bytes` to `out`.
pub fn push(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
}

/// Lowercase hex of any byte slice.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    out
}

/// The value of each lowercase hex digit, 0xff for every other byte: parsing ids is
/// on the hot path of start-up and `verify` (five values a line).
const VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 16 {
        t[DIGITS[i] as usize] = i as u8;
        i += 1;
    }
    t
};

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
        let mut bad = 0u8;
        for (o, pair) in out.iter_mut().zip(raw.chunks_exact(2)) {
            let (hi, lo) = (VALUE[usize::from(pair[0])], VALUE[usize::from(pair[1])]);
            bad |= hi | lo;
            *o = hi << 4 | (lo & 0xf);
        }
        // Every valid digit is below 16; 0xff marks anything else.
        if bad > 0xf {
            return Err(HexError("not lowercase hex".into()));
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
    /// Through a buffer on the stack: a box line has five of these, and serializing
    /// lines is on the hot path of the writer and of every read.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 128];
        if 2 * N > buf.len() {
            return s.serialize_str(&self.to_hex());
        }
        for (i, b) in self.0.iter().enumerate() {
            buf[2 * i] = DIGITS[usize::from(b >> 4)];
            buf[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
        }
        s.serialize_str(std::str::from_utf8(&buf[..2 * N]).expect("hex digits are ASCII"))
    }
}

impl<'de, const N: usize> Deserialize<'de> for Hex<N> {
    /// Parses the string where the deserializer holds it, without copying it first.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<const N: usize>;
        impl<const N: usize> serde::de::Visitor<'_> for Visit<N> {
            type Value = Hex<N>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{} lowercase hex digits", 2 * N)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Hex<N>, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_str(Visit::<N>)
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
