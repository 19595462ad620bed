//! The gateway's HTTP API (JSON over mTLS): the router and the HTTP layer every request
//! meets before a handler (limits on the target, headers and uploads, problem documents for
//! every error, fallbacks). Every data route: token bound to the certificate → the gate
//! (purpose, classes, fields, quarantine, quota of distinct subjects) → the vault
//! (custodians check again; audit before plaintext) → masks → JSON.
//!
//! | route | what | handler |
//! |---|---|---|
//! | `POST /v1/token` | a token for the certificate's holder | `service` |
//! | `GET /v1/persons/{cnss}` | a person's fields | `reads` |
//! | `GET /v1/persons/{cnss}/declarations` | a person's declaration history | `reads` |
//! | `POST /v1/persons/search` | persons by CIN, or by name and birth date | `reads` |
//! | `GET /v1/employers/{affiliation}` | an employer's fields | `reads` |
//! | `POST /v1/declarations` | an employer's monthly e-BDS file | `upload` |
//! | `POST /v1/audit/accesses` | who accessed a person's record, with proofs (citizen portal, auditors) | `accesses` |
//! | `GET /v1/decisions` | the watch's decisions (security team, auditors) | `service` |
//! | `POST /v1/decisions/{id}/release` | one administrator's approval to lift a decision | `service` |
//! | `/v1/exports…` | bulk exports to partners | [`crate::exports`] |
//! | `GET /healthz`, `/openapi.json`, `/metrics` | operations | `service` |
//! | `/console…` | the security team's pages (HTML, not part of the API document) | `console` |
//!
//! Every routed request is also an event for the watch (`seen`): what a handler read, or
//! the problem it answered; a decision the detectors reach is in force before the response
//! that triggered it leaves.

use crate::app::Shared;
pub use crate::app::{App, Authed, COSIGN_HEADER};
use crate::reads::{declarations, employer, person, search};
use crate::seen::observe;
use crate::service::{decision_release, decisions_list, healthz, metrics, token};
use crate::upload::upload;
pub use crate::upload::{MAX_UPLOAD, PURPOSE_UPLOAD};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ribat_net::problem::Problem;

/// Every route the router answers, in the OpenAPI document (`/openapi.json` serves the
/// document itself and is not in it).
pub const DOCUMENTED_ROUTES: &[&str] = &[
    "/v1/token",
    "/v1/persons/search",
    "/v1/persons/{cnss}",
    "/v1/persons/{cnss}/declarations",
    "/v1/employers/{affiliation}",
    "/v1/declarations",
    "/v1/audit/accesses",
    "/v1/decisions",
    "/v1/decisions/{id}/release",
    "/v1/exports",
    "/v1/exports/{id}",
    "/v1/exports/{id}/approve",
    "/v1/exports/{id}/run",
    "/v1/exports/{id}/file",
    "/v1/intake",
    "/v1/intake/{id}",
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
        .route("/v1/audit/accesses", post(crate::accesses::accesses))
        .route("/v1/decisions", get(decisions_list))
        .route("/v1/decisions/{id}/release", post(decision_release))
        .route("/v1/exports", post(crate::exports::file_request))
        .route("/v1/exports/{id}", get(crate::exports::show))
        .route("/v1/exports/{id}/approve", post(crate::exports::approve))
        .route("/v1/exports/{id}/run", post(crate::exports::run))
        .route("/v1/exports/{id}/file", get(crate::exports::fetch))
        .route(
            "/v1/intake",
            // The route streams its body to disk and counts it against its own limit.
            post(crate::intake::send).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/v1/intake/{id}", get(crate::intake::show))
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(crate::openapi::serve))
        .route("/metrics", get(metrics))
        .merge(crate::console::routes())
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
/// (a body over its limit, a body that is not JSON, a missing content type) — but the
/// console's pages, which say what is wrong to a person, in HTML.
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes().starts_with(b"application/problem+json")
                || v.as_bytes().starts_with(b"text/html")
        });
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
