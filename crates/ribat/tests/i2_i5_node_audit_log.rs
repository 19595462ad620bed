//! The node's audit log as its users meet it: a read's plaintext leaves only once the
//! access is durable (I2), a citizen gets every access to their record with proofs an
//! outsider can check, and `ribat audit verify` finds a rewrite of the node's log (I5).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;

#[test]
fn i2_with_the_audit_log_unwritable_a_read_is_refused_and_releases_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(d.path(), 200, 20, 2, 31);
    ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    let p = fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .unwrap();
    let get = || {
        ribat(
            &home,
            &[
                "get",
                "--cnss",
                &p.cnss,
                "--purpose",
                "counter-service",
                "--passphrases",
                "env",
            ],
        )
    };
    // Works while the log can write (and shows what a release looks like).
    let out = ok(get());
    assert!(out.contains(&p.surname), "{out}");

    let audit = home.join("audit");
    ribat_testkit::fs::make_unwritable(&audit, true).unwrap();
    let refused = get();
    ribat_testkit::fs::make_unwritable(&audit, false).unwrap();
    let msg = text(&refused);
    assert!(
        !refused.status.success(),
        "a read was served without its audit: {msg}"
    );
    assert!(msg.contains("audit log"), "{msg}");
    assert!(msg.contains("serves no read"), "{msg}");
    for value in [&p.surname, &p.given, &p.cin, &p.name_arabic] {
        assert!(!msg.contains(value.as_str()), "plaintext released: {msg}");
    }
    // Writable again: reads resume, and the log still verifies.
    ok(get());
    let v = ribat(&home, &["audit", "verify", audit.to_str().unwrap()]);
    assert!(v.status.success(), "{}", text(&v));
}

#[test]
fn a_citizen_sees_every_access_with_proofs_and_a_rewrite_is_caught() {
    let d = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(d.path(), 200, 20, 2, 32);
    ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    let mut persons = fund.persons.iter().filter(|p| !p.honey && !p.sensitive);
    let (me, other) = (persons.next().unwrap(), persons.next().unwrap());
    let read = |cnss: &str, args: &[&str]| {
        let mut all = vec!["get", "--cnss", cnss, "--passphrases", "env"];
        all.extend_from_slice(args);
        ribat(&home, &all)
    };
    ok(read(
        &me.cnss,
        &[
            "--purpose",
            "counter-service",
            "--as",
            "clerk.casa.0042",
            "--institution",
            "CNSS agence Casa-Anfa",
        ],
    ));
    ok(read(&other.cnss, &["--purpose", "counter-service"]));
    ok(read(
        &me.cnss,
        &[
            "--purpose",
            "investigation",
            "--role",
            "supervisor",
            "--as",
            "supervisor.rabat.007",
            "--institution",
            "CNSS inspection",
            "--fields",
            "rib",
            "--history",
        ],
    ));
    let denied = read(
        &me.cnss,
        &["--purpose", "counter-service", "--fields", "rib"],
    );
    assert!(!denied.status.success());

    // The citizen's view: roles, purposes and institutions, not the readers' identities.
    let out = ok(ribat(
        &home,
        &[
            "audit",
            "subject",
            "--cnss",
            &me.cnss,
            "--passphrases",
            "env",
        ],
    ));
    // Two reads of the person, a refusal, and the two months of declarations read with
    // the history: the declarations count as accesses to the person.
    assert!(out.starts_with("5 accesses"), "{out}");
    assert_eq!(out.matches(" declarations financial").count(), 2, "{out}");
    assert!(
        out.contains("counter-service") && out.contains("investigation"),
        "{out}"
    );
    assert!(
        out.contains("CNSS agence Casa-Anfa") && out.contains("CNSS inspection"),
        "{out}"
    );
    assert!(out.contains("denied"), "{out}");
    assert_eq!(out.matches("inclusion proof verified").count(), 5, "{out}");
    assert!(
        !out.contains("clerk.casa.0042"),
        "identities are for the authority: {out}"
    );
    let authority = ok(ribat(
        &home,
        &[
            "audit",
            "subject",
            "--cnss",
            &me.cnss,
            "--authority",
            "--passphrases",
            "env",
        ],
    ));
    assert!(
        authority.contains("clerk.casa.0042") && authority.contains("supervisor.rabat.007"),
        "{authority}"
    );
    // Nothing about the other person, and no plaintext in the answer.
    assert!(
        !out.contains(&me.surname) && !out.contains(&me.cin),
        "{out}"
    );

    // Each proof is a file an outsider checks with `ribat audit verify-proof`.
    let json = ok(ribat(
        &home,
        &[
            "audit",
            "subject",
            "--cnss",
            &me.cnss,
            "--json",
            "--passphrases",
            "env",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let accesses = v["accesses"].as_array().unwrap();
    assert_eq!(accesses.len(), 5);
    assert!(accesses.iter().all(|a| a["identity"].is_null()));
    let proof_file = d.path().join("proof.json");
    std::fs::write(&proof_file, accesses[0]["inclusion"].to_string()).unwrap();
    let ok_proof = ribat(
        &home,
        &["audit", "verify-proof", proof_file.to_str().unwrap()],
    );
    assert!(ok_proof.status.success(), "{}", text(&ok_proof));
    // The same proof for another leaf hash fails.
    let mut forged = accesses[0]["inclusion"].clone();
    forged["leafHash"] = accesses[1]["inclusion"]["leafHash"].clone();
    std::fs::write(&proof_file, forged.to_string()).unwrap();
    let bad = ribat(
        &home,
        &["audit", "verify-proof", proof_file.to_str().unwrap()],
    );
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    // The checkpoint the proofs are against carries the custodians' cosignatures.
    let note = v["checkpoint"].as_str().unwrap();
    assert!(
        note.starts_with("ribat.local/audit/node.embedded\n"),
        "{note}"
    );
    assert!(note.matches("— custodian-").count() >= 2, "{note}");

    // The whole log verifies for an outsider…
    let audit = home.join("audit");
    let v = ribat(&home, &["audit", "verify", audit.to_str().unwrap()]);
    assert!(v.status.success(), "{}", text(&v));
    assert!(text(&v).contains("VALID"), "{}", text(&v));
    // …until someone with write access to the node edits an old entry.
    let journal = audit.join("journal");
    let mut bytes = std::fs::read(&journal).unwrap();
    let at = 8 + 20 + 30; // inside entry 0
    bytes[at] ^= 0x20;
    std::fs::write(&journal, &bytes).unwrap();
    let v = ribat(&home, &["audit", "verify", audit.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(1), "{}", text(&v));
    assert!(text(&v).contains("INVALID at entry 0"), "{}", text(&v));
    // And the node itself refuses to serve on a damaged log.
    let r = read(&me.cnss, &["--purpose", "counter-service"]);
    assert!(!r.status.success());
    assert!(text(&r).contains("damaged"), "{}", text(&r));
}
