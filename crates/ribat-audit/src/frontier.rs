//! The right edge of a log's tree: one hash per complete subtree, largest first. A witness
//! that keeps only the root it cosigned can be handed the edge for that size (it checks
//! that the edge folds to its root), then the entries appended since, and so compute the
//! new root itself — which proves the entries it was shown are exactly the ones the new
//! checkpoint covers, so it may believe what they say (which request ids were audited).
//!
//! A tree of `n` leaves is, by RFC 6962's split, the complete subtrees of `n`'s set bits
//! from the highest, and its root is their right fold: `node(P₁, node(P₂, … Pₖ))`.

use crate::hash::{Hash, empty, leaf, node};

/// The complete subtrees of a tree of `size` leaves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The edge of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The edge claimed for `size`: one hash per set bit of `size`, or `None`. Whether it is
    /// the edge of a given tree is for [`Self::root`] to show.
    pub fn from_hashes(size: u64, hashes: Vec<Hash>) -> Option<Self> {
        (hashes.len() == size.count_ones() as usize).then_some(Self { size, hashes })
    }

    /// Leaves covered.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The subtree hashes, largest first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends the leaf whose data is `entry`.
    pub fn push_entry(&mut self, entry: &[u8]) {
        self.push(leaf(entry));
    }

    /// Appends one leaf hash: equal-sized subtrees merge, as in a binary counter.
    pub fn push(&mut self, leaf_hash: Hash) {
        let mut h = leaf_hash;
        let mut carry = self.size;
        while carry & 1 == 1 {
            match self.hashes.pop() {
                Some(left) => h = node(&left, &h),
                None => break,
            }
            carry >>= 1;
        }
        self.hashes.push(h);
        self.size += 1;
    }

    /// The root of the tree of `size` leaves.
    pub fn root(&self) -> Hash {
        let mut it = self.hashes.iter().rev();
        let Some(last) = it.next() else {
            return empty();
        };
        it.fold(*last, |acc, left| node(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memtree::MemTree;
    use proptest::prelude::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf(&(i as u64).to_be_bytes())).collect()
    }

    #[test]
    fn the_root_of_every_size_is_the_trees() {
        let mut f = Frontier::new();
        let mut t = MemTree::new();
        assert_eq!(f.root(), empty());
        for l in leaves(300) {
            f.push(l);
            t.push(l);
            assert_eq!(Some(f.root()), t.root(f.size()), "size {}", f.size());
            assert_eq!(f.hashes().len(), f.size().count_ones() as usize);
        }
    }

    proptest! {
        #[test]
        fn an_edge_taken_from_the_tree_extends_to_the_trees_later_roots(
            old in 0usize..200, more in 0usize..200,
        ) {
            let all = leaves(old + more);
            let mut t = MemTree::new();
            for l in &all {
                t.push(*l);
            }
            let edge = t.frontier(old as u64).unwrap();
            let mut f = Frontier::from_hashes(old as u64, edge).unwrap();
            prop_assert_eq!(Some(f.root()), t.root(old as u64));
            for l in &all[old..] {
                f.push(*l);
            }
            prop_assert_eq!(Some(f.root()), t.root((old + more) as u64));
        }
    }

    #[test]
    fn an_edge_of_the_wrong_shape_or_contents_is_caught() {
        let mut t = MemTree::new();
        for l in leaves(13) {
            t.push(l);
        }
        let edge = t.frontier(13).unwrap();
        assert_eq!(edge.len(), 3);
        assert!(Frontier::from_hashes(12, edge.clone()).is_none());
        let mut forged = edge;
        forged[1] = leaf(b"another");
        let f = Frontier::from_hashes(13, forged).unwrap();
        assert_ne!(Some(f.root()), t.root(13));
    }
}
