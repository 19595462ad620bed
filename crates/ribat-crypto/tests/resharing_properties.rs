//! Resharing a class key to a new custodian set: any `t'` new shares open what was sealed
//! before, a removed custodian's old share with `t' − 1` new ones opens nothing, and a
//! sub-share that fails its commitments is refused with its dealer named.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use proptest::prelude::*;
use ribat_crypto::combine::{VerifiedPartial, answer, combine, verify_partial};
use ribat_crypto::dleq::Dleq;
use ribat_crypto::envelope::{Envelope, Sealer};
use ribat_crypto::group::{ClassPublic, GroupPublic};
use ribat_crypto::reshare::{
    Plan, Redealing, SubShare, combine_subshares, redeal, reshared_class, verify_subshare,
};
use ribat_crypto::shamir::{KeyShare, deal};
use ribat_crypto::{CryptoError, RistrettoPoint};
use std::collections::BTreeMap;

const CLASS: &str = "financial";

/// An old sharing, a record sealed under it, and the new shares and group after resharing
/// from `dealers` to custodians `1..=n2` with threshold `t2`.
struct World {
    old: GroupPublic,
    old_shares: Vec<KeyShare>,
    envelope: Envelope,
    new: GroupPublic,
    new_shares: Vec<KeyShare>,
}

fn class_public(g: &GroupPublic) -> &ClassPublic {
    g.class(CLASS).unwrap()
}

fn world(t: usize, n: usize, dealers: &[u32], t2: usize, n2: usize) -> World {
    let d = deal(CLASS, t, n).unwrap();
    let old = GroupPublic::from_dealings(t, n, 1, std::slice::from_ref(&d)).unwrap();
    let envelope = Sealer::new(CLASS, class_public(&old), 1)
        .seal("persons", "p-1", &[("salary", b"8420000".as_slice())])
        .unwrap();
    let plan = Plan::new(dealers.to_vec(), t, (1..=n2 as u32).collect(), t2).unwrap();
    let deals: Vec<Redealing> = dealers
        .iter()
        .map(|&i| redeal(&d.shares[i as usize - 1], &plan).unwrap())
        .collect();
    let by_dealer: BTreeMap<u32, Vec<RistrettoPoint>> = deals
        .iter()
        .map(|r| (r.from, r.commitments.clone()))
        .collect();
    let class = reshared_class(class_public(&old), &plan, &by_dealer, n2).unwrap();
    let new_shares = plan
        .new
        .iter()
        .map(|&j| {
            let subs: Vec<SubShare> = deals
                .iter()
                .map(|r| {
                    let s = r.subshares.iter().find(|s| s.to == j).unwrap().clone();
                    let y = old.public_share(CLASS, r.from).unwrap();
                    verify_subshare(&s, &r.commitments, y, &plan).unwrap();
                    s
                })
                .collect();
            combine_subshares(j, CLASS, &plan, &subs).unwrap()
        })
        .collect();
    let new =
        GroupPublic::reshared(t2, n2, 1, 2, BTreeMap::from([(CLASS.to_owned(), class)])).unwrap();
    World {
        old,
        old_shares: d.shares,
        envelope,
        new,
        new_shares,
    }
}

/// Opens the record with the given shares, each answer checked against `group` (the one
/// its share belongs to), combined as if they were `need` shares of one polynomial.
fn open(
    world: &World,
    shares: &[(&KeyShare, &GroupPublic)],
    need: usize,
) -> Result<(), CryptoError> {
    let r = [world.envelope.r_point()?];
    let verified: Vec<VerifiedPartial> = shares
        .iter()
        .map(|(s, g)| {
            let p = answer(&Dleq::ribat(), s, &r).unwrap();
            verify_partial(
                &Dleq::ribat(),
                CLASS,
                g.public_share(CLASS, s.custodian).unwrap(),
                &r,
                &p,
            )
            .unwrap()
        })
        .collect();
    let shared = combine(CLASS, need, &verified)?;
    world
        .envelope
        .open(
            "persons",
            "p-1",
            CLASS,
            class_public(&world.new),
            1,
            &shared[0],
        )
        .map(|_| ())
}

fn subsets(items: &[u32], k: usize) -> Vec<Vec<u32>> {
    (0u32..(1 << items.len()))
        .filter(|m| m.count_ones() as usize == k)
        .map(|m| {
            items
                .iter()
                .enumerate()
                .filter(|(b, _)| m & (1 << b) != 0)
                .map(|(_, i)| *i)
                .collect()
        })
        .collect()
}

/// A shape: old `t`-of-`n`, `t` dealers among them, new `t2`-of-`n2`.
fn shape() -> impl Strategy<Value = (usize, usize, Vec<u32>, usize, usize)> {
    (2usize..=3, 0usize..=2, 2usize..=3, 0usize..=2).prop_flat_map(|(t, extra, t2, extra2)| {
        let n = t + extra;
        let dealers = prop::sample::subsequence((1..=n as u32).collect::<Vec<_>>(), t);
        (Just(t), Just(n), dealers, Just(t2), Just(t2 + extra2))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10))]

    #[test]
    fn any_t_new_shares_open_what_was_sealed_before_under_the_same_group_key(
        (t, n, dealers, t2, n2) in shape()
    ) {
        let w = world(t, n, &dealers, t2, n2);
        prop_assert_eq!(class_public(&w.new).group_key, class_public(&w.old).group_key);
        let ids: Vec<u32> = (1..=n2 as u32).collect();
        for q in subsets(&ids, t2) {
            let shares: Vec<(&KeyShare, &GroupPublic)> =
                q.iter().map(|&j| (&w.new_shares[j as usize - 1], &w.new)).collect();
            prop_assert_eq!(open(&w, &shares, t2), Ok(()), "new quorum {:?}", q);
        }
    }

    #[test]
    fn a_removed_custodians_old_share_with_any_t_minus_1_new_ones_opens_nothing(
        (t, n, dealers, t2, n2) in shape(), removed_pick in any::<prop::sample::Index>()
    ) {
        let w = world(t, n, &dealers, t2, n2);
        let removed = &w.old_shares[removed_pick.index(n)];
        // New shares at other indexes than the removed one's (two shares at one x open
        // nothing by construction: the combiner refuses them).
        let others: Vec<u32> = (1..=n2 as u32).filter(|&j| j != removed.custodian).collect();
        for q in subsets(&others, t2 - 1) {
            let mut shares: Vec<(&KeyShare, &GroupPublic)> = vec![(removed, &w.old)];
            shares.extend(q.iter().map(|&j| (&w.new_shares[j as usize - 1], &w.new)));
            let outcome = open(&w, &shares, t2);
            let refused = matches!(outcome, Err(CryptoError::FieldAuthentication { .. }));
            prop_assert!(refused, "old share {} with new {:?}: {:?}", removed.custodian, q, outcome);
        }
    }
}

#[test]
fn a_sub_share_that_fails_its_commitments_is_refused_and_its_dealer_named() {
    let d = deal(CLASS, 2, 3).unwrap();
    let old = GroupPublic::from_dealings(2, 3, 1, std::slice::from_ref(&d)).unwrap();
    let plan = Plan::new(vec![1, 3], 2, vec![1, 2, 3], 2).unwrap();
    let honest = redeal(&d.shares[0], &plan).unwrap();
    let y1 = old.public_share(CLASS, 1).unwrap();
    let to_2 = honest.subshares[1].clone();
    verify_subshare(&to_2, &honest.commitments, y1, &plan).unwrap();
    // Its value changed in transit (or by its dealer): refused, dealer 1 named.
    let other = redeal(&d.shares[0], &plan).unwrap();
    let swapped = SubShare::new(1, 2, CLASS.into(), other.subshares[1].secret().clone());
    let e = verify_subshare(&swapped, &honest.commitments, y1, &plan).unwrap_err();
    assert_eq!(
        e.to_string(),
        "the sub-share custodian 1 dealt to custodian 2 for class `financial` is refused: it does not match its dealer's commitments"
    );
    // Custodian 3 deals something other than its own share (here, custodian 2's): its
    // commitments and sub-shares agree, but not with its public share.
    let cheat = redeal(
        &KeyShare::new(3, CLASS.into(), d.shares[1].secret().clone()),
        &plan,
    )
    .unwrap();
    let e = verify_subshare(
        &cheat.subshares[0],
        &cheat.commitments,
        old.public_share(CLASS, 3).unwrap(),
        &plan,
    )
    .unwrap_err();
    assert!(
        matches!(&e, CryptoError::SubShareRejected { from: 3, to: 1, reason, .. } if reason.contains("did not share its own key share")),
        "{e}"
    );
    // And the group key check catches it again when the commitments are summed.
    let by_dealer = BTreeMap::from([(1, honest.commitments.clone()), (3, cheat.commitments)]);
    assert!(reshared_class(class_public(&old), &plan, &by_dealer, 3).is_err());
    // A dealer outside the plan, or a sub-share for a custodian outside it, is refused.
    let stray = SubShare::new(2, 2, CLASS.into(), to_2.secret().clone());
    assert!(verify_subshare(&stray, &honest.commitments, y1, &plan).is_err());
}

#[test]
fn two_of_three_becomes_three_of_five_through_the_same_path() {
    let w = world(2, 3, &[2, 3], 3, 5);
    assert_eq!(w.new.threshold, 3);
    let two_new: Vec<(&KeyShare, &GroupPublic)> = [4u32, 5]
        .iter()
        .map(|&j| (&w.new_shares[j as usize - 1], &w.new))
        .collect();
    assert!(matches!(
        open(&w, &two_new, 3),
        Err(CryptoError::NotEnoughPartials { .. })
    ));
    let three_new: Vec<(&KeyShare, &GroupPublic)> = [1u32, 4, 5]
        .iter()
        .map(|&j| (&w.new_shares[j as usize - 1], &w.new))
        .collect();
    assert_eq!(open(&w, &three_new, 3), Ok(()));
}

#[test]
fn combining_takes_exactly_one_sub_share_from_each_dealer_for_this_custodian_and_class() {
    let d = deal(CLASS, 2, 3).unwrap();
    let plan = Plan::new(vec![1, 3], 2, vec![1, 2, 3], 2).unwrap();
    let one = redeal(&d.shares[0], &plan).unwrap();
    let three = redeal(&d.shares[2], &plan).unwrap();
    let three_again = redeal(&d.shares[2], &plan).unwrap();
    let to_1 = |r: &Redealing| r.subshares[0].clone();
    assert!(combine_subshares(1, CLASS, &plan, &[to_1(&one), to_1(&three)]).is_ok());
    for subs in [
        vec![to_1(&three), to_1(&three_again)],
        vec![to_1(&one), to_1(&three), to_1(&three_again)],
    ] {
        let e = combine_subshares(1, CLASS, &plan, &subs).unwrap_err();
        assert!(e.to_string().contains("exactly one sub-share"), "{e}");
    }
    let e =
        combine_subshares(1, CLASS, &plan, &[to_1(&one), three.subshares[1].clone()]).unwrap_err();
    assert!(e.to_string().contains("is for custodian 2"), "{e}");
    let other_class = SubShare::new(3, 1, "identity".into(), to_1(&three).secret().clone());
    let e = combine_subshares(1, CLASS, &plan, &[to_1(&one), other_class]).unwrap_err();
    assert!(e.to_string().contains("of class `identity`"), "{e}");
}
