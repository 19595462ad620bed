//! The Identities page: who holds which role for which institution (the register this
//! node keeps), and where the node keeps the CA, certificates asked for by one security
//! administrator and issued on another's approval, and revoked on one's word with a reason.
//! In a mesh the page shows the commands that grant and revoke through the log.

use super::{Acting, Done, Shell, Viewer, form, html, refused, shell, utc};
use crate::app::Shared;
use crate::identity_desk::{IdentityDeskError, IssueRequest, MAX_DAYS};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::BTreeMap;

#[derive(Template)]
#[template(path = "console/identities.html")]
struct IdentitiesPage {
    shell: Shell,
    rows: Vec<IdentityRow>,
    error: Option<String>,
    /// The node keeps the CA and this viewer acts: the forms are shown.
    desk: bool,
    acts: bool,
    in_mesh: bool,
    requests: Vec<RequestRow>,
    csrf: String,
    notice: Option<String>,
    /// A refused form's message, by field (`name`, `role`, `institution`, `days`,
    /// `reason`), and what was typed.
    field_errors: BTreeMap<&'static str, String>,
    typed: Typed,
    /// The identity whose revocation was refused, for its row's message.
    revoke_of: String,
    /// The issue form's fields.
    form_fields: Vec<FormField>,
}

/// One field of the issue form: what was typed, and its message when refused.
struct FormField {
    name: &'static str,
    label: &'static str,
    value: String,
    hint: &'static str,
    error: Option<String>,
}

impl IdentitiesPage {
    /// The message for a form's field, if it was refused.
    fn error_of(&self, field: &str) -> Option<&String> {
        self.field_errors.get(field)
    }
}

/// What a refused form held, shown again in its fields.
#[derive(Default, serde::Deserialize)]
struct Typed {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    institution: String,
    #[serde(default)]
    days: String,
    #[serde(default)]
    reason: String,
}

struct IdentityRow {
    name: String,
    role: String,
    institution: String,
    serial: String,
    expires: String,
    review_by: String,
    state: &'static str,
    state_class: &'static str,
    revocable: bool,
}

struct RequestRow {
    id: String,
    name: String,
    role: String,
    institution: String,
    days: u32,
    requested: String,
    /// Issued: by whom, the serial, where on the node.
    issued: Option<String>,
    can_approve: bool,
}

/// Server certificates are not revoked from a page they serve.
const SERVER_ROLES: &[&str] = &["gateway", "custodian"];

fn page(
    app: &Shared,
    v: &Viewer,
    status: StatusCode,
    notice: Option<String>,
    form_error: Option<IdentityDeskError>,
    typed: Typed,
    revoke_of: String,
) -> Response {
    let w = v.lang.words();
    let now_s = i64::try_from(app.watch.clock().now_ms() / 1000).unwrap_or(i64::MAX);
    let read = app.register.as_ref().map(|path| {
        std::fs::read_to_string(path)
            .map_err(|e| format!("{}: {e}", path.display()))
            .and_then(|text| {
                serde_json::from_str::<Vec<ribat_identity::ca::RegisterEntry>>(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))
            })
    });
    let desk = app.identities.clone();
    let (rows, mut error) = match read {
        None => (
            Vec::new(),
            Some("this gateway keeps no identity register".to_owned()),
        ),
        Some(Err(e)) => (Vec::new(), Some(e)),
        Some(Ok(mut entries)) => {
            entries.sort_by(|a, b| a.role.cmp(&b.role).then_with(|| a.name.cmp(&b.name)));
            let at = |s: i64| utc(u64::try_from(s).unwrap_or(0).saturating_mul(1000));
            let rows = entries
                .into_iter()
                .map(|e| {
                    let (state, state_class) = if e.revoked_at.is_some() {
                        (w.revoked, "revoked")
                    } else if e.not_after <= now_s {
                        (w.expired, "ended")
                    } else if e.review_by.is_some_and(|r| r <= now_s) {
                        (w.lapsed, "ended")
                    } else {
                        (w.active, "active")
                    };
                    IdentityRow {
                        revocable: desk.is_some()
                            && v.acts
                            && e.revoked_at.is_none()
                            && e.name != v.name
                            && !SERVER_ROLES.contains(&e.role.as_str()),
                        expires: at(e.not_after),
                        review_by: e.review_by.map_or_else(|| "—".to_owned(), at),
                        name: e.name,
                        role: e.role,
                        institution: e.institution,
                        serial: e.serial,
                        state,
                        state_class,
                    }
                })
                .collect();
            (rows, None)
        }
    };
    let requests = match desk.as_ref().map(|d| d.requests()) {
        None => Vec::new(),
        Some(Err(e)) => {
            error = error.or(Some(e.to_string()));
            Vec::new()
        }
        Some(Ok(list)) => list
            .into_iter()
            .map(|r: IssueRequest| RequestRow {
                can_approve: v.acts && r.issued.is_none() && r.requested_by != v.name,
                requested: format!(
                    "{} · {}",
                    utc(u64::try_from(r.requested_at).unwrap_or(0) * 1000),
                    r.requested_by
                ),
                issued: r.issued.map(|i| {
                    format!(
                        "{} {} · {} {} · {}",
                        w.approved_by, i.approved_by, w.serial, i.serial, i.dir
                    )
                }),
                id: r.id,
                name: r.name,
                role: r.role,
                institution: r.institution,
                days: r.days,
            })
            .collect(),
    };
    let mut field_errors = BTreeMap::new();
    match form_error {
        Some(IdentityDeskError::Invalid { field, why }) => {
            field_errors.insert(field, why);
        }
        Some(e) => error = Some(e.to_string()),
        None => {}
    }
    let form_fields = [
        ("name", w.identity, &typed.name, "clerk.fes.12"),
        ("role", w.role, &typed.role, "clerk"),
        (
            "institution",
            w.institution,
            &typed.institution,
            "agency-fes",
        ),
        ("days", w.valid_days, &typed.days, "365"),
    ]
    .into_iter()
    .map(|(name, label, value, hint)| FormField {
        name,
        label,
        value: value.clone(),
        hint,
        error: field_errors.get(name).cloned(),
    })
    .collect();
    let now = app.watch.clock().now_ms() / 1000;
    html(
        status,
        IdentitiesPage {
            shell: shell(app, v, "identities"),
            rows,
            error,
            desk: desk.is_some(),
            acts: v.acts,
            in_mesh: app.watch.mesh_member().is_some(),
            requests,
            csrf: form::token(&v.thumbprint, now),
            notice,
            field_errors,
            typed,
            revoke_of,
            form_fields,
        }
        .render(),
    )
}

/// Who holds which role for which institution, revoked, expired and lapsed certificates
/// marked; the forms where this node keeps the CA.
pub(super) async fn identities(
    State(app): State<Shared>,
    v: Viewer,
    Query(done): Query<Done>,
) -> Response {
    let w = v.lang.words();
    // Words only: a person's name never travels in an address.
    let notice = match done.done.as_deref() {
        Some("requested") => Some(w.issue_requested.to_owned()),
        Some("issued") => Some(w.issued_notice.to_owned()),
        Some("revoked") => Some(w.revoked_notice.to_owned()),
        _ => None,
    };
    page(
        &app,
        &v,
        StatusCode::OK,
        notice,
        None,
        Typed::default(),
        String::new(),
    )
}

#[derive(serde::Deserialize)]
pub(super) struct RequestForm {
    csrf: String,
    #[serde(flatten)]
    typed: Typed,
}

/// The page again after a refused form, its message next to the field.
fn refused_form(
    app: &Shared,
    v: &Viewer,
    e: IdentityDeskError,
    typed: Typed,
    revoke_of: String,
) -> Response {
    let status = match &e {
        IdentityDeskError::Invalid { .. } => StatusCode::BAD_REQUEST,
        IdentityDeskError::Refused(_) => StatusCode::CONFLICT,
        IdentityDeskError::Failed(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    page(app, v, status, None, Some(e), typed, revoke_of)
}

async fn on_desk<T: Send + 'static>(
    app: &Shared,
    v: &Viewer,
    f: impl FnOnce(&dyn crate::identity_desk::IdentityDesk) -> Result<T, IdentityDeskError>
    + Send
    + 'static,
) -> Result<T, Result<IdentityDeskError, Response>> {
    let Some(desk) = app.identities.clone() else {
        return Err(Err(refused(
            v.lang,
            StatusCode::NOT_FOUND,
            v.lang.words().identities_in_mesh.to_owned(),
        )));
    };
    match tokio::task::spawn_blocking(move || f(desk.as_ref())).await {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(Ok(e)),
        Err(e) => Err(Err(refused(
            v.lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the identity desk failed: {e}"),
        ))),
    }
}

/// `POST /console/identities/request`: one administrator asks for a certificate.
pub(super) async fn request(
    State(app): State<Shared>,
    Acting { v, form: f }: Acting<RequestForm>,
) -> Response {
    let t = f.typed;
    let Ok(days) = t.days.trim().parse::<u32>() else {
        let e = IdentityDeskError::Invalid {
            field: "days",
            why: format!("a number of days, from 1 to {MAX_DAYS}"),
        };
        return refused_form(&app, &v, e, t, String::new());
    };
    let (by, name, role, inst) = (
        v.name.clone(),
        t.name.trim().to_owned(),
        t.role.trim().to_owned(),
        t.institution.trim().to_owned(),
    );
    match on_desk(&app, &v, move |d| d.request(&by, &name, &role, &inst, days)).await {
        Ok(_) => Redirect::to("/console/identities?done=requested").into_response(),
        Err(Ok(e)) => refused_form(&app, &v, e, t, String::new()),
        Err(Err(r)) => r,
    }
}

/// `POST /console/identities/approve/{id}`: a second administrator's approval issues it.
pub(super) async fn approve(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Acting { v, .. }: Acting<super::TokenOnly>,
) -> Response {
    let by = v.name.clone();
    match on_desk(&app, &v, move |d| d.approve(&id, &by)).await {
        Ok(_) => Redirect::to("/console/identities?done=issued").into_response(),
        Err(Ok(e)) => refused_form(&app, &v, e, Typed::default(), String::new()),
        Err(Err(r)) => r,
    }
}

impl super::Tokened for RequestForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl super::Tokened for RevokeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(serde::Deserialize)]
pub(super) struct RevokeForm {
    csrf: String,
    name: String,
    #[serde(default)]
    reason: String,
}

/// `POST /console/identities/revoke`: one administrator's word, with a reason.
pub(super) async fn revoke(
    State(app): State<Shared>,
    Acting { v, form: f }: Acting<RevokeForm>,
) -> Response {
    let (by, name, reason) = (v.name.clone(), f.name.clone(), f.reason.clone());
    match on_desk(&app, &v, move |d| d.revoke(&name, &by, &reason)).await {
        Ok(_) => Redirect::to("/console/identities?done=revoked").into_response(),
        // The name is the row's, not a field the viewer typed: what is wrong with it goes
        // atop the page, not beside the issue form's own name field.
        Err(Ok(IdentityDeskError::Invalid { field: "name", why })) => page(
            &app,
            &v,
            StatusCode::BAD_REQUEST,
            None,
            Some(IdentityDeskError::Refused(why)),
            Typed::default(),
            f.name,
        ),
        Err(Ok(e)) => {
            let typed = Typed {
                reason: f.reason,
                ..Typed::default()
            };
            refused_form(&app, &v, e, typed, f.name)
        }
        Err(Err(r)) => r,
    }
}
