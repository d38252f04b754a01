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
pub fn parse_line(text: &str) -> Result<Line, String> {
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
}
