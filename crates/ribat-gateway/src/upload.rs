//! `POST /v1/declarations`: an employer's monthly e-BDS file, for its own affiliation only.

use crate::app::Authed;
use crate::app::Shared;
use crate::body::{RejectedLine, TokenErrors, UploadBody, UploadQuery};
use crate::reads::{blocking, read_query};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ribat_net::problem::Problem;

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
        let group = a.vault.reader.group();
        let sealer = ribat_import::records::RecordSealer::new(&group, &a.vault.index)
            .map_err(|e| Problem::internal(format!("cannot seal: {e}")))?;
        let importer =
            ribat_import::importer::Importer::new(a.vault.store.as_ref(), &sealer, 1, 5_000);
        let imported = importer.run(std::slice::from_ref(&path), &mut |_| {});
        // The file held the salaries in clear only until they were sealed and stored (or
        // refused): the employer is answered after the import, so nothing acknowledged
        // needs it again, and it must not stay on disk (I4).
        forget_upload(&path);
        imported.map_err(|e| {
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

/// Deletes an upload once its import ended, and its employer's directory when empty.
fn forget_upload(path: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        eprintln!(
            "warning: cannot delete the imported upload {}: {e}; delete it by hand (it holds declarations in clear)",
            path.display()
        );
    }
    if let Some(dir) = path.parent() {
        // Fails while another upload of the same employer is in its directory: kept then.
        let _ = std::fs::remove_dir(dir);
    }
}

/// At a gateway's start: deletes what a crash left in the upload directory. Such a file's
/// upload was never answered (an answer comes after its import), so its employer sends it
/// again; kept, it would hold declarations in clear on disk (I4). Returns how many.
pub fn clear_unanswered_uploads(uploads: &std::path::Path) -> usize {
    let mut n = 0;
    let Ok(employers) = std::fs::read_dir(uploads) else {
        return 0;
    };
    for dir in employers.flatten().map(|e| e.path()).filter(|p| p.is_dir()) {
        for f in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if f.path().is_file() {
                forget_upload(&f.path());
                n += 1;
            }
        }
        let _ = std::fs::remove_dir(&dir);
    }
    n
}
