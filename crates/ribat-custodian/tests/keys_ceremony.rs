//! The key ceremony: shares checked, sealed, never overwritten; a bad share is refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use ribat_crypto::passphrase::KdfParams;
use ribat_crypto::secret::Passphrase;
use ribat_crypto::shamir::deal;
use ribat_custodian::ceremony::{self, CeremonySpec};
use ribat_custodian::keystore;

#[test]
fn a_custodian_refuses_a_share_that_does_not_match_its_commitment() {
    let v = Vault::new();
    let fresh = tempfile::tempdir().unwrap();
    // A share from another dealing, offered with this group's commitments.
    let other = deal("identity", 2, 3).unwrap();
    let err = keystore::install(
        fresh.path(),
        1,
        &other.shares[..1],
        &v.group,
        &pass(1),
        KdfParams::insecure_for_tests(),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("does not match the published Feldman commitments"),
        "{err}"
    );
    assert!(!fresh.path().join(keystore::SHARES_FILE).exists());
}

#[test]
fn a_ceremony_never_overwrites_existing_keys_and_validates_its_input() {
    let v = Vault::new();
    let spec = CeremonySpec {
        threshold: 2,
        classes: vec!["identity".into()],
        epoch: 2,
        kdf: KdfParams::insecure_for_tests(),
    };
    let before = std::fs::read(v.custodian_dirs[0].join(keystore::SHARES_FILE)).unwrap();
    let err = ceremony::run(
        &spec,
        &v.custodian_dirs,
        &v.passphrases,
        &v.dir.path().join("g2.json"),
    )
    .unwrap_err();
    assert!(err.to_string().contains("never overwrites keys"), "{err}");
    assert_eq!(
        std::fs::read(v.custodian_dirs[0].join(keystore::SHARES_FILE)).unwrap(),
        before
    );

    let d = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = (1..=3).map(|i| d.path().join(format!("c{i}"))).collect();
    let g = d.path().join("group.json");
    let bad = |classes: &[&str], t: usize, pw: Vec<Passphrase>| {
        let spec = CeremonySpec {
            threshold: t,
            classes: classes.iter().map(|s| s.to_string()).collect(),
            epoch: 1,
            kdf: KdfParams::insecure_for_tests(),
        };
        ceremony::run(&spec, &dirs, &pw, &g)
            .unwrap_err()
            .to_string()
    };
    assert!(bad(&["identity"], 1, (1..=3).map(pass).collect()).contains("at least 2"));
    assert!(bad(&["identity"], 4, (1..=3).map(pass).collect()).contains("cannot exceed"));
    assert!(bad(&["Identity!"], 2, (1..=3).map(pass).collect()).contains("lowercase"));
    assert!(bad(&["identity", "identity"], 2, (1..=3).map(pass).collect()).contains("twice"));
    assert!(
        bad(&["identity"], 2, (1..=2).map(pass).collect())
            .contains("3 custodians but 2 passphrases")
    );
    assert!(
        bad(
            &["identity"],
            2,
            vec![pass(1), Passphrase::new(String::new()), pass(3)]
        )
        .contains("non-empty")
    );
    assert!(!g.exists());
}

#[test]
fn shares_load_back_and_a_tampered_group_file_is_refused() {
    let v = Vault::new();
    let k = keystore::load(&v.custodian_dirs[1], &pass(2)).unwrap();
    assert_eq!(k.index, 2);
    assert_eq!(
        k.shares.keys().collect::<Vec<_>>(),
        ["financial", "identity"]
    );
    // Swap in another custodian's group file: its commitments do not match this share.
    let other = Vault::new();
    std::fs::copy(
        other.custodian_dirs[1].join(keystore::GROUP_FILE),
        v.custodian_dirs[1].join(keystore::GROUP_FILE),
    )
    .unwrap();
    let err = keystore::load(&v.custodian_dirs[1], &pass(2)).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn the_index_key_a_custodian_keeps_is_sealed_to_it_and_opens_for_no_other() {
    let v = Vault::new();
    let key = ribat_crypto::secret::SecretBytes::new([0x5a; 32]);
    let (one, two) = (&v.custodian_dirs[0], &v.custodian_dirs[1]);
    ribat_custodian::LocalCustodian::keep_index_key(one, &pass(1), &key).unwrap();
    let keys = keystore::load(one, &pass(1)).unwrap();
    let opened = keystore::load_index_key(one, &keys).unwrap().unwrap();
    assert_eq!(opened.expose(), key.expose());
    // Nowhere in clear, neither the bytes nor their hex.
    let file = std::fs::read(one.join(keystore::INDEX_KEY_FILE)).unwrap();
    assert!(!contains(&file, &[0x5a; 32]));
    assert!(!contains(&file, "5a".repeat(32).as_bytes()));
    // A custodian without the file holds no key; with another's file, it says whose.
    let keys2 = keystore::load(two, &pass(2)).unwrap();
    assert!(keystore::load_index_key(two, &keys2).unwrap().is_none());
    std::fs::copy(
        one.join(keystore::INDEX_KEY_FILE),
        two.join(keystore::INDEX_KEY_FILE),
    )
    .unwrap();
    let e = keystore::load_index_key(two, &keys2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("another custodian"), "{e}");
    // A custodian joining with fresh carried keys seals it under the key it will carry.
    let carried = keystore::fresh_keys_to_carry().unwrap();
    let fresh = tempfile::tempdir().unwrap();
    keystore::save_index_key_carried(fresh.path(), 4, 1, &carried, &key).unwrap();
    let file = std::fs::read(fresh.path().join(keystore::INDEX_KEY_FILE)).unwrap();
    assert!(!contains(&file, &[0x5a; 32]));
    let e = keystore::save_index_key_carried(
        fresh.path(),
        4,
        1,
        &std::collections::BTreeMap::new(),
        &key,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no index-key seal"), "{e}");
}
