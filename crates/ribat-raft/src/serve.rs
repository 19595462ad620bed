//! The mesh's Raft routes on a node's listener. Only a certificate of role `node` from the
//! deployment's CA reaches them (mTLS verified the chain; this checks the role).

use crate::{MeshConfig, MeshRaft};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use openraft::alias::{SnapshotMetaOf, VoteOf};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use ribat_net::listener::Caller;
use ribat_net::problem::Problem;
use serde::{Deserialize, Serialize};

type C = MeshConfig;

/// Appending entries.
pub const APPEND: &str = "/raft/append";
/// Asking for a vote.
pub const VOTE: &str = "/raft/vote";
/// Installing a whole snapshot.
pub const SNAPSHOT: &str = "/raft/snapshot";

/// A snapshot on the wire (openraft's `Snapshot` has no serde form of its own).
#[derive(Serialize, Deserialize)]
pub struct SnapshotBody {
    /// The sender's vote.
    pub vote: VoteOf<C>,
    /// What the snapshot covers.
    pub meta: SnapshotMetaOf<C>,
    /// The security state's bytes.
    pub data: Vec<u8>,
}

/// The routes, for a node's router.
pub fn router(raft: MeshRaft) -> Router {
    Router::new()
        .route(APPEND, post(append))
        .route(VOTE, post(vote))
        .route(SNAPSHOT, post(snapshot))
        .route_layer(axum::middleware::from_fn(only_nodes))
        .with_state(raft)
}

/// Before any body is read: the caller's certificate must be a node's.
async fn only_nodes(req: Request, next: Next) -> Response {
    match req.extensions().get::<Caller>() {
        Some(c) if c.peer.role == "node" => next.run(req).await,
        Some(c) => Problem::forbidden(
            "not-a-node",
            format!(
                "the mesh's Raft routes answer node certificates only; `{}` holds role `{}`",
                c.peer.name, c.peer.role
            ),
        )
        .into_response(),
        None => Problem::unauthenticated(
            "certificate-required",
            "the mesh's Raft routes are served over mTLS only",
        )
        .into_response(),
    }
}

/// The peer's result as JSON: `{"Ok": …}` or `{"Err": "why"}`.
fn answer<T: Serialize, E: std::fmt::Display>(r: Result<T, E>) -> Response {
    let r: Result<T, String> = r.map_err(|e| e.to_string());
    (StatusCode::OK, Json(r)).into_response()
}

async fn append(
    State(raft): State<MeshRaft>,
    Json(req): Json<AppendEntriesRequest<C>>,
) -> Response {
    answer(raft.append_entries(req).await)
}

async fn vote(State(raft): State<MeshRaft>, Json(req): Json<VoteRequest<C>>) -> Response {
    answer(raft.vote(req).await)
}

async fn snapshot(State(raft): State<MeshRaft>, Json(b): Json<SnapshotBody>) -> Response {
    answer(
        raft.install_full_snapshot(
            b.vote,
            openraft::Snapshot {
                meta: b.meta,
                snapshot: b.data,
            },
        )
        .await,
    )
}
