//! Verifying inclusion and consistency proofs (RFC 9162 §2.1.3.2 and §2.1.4.2), for
//! outsiders who hold only a root, a size and a proof.
//!
//! The lengths are checked first: a proof has exactly as many hashes as the two sizes
//! imply, so that padding, truncation and trailing garbage are refused by name rather
//! than by a hash mismatch.

use crate::hash::{Hash, node};
use thiserror::Error;

/// Why a proof is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is outside the tree.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// Index.
        index: u64,
        /// Tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    #[error("proof has {got} hashes, a proof for these sizes has {want}")]
    WrongLength {
        /// Hashes given.
        got: usize,
        /// Hashes expected.
        want: usize,
    },
    /// The second tree is smaller than the first.
    #[error("size2 ({size2}) is smaller than size1 ({size1})")]
    Shrinking {
        /// First size.
        size1: u64,
        /// Second size.
        size2: u64,
    },
    /// The proof leads to another root than the one given.
    #[error("the proof leads to root {computed}, not to the given root {given}")]
    RootMismatch {
        /// Root computed from the proof.
        computed: String,
        /// Root given.
        given: String,
    },
    /// Two equal sizes with different roots: a forked history.
    #[error("same size, different roots: the two trees are not the same history")]
    Fork,
}

/// Number of hashes in the inclusion proof of `index` in a tree of `size`:
/// the levels below the point where the paths to `index` and to `size - 1` split, plus one
/// per left sibling above it.
fn inclusion_len(index: u64, size: u64) -> (usize, usize) {
    let inner = (64 - (index ^ (size - 1)).leading_zeros()) as usize;
    let border = (index >> inner).count_ones() as usize;
    (inner, border)
}

/// The root an inclusion proof leads to.
pub fn root_from_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = inclusion_len(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want: inner + border,
        });
    }
    // RFC 9162 §2.1.3.2, without its inner loop: once `f == s` (the leaf's path has
    // reached the tree's right border) the two shift alike and stay equal, so every later
    // element is a left sibling whatever that loop does; it only serves the RFC's final
    // `sn == 0` check, which the exact length check above replaces. (cargo-mutants showed
    // that no change to that loop changed any root.)
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if f & 1 == 1 || f == s {
            r = node(p, &r);
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    Ok(r)
}

/// Checks that `leaf` is at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion(index, size, leaf, proof)?;
    matches(&computed, root)
}

fn matches(computed: &Hash, given: &Hash) -> Result<(), ProofError> {
    if computed.ct_eq(given) {
        Ok(())
    } else {
        Err(ProofError::RootMismatch {
            computed: computed.to_hex(),
            given: given.to_hex(),
        })
    }
}

/// Number of hashes in a consistency proof between `size1 < size2`.
fn consistency_len(size1: u64, size2: u64) -> usize {
    let (inner, border) = inclusion_len(size1 - 1, size2);
    // The first hash of the walk is size1's own subtree root, omitted when size1 is a
    // perfect subtree (it is then the old root itself).
    let shift = size1.trailing_zeros() as usize;
    inner - shift + border + usize::from(!size1.is_power_of_two())
}

/// Checks that the tree of `size2` with `root2` extends the tree of `size1` with `root1`.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::Shrinking { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                want: 0,
            });
        }
        return if root1.ct_eq(root2) {
            Ok(())
        } else {
            Err(ProofError::Fork)
        };
    }
    if size1 == 0 {
        // Every tree extends the empty one.
        return if proof.is_empty() {
            Ok(())
        } else {
            Err(ProofError::WrongLength {
                got: proof.len(),
                want: 0,
            })
        };
    }
    let want = consistency_len(size1, size2);
    if proof.len() != want {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want,
        });
    }
    // RFC 9162 §2.1.4.2.
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(*root1);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (size1 - 1, size2 - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                want,
            });
        }
        if f & 1 == 1 || f == s {
            fr = node(c, &fr);
            sr = node(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    matches(&fr, root1)?;
    matches(&sr, root2)?;
    if s != 0 {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            want,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::hash::leaf;
    use crate::memtree::MemTree;

    #[test]
    fn an_inclusion_proof_of_the_wrong_length_says_how_long_it_must_be() {
        let l = leaf(b"x");
        // Leaf 0 of 8: three siblings on the way up, none on the border.
        assert_eq!(
            root_from_inclusion(0, 8, &l, &[]),
            Err(ProofError::WrongLength { got: 0, want: 3 })
        );
        // Leaf 6 of 7: the right border at once; two left siblings (the subtrees of 4 and
        // of 2 entries before it).
        assert_eq!(
            root_from_inclusion(6, 7, &l, &[l]),
            Err(ProofError::WrongLength { got: 1, want: 2 })
        );
        // Leaf 4 of 6: one sibling inside, one on the border.
        assert_eq!(
            root_from_inclusion(4, 6, &l, &[l, l, l]),
            Err(ProofError::WrongLength { got: 3, want: 2 })
        );
    }

    #[test]
    fn every_leaf_of_every_small_tree_is_proven_at_its_index_and_at_no_other() {
        let leaves: Vec<Hash> = (0u32..40).map(|i| leaf(&i.to_be_bytes())).collect();
        let mut t = MemTree::new();
        for l in &leaves {
            t.push(*l);
        }
        for size in 1..=40u64 {
            let root = t.root(size).unwrap();
            for index in 0..size {
                let proof = t.inclusion_proof(index, size).unwrap();
                let l = &leaves[index as usize];
                verify_inclusion(index, size, l, &proof, &root).unwrap();
                // The same proof for the next leaf, or this leaf at the next index, fails.
                if index + 1 < size {
                    let next = &leaves[index as usize + 1];
                    assert!(verify_inclusion(index, size, next, &proof, &root).is_err());
                    assert!(verify_inclusion(index + 1, size, l, &proof, &root).is_err());
                }
            }
            assert!(matches!(
                root_from_inclusion(size, size, &leaves[0], &[]),
                Err(ProofError::IndexOutOfRange { .. })
            ));
        }
    }
}
