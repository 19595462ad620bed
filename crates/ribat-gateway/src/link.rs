//! The gateway ↔ custodian link over mTLS: both ends.
//!
//! ```text
//!   gateway (RemoteCustodian) ── POST /v1/partial {PartialRequest + end user's token} ──►
//!   custodian process: caller certificate role = gateway? token signature, audience,
//!   expiry, bound certificate not revoked, names the requester? ─► LocalCustodian
//!   (guard: purpose, class, quota, quarantine, honey; log) ─► {points, proof} or {denial}
//! ```
//!
//! A custodian trusts nothing the gateway says about who acts: the token is signed by the
//! deployment's token service, which the gateway's certificate cannot forge. What it cannot
//! tell is whether the end user is still on the line: a compromised gateway can replay a
//! token it saw until that token expires (minutes), within that identity's quotas.

use crate::client::{ClientError, Connection};
use crate::listener::Caller;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64ct::{Base64, Encoding};
use ribat_crypto::combine::Partial;
use ribat_crypto::dleq::Proof;
use ribat_crypto::point::{decode_point, encode_point};
use ribat_custodian::{Custodian, CustodianError, Denial, LocalCustodian, PartialRequest};
use ribat_identity::TokenVerifier;
use ribat_identity::tls::ServerTls;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The path custodians serve.
pub const PARTIAL_PATH: &str = "/v1/partial";
/// Where a gateway tells a custodian which request ids it audited.
pub const AUDITED_PATH: &str = "/v1/audited";
/// Where a gateway hands a custodian a decision to carry out (or lift).
pub const DECISION_PATH: &str = "/v1/decision";

/// A decision on the wire: carry it out, or lift it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireDecision {
    /// The signed decision.
    pub decision: ribat_detect::Decision,
    /// Lift it instead.
    #[serde(default)]
    pub release: bool,
}

/// Request ids a gateway made durable in its audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireAudited {
    /// Request ids.
    pub request_ids: Vec<String>,
}

/// A partial decryption on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WirePartial {
    /// Custodian index.
    pub custodian: u32,
    /// Class.
    pub class: String,
    /// Points, base64 of 32-byte encodings.
    pub points: Vec<String>,
    /// Composite DLEQ proof, base64.
    pub proof: String,
}

/// A custodian's refusal on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireRefusal {
    /// A policy refusal, when it is one.
    #[serde(default)]
    pub denial: Option<Denial>,
    /// Otherwise what failed.
    #[serde(default)]
    pub error: Option<String>,
}

impl WirePartial {
    fn from_partial(p: &Partial) -> Self {
        Self {
            custodian: p.custodian,
            class: p.class.clone(),
            points: p
                .points
                .iter()
                .map(|x| Base64::encode_string(&encode_point(x)))
                .collect(),
            proof: Base64::encode_string(&p.proof.to_bytes()),
        }
    }

    fn into_partial(self) -> Result<Partial, String> {
        let points = self
            .points
            .iter()
            .map(|s| {
                let b = Base64::decode_vec(s).map_err(|e| format!("point: {e}"))?;
                decode_point(&b, "answered point").map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let proof = Base64::decode_vec(&self.proof).map_err(|e| format!("proof: {e}"))?;
        Ok(Partial {
            custodian: self.custodian,
            class: self.class,
            points,
            proof: Proof::from_bytes(&proof).map_err(|e| e.to_string())?,
        })
    }
}

/// What a networked custodian needs to check its callers.
pub struct CustodianService {
    /// The custodian.
    pub custodian: Arc<LocalCustodian>,
    /// Verifies end users' tokens.
    pub tokens: TokenVerifier,
    /// Its TLS settings (for the revocation list).
    pub tls: Arc<ServerTls>,
    /// The custodian's own detectors: it compares what it answered each gateway with what
    /// that gateway says it audited, and stops answering a gateway certificate whose
    /// answers nobody audited.
    pub watch: Option<Arc<crate::watch::Watch>>,
}

impl std::fmt::Debug for CustodianService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CustodianService({})", self.custodian.index())
    }
}

/// A failure that is not a policy refusal, as the gateway's link reads it.
fn wire_error(status: StatusCode, error: String) -> Response {
    (
        status,
        Json(WireRefusal {
            denial: None,
            error: Some(error),
        }),
    )
        .into_response()
}

fn refuse(status: StatusCode, denial: Denial) -> Response {
    (
        status,
        Json(WireRefusal {
            denial: Some(denial),
            error: None,
        }),
    )
        .into_response()
}

/// The custodian's router.
pub fn custodian_router(service: Arc<CustodianService>) -> Router {
    Router::new()
        .route(PARTIAL_PATH, post(partial))
        .route(AUDITED_PATH, post(audited))
        .route(DECISION_PATH, post(decision))
        .with_state(service)
}

/// A gateway's decision about an identity: a quarantine only restricts, so a custodian
/// carries it out on its gateway's word (it could refuse that identity anyway), durably in
/// its own log.
async fn decision(
    State(s): State<Arc<CustodianService>>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<WireDecision>,
) -> Response {
    if caller.peer.role != "gateway" {
        return StatusCode::FORBIDDEN.into_response();
    }
    let d = body.decision;
    let (ribat_detect::Target::Identity(identity), ribat_detect::Action::Quarantine) =
        (&d.target, d.action)
    else {
        return StatusCode::NO_CONTENT.into_response();
    };
    if !d.enforces() {
        return StatusCode::NO_CONTENT.into_response();
    }
    let (c, identity) = (s.custodian.clone(), identity.clone());
    let why = format!("decision {} of {}: {}", d.id, caller.peer.name, d.rule);
    let done = tokio::task::spawn_blocking(move || {
        if body.release {
            c.lift(&identity, &format!("{why} released"))
        } else {
            c.impose(&identity, d.until_ms / 1000, &why)
        }
    })
    .await;
    match done {
        Ok(Ok(())) => StatusCode::NO_CONTENT.into_response(),
        Ok(Err(e)) => wire_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => wire_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {e}"),
        ),
    }
}

async fn audited(
    State(s): State<Arc<CustodianService>>,
    Extension(caller): Extension<Caller>,
    Json(body): Json<WireAudited>,
) -> Response {
    if caller.peer.role != "gateway" {
        return StatusCode::FORBIDDEN.into_response();
    }
    if let Some(w) = s.watch.clone() {
        let node = caller.peer.name.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for id in body.request_ids {
                w.observe(&ribat_detect::Event {
                    time_ms: w.clock().now_ms(),
                    component: node.clone(),
                    kind: ribat_detect::Kind::Audited { request_id: id },
                });
            }
        })
        .await;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn partial(
    State(s): State<Arc<CustodianService>>,
    Extension(caller): Extension<Caller>,
    Json(req): Json<PartialRequest>,
) -> Response {
    let unauth =
        |reason: String| refuse(StatusCode::UNAUTHORIZED, Denial::Unauthenticated { reason });
    if caller.peer.role != "gateway" {
        return unauth(format!(
            "custodians answer gateways only; this certificate is `{}` with role `{}`",
            caller.peer.name, caller.peer.role
        ));
    }
    let Some(token) = req.token.as_ref() else {
        return unauth("no end-user token came with the request; a custodian does not take the gateway's word for who acts".into());
    };
    let claims = match s.tokens.verify(&token.0, time::OffsetDateTime::now_utc()) {
        Ok(c) => c,
        Err(e) => return unauth(e.to_string()),
    };
    if claims.sub != req.requester.identity || claims.role != req.requester.role {
        return unauth(format!(
            "the request says `{}` ({}) but the token is for `{}` ({})",
            req.requester.identity, req.requester.role, claims.sub, claims.role
        ));
    }
    if s.tls.is_revoked(&claims.serial) {
        return unauth(ribat_identity::TokenError::Revoked.to_string());
    }
    if let Some((until, id)) = s
        .watch
        .as_ref()
        .and_then(|w| w.node_quarantined(&caller.peer.name))
    {
        return refuse(
            StatusCode::FORBIDDEN,
            Denial::Quarantined {
                identity: format!("{} (decision {id})", caller.peer.name),
                until: until / 1000,
            },
        );
    }
    let c = s.custodian.clone();
    let answered = req.clone();
    let result = tokio::task::spawn_blocking(move || c.partial_decrypt(&req)).await;
    if let (Some(w), Ok(Ok(_))) = (s.watch.clone(), &result) {
        let node = caller.peer.name.clone();
        let index = s.custodian.index();
        let _ = tokio::task::spawn_blocking(move || {
            w.observe(&ribat_detect::Event {
                time_ms: w.clock().now_ms(),
                component: format!("custodian-{index}"),
                kind: ribat_detect::Kind::CustodianAnswer(ribat_detect::event::CustodianAnswer {
                    custodian: index,
                    request_id: answered.request_id,
                    node,
                    table: answered.table,
                    identity: answered.requester.identity,
                    records: answered.record_ids.len(),
                    outcome: "served".into(),
                    quarantined: None,
                }),
            })
        })
        .await;
    }
    match result {
        Ok(Ok(p)) => Json(WirePartial::from_partial(&p)).into_response(),
        Ok(Err(CustodianError::Denied { denial, .. })) => refuse(StatusCode::FORBIDDEN, denial),
        Ok(Err(e)) => wire_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => wire_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {e}"),
        ),
    }
}

/// A custodian in another process, reached over mTLS with the gateway's certificate.
pub struct RemoteCustodian {
    index: u32,
    addr: String,
    host: String,
    config: Arc<rustls::ClientConfig>,
    runtime: tokio::runtime::Handle,
    deadline: Duration,
    conn: tokio::sync::Mutex<Option<Connection>>,
}

impl std::fmt::Debug for RemoteCustodian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteCustodian({} at {})", self.index, self.addr)
    }
}

impl RemoteCustodian {
    /// Custodian `index` at `addr`, whose certificate names `host`; each call must finish
    /// within `deadline` or the custodian is skipped for that read.
    pub fn new(
        index: u32,
        addr: &str,
        host: &str,
        config: Arc<rustls::ClientConfig>,
        runtime: tokio::runtime::Handle,
        deadline: Duration,
    ) -> Self {
        Self {
            index,
            addr: addr.to_owned(),
            host: host.to_owned(),
            config,
            runtime,
            deadline,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    async fn call(&self, body: Vec<u8>) -> Result<crate::client::Response, ClientError> {
        let mut guard = self.conn.lock().await;
        if !guard.as_ref().is_some_and(Connection::is_open) {
            *guard =
                Some(Connection::open(self.config.clone(), &self.addr, &self.host, true).await?);
        }
        let Some(conn) = guard.as_mut() else {
            return Err(ClientError::Http("no connection".into()));
        };
        match conn.send("POST", PARTIAL_PATH, None, Some(body)).await {
            Ok(r) => Ok(r),
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }

    async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<crate::client::Response, ClientError> {
        let mut guard = self.conn.lock().await;
        if !guard.as_ref().is_some_and(Connection::is_open) {
            *guard =
                Some(Connection::open(self.config.clone(), &self.addr, &self.host, true).await?);
        }
        let Some(conn) = guard.as_mut() else {
            return Err(ClientError::Http("no connection".into()));
        };
        match conn.send("POST", path, None, Some(body)).await {
            Ok(r) => Ok(r),
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }

    /// Hands the custodian a decision (from a blocking thread), within the deadline.
    pub(crate) fn send_decision(
        &self,
        d: &ribat_detect::Decision,
        release: bool,
    ) -> Result<(), String> {
        let body = serde_json::to_vec(&WireDecision {
            decision: d.clone(),
            release,
        })
        .map_err(|e| e.to_string())?;
        let r = self
            .runtime
            .block_on(async {
                tokio::time::timeout(self.deadline, self.post(DECISION_PATH, body)).await
            })
            .map_err(|_| format!("no answer within {} ms", self.deadline.as_millis()))?
            .map_err(|e| e.to_string())?;
        if r.status < 300 {
            Ok(())
        } else {
            Err(format!("HTTP {}", r.status))
        }
    }

    /// Tells the custodian which request ids the gateway audited (best effort: a custodian
    /// that does not hear them in time treats its answers as unaudited and stops answering
    /// this gateway's certificate).
    pub async fn post_audited(&self, request_ids: Vec<String>) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&WireAudited { request_ids })
            .map_err(|e| ClientError::Http(e.to_string()))?;
        match self.post(AUDITED_PATH, body).await? {
            r if r.status < 300 => Ok(()),
            r => Err(ClientError::Http(format!("HTTP {}", r.status))),
        }
    }

    fn unavailable(&self, reason: impl Into<String>) -> CustodianError {
        CustodianError::Unavailable {
            custodian: self.index,
            reason: reason.into(),
        }
    }
}

impl Custodian for RemoteCustodian {
    fn index(&self) -> u32 {
        self.index
    }

    /// Must be called from a blocking thread (the gateway reads in `spawn_blocking`).
    fn partial_decrypt(&self, req: &PartialRequest) -> Result<Partial, CustodianError> {
        let body = serde_json::to_vec(req).map_err(|e| self.unavailable(e.to_string()))?;
        let r = self
            .runtime
            .block_on(async { tokio::time::timeout(self.deadline, self.call(body)).await })
            .map_err(|_| {
                self.unavailable(format!("no answer within {} ms", self.deadline.as_millis()))
            })?
            .map_err(|e| self.unavailable(e.to_string()))?;
        if r.status == 200 {
            let wire: WirePartial = serde_json::from_slice(&r.body)
                .map_err(|e| self.unavailable(format!("unreadable answer: {e}")))?;
            return wire
                .into_partial()
                .map_err(|e| self.unavailable(format!("unreadable answer: {e}")));
        }
        let refusal: WireRefusal = serde_json::from_slice(&r.body).map_err(|_| {
            self.unavailable(format!("HTTP {} without a readable refusal", r.status))
        })?;
        match (refusal.denial, refusal.error) {
            (Some(denial), _) => Err(CustodianError::Denied {
                custodian: self.index,
                denial,
            }),
            (None, Some(e)) => Err(self.unavailable(e)),
            (None, None) => Err(self.unavailable(format!("HTTP {}", r.status))),
        }
    }
}
