//! Roots and proofs computed from a list of leaf hashes (RFC 6962 §2.1, the recursive
//! definitions). The log keeps leaf hashes; these functions are its reference, and the
//! tests check every proof they make against the independent verifier in `proof`.

use crate::hash::{Hash, empty, node};

/// The largest power of two strictly smaller than `n` (for `n >= 2`).
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[n])`: the root of the tree over `leaves`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// `PATH(m, D[n])`: the inclusion proof of leaf `m`. `None` when `m` is outside the tree.
pub fn inclusion_proof(m: u64, leaves: &[Hash]) -> Option<Vec<Hash>> {
    let n = leaves.len() as u64;
    if m >= n {
        return None;
    }
    let mut out = Vec::new();
    path(m, leaves, &mut out);
    Some(out)
}

fn path(m: u64, leaves: &[Hash], out: &mut Vec<Hash>) {
    let n = leaves.len() as u64;
    if n <= 1 {
        return;
    }
    let k = split(n);
    let ku = k as usize;
    if m < k {
        path(m, &leaves[..ku], out);
        out.push(root(&leaves[ku..]));
    } else {
        path(m - k, &leaves[ku..], out);
        out.push(root(&leaves[..ku]));
    }
}

/// `PROOF(m, D[n])`: the consistency proof between sizes `m` and `n = leaves.len()`.
/// `None` when `m > n`. Empty when `m == 0` or `m == n`.
pub fn consistency_proof(m: u64, leaves: &[Hash]) -> Option<Vec<Hash>> {
    let n = leaves.len() as u64;
    if m > n {
        return None;
    }
    let mut out = Vec::new();
    if m > 0 && m < n {
        subproof(m, leaves, true, &mut out);
    }
    Some(out)
}

fn subproof(m: u64, leaves: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = leaves.len() as u64;
    if m == n {
        if !complete {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    let ku = k as usize;
    if m <= k {
        subproof(m, &leaves[..ku], complete, out);
        out.push(root(&leaves[ku..]));
    } else {
        subproof(m - k, &leaves[ku..], false, out);
        out.push(root(&leaves[..ku]));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::hash::leaf;

    #[test]
    fn the_reference_consistency_proof_is_empty_from_nothing_and_to_itself() {
        let leaves: Vec<Hash> = (0u32..8).map(|i| leaf(&i.to_be_bytes())).collect();
        assert_eq!(consistency_proof(8, &leaves), Some(vec![]));
        assert_eq!(consistency_proof(0, &leaves), Some(vec![]));
        assert_eq!(consistency_proof(9, &leaves), None);
        assert!(!consistency_proof(3, &leaves).unwrap().is_empty());
    }
}
