//! I4: after importing a generated fund, no name, CIN, CNSS number, RIB or salary of any
//! person occurs in the SQLite file, its WAL or its shared-memory file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use aho_corasick::AhoCorasick;
use common::*;

/// Every identifying or financial value of the fund, as it would be written in clear.
pub fn needles(fund: &ribat_sim::Fund) -> Vec<String> {
    let mut v = Vec::new();
    for p in &fund.persons {
        v.push(format!("{} {}", p.given, p.surname));
        v.push(p.nom_prenom());
        v.push(p.name_arabic.clone());
        v.push(p.cin.clone());
        v.push(p.cnss.clone());
        v.push(p.rib.clone());
    }
    for d in &fund.declarations {
        if d.salary_real > 0 {
            v.push(d.salary_real.to_string());
        }
    }
    v.sort();
    v.dedup();
    v
}

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
