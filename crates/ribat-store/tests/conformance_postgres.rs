//! The PostgreSQL backend passes the store conformance suite, against the throwaway
//! cluster `.ci/run` starts (`RIBAT_TEST_PG` holds its connection string).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use ribat_store::PostgresStore;
use ribat_store::conformance::{Harness, run_all};

/// The connection string of the test cluster. Missing is a failure, not a skip: a suite
/// that silently does not run proves nothing. `RIBAT_SKIP_PG=1` skips it knowingly.
pub fn conninfo() -> Option<String> {
    match std::env::var("RIBAT_TEST_PG") {
        Ok(c) => Some(c),
        Err(_) if std::env::var("RIBAT_SKIP_PG").is_ok_and(|v| v == "1") => {
            eprintln!("RIBAT_SKIP_PG=1: the PostgreSQL suite is NOT run");
            None
        }
        Err(_) => panic!(
            "RIBAT_TEST_PG is not set: run the tests through .ci/run (it starts PostgreSQL), or set RIBAT_SKIP_PG=1"
        ),
    }
}

struct Pg {
    conninfo: String,
    prefix: String,
    n: usize,
}

impl Harness for Pg {
    type S = PostgresStore;
    fn fresh(&mut self) -> PostgresStore {
        self.n += 1;
        PostgresStore::connect(&self.conninfo, &format!("{}_{}", self.prefix, self.n)).unwrap()
    }
    fn reopen(&mut self) -> PostgresStore {
        PostgresStore::connect(&self.conninfo, &format!("{}_{}", self.prefix, self.n)).unwrap()
    }
}

#[test]
fn postgres_passes_the_store_conformance_suite() {
    let Some(conninfo) = conninfo() else { return };
    let prefix = format!(
        "conf_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000
    );
    run_all(&mut Pg {
        conninfo,
        prefix,
        n: 0,
    });
}

#[test]
fn a_bad_connection_or_schema_name_is_a_clear_error() {
    let Some(conninfo) = conninfo() else { return };
    let e = PostgresStore::connect("host=/nonexistent port=1 user=x dbname=y", "s")
        .err()
        .unwrap();
    assert!(e.to_string().contains("PostgreSQL error in connect"), "{e}");
    let e = PostgresStore::connect(&conninfo, "Robert'); DROP TABLE students;--")
        .err()
        .unwrap();
    assert!(e.to_string().contains("schema names"), "{e}");
}

#[test]
fn a_node_role_opens_a_made_schema_without_creating_anything_and_names_are_checked() {
    use ribat_store::Store;
    let Some(conninfo) = conninfo() else { return };
    let schema = format!("roles_{}", std::process::id());
    let role = format!("{schema}_node_1");
    // The owner makes the schema and the node's role.
    drop(PostgresStore::connect(&conninfo, &schema).unwrap());
    PostgresStore::grant_node_role(&conninfo, &schema, &role).unwrap();
    // Granting twice is harmless (a ceremony re-run on the same database).
    PostgresStore::grant_node_role(&conninfo, &schema, &role).unwrap();
    // The node connects as its role: the schema is there, so nothing is created, and it
    // reads what the store holds.
    let node = PostgresStore::connect(&format!("{conninfo} user={role}"), &schema).unwrap();
    assert_eq!(node.version("persons", "p-none").unwrap(), None);
    // A schema its role may not create is refused with the database's reason.
    let e = PostgresStore::connect(&format!("{conninfo} user={role}"), &format!("{schema}_x"))
        .err()
        .unwrap();
    assert!(e.to_string().contains("permission denied"), "{e}");
    for (s, r) in [("Bad", "ok_role"), ("ok_schema", "x; DROP ROLE ribat")] {
        let e = PostgresStore::grant_node_role(&conninfo, s, r)
            .err()
            .unwrap();
        assert!(e.to_string().contains("lowercase letters"), "{e}");
    }
}
