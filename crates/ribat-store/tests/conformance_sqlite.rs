//! The SQLite backend passes the store conformance suite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use ribat_store::SqliteStore;
use ribat_store::conformance::{Harness, run_all};

struct Sqlite {
    dir: tempfile::TempDir,
    n: usize,
}

impl Harness for Sqlite {
    type S = SqliteStore;
    fn fresh(&mut self) -> SqliteStore {
        self.n += 1;
        SqliteStore::open(&self.dir.path().join(format!("store-{}.sqlite", self.n))).unwrap()
    }
    fn reopen(&mut self) -> SqliteStore {
        SqliteStore::open(&self.dir.path().join(format!("store-{}.sqlite", self.n))).unwrap()
    }
}

#[test]
fn sqlite_passes_the_store_conformance_suite() {
    run_all(&mut Sqlite {
        dir: tempfile::tempdir().unwrap(),
        n: 0,
    });
}
