//! `ribat audit verify-proof` on every transparency-dev vector: exit status 0 for valid
//! proofs, 1 with a reason for the others (`wantErr` honoured).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use std::process::Command;

#[test]
fn every_vector_file_gives_its_expected_exit_status_and_a_reason() {
    let mut checked = 0;
    for kind in ["inclusion", "consistency"] {
        for f in ribat_testkit::vectors::merkle(kind).unwrap() {
            let want_err =
                serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&f).unwrap())
                    .unwrap()["wantErr"]
                    .as_bool()
                    .unwrap();
            let o = Command::new(env!("CARGO_BIN_EXE_ribat"))
                .args(["audit", "verify-proof"])
                .arg(&f)
                .output()
                .unwrap();
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(
                o.status.code(),
                Some(i32::from(want_err)),
                "{}: {out}",
                f.display()
            );
            assert!(
                out.starts_with(if want_err { "invalid: " } else { "valid: " }),
                "{}: {out}",
                f.display()
            );
            checked += 1;
        }
    }
    assert!(checked >= 170, "{checked}");
}

#[test]
fn an_unreadable_or_malformed_file_is_a_clear_failure() {
    let d = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ribat"))
        .args(["audit", "verify-proof", "/no/such.json"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read /no/such.json"));
    let f = d.path().join("p.json");
    std::fs::write(&f, b"{\"hello\": 1}").unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ribat"))
        .args(["audit", "verify-proof"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("expected an inclusion proof"));
}
