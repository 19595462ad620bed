//! The AEAD, HKDF and HMAC that Ribat uses, against Wycheproof.
//!
//! Vectors: `../shared/testdata/wycheproof/` (C2SP/wycheproof `testvectors_v1/` @ dac1dd4,
//! Apache-2.0). Every `valid` case must give the expected output and every `invalid` case
//! must be rejected; `acceptable` cases are only required not to crash.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes128GcmSiv, Aes256GcmSiv, Nonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

fn load(name: &str) -> Value {
    let text = ribat_testkit::vectors::read(&format!("wycheproof/{name}"))
        .unwrap_or_else(|e| panic!("{e}"));
    serde_json::from_str(&text).unwrap()
}

fn h(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

struct Tally {
    valid: usize,
    invalid: usize,
}

fn cases(file: &Value) -> impl Iterator<Item = (&Value, &Value)> {
    file["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["tests"].as_array().unwrap().iter().map(move |t| (g, t)))
}

fn aead_open(key: &[u8], nonce: &[u8], ct: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    let p = Payload { msg: ct, aad };
    match key.len() {
        32 => Aes256GcmSiv::new_from_slice(key)
            .ok()?
            .decrypt(&Nonce::from(nonce), p)
            .ok(),
        16 => Aes128GcmSiv::new_from_slice(key)
            .ok()?
            .decrypt(&Nonce::from(nonce), p)
            .ok(),
        _ => None,
    }
}

fn aead_seal(key: &[u8], nonce: &[u8], msg: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
    let nonce: [u8; 12] = nonce.try_into().ok()?;
    let p = Payload { msg, aad };
    match key.len() {
        32 => Aes256GcmSiv::new_from_slice(key)
            .ok()?
            .encrypt(&Nonce::from(nonce), p)
            .ok(),
        16 => Aes128GcmSiv::new_from_slice(key)
            .ok()?
            .encrypt(&Nonce::from(nonce), p)
            .ok(),
        _ => None,
    }
}

#[test]
fn aes_gcm_siv_passes_wycheproof() {
    let file = load("aes_gcm_siv_test.json");
    let mut n = Tally {
        valid: 0,
        invalid: 0,
    };
    let mut aes256 = 0;
    for (_, t) in cases(&file) {
        let (key, iv, aad, msg) = (h(&t["key"]), h(&t["iv"]), h(&t["aad"]), h(&t["msg"]));
        let mut ct = h(&t["ct"]);
        ct.extend(h(&t["tag"]));
        let id = &t["tcId"];
        match t["result"].as_str().unwrap() {
            "valid" => {
                assert_eq!(
                    aead_seal(&key, &iv, &msg, &aad).as_deref(),
                    Some(&ct[..]),
                    "tc {id}"
                );
                assert_eq!(
                    aead_open(&key, &iv, &ct, &aad).as_deref(),
                    Some(&msg[..]),
                    "tc {id}"
                );
                n.valid += 1;
                aes256 += usize::from(key.len() == 32);
            }
            "invalid" => {
                assert_eq!(
                    aead_open(&key, &iv, &ct, &aad),
                    None,
                    "tc {id} must be rejected"
                );
                n.invalid += 1;
            }
            _ => {
                let _ = aead_open(&key, &iv, &ct, &aad);
            }
        }
    }
    assert!(
        n.valid > 50 && n.invalid > 20 && aes256 > 20,
        "{} {} {aes256}",
        n.valid,
        n.invalid
    );
}

#[test]
fn hkdf_sha256_passes_wycheproof() {
    let file = load("hkdf_sha256_test.json");
    let mut n = Tally {
        valid: 0,
        invalid: 0,
    };
    for (_, t) in cases(&file) {
        let (ikm, salt, info) = (h(&t["ikm"]), h(&t["salt"]), h(&t["info"]));
        let size = t["size"].as_u64().unwrap() as usize;
        let hk = Hkdf::<Sha256>::new(Some(&salt), &ikm);
        let mut okm = vec![0u8; size];
        let got = hk.expand(&info, &mut okm);
        match t["result"].as_str().unwrap() {
            "valid" => {
                assert!(got.is_ok(), "tc {}", t["tcId"]);
                assert_eq!(okm, h(&t["okm"]), "tc {}", t["tcId"]);
                n.valid += 1;
            }
            "invalid" => {
                assert!(got.is_err(), "tc {} must be rejected", t["tcId"]);
                n.invalid += 1;
            }
            _ => {}
        }
    }
    assert!(n.valid > 50 && n.invalid > 0, "{} {}", n.valid, n.invalid);
}

#[test]
fn hmac_sha256_passes_wycheproof() {
    let file = load("hmac_sha256_test.json");
    let mut n = Tally {
        valid: 0,
        invalid: 0,
    };
    for (g, t) in cases(&file) {
        let tag_bytes = g["tagSize"].as_u64().unwrap() as usize / 8;
        let (key, msg, tag) = (h(&t["key"]), h(&t["msg"]), h(&t["tag"]));
        let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&key).unwrap();
        mac.update(&msg);
        // verify_truncated_left compares in constant time against the leftmost bytes, which
        // is how Ribat's blind indexes truncate.
        let ok = tag.len() == tag_bytes && mac.verify_truncated_left(&tag).is_ok();
        match t["result"].as_str().unwrap() {
            "valid" => {
                assert!(ok, "tc {}", t["tcId"]);
                n.valid += 1;
            }
            "invalid" => {
                assert!(!ok, "tc {} must be rejected", t["tcId"]);
                n.invalid += 1;
            }
            _ => {}
        }
    }
    assert!(n.valid > 50 && n.invalid > 20, "{} {}", n.valid, n.invalid);
}
