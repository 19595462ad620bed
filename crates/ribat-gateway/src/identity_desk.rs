//! The node's identity desk as the console sees it, where the node keeps the deployment's
//! CA (the embedded shape): a certificate is issued once two distinct security
//! administrators asked for it (one files the request, another approves: granting is
//! relaxing), and revoked on one administrator's word (restricting is always safe), with
//! who and why recorded.
//!
//! In a mesh the register is the replicated state's: certificates are granted and revoked
//! through the log with the administrators' own keys (`ribat mesh grant`, `ribat mesh
//! revoke`), and the console shows those commands instead.
//!
//! Must never: hand a private key to a browser (the key is written into the node's
//! `identity/issued/NAME` directory, as `ribat identity add` does, for an administrator to
//! carry to its holder), or issue on one administrator's word.

use serde::{Deserialize, Serialize};

/// Longest validity the console issues, in days (a CA/B Forum year and a month).
pub const MAX_DAYS: u32 = 397;

/// A certificate asked for from the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssueRequest {
    /// Request id (16 hex digits).
    pub id: String,
    /// Identity name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Institution.
    pub institution: String,
    /// Validity, days.
    pub days: u32,
    /// Who asked.
    pub requested_by: String,
    /// When (Unix seconds).
    pub requested_at: i64,
    /// Once issued: who approved, the serial, and where the certificate and key were
    /// written on the node.
    pub issued: Option<IssuedTo>,
}

/// An issued request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedTo {
    /// The second administrator.
    pub approved_by: String,
    /// Serial, hex.
    pub serial: String,
    /// The directory holding `cert.pem`, `key.pem` (0600) and `ca.pem` on the node.
    pub dir: String,
    /// When (Unix seconds).
    pub at: i64,
}

/// Why an identity operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum IdentityDeskError {
    /// A field is wrong: which one, and what is wrong with it.
    #[error("{field}: {why}")]
    Invalid {
        /// The form's field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// Not now or not by this administrator.
    #[error("{0}")]
    Refused(String),
    /// The node failed (disk, CA).
    #[error("{0}")]
    Failed(String),
}

/// The node's side.
pub trait IdentityDesk: Send + Sync {
    /// Requests not yet issued and those issued lately, newest first.
    fn requests(&self) -> Result<Vec<IssueRequest>, IdentityDeskError>;
    /// `by` asks for a client certificate.
    fn request(
        &self,
        by: &str,
        name: &str,
        role: &str,
        institution: &str,
        days: u32,
    ) -> Result<IssueRequest, IdentityDeskError>;
    /// `by` (not the one who asked) approves request `id`: the certificate is issued.
    fn approve(&self, id: &str, by: &str) -> Result<IssueRequest, IdentityDeskError>;
    /// `by` revokes every certificate of `name`, for `reason`; how many.
    fn revoke(&self, name: &str, by: &str, reason: &str) -> Result<usize, IdentityDeskError>;
}
