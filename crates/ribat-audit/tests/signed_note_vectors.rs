//! Signed notes and cosignatures made by other implementations verify here, and Ed25519
//! verification (`verify_strict`) meets Wycheproof.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use ribat_audit::note::{Checkpoint, NoteError, SignedNote, VerifierKey};

const CHECKPOINT: &str = include_str!("vectors/ct-staging-checkpoint.txt");
const KEYS: &str = include_str!("vectors/ct-staging-keys.txt");

#[test]
fn real_witness_cosignatures_of_a_public_log_verify() {
    let note = SignedNote::parse(CHECKPOINT).unwrap();
    let cp = Checkpoint::parse(&note.text).unwrap();
    assert_eq!(cp.origin, "arche2025h1.staging.ct.transparency.dev");
    assert_eq!(cp.size, 1_432_088_532);
    let keys: Vec<VerifierKey> = KEYS
        .lines()
        .map(|k| VerifierKey::parse(k).unwrap())
        .collect();
    assert_eq!(keys.len(), 5);
    // The log's own Ed25519 signature.
    assert_eq!(note.verify(&keys[0]).unwrap(), 0);
    // Four witnesses, each with its own timestamp.
    for w in &keys[1..] {
        let t = note.verify(w).unwrap();
        assert!(t > 1_700_000_000, "{} cosigned at {t}", w.name());
    }
    // Change the size: every signature fails.
    let clobbered = CHECKPOINT.replace("1432088532", "42");
    let note2 = SignedNote::parse(&clobbered).unwrap();
    for k in &keys {
        assert!(
            matches!(note2.verify(k), Err(NoteError::BadSignature { .. })),
            "{}",
            k.name()
        );
    }
    // A key the note does not carry.
    let other =
        VerifierKey::parse("example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k")
            .unwrap();
    assert!(matches!(
        note.verify(&other),
        Err(NoteError::NotSigned { .. })
    ));
    // Key strings round-trip.
    for (k, text) in keys.iter().zip(KEYS.lines()) {
        assert_eq!(k.to_string(), text);
    }
}

#[test]
fn malformed_notes_are_refused_with_a_reason() {
    for (bad, why) in [
        ("no blank line\n— a AAAAAAA=\n", "blank line"),
        ("t\n\n— a AAAAAAA=", "newline"),
        ("t\n\n- a AAAAAAA=\n", "em dash"),
        ("t\n\n— a !!!\n", "base64"),
        ("t\n\n— a AAA=\n", "short"),
        ("t\u{7}\n\n— a AAAAAAA=\n", "control"),
        ("t\n\n", "newline"),
    ] {
        let e = SignedNote::parse(bad).unwrap_err().to_string();
        assert!(e.contains(why), "{bad:?}: {e}");
    }
}

#[test]
fn ed25519_verify_strict_meets_wycheproof() {
    let v: serde_json::Value = serde_json::from_str(
        &ribat_testkit::vectors::read("wycheproof/ed25519_test.json").unwrap(),
    )
    .unwrap();
    let (mut valid, mut invalid) = (0, 0);
    for g in v["testGroups"].as_array().unwrap() {
        let pk: [u8; 32] = hex::decode(g["publicKey"]["pk"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        let key = ed25519_dalek::VerifyingKey::from_bytes(&pk);
        for t in g["tests"].as_array().unwrap() {
            let msg = hex::decode(t["msg"].as_str().unwrap()).unwrap();
            let sig = hex::decode(t["sig"].as_str().unwrap()).unwrap();
            let ok = key.as_ref().is_ok_and(|k| {
                ed25519_dalek::Signature::from_slice(&sig)
                    .is_ok_and(|s| k.verify_strict(&msg, &s).is_ok())
            });
            match t["result"].as_str().unwrap() {
                "valid" => {
                    assert!(ok, "valid case {} refused", t["tcId"]);
                    valid += 1;
                }
                _ => {
                    assert!(!ok, "invalid case {} accepted", t["tcId"]);
                    invalid += 1;
                }
            }
        }
    }
    assert_eq!((valid, invalid), (88, 63));
}
