//! 32 secret bytes that never print themselves and compare in constant time.

use crate::hex;

#[derive(Clone)]
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl PartialEq for Secret {
    /// Constant time, so a token check does not leak how many bytes matched.
    fn eq(&self, other: &Secret) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for Secret {}

impl Secret {
    pub fn new(bytes: [u8; 32]) -> Secret {
        Secret(bytes)
    }

    /// 32 bytes from the operating system's generator.
    pub fn random() -> Secret {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random generator failed");
        Secret(bytes)
    }

    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Hex, for writing to a 0600 file or an invite the user asked for.
    pub fn expose_hex(&self) -> String {
        hex::encode(&self.0)
    }

    pub fn from_hex(s: &str) -> Option<Secret> {
        s.parse::<hex::Hex<32>>().ok().map(|h| Secret(h.0))
    }
}
