//! Splitting a class key among custodians with Feldman-verifiable Shamir sharing.
//!
//! The dealer draws `k_c`, and vsss-rs splits it into `n` shares with threshold `t` and
//! publishes the commitments `C_j = a_j·G` to the polynomial's coefficients. From them
//! anyone derives the group key `Y_c = C_0` and each public share `Y_{c,i} = Σ C_j·i^j`,
//! and each custodian checks that its secret share satisfies `k_{c,i}·G = Y_{c,i}` before
//! it accepts it. The dealing is consumed by the ceremony, which must drop it afterwards:
//! `k_c` itself is never returned.

use crate::secret::SecretScalar;
use crate::{CryptoError, Result};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use vsss_rs::{
    DefaultShare, FeldmanVerifierSet, IdentifierPrimeField, ShareVerifierGroup, feldman,
};

type ScalarShare = DefaultShare<IdentifierPrimeField<Scalar>, IdentifierPrimeField<Scalar>>;
type Verifier = ShareVerifierGroup<RistrettoPoint>;

/// The largest mesh we deal for. Custodian indexes are small integers on the wire.
pub const MAX_CUSTODIANS: usize = 255;

/// One custodian's secret share of one class key.
#[derive(Debug, Clone)]
pub struct KeyShare {
    /// Custodian index `i`, from 1 to `n` (the x-coordinate of the share).
    pub custodian: u32,
    /// The class this share belongs to.
    pub class: String,
    secret: SecretScalar,
}

impl KeyShare {
    /// Rebuilds a share read from a custodian's sealed file.
    pub fn new(custodian: u32, class: String, secret: SecretScalar) -> Self {
        Self {
            custodian,
            class,
            secret,
        }
    }

    /// The secret scalar `k_{c,i}`.
    pub fn secret(&self) -> &SecretScalar {
        &self.secret
    }

    /// A symmetric key for this custodian's own files at rest, derived from its share with
    /// HKDF-SHA256 under `label`: the share is uniformly random, and the label keeps keys
    /// for different files apart.
    pub fn derive_local_key(&self, label: &str) -> crate::Result<crate::secret::SecretBytes<32>> {
        let ikm = self.secret.to_bytes();
        let mut okm = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::new(None, ikm.as_ref())
            .expand(label.as_bytes(), &mut okm)
            .map_err(|_| CryptoError::Kdf("HKDF output length".into()))?;
        Ok(crate::secret::SecretBytes::new(okm))
    }

    /// `Y_{c,i} = k_{c,i}·G`.
    pub fn public(&self) -> RistrettoPoint {
        curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE * self.secret.expose()
    }
}

/// What a ceremony produces for one class.
#[derive(Debug)]
pub struct ClassDealing {
    /// The class name.
    pub class: String,
    /// Feldman commitments `C_0..C_{t-1}`; `C_0 = Y_c`.
    pub commitments: Vec<RistrettoPoint>,
    /// One secret share per custodian, index `i` at position `i-1`.
    pub shares: Vec<KeyShare>,
}

impl ClassDealing {
    /// `Y_c`.
    pub fn group_key(&self) -> RistrettoPoint {
        self.commitments[0]
    }
}

/// Checks `1 <= t <= n <= 255` and `t >= 2` (a threshold of one is a single key holder).
pub fn check_threshold(threshold: usize, custodians: usize) -> Result<()> {
    let reason = if threshold < 2 {
        Some("the threshold must be at least 2, or one custodian could decrypt alone (I1)")
    } else if threshold > custodians {
        Some("the threshold cannot exceed the number of custodians")
    } else if custodians > MAX_CUSTODIANS {
        Some("at most 255 custodians are supported")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(CryptoError::Threshold {
            threshold,
            custodians,
            reason,
        }),
        None => Ok(()),
    }
}

/// Draws a fresh class key and splits it `t`-of-`n`.
pub fn deal(class: &str, threshold: usize, custodians: usize) -> Result<ClassDealing> {
    check_threshold(threshold, custodians)?;
    let secret = IdentifierPrimeField(crate::entropy::scalar()?);
    let mut rng = crate::entropy::rng()?;
    let split = feldman::split_secret::<ScalarShare, Verifier>(
        threshold, custodians, &secret, None, &mut rng,
    );
    // The group secret is no longer needed once split.
    let mut secret = secret;
    zeroize::Zeroize::zeroize(&mut secret.0);
    let (raw_shares, verifiers) = split.map_err(|e| CryptoError::Sharing(e.to_string()))?;

    if verifiers.first().map(|g| g.0) != Some(RISTRETTO_BASEPOINT_POINT) {
        return Err(CryptoError::Sharing(
            "verifier set does not use the ristretto255 base point".into(),
        ));
    }
    let commitments: Vec<RistrettoPoint> = verifiers.iter().skip(1).map(|v| v.0).collect();
    if commitments.len() != threshold {
        return Err(CryptoError::Sharing(format!(
            "{} commitments for threshold {threshold}",
            commitments.len()
        )));
    }
    let mut shares = Vec::with_capacity(custodians);
    for (pos, s) in raw_shares.into_iter().enumerate() {
        let index = u32::try_from(pos + 1).map_err(|_| CryptoError::Sharing("index".into()))?;
        if s.identifier.0 != Scalar::from(index) {
            return Err(CryptoError::Sharing(format!(
                "share {pos} does not have identifier {index}"
            )));
        }
        shares.push(KeyShare::new(
            index,
            class.to_owned(),
            SecretScalar::new(s.value.0),
        ));
    }
    Ok(ClassDealing {
        class: class.to_owned(),
        commitments,
        shares,
    })
}

/// `Y_{c,i} = Σ_j C_j·i^j`, the public share of custodian `i` (through vsss-rs).
pub fn public_share(commitments: &[RistrettoPoint], custodian: u32) -> Result<RistrettoPoint> {
    let set: Vec<Verifier> = std::iter::once(vsss_rs::ValueGroup(RISTRETTO_BASEPOINT_POINT))
        .chain(commitments.iter().map(|c| vsss_rs::ValueGroup(*c)))
        .collect();
    let id = IdentifierPrimeField(Scalar::from(custodian));
    <Vec<Verifier> as FeldmanVerifierSet<ScalarShare, Verifier>>::evaluate_verifier_at(&set, &id)
        .map(|v| v.0)
        .map_err(|e| CryptoError::Sharing(e.to_string()))
}

/// Refuses a share that does not match the dealer's commitments (vsss-rs's Feldman check).
pub fn verify_share(share: &KeyShare, commitments: &[RistrettoPoint]) -> Result<()> {
    let set: Vec<Verifier> = std::iter::once(vsss_rs::ValueGroup(RISTRETTO_BASEPOINT_POINT))
        .chain(commitments.iter().map(|c| vsss_rs::ValueGroup(*c)))
        .collect();
    let mut candidate = ScalarShare {
        identifier: IdentifierPrimeField(Scalar::from(share.custodian)),
        value: IdentifierPrimeField(*share.secret.expose()),
    };
    let ok = set.verify_share(&candidate).is_ok();
    zeroize::Zeroize::zeroize(&mut candidate.value.0);
    if ok && share.custodian != 0 {
        Ok(())
    } else {
        Err(CryptoError::ShareRejected {
            custodian: share.custodian,
            class: share.class.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vsss_rs::ReadableShareSet;

    #[test]
    fn shares_match_commitments_and_public_shares() {
        let d = deal("identity", 2, 3).unwrap();
        assert_eq!(d.commitments.len(), 2);
        for s in &d.shares {
            verify_share(s, &d.commitments).unwrap();
            assert_eq!(
                public_share(&d.commitments, s.custodian).unwrap(),
                s.public()
            );
        }
    }

    #[test]
    fn a_share_that_does_not_match_is_refused() {
        let d = deal("financial", 2, 3).unwrap();
        let other = deal("financial", 2, 3).unwrap();
        // Another dealing's share, and a share presented under another index.
        assert_eq!(
            verify_share(&other.shares[0], &d.commitments),
            Err(CryptoError::ShareRejected {
                custodian: 1,
                class: "financial".into()
            })
        );
        let moved = KeyShare::new(2, "financial".into(), d.shares[0].secret().clone());
        assert!(verify_share(&moved, &d.commitments).is_err());
        let zero = KeyShare::new(0, "financial".into(), d.shares[0].secret().clone());
        assert!(verify_share(&zero, &d.commitments).is_err());
    }

    #[test]
    fn any_t_shares_reconstruct_the_group_key_in_the_library_too() {
        // Cross-check of our Lagrange code against vsss-rs's own combination.
        let d = deal("identity", 3, 5).unwrap();
        let pick: Vec<ScalarShare> = [0usize, 2, 4]
            .iter()
            .map(|&i| ScalarShare {
                identifier: IdentifierPrimeField(Scalar::from(d.shares[i].custodian)),
                value: IdentifierPrimeField(*d.shares[i].secret().expose()),
            })
            .collect();
        let k = pick.combine().unwrap().0;
        assert_eq!(
            curve25519_dalek::constants::RISTRETTO_BASEPOINT_TABLE * &k,
            d.group_key()
        );
        let lambdas = crate::combine::lagrange_at_zero(&[1, 3, 5]).unwrap();
        let mine: Scalar = [0usize, 2, 4]
            .iter()
            .zip(&lambdas)
            .map(|(&i, l)| l * d.shares[i].secret().expose())
            .sum();
        assert_eq!(mine, k);
    }

    #[test]
    fn thresholds_that_break_i1_are_refused() {
        assert!(deal("identity", 1, 3).is_err());
        assert!(deal("identity", 4, 3).is_err());
        assert!(check_threshold(2, 256).is_err());
        assert!(check_threshold(2, 2).is_ok());
        assert!(
            check_threshold(2, 255).is_ok(),
            "255 custodians are supported"
        );
    }
}
