//! A custodian as its own network service: the routes a gateway calls over mTLS.
//!
//! ```text
//!   gateway ── POST /v1/partial {PartialRequest + end user's token} ──►
//!   caller certificate role = gateway? token signature, audience, expiry, bound
//!   certificate not revoked, names the requester? gateway not held by a decision?
//!   ─► LocalCustodian (guard: purpose, class, quota, quarantine, honey; log)
//!   ─► {points, proof} or {denial}
//!   gateway ── POST /v1/cosign {origin, old_size, proof, checkpoint} ──► its witness
//! ```
//!
//! A custodian trusts nothing the gateway says about who acts: the token is signed by the
//! deployment's token service, which the gateway's certificate cannot forge. What it cannot
//! tell is whether the end user is still on the line: a compromised gateway can replay a
//! token it saw until that token expires (minutes), within that identity's quotas.
//!
//! The custodian's own detectors are reached through [`Observer`], which the node that runs
//! the custodian provides (the gateway crate's watch): this crate serves, it does not decide.

use crate::wire::{
    AUDITED_PATH, COSIGN_PATH, DECISION_PATH, PARTIAL_PATH, WireAudited, WireCosign, WireCosigned,
    WireDecision, WirePartial, WireRefusal,
};
use crate::{Custodian, CustodianError, Denial, LocalCustodian, PartialRequest};
use axum::extract::{Extension, FromRequestParts};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64ct::{Base64, Encoding};
use ribat_detect::event::{CustodianAnswer, Kind};
use ribat_detect::{Action, Target};
use ribat_identity::TokenVerifier;
use ribat_identity::tls::ServerTls;
use ribat_net::Caller;
use std::sync::Arc;

/// The custodian's own detectors, as its server sees them.
pub trait Observer: Send + Sync {
    /// Feeds what `component` saw to the detectors.
    fn observe(&self, component: &str, kind: Kind);
    /// When a decision holds the node (gateway certificate) `name`, or the certificate
    /// `serial` it calls with: until when (ms since the epoch) and the decision's id. Such
    /// a node's requests are refused.
    fn node_held(&self, name: &str, serial: &str) -> Option<(u64, String)>;
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
    pub observer: Option<Arc<dyn Observer>>,
    /// The gateways' audit logs this custodian witnesses, by origin (in a mesh, each
    /// gateway node's log key is pinned at the ceremony); a log not here is refused.
    pub witnesses: std::collections::BTreeMap<String, ribat_audit::Witness>,
    /// Whether the node may answer now (in a mesh: it has applied the security state as of
    /// a recent word from the leader); `Err` says why not, and the request is refused as
    /// unavailable, not denied.
    pub ready: Option<Arc<dyn Fn() -> Result<(), String> + Send + Sync>>,
    /// In a mesh: the bulk reads two administrators allowed through the log. A read under
    /// their role whose identity holds a running allowance needs no end user's token (the
    /// allowance is its authority, and the custodian's guard counts it against it).
    pub allowances: Option<Arc<crate::allowance::Allowances>>,
    /// In a mesh: why the node a gateway certificate (by name) runs on is cut off, if it
    /// is (its attestation is missing, stale or outside the allowed set).
    pub cut_off: Option<CutOff>,
    /// In a mesh: whether a gateway certificate (by name) belongs to the node the key
    /// rotation under way named to re-seal the records. Requests under purpose
    /// `key-rotation` are taken from that gateway only (none while no rotation is under
    /// way): any other gateway could mint itself a token for the purpose.
    pub rotation_job: Option<RotationJob>,
    /// Whether an end user's read must come with their signed request (a mesh): the
    /// custodian checks it itself and answers only for the records it names
    /// ([`crate::asked`]).
    pub signed_requests: bool,
}

/// Says whether a gateway certificate (by name) may re-seal records now.
pub type RotationJob = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Says why the node behind a caller's certificate (by name) is cut off, or `None`.
pub type CutOff = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

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
            other_set: None,
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
            other_set: None,
        }),
    )
        .into_response()
}

/// Where a node keeps the custodian it serves: empty on a node that holds none (yet: a
/// resharing can give it one while it runs), emptied when its custodian leaves the set in
/// force.
#[derive(Default)]
pub struct Slot(std::sync::RwLock<Option<Arc<CustodianService>>>);

impl Slot {
    /// A slot holding `service`.
    pub fn holding(service: Arc<CustodianService>) -> Self {
        Self(std::sync::RwLock::new(Some(service)))
    }

    /// Serves `service` from the next request on.
    pub fn put(&self, service: Arc<CustodianService>) {
        match self.0.write() {
            Ok(mut w) => *w = Some(service),
            Err(poisoned) => *poisoned.into_inner() = Some(service),
        }
    }

    /// Serves no custodian from the next request on.
    pub fn clear(&self) {
        match self.0.write() {
            Ok(mut w) => *w = None,
            Err(poisoned) => *poisoned.into_inner() = None,
        }
    }

    /// The custodian served now.
    pub fn get(&self) -> Option<Arc<CustodianService>> {
        match self.0.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

/// The service in the slot, or a refusal saying this node serves no custodian.
struct Held(Arc<CustodianService>);

impl FromRequestParts<Arc<Slot>> for Held {
    type Rejection = Response;

    async fn from_request_parts(
        _parts: &mut axum::http::request::Parts,
        slot: &Arc<Slot>,
    ) -> Result<Self, Self::Rejection> {
        slot.get().map(Held).ok_or_else(|| {
            wire_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "this node holds no custodian of the set in force".into(),
            )
        })
    }
}

/// The custodian's router (mount it on [`ribat_net::listener::serve`]).
pub fn router(service: Arc<CustodianService>) -> Router {
    router_in(Arc::new(Slot::holding(service)))
}

/// The custodian's router, serving whatever custodian `slot` holds at each request.
pub fn router_in(slot: Arc<Slot>) -> Router {
    Router::new()
        .route(PARTIAL_PATH, post(partial))
        .route(AUDITED_PATH, post(audited))
        .route(DECISION_PATH, post(decision))
        // A checkpoint carries the entries since the witness's last one: a witness that was
        // away a few minutes catches up in one request.
        .route(
            COSIGN_PATH,
            post(cosign).layer(axum::extract::DefaultBodyLimit::max(COSIGN_BODY_MAX)),
        )
        .with_state(slot)
}

/// Largest cosign request: about 120,000 audit entries.
const COSIGN_BODY_MAX: usize = 64 << 20;

/// A gateway's checkpoint, cosigned only when it extends what this custodian's witness
/// cosigned before for that log (a fork is refused and kept as an alert in its directory).
async fn cosign(
    Held(s): Held,
    Extension(caller): Extension<Caller>,
    Json(body): Json<WireCosign>,
) -> Response {
    if caller.peer.role != "gateway" {
        return StatusCode::FORBIDDEN.into_response();
    }
    let hashes = |list: &[String]| -> Result<Vec<ribat_audit::Hash>, String> {
        list.iter()
            .map(|h| {
                Base64::decode_vec(h)
                    .ok()
                    .and_then(|v| <[u8; 32]>::try_from(v).ok())
                    .map(ribat_audit::Hash)
                    .ok_or_else(|| "a hash is not 32 bytes of base64".to_owned())
            })
            .collect()
    };
    let shown = match (&body.edge, &body.entries) {
        (Some(edge), Some(entries)) => {
            let entries: Result<Vec<Vec<u8>>, String> = entries
                .iter()
                .map(|e| Base64::decode_vec(e).map_err(|_| "an entry is not base64".to_owned()))
                .collect();
            Some(hashes(edge).and_then(|edge| Ok((edge, entries?))))
        }
        (None, None) => None,
        _ => Some(Err(
            "an edge comes with entries, and entries with an edge".into()
        )),
    };
    let answer = match (hashes(&body.proof), shown) {
        (Err(e), _) | (_, Some(Err(e))) => WireCosigned::Refused(e),
        (Ok(proof), shown) => {
            let s = s.clone();
            let gateway = caller.peer.name.clone();
            let done = tokio::task::spawn_blocking(move || match s.witnesses.get(&body.origin) {
                None => WireCosigned::Refused(format!(
                    "this custodian witnesses no log named `{}`",
                    body.origin
                )),
                Some(w) => match shown {
                    Some(Ok((edge, entries))) => {
                        match w.cosign_entries(body.old_size, &body.note, &edge, &entries) {
                            Ok((line, ids)) => {
                                // Audited as far as this custodian is concerned: in the log,
                                // exactly as the checkpoint it just cosigned covers it.
                                if let Some(o) = &s.observer {
                                    for request_id in ids {
                                        o.observe(&gateway, Kind::Audited { request_id });
                                    }
                                }
                                WireCosigned::from_result(Ok(line))
                            }
                            Err(e) => WireCosigned::from_result(Err(e)),
                        }
                    }
                    _ => WireCosigned::from_result(ribat_audit::Cosigner::cosign(
                        w,
                        body.old_size,
                        &proof,
                        &body.note,
                    )),
                },
            })
            .await;
            done.unwrap_or_else(|e| WireCosigned::Unavailable(format!("task failed: {e}")))
        }
    };
    Json(answer).into_response()
}

/// A gateway's decision about an identity: a quarantine only restricts, so a custodian
/// carries it out on its gateway's word (it could refuse that identity anyway), durably in
/// its own log.
async fn decision(
    Held(s): Held,
    Extension(caller): Extension<Caller>,
    Json(body): Json<WireDecision>,
) -> Response {
    if caller.peer.role != "gateway" {
        return StatusCode::FORBIDDEN.into_response();
    }
    let d = body.decision;
    let (Target::Identity(identity), Action::Quarantine) = (&d.target, d.action) else {
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
    Held(s): Held,
    Extension(caller): Extension<Caller>,
    Json(body): Json<WireAudited>,
) -> Response {
    if caller.peer.role != "gateway" {
        return StatusCode::FORBIDDEN.into_response();
    }
    // A custodian that witnesses the gateways' logs believes only the entries it cosigned:
    // a gateway's word is what a stolen gateway certificate would give too.
    if !s.witnesses.is_empty() {
        return ribat_net::problem::Problem::new(
            StatusCode::CONFLICT,
            "audited-by-log",
            "Audited requests come from the log",
            "this custodian learns what a gateway audited from the log entries its witness cosigns (POST /v1/cosign with the entries), not from a list of request ids",
        )
        .into_response();
    }
    if let Some(o) = s.observer.clone() {
        let node = caller.peer.name.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for request_id in body.request_ids {
                o.observe(&node, Kind::Audited { request_id });
            }
        })
        .await;
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn partial(
    Held(s): Held,
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
    if let Some(Err(why)) = s.ready.as_ref().map(|ready| ready()) {
        return wire_error(StatusCode::SERVICE_UNAVAILABLE, why);
    }
    if let Some(why) = s.cut_off.as_ref().and_then(|c| c(&caller.peer.name)) {
        return wire_error(StatusCode::FORBIDDEN, why);
    }
    if req.purpose == ribat_policy::Purpose::KEY_ROTATION
        && s.rotation_job
            .as_ref()
            .is_some_and(|may| !may(&caller.peer.name))
    {
        return wire_error(
            StatusCode::FORBIDDEN,
            format!(
                "{} may not re-seal records: no key rotation under way names its node to",
                caller.peer.name
            ),
        );
    }
    let now = ribat_clock::now_secs();
    let by_allowance = s
        .allowances
        .as_ref()
        .is_some_and(|a| req.requester.role == *a.role() && a.holds(&req.requester.identity, now));
    let claims = match req.token.as_ref() {
        None if by_allowance => None,
        None => {
            return unauth("no end-user token came with the request; a custodian does not take the gateway's word for who acts".into());
        }
        Some(token) => match check_token(&s, &req, token) {
            Ok(claims) => Some((claims, token.0.clone())),
            Err(why) => return unauth(why),
        },
    };
    if let Some((claims, token)) = claims
        && s.signed_requests
        && crate::asked::needs_signature(&req)
    {
        let checked = {
            let (s, req) = (s.clone(), req.clone());
            tokio::task::spawn_blocking(move || check_asked(&s, &req, &claims, &token, now)).await
        };
        let why = match checked {
            Ok(Ok(())) => None,
            Ok(Err(why)) => Some(why),
            Err(e) => Some(format!("task failed: {e}")),
        };
        if let Some(why) = why {
            if let Some(o) = s.observer.clone() {
                let actor = ribat_detect::event::Actor {
                    identity: caller.peer.name.clone(),
                    role: caller.peer.role.to_string(),
                    institution: caller.peer.institution.clone(),
                    serial: caller.peer.serial.clone(),
                    addr: caller.remote.ip().to_string(),
                };
                let index = s.custodian.index();
                let _ = tokio::task::spawn_blocking(move || {
                    o.observe(
                        &format!("custodian-{index}"),
                        Kind::AuthFailure(ribat_detect::event::AuthFailure {
                            actor,
                            reason: "signed-request-refused".into(),
                        }),
                    );
                })
                .await;
            }
            return unauth(format!("the user's signed request: {why}"));
        }
    }
    if let Some((until, id)) = s
        .observer
        .as_ref()
        .and_then(|o| o.node_held(&caller.peer.name, &caller.peer.serial))
    {
        return refuse(
            StatusCode::FORBIDDEN,
            Denial::Quarantined {
                identity: format!("{} (decision {id})", caller.peer.name),
                until: until / 1000,
            },
        );
    }
    served(s, caller, req).await
}

/// The user's signed request: present, signed within its window by the key of the
/// certificate the token is bound to (which chains to the CA, and is neither revoked nor
/// ungranted), for the purpose and the records of `req`; why not, otherwise.
fn check_asked(
    s: &CustodianService,
    req: &PartialRequest,
    claims: &ribat_identity::TokenClaims,
    token: &str,
    now: u64,
) -> Result<(), String> {
    let asked = req.asked.as_ref().ok_or(
        "none came with the read; a custodian of a mesh answers a user's read only with the request they signed",
    )?;
    let (certificate, read) = crate::asked::check_signed(asked, token, now)?;
    let peer = s.tls.verify_forwarded(&certificate)?;
    if peer.thumbprint != claims.cnf.x5t_s256 {
        return Err(format!(
            "it is signed with the certificate of `{}`, not the one the token of `{}` is bound to",
            peer.name, claims.sub
        ));
    }
    if peer.name != claims.sub || peer.role != claims.role {
        return Err(format!(
            "the certificate names `{}` ({}) but the token `{}` ({})",
            peer.name, peer.role, claims.sub, claims.role
        ));
    }
    s.custodian.within_asked(&read, req)
}

/// The end user's token: verified, naming the requester, bound to a certificate that is
/// neither revoked nor (in a mesh) ungranted; its claims, or why not.
fn check_token(
    s: &CustodianService,
    req: &PartialRequest,
    token: &crate::request::Bearer,
) -> Result<ribat_identity::TokenClaims, String> {
    let claims = s
        .tokens
        .verify(&token.0, ribat_clock::now_utc())
        .map_err(|e| e.to_string())?;
    if claims.sub != req.requester.identity || claims.role != req.requester.role {
        return Err(format!(
            "the request says `{}` ({}) but the token is for `{}` ({})",
            req.requester.identity, req.requester.role, claims.sub, claims.role
        ));
    }
    let bound = ribat_identity::tls::CertRef {
        serial: &claims.serial,
        thumbprint: &claims.cnf.x5t_s256,
        role: claims.role.as_str(),
    };
    match s.tls.refused(&bound) {
        Some(ribat_identity::tls::Refused::Revoked) => {
            Err(ribat_identity::TokenError::Revoked.to_string())
        }
        Some(
            ribat_identity::tls::Refused::NotGranted | ribat_identity::tls::Refused::NotAMember,
        ) => Err(format!(
            "the token of `{}` is bound to a certificate the mesh's identity register does not hold (serial {}): never granted by two administrators",
            claims.sub, claims.serial
        )),
        Some(ribat_identity::tls::Refused::Lapsed) => Err(format!(
            "the access of `{}` passed its review date without being re-certified",
            claims.sub
        )),
        None => Ok(claims),
    }
}

/// Decrypts what the guard allows, tells the detectors what was served, answers.
async fn served(s: Arc<CustodianService>, caller: Caller, req: PartialRequest) -> Response {
    let c = s.custodian.clone();
    let answered = req.clone();
    let result = tokio::task::spawn_blocking(move || c.partial_decrypt(&req)).await;
    if let (Some(o), Ok(Ok(_))) = (s.observer.clone(), &result) {
        let node = caller.peer.name.clone();
        let index = s.custodian.index();
        let _ = tokio::task::spawn_blocking(move || {
            o.observe(
                &format!("custodian-{index}"),
                Kind::CustodianAnswer(CustodianAnswer {
                    custodian: index,
                    request_id: answered.request_id,
                    node,
                    table: answered.table.to_string(),
                    identity: answered.requester.identity,
                    records: answered.record_ids.len(),
                    outcome: "served".into(),
                    quarantined: None,
                }),
            )
        })
        .await;
    }
    match result {
        Ok(Ok(p)) => Json(WirePartial::from_partial(&p)).into_response(),
        Ok(Err(CustodianError::Denied { denial, .. })) => refuse(StatusCode::FORBIDDEN, denial),
        Ok(Err(e @ CustodianError::OtherSet { .. })) => {
            let CustodianError::OtherSet {
                asked,
                held,
                retired,
                ..
            } = &e
            else {
                return wire_error(StatusCode::CONFLICT, e.to_string());
            };
            (
                StatusCode::CONFLICT,
                Json(WireRefusal {
                    denial: None,
                    error: Some(e.to_string()),
                    other_set: Some((*asked, *held, *retired)),
                }),
            )
                .into_response()
        }
        Ok(Err(e)) => wire_error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => wire_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("task failed: {e}"),
        ),
    }
}
