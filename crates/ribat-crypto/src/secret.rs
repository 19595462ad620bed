//! Secret values as types: zeroized on drop, printed as `[redacted]`.
//!
//! Making a secret usable outside this crate is an explicit call (`expose`), so a reviewer
//! can grep for every place key material leaves its wrapper.

use curve25519_dalek::scalar::Scalar;
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A secret ristretto255 scalar: a class key share, a proof nonce, a sealing randomness.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretScalar(Scalar);

impl SecretScalar {
    /// Wraps a scalar that must stay secret.
    pub fn new(s: Scalar) -> Self {
        Self(s)
    }

    /// Reads a canonical 32-byte little-endian encoding.
    pub fn from_canonical_bytes(bytes: [u8; 32]) -> Option<Self> {
        let mut b = Zeroizing::new(bytes);
        Option::from(Scalar::from_canonical_bytes(*b)).map(|s| {
            b.zeroize();
            Self(s)
        })
    }

    /// The scalar itself, for the arithmetic of this crate.
    pub(crate) fn expose(&self) -> &Scalar {
        &self.0
    }

    /// The canonical encoding, for sealing the share to disk; the buffer zeroizes itself.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }
}

impl fmt::Debug for SecretScalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretScalar([redacted])")
    }
}

/// A secret key of `N` bytes: a data-encryption key, the blind-index key.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes<const N: usize>([u8; N]);

impl<const N: usize> SecretBytes<N> {
    /// Wraps bytes that must stay secret.
    pub fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// Draws fresh bytes from the operating system.
    pub fn random() -> crate::Result<Self> {
        let mut b = [0u8; N];
        crate::entropy::fill(&mut b)?;
        Ok(Self(b))
    }

    /// The bytes, for keying a primitive. Named so that every use is visible in review.
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> fmt::Debug for SecretBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretBytes<{N}>([redacted])")
    }
}

/// An operator's passphrase. Never printed, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Passphrase(String);

impl Passphrase {
    /// Wraps a passphrase read from a prompt, a file or the environment.
    pub fn new(p: String) -> Self {
        Self(p)
    }

    /// The passphrase bytes, for the key-derivation function only.
    pub(crate) fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Whether it is empty (refused by the ceremony).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = SecretScalar::new(Scalar::from(42u64));
        let b = SecretBytes::new([7u8; 32]);
        let p = Passphrase::new("correct horse".into());
        for shown in [format!("{s:?}"), format!("{b:?}"), format!("{p:?}")] {
            assert!(shown.contains("[redacted]"), "{shown}");
            assert!(!shown.contains("42") && !shown.contains('7') && !shown.contains("horse"));
        }
    }

    #[test]
    fn non_canonical_scalar_is_refused() {
        assert!(SecretScalar::from_canonical_bytes([0xff; 32]).is_none());
        assert!(SecretScalar::from_canonical_bytes([1; 32]).is_some());
    }

    #[test]
    fn a_scalar_round_trips_through_its_canonical_bytes() {
        let s = Scalar::from(0x0123_4567_89ab_cdefu64) * Scalar::from(977u32);
        let bytes = SecretScalar::new(s).to_bytes();
        assert_eq!(*bytes, s.to_bytes());
        let back = SecretScalar::from_canonical_bytes(*bytes).unwrap();
        assert_eq!(back.expose(), &s);
    }
}
