//! I6: `kill -9` during an import, then a re-run: nothing acknowledged is lost, nothing is
//! duplicated, and every record's contents match the source.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use ribat_import::records::RecordSealer;
use ribat_policy::Table;
use ribat_store::Store;
use std::time::{Duration, Instant};

#[test]
fn i6_a_killed_import_finishes_on_rerun_without_loss_or_duplicates() {
    let d = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(d.path(), 24_000, 2_000, 1, 5);

    let mut child = command(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    )
    .spawn()
    .unwrap();
    let store = ribat_store::SqliteStore::open(&home.join("store.sqlite")).unwrap();
    let t0 = Instant::now();
    let seen_at_kill = loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the import finished ({status}) before it could be killed; make the fund larger"
            );
        }
        let persons = store.count(Table::Persons.as_str()).unwrap();
        if persons >= 4_000 {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            break persons;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "import made no progress"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    // What was acknowledged (committed) before the kill is still there.
    let after_kill = store.count(Table::Persons.as_str()).unwrap();
    assert!(
        after_kill >= seen_at_kill && after_kill < fund.persons.len() as u64,
        "{seen_at_kill} {after_kill}"
    );

    let out = ok(ribat(
        &home,
        &["import", src.to_str().unwrap(), "--passphrases", "env"],
    ));
    assert!(
        out.contains(&format!("{after_kill} already there")),
        "{out}"
    );
    assert_eq!(
        store.count(Table::Persons.as_str()).unwrap(),
        fund.persons.len() as u64
    );
    assert_eq!(
        store.count(Table::Employers.as_str()).unwrap(),
        fund.employers.len() as u64
    );
    assert_eq!(
        store.count(Table::Declarations.as_str()).unwrap(),
        fund.declarations.len() as u64
    );

    // Contents: every person and every declaration, read back through the quorum.
    let node = open(&home);
    let sealer = RecordSealer::new(&node.group, &node.index).unwrap();
    let ids: Vec<String> = fund
        .persons
        .iter()
        .map(|p| sealer.person_id(&p.cnss).unwrap())
        .collect();
    let identity = read_all(&node, Table::Persons, "identity", &ids);
    for (p, f) in fund.persons.iter().zip(&identity) {
        assert_eq!(field(f, "cnss"), p.cnss);
        assert_eq!(field(f, "cin"), p.cin);
        assert_eq!(
            (field(f, "given"), field(f, "surname")),
            (p.given.clone(), p.surname.clone())
        );
        assert_eq!(field(f, "name_ar"), p.name_arabic);
        assert_eq!(field(f, "birth_date"), p.birth_date);
    }
    let ribs = read_all(&node, Table::Persons, "financial", &ids);
    assert!(
        fund.persons
            .iter()
            .zip(&ribs)
            .all(|(p, f)| field(f, "rib") == p.rib)
    );
    let decl_ids = declaration_ids(&sealer, &fund, &ids);
    let decls = read_all(&node, Table::Declarations, "financial", &decl_ids);
    for (d, f) in fund.declarations.iter().zip(&decls) {
        assert_eq!(field(f, "salary_real"), d.salary_real.to_string());
        assert_eq!(field(f, "days"), d.days.to_string());
        assert_eq!(field(f, "person"), ids[d.person]);
    }
}
