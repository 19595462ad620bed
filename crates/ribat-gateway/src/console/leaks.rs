//! The Leaks page: a dump uploaded from the browser (streamed to the node's disk, never
//! held here), its scan followed until the report, the report drawn (the breakdown by
//! class as SVG, the persons affected, who read them), and the two-administrator step
//! that writes the data-protection authority's notification list.

use super::{Done, Shell, Viewer, form, html, refused, shell, utc};
use crate::app::Shared;
use crate::leak_desk::{LeakDesk, LeakDeskError, LeakPhase, LeakState, MAX_DUMP};
use crate::to_disk::NotKept;
use askama::Template;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::sync::Arc;

/// One scan as a line of the list.
struct LeakRow {
    id: String,
    file: String,
    size: String,
    uploaded: String,
    phase: &'static str,
    phase_class: &'static str,
    rows: u64,
    affected: String,
}

#[derive(Template)]
#[template(path = "console/leaks.html")]
struct LeaksPage {
    shell: Shell,
    rows: Vec<LeakRow>,
    acts: bool,
    csrf: String,
    error: Option<String>,
    field_error: Option<String>,
}

/// Bytes for a person: `12.3 MB`.
fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1} GB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} kB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

fn at(s: i64) -> String {
    utc(u64::try_from(s).unwrap_or(0).saturating_mul(1000))
}

/// A phase in the viewer's words, and its class on the page.
fn phase(w: &super::Words, p: LeakPhase) -> (&'static str, &'static str) {
    match p {
        LeakPhase::Queued => (w.phase_queued, "running"),
        LeakPhase::Scanning => (w.phase_scanning, "running"),
        LeakPhase::Done => (w.phase_done, "active"),
        LeakPhase::Failed => (w.phase_failed, "ended"),
    }
}

fn desk(app: &Shared) -> Option<Arc<dyn LeakDesk>> {
    app.leaks.clone()
}

/// The list and the upload form; `field_error` next to the file field.
fn leaks_page(
    app: &Shared,
    v: &Viewer,
    status: StatusCode,
    error: Option<String>,
    field_error: Option<String>,
) -> Response {
    let w = v.lang.words();
    let (rows, error) = match desk(app).map(|d| d.list()) {
        None => (
            Vec::new(),
            error.or_else(|| Some(w.no_leak_desk.to_owned())),
        ),
        Some(Err(e)) => (Vec::new(), Some(e.to_string())),
        Some(Ok(list)) => (
            list.into_iter()
                .map(|s| {
                    let (p, class) = phase(w, s.phase);
                    LeakRow {
                        affected: s
                            .report
                            .as_ref()
                            .map_or_else(|| "—".to_owned(), |r| r.affected_persons.to_string()),
                        size: size(s.bytes),
                        uploaded: format!("{} · {}", at(s.uploaded_at), s.by),
                        phase: p,
                        phase_class: class,
                        rows: s.rows_done,
                        id: s.id,
                        file: s.file,
                    }
                })
                .collect(),
            error,
        ),
    };
    let now_s = app.watch.clock().now_ms() / 1000;
    html(
        status,
        LeaksPage {
            shell: shell(app, v, "leaks"),
            rows,
            acts: v.acts,
            csrf: form::token(&v.thumbprint, now_s),
            error,
            field_error,
        }
        .render(),
    )
}

pub(super) async fn leaks(State(app): State<Shared>, v: Viewer) -> Response {
    leaks_page(&app, &v, StatusCode::OK, None, None)
}

/// The next part of an upload, or the page saying what is wrong with the form.
async fn next_field<'m>(
    app: &Shared,
    v: &Viewer,
    mp: &'m mut Multipart,
) -> Result<Option<Field<'m>>, Response> {
    mp.next_field().await.map_err(|e| {
        leaks_page(
            app,
            v,
            StatusCode::BAD_REQUEST,
            Some(format!(
                "the upload could not be read ({e}); send it again from this page"
            )),
            None,
        )
    })
}

/// `POST /console/leaks`, a multipart form whose first part is the page's token and whose
/// second is the dump: the token and the origin are checked before a byte of the dump is
/// read, and the dump goes to the node's disk as it arrives (with its SHA-256), then is
/// queued for scanning. Answers with the scan's page.
pub(super) async fn upload(
    State(app): State<Shared>,
    v: Viewer,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Multipart, MultipartRejection>,
) -> Response {
    let w = v.lang.words();
    if !v.acts {
        return refused(v.lang, StatusCode::FORBIDDEN, w.read_only.to_owned());
    }
    let Ok(mut mp) = body else {
        return refused(
            v.lang,
            StatusCode::BAD_REQUEST,
            "the upload could not be read: send it from the Leaks page".into(),
        );
    };
    // The token comes first in the page's form; without it nothing more is read.
    let token = match next_field(&app, &v, &mut mp).await {
        Ok(Some(f)) if f.name() == Some("csrf") => f.text().await.ok(),
        Ok(_) => None,
        Err(r) => return r,
    };
    if let Err(r) = super::own_form(&app, &v, &headers, &uri, token.as_deref()) {
        return r;
    }
    let Some(desk) = desk(&app) else {
        return leaks_page(&app, &v, StatusCode::NOT_FOUND, None, None);
    };
    let mut field = match next_field(&app, &v, &mut mp).await {
        Ok(Some(f)) if f.name() == Some("dump") => f,
        Ok(_) => {
            let e = w.choose_file.to_owned();
            return leaks_page(&app, &v, StatusCode::BAD_REQUEST, None, Some(e));
        }
        Err(r) => return r,
    };
    let file = field.file_name().unwrap_or_default().to_owned();
    if file.is_empty() {
        let e = w.choose_file.to_owned();
        return leaks_page(&app, &v, StatusCode::BAD_REQUEST, None, Some(e));
    }
    let placed = {
        let desk = desk.clone();
        tokio::task::spawn_blocking(move || desk.place()).await
    };
    let (id, path) = match placed {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            return leaks_page(
                &app,
                &v,
                StatusCode::SERVICE_UNAVAILABLE,
                Some(e.to_string()),
                None,
            );
        }
        Err(e) => {
            return refused(
                v.lang,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the upload task failed: {e}"),
            );
        }
    };
    let partial = path.with_extension("partial");
    let received = crate::to_disk::receive(&mut field, &partial, MAX_DUMP).await;
    let (bytes, sha256) = match received {
        Ok(r) => r,
        Err(why) => {
            let _ = tokio::fs::remove_file(&partial).await;
            if let Some(dir) = partial.parent() {
                let _ = tokio::fs::remove_dir_all(dir).await;
            }
            let status = match why {
                NotKept::Empty | NotKept::TooLarge => StatusCode::BAD_REQUEST,
                NotKept::Broken(_) => StatusCode::BAD_REQUEST,
                NotKept::Disk(_) => StatusCode::SERVICE_UNAVAILABLE,
            };
            let (error, field_error) = match why {
                NotKept::Empty => (None, Some(w.empty_file.to_owned())),
                NotKept::TooLarge => (
                    None,
                    Some(format!("{} ({})", w.file_too_large, size(MAX_DUMP))),
                ),
                NotKept::Broken(e) => (
                    Some(format!(
                        "the upload broke off ({e}); nothing was kept, send it again"
                    )),
                    None,
                ),
                NotKept::Disk(e) => (
                    Some(format!(
                        "the node cannot keep the dump ({e}); nothing was kept"
                    )),
                    None,
                ),
            };
            return leaks_page(&app, &v, status, error, field_error);
        }
    };
    let by = v.name.clone();
    let queued = tokio::task::spawn_blocking(move || -> Result<LeakState, LeakDeskError> {
        let failed =
            |e: std::io::Error| LeakDeskError::Failed(format!("cannot keep the dump: {e}"));
        crate::to_disk::commit(&partial, &path).map_err(failed)?;
        desk.queue(&id, &file, bytes, &sha256, &by)
    })
    .await;
    match queued {
        Ok(Ok(s)) => Redirect::to(&format!("/console/leaks/{}", s.id)).into_response(),
        Ok(Err(e)) => leaks_page(
            &app,
            &v,
            StatusCode::SERVICE_UNAVAILABLE,
            Some(e.to_string()),
            None,
        ),
        Err(e) => refused(
            v.lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the upload task failed: {e}"),
        ),
    }
}

/// One bar of the breakdown.
struct Bar {
    label: String,
    class: String,
    count: u64,
    y: u32,
    width: u64,
}

/// One attribution candidate as the page shows it.
struct CandidateLine {
    identity: String,
    role: String,
    covered: u64,
    of: u64,
    chance: String,
    from: String,
    to: String,
}

#[derive(Template)]
#[template(path = "console/leak.html")]
struct LeakPage {
    shell: Shell,
    s: LeakState,
    size: String,
    uploaded: String,
    phase: &'static str,
    phase_key: &'static str,
    phase_class: &'static str,
    running: bool,
    bars: Vec<Bar>,
    chart_height: u32,
    candidates: Vec<CandidateLine>,
    fetched: String,
    acts: bool,
    can_approve: bool,
    why_not: Option<&'static str>,
    csrf: String,
    notice: Option<&'static str>,
    error: Option<String>,
}

/// Width of the longest bar.
const BAR_WIDTH: u64 = 400;

fn leak_page(
    app: &Shared,
    v: &Viewer,
    id: &str,
    status: StatusCode,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Response {
    let w = v.lang.words();
    let Some(desk) = desk(app) else {
        return refused(v.lang, StatusCode::NOT_FOUND, w.no_leak_desk.to_owned());
    };
    let s = match desk.state(id) {
        Ok(s) => s,
        Err(LeakDeskError::NotFound(m)) => return refused(v.lang, StatusCode::NOT_FOUND, m),
        Err(e) => return refused(v.lang, StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    let (phase_words, phase_class) = phase(w, s.phase);
    let (bars, candidates) = match &s.report {
        None => (Vec::new(), Vec::new()),
        Some(r) => {
            let top = r.classes.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
            let bars = r
                .classes
                .iter()
                .zip(0u32..)
                .map(|((class, n), i)| Bar {
                    label: class.clone(),
                    class: class.clone(),
                    count: *n,
                    y: i * 24,
                    width: n * BAR_WIDTH / top,
                })
                .collect();
            let candidates = r
                .candidates
                .iter()
                .map(|c| CandidateLine {
                    identity: c.identity.clone(),
                    role: c.role.clone(),
                    covered: c.covered,
                    of: c.of,
                    chance: format!("{:.0}", c.chance_log10),
                    from: utc(c.first_ms),
                    to: utc(c.last_ms),
                })
                .collect();
            (bars, candidates)
        }
    };
    let chart_height = u32::try_from(bars.len()).unwrap_or(0) * 24 + 4;
    let approved = s.approvals.iter().any(|a| a == &v.name);
    let why_not = if !v.acts {
        Some(w.read_only)
    } else if approved {
        Some(w.notify_second)
    } else {
        None
    };
    let fetched = s
        .notification
        .as_ref()
        .map(|n| {
            n.fetched
                .iter()
                .map(|(who, t)| format!("{who} {}", at(*t)))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .unwrap_or_default();
    let now_s = app.watch.clock().now_ms() / 1000;
    html(
        status,
        LeakPage {
            shell: shell(app, v, "leaks"),
            size: size(s.bytes),
            uploaded: at(s.uploaded_at),
            phase: phase_words,
            phase_key: match s.phase {
                LeakPhase::Queued => "queued",
                LeakPhase::Scanning => "scanning",
                LeakPhase::Done => "done",
                LeakPhase::Failed => "failed",
            },
            phase_class,
            running: matches!(s.phase, LeakPhase::Queued | LeakPhase::Scanning),
            bars,
            chart_height,
            candidates,
            fetched,
            acts: v.acts,
            can_approve: v.acts && !approved && s.phase == LeakPhase::Done,
            why_not,
            csrf: form::token(&v.thumbprint, now_s),
            notice,
            error,
            s,
        }
        .render(),
    )
}

pub(super) async fn leak(
    State(app): State<Shared>,
    v: Viewer,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    if let Err(r) = super::hex_id(&v, "scan", &id) {
        return r;
    }
    let w = v.lang.words();
    let notice = match done.done.as_deref() {
        Some("pending") => Some(w.notify_pending),
        Some("written") => Some(w.notify_written),
        _ => None,
    };
    leak_page(&app, &v, &id, StatusCode::OK, notice, None)
}

/// `POST /console/leaks/{id}/notify`: this administrator's approval of the notification
/// list; the second distinct one's writes it.
pub(super) async fn notify(
    State(app): State<Shared>,
    Path(id): Path<String>,
    super::Acting { v, .. }: super::Acting<super::TokenOnly>,
) -> Response {
    let Some(desk) = desk(&app) else {
        return refused(
            v.lang,
            StatusCode::NOT_FOUND,
            v.lang.words().no_leak_desk.to_owned(),
        );
    };
    if let Err(r) = super::hex_id(&v, "scan", &id) {
        return r;
    }
    let (admin, scan) = (v.name.clone(), id.clone());
    let r = tokio::task::spawn_blocking(move || desk.approve_notification(&scan, &admin)).await;
    match r {
        Ok(Ok(s)) if s.notification.is_some() => {
            Redirect::to(&format!("/console/leaks/{id}?done=written")).into_response()
        }
        Ok(Ok(_)) => Redirect::to(&format!("/console/leaks/{id}?done=pending")).into_response(),
        Ok(Err(LeakDeskError::NotFound(m))) => refused(v.lang, StatusCode::NOT_FOUND, m),
        Ok(Err(e @ LeakDeskError::Refused(_))) => leak_page(
            &app,
            &v,
            &id,
            StatusCode::CONFLICT,
            None,
            Some(e.to_string()),
        ),
        Ok(Err(e)) => leak_page(
            &app,
            &v,
            &id,
            StatusCode::SERVICE_UNAVAILABLE,
            None,
            Some(e.to_string()),
        ),
        Err(e) => refused(
            v.lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the approval could not be recorded: {e}"),
        ),
    }
}

/// `GET /console/leaks/{id}/notification.csv`: the list, for role `security` only (it
/// names persons in clear); the fetch is recorded before the bytes leave.
pub(super) async fn notification(
    State(app): State<Shared>,
    v: Viewer,
    Path(id): Path<String>,
) -> Response {
    if !v.acts {
        return refused(
            v.lang,
            StatusCode::FORBIDDEN,
            v.lang.words().read_only.to_owned(),
        );
    }
    let Some(desk) = desk(&app) else {
        return refused(
            v.lang,
            StatusCode::NOT_FOUND,
            v.lang.words().no_leak_desk.to_owned(),
        );
    };
    if let Err(r) = super::hex_id(&v, "scan", &id) {
        return r;
    }
    let (who, scan) = (v.name.clone(), id.clone());
    let r = tokio::task::spawn_blocking(move || desk.fetch_notification(&scan, &who)).await;
    match r {
        Ok(Ok(bytes)) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"ribat-notification-{id}.csv\""),
                ),
            ],
            bytes,
        )
            .into_response(),
        Ok(Err(LeakDeskError::NotFound(m))) => refused(v.lang, StatusCode::NOT_FOUND, m),
        Ok(Err(e @ LeakDeskError::Refused(_))) => {
            refused(v.lang, StatusCode::CONFLICT, e.to_string())
        }
        Ok(Err(e)) => refused(v.lang, StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => refused(
            v.lang,
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the list could not be read: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_as_a_person_would_say_them() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(2048), "2.0 kB");
        assert_eq!(size(12 * 1024 * 1024 + 300 * 1024), "12.3 MB");
        assert_eq!(size(3 << 30), "3.0 GB");
    }
}
