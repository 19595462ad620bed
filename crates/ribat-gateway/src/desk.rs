//! The node's export desk as the gateway sees it: the trait the node implements, where an
//! export stands, and why an operation did not happen (with its problem document). The
//! routes that use it are in [`crate::exports`].

use axum::http::StatusCode;
use ribat_net::problem::Problem;
use serde::{Deserialize, Serialize};

/// Roles that file, approve and run exports.
pub const EXPORT_ADMINS: &[&str] = &["security"];
/// Roles that may look at an export's state (besides its recipient).
pub const EXPORT_READERS: &[&str] = &["security", "auditor"];
/// The most persons one request may ask for.
pub const MAX_EXPORT_PERSONS: usize = 3_000_000;

/// Where an export stands; never the persons it names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[schema(value_type = Vec<Vec<Object>>)]
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
    /// Every export filed here, newest first.
    fn list(&self) -> Result<Vec<ExportState>, ExportError>;
}

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
