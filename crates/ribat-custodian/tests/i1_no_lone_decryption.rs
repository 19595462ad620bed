//! I1: decrypting any protected field needs `t` of `n` custodians.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use ribat_crypto::CryptoError;
use ribat_crypto::combine::{answer, combine, lagrange_at_zero, verify_partial};
use ribat_crypto::dleq::Dleq;
use ribat_crypto::envelope::Envelope;
use ribat_custodian::keystore;
use ribat_custodian::{Custodian, QuorumError};
use ribat_store::Store;
use std::sync::Arc;

#[test]
fn a_quorum_of_two_opens_what_any_single_custodian_cannot() {
    let v = Vault::new();
    let read = v
        .reader()
        .read(&request(
            "clerk-1",
            "clerk",
            "counter-service",
            "identity",
            &["p-0", "p-1"],
        ))
        .unwrap();
    assert_eq!(read.records[0].1.get("name").unwrap(), NAMES[0].as_bytes());
    assert_eq!(read.records[1].1.get("name").unwrap(), NAMES[1].as_bytes());
    assert_eq!(read.served_by, vec![1, 2]);

    // One custodian reachable: refused cleanly, naming nobody as refusing.
    let err = v
        .reader_over(vec![v.custodian(3) as Arc<dyn Custodian>])
        .read(&request(
            "clerk-1",
            "clerk",
            "counter-service",
            "identity",
            &["p-0"],
        ))
        .unwrap_err();
    assert!(
        matches!(
            err,
            QuorumError::NotEnoughCustodians {
                have: 1,
                need: 2,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_copied_custodian_directory_alone_decrypts_nothing() {
    let v = Vault::new();
    let stolen = tempfile::tempdir().unwrap();
    for (p, bytes) in all_bytes(&v.custodian_dirs[0]) {
        std::fs::write(stolen.path().join(p.file_name().unwrap()), &bytes).unwrap();
        // At rest, neither names nor salaries nor the raw share appear in the directory.
        // Nor which record is bait: the honey list is sealed.
        assert!(
            !contains(&bytes, HONEY.as_bytes()),
            "{} names the honey record",
            p.display()
        );
        for secret in NAMES.iter().chain(SALARIES.iter()) {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{} holds {secret}",
                p.display()
            );
        }
    }
    // Without the passphrase the shares do not even unseal.
    let err = keystore::load(stolen.path(), &pass(2)).unwrap_err();
    assert!(
        err.to_string().contains("passphrase does not open"),
        "{err}"
    );

    // Worst case (A2): the thief also has the passphrase and the database file.
    let keys = keystore::load(stolen.path(), &pass(1)).unwrap();
    let env = Envelope::from_bytes(
        &v.store
            .envelope("persons", "p-0", "identity")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let r = [env.r_point().unwrap()];
    let share = &keys.shares["identity"];
    let mine = answer(&Dleq::ribat(), share, &r).unwrap();
    let y1 = keys.group.public_share("identity", 1).unwrap();
    let verified = verify_partial(&Dleq::ribat(), "identity", y1, &r, &mine).unwrap();
    let class_keys = keys.group.class("identity").unwrap();
    // The combiner refuses one answer for a threshold of two...
    assert!(matches!(
        combine("identity", 2, std::slice::from_ref(&verified)),
        Err(CryptoError::NotEnoughPartials {
            have: 1,
            need: 2,
            ..
        })
    ));
    // ...and using the share as if it were the class key (λ = 1), or with the Lagrange
    // weight it would have in any quorum, gives a key that opens nothing.
    let as_if_alone = combine("identity", 1, std::slice::from_ref(&verified)).unwrap();
    assert_eq!(
        env.open("persons", "p-0", "identity", class_keys, 1, &as_if_alone[0])
            .unwrap_err(),
        CryptoError::FieldAuthentication {
            field: "name".into()
        }
    );
    for quorum in [[1u32, 2], [1, 3]] {
        let l = lagrange_at_zero(&quorum).unwrap();
        let weighted = ribat_crypto::combine::Partial {
            custodian: 1,
            class: "identity".into(),
            points: vec![mine.points[0] * l[0]],
            proof: mine.proof,
        };
        // Not a valid answer any more, and its combination alone opens nothing either.
        assert!(verify_partial(&Dleq::ribat(), "identity", y1, &r, &weighted).is_err());
        let forced = combine(
            "identity",
            1,
            &[verify_partial(&Dleq::ribat(), "identity", y1, &r, &mine).unwrap()],
        )
        .unwrap();
        assert!(
            env.open("persons", "p-0", "identity", class_keys, 1, &forced[0])
                .is_err()
        );
    }
}
