//! The fund's intake through a running gateway: the register files (`employers.csv`,
//! `persons.csv`) and e-BDS declaration files sent by the fund's intake system, kept
//! durably, then validated, sealed with the public keys and stored by the node in the
//! background, one file after another in the order they arrived.
//!
//! | route | who | what |
//! |---|---|---|
//! | `POST /v1/intake?purpose=register-intake&file=NAME` | intake | one file; `202` once it is on disk |
//! | `GET /v1/intake/{id}` | intake, security, auditor | where its import stands |
//!
//! This is how a running node (a mesh's gateway node included) takes the monthly intake
//! without stopping: the work is the node's, reached through [`IntakeDesk`]. Only public
//! keys seal, so no custodian has to answer for a file to be stored.

use crate::app::{Authed, require_role};
use crate::body::TokenErrors;
use crate::reads::read_query;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ribat_net::problem::Problem;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

type Shared = Arc<crate::app::App>;

/// The purpose under which the intake system sends files.
pub const PURPOSE_INTAKE: &str = "register-intake";
/// Roles that send files.
pub const INTAKE_SENDERS: &[&str] = &["intake"];
/// Roles that may look at where an intake stands.
pub const INTAKE_READERS: &[&str] = &["intake", "security", "auditor"];
/// Largest file taken in one request (2,000,000 persons' register is about 250 MB).
pub const MAX_INTAKE: u64 = 2 * 1024 * 1024 * 1024;

/// Where one file's import stands; never a row's values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntakeState {
    /// Intake id (16 hex digits).
    pub id: String,
    /// The file's name as sent.
    pub file: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, hex (what the sender can compare with its own).
    pub sha256: String,
    /// Who sent it.
    pub by: String,
    /// `queued`, `importing`, `done` or `failed`.
    pub state: String,
    /// Lines read so far, and in all (once counted).
    pub done: u64,
    /// Lines in the file.
    pub total: u64,
    /// Records stored by this import (employers, persons and declarations together).
    pub stored: u64,
    /// Records that were already stored (a file sent twice stores nothing twice).
    pub already: u64,
    /// Lines refused.
    pub rejected: u64,
    /// The first refused lines: number and reason, never the line's values.
    pub rejects: Vec<IntakeReject>,
    /// Why it failed, when it did (send the file again: stored rows are not stored twice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One refused line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IntakeReject {
    /// Line number (0: the whole file).
    pub line: u64,
    /// Why.
    pub reason: String,
}

/// Why an intake operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// No such intake.
    #[error("{0}")]
    NotFound(String),
    /// The node failed (disk, store).
    #[error("{0}")]
    Failed(String),
}

/// The node's side: where files are kept, and the background imports.
pub trait IntakeDesk: Send + Sync {
    /// A new intake id and the path its file is written to (not yet imported).
    fn place(&self, file: &str) -> Result<(String, std::path::PathBuf), IntakeError>;
    /// Queues the file written at `place`'s path (complete and synced) for import.
    fn queue(
        &self,
        id: &str,
        file: &str,
        bytes: u64,
        sha256: &str,
        by: &str,
    ) -> Result<IntakeState, IntakeError>;
    /// Where an intake stands.
    fn state(&self, id: &str) -> Result<IntakeState, IntakeError>;
}

/// Query of `POST /v1/intake`.
#[derive(Debug, Deserialize, Default, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct IntakeQuery {
    /// Why: `register-intake`, the one purpose this route takes.
    #[param(required = true, pattern = "^[a-z0-9][a-z0-9._-]*$", max_length = 64)]
    pub(crate) purpose: Option<String>,
    /// The file's name: `employers.csv`, `persons.csv` or `DS_<affiliation>_<MMAAAA>.txt`.
    #[param(required = true, pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub(crate) file: Option<String>,
}

/// The kinds of file the importer takes, by name.
pub fn valid_file_name(name: &str) -> bool {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
        && !name.starts_with('.');
    let ebds = name
        .strip_prefix("DS_")
        .and_then(|n| n.strip_suffix(".txt"))
        .and_then(|n| n.split_once('_'))
        .is_some_and(|(aff, period)| {
            !aff.is_empty()
                && aff.bytes().all(|b| b.is_ascii_digit())
                && period.len() == 6
                && period.bytes().all(|b| b.is_ascii_digit())
        });
    plain && (name == "employers.csv" || name == "persons.csv" || ebds)
}

fn desk(app: &Shared) -> Result<Arc<dyn IntakeDesk>, Problem> {
    app.intake.clone().ok_or_else(|| {
        Problem::not_found(
            "this gateway takes no intake (files are imported by the node that holds the store)",
        )
    })
}

impl From<IntakeError> for Problem {
    fn from(e: IntakeError) -> Self {
        match e {
            IntakeError::NotFound(m) => Problem::not_found(m),
            IntakeError::Failed(m) => Problem::unavailable("intake-unavailable", m),
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> Problem {
    Problem::unavailable(
        "intake-unavailable",
        format!("cannot keep the file: {e}; nothing was queued, send it again"),
    )
}

/// The problem a body not kept answers.
fn not_kept(why: crate::to_disk::NotKept) -> Problem {
    use crate::to_disk::NotKept;
    match why {
        NotKept::Empty => Problem::bad_request("empty-file", "the file is empty"),
        NotKept::TooLarge => Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Payload Too Large",
            format!("a file sent to the intake is at most {MAX_INTAKE} bytes; split it"),
        ),
        NotKept::Broken(e) => Problem::bad_request("bad-body", format!("the body broke off: {e}")),
        NotKept::Disk(e) => unavailable(e),
    }
}

/// `POST /v1/intake`.
#[utoipa::path(
    post,
    path = "/v1/intake",
    summary = "The fund's intake system sends one register or declaration file; it is kept durably, then imported in the background in arrival order",
    security(("bearer" = [])),
    params(IntakeQuery),
    request_body(content = String, content_type = "application/octet-stream"),
    responses(
        (status = 202, description = "Kept on disk and queued; follow it at the Location", body = IntakeState),
        TokenErrors,
        (status = 400, description = "Missing or wrong purpose, missing or unknown file name", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not the intake role, or this identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "This gateway takes no intake", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "File larger than 2 GiB", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The disk failed; nothing was queued", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn send(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    uri: Uri,
    body: Body,
) -> Result<Response, Problem> {
    let q: IntakeQuery = read_query(&uri)?;
    let admitted = app.gate.admit(claims, q.purpose.as_deref(), &[])?;
    require_role(&admitted.claims, INTAKE_SENDERS, "the intake")?;
    if admitted.purpose != PURPOSE_INTAKE {
        return Err(Problem::forbidden(
            "purpose-not-allowed",
            format!(
                "files are sent under purpose={PURPOSE_INTAKE}, not `{}`",
                admitted.purpose
            ),
        ));
    }
    let file = q.file.unwrap_or_default();
    if !valid_file_name(&file) {
        return Err(Problem::bad_request(
            "bad-file-name",
            "`file`: employers.csv, persons.csv or DS_<affiliation>_<MMAAAA>.txt (the importer knows a file by its name)",
        ));
    }
    let desk = desk(&app)?;
    // Disk work (directories, fsync) off the async threads; the body itself is written
    // through tokio's file, which does the same.
    let placed = {
        let (desk, file) = (desk.clone(), file.clone());
        tokio::task::spawn_blocking(move || desk.place(&file))
            .await
            .map_err(|e| Problem::internal(format!("the intake task failed: {e}")))??
    };
    let (id, path) = placed;
    // The body goes to disk as it arrives: a 2 GiB file never sits in memory.
    let partial = path.with_extension("partial");
    let received = crate::to_disk::receive(body.into_data_stream(), &partial, MAX_INTAKE).await;
    let (bytes, sha256) = match received {
        Ok(r) => r,
        Err(why) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(not_kept(why));
        }
    };
    let by = admitted.claims.sub.clone();
    let state = tokio::task::spawn_blocking(move || -> Result<IntakeState, Problem> {
        crate::to_disk::commit(&partial, &path).map_err(unavailable)?;
        Ok(desk.queue(&id, &file, bytes, &sha256, &by)?)
    })
    .await
    .map_err(|e| Problem::internal(format!("the intake task failed: {e}")))??;
    let location = format!("/v1/intake/{}", state.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(state),
    )
        .into_response())
}

/// `GET /v1/intake/{id}`.
#[utoipa::path(
    get,
    path = "/v1/intake/{id}",
    summary = "Where one file's import stands: lines done, records stored, lines refused (number and reason)",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The intake id (16 hex digits)", pattern = "^[0-9a-f]{16}$")),
    responses(
        (status = 200, description = "Where it stands", body = IntakeState),
        TokenErrors,
        (status = 403, description = "Not an intake, security or auditor role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such intake, or this gateway takes no intake", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn show(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    require_role(&claims, INTAKE_READERS, "an intake's state")?;
    if !(id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(Problem::not_found(format!(
            "no intake {id:?}: intake ids are 16 hex digits"
        )));
    }
    let desk = desk(&app)?;
    let state = tokio::task::spawn_blocking(move || desk.state(&id))
        .await
        .map_err(|e| Problem::internal(format!("the intake task failed: {e}")))??;
    Ok(axum::Json(state).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_files_the_importer_knows_by_name_are_taken() {
        for ok in [
            "employers.csv",
            "persons.csv",
            "DS_1234567_012025.txt",
            "DS_7_122024.txt",
        ] {
            assert!(valid_file_name(ok), "{ok}");
        }
        for bad in [
            "",
            "../persons.csv",
            "x/persons.csv",
            "old-persons.csv",
            "DS__012025.txt",
            "DS_12a_012025.txt",
            "DS_12_0125.txt",
            "DS_12_012025.txt.gz",
            ".persons.csv",
            "persons.csv\0",
        ] {
            assert!(!valid_file_name(bad), "{bad:?}");
        }
    }
}
