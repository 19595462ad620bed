//! Resharing a class key to a new set of custodians without ever rebuilding it, so that a
//! custodian whose host was taken can be replaced and its stolen share made worthless,
//! with no record re-sealed.
//!
//! The protocol (share redistribution in the manner of Desmedt–Jajodia and Wong–Wang–Wing,
//! with Feldman commitments), for one class, from an old sharing of `k_c` with public shares
//! `Y_i = s_i·G` to new custodians `J` with threshold `t'`:
//!
//! 1. A set `S` of `t` old custodians is chosen. Each `i ∈ S` computes its Lagrange
//!    coefficient `λ_i` at 0 over `S`, and splits `w_i = λ_i·s_i` with a fresh random
//!    polynomial `g_i` of degree `t' − 1` (vsss-rs's Feldman split, at the new indexes). It
//!    publishes the commitments `D_{i,k} = a_{i,k}·G` (so `D_{i,0} = w_i·G`) and sends the
//!    sub-share `g_i(j)` to each new custodian `j`, confidentially.
//! 2. New custodian `j` accepts `g_i(j)` only if `D_{i,0} = λ_i·Y_i` (the sender shared its
//!    own share, not some other value: `Y_i` comes from the group in force) and
//!    `g_i(j)·G = Σ_k D_{i,k}·j^k` (vsss-rs's Feldman check). A sub-share that fails is
//!    refused and its sender named ([`CryptoError::SubShareRejected`]).
//! 3. `s'_j = Σ_{i∈S} g_i(j)`. The new commitments are `C'_k = Σ_i D_{i,k}`; their first is
//!    `Σ_i λ_i·Y_i = Y_c`: the group key does not change, so no record is re-sealed. The
//!    public shares `Y'_j` follow from `C'` and are all new.
//!
//! Why a removed custodian's old share is then worthless: the new shares lie on
//! `Σ_i g_i`, a polynomial independent of the old one except at 0, so an old share and
//! `t' − 1` new ones are points of two different polynomials and interpolate to nothing.
//!
//! What it assumes: the old custodians in `S` follow the protocol and every old custodian
//! erases its old share afterwards (one that keeps it, together with `t − 1` other kept old
//! shares, still opens everything: resharing does not repair a sharing an attacker already
//! holds `t` shares of — rotating the class key does); the attacker never held `t` old
//! shares at once; sub-shares reach their custodian confidentially (in the mesh, over mTLS
//! with node certificates) and are sealed at once under its passphrase.

use crate::combine::lagrange_at_zero;
use crate::group::ClassPublic;
use crate::secret::SecretScalar;
use crate::shamir::{KeyShare, check_threshold, public_share};
use crate::{CryptoError, Result};
use curve25519_dalek::constants::RISTRETTO_BASEPOINT_POINT;
use curve25519_dalek::ristretto::RistrettoPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use std::collections::{BTreeMap, BTreeSet};
use vsss_rs::{
    DefaultShare, FeldmanVerifierSet, IdentifierPrimeField, ParticipantIdGenerator,
    ShareVerifierGroup, feldman,
};

type ScalarShare = DefaultShare<IdentifierPrimeField<Scalar>, IdentifierPrimeField<Scalar>>;
type Verifier = ShareVerifierGroup<RistrettoPoint>;

/// Who reshares to whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The old custodians that deal (`S`, exactly the old threshold of them).
    pub dealers: Vec<u32>,
    /// The new custodians' indexes (`J`).
    pub new: Vec<u32>,
    /// The new threshold `t'`.
    pub new_threshold: usize,
}

impl Plan {
    /// A plan whose dealers are `old_threshold` distinct old custodians and whose new set
    /// is `new` with threshold `new_threshold` (at least 2, at most `|new|`).
    pub fn new(
        dealers: Vec<u32>,
        old_threshold: usize,
        new: Vec<u32>,
        new_threshold: usize,
    ) -> Result<Self> {
        let refuse = |reason: String| Err(CryptoError::Sharing(reason));
        if dealers.len() != old_threshold {
            return refuse(format!(
                "{} old custodians deal where exactly the old threshold, {old_threshold}, must",
                dealers.len()
            ));
        }
        for (what, ids) in [("old", &dealers), ("new", &new)] {
            let distinct: BTreeSet<&u32> = ids.iter().collect();
            if distinct.len() != ids.len() || ids.contains(&0) {
                return refuse(format!(
                    "the {what} custodians' indexes must be distinct and above 0: {ids:?}"
                ));
            }
        }
        check_threshold(new_threshold, new.len())?;
        Ok(Self {
            dealers,
            new,
            new_threshold,
        })
    }

    /// `λ_i` at 0 over the dealers, for dealer `i`.
    fn lambda(&self, dealer: u32) -> Result<Scalar> {
        let pos = self
            .dealers
            .iter()
            .position(|&d| d == dealer)
            .ok_or_else(|| {
                CryptoError::Sharing(format!(
                    "custodian {dealer} is not among the dealers {:?}",
                    self.dealers
                ))
            })?;
        Ok(lagrange_at_zero(&self.dealers)?[pos])
    }
}

/// One old custodian's sub-share for one new custodian (secret: it travels only to `to`).
#[derive(Debug, Clone)]
pub struct SubShare {
    /// The old custodian that dealt it.
    pub from: u32,
    /// The new custodian it is for.
    pub to: u32,
    /// The class.
    pub class: String,
    value: SecretScalar,
}

impl SubShare {
    /// Rebuilds a sub-share received over the wire.
    pub fn new(from: u32, to: u32, class: String, value: SecretScalar) -> Self {
        Self {
            from,
            to,
            class,
            value,
        }
    }

    /// `g_i(j)`, for sending it to `to` (sealed or over mTLS, never logged).
    pub fn secret(&self) -> &SecretScalar {
        &self.value
    }
}

/// What one old custodian deals for one class: its public commitments and one sub-share
/// per new custodian.
#[derive(Debug)]
pub struct Redealing {
    /// The dealer.
    pub from: u32,
    /// The class.
    pub class: String,
    /// `D_{i,0..t'-1}` (public).
    pub commitments: Vec<RistrettoPoint>,
    /// `g_i(j)` for each new custodian, in the plan's order (secret).
    pub subshares: Vec<SubShare>,
}

fn verifier_set(commitments: &[RistrettoPoint]) -> Vec<Verifier> {
    std::iter::once(vsss_rs::ValueGroup(RISTRETTO_BASEPOINT_POINT))
        .chain(commitments.iter().map(|c| vsss_rs::ValueGroup(*c)))
        .collect()
}

/// Old custodian `share.custodian` splits `λ_i·s_i` for the new custodians of `plan`.
pub fn redeal(share: &KeyShare, plan: &Plan) -> Result<Redealing> {
    let lambda = plan.lambda(share.custodian)?;
    let w = SecretScalar::new(lambda * share.secret().expose());
    let (commitments, subshares) = feldman_split(
        share.custodian,
        &share.class,
        &w,
        &plan.new,
        plan.new_threshold,
    )?;
    Ok(Redealing {
        from: share.custodian,
        class: share.class.clone(),
        commitments,
        subshares,
    })
}

/// Splits `secret` (of custodian `from`, for `class`) among `ids` with `threshold` by
/// vsss-rs's Feldman split: the commitments `a_k·G` and one sub-share per id, in order.
pub(crate) fn feldman_split(
    from: u32,
    class: &str,
    secret: &SecretScalar,
    ids: &[u32],
    threshold: usize,
) -> Result<(Vec<RistrettoPoint>, Vec<SubShare>)> {
    let mut w = IdentifierPrimeField(*secret.expose());
    let participants: Vec<IdentifierPrimeField<Scalar>> = ids
        .iter()
        .map(|&j| IdentifierPrimeField(Scalar::from(j)))
        .collect();
    let mut rng = crate::entropy::rng()?;
    let split = feldman::split_secret_with_participant_generators::<ScalarShare, Verifier>(
        threshold,
        ids.len(),
        &w,
        None,
        &mut rng,
        &[ParticipantIdGenerator::List {
            list: &participants,
        }],
    );
    zeroize::Zeroize::zeroize(&mut w.0);
    let (raw, verifiers) = split.map_err(|e| CryptoError::Sharing(e.to_string()))?;
    if verifiers.first().map(|g| g.0) != Some(RISTRETTO_BASEPOINT_POINT) {
        return Err(CryptoError::Sharing(
            "verifier set does not use the ristretto255 base point".into(),
        ));
    }
    let commitments: Vec<RistrettoPoint> = verifiers.iter().skip(1).map(|v| v.0).collect();
    if commitments.len() != threshold || raw.len() != ids.len() {
        return Err(CryptoError::Sharing(format!(
            "{} commitments and {} sub-shares for threshold {} over {} custodians",
            commitments.len(),
            raw.len(),
            threshold,
            ids.len()
        )));
    }
    let mut subshares = Vec::with_capacity(raw.len());
    for (s, &j) in raw.into_iter().zip(ids) {
        if s.identifier.0 != Scalar::from(j) {
            return Err(CryptoError::Sharing(format!(
                "a sub-share does not have identifier {j}"
            )));
        }
        subshares.push(SubShare::new(
            from,
            j,
            class.to_owned(),
            SecretScalar::new(s.value.0),
        ));
    }
    Ok((commitments, subshares))
}

/// Whether `sub` lies on the polynomial its sender committed to (vsss-rs's Feldman check:
/// `g(j)·G = Σ_k D_k·j^k`).
pub(crate) fn feldman_holds(sub: &SubShare, commitments: &[RistrettoPoint]) -> bool {
    let mut candidate = ScalarShare {
        identifier: IdentifierPrimeField(Scalar::from(sub.to)),
        value: IdentifierPrimeField(*sub.value.expose()),
    };
    let ok = verifier_set(commitments).verify_share(&candidate).is_ok();
    zeroize::Zeroize::zeroize(&mut candidate.value.0);
    ok
}

/// New custodian `sub.to` checks a sub-share against its dealer's commitments and the
/// dealer's public share in the group in force; refuses it, naming the dealer, otherwise.
pub fn verify_subshare(
    sub: &SubShare,
    commitments: &[RistrettoPoint],
    dealer_public: &RistrettoPoint,
    plan: &Plan,
) -> Result<()> {
    let reject = |reason: &str| CryptoError::SubShareRejected {
        from: sub.from,
        to: sub.to,
        class: sub.class.clone(),
        reason: reason.to_owned(),
    };
    if !plan.new.contains(&sub.to) {
        return Err(reject("it is for a custodian outside the new set"));
    }
    if commitments.len() != plan.new_threshold {
        return Err(reject(
            "its dealer published commitments for another threshold",
        ));
    }
    let lambda = plan
        .lambda(sub.from)
        .map_err(|_| reject("its sender is not a dealer"))?;
    if commitments[0] != lambda * dealer_public {
        return Err(reject(
            "its dealer did not share its own key share (the first commitment is not λ·Y_i)",
        ));
    }
    if feldman_holds(sub, commitments) {
        Ok(())
    } else {
        Err(reject("it does not match its dealer's commitments"))
    }
}

/// New custodian `to`'s share: the sum of one verified sub-share from each dealer.
pub fn combine_subshares(to: u32, class: &str, plan: &Plan, subs: &[SubShare]) -> Result<KeyShare> {
    sum_one_from_each(to, class, &plan.dealers, subs, "dealer")
}

/// The sum of exactly one sub-share from each of `senders` (`who`: dealers, contributors),
/// all for custodian `to` and `class`.
pub(crate) fn sum_one_from_each(
    to: u32,
    class: &str,
    senders: &[u32],
    subs: &[SubShare],
    who: &str,
) -> Result<KeyShare> {
    let from: BTreeSet<u32> = subs.iter().map(|s| s.from).collect();
    let want: BTreeSet<u32> = senders.iter().copied().collect();
    if from != want || subs.len() != want.len() {
        return Err(CryptoError::Sharing(format!(
            "custodian {to} needs exactly one sub-share from each {who} {senders:?}, has them from {:?}",
            subs.iter().map(|s| s.from).collect::<Vec<_>>()
        )));
    }
    if let Some(s) = subs.iter().find(|s| s.to != to || s.class != class) {
        return Err(CryptoError::Sharing(format!(
            "a sub-share from {} is for custodian {} of class `{}`, not {to} of `{class}`",
            s.from, s.to, s.class
        )));
    }
    let sum = subs
        .iter()
        .fold(Scalar::ZERO, |acc, s| acc + s.value.expose());
    Ok(KeyShare::new(to, class.to_owned(), SecretScalar::new(sum)))
}

/// The class's public keys after the resharing: `C'_k = Σ_i D_{i,k}`, with the group key
/// checked unchanged (a dealer who shared anything but `λ_i·s_i` is caught here too) and
/// the public shares of new custodians `1..=custodians`.
pub fn reshared_class(
    old: &ClassPublic,
    plan: &Plan,
    by_dealer: &BTreeMap<u32, Vec<RistrettoPoint>>,
    custodians: usize,
) -> Result<ClassPublic> {
    let mut sum = vec![RistrettoPoint::identity(); plan.new_threshold];
    for d in &plan.dealers {
        let c = by_dealer
            .get(d)
            .ok_or_else(|| CryptoError::Sharing(format!("no commitments from dealer {d}")))?;
        if c.len() != plan.new_threshold {
            return Err(CryptoError::Sharing(format!(
                "dealer {d} committed to {} coefficients, not {}",
                c.len(),
                plan.new_threshold
            )));
        }
        for (acc, p) in sum.iter_mut().zip(c) {
            *acc += p;
        }
    }
    if sum[0] != old.group_key {
        return Err(CryptoError::Sharing(
            "the reshared commitments do not keep the group key: a dealer shared another value"
                .into(),
        ));
    }
    if plan.new.iter().any(|&j| j as usize > custodians) {
        return Err(CryptoError::Sharing(format!(
            "new custodians {:?} do not fit a group of {custodians}",
            plan.new
        )));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shamir::deal;

    #[test]
    fn a_plan_needs_exactly_t_distinct_dealers_and_a_sound_new_threshold() {
        assert!(Plan::new(vec![1, 3], 2, vec![1, 2, 3], 2).is_ok());
        for (dealers, new, t2) in [
            (vec![1], vec![1, 2, 3], 2),
            (vec![1, 1], vec![1, 2, 3], 2),
            (vec![1, 3], vec![1, 2, 2], 2),
            (vec![1, 3], vec![0, 1, 2], 2),
            (vec![1, 3], vec![1, 2, 3], 1),
            (vec![1, 3], vec![1, 2], 3),
        ] {
            assert!(
                Plan::new(dealers.clone(), 2, new.clone(), t2).is_err(),
                "{dealers:?} → {new:?} t'={t2}"
            );
        }
    }

    #[test]
    fn the_group_key_stays_and_every_public_share_changes() {
        let d = deal("identity", 2, 3).unwrap();
        let old = ClassPublic {
            group_key: d.group_key(),
            commitments: d.commitments.clone(),
            public_shares: d.shares.iter().map(|s| s.public()).collect(),
        };
        let plan = Plan::new(vec![1, 3], 2, vec![1, 2, 3], 2).unwrap();
        let deals: Vec<Redealing> = [0, 2]
            .iter()
            .map(|&k| redeal(&d.shares[k], &plan).unwrap())
            .collect();
        let by_dealer = deals
            .iter()
            .map(|r| (r.from, r.commitments.clone()))
            .collect();
        let new = reshared_class(&old, &plan, &by_dealer, 3).unwrap();
        assert_eq!(new.group_key, old.group_key);
        for j in 1..=3u32 {
            let subs: Vec<SubShare> = deals
                .iter()
                .map(|r| {
                    let s = r.subshares.iter().find(|s| s.to == j).unwrap().clone();
                    let y = &old.public_shares[r.from as usize - 1];
                    verify_subshare(&s, &r.commitments, y, &plan).unwrap();
                    s
                })
                .collect();
            let share = combine_subshares(j, "identity", &plan, &subs).unwrap();
            assert_eq!(share.public(), new.public_shares[j as usize - 1]);
            assert_ne!(share.public(), old.public_shares[j as usize - 1]);
        }
    }
}
