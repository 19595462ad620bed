//! The state machine Raft feeds: committed entries go to [`SecurityState::apply`] in log
//! order; membership entries and blank ones are Raft's own. Snapshots are the state's bytes,
//! kept in the same SQLite file as the log so that a restart starts from the latest one and
//! replays the committed entries after it.

use crate::{MeshConfig, Outcome};
use futures_util::{Stream, StreamExt};
use openraft::alias::{LogIdOf, SnapshotMetaOf, SnapshotOf, StoredMembershipOf};
use openraft::entry::RaftEntry;
use openraft::storage::{EntryResponder, RaftSnapshotBuilder, RaftStateMachine};
use openraft::{EntryPayload, SnapshotMeta, StoredMembership};
use ribat_mesh::{Genesis, SecurityState};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

type C = MeshConfig;

fn err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(format!("security state: {e}"))
}

/// What a snapshot holds besides Raft's metadata.
#[derive(Serialize, Deserialize)]
struct Stored {
    last_applied: Option<LogIdOf<C>>,
    membership: StoredMembershipOf<C>,
    state: SecurityState,
}

/// The security state under Raft.
#[derive(Clone)]
pub struct MeshStateMachine {
    inner: Arc<Mutex<Inner>>,
    db: Arc<Mutex<Connection>>,
}

struct Inner {
    last_applied: Option<LogIdOf<C>>,
    membership: StoredMembershipOf<C>,
    state: SecurityState,
}

impl MeshStateMachine {
    /// Opens the state machine whose snapshots live at `path`, starting from the latest
    /// snapshot there or, on a new node, from `genesis`.
    pub fn open(path: &Path, genesis: &Genesis) -> io::Result<Self> {
        let c = Connection::open(path).map_err(err)?;
        c.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), meta TEXT NOT NULL, data BLOB NOT NULL);",
        )
        .map_err(err)?;
        let saved: Option<Vec<u8>> = c
            .query_row("SELECT data FROM snapshot WHERE id = 1", [], |r| r.get(0))
            .optional()
            .map_err(err)?;
        let inner = match saved {
            Some(bytes) => {
                let s: Stored = serde_json::from_slice(&bytes).map_err(err)?;
                Inner {
                    last_applied: s.last_applied,
                    membership: s.membership,
                    state: s.state,
                }
            }
            None => Inner {
                last_applied: None,
                membership: StoredMembership::default(),
                state: SecurityState::new(genesis),
            },
        };
        Ok(Self {
            inner: Arc::new(Mutex::new(inner)),
            db: Arc::new(Mutex::new(c)),
        })
    }

    fn lock(&self) -> io::Result<std::sync::MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| err("the state's lock is poisoned"))
    }

    /// Reads the current state (for gateways and custodians to enforce).
    pub fn read<T>(&self, f: impl FnOnce(&SecurityState) -> T) -> io::Result<T> {
        Ok(f(&self.lock()?.state))
    }
}

/// Builds a snapshot of the state as it is when asked.
pub struct Builder(MeshStateMachine);

impl RaftSnapshotBuilder<C> for Builder {
    type SnapshotData = Vec<u8>;

    async fn build_snapshot(&mut self) -> Result<SnapshotOf<C, Vec<u8>>, io::Error> {
        let (meta, data) = {
            let i = self.0.lock()?;
            let meta = SnapshotMeta {
                last_log_id: i.last_applied,
                last_membership: i.membership.clone(),
            };
            let data = serde_json::to_vec(&Stored {
                last_applied: i.last_applied,
                membership: i.membership.clone(),
                state: i.state.clone(),
            })
            .map_err(err)?;
            (meta, data)
        };
        save(&self.0.db, &meta, &data)?;
        Ok(openraft::Snapshot {
            meta,
            snapshot: data,
        })
    }
}

fn save(db: &Mutex<Connection>, meta: &SnapshotMetaOf<C>, data: &[u8]) -> io::Result<()> {
    let meta = serde_json::to_string(meta).map_err(err)?;
    let c = db
        .lock()
        .map_err(|_| err("the snapshot's lock is poisoned"))?;
    c.execute(
        "INSERT INTO snapshot (id, meta, data) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET meta = excluded.meta, data = excluded.data",
        params![meta, data],
    )
    .map_err(err)?;
    Ok(())
}

impl RaftStateMachine<C> for MeshStateMachine {
    type SnapshotData = Vec<u8>;
    type SnapshotBuilder = Builder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogIdOf<C>>, StoredMembershipOf<C>), io::Error> {
        let i = self.lock()?;
        Ok((i.last_applied, i.membership.clone()))
    }

    async fn apply<Strm>(&mut self, mut entries: Strm) -> Result<(), io::Error>
    where
        Strm: Stream<Item = Result<EntryResponder<C>, io::Error>> + Unpin + Send,
    {
        while let Some(next) = entries.next().await {
            let (entry, responder) = next?;
            let outcome = {
                let mut i = self.lock()?;
                i.last_applied = Some(entry.log_id());
                match &entry.payload {
                    EntryPayload::Blank => Outcome::Raft,
                    EntryPayload::Normal(command) => match i.state.apply(command) {
                        Ok(a) => Outcome::Applied(a),
                        Err(r) => Outcome::Rejected(r),
                    },
                    EntryPayload::Membership(m) => {
                        i.membership = StoredMembership::new(Some(entry.log_id()), m.clone());
                        Outcome::Raft
                    }
                }
            };
            if let Some(r) = responder {
                r.send(outcome);
            }
        }
        Ok(())
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        Builder(self.clone())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMetaOf<C>,
        snapshot: Vec<u8>,
    ) -> Result<(), io::Error> {
        let s: Stored = serde_json::from_slice(&snapshot).map_err(err)?;
        save(&self.db, meta, &snapshot)?;
        let mut i = self.lock()?;
        i.last_applied = meta.last_log_id;
        i.membership = meta.last_membership.clone();
        i.state = s.state;
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<SnapshotOf<C, Vec<u8>>>, io::Error> {
        let c = self
            .db
            .lock()
            .map_err(|_| err("the snapshot's lock is poisoned"))?;
        let row: Option<(String, Vec<u8>)> = c
            .query_row("SELECT meta, data FROM snapshot WHERE id = 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(err)?;
        row.map(|(meta, data)| {
            Ok(openraft::Snapshot {
                meta: serde_json::from_str(&meta).map_err(err)?,
                snapshot: data,
            })
        })
        .transpose()
    }
}
