//! The key ceremony and the demo as a user runs them: the real binary, real files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::{PASSES, text};
use std::process::Output;

/// The binary with only the given environment (the common helper sets all passphrases).
fn ribat(home: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = common::command(home, args);
    for (k, _) in PASSES {
        c.env_remove(k);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

#[test]
fn keys_init_from_the_environment_writes_sealed_custodians_and_never_overwrites() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("node");
    let args = [
        "keys",
        "init",
        "--threshold",
        "2",
        "--custodians",
        "3",
        "--classes",
        "identity,financial",
        "--passphrases",
        "env",
    ];
    let o = ribat(&home, &args, &PASSES);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("2 of 3 custodians"));
    let group = std::fs::read_to_string(home.join("group.json")).unwrap();
    assert!(group.contains("\"threshold\": 2") && group.contains("financial"));
    for i in 1..=3 {
        let dir = home.join(format!("custodians/custodian-{i}"));
        let sealed = std::fs::read_to_string(dir.join("custodian.json")).unwrap();
        assert!(sealed.contains("argon2id+aes-256-gcm-siv"));
        // No passphrase is written anywhere in the node directory.
        for (_, p) in PASSES {
            assert!(!sealed.contains(p));
        }
    }
    let again = ribat(&home, &args, &PASSES);
    assert!(!again.status.success());
    assert!(
        text(&again).contains("never overwrites keys"),
        "{}",
        text(&again)
    );
}

#[test]
fn keys_init_refuses_missing_or_short_passphrases_with_a_clear_message() {
    let d = tempfile::tempdir().unwrap();
    let o = ribat(
        &d.path().join("a"),
        &["keys", "init", "--passphrases", "env"],
        &PASSES[..2],
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("RIBAT_CUSTODIAN_3_PASSPHRASE is not set"),
        "{}",
        text(&o)
    );
    let short = [
        PASSES[0],
        PASSES[1],
        ("RIBAT_CUSTODIAN_3_PASSPHRASE", "short"),
    ];
    let o = ribat(
        &d.path().join("b"),
        &["keys", "init", "--passphrases", "env"],
        &short,
    );
    assert!(
        text(&o).contains("shorter than 12 characters"),
        "{}",
        text(&o)
    );
    let o = ribat(
        &d.path().join("c"),
        &["keys", "init", "--passphrases", "vault"],
        &PASSES,
    );
    assert!(
        text(&o).contains("expected prompt, env or dir:PATH"),
        "{}",
        text(&o)
    );
    let o = ribat(
        &d.path().join("d"),
        &["keys", "init", "--threshold", "1", "--passphrases", "env"],
        &PASSES,
    );
    assert!(text(&o).contains("at least 2"), "{}", text(&o));
}

#[test]
fn keys_init_refuses_classes_the_fund_cannot_live_with_before_writing_anything() {
    let d = tempfile::tempdir().unwrap();
    let init = |home: &str, classes: &str| {
        let home = d.path().join(home);
        let o = ribat(
            &home,
            &["keys", "init", "--classes", classes, "--passphrases", "env"],
            &PASSES,
        );
        (o, home)
    };
    // Without `financial` the salaries and the leak-digest key have nowhere to go.
    let (o, home) = init("a", "identity");
    assert!(!o.status.success());
    assert!(text(&o).contains("missing: financial"), "{}", text(&o));
    assert!(
        !home.join("group.json").exists(),
        "a refused ceremony wrote keys"
    );
    let (o, home) = init("b", "identity,Financial");
    assert!(!o.status.success());
    assert!(text(&o).contains("class name `Financial`"), "{}", text(&o));
    assert!(!home.exists());
    let (o, _) = init("c", "identity,financial,identity");
    assert!(
        text(&o).contains("class `identity` is named twice"),
        "{}",
        text(&o)
    );
    // A further class is welcome.
    let (o, home) = init("d", "identity,financial,medical");
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("classes identity, financial, medical"),
        "{}",
        text(&o)
    );
    assert!(home.join("group.json").exists());
}

#[test]
fn the_demo_runs_unattended_and_tells_the_story() {
    let d = tempfile::tempdir().unwrap();
    let o = ribat(d.path(), &["demo", "--persons", "300"], &[]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("0 of 25 found"), "{out}");
    assert!(out.contains("may not read class `financial`"), "{out}");
    // The partner role may read 20 distinct records a minute (the hourly 100 never binds).
    assert!(out.contains("20 of 300 records read"), "{out}");
    assert!(
        out.contains("quarantined at custodians 1, 2, 3: [true, true, true]"),
        "{out}"
    );
    // Section 12, over mTLS to a gateway process: masks, purpose, replay, no certificate.
    assert!(out.contains("purpose=partner-verification → 200"), "{out}");
    assert!(out.contains("-**-**"), "{out}");
    assert!(out.contains("purpose=marketing → 403"), "{out}");
    assert!(
        out.contains("replayed by clerk.casa-anfa.0042 → 401"),
        "{out}"
    );
    assert!(out.contains("CertificateRequired"), "{out}");
    // Section 14, three node processes: one custodian each, a node killed and reads going
    // on, the attack on node 1 refused at node 2's gateway through the replicated state.
    assert!(out.contains("node-3: custodian 3 only"), "{out}");
    // The token key on node 3 and, so that sign-ins survive a node down, node 1; node 2's
    // gateway forwards to them.
    assert!(
        out.contains("node-3: custodian 3 only, its shares sealed under its own passphrase; the identity service (the token key)"),
        "{out}"
    );
    assert!(out.contains("node-2: custodian 2 only, its shares sealed under its own passphrase; a gateway, which holds no token key"), "{out}");
    // A certificate fresh from the CA is refused until two administrators grant it.
    assert!(
        out.contains("asks node-1's gateway for a token → 403 certificate-not-granted"),
        "{out}"
    );
    assert!(
        out.contains(
            "sec.amina and sec.youssef each sign a grant of both certificates; committed at index"
        ),
        "{out}"
    );
    let after_kill = out.split("node-3 killed (SIGKILL)").nth(1).unwrap_or("");
    assert!(
        after_kill
            .lines()
            .nth(1)
            .is_some_and(|l| l.contains("through node-1's gateway → 200")),
        "{out}"
    );
    // Refused there by its gate or, a moment before it applied the entry, by the
    // custodians it asked: quarantined either way.
    let at_node_2 = out
        .split("which saw nothing of the attack → ")
        .nth(1)
        .and_then(|s| s.lines().next())
        .unwrap_or("");
    assert!(
        at_node_2.starts_with("403")
            && at_node_2.contains("`partner.third-party-x` is quarantined"),
        "{out}"
    );
    assert!(
        out.contains("node-3's custodian carried it out from the log"),
        "{out}"
    );
    // Custodian 2 moved to node-4 by resharing, reads answered throughout, the intruder's
    // copy of the old share worthless.
    let reshared = out
        .split("custodian set 2 in force after")
        .nth(1)
        .and_then(|s| s.lines().next())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        reshared.contains("2 of 3: 1=node-1, 2=node-4, 3=node-3")
            && reshared.ends_with(" 0 refused"),
        "{reshared}"
    );
    assert!(out.contains("node-2 erased custodian 2's shares"), "{out}");
    assert!(
        out.contains("node-1's gateway (custodians of set 2) → 200"),
        "{out}"
    );
    assert!(
        out.contains("with custodian 1's new share rebuilds nothing of the identity key"),
        "{out}"
    );
    // A second run replaces the previous demo and nothing else.
    std::fs::write(d.path().join("keep.txt"), b"mine").unwrap();
    let again = ribat(d.path(), &["demo", "--persons", "300"], &[]);
    assert!(again.status.success(), "{}", text(&again));
    assert_eq!(std::fs::read(d.path().join("keep.txt")).unwrap(), b"mine");
}

#[test]
fn a_substituted_group_file_is_refused_before_anything_is_sealed() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    for h in [&a, &b] {
        let o = ribat(h, &["keys", "init", "--passphrases", "env"], &PASSES);
        assert!(o.status.success(), "{}", text(&o));
    }
    // An attacker with write access to node a's directory puts node b's public keys in
    // place, hoping that new records get sealed to keys whose shares they hold.
    std::fs::copy(b.join("group.json"), a.join("group.json")).unwrap();
    let src = d.path().join("src");
    let o = ribat(
        &a,
        &[
            "sim",
            "generate",
            "--persons",
            "20",
            "--employers",
            "2",
            "--out",
            src.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let o = ribat(
        &a,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
        &PASSES,
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("differs from the group file custodian 1 verified"),
        "{}",
        text(&o)
    );
    let store = ribat_store::SqliteStore::open(&a.join("store.sqlite")).unwrap();
    assert_eq!(ribat_store::Store::count(&store, "persons").unwrap(), 0);
}
