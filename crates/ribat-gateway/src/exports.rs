//! Bulk exports to partners through the API: filed, approved and run by `security`
//! administrators, each acting with their own certificate (the token is bound to it, so
//! an approval is as good as the key that made it); fetched by the recipient alone, with
//! its own certificate.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/exports` | security | files a request: recipient, purpose, CNSS numbers |
//! | `GET /v1/exports/{id}` | security, auditor, the recipient | where it stands |
//! | `POST /v1/exports/{id}/approve` | security | one approval (two distinct, not the recipient) |
//! | `POST /v1/exports/{id}/run` | security | reads, canaries, sealed manifest, the file |
//! | `GET /v1/exports/{id}/file` | the recipient | the CSV, each fetch recorded |
//!
//! The work itself (quorum reads, canaries, the sealed manifest) is the node's: the
//! gateway reaches it through [`ExportDesk`], which the node binary provides.

use crate::app::{Authed, require_role};
use crate::body::{ExportBody, ExportId, TokenErrors};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ribat_net::problem::Problem;
use std::sync::Arc;

pub use crate::desk::{
    EXPORT_ADMINS, EXPORT_READERS, ExportDesk, ExportError, ExportState, MAX_EXPORT_PERSONS,
};

type Shared = Arc<crate::app::App>;

fn desk(app: &Shared) -> Result<Arc<dyn ExportDesk>, Problem> {
    app.exports.clone().ok_or_else(|| {
        Problem::not_found(
            "this gateway has no export desk (exports are run by the node that holds the vault)",
        )
    })
}

fn valid_id(id: &str) -> Result<(), Problem> {
    if id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(Problem::not_found(format!(
            "no export {id:?}: export ids are 16 hex digits"
        )))
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ExportError> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Problem::internal(format!("an export task failed: {e}")))?
        .map_err(Problem::from)
}

fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request("bad-body", format!("request body: {e}")))
}

/// `POST /v1/exports`.
#[utoipa::path(
    post,
    path = "/v1/exports",
    summary = "Files a bulk export to a partner (security administrators); it runs after two distinct administrators approve it",
    security(("bearer" = [])),
    request_body = ExportBody,
    responses(
        (status = 201, description = "Filed", body = ExportState),
        TokenErrors,
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a security role; or this identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "This gateway has no export desk", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The recipient is not a partner identity, or a number is not a CNSS number", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Essential services only, or the node failed", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn file_request(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    body: Bytes,
) -> Result<Response, Problem> {
    require_role(&claims, EXPORT_ADMINS, "filing an export")?;
    let desk = desk(&app)?;
    let b: ExportBody = json_body(&body)?;
    let short = |s: &str| !s.trim().is_empty() && s.chars().count() <= 200;
    if !short(&b.recipient) || !short(&b.purpose) {
        return Err(Problem::bad_request(
            "bad-body",
            "recipient and purpose: 1 to 200 characters each",
        ));
    }
    if b.cnss.is_empty() || b.cnss.len() > MAX_EXPORT_PERSONS {
        return Err(Problem::bad_request(
            "bad-body",
            format!("cnss: 1 to {MAX_EXPORT_PERSONS} numbers"),
        ));
    }
    let by = claims.sub.clone();
    let state = blocking(move || desk.request(&by, &b.recipient, &b.purpose, b.cnss)).await?;
    Ok((StatusCode::CREATED, axum::Json(state)).into_response())
}

/// `GET /v1/exports/{id}`.
#[utoipa::path(
    get,
    path = "/v1/exports/{id}",
    summary = "Where an export stands (security, auditors, and its recipient); never the persons it names",
    security(("bearer" = [])),
    params(ExportId),
    responses(
        (status = 200, description = "OK", body = ExportState),
        TokenErrors,
        (status = 403, description = "This identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such export (or not yours to see)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Essential services only", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn show(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    let desk = desk(&app)?;
    let state = blocking(move || desk.state(&id)).await?;
    // The recipient may see its own; anybody else needs a reading role. A stranger is
    // told the same as for an export that does not exist.
    if state.recipient != claims.sub && !EXPORT_READERS.contains(&claims.role.as_str()) {
        return Err(Problem::not_found(format!("no export {}", state.id)));
    }
    Ok(axum::Json(state).into_response())
}

/// `POST /v1/exports/{id}/approve`.
#[utoipa::path(
    post,
    path = "/v1/exports/{id}/approve",
    summary = "One security administrator's approval, made with their own certificate; two distinct ones, neither the recipient",
    security(("bearer" = [])),
    params(ExportId),
    responses(
        (status = 200, description = "OK", body = ExportState),
        TokenErrors,
        (status = 403, description = "Not a security role; or this identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such export", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Already ran, or this administrator already approved", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Essential services only", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn approve(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    require_role(&claims, EXPORT_ADMINS, "approving an export")?;
    valid_id(&id)?;
    let desk = desk(&app)?;
    let admin = claims.sub.clone();
    let state = blocking(move || desk.approve(&id, &admin)).await?;
    Ok(axum::Json(state).into_response())
}

/// `POST /v1/exports/{id}/run`.
#[utoipa::path(
    post,
    path = "/v1/exports/{id}/run",
    summary = "Runs an approved export: every person read through the custodians as export/RECIPIENT (audited), canaries added, the manifest sealed",
    security(("bearer" = [])),
    params(ExportId),
    responses(
        (status = 200, description = "OK", body = ExportState),
        TokenErrors,
        (status = 403, description = "Not a security role; or this identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such export", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Fewer than two approvals, or it already ran", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Essential services only, or the custodians or the store failed", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn run(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    require_role(&claims, EXPORT_ADMINS, "running an export")?;
    valid_id(&id)?;
    let desk = desk(&app)?;
    let state = blocking(move || desk.run(&id)).await?;
    Ok(axum::Json(state).into_response())
}

/// `GET /v1/exports/{id}/file`.
#[utoipa::path(
    get,
    path = "/v1/exports/{id}/file",
    summary = "The export's CSV, for its recipient only; every fetch is recorded",
    security(("bearer" = [])),
    params(ExportId),
    responses(
        (status = 200, description = "OK", body = String, content_type = "text/csv"),
        TokenErrors,
        (status = 403, description = "An administrator, not the recipient; or this identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such export (or not yours)", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "It has not run yet", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Essential services only", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn fetch(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    valid_id(&id)?;
    let desk = desk(&app)?;
    let d = desk.clone();
    let probe = id.clone();
    let state = blocking(move || d.state(&probe)).await?;
    if state.recipient != claims.sub {
        // Only the recipient takes the file: not even an administrator, so that every
        // copy outside the vault is the one the canaries were made for.
        return Err(if EXPORT_READERS.contains(&claims.role.as_str()) {
            Problem::forbidden(
                "not-the-recipient",
                format!("export {} is fetched by its recipient only", state.id),
            )
        } else {
            Problem::not_found(format!("no export {}", state.id))
        });
    }
    let who = claims.sub.clone();
    let bytes = blocking(move || desk.fetch(&id, &who)).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        bytes,
    )
        .into_response())
}
