//! A new class key generated jointly for a rotation: any `t` of the new shares open what
//! is sealed to the new group key, `t − 1` do not, the old key's shares open nothing sealed
//! to it, and a sub-share that fails its contributor's commitments is refused with the
//! contributor named.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use proptest::prelude::*;
use ribat_crypto::combine::{VerifiedPartial, answer, combine, verify_partial};
use ribat_crypto::dkg::{
    Contribution, combine_contributions, contribute, new_class, verify_contribution,
};
use ribat_crypto::dleq::Dleq;
use ribat_crypto::envelope::{Envelope, Sealer};
use ribat_crypto::group::GroupPublic;
use ribat_crypto::reshare::SubShare;
use ribat_crypto::shamir::{KeyShare, deal};
use ribat_crypto::{CryptoError, RistrettoPoint};
use std::collections::BTreeMap;

const CLASS: &str = "identity";

/// The new key's group (epoch 2), every custodian's new share, and a record sealed to it.
struct Rotated {
    group: GroupPublic,
    shares: Vec<KeyShare>,
    envelope: Envelope,
}

fn rotate(t: usize, n: usize, contributors: &[u32]) -> Rotated {
    let ids: Vec<u32> = (1..=n as u32).collect();
    let parts: Vec<Contribution> = contributors
        .iter()
        .map(|&i| contribute(i, CLASS, &ids, t).unwrap())
        .collect();
    let shares: Vec<KeyShare> = ids
        .iter()
        .map(|&j| {
            let subs: Vec<SubShare> = parts
                .iter()
                .map(|c| {
                    let s = c.subshares.iter().find(|s| s.to == j).unwrap().clone();
                    verify_contribution(&s, &c.commitments, &ids, t).unwrap();
                    s
                })
                .collect();
            combine_contributions(j, CLASS, contributors, &subs).unwrap()
        })
        .collect();
    let by: BTreeMap<u32, Vec<RistrettoPoint>> = parts
        .iter()
        .map(|c| (c.from, c.commitments.clone()))
        .collect();
    let class = new_class(&by, t, n).unwrap();
    for s in &shares {
        assert_eq!(s.public(), class.public_shares[s.custodian as usize - 1]);
    }
    let group =
        GroupPublic::reshared(t, n, 2, 1, BTreeMap::from([(CLASS.to_owned(), class)])).unwrap();
    let envelope = Sealer::new(CLASS, group.class(CLASS).unwrap(), 2)
        .seal("persons", "p-9", &[("name", "Nadia Bennani".as_bytes())])
        .unwrap();
    Rotated {
        group,
        shares,
        envelope,
    }
}

fn open_with(
    r: &Rotated,
    shares: &[&KeyShare],
    public: &GroupPublic,
    need: usize,
) -> Result<(), CryptoError> {
    let points = [r.envelope.r_point()?];
    let verified: Vec<VerifiedPartial> = shares
        .iter()
        .map(|s| {
            let p = answer(&Dleq::ribat(), s, &points).unwrap();
            verify_partial(
                &Dleq::ribat(),
                CLASS,
                public.public_share(CLASS, s.custodian).unwrap(),
                &points,
                &p,
            )
            .unwrap()
        })
        .collect();
    let shared = combine(CLASS, need, &verified)?;
    r.envelope
        .open(
            "persons",
            "p-9",
            CLASS,
            r.group.class(CLASS).unwrap(),
            2,
            &shared[0],
        )
        .map(|_| ())
}

fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    (0u32..(1 << n))
        .filter(|m| m.count_ones() as usize == k)
        .map(|m| (0..n).filter(|b| m & (1 << b) != 0).collect())
        .collect()
}

fn shape() -> impl Strategy<Value = (usize, usize, Vec<u32>)> {
    (2usize..=3, 0usize..=2).prop_flat_map(|(t, extra)| {
        let n = t + extra;
        // Any non-empty set of contributors; the mesh asks every custodian.
        let contributors = prop::sample::subsequence((1..=n as u32).collect::<Vec<_>>(), 1..=n);
        (Just(t), Just(n), contributors)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    #[test]
    fn any_t_new_shares_open_what_is_sealed_to_the_new_key_and_t_minus_1_do_not(
        (t, n, contributors) in shape()
    ) {
        let r = rotate(t, n, &contributors);
        for q in subsets(n, t) {
            let shares: Vec<&KeyShare> = q.iter().map(|&k| &r.shares[k]).collect();
            prop_assert_eq!(open_with(&r, &shares, &r.group, t), Ok(()), "quorum {:?}", q);
        }
        for q in subsets(n, t - 1) {
            let shares: Vec<&KeyShare> = q.iter().map(|&k| &r.shares[k]).collect();
            let short = matches!(
                open_with(&r, &shares, &r.group, t),
                Err(CryptoError::NotEnoughPartials { .. })
            );
            prop_assert!(short, "{} shares opened a {}-of-{} key", t - 1, t, n);
        }
    }

    #[test]
    fn the_old_keys_shares_open_nothing_sealed_to_the_new_one((t, n, contributors) in shape()) {
        let old = deal(CLASS, t, n).unwrap();
        let old_group = GroupPublic::from_dealings(t, n, 1, std::slice::from_ref(&old)).unwrap();
        let r = rotate(t, n, &contributors);
        prop_assert_ne!(
            old_group.class(CLASS).unwrap().group_key,
            r.group.class(CLASS).unwrap().group_key
        );
        let shares: Vec<&KeyShare> = old.shares[..t].iter().collect();
        let outcome = open_with(&r, &shares, &old_group, t);
        let refused = matches!(outcome, Err(CryptoError::FieldAuthentication { .. }));
        prop_assert!(refused, "{:?}", outcome);
    }
}

#[test]
fn a_sub_share_that_fails_its_contributors_commitments_is_refused_and_the_contributor_named() {
    let ids = [1, 2, 3];
    let honest = contribute(2, CLASS, &ids, 2).unwrap();
    verify_contribution(&honest.subshares[0], &honest.commitments, &ids, 2).unwrap();
    let other = contribute(2, CLASS, &ids, 2).unwrap();
    let swapped = SubShare::new(2, 1, CLASS.into(), other.subshares[0].secret().clone());
    let e = verify_contribution(&swapped, &honest.commitments, &ids, 2).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the sub-share custodian 2 dealt to custodian 1 for class `identity` is refused: it does not match its contributor's commitments"
    );
    // Commitments for another threshold, a custodian outside the set, a missing
    // contributor at combination: each refused.
    assert!(verify_contribution(&honest.subshares[0], &honest.commitments[..1], &ids, 2).is_err());
    let outsider = SubShare::new(2, 4, CLASS.into(), honest.subshares[0].secret().clone());
    assert!(verify_contribution(&outsider, &honest.commitments, &ids, 2).is_err());
    let e = combine_contributions(1, CLASS, &[1, 2], &[honest.subshares[0].clone()]).unwrap_err();
    assert!(
        e.to_string()
            .contains("exactly one sub-share from each contributor"),
        "{e}"
    );
}

#[test]
fn a_contribution_needs_distinct_nonzero_custodians_and_a_sound_threshold() {
    for (ids, t) in [
        (vec![0u32, 1, 2], 2),
        (vec![1, 1, 2], 2),
        (vec![1, 2, 3], 1),
        (vec![1, 2, 3], 4),
    ] {
        assert!(contribute(1, CLASS, &ids, t).is_err(), "{ids:?} t={t}");
    }
    assert!(contribute(1, CLASS, &[1, 2, 3], 2).is_ok());
}

#[test]
fn combining_takes_exactly_one_sub_share_from_each_contributor_for_this_custodian_and_class() {
    let ids = [1, 2, 3];
    let a = contribute(1, CLASS, &ids, 2).unwrap();
    let b = contribute(2, CLASS, &ids, 2).unwrap();
    let again = contribute(2, CLASS, &ids, 2).unwrap();
    let to_1 = |c: &Contribution| c.subshares[0].clone();
    assert!(combine_contributions(1, CLASS, &[1, 2], &[to_1(&a), to_1(&b)]).is_ok());
    // Two from contributor 2 and none from 1; or one too many from 2.
    for subs in [
        vec![to_1(&b), to_1(&again)],
        vec![to_1(&a), to_1(&b), to_1(&again)],
    ] {
        let e = combine_contributions(1, CLASS, &[1, 2], &subs).unwrap_err();
        assert!(e.to_string().contains("exactly one sub-share"), "{e}");
    }
    // Another custodian's sub-share, or another class's.
    let for_2 = b.subshares[1].clone();
    let e = combine_contributions(1, CLASS, &[1, 2], &[to_1(&a), for_2]).unwrap_err();
    assert!(e.to_string().contains("is for custodian 2"), "{e}");
    let other_class = SubShare::new(2, 1, "financial".into(), to_1(&b).secret().clone());
    let e = combine_contributions(1, CLASS, &[1, 2], &[to_1(&a), other_class]).unwrap_err();
    assert!(e.to_string().contains("of class `financial`"), "{e}");
}
