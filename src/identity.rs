//! A node's author identity: an ed25519 key pair, its file, signing and verifying.

use ed25519_dalek::{Signer, SigningKey};

use crate::hex::Hex;
use crate::secret::Secret;
use crate::signature::{AuthorId, Signature};

/// The signing half stays in here; only the public key and signatures leave.
pub struct Identity {
    key: SigningKey,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identity({})", self.author())
    }
}

impl Identity {
    pub fn generate() -> Identity {
        Identity::from_secret(&Secret::random())
    }

    pub fn from_secret(secret: &Secret) -> Identity {
        Identity {
            key: SigningKey::from_bytes(secret.expose()),
        }
    }

    pub fn secret(&self) -> Secret {
        Secret::new(self.key.to_bytes())
    }

    pub fn author(&self) -> AuthorId {
        Hex(self.key.verifying_key().to_bytes())
    }

    pub fn sign(&self, bytes: &[u8]) -> Signature {
        Hex(self.key.sign(bytes).to_bytes())
    }
}
