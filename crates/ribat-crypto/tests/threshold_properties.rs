//! Properties of the threshold vault, from dealing to opening, without custodian policy.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use proptest::prelude::*;
use ribat_crypto::combine::{Partial, answer, combine, verify_partial};
use ribat_crypto::dleq::{Dleq, Proof};
use ribat_crypto::envelope::{Envelope, Sealer};
use ribat_crypto::group::GroupPublic;
use ribat_crypto::shamir::{ClassDealing, deal};
use ribat_crypto::{CryptoError, RistrettoPoint};

struct Vault {
    group: GroupPublic,
    dealings: Vec<ClassDealing>,
}

fn vault(t: usize, n: usize, epoch: u32) -> Vault {
    let dealings = vec![
        deal("identity", t, n).unwrap(),
        deal("financial", t, n).unwrap(),
    ];
    Vault {
        group: GroupPublic::from_dealings(t, n, epoch, &dealings).unwrap(),
        dealings,
    }
}

impl Vault {
    fn seal(&self, class: &str, id: &str) -> Envelope {
        Sealer::new(class, self.group.class(class).unwrap(), self.group.epoch)
            .seal(
                "persons",
                id,
                &[
                    ("name", b"Khadija El Fassi".as_slice()),
                    ("salary", b"1234500"),
                ],
            )
            .unwrap()
    }
    fn dealing(&self, class: &str) -> &ClassDealing {
        self.dealings.iter().find(|d| d.class == class).unwrap()
    }
    fn partial(&self, class: &str, custodian: usize, r: &[RistrettoPoint]) -> Partial {
        answer(
            &Dleq::ribat(),
            &self.dealing(class).shares[custodian - 1],
            r,
        )
        .unwrap()
    }
    /// Verifies the partials of `who` and opens `env`.
    fn open_with(
        &self,
        env: &Envelope,
        class: &str,
        who: &[usize],
        need: usize,
    ) -> Result<(), CryptoError> {
        let r = [env.r_point()?];
        let mut ok = Vec::new();
        for &i in who {
            let p = self.partial(class, i, &r);
            let y = self.group.public_share(class, i as u32)?;
            ok.push(verify_partial(&Dleq::ribat(), class, y, &r, &p)?);
        }
        let s = combine(class, need, &ok)?;
        env.open(
            &env.table,
            &env.record_id,
            class,
            self.group.class(class)?,
            self.group.epoch,
            &s[0],
        )
        .map(|_| ())
    }
}

/// Verified answers of custodians `who` for the points `r`, combined.
fn shared(
    v: &Vault,
    class: &str,
    who: &[usize],
    r: &[RistrettoPoint],
) -> Vec<ribat_crypto::combine::SharedPoint> {
    let ok: Vec<_> = who
        .iter()
        .map(|&i| {
            verify_partial(
                &Dleq::ribat(),
                class,
                v.group.public_share(class, i as u32).unwrap(),
                r,
                &v.partial(class, i, r),
            )
            .unwrap()
        })
        .collect();
    combine(class, who.len(), &ok).unwrap()
}

fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    (0u32..(1 << n))
        .filter(|m| m.count_ones() as usize == k)
        .map(|m| (1..=n).filter(|i| m & (1 << (i - 1)) != 0).collect())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn every_t_subset_opens_and_no_t_minus_1_subset_does((t, n) in (2usize..=5).prop_flat_map(|t| (Just(t), t..=6))) {
        let v = vault(t, n, 1);
        let env = v.seal("identity", "p-7");
        for q in subsets(n, t) {
            prop_assert_eq!(v.open_with(&env, "identity", &q, t), Ok(()), "quorum {:?}", q);
        }
        for q in subsets(n, t - 1) {
            // The combiner refuses outright...
            let refused = v.open_with(&env, "identity", &q, t);
            let is_not_enough = matches!(refused, Err(CryptoError::NotEnoughPartials { .. }));
            prop_assert!(is_not_enough, "{:?}", refused);
            // ...and a combiner that pretends t-1 is enough derives a wrong key.
            let forced = v.open_with(&env, "identity", &q, t - 1);
            let is_auth_failure = matches!(forced, Err(CryptoError::FieldAuthentication { .. }));
            prop_assert!(is_auth_failure, "{:?}", forced);
        }
    }

    #[test]
    fn decoding_random_bytes_as_an_envelope_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = Envelope::from_bytes(&bytes);
        // With a valid header in front, the parser reaches the field loop.
        let mut framed = vec![1u8, 1, 0, 0, 0, 1];
        framed.extend_from_slice(&bytes);
        let _ = Envelope::from_bytes(&framed);
    }

    #[test]
    fn a_flipped_byte_anywhere_never_opens(pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let v = vault(2, 3, 1);
        let env = v.seal("financial", "p-9");
        let mut bytes = env.to_bytes().unwrap();
        let at = pos.index(bytes.len());
        bytes[at] ^= 1 << bit;
        let outcome = Envelope::from_bytes(&bytes).and_then(|e| {
            let r = [e.r_point()?];
            let ps: Vec<_> = [1usize, 2].iter().map(|&i| {
                let p = v.partial("financial", i, &r);
                verify_partial(&Dleq::ribat(), "financial", v.group.public_share("financial", i as u32).unwrap(), &r, &p).unwrap()
            }).collect();
            let s = combine("financial", 2, &ps)?;
            e.open("persons", "p-9", "financial", v.group.class("financial")?, 1, &s[0]).map(|_| ())
        });
        prop_assert!(outcome.is_err(), "flipping byte {} bit {} was not noticed", at, bit);
    }
}

#[test]
fn a_partial_for_the_wrong_class_is_named() {
    let v = vault(2, 3, 1);
    let env = v.seal("financial", "p-1");
    let r = [env.r_point().unwrap()];
    let p = v.partial("identity", 1, &r);
    let y = v.group.public_share("financial", 1).unwrap();
    assert_eq!(
        verify_partial(&Dleq::ribat(), "financial", y, &r, &p).unwrap_err(),
        CryptoError::WrongClass {
            expected: "financial".into(),
            got: "identity".into()
        }
    );
    // A custodian that relabels an identity-share answer as financial is caught by the proof.
    let mut relabelled = p;
    relabelled.class = "financial".into();
    assert_eq!(
        verify_partial(&Dleq::ribat(), "financial", y, &r, &relabelled).unwrap_err(),
        CryptoError::ProofInvalid
    );
}

#[test]
fn a_forged_proof_is_refused() {
    let v = vault(2, 3, 1);
    let env = v.seal("identity", "p-1");
    let r = [env.r_point().unwrap()];
    let y = v.group.public_share("identity", 2).unwrap();
    // Correct points, but the proof of another custodian.
    let mut p = v.partial("identity", 2, &r);
    p.proof = v.partial("identity", 3, &r).proof;
    assert_eq!(
        verify_partial(&Dleq::ribat(), "identity", y, &r, &p).unwrap_err(),
        CryptoError::ProofInvalid
    );
    // A random point with a proof of random bytes.
    let mut junk = [7u8; 64];
    junk[31] = 0;
    junk[63] = 0;
    let forged = Partial {
        custodian: 2,
        class: "identity".into(),
        points: vec![r[0] + r[0]],
        proof: Proof::from_bytes(&junk).unwrap(),
    };
    assert_eq!(
        verify_partial(&Dleq::ribat(), "identity", y, &r, &forged).unwrap_err(),
        CryptoError::ProofInvalid
    );
}

#[test]
fn a_ciphertext_moved_to_another_record_or_field_is_named() {
    let v = vault(2, 3, 1);
    let a = v.seal("identity", "p-1");
    let b = v.seal("identity", "p-2");
    // Record p-2's envelope served for p-1: named before any cryptography.
    let r = [b.r_point().unwrap()];
    let s = shared(&v, "identity", &[1, 3], &r);
    let keys = v.group.class("identity").unwrap();
    assert!(matches!(
        b.open("persons", "p-1", "identity", keys, 1, &s[0]),
        Err(CryptoError::RecordMismatch { .. })
    ));
    // Same, with the header rewritten to claim p-1: the DEK and AAD no longer match.
    let mut relabelled = b.clone();
    relabelled.record_id = "p-1".into();
    assert_eq!(
        relabelled
            .open("persons", "p-1", "identity", keys, 1, &s[0])
            .unwrap_err(),
        CryptoError::FieldAuthentication {
            field: "name".into()
        }
    );
    // Field ciphertexts swapped inside one envelope.
    let mut swapped = a.clone();
    let (n0, n1) = (
        swapped.fields[0].name.clone(),
        swapped.fields[1].name.clone(),
    );
    swapped.fields[0].name = n1;
    swapped.fields[1].name = n0;
    let r = [a.r_point().unwrap()];
    let s = shared(&v, "identity", &[2, 3], &r);
    assert_eq!(
        swapped
            .open("persons", "p-1", "identity", keys, 1, &s[0])
            .unwrap_err(),
        CryptoError::FieldAuthentication {
            field: "salary".into()
        }
    );
    assert!(a.open("persons", "p-1", "identity", keys, 1, &s[0]).is_ok());
}

#[test]
fn an_old_epoch_under_a_new_key_is_named() {
    let old = vault(2, 3, 1);
    let env = old.seal("identity", "p-1");
    let new = vault(2, 3, 2);
    let r = [env.r_point().unwrap()];
    let s = shared(&new, "identity", &[1, 2], &r);
    assert_eq!(
        env.open(
            "persons",
            "p-1",
            "identity",
            new.group.class("identity").unwrap(),
            2,
            &s[0]
        )
        .unwrap_err(),
        CryptoError::EpochMismatch {
            envelope: 1,
            current: 2
        }
    );
}

#[test]
fn a_batch_proof_covers_every_record_and_one_wrong_answer_spoils_it() {
    let v = vault(2, 3, 1);
    let envs: Vec<_> = (0..50)
        .map(|i| v.seal("financial", &format!("p-{i}")))
        .collect();
    let r: Vec<_> = envs.iter().map(|e| e.r_point().unwrap()).collect();
    let y = v.group.public_share("financial", 1).unwrap();
    let mut p = v.partial("financial", 1, &r);
    verify_partial(&Dleq::ribat(), "financial", y, &r, &p).unwrap();
    p.points[17] = p.points[16];
    assert_eq!(
        verify_partial(&Dleq::ribat(), "financial", y, &r, &p).unwrap_err(),
        CryptoError::ProofInvalid
    );
}
