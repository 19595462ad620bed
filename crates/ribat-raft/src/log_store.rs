//! The Raft log, the vote and the committed log id, in one SQLite file.
//!
//! Every write is a transaction with `synchronous = FULL`, so a call returns (and an append
//! reports itself flushed) only once the bytes are on disk.

use crate::MeshConfig;
use openraft::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogReader, RaftLogStorage};
use rusqlite::{Connection, OptionalExtension, params};
use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::path::Path;
use std::sync::{Arc, Mutex};

type C = MeshConfig;

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("raft log: {e}"))
}

/// The log store; clones share the same file.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Mutex<Connection>>,
}

impl Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogStore")
    }
}

impl LogStore {
    /// Opens (or creates) the log at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        let c = Connection::open(path).map_err(err)?;
        c.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, entry TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(err)?;
        Ok(Self {
            db: Arc::new(Mutex::new(c)),
        })
    }

    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> io::Result<T>) -> io::Result<T> {
        let mut c = self
            .db
            .lock()
            .map_err(|_| err("the log's lock is poisoned"))?;
        f(&mut c)
    }

    fn get_meta<T: serde::de::DeserializeOwned>(&self, key: &str) -> io::Result<Option<T>> {
        self.with(|c| {
            let v: Option<String> = c
                .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                .optional()
                .map_err(err)?;
            v.map(|v| serde_json::from_str(&v).map_err(err)).transpose()
        })
    }

    fn put_meta<T: serde::Serialize>(&self, key: &str, value: &T) -> io::Result<()> {
        let v = serde_json::to_string(value).map_err(err)?;
        self.with(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, v],
            )
            .map_err(err)?;
            Ok(())
        })
    }

    fn entries(&self, lo: u64, hi: Option<u64>) -> io::Result<Vec<EntryOf<C>>> {
        self.with(|c| {
            let mut st = c
                .prepare_cached("SELECT entry FROM log WHERE idx >= ?1 AND idx < ?2 ORDER BY idx")
                .map_err(err)?;
            let hi = hi.map_or(i64::MAX, |h| i64::try_from(h).unwrap_or(i64::MAX));
            let lo = i64::try_from(lo).map_err(err)?;
            let rows = st
                .query_map(params![lo, hi], |r| r.get::<_, String>(0))
                .map_err(err)?;
            let mut out = Vec::new();
            for r in rows {
                out.push(serde_json::from_str(&r.map_err(err)?).map_err(err)?);
            }
            Ok(out)
        })
    }
}

fn bounds<RB: RangeBounds<u64>>(range: &RB) -> (u64, Option<u64>) {
    let lo = match range.start_bound() {
        Bound::Included(x) => *x,
        Bound::Excluded(x) => x.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let hi = match range.end_bound() {
        Bound::Included(x) => Some(x.saturating_add(1)),
        Bound::Excluded(x) => Some(*x),
        Bound::Unbounded => None,
    };
    (lo, hi)
}

impl RaftLogReader<C> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        let (lo, hi) = bounds(&range);
        self.entries(lo, hi)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        self.get_meta("vote")
    }
}

impl RaftLogStorage<C> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let last_purged: Option<LogIdOf<C>> = self.get_meta("purged")?;
        let last: Option<String> = self.with(|c| {
            c.query_row("SELECT entry FROM log ORDER BY idx DESC LIMIT 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(err)
        })?;
        let last = match last {
            Some(e) => Some(
                serde_json::from_str::<EntryOf<C>>(&e)
                    .map_err(err)?
                    .log_id(),
            ),
            None => last_purged,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        self.put_meta("vote", vote)
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        self.put_meta("committed", &committed)
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        Ok(self.get_meta::<Option<LogIdOf<C>>>("committed")?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<C>> + Send,
        I::IntoIter: Send,
    {
        let rows: Vec<(i64, String)> = entries
            .into_iter()
            .map(|e| {
                Ok((
                    i64::try_from(e.index()).map_err(err)?,
                    serde_json::to_string(&e).map_err(err)?,
                ))
            })
            .collect::<io::Result<_>>()?;
        let result = self.with(|c| {
            let tx = c.transaction().map_err(err)?;
            {
                let mut st = tx
                    .prepare_cached("INSERT OR REPLACE INTO log (idx, entry) VALUES (?1, ?2)")
                    .map_err(err)?;
                for (i, e) in &rows {
                    st.execute(params![i, e]).map_err(err)?;
                }
            }
            tx.commit().map_err(err)
        });
        match result {
            Ok(()) => {
                callback.io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(e)
            }
        }
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let keep = last_log_id.map_or(0, |l| l.index().saturating_add(1));
        let from = i64::try_from(keep).map_err(err)?;
        self.with(|c| {
            c.execute("DELETE FROM log WHERE idx >= ?1", [from])
                .map_err(err)?;
            Ok(())
        })
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let upto = i64::try_from(log_id.index()).map_err(err)?;
        self.put_meta("purged", &log_id)?;
        self.with(|c| {
            c.execute("DELETE FROM log WHERE idx <= ?1", [upto])
                .map_err(err)?;
            Ok(())
        })
    }
}
