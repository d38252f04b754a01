//! How many peers a send waits for: `all` or a positive count, the same words on the command line, in `/send?wait=` and in a sealed remote send.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// How many peers `send --wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Every peer that was up when the message was stored.
    All,
    /// This many peers (never 0: waiting for nobody is not waiting).
    Count(usize),
}

/// A `wait` that is neither `all` nor a positive whole number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadWant;

impl fmt::Display for BadWant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected `all` or a number of peers")
    }
}

impl std::error::Error for BadWant {}

impl FromStr for Want {
    type Err = BadWant;

    fn from_str(s: &str) -> Result<Want, BadWant> {
        if s == "all" {
            return Ok(Want::All);
        }
        match s.parse::<usize>() {
            Ok(n) if n > 0 => Ok(Want::Count(n)),
            _ => Err(BadWant),
        }
    }
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Want::All => f.write_str("all"),
            Want::Count(n) => write!(f, "{n}"),
        }
    }
}

/// As its words (`"all"`, `"3"`): a string on the wire, as it always was.
impl Serialize for Want {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Want {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Want, D::Error> {
        let words = String::deserialize(d)?;
        words.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::{BadWant, Want};

    #[test]
    fn words_and_wants_round_trip() {
        for (words, want) in [
            ("all", Want::All),
            ("1", Want::Count(1)),
            ("12", Want::Count(12)),
        ] {
            assert_eq!(words.parse::<Want>(), Ok(want));
            assert_eq!(want.to_string(), words);
            let json = serde_json::to_string(&want).unwrap();
            assert_eq!(json, format!("\"{words}\""));
            assert_eq!(serde_json::from_str::<Want>(&json).unwrap(), want);
        }
    }

    #[test]
    fn nobody_negatives_and_other_words_are_refused() {
        for bad in ["0", "-1", "", "All", "some", "1.5", " 1"] {
            assert_eq!(bad.parse::<Want>(), Err(BadWant), "{bad:?}");
        }
        assert!(serde_json::from_str::<Want>("\"0\"").is_err());
        assert!(serde_json::from_str::<Want>("3").is_err());
    }
}
