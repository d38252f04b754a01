//! Percent-encoding for URL query strings, strict on input.

/// Why a query string was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadQuery(pub &'static str);

impl std::fmt::Display for BadQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Decodes one query component: `%XX` escapes and `+` for space (HTML forms send
/// spaces as `+`, so a literal plus must arrive as `%2B`). The result must be UTF-8.
pub fn decode(s: &str) -> Result<String, BadQuery> {
    let raw = s.as_bytes();
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' => {
                // Two hex digits exactly: `from_str_radix` alone also takes a sign,
                // so `%+f` decoded to 0x0f.
                let (Some(high), Some(low)) = (
                    raw.get(i + 1).copied().and_then(hex_digit),
                    raw.get(i + 2).copied().and_then(hex_digit),
                ) else {
                    return Err(BadQuery("broken percent-encoding"));
                };
                out.push(high << 4 | low);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| BadQuery("query is not valid UTF-8 after percent-decoding"))
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// Splits and decodes `a=1&b=2`.
pub fn parse(query: &str) -> Result<Vec<(String, String)>, BadQuery> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(k)?, decode(v)?))
        })
        .collect()
}

/// Encodes a component so that every byte but the unreserved ones is escaped.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn awkward_text_round_trips() {
        let text = "a&b=c #%+ \"q\" 'q'\nnew line 🎉 שלום";
        assert_eq!(decode(&encode(text)).unwrap(), text);
        let q = parse(&format!("msg={}&token=x", encode(text))).unwrap();
        assert_eq!(
            q,
            vec![("msg".into(), text.into()), ("token".into(), "x".into())]
        );
    }

    #[test]
    fn plus_is_space_and_bad_escapes_are_refused() {
        assert_eq!(decode("a+b%2Bc").unwrap(), "a b+c");
        assert!(decode("%").is_err());
        assert!(decode("%4").is_err());
        assert!(decode("%zz").is_err());
        assert!(decode("%ff").is_err());
        assert!(decode("%+f").is_err());
        assert!(decode("%-1").is_err());
        assert!(decode("%41%4a%4A").unwrap() == "AJJ");
    }
}
