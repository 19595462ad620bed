//! A new class key that no one ever holds, for rotating a class's key when `t` of its
//! shares may have leaked (resharing cannot repair that: the reshared key is the same key).
//!
//! The protocol (joint-Feldman distributed key generation, as in Pedersen 1991 and
//! Gennaro–Jarecki–Krawczyk–Rabin 1999), for one class, among custodians `J` with
//! threshold `t`:
//!
//! 1. Each contributing custodian `i` draws a random `w_i` and splits it with a fresh
//!    random polynomial `f_i` of degree `t − 1` (vsss-rs's Feldman split, at the custodians'
//!    indexes). It publishes the commitments `E_{i,k} = a_{i,k}·G` and sends `f_i(j)` to
//!    each custodian `j`, confidentially.
//! 2. Custodian `j` accepts `f_i(j)` only if `f_i(j)·G = Σ_k E_{i,k}·j^k`; one that fails is
//!    refused and its sender named ([`CryptoError::SubShareRejected`]).
//! 3. `x_j = Σ_i f_i(j)`; the new commitments are `C'_k = Σ_i E_{i,k}`, the new group key
//!    `Y' = C'_0 = (Σ_i w_i)·G`. Nobody computes `Σ_i w_i`: it exists only as the `x_j`.
//!
//! What it assumes: at least one contributor is honest (draws its `w_i` at random and
//! erases it), so that `t − 1` custodians together learn nothing of the new key; every
//! custodian uses the same set of contributors (in the mesh, the log fixes it: the
//! contributions whose commitments are committed). Joint-Feldman lets an attacker who
//! controls contributors bias the distribution of `Y'` a little (GJKR §3); for sealing
//! records to `Y'` with hashed ElGamal that does not help it decrypt. The cryptography
//! is vsss-rs's split and check over curve25519-dalek's points; the sums are ours.

use crate::group::ClassPublic;
use crate::reshare::SubShare;
use crate::secret::SecretScalar;
use crate::shamir::{KeyShare, check_threshold, public_share};
use crate::{CryptoError, Result};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use std::collections::{BTreeMap, BTreeSet};

/// One custodian's contribution to a new class key: its public commitments and one
/// sub-share per custodian.
#[derive(Debug)]
pub struct Contribution {
    /// The contributor.
    pub from: u32,
    /// The class.
    pub class: String,
    /// `E_{i,0..t-1}` (public).
    pub commitments: Vec<RistrettoPoint>,
    /// `f_i(j)` for each custodian, in the order given (secret).
    pub subshares: Vec<SubShare>,
}

fn check_ids(custodians: &[u32], threshold: usize) -> Result<()> {
    let distinct: BTreeSet<&u32> = custodians.iter().collect();
    if distinct.len() != custodians.len() || custodians.contains(&0) {
        return Err(CryptoError::Sharing(format!(
            "the custodians' indexes must be distinct and above 0: {custodians:?}"
        )));
    }
    check_threshold(threshold, custodians.len())
}

/// Custodian `from` draws its part of a new key for `class`, shared to `custodians` with
/// `threshold`.
pub fn contribute(
    from: u32,
    class: &str,
    custodians: &[u32],
    threshold: usize,
) -> Result<Contribution> {
    check_ids(custodians, threshold)?;
    let mut rng = crate::entropy::rng()?;
    let w = SecretScalar::new(Scalar::random(&mut rng));
    let (commitments, subshares) =
        crate::reshare::feldman_split(from, class, &w, custodians, threshold)?;
    Ok(Contribution {
        from,
        class: class.to_owned(),
        commitments,
        subshares,
    })
}

/// Custodian `sub.to` checks a contributor's sub-share against that contributor's
/// commitments; refuses it, naming the contributor, otherwise.
pub fn verify_contribution(
    sub: &SubShare,
    commitments: &[RistrettoPoint],
    custodians: &[u32],
    threshold: usize,
) -> Result<()> {
    let reject = |reason: &str| CryptoError::SubShareRejected {
        from: sub.from,
        to: sub.to,
        class: sub.class.clone(),
        reason: reason.to_owned(),
    };
    if !custodians.contains(&sub.to) {
        return Err(reject("it is for a custodian outside the set"));
    }
    if commitments.len() != threshold {
        return Err(reject(
            "its contributor published commitments for another threshold",
        ));
    }
    if commitments[0] == RistrettoPoint::identity() {
        return Err(reject("its contributor committed to a zero secret"));
    }
    match crate::reshare::feldman_holds(sub, commitments) {
        true => Ok(()),
        false => Err(reject("it does not match its contributor's commitments")),
    }
}

/// Custodian `to`'s share of the new key: the sum of one checked sub-share from each
/// contributor.
pub fn combine_contributions(
    to: u32,
    class: &str,
    contributors: &[u32],
    subs: &[SubShare],
) -> Result<KeyShare> {
    crate::reshare::sum_one_from_each(to, class, contributors, subs, "contributor")
}

/// The new class's public keys from every contributor's commitments: `C'_k = Σ_i E_{i,k}`,
/// the group key `C'_0`, and the public shares of custodians `1..=custodians`.
pub fn new_class(
    by_contributor: &BTreeMap<u32, Vec<RistrettoPoint>>,
    threshold: usize,
    custodians: usize,
) -> Result<ClassPublic> {
    if by_contributor.is_empty() {
        return Err(CryptoError::Sharing("no contributions".into()));
    }
    let mut sum = vec![RistrettoPoint::identity(); threshold];
    for (i, c) in by_contributor {
        if c.len() != threshold {
            return Err(CryptoError::Sharing(format!(
                "contributor {i} committed to {} coefficients, not {threshold}",
                c.len()
            )));
        }
        for (acc, p) in sum.iter_mut().zip(c) {
            *acc += p;
        }
    }
    let public_shares = (1..=custodians)
        .map(|j| public_share(&sum, u32::try_from(j).unwrap_or(u32::MAX)))
        .collect::<Result<Vec<_>>>()?;
    Ok(ClassPublic {
        group_key: sum[0],
        commitments: sum,
        public_shares,
    })
}
