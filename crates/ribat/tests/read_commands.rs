//! `ribat get` and `ribat find` as a clerk and a supervisor use them: through the blind
//! indexes and the quorum, with the policy's refusals as clear errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;

#[test]
fn a_clerk_and_a_supervisor_read_what_their_roles_allow() {
    let d = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(d.path(), 300, 30, 3, 21);
    ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    let p = fund.persons.iter().find(|p| !p.honey).unwrap();
    let h = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--passphrases", "env"]);
        ribat(&home, &all)
    };

    let out = ok(h(&[
        "get",
        "--cnss",
        &p.cnss,
        "--purpose",
        "counter-service",
    ]));
    assert!(
        out.contains(&p.cin) && out.contains(&p.surname) && out.contains(&p.name_arabic),
        "{out}"
    );
    assert!(!out.contains(&p.rib), "identity fields only by default");

    let refused = h(&[
        "get",
        "--cnss",
        &p.cnss,
        "--purpose",
        "counter-service",
        "--fields",
        "rib",
    ]);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("role `clerk` may not read class `financial`"),
        "{}",
        text(&refused)
    );

    let json = ok(h(&[
        "get",
        "--cnss",
        &p.cnss,
        "--purpose",
        "investigation",
        "--role",
        "supervisor",
        "--as",
        "sup.1",
        "--fields",
        "rib,cin",
        "--history",
        "--json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["fields"]["rib"], p.rib.as_str());
    assert_eq!(v["declarations"].as_array().unwrap().len(), 3, "{json}");

    // Find by CIN written the way a clerk types it, and by name in another order.
    let typed = format!(" {} ", p.cin.to_lowercase());
    let out = ok(h(&[
        "find",
        "--cin",
        &typed,
        "--purpose",
        "counter-service",
    ]));
    assert!(out.contains(&p.cnss), "{out}");
    let reordered = format!("{} {}", p.surname.to_uppercase(), p.given);
    let out = ok(h(&[
        "find",
        "--name",
        &reordered,
        "--birth-date",
        &p.birth_date,
        "--purpose",
        "counter-service",
    ]));
    assert!(out.contains(&p.cnss), "{out}");
}

#[test]
fn bad_reads_say_what_is_wrong() {
    let d = tempfile::tempdir().unwrap();
    let (src, home, _) = fund_and_keys(d.path(), 40, 4, 1, 22);
    ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    let cases: [(&[&str], &str); 5] = [
        (
            &["get", "--cnss", "100000001", "--purpose", "counter-service"],
            "no person with this CNSS number",
        ),
        (
            &["get", "--cnss", "12ab", "--purpose", "counter-service"],
            "expected exactly 9 digits",
        ),
        (&["get", "--cnss", "100000001"], "--purpose"),
        (
            &[
                "get",
                "--cnss",
                "100000001",
                "--purpose",
                "counter-service",
                "--fields",
                "salary",
            ],
            "unknown field `salary`",
        ),
        (
            &["find", "--cin", "123", "--purpose", "counter-service"],
            "1–2 letters followed by digits",
        ),
    ];
    for (args, want) in cases {
        let mut all = args.to_vec();
        all.extend_from_slice(&["--passphrases", "env"]);
        let o = ribat(&home, &all);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{args:?}: {}", text(&o));
    }
    // Without keys, a clear pointer to the ceremony.
    let o = ribat(
        &d.path().join("empty"),
        &[
            "get",
            "--cnss",
            "100000001",
            "--purpose",
            "x",
            "--passphrases",
            "env",
        ],
    );
    assert!(
        text(&o).contains("run `ribat keys init` first"),
        "{}",
        text(&o)
    );
}
