//! The scale-out backend: the same schema in PostgreSQL.
//!
//! Each store lives in one schema (default `ribat`), so that one database can hold several
//! nodes' stores, and tests can each use their own. Writes are one transaction per batch;
//! PostgreSQL's commit is durable when it returns (with the server's default `fsync=on`,
//! `synchronous_commit=on`).

use crate::{
    DigestRef, DigestRow, Part, PointSource, RecordRef, Reseal, SealedRef, Store, StoreError,
    StoredPoint, StoredRecord,
};
use postgres::{Client, NoTls};
use std::sync::Mutex;

fn pg(operation: &'static str) -> impl Fn(postgres::Error) -> StoreError {
    move |source| StoreError::Postgres { operation, source }
}

/// A store in a PostgreSQL schema.
pub struct PostgresStore {
    client: Mutex<Client>,
}

fn schema_sql(schema: &str) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         SET search_path TO {schema};
         CREATE TABLE IF NOT EXISTS records (
             tbl       TEXT   NOT NULL CHECK (tbl IN ('persons', 'employers', 'declarations', 'exports', 'keys')),
             record_id TEXT   NOT NULL,
             version   BIGINT NOT NULL,
             PRIMARY KEY (tbl, record_id));
         CREATE TABLE IF NOT EXISTS sealed (
             tbl       TEXT   NOT NULL,
             record_id TEXT   NOT NULL,
             class     TEXT   NOT NULL,
             epoch     BIGINT NOT NULL,
             r         BYTEA  NOT NULL CHECK (length(r) = 32),
             envelope  BYTEA  NOT NULL,
             PRIMARY KEY (tbl, record_id, class));
         CREATE TABLE IF NOT EXISTS blind_index (
             kind      TEXT  NOT NULL,
             tag       BYTEA NOT NULL CHECK (length(tag) = 16),
             tbl       TEXT  NOT NULL,
             record_id TEXT  NOT NULL,
             PRIMARY KEY (kind, tag, tbl, record_id));
         CREATE INDEX IF NOT EXISTS blind_index_by_record ON blind_index (tbl, record_id);
         CREATE TABLE IF NOT EXISTS digests (
             locator   BYTEA  NOT NULL CHECK (length(locator) = 16),
             tbl       TEXT   NOT NULL,
             record_id TEXT   NOT NULL,
             version   BIGINT NOT NULL,
             body      BYTEA  NOT NULL,
             PRIMARY KEY (locator, tbl, record_id, version));"
    )
}

impl PostgresStore {
    /// Connects with a libpq-style connection string (`host=… port=… user=… dbname=…` or a
    /// `postgresql://` URL) and uses (creating if needed) `schema`.
    pub fn connect(conninfo: &str, schema: &str) -> Result<Self, StoreError> {
        if schema.is_empty()
            || !schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(StoreError::InvalidWrite {
                table: "-".into(),
                record_id: "-".into(),
                reason: "schema names are lowercase letters, digits and underscores",
            });
        }
        let mut client = Client::connect(conninfo, NoTls).map_err(pg("connect"))?;
        // A mesh node connects under a role of its own that may not create anything: the
        // schema is made once, by its owner.
        let made: bool = client
            .query_one(
                "SELECT count(*) = 4 FROM pg_tables WHERE schemaname = $1
                   AND tablename IN ('records', 'sealed', 'blind_index', 'digests')",
                &[&schema],
            )
            .map_err(pg("look for the schema"))?
            .get(0);
        let sql = match made {
            true => format!("SET search_path TO {schema}"),
            false => schema_sql(schema),
        };
        client.batch_execute(&sql).map_err(pg("create schema"))?;
        Ok(Self {
            client: Mutex::new(client),
        })
    }

    /// Makes (if missing) the login role `role` for one mesh node: it may read, add, change
    /// and replace the rows of `schema` (a record rewritten replaces its sealed fields and
    /// index tags), and nothing else — it owns nothing, creates, alters, drops or truncates
    /// nothing, and sees no other schema. Run by the schema's owner.
    pub fn grant_node_role(conninfo: &str, schema: &str, role: &str) -> Result<(), StoreError> {
        let plain = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if !plain(schema) || !plain(role) {
            return Err(StoreError::InvalidWrite {
                table: "-".into(),
                record_id: "-".into(),
                reason: "schema and role names are lowercase letters, digits and underscores",
            });
        }
        let mut client = Client::connect(conninfo, NoTls).map_err(pg("connect"))?;
        client
            .batch_execute(&format!(
                "DO $$ BEGIN
                   IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{role}') THEN
                     CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
                   END IF;
                 END $$;
                 GRANT USAGE ON SCHEMA {schema} TO {role};
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role};"
            ))
            .map_err(pg("grant the node's role"))
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut c = self.client.lock().map_err(|_| StoreError::Poisoned)?;
        f(&mut c)
    }
}

fn corrupt(what: &'static str, table: &str, id: &str) -> StoreError {
    StoreError::Corrupt {
        what,
        table: table.to_owned(),
        record_id: id.to_owned(),
    }
}

impl PointSource for PostgresStore {
    fn point(
        &self,
        table: &str,
        record_id: &str,
        class: &str,
    ) -> Result<Option<StoredPoint>, StoreError> {
        self.with(|c| {
            let row = c
                .query_opt(
                    "SELECT r, epoch FROM sealed WHERE tbl = $1 AND record_id = $2 AND class = $3",
                    &[&table, &record_id, &class],
                )
                .map_err(pg("read R"))?;
            row.map(|row| {
                let r: Vec<u8> = row.get(0);
                let epoch: i64 = row.get(1);
                Ok(StoredPoint {
                    r: r.try_into().map_err(|_| corrupt("R", table, record_id))?,
                    epoch: u32::try_from(epoch).map_err(|_| corrupt("epoch", table, record_id))?,
                })
            })
            .transpose()
        })
    }

    fn lookup(&self, kind: &str, tag: &[u8; 16]) -> Result<Vec<RecordRef>, StoreError> {
        self.with(|c| {
            let rows = c
                .query("SELECT tbl, record_id FROM blind_index WHERE kind = $1 AND tag = $2 ORDER BY tbl, record_id", &[&kind, &&tag[..]])
                .map_err(pg("lookup"))?;
            Ok(rows.iter().map(|r| RecordRef { table: r.get(0), record_id: r.get(1) }).collect())
        })
    }
}

impl Store for PostgresStore {
    fn put_records(&self, records: &[StoredRecord]) -> Result<(), StoreError> {
        for r in records {
            crate::conformance::check_write(r)?;
        }
        self.with(|c| {
            let mut tx = c.transaction().map_err(pg("begin"))?;
            let ver = tx.prepare("SELECT version FROM records WHERE tbl = $1 AND record_id = $2").map_err(pg("prepare"))?;
            let up = tx
                .prepare("INSERT INTO records (tbl, record_id, version) VALUES ($1, $2, $3) ON CONFLICT (tbl, record_id) DO UPDATE SET version = EXCLUDED.version")
                .map_err(pg("prepare"))?;
            let del_s = tx.prepare("DELETE FROM sealed WHERE tbl = $1 AND record_id = $2").map_err(pg("prepare"))?;
            let del_i = tx.prepare("DELETE FROM blind_index WHERE tbl = $1 AND record_id = $2").map_err(pg("prepare"))?;
            let ins_s = tx
                .prepare("INSERT INTO sealed (tbl, record_id, class, epoch, r, envelope) VALUES ($1, $2, $3, $4, $5, $6)")
                .map_err(pg("prepare"))?;
            let ins_i = tx
                .prepare("INSERT INTO blind_index (kind, tag, tbl, record_id) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING")
                .map_err(pg("prepare"))?;
            let ins_d = tx
                .prepare("INSERT INTO digests (locator, tbl, record_id, version, body) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING")
                .map_err(pg("prepare"))?;
            for r in records {
                let version = i64::try_from(r.version).map_err(|_| StoreError::InvalidWrite {
                    table: r.table.clone(),
                    record_id: r.record_id.clone(),
                    reason: "version too large",
                })?;
                let existing: Option<i64> = tx.query_opt(&ver, &[&r.table, &r.record_id]).map_err(pg("read version"))?.map(|row| row.get(0));
                if existing.is_some_and(|v| v >= version) {
                    continue;
                }
                tx.execute(&up, &[&r.table, &r.record_id, &version]).map_err(pg("write record"))?;
                if existing.is_some() {
                    tx.execute(&del_s, &[&r.table, &r.record_id]).map_err(pg("replace sealed"))?;
                    tx.execute(&del_i, &[&r.table, &r.record_id]).map_err(pg("replace index"))?;
                }
                for cl in &r.classes {
                    tx.execute(&ins_s, &[&r.table, &r.record_id, &cl.class, &i64::from(cl.epoch), &&cl.r[..], &cl.envelope])
                        .map_err(pg("write sealed"))?;
                }
                for (kind, tag) in &r.index {
                    tx.execute(&ins_i, &[kind, &&tag[..], &r.table, &r.record_id]).map_err(pg("write index"))?;
                }
                for (locator, body) in &r.digests {
                    tx.execute(&ins_d, &[&&locator[..], &r.table, &r.record_id, &version, body]).map_err(pg("write digests"))?;
                }
            }
            tx.commit().map_err(pg("commit"))
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
            let rows = c
                .query(
                    "SELECT tbl, record_id, class FROM sealed
                     WHERE (tbl, record_id, class) > ($1, $2, $3) AND epoch = $4
                     ORDER BY tbl, record_id, class LIMIT $5",
                    &[&t, &id, &cl, &i64::from(epoch), &limit],
                )
                .map_err(pg("list sealed classes"))?;
            Ok(rows
                .iter()
                .map(|r| SealedRef {
                    table: r.get(0),
                    record_id: r.get(1),
                    class: r.get(2),
                })
                .collect())
        })
    }

    fn count_sealed_under(&self, epoch: u32) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM sealed WHERE epoch = $1",
                    &[&i64::from(epoch)],
                )
                .map_err(pg("count sealed classes"))?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn reseal(&self, rows: &[Reseal]) -> Result<usize, StoreError> {
        self.with(|c| {
            let mut tx = c.transaction().map_err(pg("begin"))?;
            let up = tx
                .prepare(
                    "UPDATE sealed SET epoch = $1, r = $2, envelope = $3
                     WHERE tbl = $4 AND record_id = $5 AND class = $6 AND epoch = $7 AND r = $8",
                )
                .map_err(pg("prepare"))?;
            let mut moved = 0;
            for row in rows {
                let n = tx
                    .execute(
                        &up,
                        &[
                            &i64::from(row.to.epoch),
                            &&row.to.r[..],
                            &row.to.envelope,
                            &row.at.table,
                            &row.at.record_id,
                            &row.at.class,
                            &i64::from(row.from_epoch),
                            &&row.from_r[..],
                        ],
                    )
                    .map_err(pg("re-seal"))?;
                moved += usize::try_from(n).unwrap_or(0);
            }
            tx.commit().map_err(pg("commit"))?;
            Ok(moved)
        })
    }

    fn envelope(
        &self,
        table: &str,
        record_id: &str,
        class: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(|c| {
            Ok(c.query_opt(
                "SELECT envelope FROM sealed WHERE tbl = $1 AND record_id = $2 AND class = $3",
                &[&table, &record_id, &class],
            )
            .map_err(pg("read envelope"))?
            .map(|row| row.get(0)))
        })
    }

    fn version(&self, table: &str, record_id: &str) -> Result<Option<u64>, StoreError> {
        self.with(|c| {
            let v: Option<i64> = c
                .query_opt(
                    "SELECT version FROM records WHERE tbl = $1 AND record_id = $2",
                    &[&table, &record_id],
                )
                .map_err(pg("read version"))?
                .map(|r| r.get(0));
            Ok(v.and_then(|v| u64::try_from(v).ok()))
        })
    }

    fn digests(&self, locator: &[u8; 16]) -> Result<Vec<DigestRow>, StoreError> {
        self.with(|c| {
            let rows = c
                .query(
                    "SELECT tbl, record_id, version, body FROM digests WHERE locator = $1 ORDER BY tbl, record_id, version",
                    &[&&locator[..]],
                )
                .map_err(pg("read digests"))?;
            Ok(rows.iter().map(|r| digest_row(*locator, r, 0)).collect())
        })
    }

    fn digest_rows_estimate(&self) -> Result<u64, StoreError> {
        self.with(|c| {
            // The planner's estimate once the table was analysed and large; counted
            // while it is small or before it was analysed.
            let est: f32 = c
                .query_one(
                    "SELECT coalesce(max(reltuples), -1) FROM pg_class WHERE relname = 'digests'",
                    &[],
                )
                .map_err(pg("size the digest table"))?
                .get(0);
            if est >= 100_000.0 {
                return Ok(est as u64);
            }
            let n: i64 = c
                .query_one("SELECT count(*) FROM digests", &[])
                .map_err(pg("count digests"))?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn scan_digests(
        &self,
        part: Part,
        each: &mut dyn FnMut(DigestRef<'_>) -> bool,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            // A portal inside a transaction streams the table in batches instead of
            // materialising it in this process; the primary key gives the order.
            let mut tx = c.transaction().map_err(pg("begin"))?;
            let stmt = tx
                .prepare(
                    "SELECT locator, tbl, record_id, version, body FROM digests \
                     WHERE locator >= $1 AND ($2::bytea IS NULL OR locator < $2) \
                     ORDER BY locator, tbl, record_id, version",
                )
                .map_err(pg("prepare digest scan"))?;
            let (from, to) = part.locator_bounds();
            let to = to.as_ref().map(|t| &t[..]);
            let portal = tx
                .bind(&stmt, &[&&from[..], &to])
                .map_err(pg("scan digests"))?;
            'outer: loop {
                let batch = tx
                    .query_portal(&portal, 10_000)
                    .map_err(pg("scan digests"))?;
                if batch.is_empty() {
                    break;
                }
                for r in &batch {
                    let version: i64 = r.get(3);
                    let view = DigestRef {
                        locator: r.get(0),
                        table: r.get(1),
                        record_id: r.get(2),
                        version: u64::try_from(version).unwrap_or(0),
                        body: r.get(4),
                    };
                    if !each(view) {
                        break 'outer;
                    }
                }
            }
            tx.commit().map_err(pg("end digest scan"))
        })
    }

    fn count(&self, table: &str) -> Result<u64, StoreError> {
        self.with(|c| {
            let n: i64 = c
                .query_one("SELECT count(*) FROM records WHERE tbl = $1", &[&table])
                .map_err(pg("count"))?
                .get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }
}

/// A digest row from the columns `tbl, record_id, version, body` starting at `at`.
fn digest_row(locator: [u8; 16], r: &postgres::Row, at: usize) -> DigestRow {
    let version: i64 = r.get(at + 2);
    DigestRow {
        locator,
        table: r.get(at),
        record_id: r.get(at + 1),
        version: u64::try_from(version).unwrap_or(0),
        body: r.get(at + 3),
    }
}
