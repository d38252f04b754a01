//! One line of the box: a JSON object with the chain hash followed by the message.

use serde::{Deserialize, Serialize};

use crate::hex::Hash;
use crate::message::Message;

/// A parsed line of the box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub chain: Hash,
    pub message: Message,
}

#[derive(Serialize)]
struct LineRef<'a> {
    chain: &'a Hash,
    #[serde(flatten)]
    message: &'a Message,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineOwned {
    chain: Hash,
    id: Hash,
    author: crate::message::AuthorId,
    seq: u64,
    prev: Option<Hash>,
    clock: u64,
    ts: u64,
    body: String,
    sig: crate::message::Signature,
}

/// The line for `message` at chain value `chain`, without the newline. serde_json
/// escapes newlines and control characters in the body, so a record is always one line.
pub fn encode_line(chain: &Hash, message: &Message) -> String {
    let mut out = Vec::with_capacity(line_capacity(message));
    serde_json::to_writer(&mut out, &LineRef { chain, message })
        .expect("a message always serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Room for a line: the keys and hex values take under 500 bytes, and most bodies
/// need no escapes. One allocation instead of a few doublings.
fn line_capacity(m: &Message) -> usize {
    m.body.len() + 512
}

/// Parses one line (without its newline). A line must be exactly what
/// [`encode_line`] writes: the same keys in the same order, no spaces, the same
/// escapes. So any edit to a line, even one that keeps the JSON meaning, is caught.
///
/// Most lines take the fast path, [`parse_exact`], which reads the one spelling
/// [`encode_line`] produces and nothing else; a line it does not recognise gets the
/// general path (serde_json, then re-encoding and comparing), which has the last word.
pub fn parse_line(text: &str) -> Result<Line, String> {
    match parse_exact(text) {
        Some(line) => Ok(line),
        None => parse_general(text),
    }
}

/// The general path: any JSON, then the canonical check by re-encoding.
fn parse_general(text: &str) -> Result<Line, String> {
    let owned: LineOwned =
        serde_json::from_str(text).map_err(|e| format!("not a box record: {e}"))?;
    let line = Line {
        chain: owned.chain,
        message: Message {
            id: owned.id,
            author: owned.author,
            seq: owned.seq,
            prev: owned.prev,
            clock: owned.clock,
            ts: owned.ts,
            body: owned.body,
            sig: owned.sig,
        },
    };
    // Re-encoding must give back the very same bytes.
    let mut again = Vec::with_capacity(text.len());
    serde_json::to_writer(
        &mut again,
        &LineRef {
            chain: &line.chain,
            message: &line.message,
        },
    )
    .expect("a message always serializes");
    if again != text.as_bytes() {
        return Err(
            "record is not in canonical form (keys, order, spacing or escapes edited)".into(),
        );
    }
    Ok(line)
}

/// The fast path of [`parse_line`], for start-up, `verify` and reads: a scanner for
/// exactly the bytes [`encode_line`] writes (docs/FORMAT.md §2), about five times
/// cheaper than parsing JSON and re-encoding it. It answers `Some` only for a line
/// that is the encoding of what it returns, so it never accepts a line the general
/// path would refuse (a test checks that on mutated lines); on anything else it
/// answers `None` and the general path decides.
fn parse_exact(text: &str) -> Option<Line> {
    let mut c = Scan {
        b: text.as_bytes(),
        i: 0,
    };
    let mut line = c.head()?;
    line.message.body = c.string()?;
    c.lit(b",\"sig\":\"")?;
    line.message.sig = c.hex()?;
    c.lit(b"\"}")?;
    (c.i == c.b.len()).then_some(line)
}

/// The fields that link a line to the ones before it (chain, id, author, seq, prev,
/// clock) and its `ts`, read from the start of a whole line (with its line feed)
/// without decoding the body or the signature, which are left empty. They come first
/// in the one spelling a line has (docs/FORMAT.md §2), so an archive, whose lines were
/// fully checked when they were stored, reads only what it needs to check that they
/// still chain and to write the final head.
pub(super) fn parse_line_head(raw: &[u8]) -> Result<Line, String> {
    let text = raw
        .strip_suffix(b"\n")
        .ok_or_else(|| "not a whole line".to_string())?;
    let mut c = Scan { b: text, i: 0 };
    c.head().ok_or_else(|| {
        format!(
            "not the spelling of a box line at byte {} (docs/FORMAT.md §2)",
            c.i + 1
        )
    })
}

/// A cursor over a line for [`parse_exact`] and [`parse_line_head`].
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    /// Everything up to the body's opening quote, read as [`encode_line`] writes it;
    /// the body and signature are left empty.
    fn head(&mut self) -> Option<Line> {
        self.lit(b"{\"chain\":\"")?;
        let chain = self.hex()?;
        self.lit(b"\",\"id\":\"")?;
        let id = self.hex()?;
        self.lit(b"\",\"author\":\"")?;
        let author = self.hex()?;
        self.lit(b"\",\"seq\":")?;
        let seq = self.uint()?;
        self.lit(b",\"prev\":")?;
        let prev = if self.lit(b"null").is_some() {
            None
        } else {
            self.lit(b"\"")?;
            let prev = self.hex()?;
            self.lit(b"\"")?;
            Some(prev)
        };
        self.lit(b",\"clock\":")?;
        let clock = self.uint()?;
        self.lit(b",\"ts\":")?;
        let ts = self.uint()?;
        self.lit(b",\"body\":\"")?;
        Some(Line {
            chain,
            message: Message {
                id,
                author,
                seq,
                prev,
                clock,
                ts,
                body: String::new(),
                sig: crate::hex::Hex([0; 64]),
            },
        })
    }

    fn lit(&mut self, expected: &[u8]) -> Option<()> {
        let end = self.i.checked_add(expected.len())?;
        (self.b.get(self.i..end)? == expected).then(|| self.i = end)
    }

    /// Exactly `2 N` lowercase hex digits.
    fn hex<const N: usize>(&mut self) -> Option<crate::hex::Hex<N>> {
        let end = self.i + 2 * N;
        let digits = std::str::from_utf8(self.b.get(self.i..end)?).ok()?;
        let value = digits.parse().ok()?;
        self.i = end;
        Some(value)
    }

    /// A decimal as serde_json writes a u64: digits, no sign, no leading zero.
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        let mut value: u64 = 0;
        while let Some(&d) = self.b.get(self.i).filter(|d| d.is_ascii_digit()) {
            value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        (digits == 1 || (digits > 1 && self.b[start] != b'0')).then_some(value)
    }

    /// A string's contents up to and including its closing quote, with exactly
    /// serde_json's escapes: `\"`, `\\`, `\b`, `\t`, `\n`, `\f`, `\r`, and `\u00XX`
    /// (lowercase) for the other control characters; everything else raw.
    fn string(&mut self) -> Option<String> {
        let mut out = Vec::with_capacity(self.b.len() - self.i);
        loop {
            let run = self.b[self.i..]
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
            out.extend_from_slice(&self.b[self.i..self.i + run]);
            self.i += run;
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    break;
                }
                b'\\' => {
                    let (ch, used) = match *self.b.get(self.i + 1)? {
                        b'"' => (b'"', 2),
                        b'\\' => (b'\\', 2),
                        b'b' => (0x08, 2),
                        b't' => (b'\t', 2),
                        b'n' => (b'\n', 2),
                        b'f' => (0x0c, 2),
                        b'r' => (b'\r', 2),
                        b'u' => {
                            let code = self.b.get(self.i + 2..self.i + 6)?;
                            let last = match code {
                                [b'0', b'0', b'0' | b'1', d] => *d,
                                _ => return None,
                            };
                            let value = (code[2] - b'0') << 4
                                | match last {
                                    b'0'..=b'9' => last - b'0',
                                    b'a'..=b'f' => last - b'a' + 10,
                                    _ => return None,
                                };
                            // The characters with a short escape are never written
                            // as \u00XX.
                            if matches!(value, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                return None;
                            }
                            (value, 6)
                        }
                        _ => return None,
                    };
                    out.push(ch);
                    self.i += used;
                }
                // A raw control character is never written.
                _ => return None,
            }
        }
        // Only ASCII was cut or inserted, so the bytes stay UTF-8.
        String::from_utf8(out).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Identity;
    use crate::message::Draft;

    #[test]
    fn lines_round_trip_and_edits_are_refused() {
        let key = Identity::generate();
        let m = Message::sign(
            &Draft {
                author: key.author(),
                seq: 1,
                prev: None,
                clock: 1,
                ts: 1,
                body: "two\nlines \"quoted\" é 🎉",
            },
            &key,
        );
        let chain = crate::chain::step(&crate::chain::GENESIS, &m.id);
        let text = encode_line(&chain, &m);
        assert!(!text.contains('\n'));
        assert!(text.starts_with("{\"chain\":\""));
        let back = parse_line(&text).unwrap();
        assert_eq!(back.message, m);
        assert!(parse_line(&text.replacen(":", ": ", 1)).is_err());
        assert!(parse_line(&text.replacen('}', ",\"x\":1}", 1)).is_err());
        assert!(parse_line("garbage").is_err());
    }

    /// The fast path may answer `None` where the general path accepts, never the
    /// other way round: whatever it accepts must be the encoding of what it returns.
    /// Checked on lines with every kind of escape and on many single-byte edits.
    #[test]
    fn the_fast_path_accepts_only_exact_encodings() {
        let key = Identity::generate();
        let mut bodies: Vec<String> = vec![
            String::new(),
            "plain".into(),
            (0u8..0x20).map(char::from).collect(),
            "quote \" backslash \\ slash / del \u{7f} é 🎉 \u{2028} \u{85}".into(),
            "\\u0041 \\n looks escaped".into(),
        ];
        bodies.push("x".repeat(300));
        let mut lines = Vec::new();
        for (i, body) in bodies.iter().enumerate() {
            let seq = [1, 2, 10, u64::MAX >> 11][i % 4];
            let m = Message::sign(
                &Draft {
                    author: key.author(),
                    seq,
                    prev: (seq > 1).then_some(crate::hex::Hex([0xab; 32])),
                    clock: seq * 3,
                    ts: [0, 9, 1_796_031_234_552, u64::MAX][i % 4],
                    body,
                },
                &key,
            );
            let chain = crate::chain::step(&crate::chain::GENESIS, &m.id);
            let text = encode_line(&chain, &m);
            assert_eq!(parse_exact(&text), Some(parse_general(&text).unwrap()));
            lines.push(text);
        }
        let alphabet: &[u8] = b"\"\\u0019aAfF0 nrtbf,:{}[]-+.e\x01\x1f\x7f";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut accepted_edits = 0;
        for line in &lines {
            for _ in 0..4000 {
                let mut bytes = line.as_bytes().to_vec();
                let at = next(bytes.len());
                match next(3) {
                    0 => bytes[at] = alphabet[next(alphabet.len())],
                    1 => drop(bytes.remove(at)),
                    _ => bytes.insert(at, alphabet[next(alphabet.len())]),
                }
                let Ok(text) = String::from_utf8(bytes) else {
                    continue;
                };
                if let Some(fast) = parse_exact(&text) {
                    assert_eq!(encode_line(&fast.chain, &fast.message), text);
                    assert_eq!(parse_general(&text).as_ref(), Ok(&fast));
                    accepted_edits += 1;
                }
            }
        }
        // Some edits give another valid line (a digit of a hex value or of the body).
        assert!(accepted_edits > 0);
        for bad in [
            r#"\u0041"#,
            r#"\/"#,
            r#"\u00E9"#,
            r#"\u001F"#,
            r#"\u000a"#,
            r#"\u0009"#,
        ] {
            let text = lines[1].replacen("plain", bad, 1);
            assert_eq!(parse_exact(&text), None, "{bad}");
            assert!(parse_general(&text).is_err(), "{bad}");
        }
        let ok = lines[1].replacen("plain", r#"\u001f"#, 1);
        assert_eq!(
            parse_exact(&ok).map(|l| l.message.body),
            Some("\u{1f}".to_string())
        );
    }
}
