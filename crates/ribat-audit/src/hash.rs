//! RFC 6962 §2.1 hashing: `SHA-256(0x00 ‖ leaf)` for leaves, `SHA-256(0x01 ‖ left ‖ right)`
//! for interior nodes, `SHA-256("")` for the empty tree. The prefixes keep a leaf from ever
//! being mistaken for a node (second-preimage resistance of the tree).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A 32-byte tree hash.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash(pub [u8; 32]);

impl Hash {
    /// Constant-time comparison (roots and proofs come from the network).
    pub fn ct_eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl std::fmt::Debug for Hash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hash({})", self.to_hex())
    }
}

/// The hash of a leaf's data.
pub fn leaf(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash(h.finalize().into())
}

/// The hash of an interior node.
pub fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// The root of the empty tree.
pub fn empty() -> Hash {
    Hash(Sha256::digest([]).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_shows_itself_in_hex() {
        assert_eq!(
            format!("{:?}", Hash([0xab; 32])),
            format!("Hash({})", "ab".repeat(32))
        );
    }
}
