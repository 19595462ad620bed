//! RFC 6962 hashing and proofs against public vectors and against each other.
//!
//! Vectors: `../shared/testdata/merkle/` (transparency-dev/merkle `testdata/` @ 417fb0c,
//! Apache-2.0): every file's `wantErr` must be honoured. The reference tree of RFC 6962
//! has the root given in `../shared/testdata/README.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use proptest::prelude::*;
use ribat_audit::hash::{Hash, leaf};
use ribat_audit::proof::{ProofError, verify_consistency, verify_inclusion};
use ribat_audit::proof_file::verify_text;
use ribat_audit::tree::{consistency_proof, inclusion_proof, root};

fn files(kind: &str) -> Vec<std::path::PathBuf> {
    ribat_testkit::vectors::merkle(kind).unwrap()
}

#[test]
fn every_transparency_dev_vector_gives_the_expected_result() {
    let mut counted = (0, 0);
    for kind in ["inclusion", "consistency"] {
        for f in files(kind) {
            let text = std::fs::read_to_string(&f).unwrap();
            let want_err = serde_json::from_str::<serde_json::Value>(&text).unwrap()["wantErr"]
                .as_bool()
                .unwrap();
            let got = verify_text(&text);
            assert_eq!(got.is_err(), want_err, "{}: {got:?}", f.display());
            if want_err {
                counted.1 += 1;
            } else {
                counted.0 += 1;
            }
        }
    }
    assert!(counted.0 >= 11 && counted.1 >= 159, "{counted:?}");
}

fn rfc6962_leaves() -> Vec<Hash> {
    [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
    .iter()
    .map(|h| {
        let bytes: Vec<u8> = (0..h.len() / 2)
            .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        leaf(&bytes)
    })
    .collect()
}

#[test]
fn the_rfc6962_reference_tree_is_reproduced() {
    assert_eq!(
        root(&rfc6962_leaves()).to_hex(),
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    );
    assert_eq!(
        root(&[]).to_hex(),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generated_proofs_verify_and_tampered_ones_do_not(n in 1usize..70, a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>(), flip in 0usize..32) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf(&(i as u64).to_be_bytes())).collect();
        let r = root(&leaves);
        let m = a.index(n) as u64;
        let p = inclusion_proof(m, &leaves).unwrap();
        prop_assert_eq!(verify_inclusion(m, n as u64, &leaves[m as usize], &p, &r), Ok(()));
        if let Some(first) = p.first() {
            let mut bad = p.clone();
            bad[0].0[flip] ^= 1;
            prop_assert!(verify_inclusion(m, n as u64, &leaves[m as usize], &bad, &r).is_err());
            let _ = first;
        }
        // Consistency from every earlier size to n.
        let size1 = b.index(n + 1) as u64;
        let old = root(&leaves[..size1 as usize]);
        let c = consistency_proof(size1, &leaves).unwrap();
        prop_assert_eq!(verify_consistency(size1, n as u64, &c, &old, &r), Ok(()));
        if size1 > 0 && size1 < n as u64 {
            // A forked history: the old tree with one leaf changed.
            let mut forked = leaves[..size1 as usize].to_vec();
            forked[0] = leaf(b"rewritten");
            prop_assert!(verify_consistency(size1, n as u64, &c, &root(&forked), &r).is_err());
        }
    }
}

#[test]
fn equal_sizes_with_different_roots_are_a_fork() {
    let l = rfc6962_leaves();
    assert_eq!(
        verify_consistency(8, 8, &[], &root(&l), &root(&l[..7])),
        Err(ProofError::Fork)
    );
    assert!(matches!(
        verify_consistency(8, 7, &[], &root(&l), &root(&l[..7])),
        Err(ProofError::Shrinking { .. })
    ));
}
