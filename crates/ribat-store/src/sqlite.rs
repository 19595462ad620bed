//! The embedded backend: one SQLite file per node directory, WAL journal, full sync.

use crate::{
    DigestRef, DigestRow, Part, PointSource, RecordRef, Reseal, SealedRef, Store, StoreError,
    StoredPoint, StoredRecord,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::Path;
use std::sync::Mutex;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    tbl       TEXT    NOT NULL CHECK (tbl IN ('persons', 'employers', 'declarations', 'exports', 'keys')),
    record_id TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    PRIMARY KEY (tbl, record_id)
) WITHOUT ROWID;
-- A rowid table: envelopes are hundreds of bytes, and WITHOUT ROWID B-trees keyed by
-- random ids rebalance large rows on every insert. A unique index (below) keeps lookups
-- direct.
CREATE TABLE IF NOT EXISTS sealed (
    tbl       TEXT    NOT NULL,
    record_id TEXT    NOT NULL,
    class     TEXT    NOT NULL,
    epoch     INTEGER NOT NULL,
    r         BLOB    NOT NULL CHECK (length(r) = 32),
    envelope  BLOB    NOT NULL
);
CREATE TABLE IF NOT EXISTS blind_index (
    kind      TEXT NOT NULL,
    tag       BLOB NOT NULL CHECK (length(tag) = 16),
    tbl       TEXT NOT NULL,
    record_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS digests (
    locator   BLOB    NOT NULL CHECK (length(locator) = 16),
    tbl       TEXT    NOT NULL,
    record_id TEXT    NOT NULL,
    version   INTEGER NOT NULL,
    body      BLOB    NOT NULL
);
";

/// Secondary indexes: dropped during a bulk load into an empty store and built once at
/// its end, and (re)created at every open, so that a crash in the middle of a bulk load
/// leaves a store that repairs itself when reopened.
const INDEXES: &str = "
CREATE UNIQUE INDEX IF NOT EXISTS sealed_by_record ON sealed (tbl, record_id, class);
CREATE UNIQUE INDEX IF NOT EXISTS blind_index_by_tag ON blind_index (kind, tag, tbl, record_id);
-- Replacing a record removes its old tags; without this index that is a full scan.
CREATE INDEX IF NOT EXISTS blind_index_by_record ON blind_index (tbl, record_id);
-- Covering: a scan of a large dump walks the digests in locator order from this index
-- alone, and a lookup by locator reads one run of it. It also keeps each digest once.
CREATE UNIQUE INDEX IF NOT EXISTS digests_in_locator_order ON digests (locator, tbl, record_id, version, body);
-- Its narrower predecessor, of stores written before it.
DROP INDEX IF EXISTS digests_by_locator;
";

/// How much of the file a scan's read-only connection maps (SQLite caps it at its own
/// compile-time limit; address space, not memory).
const SCAN_MMAP_BYTES: i64 = 1 << 40;

/// A store in one SQLite file.
pub struct SqliteStore {
    conn: Mutex<Connection>,
    path: std::path::PathBuf,
}

fn db(operation: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |source| StoreError::Database { operation, source }
}

/// The first and last rowid of the digest table (`(0, -1)` when empty). Two queries:
/// SQLite reads one end of the B-tree for `min` or `max` alone, but scans the whole table
/// for both in one statement.
fn rowid_span(c: &Connection) -> Result<(i64, i64), StoreError> {
    let end = |sql: &str, empty: i64| {
        c.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
            .map(|v| v.unwrap_or(empty))
            .map_err(db("size the digest table"))
    };
    Ok((
        end("SELECT min(rowid) FROM digests", 0)?,
        end("SELECT max(rowid) FROM digests", -1)?,
    ))
}

/// The digest rows of `part`, in locator order, from the covering index alone.
const SCAN_PART: &str = "SELECT locator, tbl, record_id, version, body FROM digests \
     WHERE locator >= ?1 AND (?2 IS NULL OR locator < ?2) \
     ORDER BY locator, tbl, record_id, version";

/// The digest rows of `part`, in locator order.
fn scan_digest_rows(
    c: &Connection,
    part: Part,
    each: &mut dyn FnMut(DigestRef<'_>) -> bool,
) -> Result<(), StoreError> {
    let (from, to) = part.locator_bounds();
    let to = to.as_ref().map(|t| &t[..]);
    let mut s = c.prepare(SCAN_PART).map_err(db("prepare digest scan"))?;
    let mut rows = s
        .query(params![&from[..], to])
        .map_err(db("scan digests"))?;
    let err = db("scan digests");
    while let Some(r) = rows.next().map_err(db("scan digests"))? {
        let text = |i: usize| -> Result<&str, StoreError> {
            r.get_ref(i)
                .and_then(|v| v.as_str().map_err(Into::into))
                .map_err(&err)
        };
        let blob = |i: usize| -> Result<&[u8], StoreError> {
            r.get_ref(i)
                .and_then(|v| v.as_blob().map_err(Into::into))
                .map_err(&err)
        };
        let version: i64 = r.get(3).map_err(&err)?;
        let view = DigestRef {
            locator: blob(0)?,
            table: text(1)?,
            record_id: text(2)?,
            version: u64::try_from(version).unwrap_or(0),
            body: blob(4)?,
        };
        if !each(view) {
            break;
        }
    }
    Ok(())
}

/// A transaction that takes the write lock at its start: a deferred one that read first
/// is refused at once (`database is locked`) when another process writes meanwhile, the
/// busy wait notwithstanding.
fn write_transaction(c: &mut Connection) -> Result<rusqlite::Transaction<'_>, StoreError> {
    c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(db("begin"))
}

/// How long a write waits for another process's transaction on the same file.
const BUSY_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

impl SqliteStore {
    /// Opens or creates the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        // Several processes may write one file (the nodes of a mesh on one host): a writer
        // finding it locked waits for the other's transaction instead of failing at once
        // (a month-end upload was lost to `database is locked` that way).
        conn.busy_timeout(BUSY_WAIT).map_err(open_err)?;
        // WAL with synchronous=FULL: a committed transaction survives a process kill and a
        // power loss (I6).
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(open_err)?;
        // A replaced or re-sealed envelope is zeroed where it stood, not left in a freed
        // cell or page: after a key rotation, a copy of the file must not hold what the
        // previous epoch's (possibly leaked) shares open.
        conn.pragma_update(None, "secure_delete", "ON")
            .map_err(open_err)?;
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        conn.execute_batch(INDEXES).map_err(open_err)?;
        Ok(Self {
            conn: Mutex::new(conn),
            path: path.to_owned(),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut guard = self.conn.lock().map_err(|_| StoreError::Poisoned)?;
        f(&mut guard)
    }
}

impl PointSource for SqliteStore {
    fn point(
        &self,
        table: &str,
        record_id: &str,
        class: &str,
    ) -> Result<Option<StoredPoint>, StoreError> {
        self.with(|c| {
            let row: Option<(Vec<u8>, i64)> = c
                .prepare_cached(
                    "SELECT r, epoch FROM sealed WHERE tbl = ?1 AND record_id = ?2 AND class = ?3",
                )
                .and_then(|mut s| {
                    s.query_row(params![table, record_id, class], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                })
                .map_err(db("read R"))?;
            row.map(|(r, epoch)| {
                let corrupt = |what| StoreError::Corrupt {
                    what,
                    table: table.to_owned(),
                    record_id: record_id.to_owned(),
                };
                Ok(StoredPoint {
                    r: r.try_into().map_err(|_| corrupt("R"))?,
                    epoch: u32::try_from(epoch).map_err(|_| corrupt("epoch"))?,
                })
            })
            .transpose()
        })
    }

    fn lookup(&self, kind: &str, tag: &[u8; 16]) -> Result<Vec<RecordRef>, StoreError> {
        self.with(|c| {
            let mut s = c
                .prepare_cached("SELECT tbl, record_id FROM blind_index WHERE kind = ?1 AND tag = ?2 ORDER BY tbl, record_id")
                .map_err(db("prepare lookup"))?;
            let rows = s
                .query_map(params![kind, &tag[..]], |r| {
                    Ok(RecordRef {
                        table: r.get(0)?,
                        record_id: r.get(1)?,
                    })
                })
                .map_err(db("lookup"))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db("lookup"))
        })
    }
}

impl Store for SqliteStore {
    fn put_records(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        for r in records {
            crate::conformance::check_write(r)?;
            if r.classes.is_empty() {
                return Err(StoreError::InvalidWrite {
                    table: r.table.clone(),
                    record_id: r.record_id.clone(),
                    reason: "a record needs at least one sealed class",
                });
            }
        }
        self.with(|c| {
            let tx = write_transaction(c)?;
            {
                let mut ver = tx
                    .prepare_cached("SELECT version FROM records WHERE tbl = ?1 AND record_id = ?2")
                    .map_err(db("prepare"))?;
                let mut up = tx
                    .prepare_cached("INSERT OR REPLACE INTO records (tbl, record_id, version) VALUES (?1, ?2, ?3)")
                    .map_err(db("prepare"))?;
                let mut del_s = tx
                    .prepare_cached("DELETE FROM sealed WHERE tbl = ?1 AND record_id = ?2")
                    .map_err(db("prepare"))?;
                let mut del_i = tx
                    .prepare_cached("DELETE FROM blind_index WHERE tbl = ?1 AND record_id = ?2")
                    .map_err(db("prepare"))?;
                let mut ins_s = tx
                    .prepare_cached("INSERT INTO sealed (tbl, record_id, class, epoch, r, envelope) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                    .map_err(db("prepare"))?;
                let mut ins_i = tx
                    .prepare_cached("INSERT OR IGNORE INTO blind_index (kind, tag, tbl, record_id) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(db("prepare"))?;
                let mut ins_d = tx
                    .prepare_cached("INSERT OR IGNORE INTO digests (locator, tbl, record_id, version, body) VALUES (?1, ?2, ?3, ?4, ?5)")
                    .map_err(db("prepare"))?;
                for r in records {
                    let version = i64::try_from(r.version).map_err(|_| StoreError::InvalidWrite {
                        table: r.table.clone(),
                        record_id: r.record_id.clone(),
                        reason: "version too large",
                    })?;
                    let existing: Option<i64> = ver
                        .query_row(params![r.table, r.record_id], |row| row.get(0))
                        .optional()
                        .map_err(db("read version"))?;
                    if existing.is_some_and(|v| v >= version) {
                        continue;
                    }
                    up.execute(params![r.table, r.record_id, version]).map_err(db("write record"))?;
                    // A new record has nothing to replace (and in a bulk load the indexes
                    // these deletes would need are not there).
                    if existing.is_some() {
                        del_s.execute(params![r.table, r.record_id]).map_err(db("replace sealed"))?;
                        del_i.execute(params![r.table, r.record_id]).map_err(db("replace index"))?;
                    }
                    for cl in &r.classes {
                        ins_s
                            .execute(params![r.table, r.record_id, cl.class, cl.epoch, &cl.r[..], cl.envelope])
                            .map_err(db("write sealed"))?;
                    }
                    for (kind, tag) in &r.index {
                        ins_i
                            .execute(params![kind, &tag[..], r.table, r.record_id])
                            .map_err(db("write index"))?;
                    }
                    for (locator, body) in &r.digests {
                        ins_d
                            .execute(params![&locator[..], r.table, r.record_id, version, body])
                            .map_err(db("write digests"))?;
                    }
                }
            }
            tx.commit().map_err(db("commit"))
        })
    }

    fn sealed_under(
        &self,
        epoch: u32,
        after: Option<&SealedRef>,
        limit: usize,
    ) -> Result<Vec<SealedRef>, StoreError> {
        let (t, id, cl) = after.map_or(("", "", ""), |a| {
            (a.table.as_str(), a.record_id.as_str(), a.class.as_str())
        });
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT tbl, record_id, class FROM sealed INDEXED BY sealed_by_record
                     WHERE (tbl, record_id, class) > (?1, ?2, ?3) AND epoch = ?4
                     ORDER BY tbl, record_id, class LIMIT ?5",
                )
                .map_err(db("prepare"))?;
            let rows = st
                .query_map(params![t, id, cl, epoch, limit], |r| {
                    Ok(SealedRef {
                        table: r.get(0)?,
                        record_id: r.get(1)?,
                        class: r.get(2)?,
                    })
                })
                .map_err(db("list sealed classes"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(db("list sealed classes"))
        })
    }

    fn count_sealed_under(&self, epoch: u32) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .query_row(
                    "SELECT COUNT(*) FROM sealed WHERE epoch = ?1",
                    params![epoch],
                    |r| r.get(0),
                )
                .map_err(db("count sealed classes"))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn reseal(&self, rows: &[Reseal]) -> Result<usize, StoreError> {
        self.with(|c| {
            let tx = write_transaction(c)?;
            let mut moved = 0;
            {
                let mut up = tx
                    .prepare_cached(
                        "UPDATE sealed SET epoch = ?1, r = ?2, envelope = ?3
                         WHERE tbl = ?4 AND record_id = ?5 AND class = ?6 AND epoch = ?7 AND r = ?8",
                    )
                    .map_err(db("prepare"))?;
                for row in rows {
                    moved += up
                        .execute(params![
                            row.to.epoch,
                            &row.to.r[..],
                            row.to.envelope,
                            row.at.table,
                            row.at.record_id,
                            row.at.class,
                            row.from_epoch,
                            &row.from_r[..]
                        ])
                        .map_err(db("re-seal"))?;
                }
            }
            tx.commit().map_err(db("commit"))?;
            Ok(moved)
        })
    }

    fn forget_replaced(&self) -> Result<bool, StoreError> {
        self.with(|c| {
            let busy: i64 = c
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .map_err(db("checkpoint"))?;
            Ok(busy == 0)
        })
    }

    fn set_bulk(&self, on: bool) -> Result<(), StoreError> {
        self.with(|c| {
            if on {
                c.execute_batch(
                    "DROP INDEX IF EXISTS sealed_by_record;
                     DROP INDEX IF EXISTS blind_index_by_tag;
                     DROP INDEX IF EXISTS blind_index_by_record;
                     DROP INDEX IF EXISTS digests_by_locator;
                     DROP INDEX IF EXISTS digests_in_locator_order;",
                )
                .map_err(db("start bulk load"))
            } else {
                c.execute_batch(INDEXES).map_err(db("build indexes"))?;
                // The indexes were written through the WAL: left there, a fund's import
                // leaves most of a gigabyte beside the file until the last connection
                // closes, and every read of the new indexes goes through it. Copied back
                // and emptied now; with readers at work this does what it can and the next
                // checkpoint does the rest, so "busy" is not an error.
                c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .map_err(db("checkpoint after a bulk load"))
            }
        })
    }

    fn envelope(
        &self,
        table: &str,
        record_id: &str,
        class: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|c| {
            c.prepare_cached(
                "SELECT envelope FROM sealed WHERE tbl = ?1 AND record_id = ?2 AND class = ?3",
            )
            .and_then(|mut s| {
                s.query_row(params![table, record_id, class], |r| r.get(0))
                    .optional()
            })
            .map_err(db("read envelope"))
        })
    }

    fn version(&self, table: &str, record_id: &str) -> Result<Option<u64>, StoreError> {
        self.with(|c| {
            let v: Option<i64> = c
                .prepare_cached("SELECT version FROM records WHERE tbl = ?1 AND record_id = ?2")
                .and_then(|mut s| {
                    s.query_row(params![table, record_id], |r| r.get(0))
                        .optional()
                })
                .map_err(db("read version"))?;
            Ok(v.and_then(|v| u64::try_from(v).ok()))
        })
    }

    fn digests(&self, locator: &[u8; 16]) -> Result<Vec<DigestRow>, StoreError> {
        self.with(|c| {
            let mut s = c
                .prepare_cached("SELECT tbl, record_id, version, body FROM digests WHERE locator = ?1 ORDER BY tbl, record_id, version")
                .map_err(db("prepare digests"))?;
            let rows = s
                .query_map(params![&locator[..]], |r| digest_row(*locator, r, 0))
                .map_err(db("read digests"))?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db("read digests"))
        })
    }

    fn digest_rows_estimate(&self) -> Result<u64, StoreError> {
        // Digest rows are only ever added, so the rowid span is their count, read from
        // the two ends of the B-tree instead of counted.
        let (lo, hi) = self.with(|c| rowid_span(c))?;
        Ok(u64::try_from(hi - lo + 1).unwrap_or(0))
    }

    fn digest_scan_parts(&self) -> u32 {
        std::thread::available_parallelism().map_or(1, |n| u32::try_from(n.get()).unwrap_or(1))
    }

    fn scan_digests(
        &self,
        part: Part,
        each: &mut dyn FnMut(DigestRef<'_>) -> bool,
    ) -> Result<(), StoreError> {
        if part.of <= 1 {
            return self.with(|c| scan_digest_rows(c, part, each));
        }
        // Each part is read on a connection of its own: WAL lets readers run side by
        // side, while the node's connection stays free.
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Open {
            path: self.path.display().to_string(),
            source,
        })?;
        // Mapped rather than read page by page: a pass over millions of rows otherwise
        // spends a system call and a copy on every page.
        conn.pragma_update(None, "mmap_size", SCAN_MMAP_BYTES)
            .map_err(db("map the store for a scan"))?;
        scan_digest_rows(&conn, part, each)
    }

    fn count(&self, table: &str) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .query_row(
                    "SELECT count(*) FROM records WHERE tbl = ?1",
                    params![table],
                    |r| r.get(0),
                )
                .map_err(db("count"))?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}

/// A digest row from the columns `tbl, record_id, version, body` starting at `at`.
fn digest_row(locator: [u8; 16], r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<DigestRow> {
    let version: i64 = r.get(at + 2)?;
    Ok(DigestRow {
        locator,
        table: r.get(at)?,
        record_id: r.get(at + 1)?,
        version: u64::try_from(version).unwrap_or(0),
        body: r.get(at + 3)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoredClass;

    fn rec(id: &str, version: u64, byte: u8) -> StoredRecord {
        StoredRecord {
            table: "persons".into(),
            record_id: id.into(),
            version,
            classes: vec![StoredClass {
                class: "identity".into(),
                epoch: 1,
                r: [byte; 32],
                envelope: vec![byte; 40],
            }],
            index: vec![("cin".into(), [byte; 16])],
            digests: Vec::new(),
        }
    }

    #[test]
    fn a_bulk_load_leaves_no_write_ahead_log_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let s = SqliteStore::open(&path).unwrap();
        s.set_bulk(true).unwrap();
        let mut batch: Vec<StoredRecord> = (0..2_000u32)
            .map(|i| rec(&format!("p-{i}"), 1, (i % 251) as u8))
            .collect();
        for (i, r) in batch.iter_mut().enumerate() {
            r.index = vec![("cin".into(), [(i % 256) as u8; 16])];
        }
        s.put_records(&batch).unwrap();
        let wal = dir.path().join("store.sqlite-wal");
        let before = std::fs::metadata(&wal).map_or(0, |m| m.len());
        assert!(before > 0, "the load went through the WAL");
        s.set_bulk(false).unwrap();
        assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
        // Nothing lost: every record is there, and found through the rebuilt index.
        assert_eq!(s.count("persons").unwrap(), 2_000);
        assert_eq!(s.lookup("cin", &[7u8; 16]).unwrap().len(), 8);
    }

    #[test]
    fn a_digest_scan_reads_the_covering_index_in_order_without_sorting() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("store.sqlite")).unwrap();
        let plan: Vec<String> = s
            .with(|c| {
                let mut q = c
                    .prepare(&format!("EXPLAIN QUERY PLAN {SCAN_PART}"))
                    .map_err(db("plan"))?;
                let rows = q
                    .query_map(params![&[0u8; 16][..], None::<&[u8]>], |r| r.get(3))
                    .map_err(db("plan"))?;
                rows.collect::<Result<Vec<String>, _>>().map_err(db("plan"))
            })
            .unwrap();
        let plan = plan.join("; ");
        assert!(
            plan.contains("COVERING INDEX digests_in_locator_order"),
            "{plan}"
        );
        // Millions of rows sorted in a temporary B-tree would cost more than the walk.
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
    }

    #[test]
    fn versions_only_move_forward_and_reruns_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("store.sqlite")).unwrap();
        s.put_records(&[rec("p-1", 1, 1), rec("p-2", 1, 2)])
            .unwrap();
        s.put_records(&[rec("p-1", 1, 9)]).unwrap();
        assert_eq!(
            s.point("persons", "p-1", "identity").unwrap().unwrap().r,
            [1; 32]
        );
        s.put_records(&[rec("p-1", 2, 3)]).unwrap();
        assert_eq!(
            s.point("persons", "p-1", "identity").unwrap().unwrap().r,
            [3; 32]
        );
        assert_eq!(s.version("persons", "p-1").unwrap(), Some(2));
        assert_eq!(s.count("persons").unwrap(), 2);
        // The old index tag went with the old version.
        assert!(s.lookup("cin", &[1; 16]).unwrap().is_empty());
        assert_eq!(s.lookup("cin", &[3; 16]).unwrap().len(), 1);
        assert_eq!(s.point("persons", "p-3", "identity").unwrap(), None);
        assert_eq!(
            s.envelope("persons", "p-2", "identity").unwrap(),
            Some(vec![2; 40])
        );
        drop(s);
        let s = SqliteStore::open(&dir.path().join("store.sqlite")).unwrap();
        assert_eq!(s.count("persons").unwrap(), 2);
    }

    #[test]
    fn a_record_without_classes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("store.sqlite")).unwrap();
        let mut r = rec("p-1", 1, 1);
        r.classes.clear();
        assert!(matches!(
            s.put_records(&[r]),
            Err(StoreError::InvalidWrite { .. })
        ));
        assert_eq!(s.count("persons").unwrap(), 0);
    }

    #[test]
    fn a_write_waits_for_another_connections_transaction_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let s = SqliteStore::open(&path).unwrap();
        // Another process's writer holds the file's write lock for 300 ms.
        let other = Connection::open(&path).unwrap();
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let held = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        s.put_records(&[rec("p-1", 1, 1)]).unwrap();
        held.join().unwrap();
        assert_eq!(s.count("persons").unwrap(), 1);
    }

    #[test]
    fn an_unreadable_path_is_a_clear_error() {
        let err = SqliteStore::open(Path::new("/proc/definitely/not/here.sqlite"))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("cannot open the store at /proc/definitely"),
            "{err}"
        );
    }
}
