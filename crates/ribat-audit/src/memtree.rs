//! The log's tree in memory: every complete subtree hash, level by level, so that roots
//! and proofs for any earlier size cost O(log² n) hashes instead of O(n).
//!
//! `levels[h][i]` is the hash of leaves `i·2^h .. (i+1)·2^h`, kept once all of them exist.
//! That is 2 hashes (64 bytes) per leaf. Appending is amortised O(1). Every root and proof
//! follows RFC 6962's recursive definitions (`tree`), whose left halves are always aligned
//! complete subtrees, so each is either a table lookup or a split.

use crate::hash::{Hash, empty, node};
use crate::tree::split;

/// Complete subtree hashes of a growing tree.
#[derive(Debug, Clone, Default)]
pub struct MemTree {
    levels: Vec<Vec<Hash>>,
}

impl MemTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends one leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(leaf);
        let mut h = 0;
        while self.levels[h].len().is_multiple_of(2) {
            let n = self.levels[h].len();
            let parent = node(&self.levels[h][n - 2], &self.levels[h][n - 1]);
            if self.levels.len() == h + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[h + 1].push(parent);
            h += 1;
        }
    }

    /// The hash of leaf `i`.
    pub fn leaf(&self, i: u64) -> Option<Hash> {
        self.levels.first()?.get(usize::try_from(i).ok()?).copied()
    }

    /// The complete subtree hash at height `h`, index `i`, if all its leaves exist.
    pub fn complete(&self, h: usize, i: u64) -> Option<Hash> {
        self.levels.get(h)?.get(usize::try_from(i).ok()?).copied()
    }

    /// `MTH(D[lo..hi])`, for `lo < hi <= size` where `lo` is aligned the way RFC 6962's
    /// recursion aligns it.
    fn mth(&self, lo: u64, hi: u64) -> Hash {
        let n = hi - lo;
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            let h = n.trailing_zeros() as usize;
            if let Some(x) = self.complete(h, lo >> h) {
                return x;
            }
        }
        if n == 1 {
            // Unreachable for lo < size: a single leaf is always in levels[0].
            return empty();
        }
        let k = split(n);
        node(&self.mth(lo, lo + k), &self.mth(lo + k, hi))
    }

    /// The right edge of the tree of `size` leaves: its complete subtrees, largest first
    /// ([`crate::frontier::Frontier`]).
    pub fn frontier(&self, size: u64) -> Option<Vec<Hash>> {
        if size > self.size() {
            return None;
        }
        let mut out = Vec::new();
        let mut offset = 0u64;
        for h in (0..64usize).rev() {
            if size & (1u64 << h) != 0 {
                out.push(self.complete(h, offset >> h)?);
                offset += 1u64 << h;
            }
        }
        Some(out)
    }

    /// The root at `size` (any size up to the current one).
    pub fn root(&self, size: u64) -> Option<Hash> {
        if size > self.size() {
            return None;
        }
        Some(if size == 0 {
            empty()
        } else {
            self.mth(0, size)
        })
    }

    /// The inclusion proof of leaf `m` in the tree of `size`.
    pub fn inclusion_proof(&self, m: u64, size: u64) -> Option<Vec<Hash>> {
        if m >= size || size > self.size() {
            return None;
        }
        let mut out = Vec::new();
        self.path(m, 0, size, &mut out);
        Some(out)
    }

    fn path(&self, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if n <= 1 {
            return;
        }
        let k = split(n);
        if m < k {
            self.path(m, lo, lo + k, out);
            out.push(self.mth(lo + k, hi));
        } else {
            self.path(m - k, lo + k, hi, out);
            out.push(self.mth(lo, lo + k));
        }
    }

    /// The consistency proof between sizes `m <= n`.
    pub fn consistency_proof(&self, m: u64, n: u64) -> Option<Vec<Hash>> {
        if m > n || n > self.size() {
            return None;
        }
        let mut out = Vec::new();
        if m > 0 && m < n {
            self.subproof(m, 0, n, true, &mut out);
        }
        Some(out)
    }

    fn subproof(&self, m: u64, lo: u64, hi: u64, complete: bool, out: &mut Vec<Hash>) {
        let n = hi - lo;
        if m == n {
            if !complete {
                out.push(self.mth(lo, hi));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            self.subproof(m, lo, lo + k, complete, out);
            out.push(self.mth(lo + k, hi));
        } else {
            self.subproof(m - k, lo + k, hi, false, out);
            out.push(self.mth(lo, lo + k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf;
    use crate::tree;

    #[test]
    fn consistency_is_proven_only_from_a_smaller_size_within_the_tree() {
        let mut t = MemTree::new();
        for i in 0u32..8 {
            t.push(leaf(&i.to_be_bytes()));
        }
        assert_eq!(
            t.consistency_proof(4, 4),
            Some(vec![]),
            "a size is consistent with itself"
        );
        assert_eq!(t.consistency_proof(0, 8), Some(vec![]));
        assert_eq!(t.consistency_proof(5, 3), None, "shrinking");
        assert_eq!(t.consistency_proof(2, 9), None, "past the tree");
        assert!(!t.consistency_proof(3, 8).unwrap().is_empty());
    }

    #[test]
    fn agrees_with_the_reference_definitions_for_every_small_size() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf(&i.to_be_bytes())).collect();
        let mut t = MemTree::new();
        for l in &leaves {
            t.push(*l);
        }
        for n in 0..=leaves.len() as u64 {
            let prefix = &leaves[..n as usize];
            assert_eq!(t.root(n), Some(tree::root(prefix)), "root {n}");
            for m in 0..n {
                assert_eq!(
                    t.inclusion_proof(m, n),
                    tree::inclusion_proof(m, prefix),
                    "inclusion {m} of {n}"
                );
            }
            for m in 0..=n {
                assert_eq!(
                    t.consistency_proof(m, n),
                    tree::consistency_proof(m, prefix),
                    "consistency {m} {n}"
                );
            }
        }
        assert_eq!(t.root(71), None);
        assert_eq!(t.inclusion_proof(70, 70), None);
    }
}
