//! A key rotation at the custodians: new shares for every class (a DKG among them), the
//! previous epoch's kept while records remain under it; each record answered with the share
//! of the epoch it is stored under; the purpose `key-rotation` opens only records still
//! under the epoch rotated away from, once each.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use ribat_crypto::dkg;
use ribat_crypto::envelope::Sealer;
use ribat_crypto::group::GroupPublic;
use ribat_crypto::passphrase::KdfParams;
use ribat_crypto::shamir::KeyShare;
use ribat_custodian::keystore;
use ribat_custodian::{Custodian, CustodianError, LocalCustodian, PartialRequest, QuorumReader};
use ribat_store::{PointSource, Reseal, SealedRef, Store, StoredClass};
use std::collections::BTreeMap;
use std::sync::Arc;

/// New keys for every class of `group` by all three custodians, and each one's shares.
fn dkg_all(group: &GroupPublic) -> (GroupPublic, BTreeMap<u32, Vec<KeyShare>>) {
    let ids = [1u32, 2, 3];
    let mut classes = BTreeMap::new();
    let mut shares: BTreeMap<u32, Vec<KeyShare>> = BTreeMap::new();
    for class in group.classes.keys() {
        let cs: Vec<_> = ids
            .iter()
            .map(|&i| dkg::contribute(i, class, &ids, 2).unwrap())
            .collect();
        let commitments: BTreeMap<u32, _> =
            cs.iter().map(|c| (c.from, c.commitments.clone())).collect();
        for j in ids {
            let mine: Vec<_> = cs
                .iter()
                .flat_map(|c| c.subshares.iter().filter(|s| s.to == j).cloned())
                .collect();
            for s in &mine {
                dkg::verify_contribution(s, &commitments[&s.from], &ids, 2).unwrap();
            }
            shares
                .entry(j)
                .or_default()
                .push(dkg::combine_contributions(j, class, &ids, &mine).unwrap());
        }
        classes.insert(class.clone(), dkg::new_class(&commitments, 2, 3).unwrap());
    }
    (group.rotated(classes).unwrap(), shares)
}

fn rotation_request(ids: &[&str], epoch: Option<u32>) -> PartialRequest {
    PartialRequest {
        epoch,
        ..request(
            "rotation.embedded",
            "rotation",
            "key-rotation",
            "identity",
            ids,
        )
    }
}

fn open(v: &Vault, i: usize) -> Arc<LocalCustodian> {
    Arc::new(
        LocalCustodian::open(
            &v.custodian_dirs[i - 1],
            &v.passphrases[i - 1],
            v.store.clone(),
            v.clock.clone(),
        )
        .unwrap(),
    )
}

fn reader(v: &Vault, group: &GroupPublic, cs: &[Arc<LocalCustodian>]) -> QuorumReader {
    QuorumReader::new(
        group.clone(),
        cs.iter().map(|c| c.clone() as Arc<dyn Custodian>).collect(),
        v.store.clone(),
    )
}

/// Moves `id`'s identity class to the rotated group's epoch, as the job does.
fn reseal_identity(v: &Vault, rotated: &GroupPublic, id: &str, name: &str) {
    let before = v.store.point("persons", id, "identity").unwrap().unwrap();
    let env = Sealer::new(
        "identity",
        rotated.class("identity").unwrap(),
        rotated.epoch,
    )
    .seal("persons", id, &[("name", name.as_bytes())])
    .unwrap();
    let moved = v
        .store
        .reseal(&[Reseal {
            at: SealedRef {
                table: "persons".into(),
                record_id: id.into(),
                class: "identity".into(),
            },
            from_epoch: before.epoch,
            from_r: before.r,
            to: StoredClass {
                class: "identity".into(),
                epoch: env.epoch,
                r: env.r,
                envelope: env.to_bytes().unwrap(),
            },
        }])
        .unwrap();
    assert_eq!(moved, 1);
}

#[test]
fn without_a_rotation_the_rotation_purpose_opens_nothing() {
    let v = Vault::new();
    let err = v
        .custodian(1)
        .partial_decrypt(&rotation_request(&["p-0"], None))
        .unwrap_err();
    assert!(
        matches!(err, CustodianError::NoRotation { rotating: None, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("no key rotation"), "{err}");
}

#[test]
fn a_rotated_custodian_answers_each_record_with_the_share_of_its_epoch() {
    let v = Vault::new();
    let kdf = KdfParams::insecure_for_tests();
    let old: Vec<_> = (1..=3)
        .map(|i| keystore::load(&v.custodian_dirs[i - 1], &v.passphrases[i - 1]).unwrap())
        .collect();
    let (rotated, mut shares) = dkg_all(&v.group);
    for (i, keys) in old.iter().enumerate() {
        let dir = &v.custodian_dirs[i];
        let mine = shares.remove(&(i as u32 + 1)).unwrap();
        keystore::install_rotation(dir, keys, &mine, &rotated, &v.passphrases[i], kdf).unwrap();
        keystore::promote(dir).unwrap();
        // A second rotation is refused while this one is unfinished.
        let now = keystore::load(dir, &v.passphrases[i]).unwrap();
        assert_eq!(
            (now.epoch, now.previous.as_ref().map(|p| p.epoch)),
            (2, Some(1))
        );
        let err = keystore::install_rotation(dir, &now, &[], &rotated, &v.passphrases[i], kdf)
            .unwrap_err();
        assert!(err.to_string().contains("unfinished"), "{err}");
        // Its witness key and its honey list (sealed under epoch 1) carry over.
        assert_eq!(
            keystore::witness_seed(&now).unwrap().expose(),
            keystore::witness_seed(keys).unwrap().expose()
        );
    }
    let cs: Vec<_> = (1..=3).map(|i| open(&v, i)).collect();
    let r = reader(&v, &rotated, &cs);
    let name = |read: &ribat_custodian::QuorumRead, k: usize| {
        String::from_utf8(read.records[k].1.get("name").unwrap().to_vec()).unwrap()
    };

    // Every record is still under epoch 1 and reads.
    let read = r
        .read(&request(
            "c1",
            "clerk",
            "counter-service",
            "identity",
            &["p-0"],
        ))
        .unwrap();
    assert_eq!(name(&read, 0), NAMES[0]);

    // The job reads a honey record like any other, without quarantine.
    cs[0]
        .partial_decrypt(&rotation_request(&[HONEY, "p-1"], Some(1)))
        .unwrap();
    cs[0]
        .partial_decrypt(&rotation_request(&["p-2"], Some(1)))
        .unwrap();

    // p-0 re-sealed: it reads with the new shares, and a batch spanning both epochs
    // comes back whole and in order.
    reseal_identity(&v, &rotated, "p-0", NAMES[0]);
    let read = r
        .read(&request(
            "c2",
            "clerk",
            "counter-service",
            "identity",
            &["p-1", "p-0", "p-2"],
        ))
        .unwrap();
    assert_eq!(
        (name(&read, 0), name(&read, 1), name(&read, 2)),
        (
            NAMES[1].to_owned(),
            NAMES[0].to_owned(),
            NAMES[2].to_owned()
        )
    );
    assert!(read.faults.is_empty(), "{:?}", read.faults);
    // Each epoch's request was answered by two custodians, named once each.
    let mut by = read.served_by.clone();
    by.sort_unstable();
    by.dedup();
    assert_eq!(
        (read.served_by.len(), by.len()),
        (2, 2),
        "{:?}",
        read.served_by
    );

    // Re-sealed, p-0 is closed to the rotation purpose (each record opens once); and the
    // purpose names the epoch rotated away from, no other.
    let err = cs[1]
        .partial_decrypt(&rotation_request(&["p-0"], Some(1)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CustodianError::WrongEpoch {
                record_epoch: 2,
                held: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = cs[1]
        .partial_decrypt(&rotation_request(&["p-0"], Some(2)))
        .unwrap_err();
    assert!(
        matches!(
            err,
            CustodianError::NoRotation {
                asked: 2,
                rotating: Some(1),
                ..
            }
        ),
        "{err}"
    );

    // The share file binds its previous epoch: a file claiming none does not open.
    let path = v.custodian_dirs[2].join(keystore::SHARES_FILE);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    doc.as_object_mut().unwrap().remove("previous_epoch");
    std::fs::write(&path, serde_json::to_string(&doc).unwrap()).unwrap();
    assert!(keystore::load(&v.custodian_dirs[2], &v.passphrases[2]).is_err());
    std::fs::write(&path, text).unwrap();

    // Finished: the previous shares are gone; the witness key stays.
    for i in 0..3 {
        let dir = &v.custodian_dirs[i];
        let keys = keystore::load(dir, &v.passphrases[i]).unwrap();
        keystore::finish_rotation(dir, &keys, &v.passphrases[i], kdf).unwrap();
        keystore::promote(dir).unwrap();
        let done = keystore::load(dir, &v.passphrases[i]).unwrap();
        assert_eq!((done.epoch, done.previous.is_none()), (2, true));
        assert!(
            !std::fs::read_to_string(dir.join(keystore::GROUP_FILE))
                .unwrap()
                .contains("previous")
        );
        assert_eq!(
            keystore::witness_seed(&done).unwrap().expose(),
            keystore::witness_seed(&old[i]).unwrap().expose()
        );
        cs[i].replace_keys(done).unwrap();
    }
    // A record left under epoch 1 (none would be, after the job) opens no more.
    let err = cs[0]
        .partial_decrypt(&request(
            "c3",
            "clerk",
            "counter-service",
            "identity",
            &["p-1"],
        ))
        .unwrap_err();
    assert!(matches!(err, CustodianError::WrongEpoch { .. }), "{err}");
    let err = cs[0]
        .partial_decrypt(&rotation_request(&["p-1"], Some(1)))
        .unwrap_err();
    assert!(
        matches!(err, CustodianError::NoRotation { rotating: None, .. }),
        "{err}"
    );
}

#[test]
fn a_mesh_rotations_contributions_combine_into_the_rotated_group_and_a_bad_sub_share_names_its_sender()
 {
    use ribat_custodian::reshare::{WireSubShares, combine_rotation, contribute, rotated_group};
    let v = Vault::new();
    let keys: Vec<_> = (1..=3)
        .map(|i| keystore::load(&v.custodian_dirs[i - 1], &v.passphrases[i - 1]).unwrap())
        .collect();
    let ids = [1u32, 2, 3];
    let dealings: Vec<_> = keys
        .iter()
        .map(|k| contribute(k, &ids, 2).unwrap())
        .collect();
    let dealt: BTreeMap<u32, _> = dealings
        .iter()
        .map(|d| (d.from, d.commitments.clone()))
        .collect();
    let next = rotated_group(&v.group, &ids, &dealt, 2).unwrap();
    assert_eq!(
        (
            next.set,
            next.epoch,
            next.previous.as_ref().map(|p| p.epoch)
        ),
        (2, 2, Some(1))
    );
    assert_ne!(
        next.class("identity").unwrap().group_key,
        v.group.class("identity").unwrap().group_key
    );
    let wire = |from: usize, to: u32| {
        WireSubShares::new(2, from as u32 + 1, to, &dealings[from].subshares[&to])
    };
    for to in ids {
        let received: Vec<_> = (0..3)
            .flat_map(|from| wire(from, to).subshares().unwrap())
            .collect();
        let (shares, group) = combine_rotation(to, &v.group, &ids, &dealt, &received, 2).unwrap();
        assert_eq!(group, next);
        for s in &shares {
            assert_eq!(
                s.public(),
                *next.public_share(&s.class, to).unwrap(),
                "custodian {to}'s share of {}",
                s.class
            );
        }
    }
    // Contributor 2 sends custodian 1 what it owes custodian 3: refused, contributor 2 named.
    let mut forged = serde_json::to_value(wire(1, 1)).unwrap();
    forged["shares"] = serde_json::to_value(wire(1, 3)).unwrap()["shares"].clone();
    let forged: WireSubShares = serde_json::from_value(forged).unwrap();
    let received: Vec<_> = [wire(0, 1), forged, wire(2, 1)]
        .iter()
        .flat_map(|w| w.subshares().unwrap())
        .collect();
    let err = combine_rotation(1, &v.group, &ids, &dealt, &received, 2)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("from custodian 2") || err.contains("2 "),
        "{err}"
    );
    assert!(err.contains("commitments"), "{err}");
}
