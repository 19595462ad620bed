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

use crate::api::{Authed, require_role};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ribat_net::problem::Problem;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Roles that file, approve and run exports.
pub const EXPORT_ADMINS: &[&str] = &["security"];
/// Roles that may look at an export's state (besides its recipient).
pub const EXPORT_READERS: &[&str] = &["security", "auditor"];
/// The most persons one request may ask for.
pub const MAX_EXPORT_PERSONS: usize = 3_000_000;

/// Where an export stands; never the persons it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportState {
    /// Export id (16 hex digits).
    pub id: String,
    /// The partner it goes to.
    pub recipient: String,
    /// Why.
    pub purpose: String,
    /// How many persons were asked for.
    pub persons: usize,
    /// Who filed it.
    pub requested_by: String,
    /// Administrators who approved, in order.
    pub approvals: Vec<String>,
    /// Approvals it needs before it runs.
    pub needed: usize,
    /// When it ran (Unix seconds), once it has.
    pub ran_at: Option<i64>,
    /// Rows of the file, canaries included, once it ran.
    pub rows: Option<usize>,
    /// SHA-256 of the file, hex, once it ran.
    pub file_sha256: Option<String>,
    /// Each fetch of the file: who, when (Unix seconds).
    pub fetched: Vec<(String, i64)>,
}

/// Why an export operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// No such export.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed (bad numbers, unknown recipient…).
    #[error("{0}")]
    Invalid(String),
    /// Not now or not by this caller (already ran, same approver twice, too few approvals).
    #[error("{0}")]
    Refused(String),
    /// The node failed (custodians, store, disk).
    #[error("{0}")]
    Failed(String),
}

/// The node's export desk.
pub trait ExportDesk: Send + Sync {
    /// Files a request by `by`.
    fn request(
        &self,
        by: &str,
        recipient: &str,
        purpose: &str,
        cnss: Vec<String>,
    ) -> Result<ExportState, ExportError>;
    /// Where export `id` stands.
    fn state(&self, id: &str) -> Result<ExportState, ExportError>;
    /// `admin`'s approval.
    fn approve(&self, id: &str, admin: &str) -> Result<ExportState, ExportError>;
    /// Runs an approved export.
    fn run(&self, id: &str) -> Result<ExportState, ExportError>;
    /// The file of an export that ran, fetched by `who` (recorded before it is returned).
    fn fetch(&self, id: &str, who: &str) -> Result<Vec<u8>, ExportError>;
}

type Shared = Arc<crate::api::App>;

impl From<ExportError> for Problem {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::NotFound(m) => Problem::not_found(m),
            ExportError::Invalid(m) => Problem::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "export-invalid",
                "Export request invalid",
                m,
            ),
            ExportError::Refused(m) => {
                Problem::new(StatusCode::CONFLICT, "export-refused", "Export refused", m)
            }
            ExportError::Failed(m) => Problem::unavailable("export-failed", m),
        }
    }
}

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    recipient: String,
    purpose: String,
    cnss: Vec<String>,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, Problem> {
    serde_json::from_slice(body)
        .map_err(|e| Problem::bad_request("bad-body", format!("request body: {e}")))
}

/// `POST /v1/exports`.
pub(crate) async fn file_request(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    body: Bytes,
) -> Result<Response, Problem> {
    require_role(&claims, EXPORT_ADMINS, "filing an export")?;
    let desk = desk(&app)?;
    let b: RequestBody = json_body(&body)?;
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
