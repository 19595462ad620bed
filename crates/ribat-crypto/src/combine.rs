//! Verifying custodians' partial decryptions and combining `t` of them.
//!
//! ```text
//!   Partial_i = (i, class, [P_ij], proof_i)     for the requested points [R_j]
//!       │ verify proof_i against Y_{c,i}: a custodian that lies is named, never used
//!       ▼
//!   S_j = Σ_{i∈Q} λ_i·P_ij   (Lagrange at 0 over the chosen quorum Q, |Q| = t)
//! ```

use crate::dleq::{Dleq, Proof};
use crate::{CryptoError, Result};
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use std::collections::BTreeSet;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A custodian's answer for a batch of points of one class, as received.
#[derive(Debug, Clone)]
pub struct Partial {
    /// Custodian index `i`.
    pub custodian: u32,
    /// Class whose share was used.
    pub class: String,
    /// `P_ij = k_{c,i}·R_j`, in request order.
    pub points: Vec<RistrettoPoint>,
    /// One composite DLEQ proof over the whole batch.
    pub proof: Proof,
}

/// A custodian's answer: `P_j = k_{c,i}·R_j` for every requested point, with one composite
/// proof. The checks that decide whether to answer at all belong to the custodian.
pub fn answer(
    dleq: &Dleq,
    share: &crate::shamir::KeyShare,
    requested: &[RistrettoPoint],
) -> Result<Partial> {
    let k = share.secret();
    let points: Vec<RistrettoPoint> = requested.iter().map(|r| r * k.expose()).collect();
    let proof = dleq.prove(k, &share.public(), requested, &points)?;
    Ok(Partial {
        custodian: share.custodian,
        class: share.class.clone(),
        points,
        proof,
    })
}

/// A partial whose proof verified against the custodian's public share.
#[derive(Debug, Clone)]
pub struct VerifiedPartial {
    custodian: u32,
    points: Vec<RistrettoPoint>,
}

impl VerifiedPartial {
    /// The custodian that produced it.
    pub fn custodian(&self) -> u32 {
        self.custodian
    }
}

/// The shared point `S = k_c·R` of one record and class: secret, because it yields the DEK.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SharedPoint(RistrettoPoint);

impl SharedPoint {
    pub(crate) fn new(p: RistrettoPoint) -> Self {
        Self(p)
    }
    pub(crate) fn expose(&self) -> &RistrettoPoint {
        &self.0
    }
}

impl std::fmt::Debug for SharedPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedPoint([redacted])")
    }
}

/// Checks a partial: right class, one answer per requested point, a valid proof.
pub fn verify_partial(
    dleq: &Dleq,
    class: &str,
    public_share: &RistrettoPoint,
    requested: &[RistrettoPoint],
    partial: &Partial,
) -> Result<VerifiedPartial> {
    same_class(class, partial)?;
    dleq.verify(public_share, requested, &partial.points, &partial.proof)?;
    Ok(VerifiedPartial {
        custodian: partial.custodian,
        points: partial.points.clone(),
    })
}

fn same_class(class: &str, partial: &Partial) -> Result<()> {
    if partial.class == class {
        Ok(())
    } else {
        Err(CryptoError::WrongClass {
            expected: class.to_owned(),
            got: partial.class.clone(),
        })
    }
}

/// Accepts the partial of a custodian running in this very process without checking its
/// proof now. Combining it and opening the envelopes is then the check: the DEK is
/// derived from the combined point, so the AEAD tag of every field fails unless every
/// combined partial was right, and no custodian can make a wrong combination open (it
/// would need the DEK of a point it cannot compute). The caller keeps the partial and
/// verifies its proof when an opening fails, to name the custodian at fault. Networked
/// custodians always go through [`verify_partial`].
pub fn accept_in_process(
    class: &str,
    requested: usize,
    partial: &Partial,
) -> Result<VerifiedPartial> {
    same_class(class, partial)?;
    if partial.points.len() != requested {
        return Err(CryptoError::ProofInvalid);
    }
    Ok(VerifiedPartial {
        custodian: partial.custodian,
        points: partial.points.clone(),
    })
}

/// Lagrange coefficients at 0 for the x-coordinates `ids`.
pub fn lagrange_at_zero(ids: &[u32]) -> Result<Vec<Scalar>> {
    let mut seen = BTreeSet::new();
    for &i in ids {
        if i == 0 {
            return Err(CryptoError::Sharing(
                "custodian index 0 is not a share".into(),
            ));
        }
        if !seen.insert(i) {
            return Err(CryptoError::DuplicateCustodian(i));
        }
    }
    Ok(ids
        .iter()
        .map(|&i| {
            let xi = Scalar::from(i);
            let (num, den) =
                ids.iter()
                    .filter(|&&j| j != i)
                    .fold((Scalar::ONE, Scalar::ONE), |(n, d), &j| {
                        let xj = Scalar::from(j);
                        (n * xj, d * (xj - xi))
                    });
            // den is non-zero: the ids are distinct and smaller than ℓ.
            num * den.invert()
        })
        .collect())
}

/// Combines exactly `threshold` verified partials into one shared point per record.
pub fn combine(
    class: &str,
    threshold: usize,
    partials: &[VerifiedPartial],
) -> Result<Vec<SharedPoint>> {
    if partials.len() < threshold {
        return Err(CryptoError::NotEnoughPartials {
            have: partials.len(),
            need: threshold,
            class: class.to_owned(),
        });
    }
    let quorum = &partials[..threshold];
    let ids: Vec<u32> = quorum.iter().map(|p| p.custodian).collect();
    let lambdas = lagrange_at_zero(&ids)?;
    let n = quorum[0].points.len();
    if quorum.iter().any(|p| p.points.len() != n) {
        return Err(CryptoError::BatchMalformed {
            reason: "partials cover different numbers of records",
        });
    }
    // The λ_i and P_ij are public (the P_ij travelled over the network), so a variable-time
    // multiscalar multiplication leaks nothing; its result S_j is secret from here on.
    Ok((0..n)
        .map(|j| {
            SharedPoint::new(RistrettoPoint::vartime_multiscalar_mul(
                &lambdas,
                quorum.iter().map(|p| p.points[j]),
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::shamir::deal;
    use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT as G;

    #[test]
    fn a_partial_of_this_process_is_taken_for_its_class_and_count_only_and_keeps_its_custodian() {
        let dealing = deal("identity", 2, 3).unwrap();
        let r = [G * Scalar::from(7u32), G * Scalar::from(11u32)];
        let p = answer(&Dleq::ribat(), &dealing.shares[1], &r).unwrap();
        assert_eq!(p.custodian, 2);
        let v = accept_in_process("identity", 2, &p).unwrap();
        assert_eq!(v.custodian(), 2);
        assert!(matches!(
            accept_in_process("financial", 2, &p),
            Err(CryptoError::WrongClass { .. })
        ));
        assert!(matches!(
            accept_in_process("identity", 1, &p),
            Err(CryptoError::ProofInvalid)
        ));
        let y = dealing.shares[1].public();
        assert_eq!(
            verify_partial(&Dleq::ribat(), "identity", &y, &r, &p)
                .unwrap()
                .custodian(),
            2
        );
        let shared = combine("identity", 1, &[v]).unwrap();
        assert_eq!(format!("{:?}", shared[0]), "SharedPoint([redacted])");
    }
}
