//! Replacing custodian 2 by resharing, on real custodian directories: custodians 1 and 3
//! deal, a new custodian 2 (another directory, another passphrase) takes its place, the
//! records are not touched, and the old custodian 2's directory opens nothing any more.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use ribat_crypto::combine::{Partial, combine, verify_partial};
use ribat_crypto::dleq::Dleq;
use ribat_crypto::envelope::Envelope;
use ribat_crypto::passphrase::KdfParams;
use ribat_crypto::reshare::Plan;
use ribat_crypto::secret::Passphrase;
use ribat_custodian::reshare::{self, WireSubShares};
use ribat_custodian::{Custodian, CustodianError, LocalCustodian, QuorumReader, keystore};
use ribat_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

const SET: u32 = 2;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
        }
    }
}

/// Deals from custodians 1 and 3 to a new set {1, 2, 3}, over the wire forms, and writes
/// each new custodian's shares beside the old ones. Returns the new group.
fn reshare_to(v: &Vault, new_two: &std::path::Path, new_two_pass: &Passphrase) -> Plan {
    let plan = Plan::new(vec![1, 3], 2, vec![1, 2, 3], 2).unwrap();
    let mut dealt = BTreeMap::new();
    let mut wires: Vec<WireSubShares> = Vec::new();
    for d in [1u32, 3] {
        let keys = v.custodian(d as usize).keys().unwrap();
        let dealing = reshare::deal(&keys, &plan).unwrap();
        dealt.insert(d, dealing.commitments.clone());
        for (to, subs) in &dealing.subshares {
            // Through the JSON a node sends, as a node would.
            let wire = WireSubShares::new(SET, d, *to, subs);
            wires.push(serde_json::from_slice(&serde_json::to_vec(&wire).unwrap()).unwrap());
        }
    }
    for to in [1u32, 2, 3] {
        let received: Vec<_> = wires
            .iter()
            .filter(|w| w.to == to)
            .flat_map(|w| w.subshares().unwrap())
            .collect();
        let (shares, next) = reshare::combine(to, &plan, &v.group, &dealt, &received, SET).unwrap();
        assert_eq!(next.set, SET);
        let (dir, pass, carried) = match to {
            2 => (
                new_two.to_owned(),
                new_two_pass.clone(),
                keystore::fresh_keys_to_carry().unwrap(),
            ),
            _ => (
                v.custodian_dirs[to as usize - 1].clone(),
                v.passphrases[to as usize - 1].clone(),
                keystore::keys_to_carry(&v.custodian(to as usize).keys().unwrap()).unwrap(),
            ),
        };
        if to == 2 {
            std::fs::create_dir_all(&dir).unwrap();
            LocalCustodian::write_policy(
                &dir,
                &ribat_custodian::policy::Policy::embedded_default(),
            )
            .unwrap();
        }
        keystore::install_next(
            &dir,
            to,
            &shares,
            &carried,
            &next,
            &pass,
            KdfParams::insecure_for_tests(),
        )
        .unwrap();
        assert_eq!(keystore::pending_set(&dir).unwrap(), Some(SET));
    }
    plan
}

/// What custodian `share`'s raw share answers for `id`'s identity class, unchecked: the
/// attacker's view, who holds the share itself.
fn raw_partial(keys: &keystore::CustodianKeys, v: &Vault, id: &str) -> (Partial, Envelope) {
    let bytes = v
        .store
        .envelope("persons", id, "identity")
        .unwrap()
        .unwrap();
    let env = Envelope::from_bytes(&bytes).unwrap();
    let r = env.r_point().unwrap();
    let share = keys.shares.get("identity").unwrap();
    let p = ribat_crypto::combine::answer(&Dleq::ribat(), share, &[r]).unwrap();
    (p, env)
}

#[test]
fn a_reshared_set_reads_every_record_and_the_removed_custodians_old_share_opens_nothing() {
    let v = Vault::new();
    // Open for the whole test, as a running node's custodians are.
    let _running: Vec<_> = (1..=3).map(|i| v.custodian(i)).collect();
    let id = "p-0";
    let before = v
        .reader()
        .read(&request(
            "clerk.1",
            "clerk",
            "benefit-claim",
            "identity",
            &[id],
        ))
        .unwrap();
    let name = before.records[0].1.get("name").unwrap().to_vec();

    // The attacker's copy of custodian 2's directory, and its passphrase, taken before.
    let stolen = v.dir.path().join("stolen-custodian-2");
    copy_dir(&v.custodian_dirs[1], &stolen);
    let stolen_keys = keystore::load(&stolen, &v.passphrases[1]).unwrap();
    let witness_before = v.custodian(1).witness_key("test").unwrap();

    let new_two = v.dir.path().join("node-d-custodian-2");
    let new_pass = Passphrase::new("node-d's own passphrase".into());
    reshare_to(&v, &new_two, &new_pass);

    // Until the set is put in force the old one serves.
    let r = v.reader().read(&request(
        "clerk.2",
        "clerk",
        "benefit-claim",
        "identity",
        &[id],
    ));
    assert_eq!(
        r.unwrap().records[0].1.get("name").unwrap(),
        name.as_slice()
    );

    // Put in force: 1 and 3 promote and take their new shares; old 2 is erased.
    let mut new_custodians: Vec<Arc<dyn Custodian>> = Vec::new();
    for i in [1usize, 3] {
        let dir = &v.custodian_dirs[i - 1];
        let old = std::fs::read(dir.join(keystore::SHARES_FILE)).unwrap();
        keystore::promote(dir).unwrap();
        // Again, as after a crash between the renames: nothing left to do, no error.
        keystore::promote(dir).unwrap();
        let keys = keystore::load(dir, &v.passphrases[i - 1]).unwrap();
        assert_eq!(keys.set, SET);
        let c = v.custodian(i);
        c.replace_keys(keys).unwrap();
        // No old share left in the directory: no file holds the old sealed shares.
        for (path, bytes) in all_bytes(dir) {
            assert!(
                !contains(&bytes, &old[old.len() / 2..old.len() / 2 + 40]),
                "{} still holds custodian {i}'s old sealed shares",
                path.display()
            );
        }
        new_custodians.push(c);
    }
    keystore::promote(&new_two).unwrap();
    let two = Arc::new(
        LocalCustodian::open(&new_two, &new_pass, v.store.clone(), v.clock.clone()).unwrap(),
    );
    new_custodians.insert(1, two.clone());
    let removed = v.custodian(2);
    removed.retire(SET).unwrap();
    keystore::erase(&v.custodian_dirs[1]).unwrap();
    assert!(!keystore::holds_shares(&v.custodian_dirs[1]));

    // The witness key gateways pinned survives; the honey list still opens.
    assert_eq!(v.custodian(1).witness_key("test").unwrap(), witness_before);
    assert_eq!(v.custodian(1).honey_records().unwrap().len(), 1);

    // The new set reads every record, with the same records and the same group keys.
    let next = two.group().unwrap();
    assert_eq!(next.set, SET);
    for (class, c) in &next.classes {
        assert_eq!(c.group_key, v.group.class(class).unwrap().group_key);
    }
    let reader = QuorumReader::new(next.clone(), new_custodians.clone(), v.store.clone());
    for pair in [[0usize, 1], [0, 2], [1, 2]] {
        let only: Vec<Arc<dyn Custodian>> =
            pair.iter().map(|&k| new_custodians[k].clone()).collect();
        let r = QuorumReader::new(next.clone(), only, v.store.clone())
            .read(&request(
                "clerk.3",
                "clerk",
                "benefit-claim",
                "identity",
                &[id],
            ))
            .unwrap();
        assert_eq!(
            r.records[0].1.get("name").unwrap(),
            name.as_slice(),
            "{pair:?}"
        );
    }
    let salary = reader
        .read(&request(
            "sup.1",
            "supervisor",
            "investigation",
            "financial",
            &["p-1"],
        ))
        .unwrap();
    assert_eq!(
        salary.records[0].1.get("salary").unwrap(),
        SALARIES[1].as_bytes()
    );

    // A reader still on set 1 is refused by the new custodians, as such (not as a liar).
    let stale = QuorumReader::new(v.group.clone(), new_custodians.clone(), v.store.clone());
    let err = stale
        .read(&request(
            "clerk.4",
            "clerk",
            "benefit-claim",
            "identity",
            &[id],
        ))
        .unwrap_err();
    assert!(
        err.to_string().contains("names custodian set 1")
            && err.to_string().contains("serves set 2"),
        "{err}"
    );
    assert!(stale.set_aside().is_empty(), "nobody is taken for a liar");
    // The removed custodian answers no set.
    let err = removed
        .partial_decrypt(&ribat_custodian::PartialRequest {
            set: Some(SET),
            epoch: None,
            ..request("clerk.5", "clerk", "benefit-claim", "identity", &[id])
        })
        .unwrap_err();
    assert!(
        matches!(err, CustodianError::OtherSet { retired: true, .. }),
        "{err}"
    );

    // The attacker's old share of custodian 2 with any one new share: two points of two
    // different polynomials, which open nothing.
    let (p_old, env) = raw_partial(&stolen_keys, &v, id);
    for (k, new) in [(1u32, 0usize), (3, 2)] {
        let keys = match new {
            0 => v.custodian(1).keys().unwrap(),
            _ => v.custodian(3).keys().unwrap(),
        };
        let (p_new, _) = raw_partial(&keys, &v, id);
        let dleq = Dleq::ribat();
        let y_old = v.group.public_share("identity", 2).unwrap();
        let y_new = next.public_share("identity", k).unwrap();
        let r = env.r_point().unwrap();
        let a = verify_partial(&dleq, "identity", y_old, &[r], &p_old).unwrap();
        let b = verify_partial(&dleq, "identity", y_new, &[r], &p_new).unwrap();
        let shared = combine("identity", 2, &[a, b]).unwrap();
        let opened = env.open(
            "persons",
            id,
            "identity",
            v.group.class("identity").unwrap(),
            1,
            &shared[0],
        );
        assert!(
            opened.is_err(),
            "old share 2 with new share {k} opened the record"
        );
    }
}

#[test]
fn a_dealer_keeps_its_dealing_sealed_for_its_resharing_only() {
    let v = Vault::new();
    let c = v.custodian(1);
    let keys = c.keys().unwrap();
    let plan = Plan::new(vec![1, 3], 2, vec![1, 2, 3], 2).unwrap();
    let dealing = reshare::deal(&keys, &plan).unwrap();
    let dir = &v.custodian_dirs[0];
    reshare::save_dealing(dir, &keys, "statement-a", SET, &dealing).unwrap();
    let back = reshare::load_dealing(dir, &keys, "statement-a")
        .unwrap()
        .unwrap();
    assert_eq!(back.commitments, dealing.commitments);
    let wire = |d: &reshare::Dealing, to: u32| {
        serde_json::to_string(&WireSubShares::new(SET, 1, to, &d.subshares[&to])).unwrap()
    };
    for to in [1, 2, 3] {
        assert_eq!(wire(&back, to), wire(&dealing, to));
    }
    // Sealed: no sub-share is readable in the file.
    let file = std::fs::read_to_string(dir.join(reshare::DEALING_FILE)).unwrap();
    let one: serde_json::Value = serde_json::from_str(&wire(&dealing, 2)).unwrap();
    for (_, h) in one["shares"].as_object().unwrap() {
        assert!(!file.contains(h.as_str().unwrap()));
    }
    // Another resharing's statement: not this dealing. Another custodian's key: refused.
    assert!(
        reshare::load_dealing(dir, &keys, "statement-b")
            .unwrap()
            .is_none()
    );
    let other = v.custodian(3).keys().unwrap();
    assert!(reshare::load_dealing(dir, &other, "statement-a").is_err());
    reshare::forget_dealing(dir).unwrap();
    assert!(
        reshare::load_dealing(dir, &keys, "statement-a")
            .unwrap()
            .is_none()
    );
}
