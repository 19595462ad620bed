//! openraft behind one crate: the mesh's Raft log on disk ([`log_store`]) and the state
//! machine that feeds committed entries to [`ribat_mesh::SecurityState`] ([`state_machine`]).
//!
//! Owns: the type configuration, durable storage of the log, the vote and the committed
//! index (SQLite in the node's directory, `synchronous = FULL`: an append is acknowledged
//! once it is on disk), and snapshots of the security state.
//!
//! Must never: decide anything about an entry (that is `ribat_mesh`'s `apply`, which checks
//! every signature); acknowledge an append before it is durable.
//!
//! Why openraft 0.10.0-alpha.37, pinned with `=`: 0.9's storage traits are sealed unless its
//! own unstable `storage-v2` feature is on, and moving from 0.9 to 0.10 is a rewrite; the
//! 0.10 line is the one its maintainers ship in Databend. Every re-pin reads the change log.
#![forbid(unsafe_code)]

pub use openraft;

pub mod log_store;
pub mod network;
pub mod serve;
pub mod state_machine;

pub use state_machine::MeshStateMachine;

/// A node's Raft over the mesh's security state.
pub type MeshRaft = openraft::Raft<MeshConfig, MeshStateMachine>;

use ribat_mesh::{Applied, Command, Rejected};
use serde::{Deserialize, Serialize};

/// What applying one entry gave, returned to whoever proposed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The state changed.
    Applied(Applied),
    /// The entry's signatures did not justify it; nothing changed.
    Rejected(Rejected),
    /// A Raft entry of its own (a new leader's blank entry, a membership change).
    Raft,
}

openraft::declare_raft_types!(
    /// The mesh's Raft types: entries are [`Command`]s, node ids `u64`, nodes reached at an
    /// address.
    pub MeshConfig:
        D = Command,
        R = Outcome,
        NodeId = u64,
        Node = openraft::impls::BasicNode,
);
