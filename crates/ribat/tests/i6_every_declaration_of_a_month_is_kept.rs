//! I6 for declarations: a person declared by two employers in the same month (part-time
//! work, a change of job mid-month) keeps both declarations, a re-run import stores
//! nothing twice, and a leaked row of either declaration scans as genuine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use ribat_import::ebds;
use ribat_store::Store;
use std::fmt::Write as _;

#[test]
fn i6_a_person_declared_by_two_employers_in_one_month_keeps_both_declarations() {
    let d = tempfile::tempdir().unwrap();
    let (src, home, _) = fund_and_keys(d.path(), 80, 4, 1, 41);
    let mut files: Vec<_> = std::fs::read_dir(src.join("ebds"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let parse = |f: &std::path::Path| {
        let name = f.file_name().unwrap().to_str().unwrap().to_owned();
        ebds::parse(&name, &std::fs::read(f).unwrap()).unwrap()
    };
    let (a, b) = (parse(&files[0]), parse(&files[1]));
    assert_eq!(
        a.header.period, b.header.period,
        "one month of two employers"
    );
    // The second employer also declares one of the first one's employees, part time.
    let mut part_time = a.rows.iter().find(|r| !r.entrant).unwrap().clone();
    let first_salary = part_time.salary_real;
    part_time.affiliation = b.header.affiliation.clone();
    part_time.days = 9;
    part_time.salary_real = 187_345;
    part_time.salary_capped = 187_345;
    let mut rows = b.rows.clone();
    rows.push(part_time.clone());
    std::fs::write(&files[1], ebds::write(&b.header, &rows).unwrap()).unwrap();

    let out = ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    assert!(
        !out.contains("ebds/DS_"),
        "no declaration file is refused: {out}"
    );
    let store = ribat_store::SqliteStore::open(&home.join("store.sqlite")).unwrap();
    let declared = store.count("declarations").unwrap();

    let history = ok(ribat(
        &home,
        &[
            "get",
            "--cnss",
            &part_time.cnss,
            "--purpose",
            "investigation",
            "--role",
            "supervisor",
            "--as",
            "sup.1",
            "--history",
            "--json",
            "--passphrases",
            "env",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&history).unwrap();
    let mut salaries: Vec<u64> = v["declarations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["period"] == part_time.period.as_str())
        .map(|d| d["salary_real_centimes"].as_str().unwrap().parse().unwrap())
        .collect();
    salaries.sort_unstable();
    let mut want = vec![first_salary, 187_345];
    want.sort_unstable();
    assert_eq!(salaries, want, "{history}");

    // The same files again: everything already there, nothing stored twice.
    let again = ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    assert_eq!(store.count("declarations").unwrap(), declared, "{again}");

    // A leaked line of each declaration is genuine.
    let mut dump = String::from("N° immatriculation;Salaire;Jours;Période\n");
    for r in a.rows.iter().chain(&rows) {
        let _ = writeln!(
            dump,
            "{};{}.{:02};{};{}",
            r.cnss,
            r.salary_real / 100,
            r.salary_real % 100,
            r.days,
            r.period
        );
    }
    let leaked = d.path().join("leaked.csv");
    std::fs::write(&leaked, dump).unwrap();
    let o = ribat(
        &home,
        &[
            "leak",
            "scan",
            leaked.to_str().unwrap(),
            "--json",
            "--passphrases",
            "env",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows_in = (a.rows.len() + rows.len()) as u64;
    assert_eq!(s["classes"]["genuine-current"], rows_in, "{s}");
}
