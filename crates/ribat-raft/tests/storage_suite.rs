//! openraft's own storage suite against the mesh's log store and state machine: every
//! property openraft relies on (no holes, truncation, purge, vote, committed index, applied
//! state, membership from log and state machine), on real files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use openraft::StorageError;
use openraft::testing::log::{StoreBuilder, Suite};
use ribat_mesh::{Genesis, KeyPair, Member};
use ribat_raft::MeshConfig;
use ribat_raft::log_store::LogStore;
use ribat_raft::state_machine::MeshStateMachine;

struct Files;

fn genesis() -> Genesis {
    Genesis {
        members: vec![Member {
            name: "node-a".into(),
            key: KeyPair::from_seed(&[1; 32]).public(),
            cert: None,
        }],
        admins: Vec::new(),
        threshold: 1,
        seats: Default::default(),
        granted: Vec::new(),
        attestation: Default::default(),
        custodians: Default::default(),
    }
}

impl StoreBuilder<MeshConfig, LogStore, MeshStateMachine, tempfile::TempDir> for Files {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, MeshStateMachine), StorageError<MeshConfig>> {
        let dir = tempfile::tempdir().unwrap();
        let log = LogStore::open(&dir.path().join("raft-log.sqlite")).unwrap();
        let sm = MeshStateMachine::open(&dir.path().join("raft-state.sqlite"), &genesis()).unwrap();
        Ok((dir, log, sm))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openrafts_storage_suite_passes_on_the_mesh_log_and_state_machine() {
    Suite::test_all(Files).await.unwrap();
}
