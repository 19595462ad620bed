//! I4: after importing a generated fund, no name, CIN, CNSS number, RIB or salary of any
//! person occurs in the SQLite file, its WAL or its shared-memory file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use aho_corasick::AhoCorasick;
use common::*;

#[test]
fn i4_no_personal_value_of_an_imported_fund_is_in_the_sqlite_files() {
    let d = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(d.path(), 3_000, 250, 2, 11);
    ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    let needles = needles(&fund);
    assert!(needles.len() > 15_000, "{}", needles.len());
    let ac = AhoCorasick::new(&needles).unwrap();
    let mut searched = 0;
    for name in ["store.sqlite", "store.sqlite-wal", "store.sqlite-shm"] {
        let Ok(bytes) = std::fs::read(home.join(name)) else {
            continue;
        };
        searched += bytes.len();
        if let Some(m) = ac.find(&bytes) {
            panic!(
                "{name} holds `{}` in clear at byte {}",
                needles[m.pattern().as_usize()],
                m.start()
            );
        }
    }
    assert!(
        searched > 1_000_000,
        "only {searched} bytes searched: the import stored nothing?"
    );

    // The search is able to fail: the fund's own plaintext files are full of these values.
    let persons_csv = std::fs::read(src.join("persons.csv")).unwrap();
    assert!(ac.find(&persons_csv).is_some());
}

#[test]
fn i4_no_personal_value_of_an_imported_fund_is_in_a_pg_dump() {
    let conninfo = match std::env::var("RIBAT_TEST_PG") {
        Ok(c) => c,
        Err(_) if std::env::var("RIBAT_SKIP_PG").is_ok_and(|v| v == "1") => return,
        Err(_) => panic!(
            "RIBAT_TEST_PG is not set: run the tests through .ci/run, or set RIBAT_SKIP_PG=1"
        ),
    };
    let schema = format!("i4_{}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("source");
    let home = d.path().join("node");
    let store = format!("postgres:{conninfo}");
    let pg = |args: &[&str]| {
        let mut all = vec!["--store", &store, "--store-schema", &schema];
        all.extend_from_slice(args);
        ok(ribat(&home, &all))
    };
    ok(ribat(
        &home,
        &[
            "sim",
            "generate",
            "--persons",
            "2000",
            "--employers",
            "150",
            "--months",
            "2",
            "--seed",
            "12",
            "--out",
            src.to_str().unwrap(),
        ],
    ));
    pg(&["keys", "init", "--passphrases", "env"]);
    pg(&["import", src.to_str().unwrap(), "--passphrases", "env"]);
    // The node directory holds no store file: everything went to PostgreSQL.
    assert!(!home.join("store.sqlite").exists());

    let pg_dump =
        std::env::var("RIBAT_PG_BIN").map_or("pg_dump".to_owned(), |b| format!("{b}/pg_dump"));
    let dump = std::process::Command::new(pg_dump)
        .args(["-d", &conninfo, "-n", &schema, "--no-owner"])
        .output()
        .unwrap();
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(2000, 150, 2, 12));
    let needles = needles(&fund);
    let ac = AhoCorasick::new(&needles).unwrap();
    assert!(
        dump.stdout.len() > 1_000_000,
        "dump of {} bytes: nothing imported?",
        dump.stdout.len()
    );
    // A text dump writes BYTEA as `\x` and hex digits, where any short number turns up by
    // chance; what is stored is the decoded bytes. Search those, and every text field as
    // written.
    let decoded = decode_bytea(&dump.stdout);
    assert!(decoded.len() > 500_000);
    if let Some(m) = ac.find(&decoded) {
        panic!(
            "pg_dump holds `{}` in clear",
            needles[m.pattern().as_usize()]
        );
    }
    // The check can fail: a value written into a text column would be found.
    let planted = [
        decoded.clone(),
        format!("\n{}\n", fund.persons[9].cin).into_bytes(),
    ]
    .concat();
    assert!(ac.find(&planted).is_some());
    // Reads work against PostgreSQL too.
    let p = &fund.persons.iter().find(|p| !p.honey).unwrap();
    let out = pg(&[
        "get",
        "--cnss",
        &p.cnss,
        "--purpose",
        "counter-service",
        "--passphrases",
        "env",
    ]);
    assert!(out.contains(&p.cin) && out.contains(&p.surname), "{out}");
}
