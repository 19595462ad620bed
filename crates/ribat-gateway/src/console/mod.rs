//! The security team's console: pages the gateway serves under `/console`, over the same
//! mTLS as the API, to certificates of role `security` (they act) and `auditor` (they
//! read); every other certificate gets 403.
//!
//! Pages are rendered here (askama: checked at compile time, every value HTML-escaped),
//! their stylesheet and one script are compiled into the binary, and every response says
//! `Content-Security-Policy: default-src 'none'` with `'self'` only for the script, the
//! stylesheet, the live updates and form posts — no inline script or style, no frames.
//! A form is taken only from a console page of this origin, for the certificate it was
//! shown to ([`form`]). Decisions in force are pushed to an open page as Server-Sent
//! Events (`/console/events`); the page works without its script.
//!
//! Must never: put personal data in a URL or a title, act by a path the API checks
//! otherwise (a release is [`crate::watch::Watch::approve_release`], as `POST
//! /v1/decisions/{id}/release` calls it), or serve a page to a role that is not the
//! security team's.

mod form;
mod identities;
mod leaks;
mod words;

use crate::app::{Shared, actor_of};
use crate::service::{DECISION_READERS, DECISION_RELEASERS};
use askama::Template;
use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use ribat_detect::Decision;
use ribat_net::listener::Caller;
use std::collections::BTreeMap;
use std::time::Duration;
use words::{Lang, Words};

/// The console's routes (the API's router adds them, under its observer and limits).
pub(crate) fn routes() -> Router<Shared> {
    Router::new()
        .route("/console", get(now))
        .route("/console/live", get(live))
        .route("/console/events", get(events))
        .route("/console/decisions", get(decisions))
        .route("/console/decisions/{id}", get(decision))
        .route("/console/decisions/{id}/release", post(release))
        .route("/console/audit", get(audit).post(audit_lookup))
        .route("/console/audit/proof/{index}", get(audit_proof))
        .route("/console/identities", get(identities::identities))
        .route("/console/identities/request", post(identities::request))
        .route(
            "/console/identities/approve/{id}",
            post(identities::approve),
        )
        .route("/console/identities/revoke", post(identities::revoke))
        .route("/console/exports", get(exports))
        .route("/console/exports/{id}/{step}", post(export_step))
        .route(
            "/console/leaks",
            // The upload streams its body to the node's disk and counts it itself.
            get(leaks::leaks)
                .post(leaks::upload)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/console/leaks/{id}", get(leaks::leak))
        .route("/console/leaks/{id}/notify", post(leaks::notify))
        .route(
            "/console/leaks/{id}/notification.csv",
            get(leaks::notification),
        )
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .layer(axum::middleware::map_response(secure))
}

/// What every console response says about itself.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (name, value) in [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        // Not `no-referrer`: under it a browser sends `Origin: null` with the console's
        // own forms (Fetch's rule), and the origin check refuses them (found in Chromium).
        ("referrer-policy", "same-origin"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
    ] {
        h.insert(name, HeaderValue::from_static(value));
    }
    r
}

/// How long an event stream stays open: the browser opens another, and the viewer's
/// certificate and role are checked again.
const STREAM_FOR: Duration = Duration::from_secs(15 * 60);
/// How often an open stream looks for new decisions.
const STREAM_EVERY: Duration = Duration::from_millis(250);
/// The "last 24 hours" of the Now page.
const DAY_MS: u64 = 24 * 3_600_000;

/// Who is looking, by their certificate.
struct Viewer {
    name: String,
    role: String,
    institution: String,
    thumbprint: String,
    /// Role `security`: releases; `auditor` reads only.
    acts: bool,
    lang: Lang,
}

/// The viewer, or the 403 page saying why not.
#[allow(clippy::result_large_err)] // the refusal is the page answered, as is
fn viewer(app: &Shared, caller: &Caller, headers: &HeaderMap) -> Result<Viewer, Response> {
    let lang = Lang::from_accept(
        headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    );
    let role = caller.peer.role.to_string();
    let acts = match role.as_str() {
        r if DECISION_RELEASERS.contains(&r) => true,
        r if DECISION_READERS.contains(&r) => false,
        _ => {
            return Err(refused(
                lang,
                StatusCode::FORBIDDEN,
                format!(
                    "this console is for the security team (role `security`) and auditors (role `auditor`); the certificate of `{}` has role `{role}`",
                    caller.peer.name
                ),
            ));
        }
    };
    // An administrator under a decision (quarantined, stepped up) is held here too.
    if let Err(p) = app.watch.check(&actor_of(caller), false) {
        return Err(refused(lang, StatusCode::FORBIDDEN, p.detail));
    }
    Ok(Viewer {
        name: caller.peer.name.clone(),
        institution: caller.peer.institution.clone(),
        role,
        thumbprint: caller.peer.thumbprint.clone(),
        acts,
        lang,
    })
}

/// Every console handler takes its viewer from the request: the caller's certificate,
/// checked here (a role of the security team's, no decision holding it), or the 403 page.
impl axum::extract::FromRequestParts<Shared> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Shared,
    ) -> Result<Self, Response> {
        match parts.extensions.get::<Caller>() {
            Some(caller) => viewer(app, caller, &parts.headers),
            // The listener attaches the certificate to every request; without it, nothing.
            None => Err(refused(
                Lang::En,
                StatusCode::FORBIDDEN,
                "no client certificate came with this request".into(),
            )),
        }
    }
}

/// A form whose page carried a token (`csrf`).
trait Tokened {
    fn csrf(&self) -> &str;
}

/// A form that acts: from a viewer of role `security`, posted from this console's own page
/// with the token it carried ([`own_form`]); the refusal page otherwise. Handlers take it
/// last (it reads the body).
struct Acting<F> {
    v: Viewer,
    form: F,
}

impl<F> axum::extract::FromRequest<Shared> for Acting<F>
where
    F: serde::de::DeserializeOwned + Tokened + Send + 'static,
{
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, app: &Shared) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let v = <Viewer as axum::extract::FromRequestParts<Shared>>::from_request_parts(
            &mut parts, app,
        )
        .await?;
        let (headers, uri) = (parts.headers.clone(), parts.uri.clone());
        let req = axum::extract::Request::from_parts(parts, body);
        let form = <Form<F> as axum::extract::FromRequest<Shared>>::from_request(req, app).await;
        let v = acting(app, v, &headers, &uri, form.as_ref().ok().map(|f| f.csrf()))?;
        match form {
            Ok(Form(form)) => Ok(Self { v, form }),
            Err(e) => Err(refused(
                v.lang,
                StatusCode::BAD_REQUEST,
                format!("the form could not be read ({e}): send it from the console's page"),
            )),
        }
    }
}

impl Tokened for TokenOnly {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

impl Tokened for ReleaseForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

#[derive(Template)]
#[template(path = "console/refused.html")]
struct RefusedPage<'a> {
    lang: &'static str,
    w: &'a Words,
    why: String,
}

fn refused(lang: Lang, status: StatusCode, why: String) -> Response {
    html(
        status,
        RefusedPage {
            lang: lang.code(),
            w: lang.words(),
            why,
        }
        .render(),
    )
}

fn html(status: StatusCode, page: Result<String, askama::Error>) -> Response {
    match page {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("the page could not be rendered: {e}"),
        )
            .into_response(),
    }
}

/// What the frame of every page shows.
struct Shell {
    w: &'static Words,
    lang: &'static str,
    viewer: String,
    role: String,
    node: String,
    tab: &'static str,
}

fn shell(app: &Shared, v: &Viewer, tab: &'static str) -> Shell {
    Shell {
        w: v.lang.words(),
        lang: v.lang.code(),
        viewer: v.name.clone(),
        role: v.role.clone(),
        node: app.watch.node().to_owned(),
        tab,
    }
}

/// One decision as a line of a table.
struct Row {
    id: String,
    rule: String,
    target: String,
    action: String,
    node: String,
    decided: String,
    until: String,
    state: &'static str,
    state_class: &'static str,
}

/// UTC, to the second.
fn utc(ms: u64) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    i64::try_from(ms / 1000)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&f).ok())
        .unwrap_or_else(|| "—".to_owned())
}

fn row(app: &Shared, w: &Words, d: &Decision, in_force: &[String]) -> Row {
    let (state, state_class) = if in_force.contains(&d.id) {
        (w.state_in_force, "in-force")
    } else if !d.enforces() {
        (w.state_alert, "alert")
    } else if app.watch.released_by(&d.id).is_some() {
        (w.state_released, "released")
    } else {
        (w.state_ended, "ended")
    };
    Row {
        id: d.id.clone(),
        rule: d.rule.clone(),
        target: d.target.to_string(),
        action: d.action.to_string(),
        node: d.node.clone(),
        decided: utc(d.time_ms),
        until: utc(d.until_ms),
        state,
        state_class,
    }
}

#[derive(Template)]
#[template(path = "console/rows.html")]
struct Live<'a> {
    w: &'a Words,
    in_force: Vec<Row>,
    recent: Vec<Row>,
    chart: Chart,
}

/// The live part of the Now page: decisions in force, the last day's, and the last hour's
/// reads and refusals.
fn live_html(app: &Shared, w: &'static Words) -> Result<String, askama::Error> {
    let in_force = app.watch.in_force();
    let now = app.watch.clock().now_ms();
    let mut all = app.watch.decisions();
    all.sort_by_key(|d| std::cmp::Reverse(d.time_ms));
    let rows_in_force = all
        .iter()
        .filter(|d| in_force.contains(&d.id))
        .map(|d| row(app, w, d, &in_force))
        .collect();
    let recent = all
        .iter()
        .filter(|d| now.saturating_sub(d.time_ms) < DAY_MS)
        .map(|d| row(app, w, d, &in_force))
        .collect();
    Live {
        w,
        in_force: rows_in_force,
        recent,
        chart: chart(&app.watch.activity()),
    }
    .render()
}

#[derive(Template)]
#[template(path = "console/now.html")]
struct NowPage {
    shell: Shell,
    live: String,
    /// On a mesh node: the members as they answered, or why they could not be asked.
    mesh: Option<Result<crate::mesh_view::MeshPicture, String>>,
}

/// The last hour, drawn here as SVG: points are numbers only, and every word goes
/// through the template's escaping.
struct Chart {
    /// `x,y` pairs of the records read each minute.
    reads: String,
    /// Same, requests refused.
    refused: String,
    /// x of each minute with a decision.
    decisions: Vec<u64>,
    /// The scale's top (reads or refusals in a minute).
    top: u32,
    /// By role over the hour: (role, reads, refused), most reads first.
    roles: Vec<(String, u32, u32)>,
}

/// Chart geometry: one minute every 10 units across, 150 units high.
const CHART_STEP: u64 = 10;
const CHART_HEIGHT: u32 = 150;

fn chart(minutes: &[crate::activity::Minute]) -> Chart {
    let total = |m: &crate::activity::Minute, read: bool| -> u32 {
        m.roles
            .values()
            .map(|c| if read { c.reads } else { c.refused })
            .sum()
    };
    let top = minutes
        .iter()
        .flat_map(|m| [total(m, true), total(m, false)])
        .max()
        .unwrap_or(0)
        .max(1);
    let line = |read: bool| {
        minutes
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let y = CHART_HEIGHT - total(m, read) * CHART_HEIGHT / top;
                format!("{},{y}", i as u64 * CHART_STEP)
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut roles: BTreeMap<String, (u32, u32)> = BTreeMap::new();
    for m in minutes {
        for (role, c) in &m.roles {
            let e = roles.entry(role.clone()).or_default();
            e.0 += c.reads;
            e.1 += c.refused;
        }
    }
    let mut roles: Vec<(String, u32, u32)> =
        roles.into_iter().map(|(r, (a, b))| (r, a, b)).collect();
    roles.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Chart {
        reads: line(true),
        refused: line(false),
        decisions: minutes
            .iter()
            .enumerate()
            .filter(|(_, m)| m.decisions > 0)
            .map(|(i, _)| i as u64 * CHART_STEP)
            .collect(),
        top,
        roles,
    }
}

async fn now(State(app): State<Shared>, v: Viewer) -> Response {
    let live = match live_html(&app, v.lang.words()) {
        Ok(l) => l,
        Err(e) => return html(StatusCode::INTERNAL_SERVER_ERROR, Err(e)),
    };
    let mesh = match app.mesh.get().cloned() {
        None => None,
        Some(view) => Some(
            tokio::task::spawn_blocking(move || view.picture())
                .await
                .unwrap_or_else(|e| Err(format!("the mesh could not be asked: {e}"))),
        ),
    };
    html(
        StatusCode::OK,
        NowPage {
            shell: shell(&app, &v, "now"),
            live,
            mesh,
        }
        .render(),
    )
}

async fn live(State(app): State<Shared>, v: Viewer) -> Response {
    html(StatusCode::OK, live_html(&app, v.lang.words()))
}

/// What a page's live lists depend on: when it changes, the page is told.
fn fingerprint(app: &Shared) -> (Vec<String>, usize) {
    (app.watch.in_force(), app.watch.decision_count())
}

async fn events(State(app): State<Shared>, _v: Viewer) -> Response {
    let started = tokio::time::Instant::now();
    let stream = futures_util::stream::unfold((app, None), move |(app, last)| async move {
        loop {
            if started.elapsed() >= STREAM_FOR {
                return None;
            }
            let fp = fingerprint(&app);
            if last.as_ref() != Some(&fp) {
                let event = Event::default()
                    .event("decisions")
                    .data(fp.0.len().to_string());
                return Some((Ok::<_, std::convert::Infallible>(event), (app, Some(fp))));
            }
            tokio::time::sleep(STREAM_EVERY).await;
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[derive(Template)]
#[template(path = "console/decisions.html")]
struct DecisionsPage {
    shell: Shell,
    rows: Vec<Row>,
}

async fn decisions(State(app): State<Shared>, v: Viewer) -> Response {
    let in_force = app.watch.in_force();
    let mut all = app.watch.decisions();
    all.sort_by_key(|d| std::cmp::Reverse(d.time_ms));
    let rows = all
        .iter()
        .map(|d| row(&app, v.lang.words(), d, &in_force))
        .collect();
    html(
        StatusCode::OK,
        DecisionsPage {
            shell: shell(&app, &v, "decisions"),
            rows,
        }
        .render(),
    )
}

#[derive(Template)]
#[template(path = "console/decision.html")]
struct DecisionPage {
    shell: Shell,
    row: Row,
    title: String,
    evidence: Vec<String>,
    signature_ok: bool,
    approvals: Vec<String>,
    released_by: Option<String>,
    /// Why this viewer has no release form here.
    why_not: Option<&'static str>,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
    reason: String,
    /// In a mesh: the restriction's id there, released through the log only.
    mesh_id: Option<String>,
}

/// What a page after a form says (`?done=`): words, never data.
#[derive(serde::Deserialize)]
struct Done {
    done: Option<String>,
}

/// A decision's page: `notice` after a form, `error` (with the reason as typed) when the
/// form was refused.
fn decision_page(
    app: &Shared,
    v: &Viewer,
    id: &str,
    notice: Option<&'static str>,
    error: Option<(String, String)>,
) -> Response {
    let w = v.lang.words();
    let all = app.watch.decisions();
    let Some(d) = all.iter().find(|d| d.id == id) else {
        return refused(
            v.lang,
            StatusCode::NOT_FOUND,
            format!("this gateway holds no decision {id}"),
        );
    };
    let in_force = app.watch.in_force();
    let row = row(app, w, d, &in_force);
    let mesh_id = app.watch.mesh_member().map(|m| format!("{m}/{}", d.id));
    let why_not = if !v.acts {
        Some(w.read_only)
    } else if mesh_id.is_some() {
        Some(w.in_mesh)
    } else if !in_force.contains(&d.id) {
        Some(w.not_in_force)
    } else if d.target == ribat_detect::Target::Identity(v.name.clone()) {
        Some(w.own_target)
    } else {
        None
    };
    let now_s = app.watch.clock().now_ms() / 1000;
    let (error, reason) = match error {
        Some((e, r)) => (Some(e), r),
        None => (None, String::new()),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    html(
        status,
        DecisionPage {
            shell: shell(app, v, "decisions"),
            row,
            title: d.title.clone(),
            evidence: d.evidence.clone(),
            signature_ok: app.watch.signed_here(d),
            approvals: app.watch.pending_approvals(&d.id),
            released_by: app.watch.released_by(&d.id).map(|by| by.join(", ")),
            why_not,
            csrf: form::token(&v.thumbprint, now_s),
            notice,
            error,
            reason,
            mesh_id,
        }
        .render(),
    )
}

/// Ids of decisions and scans are 16 lowercase hex digits: anything else names none of
/// them, and the page says so (`what`: "decision", "scan").
#[allow(clippy::result_large_err)] // the refusal is the page answered, as is
fn hex_id(v: &Viewer, what: &str, id: &str) -> Result<(), Response> {
    if id.len() == 16 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(refused(
            v.lang,
            StatusCode::NOT_FOUND,
            format!("a {what} id is 16 hexadecimal digits"),
        ))
    }
}

async fn decision(
    State(app): State<Shared>,
    v: Viewer,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    if let Err(r) = hex_id(&v, "decision", &id) {
        return r;
    }
    let w = v.lang.words();
    let notice = match done.done.as_deref() {
        Some("pending") => Some(w.pending),
        Some("released") => Some(w.released),
        _ => None,
    };
    decision_page(&app, &v, &id, notice, None)
}

#[derive(serde::Deserialize)]
struct ReleaseForm {
    csrf: String,
    reason: String,
}

async fn release(
    State(app): State<Shared>,
    Path(id): Path<String>,
    Acting { v, form: f }: Acting<ReleaseForm>,
) -> Response {
    if app.watch.mesh_member().is_some() {
        return refused(
            v.lang,
            StatusCode::CONFLICT,
            v.lang.words().in_mesh.to_owned(),
        );
    }
    if let Err(r) = hex_id(&v, "decision", &id) {
        return r;
    }
    let reason = f.reason.trim().to_owned();
    if reason.is_empty() || reason.len() > 500 {
        let e = v.lang.words().reason_missing.to_owned();
        return decision_page(&app, &v, &id, None, Some((e, f.reason)));
    }
    let (watch, admin, decision) = (app.watch.clone(), v.name.clone(), id.clone());
    let r = tokio::task::spawn_blocking(move || watch.approve_release(&decision, &admin, &reason))
        .await;
    match r {
        Ok(Ok(ribat_detect::decision::ReleaseState::Pending { .. })) => {
            Redirect::to(&format!("/console/decisions/{id}?done=pending")).into_response()
        }
        Ok(Ok(ribat_detect::decision::ReleaseState::Released { .. })) => {
            Redirect::to(&format!("/console/decisions/{id}?done=released")).into_response()
        }
        Ok(Err(e)) => {
            let page = decision_page(&app, &v, &id, None, Some((e.to_string(), f.reason)));
            let (mut parts, body) = page.into_parts();
            parts.status = StatusCode::CONFLICT;
            Response::from_parts(parts, body)
        }
        Err(e) => refused(
            v.lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the release could not be recorded: {e}"),
        ),
    }
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    shell: Shell,
    csrf: String,
    cnss: String,
    error: Option<String>,
    result: Option<AuditResult>,
    checkpoint: Option<CheckpointLine>,
    history: Vec<HistoryLine>,
}

/// One checkpoint the log signed, newest first on the page.
struct HistoryLine {
    size: u64,
    /// The root's first 16 hex digits (the whole is in the note).
    root: String,
    signed_by: String,
    /// The latest one a quorum cosigned (what proofs are checked against).
    latest: bool,
}

/// Checkpoints the Audit page lists.
const HISTORY_SHOWN: usize = 12;

/// The log's latest checkpoints, newest first (a note that does not parse is shown as
/// such, not skipped: the history is the log's own record). The newest of the size and
/// root proofs are checked against is marked (an idle log signs the same tree again).
fn history(
    log: &ribat_audit::log::Log,
    latest: Option<&crate::subject::Against>,
) -> Vec<HistoryLine> {
    let mut marked = false;
    log.recent_checkpoints(HISTORY_SHOWN)
        .unwrap_or_default()
        .iter()
        .map(|text| match crate::subject::against_of(text) {
            Ok(a) => {
                let is_latest =
                    !marked && latest.is_some_and(|l| l.size == a.size && l.root == a.root);
                marked |= is_latest;
                HistoryLine {
                    size: a.size,
                    root: a.root.to_hex().chars().take(16).collect(),
                    signed_by: a.signed_by.join(", "),
                    latest: is_latest,
                }
            }
            Err(_) => HistoryLine {
                size: 0,
                root: "damaged note".into(),
                signed_by: String::new(),
                latest: false,
            },
        })
        .collect()
}

struct AuditResult {
    rows: Vec<AccessRow>,
}

struct AccessRow {
    index: u64,
    when: String,
    purpose: String,
    role: String,
    institution: String,
    identity: String,
    outcome: String,
    fields: String,
    proved: bool,
}

struct CheckpointLine {
    size: u64,
    signed_by: String,
}

/// The Audit page: the form, and what a lookup found (or why it found nothing).
fn audit_page(
    app: &Shared,
    v: &Viewer,
    cnss: String,
    error: Option<String>,
    result: Option<AuditResult>,
) -> Response {
    let against = crate::subject::latest_cosigned(app.vault.audit.log());
    let checkpoint = match &against {
        Ok(Some(a)) => Some(CheckpointLine {
            size: a.size,
            signed_by: a.signed_by.join(", "),
        }),
        _ => None,
    };
    let history = history(
        app.vault.audit.log(),
        against.as_ref().ok().and_then(Option::as_ref),
    );
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let now_s = app.watch.clock().now_ms() / 1000;
    html(
        status,
        AuditPage {
            shell: shell(app, v, "audit"),
            csrf: form::token(&v.thumbprint, now_s),
            cnss,
            error,
            result,
            checkpoint,
            history,
        }
        .render(),
    )
}

async fn audit(State(app): State<Shared>, v: Viewer) -> Response {
    audit_page(&app, &v, String::new(), None, None)
}

#[derive(serde::Deserialize)]
struct LookupForm {
    csrf: String,
    cnss: String,
}

/// Who accessed the person with this CNSS number: a POST, so that the number travels in
/// the body and never in an address (nor in a log of addresses).
async fn audit_lookup(
    State(app): State<Shared>,
    v: Viewer,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Form<LookupForm>, FormRejection>,
) -> Response {
    if let Err(r) = own_form(
        &app,
        &v,
        &headers,
        &uri,
        body.as_ref().ok().map(|f| f.csrf.as_str()),
    ) {
        return r;
    }
    let Ok(Form(f)) = body else {
        return refused(
            v.lang,
            StatusCode::BAD_REQUEST,
            "the form could not be read: send it from the Audit page".into(),
        );
    };
    let w = v.lang.words();
    let cnss = f.cnss.trim().to_owned();
    if cnss.len() != 9 || !cnss.bytes().all(|b| b.is_ascii_digit()) {
        return audit_page(&app, &v, f.cnss, Some(w.cnss_invalid.into()), None);
    }
    let vault = app.vault.clone();
    let (identity, role, institution) = (v.name.clone(), v.role.clone(), v.institution.clone());
    let now_ms = app.watch.clock().now_ms();
    let found = tokio::task::spawn_blocking(
        move || -> Result<Option<Vec<crate::subject::Access>>, String> {
            let records = vault.by_cnss(&cnss).map_err(|e| e.to_string())?;
            let Some(record) = records.first() else {
                return Ok(None);
            };
            // Recorded before anything is listed: the lookup shows in the person's list.
            let asker = crate::subject::Asker {
                identity: &identity,
                role: &role,
                institution: &institution,
            };
            crate::subject::looked_up(&vault.audit, &asker, record, now_ms)
                .map(|found| Some(found.accesses))
                .map_err(|e| e.to_string())
        },
    )
    .await;
    let accesses = match found {
        Ok(Ok(Some(a))) => a,
        Ok(Ok(None)) => return audit_page(&app, &v, f.cnss, Some(w.no_person.into()), None),
        Ok(Err(e)) => {
            return refused(v.lang, StatusCode::SERVICE_UNAVAILABLE, e);
        }
        Err(e) => {
            return refused(
                v.lang,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the lookup failed: {e}"),
            );
        }
    };
    let rows = accesses
        .iter()
        .map(|a| AccessRow {
            index: a.index,
            when: utc(a.entry.time_ms),
            purpose: a.entry.purpose.clone(),
            role: a.entry.role.clone(),
            institution: a.entry.institution.clone(),
            identity: a.entry.identity.clone(),
            outcome: a.entry.outcome.clone(),
            fields: a.entry.fields.join(", "),
            proved: a.proof.is_some(),
        })
        .collect();
    audit_page(&app, &v, f.cnss, None, Some(AuditResult { rows }))
}

/// One entry's inclusion proof against the latest cosigned checkpoint, as the file `ribat
/// audit verify-proof` checks.
async fn audit_proof(State(app): State<Shared>, v: Viewer, Path(index): Path<u64>) -> Response {
    let vault = app.vault.clone();
    let proof = tokio::task::spawn_blocking(move || {
        crate::subject::proof_of(vault.audit.log(), index).map_err(|e| e.to_string())
    })
    .await;
    match proof {
        Ok(Ok(Some(file))) => (
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"ribat-proof-{index}.json\""),
                ),
            ],
            file.to_string(),
        )
            .into_response(),
        Ok(Ok(None)) => refused(
            v.lang,
            StatusCode::NOT_FOUND,
            format!("entry {index} is not in the log's latest cosigned checkpoint (yet)"),
        ),
        Ok(Err(e)) => refused(v.lang, StatusCode::SERVICE_UNAVAILABLE, e),
        Err(e) => refused(
            v.lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the proof could not be made: {e}"),
        ),
    }
}

/// The viewer of a form that acts (role `security`), posted from the console's own page;
/// the refusal page otherwise.
#[allow(clippy::result_large_err)] // the refusal is the page answered, as is
fn acting(
    app: &Shared,
    v: Viewer,
    headers: &HeaderMap,
    uri: &Uri,
    csrf: Option<&str>,
) -> Result<Viewer, Response> {
    if !v.acts {
        return Err(refused(
            v.lang,
            StatusCode::FORBIDDEN,
            v.lang.words().read_only.to_owned(),
        ));
    }
    own_form(app, &v, headers, uri, csrf)?;
    Ok(v)
}

/// Whether a form is the console's own: posted from this origin with the token of a page
/// shown to this viewer. The refusal page otherwise.
#[allow(clippy::result_large_err)] // the refusal is the page answered, as is
fn own_form(
    app: &Shared,
    v: &Viewer,
    headers: &HeaderMap,
    uri: &Uri,
    csrf: Option<&str>,
) -> Result<(), Response> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| uri.authority().map(|a| a.as_str()));
    if let Err(why) = form::same_origin(headers, host) {
        return Err(refused(v.lang, StatusCode::FORBIDDEN, why.to_string()));
    }
    let Some(csrf) = csrf else {
        return Err(refused(
            v.lang,
            StatusCode::BAD_REQUEST,
            "the form could not be read: send it from the console's page".into(),
        ));
    };
    let now_s = app.watch.clock().now_ms() / 1000;
    form::check(csrf, &v.thumbprint, now_s)
        .map_err(|why| refused(v.lang, StatusCode::FORBIDDEN, why.to_string()))
}

#[derive(Template)]
#[template(path = "console/exports.html")]
struct ExportsPage {
    shell: Shell,
    rows: Vec<ExportRow>,
    acts: bool,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

struct ExportRow {
    id: String,
    recipient: String,
    purpose: String,
    persons: usize,
    requested_by: String,
    approvals: String,
    state: String,
    fetched: String,
    can_approve: bool,
    can_run: bool,
}

fn exports_page(
    app: &Shared,
    v: &Viewer,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let w = v.lang.words();
    let (rows, error) = match app.exports.as_ref().map(|d| d.list()) {
        None => (
            Vec::new(),
            error.or_else(|| Some("this gateway runs no export desk".to_owned())),
        ),
        Some(Err(e)) => (Vec::new(), Some(e.to_string())),
        Some(Ok(list)) => (
            list.into_iter()
                .map(|x| {
                    let approved = x.approvals.len() >= x.needed;
                    let state = match (x.ran_at, approved) {
                        (Some(t), _) => format!(
                            "{} {} ({} rows)",
                            w.ran,
                            utc(u64::try_from(t).unwrap_or(0).saturating_mul(1000)),
                            x.rows.unwrap_or(0)
                        ),
                        (None, true) => w.approved_ready.to_owned(),
                        (None, false) => {
                            format!("{} ({}/{})", w.waiting, x.approvals.len(), x.needed)
                        }
                    };
                    ExportRow {
                        can_approve: x.ran_at.is_none()
                            && !approved
                            && !x.approvals.contains(&v.name),
                        can_run: x.ran_at.is_none() && approved,
                        fetched: x
                            .fetched
                            .iter()
                            .map(|(who, t)| {
                                format!("{who} {}", utc(u64::try_from(*t).unwrap_or(0) * 1000))
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                        id: x.id,
                        recipient: x.recipient,
                        purpose: x.purpose,
                        persons: x.persons,
                        requested_by: x.requested_by,
                        approvals: x.approvals.join(", "),
                        state,
                    }
                })
                .collect(),
            error,
        ),
    };
    let now_s = app.watch.clock().now_ms() / 1000;
    html(
        status,
        ExportsPage {
            shell: shell(app, v, "exports"),
            rows,
            acts: v.acts,
            csrf: form::token(&v.thumbprint, now_s),
            notice,
            error,
        }
        .render(),
    )
}

async fn exports(State(app): State<Shared>, v: Viewer, Query(done): Query<Done>) -> Response {
    let w = v.lang.words();
    let notice = match done.done.as_deref() {
        Some("approve") => Some(w.export_approved),
        Some("run") => Some(w.export_ran),
        _ => None,
    };
    exports_page(&app, &v, StatusCode::OK, notice, None)
}

#[derive(serde::Deserialize)]
struct TokenOnly {
    csrf: String,
}

/// Approves or runs an export from the page: the same desk the API's
/// `/v1/exports/{id}/approve` and `/run` call, for role `security` only.
async fn export_step(
    State(app): State<Shared>,
    Path((id, step)): Path<(String, String)>,
    Acting { v, .. }: Acting<TokenOnly>,
) -> Response {
    let Some(desk) = app.exports.clone() else {
        return refused(
            v.lang,
            StatusCode::NOT_FOUND,
            "this gateway runs no export desk".into(),
        );
    };
    let admin = v.name.clone();
    let (id2, step2) = (id.clone(), step.clone());
    let r = tokio::task::spawn_blocking(move || match step2.as_str() {
        "approve" => desk.approve(&id2, &admin).map(|_| ()),
        "run" => desk.run(&id2).map(|_| ()),
        other => Err(crate::desk::ExportError::NotFound(format!(
            "no step `{other}`: approve or run"
        ))),
    })
    .await;
    match r {
        Ok(Ok(())) => Redirect::to(&format!("/console/exports?done={step}")).into_response(),
        Ok(Err(e)) => exports_page(&app, &v, StatusCode::CONFLICT, None, Some(e.to_string())),
        Err(e) => refused(
            v.lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the export step failed: {e}"),
        ),
    }
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../assets/console/console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../../assets/console/console.js"),
    )
        .into_response()
}
