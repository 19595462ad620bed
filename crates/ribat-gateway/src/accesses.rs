//! `POST /v1/audit/accesses`: who accessed one person's record, each access with its
//! inclusion proof against the log's latest cosigned checkpoint — the answer Estonia's data
//! tracker gives its citizens, here with proofs. The citizen portal (role
//! `citizen-portal`, asking on behalf of one person it authenticated) gets the date,
//! institution, role, purpose and what was read, never the reader's name; auditors (the
//! data-protection authority) and the security team get the identities too.
//!
//! The CNSS number travels in the body: never in an address, nor in a log of addresses.

use crate::app::{Authed, Shared, require_role};
use crate::body::TokenErrors;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ribat_net::problem::Problem;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Roles that ask who accessed a record.
const ASKERS: &[&str] = &["citizen-portal", "auditor", "security"];
/// Of those, the roles shown who read (the others: which institution, in which role).
const SEE_READERS: &[&str] = &["auditor", "security"];

/// `POST /v1/audit/accesses`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AccessesRequest)]
pub(crate) struct AccessesBody {
    /// The person's CNSS number.
    #[schema(pattern = "^[0-9]{9}$")]
    cnss: String,
}

/// One access to the record.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Access)]
pub(crate) struct AccessBody {
    /// When, ms since the Unix epoch.
    time_ms: u64,
    /// The reader's institution.
    institution: String,
    /// The reader's role.
    role: String,
    /// The purpose declared.
    purpose: String,
    /// What happened (`released`, or the refusal).
    outcome: String,
    /// The fields asked for.
    fields: Vec<String>,
    /// Who read: for auditors and the security team only.
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<String>,
    /// Its proof, as the file `ribat audit verify-proof` checks; `null` when it came after
    /// the latest cosigned checkpoint (it is proved at the next).
    #[schema(value_type = Option<Object>)]
    inclusion: Option<serde_json::Value>,
}

/// The accesses to one record.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Accesses)]
pub(crate) struct AccessesAnswer {
    /// The checkpoint the proofs are against: size and signers (`null`: none cosigned yet).
    #[schema(value_type = Option<Object>)]
    checkpoint: Option<serde_json::Value>,
    /// Oldest first.
    accesses: Vec<AccessBody>,
}

#[utoipa::path(
    post,
    path = "/v1/audit/accesses",
    summary = "Who accessed one person's record, each access with its inclusion proof (citizen portal, auditors, security team)",
    security(("bearer" = [])),
    request_body = AccessesBody,
    responses(
        (status = 200, description = "OK", body = AccessesAnswer),
        TokenErrors,
        (status = 400, description = "Malformed body or CNSS number", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a role that asks this; or this identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No person has this CNSS number", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "The audit log cannot be read now, or cannot record this lookup (nothing is listed then)", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn accesses(
    State(app): State<Shared>,
    Authed { claims, signed, .. }: Authed,
    body: Bytes,
) -> Result<Response, Problem> {
    require_role(&claims, ASKERS, "asking who accessed a record")?;
    if let Some(s) = &signed {
        s.asked(&body)?;
    }
    let b: AccessesBody = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request("bad-body", format!("request body: {e}")))?;
    if b.cnss.len() != 9 || !b.cnss.bytes().all(|c| c.is_ascii_digit()) {
        return Err(Problem::bad_request(
            "bad-cnss",
            "cnss: a CNSS number is 9 digits",
        ));
    }
    let readers = SEE_READERS.contains(&claims.role.as_str());
    let vault = app.vault.clone();
    let now_ms = app.gate.clock().now_ms();
    let answer = crate::reads::blocking(move || {
        let records = vault
            .by_cnss(&b.cnss)
            .map_err(|e| Problem::bad_request("bad-cnss", e.to_string()))?;
        let record = records
            .first()
            .ok_or_else(|| Problem::not_found("no person has this CNSS number"))?;
        // Recorded before anything is listed: the lookup shows in the person's own list.
        let asker = crate::subject::Asker {
            identity: &claims.sub,
            role: claims.role.as_str(),
            institution: &claims.inst,
        };
        let found = crate::subject::looked_up(&vault.audit, &asker, record, now_ms)
            .map_err(|e| Problem::unavailable("audit-unavailable", e.to_string()).retry_after(5))?;
        let accesses = found
            .accesses
            .iter()
            .map(|a| AccessBody {
                inclusion: found.proof_file(a),
                time_ms: a.entry.time_ms,
                institution: a.entry.institution.clone(),
                role: a.entry.role.clone(),
                purpose: a.entry.purpose.clone(),
                outcome: a.entry.outcome.clone(),
                fields: a.entry.fields.clone(),
                identity: readers.then(|| a.entry.identity.clone()),
            })
            .collect();
        Ok(AccessesAnswer {
            checkpoint: found
                .against
                .map(|a| serde_json::json!({"size": a.size, "signed_by": a.signed_by})),
            accesses,
        })
    })
    .await?;
    Ok(Json(answer).into_response())
}
