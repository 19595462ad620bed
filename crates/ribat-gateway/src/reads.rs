//! The read routes: a person, their declarations, a search, an employer. Each goes token →
//! gate (purpose, classes, fields, quarantine, quota of distinct subjects) → vault
//! (custodians check again; audit before plaintext) → masks → JSON, and leaves what it read
//! for the watch (`crate::seen`).

use crate::AuditFirstError;
use crate::app::Authed;
use crate::app::Shared;
use crate::body::{
    CosignHeader, DeclarationsBody, DeclarationsQuery, EmployerBody, EmployerQuery, PersonBody,
    PersonQuery, ReadErrors, SearchBody, SearchMatch, SearchResultBody,
};
use crate::gate::{Admitted, Gate};
use crate::seen::{answered, area_of, area_tag, seen};
use crate::signed::asked_of;
use crate::vault::{
    DECLARATION_FIELDS, EMPLOYER_FIELDS, PERSON_FIELDS, Reader, VaultError, person_field_class,
};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ribat_custodian::quorum::QuorumError;
use ribat_custodian::request::Bearer;
use ribat_custodian::{Denial, Requester};
use ribat_net::problem::Problem;
use ribat_policy::{Class, Table};

/// Longest case reference accepted.
pub(crate) const MAX_CASE: usize = 64;

/// A case reference (a counter ticket, an investigation number): printable, short.
pub(crate) fn case_ref(c: Option<&str>) -> Result<Option<String>, Problem> {
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

pub(crate) fn read_query<Q: serde::de::DeserializeOwned + Default>(
    uri: &Uri,
) -> Result<Q, Problem> {
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
pub(crate) fn exact_digits(v: &str, len: usize, what: &str) -> Result<(), Problem> {
    if v.len() == len && v.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Problem::bad_request(
            "bad-value",
            format!("a {what} in a path is exactly {len} digits, with no space or separator"),
        ))
    }
}

pub(crate) fn vault_problem(gate: &Gate, e: VaultError) -> Problem {
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

pub(crate) fn denial_problem(gate: &Gate, denial: Denial) -> Problem {
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

pub(crate) fn reader(
    admitted: &Admitted,
    token: &str,
    asked: Option<&ribat_custodian::request::Asked>,
) -> Reader {
    Reader {
        who: Requester {
            identity: admitted.claims.sub.clone(),
            role: admitted.claims.role.clone(),
        },
        institution: admitted.claims.inst.clone(),
        purpose: admitted.purpose.clone(),
        token: Some(Bearer(token.to_owned())),
        asked: asked.cloned(),
    }
}

/// The person fields a request names, or the role's default (identity fields it may read).
pub(crate) fn person_fields(
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
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Problem::internal(format!("a read task failed: {e}")))?
}

/// Exactly one record, counted against the quotas; a miss costs quota too (probing is reading).
pub(crate) fn one_counted(
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
    Authed {
        claims,
        token,
        signed,
    }: Authed,
    Path(cnss): Path<String>,
    uri: Uri,
) -> Result<Response, Problem> {
    exact_digits(&cnss, 9, "CNSS number")?;
    let asked = asked_of(&app, signed.as_ref(), &[])?;
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
        let r = reader(&admitted, &token, asked.as_ref());
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
    Authed {
        claims,
        token,
        signed,
    }: Authed,
    Path(cnss): Path<String>,
    uri: Uri,
) -> Result<Response, Problem> {
    exact_digits(&cnss, 9, "CNSS number")?;
    let asked = asked_of(&app, signed.as_ref(), &[])?;
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
            .history(&reader(&admitted, &token, asked.as_ref()), &id)
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
pub(crate) const MAX_MATCHES: usize = 10;

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
    Authed {
        claims,
        token,
        signed,
    }: Authed,
    body: Bytes,
) -> Result<Response, Problem> {
    let asked = asked_of(&app, signed.as_ref(), &body)?;
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
        let r = reader(&admitted, &token, asked.as_ref());
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
pub(crate) fn search_lookup(b: &SearchBody) -> Option<u64> {
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
    Authed {
        claims,
        token,
        signed,
    }: Authed,
    Path(affiliation): Path<String>,
    uri: Uri,
) -> Result<Response, Problem> {
    exact_digits(&affiliation, 7, "affiliation number")?;
    let asked = asked_of(&app, signed.as_ref(), &[])?;
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
            .employer(&reader(&admitted, &token, asked.as_ref()), &id, &names)
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
