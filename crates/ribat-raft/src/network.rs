//! Raft's messages between nodes: JSON over the same mTLS transport as every other call in
//! the mesh (`ribat-net`), each node presenting its node certificate. A node keeps one
//! HTTP/2 connection per peer and opens it again when it breaks.

use crate::serve::{APPEND, SNAPSHOT, SnapshotBody, VOTE};
use crate::{MeshConfig, MeshStateMachine};
use openraft::alias::{SnapshotOf, VoteOf};
use openraft::error::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::{RaftNetworkV2, RaftTypeConfig, impls::BasicNode};
use ribat_net::client::{ClientConfig, Connection};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::future::Future;
use std::sync::Arc;

type C = MeshConfig;

/// Makes a client per peer, all presenting this node's certificate.
#[derive(Clone)]
pub struct MeshNetwork {
    tls: Arc<ClientConfig>,
}

impl MeshNetwork {
    /// Calls peers with `tls` (this node's certificate, the deployment's CA, HTTP/2).
    pub fn new(tls: Arc<ClientConfig>) -> Self {
        Self { tls }
    }
}

/// One peer.
pub struct Peer {
    tls: Arc<ClientConfig>,
    addr: String,
    conn: Option<Connection>,
}

#[derive(Debug, thiserror::Error)]
enum CallError {
    /// Could not reach the peer (or the connection broke): back off and retry.
    #[error("{0}")]
    Unreachable(String),
    /// The peer answered, but not with what Raft expects.
    #[error("{0}")]
    Answer(String),
}

impl Peer {
    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        path: &str,
        req: &Req,
    ) -> Result<Resp, CallError> {
        let body = serde_json::to_vec(req).map_err(|e| CallError::Answer(e.to_string()))?;
        if !self.conn.as_ref().is_some_and(Connection::is_open) {
            let host = self
                .addr
                .rsplit_once(':')
                .map_or(self.addr.as_str(), |(h, _)| h);
            let c = Connection::open(self.tls.clone(), &self.addr, host, true)
                .await
                .map_err(|e| CallError::Unreachable(e.to_string()))?;
            self.conn = Some(c);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(CallError::Unreachable(format!(
                "no connection to {}",
                self.addr
            )));
        };
        let r = match conn.send("POST", path, None, Some(body)).await {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                return Err(CallError::Unreachable(e.to_string()));
            }
        };
        if r.status != 200 {
            return Err(CallError::Unreachable(format!(
                "{} answered {} to {path}: {}",
                self.addr,
                r.status,
                String::from_utf8_lossy(&r.body)
            )));
        }
        // The peer's Raft answers with its result: a refusal of its own (it is shutting
        // down) is as good as unreachable.
        let result: Result<Resp, String> =
            serde_json::from_slice(&r.body).map_err(|e| CallError::Answer(e.to_string()))?;
        result.map_err(CallError::Unreachable)
    }
}

fn rpc_error(e: CallError) -> RPCError<C> {
    match e {
        CallError::Unreachable(_) => RPCError::Unreachable(Unreachable::new(&e)),
        CallError::Answer(_) => RPCError::Network(NetworkError::new(&e)),
    }
}

impl RaftNetworkFactory<C> for MeshNetwork {
    type Network = Peer;

    async fn new_client(
        &mut self,
        _target: <C as RaftTypeConfig>::NodeId,
        node: &BasicNode,
    ) -> Peer {
        Peer {
            tls: self.tls.clone(),
            addr: node.addr.clone(),
            conn: None,
        }
    }
}

impl RaftNetworkV2<C> for Peer {
    type SnapshotData = <MeshStateMachine as openraft::storage::RaftStateMachine<C>>::SnapshotData;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        self.call(APPEND, &rpc).await.map_err(rpc_error)
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<C>,
        _option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        self.call(VOTE, &rpc).await.map_err(rpc_error)
    }

    async fn full_snapshot(
        &mut self,
        vote: VoteOf<C>,
        snapshot: SnapshotOf<C, Self::SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        let body = SnapshotBody {
            vote,
            meta: snapshot.meta,
            data: snapshot.snapshot,
        };
        self.call(SNAPSHOT, &body).await.map_err(|e| match e {
            CallError::Unreachable(_) => StreamingError::Unreachable(Unreachable::new(&e)),
            CallError::Answer(_) => StreamingError::Network(NetworkError::new(&e)),
        })
    }
}
