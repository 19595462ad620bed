//! The gateway's HTTP API (JSON over mTLS). Every data route: token bound to the
//! certificate → the gate (purpose, classes, fields, quarantine, quota of distinct
//! subjects) → the vault (custodians check again; audit before plaintext) → masks → JSON.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/token` | a token for the certificate's holder |
//! | `GET /v1/persons/{cnss}` | a person's fields |
//! | `GET /v1/persons/{cnss}/declarations` | a person's declaration history |
//! | `POST /v1/persons/search` | persons by CIN, or by name and birth date |
//! | `GET /v1/employers/{affiliation}` | an employer's fields |
//! | `GET /v1/decisions` | the watch's decisions (security team, auditors) |
//! | `POST /v1/decisions/{id}/release` | one administrator's approval to lift a decision |
//! | `/v1/exports…` | bulk exports to partners ([`crate::exports`]) |
//! | `GET /healthz`, `/openapi.json`, `/metrics` | operations |
//!
//! Every routed request is also an event for the watch (`observe`): what a handler read
//! (`Seen`), or the problem it answered; a decision the detectors reach is in force before
//! the response that triggered it leaves.

use crate::AuditFirstError;
pub use crate::app::{App, Authed, COSIGN_HEADER};
use crate::app::{Shared, actor_of, require_role};
use crate::body::{
    CosignHeader, DecisionsBody, DeclarationsBody, DeclarationsQuery, EmployerBody, EmployerQuery,
    HealthBody, PersonBody, PersonQuery, RejectedLine, ReleaseBody, ReleaseBodyState, ReleaseWord,
    SearchBody, SearchMatch, SearchResultBody, TokenBody, TokenIssued, TokenType, UploadBody,
    UploadQuery,
};
use crate::gate::{Admitted, Gate};
use crate::openapi::{ReadErrors, TokenErrors};
use crate::vault::{
    DECLARATION_FIELDS, EMPLOYER_FIELDS, PERSON_FIELDS, Reader, VaultError, person_field_class,
};
use axum::body::Bytes;
use axum::extract::{Extension, MatchedPath, Path, Query, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ribat_custodian::quorum::QuorumError;
use ribat_custodian::request::Bearer;
use ribat_custodian::{Denial, Requester};
use ribat_detect::event::{Access, Actor, AuthFailure, Denied, Event, Kind, Refusal};
use ribat_net::listener::Caller;
use ribat_net::problem::{Problem, ProblemType};
use ribat_policy::{Class, Purpose, Table};
use std::collections::BTreeMap;
use std::time::Instant;

/// Every route the router answers, in the OpenAPI document (`/openapi.json` serves the
/// document itself and is not in it).
pub const DOCUMENTED_ROUTES: &[&str] = &[
    "/v1/token",
    "/v1/persons/search",
    "/v1/persons/{cnss}",
    "/v1/persons/{cnss}/declarations",
    "/v1/employers/{affiliation}",
    "/v1/declarations",
    "/v1/decisions",
    "/v1/decisions/{id}/release",
    "/v1/exports",
    "/v1/exports/{id}",
    "/v1/exports/{id}/approve",
    "/v1/exports/{id}/run",
    "/v1/exports/{id}/file",
    "/healthz",
    "/metrics",
];

/// The router.
pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/v1/token", post(token))
        .route("/v1/persons/search", post(search))
        .route("/v1/persons/{cnss}", get(person))
        .route("/v1/persons/{cnss}/declarations", get(declarations))
        .route("/v1/employers/{affiliation}", get(employer))
        .route(
            "/v1/declarations",
            post(upload)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD))
                .layer(axum::middleware::from_fn_with_state(
                    app.clone(),
                    one_of_few_uploads,
                )),
        )
        .route("/v1/decisions", get(decisions_list))
        .route("/v1/decisions/{id}/release", post(decision_release))
        .route("/v1/exports", post(crate::exports::file_request))
        .route("/v1/exports/{id}", get(crate::exports::show))
        .route("/v1/exports/{id}/approve", post(crate::exports::approve))
        .route("/v1/exports/{id}/run", post(crate::exports::run))
        .route("/v1/exports/{id}/file", get(crate::exports::fetch))
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(within_limits))
        .layer(axum::middleware::map_response(as_problem))
        .with_state(app)
}

/// Longest request target (path and query) answered; longer is 414.
pub const MAX_URI: usize = 8 * 1024;
/// Largest header block (names and values) answered; larger is 431.
pub const MAX_HEADERS: usize = 16 * 1024;
/// Uploads whose bodies may be read at once: each is up to [`MAX_UPLOAD`], so their
/// memory is bounded in total, not only one by one.
pub const CONCURRENT_UPLOADS: usize = 2;

/// Requests beyond what any client of this API needs are answered here, as problems,
/// before routing. (HTTP/1 header blocks beyond the listener's buffer, 64 KiB, and bytes
/// that are not HTTP are answered by the HTTP layer itself, with an empty body.)
async fn within_limits(req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI {
        return Problem::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "Request target too long",
            format!("the path and query are {target} bytes, at most {MAX_URI}; send long inputs in a body (e.g. POST /v1/persons/search)"),
        )
        .into_response();
    }
    let headers: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len())
        .sum();
    if headers > MAX_HEADERS || req.headers().len() > 64 {
        return Problem::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers-too-large",
            "Request headers too large",
            format!(
                "the headers are {headers} bytes in {} fields, at most {MAX_HEADERS} bytes in 64",
                req.headers().len()
            ),
        )
        .into_response();
    }
    next.run(req).await
}

/// Every error is `application/problem+json`, also those the framework answers itself
/// (a body over its limit, a body that is not JSON, a missing content type).
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if is_problem {
        return response;
    }
    let (slug, detail) = match status {
        StatusCode::PAYLOAD_TOO_LARGE => (
            "body-too-large",
            format!(
                "the body is larger than this route takes (uploads: {MAX_UPLOAD} bytes; other routes less); split it"
            ),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported-media-type",
            "this route takes a JSON body with `Content-Type: application/json`".to_owned(),
        ),
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => (
            "bad-body",
            "the request could not be read; see /openapi.json for what this route takes".to_owned(),
        ),
        _ => (
            "http-error",
            "the request was refused by the HTTP layer; see /openapi.json".to_owned(),
        ),
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let mut p = Problem::new(status, slug, title, detail).into_response();
    for (k, v) in response.headers() {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            p.headers_mut().insert(k.clone(), v.clone());
        }
    }
    p
}

/// At most [`CONCURRENT_UPLOADS`] upload bodies are read at a time; another is told to
/// come back, before a byte of its body is read.
async fn one_of_few_uploads(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let Ok(_permit) = app.upload_slots.clone().try_acquire_owned() else {
        return Problem::unavailable(
            "uploads-busy",
            format!("{CONCURRENT_UPLOADS} declaration files are being received; send this one again in a few seconds"),
        )
        .retry_after(5)
        .into_response();
    };
    // A slot is not held forever by a body that trickles in.
    match tokio::time::timeout(UPLOAD_DEADLINE, next.run(req)).await {
        Ok(r) => r,
        Err(_) => Problem::new(
            StatusCode::REQUEST_TIMEOUT,
            "upload-too-slow",
            "Upload too slow",
            format!(
                "the upload did not finish within {} s; send it again (lines already stored are not stored twice)",
                UPLOAD_DEADLINE.as_secs()
            ),
        )
        .into_response(),
    }
}

/// How long an upload may take, body and import together.
pub const UPLOAD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

async fn not_found(uri: Uri) -> Problem {
    Problem::not_found(format!(
        "no route {}; see /openapi.json for the routes this gateway serves",
        uri.path()
    ))
}

async fn method_not_allowed() -> Problem {
    Problem::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method-not-allowed",
        "Method not allowed",
        "this route does not take that method; see /openapi.json",
    )
}

/// Times every routed request and counts it by route template, status and problem type;
/// hands what happened to the watch, whose decisions are in force before the response
/// leaves.
async fn observe(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let actor = req.extensions().get::<Caller>().map(actor_of);
    let start = Instant::now();
    let response = next.run(req).await;
    let slug = response
        .extensions()
        .get::<ProblemType>()
        .map(|ProblemType(s)| s.clone());
    if let Some(s) = &slug {
        app.metrics.problem(s);
    }
    let status = response.status();
    app.metrics
        .observe(&route, status.as_u16(), start.elapsed().as_secs_f64());
    let events = events_of(
        &app,
        actor,
        &route,
        status,
        slug,
        response.extensions().get::<Seen>(),
    );
    if !events.is_empty() {
        let watch = app.watch.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for e in &events {
                watch.observe(e);
            }
        })
        .await;
    }
    response
}

/// What a data handler read, for the watch (in the response's extensions).
#[derive(Debug, Clone)]
pub struct Seen {
    /// Declared purpose.
    pub purpose: Purpose,
    /// Table.
    pub table: Table,
    /// Records read (empty: the lookup found nobody).
    pub subjects: Vec<String>,
    /// The number looked up, when it was one.
    pub lookup: Option<u64>,
    /// Case reference given.
    pub case_ref: Option<String>,
    /// Employer or city of each subject, when it was released (hashed here).
    pub areas: Vec<Option<String>>,
}

fn area_tag(value: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(value.trim().to_lowercase().as_bytes())[..8])
}

/// The events one request makes.
fn events_of(
    app: &App,
    actor: Option<Actor>,
    route: &str,
    status: StatusCode,
    slug: Option<String>,
    seen: Option<&Seen>,
) -> Vec<Event> {
    let Some(actor) = actor else {
        return Vec::new();
    };
    let time_ms = app.gate.clock().now_ms();
    let event = |kind| Event {
        time_ms,
        component: app.watch_component(),
        kind,
    };
    if let Some(s) = seen {
        let access = |subject: Option<String>, area: Option<String>| {
            let public_figure = subject
                .as_deref()
                .is_some_and(|id| app.watch.is_public_figure(id));
            event(Kind::Access(Access {
                actor: actor.clone(),
                purpose: s.purpose.clone(),
                route: route.to_owned(),
                table: s.table,
                subject,
                lookup: s.lookup,
                case_ref: s.case_ref.clone(),
                public_figure,
                area,
            }))
        };
        if s.subjects.is_empty() {
            return vec![access(None, None)];
        }
        return s
            .subjects
            .iter()
            .enumerate()
            .map(|(i, id)| access(Some(id.clone()), s.areas.get(i).cloned().flatten()))
            .collect();
    }
    let Some(reason) = slug else {
        return Vec::new();
    };
    if status == StatusCode::UNAUTHORIZED {
        return vec![event(Kind::AuthFailure(AuthFailure { actor, reason }))];
    }
    let reason = Refusal::from(reason);
    // Refusals by the watch itself are its own decisions at work, not new evidence.
    if reason.is_a_decision_at_work() {
        return Vec::new();
    }
    vec![event(Kind::Denied(Denied {
        actor,
        purpose: None,
        route: route.to_owned(),
        reason,
    }))]
}

/// Longest case reference accepted.
const MAX_CASE: usize = 64;

/// A case reference (a counter ticket, an investigation number): printable, short.
fn case_ref(c: Option<&str>) -> Result<Option<String>, Problem> {
    match c.map(str::trim) {
        None | Some("") => Ok(None),
        Some(c) if c.len() <= MAX_CASE && c.chars().all(|ch| ch.is_ascii_graphic()) => {
            Ok(Some(c.to_owned()))
        }
        Some(_) => Err(Problem::bad_request(
            "bad-query",
            format!("case: up to {MAX_CASE} printable ASCII characters without spaces"),
        )),
    }
}

/// The area of a released person (employer, else city), for the breadth detector.
fn area_of(fields: &BTreeMap<String, String>) -> Option<String> {
    fields
        .get("employer")
        .or_else(|| fields.get("city"))
        .filter(|v| !v.is_empty())
        .map(|v| area_tag(v))
}

fn with_seen(mut r: Response, seen: Seen) -> Response {
    r.extensions_mut().insert(seen);
    r
}

/// What a read handler's blocking part returns: the response, the subjects read and their
/// areas.
type ReadOutcome = (Response, Vec<String>, Vec<Option<String>>);

/// The handler's answer with what it read attached; a lookup that found nobody (404) is
/// evidence too (guessing numbers).
fn answered(result: Result<ReadOutcome, Problem>, mut seen: Seen) -> Result<Response, Problem> {
    match result {
        Ok((r, subjects, areas)) => {
            seen.subjects = subjects;
            seen.areas = areas;
            Ok(with_seen(r, seen))
        }
        Err(p) if p.slug() == "not-found" => Ok(with_seen(p.into_response(), seen)),
        Err(p) => Err(p),
    }
}

fn seen(admitted: &Admitted, table: Table, lookup: Option<u64>, case: Option<String>) -> Seen {
    Seen {
        purpose: admitted.purpose.clone(),
        table,
        subjects: Vec::new(),
        lookup,
        case_ref: case,
        areas: Vec::new(),
    }
}

fn read_query<Q: serde::de::DeserializeOwned + Default>(uri: &Uri) -> Result<Q, Problem> {
    if uri.query().is_none() {
        return Ok(Q::default());
    }
    Query::<Q>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| Problem::bad_request("bad-query", format!("query string: {}", e.body_text())))
}

/// Turns a vault error into the problem the caller sees; remembers quarantines.
/// A number in a path is written as the fund writes it: exactly `len` digits. A program
/// that sends spaces or separators has a bug that should surface, not be guessed around
/// (the CLI, for people at a counter, is lenient).
fn exact_digits(v: &str, len: usize, what: &str) -> Result<(), Problem> {
    if v.len() == len && v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "bad-value",
            format!("a {what} in a path is exactly {len} digits, with no space or separator"),
        ))
    }
}

fn vault_problem(gate: &Gate, e: VaultError) -> Problem {
    match e {
        VaultError::Read(AuditFirstError::Quorum(q)) => match q {
            QuorumError::Refused { denial, .. } => denial_problem(gate, denial),
            QuorumError::NotEnoughCustodians { .. } => {
                Problem::unavailable("custodians-unavailable", format!("{q}; retry shortly"))
            }
            QuorumError::UnknownRecord { .. } => {
                Problem::not_found("the record is not in the store")
            }
            other => Problem::internal(format!("the read failed: {other}")),
        },
        VaultError::Read(AuditFirstError::AuditUnavailable(e)) => Problem::unavailable(
            "audit-unavailable",
            format!(
                "the access could not be recorded in the audit log, so nothing was released ({e})"
            ),
        ),
        VaultError::Read(other) => Problem::internal(other.to_string()),
        VaultError::UnknownField { .. } => Problem::bad_request("unknown-field", e.to_string()),
        VaultError::BadValue { .. } => Problem::bad_request("bad-value", e.to_string()),
        VaultError::Store(e) => {
            Problem::unavailable("store-unavailable", format!("the store failed: {e}"))
        }
    }
}

fn denial_problem(gate: &Gate, denial: Denial) -> Problem {
    let detail = format!("a custodian refused: {denial}");
    match denial {
        Denial::Quarantined { identity, until } => {
            gate.note_quarantine(&identity, until);
            Problem::forbidden("quarantined", detail)
        }
        Denial::QuotaExceeded { window_secs, .. } => Problem::quota(detail, window_secs.min(3600)),
        Denial::ClassNotAllowed { .. } => Problem::forbidden("class-not-allowed", detail),
        Denial::PurposeNotAllowed { .. } => Problem::forbidden("purpose-not-allowed", detail),
        Denial::UnknownRole { .. } => Problem::forbidden("role-unknown", detail),
        Denial::Malformed { .. } => Problem::bad_request("malformed", detail),
        Denial::Unauthenticated { .. } => {
            Problem::unauthenticated("custodian-unauthenticated", detail)
        }
        _ => Problem::forbidden("refused", detail),
    }
}

fn reader(admitted: &Admitted, token: &str) -> Reader {
    Reader {
        who: Requester {
            identity: admitted.claims.sub.clone(),
            role: admitted.claims.role.clone(),
        },
        institution: admitted.claims.inst.clone(),
        purpose: admitted.purpose.clone(),
        token: Some(Bearer(token.to_owned())),
    }
}

/// The person fields a request names, or the role's default (identity fields it may read).
fn person_fields(
    gate: &Gate,
    role: &str,
    list: Option<&str>,
) -> Result<Vec<(&'static str, &'static Class)>, Problem> {
    match list.map(str::trim).filter(|l| !l.is_empty()) {
        Some(l) => l
            .split(',')
            .map(|f| {
                let f = f.trim();
                let class = person_field_class(f)
                    .map_err(|e| Problem::bad_request("unknown-field", e.to_string()))?;
                let name = PERSON_FIELDS
                    .iter()
                    .find(|(n, _)| *n == f)
                    .map(|(n, _)| *n)
                    .unwrap_or("cnss");
                Ok((name, class))
            })
            .collect(),
        None => {
            let allowed = gate.policy().roles.get(role).and_then(|r| r.fields.clone());
            Ok(PERSON_FIELDS
                .iter()
                .filter(|(_, c)| *c == Class::IDENTITY)
                .filter(|(n, _)| allowed.as_ref().is_none_or(|a| a.contains(*n)))
                .map(|(n, c)| (*n, c))
                .collect())
        }
    }
}

/// Runs blocking vault work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Problem::internal(format!("a read task failed: {e}")))?
}

/// Exactly one record, counted against the quotas; a miss costs quota too (probing is reading).
fn one_counted(
    gate: &Gate,
    admitted: &Admitted,
    ids: Vec<String>,
    miss_key: String,
    what: &str,
) -> Result<String, Problem> {
    match ids.len() {
        0 => {
            gate.count_subject(&admitted.claims, &miss_key)?;
            Err(Problem::not_found(format!(
                "no {what} with this number in the register"
            )))
        }
        1 => {
            let id = ids.into_iter().next().unwrap_or_default();
            gate.count_subject(&admitted.claims, &id)?;
            Ok(id)
        }
        n => Err(Problem::new(
            StatusCode::CONFLICT,
            "duplicate",
            "Duplicate register entry",
            format!("{n} records carry this number; the register has a duplicate to resolve"),
        )),
    }
}

#[utoipa::path(
    get,
    path = "/v1/persons/{cnss}",
    summary = "A person's fields",
    security(("bearer" = [])),
    params(
        ("cnss" = String, Path, pattern = "^[0-9]{9}$", description = "CNSS number"),
        PersonQuery,
        CosignHeader
    ),
    responses((status = 200, description = "OK", body = PersonBody), ReadErrors)
)]
pub(crate) async fn person(
    State(app): State<Shared>,
    Authed { claims, token }: Authed,
    Path(cnss): Path<String>,
    uri: Uri,
) -> Result<Response, Problem> {
    exact_digits(&cnss, 9, "CNSS number")?;
    let q: PersonQuery = read_query(&uri)?;
    let case = case_ref(q.case.as_deref())?;
    let fields = person_fields(&app.gate, &claims.role, q.fields.as_deref())?;
    let admitted = app.gate.admit(claims, q.purpose.as_deref(), &fields)?;
    let seen = seen(&admitted, Table::Persons, cnss.parse().ok(), case);
    let a = app.clone();
    let names: Vec<&'static str> = fields.iter().map(|(n, _)| *n).collect();
    let result = blocking(move || {
        let ids = a
            .vault
            .by_cnss(&cnss)
            .map_err(|e| vault_problem(&a.gate, e))?;
        let id = one_counted(&a.gate, &admitted, ids, format!("cnss:{cnss}"), "person")?;
        let r = reader(&admitted, &token);
        let mut out = a
            .vault
            .person(&r, &id, &names)
            .map_err(|e| vault_problem(&a.gate, e))?;
        let area = area_of(&out);
        admitted.mask(&mut out);
        let masked: Vec<String> = admitted.masks.keys().cloned().collect();
        let body = Json(PersonBody {
            record_id: id.clone(),
            fields: out,
            masked,
        });
        Ok((body.into_response(), vec![id], vec![area]))
    })
    .await;
    answered(result, seen)
}

#[utoipa::path(
    get,
    path = "/v1/persons/{cnss}/declarations",
    summary = "A person's salary declarations, oldest first",
    security(("bearer" = [])),
    params(
        ("cnss" = String, Path, pattern = "^[0-9]{9}$", description = "CNSS number"),
        DeclarationsQuery,
        CosignHeader
    ),
    responses((status = 200, description = "OK", body = DeclarationsBody), ReadErrors)
)]
pub(crate) async fn declarations(
    State(app): State<Shared>,
    Authed { claims, token }: Authed,
    Path(cnss): Path<String>,
    uri: Uri,
) -> Result<Response, Problem> {
    exact_digits(&cnss, 9, "CNSS number")?;
    let q: DeclarationsQuery = read_query(&uri)?;
    if q.fields.is_some() {
        return Err(Problem::bad_request(
            "bad-query",
            format!(
                "declarations always carry: {}",
                DECLARATION_FIELDS.join(", ")
            ),
        ));
    }
    let financial = Class::FINANCIAL;
    let fields: Vec<(&str, &Class)> = DECLARATION_FIELDS
        .iter()
        .map(|f| (*f, &financial))
        .collect();
    let admitted = app.gate.admit(claims, q.purpose.as_deref(), &fields)?;
    let seen = seen(
        &admitted,
        Table::Persons,
        cnss.parse().ok(),
        case_ref(q.case.as_deref())?,
    );
    let a = app.clone();
    let result = blocking(move || {
        let ids = a
            .vault
            .by_cnss(&cnss)
            .map_err(|e| vault_problem(&a.gate, e))?;
        let id = one_counted(&a.gate, &admitted, ids, format!("cnss:{cnss}"), "person")?;
        let rows = a
            .vault
            .history(&reader(&admitted, &token), &id)
            .map_err(|e| vault_problem(&a.gate, e))?;
        let body = Json(DeclarationsBody {
            record_id: id.clone(),
            declarations: rows,
        });
        Ok((body.into_response(), vec![id], vec![None]))
    })
    .await;
    answered(result, seen)
}

/// Most matches a search returns (a name and birth date are nearly unique).
const MAX_MATCHES: usize = 10;

#[utoipa::path(
    post,
    path = "/v1/persons/search",
    summary = "Persons by CIN, or by name and birth date (through blind indexes)",
    security(("bearer" = [])),
    request_body = SearchBody,
    responses((status = 200, description = "OK", body = SearchResultBody), ReadErrors)
)]
pub(crate) async fn search(
    State(app): State<Shared>,
    Authed { claims, token }: Authed,
    body: Bytes,
) -> Result<Response, Problem> {
    let b: SearchBody = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request("bad-body", format!("request body: {e}")))?;
    let list = b.fields.as_ref().map(|f| f.join(","));
    let fields = person_fields(&app.gate, &claims.role, list.as_deref())?;
    let admitted = app.gate.admit(claims, b.purpose.as_deref(), &fields)?;
    let seen = seen(
        &admitted,
        Table::Persons,
        search_lookup(&b),
        case_ref(b.case.as_deref())?,
    );
    let names: Vec<&'static str> = fields.iter().map(|(n, _)| *n).collect();
    let a = app.clone();
    let result = blocking(move || {
        let (ids, key) = match (&b.cin, &b.name, &b.birth_date) {
            (Some(cin), None, None) => (a.vault.by_cin(cin), format!("cin:{cin}")),
            (None, Some(n), Some(d)) => (a.vault.by_name(n, d), format!("name:{n}|{d}")),
            _ => {
                return Err(Problem::bad_request(
                    "bad-body",
                    "give either `cin`, or both `name` and `birth_date` (YYYY-MM-DD)",
                ));
            }
        };
        let ids = ids.map_err(|e| vault_problem(&a.gate, e))?;
        if ids.is_empty() {
            a.gate.count_subject(&admitted.claims, &key)?;
        }
        let r = reader(&admitted, &token);
        let mut out = Vec::new();
        for id in ids.into_iter().take(MAX_MATCHES) {
            a.gate.count_subject(&admitted.claims, &id)?;
            let f = a
                .vault
                .person(&r, &id, &names)
                .map_err(|e| vault_problem(&a.gate, e))?;
            out.push((id, f));
        }
        let masked: Vec<String> = admitted.masks.keys().cloned().collect();
        let ids: Vec<String> = out.iter().map(|(id, _)| id.clone()).collect();
        let areas: Vec<Option<String>> = out.iter().map(|(_, f)| area_of(f)).collect();
        let matches: Vec<SearchMatch> = out
            .into_iter()
            .map(|(record_id, mut fields)| {
                admitted.mask(&mut fields);
                SearchMatch { record_id, fields }
            })
            .collect();
        let body = Json(SearchResultBody { matches, masked });
        Ok((body.into_response(), ids, areas))
    })
    .await;
    answered(result, seen)
}

/// A search as the enumeration detector sees it: a walk through CINs, or guesses at
/// names and birth dates that mostly miss, are walks through the register like any other.
fn search_lookup(b: &SearchBody) -> Option<u64> {
    match (&b.cin, &b.name, &b.birth_date) {
        (Some(cin), None, None) => ribat_crypto::blind_index::normalise_cin(cin)
            .ok()
            .and_then(|c| ribat_detect::event::cin_lookup(&c)),
        (None, Some(n), Some(d)) => {
            use sha2::Digest;
            let normal = ribat_crypto::blind_index::normalise_name(n);
            let h = sha2::Sha256::digest(format!("{normal}|{}", d.trim()).as_bytes());
            let mut first = [0u8; 8];
            first.copy_from_slice(&h[..8]);
            Some(ribat_detect::event::name_lookup(first))
        }
        _ => None,
    }
}

#[utoipa::path(
    get,
    path = "/v1/employers/{affiliation}",
    summary = "An employer's fields",
    security(("bearer" = [])),
    params(
        ("affiliation" = String, Path, pattern = "^[0-9]{7}$", description = "Affiliation number"),
        EmployerQuery,
        CosignHeader
    ),
    responses((status = 200, description = "OK", body = EmployerBody), ReadErrors)
)]
pub(crate) async fn employer(
    State(app): State<Shared>,
    Authed { claims, token }: Authed,
    Path(affiliation): Path<String>,
    uri: Uri,
) -> Result<Response, Problem> {
    exact_digits(&affiliation, 7, "affiliation number")?;
    let q: EmployerQuery = read_query(&uri)?;
    let names: Vec<&'static str> =
        match q.fields.as_deref().map(str::trim).filter(|l| !l.is_empty()) {
            None => EMPLOYER_FIELDS.to_vec(),
            Some(l) => l
                .split(',')
                .map(|f| {
                    EMPLOYER_FIELDS
                        .iter()
                        .find(|n| **n == f.trim())
                        .copied()
                        .ok_or_else(|| {
                            Problem::bad_request(
                                "unknown-field",
                                format!(
                                    "unknown employer field `{}`; known: {}",
                                    f.trim(),
                                    EMPLOYER_FIELDS.join(", ")
                                ),
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
    // Employer fields are the employer's, not a person's: the person-field list of a
    // role does not apply, classes and purposes do.
    let mut admitted = app.gate.admit(claims, q.purpose.as_deref(), &[])?;
    if let Some(role) = app.gate.policy().roles.get(&admitted.claims.role)
        && !role.classes.contains("identity")
    {
        return Err(Problem::forbidden(
            "class-not-allowed",
            format!(
                "role `{}` may not read class `identity`",
                admitted.claims.role
            ),
        ));
    }
    admitted.masks.clear();
    let seen = seen(
        &admitted,
        Table::Employers,
        affiliation.parse().ok(),
        case_ref(q.case.as_deref())?,
    );
    let a = app.clone();
    let result = blocking(move || {
        let ids = a
            .vault
            .by_affiliation(&affiliation)
            .map_err(|e| vault_problem(&a.gate, e))?;
        let id = one_counted(
            &a.gate,
            &admitted,
            ids,
            format!("affiliation:{affiliation}"),
            "employer",
        )?;
        let out = a
            .vault
            .employer(&reader(&admitted, &token), &id, &names)
            .map_err(|e| vault_problem(&a.gate, e))?;
        let area = Some(area_tag(&id));
        let body = Json(EmployerBody {
            record_id: id.clone(),
            fields: out,
        });
        Ok((body.into_response(), vec![id], vec![area]))
    })
    .await;
    answered(result, seen)
}

/// Largest e-BDS file accepted in one upload (a large employer's month is a few MB).
pub const MAX_UPLOAD: usize = 64 * 1024 * 1024;

/// The purpose under which employers upload their declarations.
pub const PURPOSE_UPLOAD: &str = "declaration-upload";

/// `POST /v1/declarations?purpose=declaration-upload`, body an e-BDS file: an employer's
/// monthly salary declaration. Only for the employer the certificate names (its
/// institution is its affiliation number); stored durably, then validated, sealed and
/// stored like an import. Rejected lines are named by number and reason, never by value.
#[utoipa::path(
    post,
    path = "/v1/declarations",
    summary = "An employer uploads its monthly e-BDS declaration file (its own affiliation only)",
    security(("bearer" = [])),
    params(UploadQuery),
    request_body(content = String, content_type = "text/plain"),
    responses(
        (status = 201, description = "Stored (lines refused are listed by number and reason)", body = UploadBody),
        TokenErrors,
        (status = 400, description = "Missing or wrong purpose, malformed query", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an employer, or the file declares another employer", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "File larger than 64 MiB", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a valid e-BDS file (line and reason given)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The store or the upload directory failed", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn upload(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    uri: Uri,
    body: Bytes,
) -> Result<Response, Problem> {
    let q: UploadQuery = read_query(&uri)?;
    if q.fields.is_some() {
        return Err(Problem::bad_request(
            "bad-query",
            "an upload takes no `fields`",
        ));
    }
    // The role's own purposes first (a missing purpose is 400, a foreign one 403); then
    // this route takes one purpose only.
    let admitted = app.gate.admit(claims, q.purpose.as_deref(), &[])?;
    if admitted.purpose != PURPOSE_UPLOAD {
        return Err(Problem::forbidden(
            "purpose-not-allowed",
            format!(
                "declarations are uploaded under purpose={PURPOSE_UPLOAD}, not `{}`",
                admitted.purpose
            ),
        ));
    }
    let parsed = ribat_import::ebds::parse("upload", &body).map_err(|e| {
        Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ebds-refused",
            "Declaration file refused",
            format!("the e-BDS file was refused, nothing of it stored: {e}; correct the file and upload it again"),
        )
    })?;
    if parsed.header.affiliation != admitted.claims.inst {
        return Err(Problem::forbidden(
            "affiliation-mismatch",
            format!(
                "this certificate uploads for employer {} only; the file declares another affiliation number",
                admitted.claims.inst
            ),
        ));
    }
    let name = ribat_import::ebds::file_name(&parsed.header.affiliation, &parsed.header.period);
    let file = name.clone();
    let a = app.clone();
    let summary = blocking(move || {
        let dir = a.uploads.join(&parsed.header.affiliation);
        std::fs::create_dir_all(&dir).map_err(|e| {
            Problem::unavailable("upload-unavailable", format!("cannot keep the upload: {e}"))
        })?;
        let path = dir.join(&name);
        ribat_identity::ca::write_file(&path, &body, true).map_err(|e| {
            Problem::unavailable("upload-unavailable", format!("cannot keep the upload: {e}"))
        })?;
        let sealer =
            ribat_import::records::RecordSealer::new(a.vault.reader.group(), &a.vault.index)
                .map_err(|e| Problem::internal(format!("cannot seal: {e}")))?;
        let importer =
            ribat_import::importer::Importer::new(a.vault.store.as_ref(), &sealer, 1, 5_000);
        importer.run(&[path], &mut |_| {}).map_err(|e| {
            Problem::unavailable("store-unavailable", format!("the import failed: {e}"))
        })
    })
    .await?;
    // The file parsed but names persons the fund does not know: refused whole, as the
    // importer did (one file is one declaration).
    if let Some(first) = summary.rejects.first() {
        return Err(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ebds-refused",
            "Declaration file refused",
            format!(
                "the e-BDS file was refused, nothing of it stored: line {}: {} ({} line(s) in all); register the persons first, then upload it again",
                first.line,
                first.reason.trim_start_matches("file refused: "),
                summary.rejects.len()
            ),
        ));
    }
    let rejected: Vec<RejectedLine> = summary
        .rejects
        .iter()
        .map(|r| RejectedLine {
            line: r.line,
            reason: r.reason.clone(),
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(UploadBody {
            file,
            stored: summary.declarations.stored,
            already_stored: summary.declarations.already,
            rejected,
        }),
    )
        .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/token",
    summary = "A token for the holder of the client certificate",
    request_body(content = Option<TokenBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = TokenIssued),
        (status = 400, description = "Malformed body or lifetime out of range", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "This gateway does not issue tokens", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn token(
    State(app): State<Shared>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Result<Response, Problem> {
    let issuer = app.issuer.as_ref().ok_or_else(|| {
        Problem::unavailable(
            "token-service-off",
            "this gateway does not issue tokens; ask the deployment's token service",
        )
    })?;
    let b: TokenBody = if body.iter().all(u8::is_ascii_whitespace) {
        TokenBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| Problem::bad_request("bad-body", format!("request body: {e}")))?
    };
    let ttl = b
        .ttl()
        .map_err(|why| Problem::bad_request("bad-body", why))?;
    let (token, claims) = issuer
        .issue(&caller.peer, &app.audience, app.gate.now_utc(), ttl)
        .map_err(|e| Problem::internal(format!("cannot issue a token: {e}")))?;
    Ok(Json(TokenIssued {
        token,
        token_type: TokenType::Bearer,
        expires_at: claims.exp,
        identity: claims.sub,
        role: claims.role.to_string(),
    })
    .into_response())
}

/// Roles that see the decisions.
pub const DECISION_READERS: &[&str] = &["security", "auditor"];
/// Roles that approve releasing a decision.
pub const DECISION_RELEASERS: &[&str] = &["security"];

#[utoipa::path(
    get,
    path = "/v1/decisions",
    summary = "The detectors' signed decisions and those in force (security team, auditors)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = DecisionsBody),
        TokenErrors,
        (status = 403, description = "Not a security or auditor role; or this identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Essential services only", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn decisions_list(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
) -> Result<Response, Problem> {
    require_role(&claims, DECISION_READERS, "reading decisions")?;
    let in_force = app.watch.in_force();
    Ok(Json(DecisionsBody {
        key_id: app.watch.key_id(),
        in_force,
        decisions: app.watch.decisions(),
    })
    .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/decisions/{id}/release",
    summary = "One administrator's approval to lift a decision early; two distinct administrators release it",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{16}$", description = "Decision id")),
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "OK", body = ReleaseBodyState),
        TokenErrors,
        (status = 400, description = "Malformed body or no reason given", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a security role; or this identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such decision in force", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The same administrator again, or the target approving its own release", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Essential services only", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn decision_release(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    require_role(&claims, DECISION_RELEASERS, "releasing a decision")?;
    let b: ReleaseBody = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request("bad-body", format!("request body: {e}")))?;
    if b.reason.trim().is_empty() || b.reason.len() > 500 {
        return Err(Problem::bad_request(
            "bad-body",
            "reason: say why the decision is lifted (1 to 500 characters)",
        ));
    }
    let watch = app.watch.clone();
    let admin = claims.sub.clone();
    let state = blocking(move || {
        watch
            .approve_release(&id, &admin, b.reason.trim())
            .map_err(|e| match e {
                ribat_detect::decision::DecisionError::Unknown(_) => {
                    Problem::not_found(e.to_string())
                }
                other => Problem::new(
                    StatusCode::CONFLICT,
                    "release-refused",
                    "Release refused",
                    other.to_string(),
                ),
            })
    })
    .await?;
    let (state, approvals) = match state {
        ribat_detect::decision::ReleaseState::Pending { approvals } => {
            (ReleaseWord::Pending, approvals)
        }
        ribat_detect::decision::ReleaseState::Released { approvals } => {
            (ReleaseWord::Released, approvals)
        }
    };
    Ok(Json(ReleaseBodyState {
        state,
        approvals,
        needed: ribat_detect::decision::RELEASE_APPROVALS,
    })
    .into_response())
}

#[utoipa::path(
    get,
    path = "/healthz",
    summary = "Liveness: the audit log can record",
    responses(
        (status = 200, description = "OK", body = HealthBody),
        (status = 503, description = "The audit log has failed; no read is served", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn healthz(State(app): State<Shared>) -> Result<Response, Problem> {
    let n = app.vault.audit.log().size().map_err(|e| {
        Problem::unavailable(
            "audit-unavailable",
            format!("the audit log has failed: {e}"),
        )
    })?;
    Ok(Json(HealthBody {
        status: "ok",
        audit_entries: n,
    })
    .into_response())
}

async fn openapi(State(app): State<Shared>) -> Response {
    let purposes: std::collections::BTreeSet<&str> = app
        .gate
        .policy()
        .roles
        .values()
        .flat_map(|r| r.purposes.iter().map(Purpose::as_str))
        .collect();
    let purposes: Vec<&str> = purposes.into_iter().collect();
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::document(&purposes).to_string(),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/metrics",
    summary = "Prometheus metrics (no personal data in labels)",
    responses((status = 200, description = "OK", body = String, content_type = "text/plain"))
)]
pub(crate) async fn metrics(State(app): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(&app.tls),
    )
        .into_response()
}
