//! A class-key rotation over real processes: `ribat keys rotate` killed with SIGKILL halfway
//! through its re-sealing job, every record read in the half-rotated store, the job
//! resumed and finished; afterwards the shares that may have leaked (two custodians'
//! epoch-1 shares, copied before the rotation) open nothing, and the previous epoch's
//! shares are gone from every custodian's directory.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use ribat_crypto::combine::{answer, combine, verify_partial};
use ribat_crypto::dleq::Dleq;
use ribat_crypto::envelope::Envelope;
use ribat_crypto::group::GroupPublic;
use ribat_crypto::secret::Passphrase;
use ribat_custodian::keystore::{self, CustodianKeys};
use ribat_import::records::RecordSealer;
use ribat_policy::Table;
use ribat_store::{PointSource, Store};
use std::path::Path;
use std::time::{Duration, Instant};

/// What two stolen custodian shares make of `id`'s identity envelope: opened or not.
fn stolen_shares_open(stolen: &[CustodianKeys], old: &GroupPublic, home: &Path, id: &str) -> bool {
    let store = ribat_store::SqliteStore::open(&home.join("store.sqlite")).unwrap();
    let env =
        Envelope::from_bytes(&store.envelope("persons", id, "identity").unwrap().unwrap()).unwrap();
    let r = env.r_point().unwrap();
    let dleq = Dleq::ribat();
    let partials: Vec<_> = stolen
        .iter()
        .map(|k| {
            let p = answer(&dleq, k.shares.get("identity").unwrap(), &[r]).unwrap();
            let y = old.public_share("identity", k.index).unwrap();
            verify_partial(&dleq, "identity", y, &[r], &p).unwrap()
        })
        .collect();
    let shared = combine("identity", 2, &partials).unwrap();
    let now =
        GroupPublic::from_json(&std::fs::read_to_string(home.join("group.json")).unwrap()).unwrap();
    env.open(
        "persons",
        id,
        "identity",
        now.class_at("identity", env.epoch).unwrap(),
        env.epoch,
        &shared[0],
    )
    .is_ok()
}

fn status(home: &Path) -> serde_json::Value {
    let out = ok(ribat(home, &["keys", "rotate", "--status", "--json"]));
    serde_json::from_str(out.lines().last().unwrap()).unwrap()
}

/// Every person's identity and RIB, and every declaration's salary, read through the
/// quorum, equal to the fund's.
fn every_record_reads(home: &Path, fund: &ribat_sim::Fund) {
    let node = open(home);
    let sealer = RecordSealer::new(&node.group, &node.index).unwrap();
    let ids: Vec<String> = fund
        .persons
        .iter()
        .map(|p| sealer.person_id(&p.cnss).unwrap())
        .collect();
    let identity = read_all(&node, Table::Persons, "identity", &ids);
    for (p, f) in fund.persons.iter().zip(&identity) {
        assert_eq!(
            (field(f, "cnss"), field(f, "cin")),
            (p.cnss.clone(), p.cin.clone())
        );
    }
    let ribs = read_all(&node, Table::Persons, "financial", &ids);
    assert!(
        fund.persons
            .iter()
            .zip(&ribs)
            .all(|(p, f)| field(f, "rib") == p.rib)
    );
    let decl_ids = declaration_ids(&sealer, fund, &ids);
    let decls = read_all(&node, Table::Declarations, "financial", &decl_ids);
    for (d, f) in fund.declarations.iter().zip(&decls) {
        assert_eq!(field(f, "salary_real"), d.salary_real.to_string());
    }
}

#[test]
fn a_rotation_killed_halfway_resumes_and_every_record_reads_before_during_and_after() {
    let d = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(d.path(), 3_000, 300, 1, 11);
    ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    every_record_reads(&home, &fund);
    let old_group =
        GroupPublic::from_json(&std::fs::read_to_string(home.join("group.json")).unwrap()).unwrap();
    // The shares an intruder may have copied: custodians 1 and 2, with their passphrases.
    let stolen: Vec<CustodianKeys> = (1..=2)
        .map(|i| {
            keystore::load(
                &home.join(format!("custodians/custodian-{i}")),
                &Passphrase::new(PASSES[i - 1].1.into()),
            )
            .unwrap()
        })
        .collect();
    let node = open(&home);
    let sealer = RecordSealer::new(&node.group, &node.index).unwrap();
    let someone = sealer.person_id(&fund.persons[7].cnss).unwrap();
    // While another process holds the custodians open (as `ribat serve` would), a rotation
    // is refused before any key changes.
    let o = ribat(&home, &["keys", "rotate", "--passphrases", "env"]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("another process has"), "{}", text(&o));
    drop(node);
    // Before the rotation the stolen shares open a record: the check below can fail.
    assert!(stolen_shares_open(&stolen, &old_group, &home, &someone));
    // Every envelope those shares open today, as a thief of the store file would find it
    // (its last 32 bytes: ciphertext and tag, unique to it).
    let old_tails: Vec<Vec<u8>> = {
        let s = ribat_store::SqliteStore::open(&home.join("store.sqlite")).unwrap();
        s.sealed_under(1, None, usize::MAX)
            .unwrap()
            .iter()
            .map(|r| {
                let e = s
                    .envelope(&r.table, &r.record_id, &r.class)
                    .unwrap()
                    .unwrap();
                e[e.len() - 32..].to_vec()
            })
            .collect()
    };
    assert!(old_tails.len() > 6_000, "{}", old_tails.len());
    assert_eq!(status(&home)["previous"], serde_json::Value::Null);

    let store = ribat_store::SqliteStore::open(&home.join("store.sqlite")).unwrap();
    let total = store.count_sealed_under(1).unwrap();
    let mut child = command(
        &home,
        &["keys", "rotate", "--passphrases", "env", "--batch", "40"],
    )
    .stderr(std::process::Stdio::null())
    .stdout(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let t0 = Instant::now();
    let at_kill = loop {
        if let Some(s) = child.try_wait().unwrap() {
            panic!("the rotation finished ({s}) before it could be killed; make the fund larger");
        }
        let moved = store.count_sealed_under(2).unwrap();
        if moved * 2 >= total {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break moved;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(180),
            "the rotation made no progress"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    // Halfway: both epochs in the store, what was written is still there, and every record
    // reads (a batch spanning both epochs is asked for once per epoch).
    let s = status(&home);
    assert_eq!(
        (s["epoch"].as_u64(), s["previous"].as_u64()),
        (Some(2), Some(1)),
        "{s}"
    );
    let left = s["left"].as_u64().unwrap();
    assert!(left > 0 && left < total, "{s} of {total}");
    assert!(store.count_sealed_under(2).unwrap() >= at_kill);
    every_record_reads(&home, &fund);
    // A person read with `ribat get` (another process, the identity fields) in the meantime.
    let got = ok(ribat(
        &home,
        &[
            "get",
            "--cnss",
            &fund.persons[7].cnss,
            "--purpose",
            "counter-service",
            "--passphrases",
            "env",
        ],
    ));
    assert!(got.contains(&fund.persons[7].cin), "{got}");

    // Resumed: it re-seals what is left (not what was done) and finishes.
    let o = ribat(&home, &["keys", "rotate", "--passphrases", "env", "--json"]);
    let out = ok(o.clone());
    let stdout = String::from_utf8(o.stdout).unwrap();
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["finished"], true, "{out}");
    assert!(out.contains("resuming the rotation to epoch 2"), "{out}");
    let resealed = report["resealed"].as_u64().unwrap();
    assert!(resealed <= left && resealed > 0, "{out}");
    let s = status(&home);
    assert_eq!(
        (
            s["epoch"].as_u64(),
            s["previous"].as_u64(),
            s["left"].as_u64()
        ),
        (Some(2), None, Some(0))
    );
    assert_eq!(store.count_sealed_under(1).unwrap(), 0);
    assert_eq!(store.count_sealed_under(2).unwrap(), total);
    every_record_reads(&home, &fund);

    // The leaked epoch-1 shares open nothing now, and no custodian keeps an epoch-1 share.
    assert!(!stolen_shares_open(&stolen, &old_group, &home, &someone));
    // Nor is any epoch-1 envelope left in the store's files (freed pages, the WAL) for
    // them to open: a rotation that left them behind would have protected nothing.
    let ac = aho_corasick::AhoCorasick::new(&old_tails).unwrap();
    for name in ["store.sqlite", "store.sqlite-wal"] {
        let bytes = std::fs::read(home.join(name)).unwrap_or_default();
        let left = ac.find_iter(&bytes).count();
        assert_eq!(left, 0, "{name} still holds {left} epoch-1 envelopes");
    }
    for i in 1..=3 {
        let dir = home.join(format!("custodians/custodian-{i}"));
        let keys = keystore::load(&dir, &Passphrase::new(PASSES[i - 1].1.into())).unwrap();
        assert_eq!((keys.epoch, keys.previous.is_none()), (2, true));
        assert!(!keystore::holds_shares(&dir) || !dir.join("custodian.next.json").exists());
        let text = std::fs::read_to_string(dir.join("group.json")).unwrap();
        assert!(!text.contains("previous"), "custodian {i}: {text}");
    }
    assert!(!home.join("rotation.json").exists());
    // Every re-sealing read is in the audit log, which verifies whole after the kill.
    ok(ribat(
        &home,
        &["audit", "verify", home.join("audit").to_str().unwrap()],
    ));
    let subject = ok(ribat(
        &home,
        &[
            "audit",
            "subject",
            "--cnss",
            &fund.persons[7].cnss,
            "--passphrases",
            "env",
        ],
    ));
    assert!(subject.contains("key-rotation"), "{subject}");
    assert!(
        store
            .point("persons", &someone, "identity")
            .unwrap()
            .unwrap()
            .epoch
            == 2
    );
}
