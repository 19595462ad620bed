//! The mesh's Raft routes on a node's listener. Only a certificate of role `node` from the
//! deployment's CA, named after a current member of the security state, reaches them (mTLS
//! verified the chain; this checks the role and the membership): a node the administrators
//! never added, or removed, cannot vote, append, propose or ask.

use crate::{MeshConfig, MeshRaft, MeshStateMachine};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use openraft::alias::{SnapshotMetaOf, VoteOf};
use openraft::raft::{AppendEntriesRequest, VoteRequest};
use ribat_net::listener::Caller;
use ribat_net::problem::Problem;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// Where a node stands.
pub const STATUS: &str = "/mesh/status";
/// Proposing an entry (the leader takes it; another node says who leads).
pub const PROPOSE: &str = "/mesh/propose";
/// The leader's read index: what a node must have applied before it serves.
pub const READ_INDEX: &str = "/mesh/read-index";
/// The identity register as this node's state holds it.
pub const IDENTITIES: &str = "/mesh/identities";

/// The allowed set, every member's latest attestation and this node's verdicts.
pub const ATTESTATIONS: &str = "/mesh/attestations";

/// The custodian set in force and the resharing under way
/// ([`ribat_mesh::custodians::Custodians`]).
pub const CUSTODIANS: &str = "/mesh/custodians";

/// What [`ATTESTATIONS`] answers: patch drift as one node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestations {
    /// The builds two administrators (or the ceremony) allowed, retired ones included.
    pub allowed: Vec<ribat_mesh::attest::Allowed>,
    /// Each member's latest statement, by name.
    pub latest: BTreeMap<String, ribat_mesh::attest::Attestation>,
    /// How the answering node judges each member now, by name.
    pub verdicts: BTreeMap<String, ribat_mesh::attest::Verdict>,
    /// The interval members attest at, ms.
    pub every_ms: u64,
}

/// One certificate of the identity register, as [`IDENTITIES`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The certificate.
    #[serde(flatten)]
    pub registration: ribat_mesh::Registration,
    /// Who granted it (`ceremony` for the ceremony's gateways).
    pub granted_by: Vec<String>,
    /// Revoked through the log since.
    pub revoked: bool,
}

/// The leader's committed index, its leadership confirmed by a quorum just now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndex {
    /// Apply up to here before serving.
    pub index: u64,
}

/// What a proposal became once committed and applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposed {
    /// Its index in the log.
    pub index: u64,
    /// What the state machine made of it.
    pub outcome: crate::Outcome,
}

/// A node's answer to [`STATUS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Raft id.
    pub id: u64,
    /// `Leader`, `Follower`, `Candidate` or `Learner`.
    pub state: String,
    /// The leader it follows, if it knows one.
    pub leader: Option<u64>,
    /// Current term.
    pub term: u64,
    /// Last index in its log.
    pub last_log_index: Option<u64>,
    /// Last index it applied to the security state.
    pub last_applied_index: Option<u64>,
    /// Voters of the membership it holds.
    pub voters: Vec<u64>,
    /// Learners of that membership: nodes added and still catching up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learners: Vec<u64>,
    /// Where the members of its security state sit in Raft, by name (what the leader makes
    /// Raft's voters match).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub seats: BTreeMap<String, ribat_mesh::Seat>,
    /// Restrictions in force by its clock.
    pub in_force: usize,
    /// Of those, the ones `t` members signed (mesh-wide).
    #[serde(default)]
    pub mesh_wide: usize,
    /// On the leader: the last index each member has acknowledged (lag = log − this).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub matched: BTreeMap<u64, Option<u64>>,
    /// On the leader: ms since each member last acknowledged it (its last contact).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contact_ms: BTreeMap<u64, Option<u64>>,
    /// The policy version in force through the log, and its digest (none: each node's
    /// start-up file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<(u64, String)>,
    /// The detection rules' version in force through the log, and their digest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<(u64, String)>,
    /// Why the node's services do not answer yet (catching up with the state), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// What each of the node's parts (its custodian, its gateway) has carried out: the
    /// policy and rules versions it decides and detects by (0: its start-up files). The
    /// state can be ahead of these for a moment; they are what the part acts on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub carried: BTreeMap<String, (u64, u64)>,
    /// How this node judges each member's attestation now, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attestation: BTreeMap<String, ribat_mesh::attest::Verdict>,
    /// The custodian set in force: its number and the node holding each custodian.
    #[serde(default)]
    pub custodian_set: u32,
    /// The node holding each custodian of that set, by index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub holders: BTreeMap<u32, String>,
    /// The set a resharing under way makes, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resharing_to: Option<u32>,
    /// The class keys' epoch (1 before any rotation).
    #[serde(default)]
    pub key_epoch: u32,
    /// After a rotation, while records are re-sealed: the epoch rotated away from and the
    /// node re-sealing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resealing: Option<(u32, String)>,
    /// A lab node (`ribat node --lab-clock`): how far ahead of the system's clock (behind,
    /// negative) it dates its security state, ms. Never set on a node a fund runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab_clock_ms: Option<i64>,
}

/// Says why a node's services do not answer yet, or `None` when they do.
pub type Waiting = std::sync::Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Says what each part of the node has carried out: (policy version, rules version).
pub type Carried = std::sync::Arc<dyn Fn() -> BTreeMap<String, (u64, u64)> + Send + Sync>;

/// Says how the node judges each member's attestation now.
pub type Judged =
    std::sync::Arc<dyn Fn() -> BTreeMap<String, ribat_mesh::attest::Verdict> + Send + Sync>;

/// What a node reports in its status besides Raft's and the state's own figures.
#[derive(Clone, Default)]
pub struct Reports {
    /// Why its services do not answer yet.
    pub waiting: Option<Waiting>,
    /// What its parts carried out.
    pub carried: Option<Carried>,
    /// How it judges the members' attestations.
    pub judged: Option<Judged>,
}

#[derive(Clone)]
struct Served {
    raft: MeshRaft,
    sm: MeshStateMachine,
    reports: Reports,
}

/// The routes, for a node's router.
pub fn router(raft: MeshRaft, sm: MeshStateMachine) -> Router {
    router_with(raft, sm, Reports::default())
}

/// Same, with `reports` in the node's status.
pub fn router_with(raft: MeshRaft, sm: MeshStateMachine, reports: Reports) -> Router {
    Router::new()
        .route(APPEND, post(append))
        .route(VOTE, post(vote))
        .route(SNAPSHOT, post(snapshot))
        .route(STATUS, get(status))
        .route(PROPOSE, post(propose))
        .route(READ_INDEX, get(read_index))
        .route(IDENTITIES, get(identities))
        .route(ATTESTATIONS, get(attestations))
        .route(CUSTODIANS, get(custodians))
        .route_layer(axum::middleware::from_fn_with_state(
            sm.clone(),
            only_members,
        ))
        .with_state(Served { raft, sm, reports })
}

async fn identities(State(s): State<Served>) -> Response {
    let listed = s.sm.read(|st| {
        st.granted()
            .map(|g| Identity {
                registration: g.registration.clone(),
                granted_by: g.by.iter().cloned().collect(),
                revoked: st.is_revoked(&g.registration.serial),
            })
            .collect::<Vec<_>>()
    });
    match listed {
        Ok(l) => Json(l).into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}

async fn custodians(State(s): State<Served>) -> Response {
    match s.sm.read(|st| st.custodians().clone()) {
        Ok(c) => Json(c).into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}

async fn attestations(State(s): State<Served>) -> Response {
    let listed = s.sm.read(|st| {
        let set = st.allowed_set();
        (
            set.releases.values().cloned().collect::<Vec<_>>(),
            st.attestations().clone(),
            set.every_ms,
        )
    });
    match listed {
        Ok((allowed, latest, every_ms)) => Json(Attestations {
            allowed,
            latest,
            verdicts: s.reports.judged.as_ref().map(|j| j()).unwrap_or_default(),
            every_ms,
        })
        .into_response(),
        Err(e) => Problem::internal(e.to_string()).into_response(),
    }
}

async fn status(State(s): State<Served>) -> Response {
    use openraft::async_runtime::WatchReceiver;
    let m = s.raft.metrics().borrow_watched().clone();
    let now_ms = ribat_clock::now_ms();
    let counted = s.sm.read(|st| {
        let held: Vec<&ribat_mesh::state::Held> = st.in_force(now_ms).collect();
        let wide = held
            .iter()
            .filter(|h| st.mesh_wide(&h.restriction.id))
            .count();
        let version = |p: &ribat_mesh::command::PolicyStatement| (p.version, p.digest.clone());
        let documents = (st.policy().map(version), st.rules().map(version));
        let c = st.custodians();
        let custodians = (
            c.set.number,
            c.set.holders.clone(),
            c.resharing.as_ref().map(|r| r.statement.set),
            (
                c.set.epoch,
                c.set
                    .resealing
                    .as_ref()
                    .map(|r| (r.from_epoch, r.job.clone())),
            ),
        );
        (held.len(), wide, st.seats().clone(), documents, custodians)
    });
    let (
        in_force,
        mesh_wide,
        seats,
        (policy, rules),
        (custodian_set, holders, resharing_to, (key_epoch, resealing)),
    ) = match counted {
        Ok(n) => n,
        Err(e) => return Problem::internal(e.to_string()).into_response(),
    };
    Json(NodeStatus {
        id: m.id,
        state: format!("{:?}", m.state),
        leader: m.current_leader,
        term: m.current_term,
        last_log_index: m.last_log_index,
        last_applied_index: m.last_applied.map(|l| l.index),
        voters: m.membership_config.voter_ids().collect(),
        learners: m.membership_config.membership().learner_ids().collect(),
        seats,
        in_force,
        mesh_wide,
        matched: m
            .replication
            .iter()
            .flatten()
            .map(|(id, l)| (*id, l.map(|l| l.index)))
            .collect(),
        contact_ms: m
            .heartbeat
            .iter()
            .flatten()
            .map(|(id, at)| {
                use openraft::Instant as _;
                let ms = at
                    .as_ref()
                    .map(|t| u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX));
                (*id, ms)
            })
            .collect(),
        policy,
        rules,
        waiting: s.reports.waiting.as_ref().and_then(|w| w()),
        carried: s.reports.carried.as_ref().map(|c| c()).unwrap_or_default(),
        attestation: s.reports.judged.as_ref().map(|j| j()).unwrap_or_default(),
        custodian_set,
        holders,
        resharing_to,
        key_epoch,
        resealing,
        lab_clock_ms: ribat_clock::lab_offset_ms(),
    })
    .into_response()
}

/// Before any body is read: the caller's certificate must be a current member's.
async fn only_members(State(sm): State<MeshStateMachine>, req: Request, next: Next) -> Response {
    match req.extensions().get::<Caller>() {
        Some(c) if c.peer.role == "node" => match sm.read(|st| st.is_member(&c.peer.name)) {
            Ok(true) => next.run(req).await,
            Ok(false) => Problem::forbidden(
                "not-a-member",
                format!(
                    "`{}` is not a member of this mesh: two administrators add a node through the log (`ribat mesh add-node`) before it takes part",
                    c.peer.name
                ),
            )
            .into_response(),
            Err(e) => Problem::internal(e.to_string()).into_response(),
        },
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
    State(Served { raft, .. }): State<Served>,
    Json(req): Json<AppendEntriesRequest<C>>,
) -> Response {
    answer(raft.append_entries(req).await)
}

async fn vote(
    State(Served { raft, .. }): State<Served>,
    Json(req): Json<VoteRequest<C>>,
) -> Response {
    answer(raft.vote(req).await)
}

async fn snapshot(
    State(Served { raft, .. }): State<Served>,
    Json(b): Json<SnapshotBody>,
) -> Response {
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

/// The leader's answer to "up to which index must I apply before I serve": leadership
/// confirmed by a round of heartbeats to a quorum (ReadIndex), then its committed index.
async fn read_index(State(Served { raft, .. }): State<Served>) -> Response {
    use openraft::error::{LinearizableReadError, RaftError};
    match raft
        .ensure_linearizable(openraft::ReadPolicy::ReadIndex)
        .await
    {
        Ok(id) => Json(ReadIndex { index: id.index() }).into_response(),
        Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(_))) => Problem::new(
            StatusCode::CONFLICT,
            "not-the-leader",
            "Not the leader",
            "ask the leader for the read index",
        )
        .into_response(),
        Err(e) => Problem::unavailable("mesh-unavailable", e.to_string()).into_response(),
    }
}

async fn propose(
    State(Served { raft, .. }): State<Served>,
    Json(command): Json<ribat_mesh::Command>,
) -> Response {
    use openraft::error::{ClientWriteError, RaftError};
    match raft.client_write(command).await {
        Ok(w) => Json(Proposed {
            index: w.log_id.index,
            outcome: w.data,
        })
        .into_response(),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Problem::new(
            StatusCode::CONFLICT,
            "not-the-leader",
            "Not the leader",
            match f.leader_node {
                Some(n) => format!(
                    "propose to the leader, node {:?} at {}",
                    f.leader_id, n.addr
                ),
                None => "no leader is known yet; try again in a second".into(),
            },
        )
        .into_response(),
        Err(e) => Problem::unavailable("mesh-unavailable", e.to_string()).into_response(),
    }
}
