//! Signatures over entries: Ed25519 (strict verification), over a domain-separated digest of
//! what is signed, so that a signature made for one kind of entry never reads as another.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// Separates Ribat's mesh signatures from every other use of the same keys.
const DOMAIN: &str = "ribat-mesh/v1";

/// An Ed25519 public key, hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicKey([u8; 32]);

/// An Ed25519 signature, hex on the wire.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sig([u8; 64]);

macro_rules! hex_bytes {
    ($ty:ident, $n:literal, $what:literal) => {
        impl TryFrom<String> for $ty {
            type Error = String;
            fn try_from(s: String) -> Result<Self, String> {
                let v = hex::decode(&s).map_err(|e| format!("{}: {e}", $what))?;
                let a: [u8; $n] = v.try_into().map_err(|v: Vec<u8>| {
                    format!("{}: {} bytes, expected {}", $what, v.len(), $n)
                })?;
                Ok(Self(a))
            }
        }
        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                hex::encode(v.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}…)", stringify!($ty), &hex::encode(self.0)[..12])
            }
        }
    };
}
hex_bytes!(PublicKey, 32, "public key");
hex_bytes!(Sig, 64, "signature");

impl PublicKey {
    /// The raw key.
    pub fn from_bytes(b: [u8; 32]) -> Self {
        Self(b)
    }
}

/// What a signature covers: the domain, the kind of statement and its canonical JSON.
/// Serialising the same value always gives the same bytes here: every map in the signed
/// types is ordered.
pub fn digest<T: Serialize>(kind: &str, body: &T) -> Result<[u8; 32], serde_json::Error> {
    let json = serde_json::to_vec(body)?;
    let mut h = Sha256::new();
    h.update(DOMAIN.as_bytes());
    h.update([0]);
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(&json);
    Ok(h.finalize().into())
}

/// Whether `sig` is `key`'s signature of `body` as a statement of `kind`. Strict: a
/// malleable or small-order signature is refused.
pub fn verifies<T: Serialize>(key: &PublicKey, kind: &str, body: &T, sig: &Sig) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(&key.0) else {
        return false;
    };
    let Ok(d) = digest(kind, body) else {
        return false;
    };
    vk.verify_strict(&d, &ed25519_dalek::Signature::from_bytes(&sig.0))
        .is_ok()
}

/// A node's or an administrator's signing key (zeroized when dropped).
pub struct KeyPair(SigningKey);

impl KeyPair {
    /// From a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `body` as a statement of `kind`.
    pub fn sign<T: Serialize>(&self, kind: &str, body: &T) -> Result<Sig, serde_json::Error> {
        Ok(Sig(self.0.sign(&digest(kind, body)?).to_bytes()))
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPair({:?}, secret redacted)", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_its_kind_and_its_body_and_nothing_else() {
        let k = KeyPair::from_seed(&[7; 32]);
        let body = serde_json::json!({"id": "d1", "until_ms": 5});
        let sig = k.sign("restrict", &body).unwrap();
        assert!(verifies(&k.public(), "restrict", &body, &sig));
        assert!(!verifies(&k.public(), "release", &body, &sig));
        let other = serde_json::json!({"id": "d1", "until_ms": 6});
        assert!(!verifies(&k.public(), "restrict", &other, &sig));
        let stranger = KeyPair::from_seed(&[8; 32]);
        assert!(!verifies(&stranger.public(), "restrict", &body, &sig));
    }

    #[test]
    fn keys_and_signatures_travel_as_hex_and_bad_hex_is_named() {
        let k = KeyPair::from_seed(&[1; 32]);
        let s = serde_json::to_string(&k.public()).unwrap();
        assert_eq!(serde_json::from_str::<PublicKey>(&s).unwrap(), k.public());
        let e = serde_json::from_str::<PublicKey>("\"abcd\"").unwrap_err();
        assert!(
            e.to_string().contains("public key: 2 bytes, expected 32"),
            "{e}"
        );
        let e = serde_json::from_str::<Sig>("\"zz\"").unwrap_err();
        assert!(e.to_string().contains("signature:"), "{e}");
        assert!(!format!("{k:?}").contains(&hex::encode([1u8; 32])));
    }
}
