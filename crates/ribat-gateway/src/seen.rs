//! What each routed request tells the watch: the `observe` layer times and counts it, and
//! turns what a handler read (`Seen`, left in the response's extensions) or the problem it
//! answered into events; a decision the detectors reach is in force before the response
//! that triggered it leaves.

use crate::app::App;
use crate::app::{Shared, actor_of};
use crate::gate::Admitted;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ribat_detect::event::{Access, Actor, AuthFailure, Denied, Event, Kind, Refusal};
use ribat_net::listener::Caller;
use ribat_net::problem::{Problem, ProblemType};
use ribat_policy::{Purpose, Table};
use std::collections::BTreeMap;
use std::time::Instant;

/// Times every routed request and counts it by route template, status and problem type;
/// hands what happened to the watch, whose decisions are in force before the response
/// leaves.
pub(crate) async fn observe(State(app): State<Shared>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let actor = req.extensions().get::<Caller>().map(actor_of);
    let start = Instant::now();
    let response = next.run(req).await;
    let slug = response
        .extensions()
        .get::<ProblemType>()
        .map(|ProblemType(s)| s.clone());
    if let Some(s) = &slug {
        app.metrics.problem(s);
    }
    let status = response.status();
    app.metrics
        .observe(&route, status.as_u16(), start.elapsed().as_secs_f64());
    let events = events_of(
        &app,
        actor,
        &route,
        status,
        slug,
        response.extensions().get::<Seen>(),
    );
    if !events.is_empty() {
        let watch = app.watch.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for e in &events {
                watch.observe(e);
            }
        })
        .await;
    }
    response
}

/// What a data handler read, for the watch (in the response's extensions).
#[derive(Debug, Clone)]
pub(crate) struct Seen {
    /// Declared purpose.
    pub purpose: Purpose,
    /// Table.
    pub table: Table,
    /// Records read (empty: the lookup found nobody).
    pub subjects: Vec<String>,
    /// The number looked up, when it was one.
    pub lookup: Option<u64>,
    /// Case reference given.
    pub case_ref: Option<String>,
    /// Employer or city of each subject, when it was released (hashed here).
    pub areas: Vec<Option<String>>,
}

pub(crate) fn area_tag(value: &str) -> String {
    use sha2::Digest;
    hex::encode(&sha2::Sha256::digest(value.trim().to_lowercase().as_bytes())[..8])
}

/// The events one request makes.
pub(crate) fn events_of(
    app: &App,
    actor: Option<Actor>,
    route: &str,
    status: StatusCode,
    slug: Option<String>,
    seen: Option<&Seen>,
) -> Vec<Event> {
    let Some(actor) = actor else {
        return Vec::new();
    };
    let time_ms = app.gate.clock().now_ms();
    let event = |kind| Event {
        time_ms,
        component: app.watch_component(),
        kind,
    };
    if let Some(s) = seen {
        let access = |subject: Option<String>, area: Option<String>| {
            let public_figure = subject
                .as_deref()
                .is_some_and(|id| app.watch.is_public_figure(id));
            event(Kind::Access(Access {
                actor: actor.clone(),
                purpose: s.purpose.clone(),
                route: route.to_owned(),
                table: s.table,
                subject,
                lookup: s.lookup,
                case_ref: s.case_ref.clone(),
                public_figure,
                area,
            }))
        };
        if s.subjects.is_empty() {
            return vec![access(None, None)];
        }
        return s
            .subjects
            .iter()
            .enumerate()
            .map(|(i, id)| access(Some(id.clone()), s.areas.get(i).cloned().flatten()))
            .collect();
    }
    let Some(reason) = slug else {
        return Vec::new();
    };
    if status == StatusCode::UNAUTHORIZED {
        return vec![event(Kind::AuthFailure(AuthFailure { actor, reason }))];
    }
    let reason = Refusal::from(reason);
    // Refusals by the watch itself are its own decisions at work, not new evidence.
    if reason.is_a_decision_at_work() {
        app.watch.held(&actor.role, time_ms);
        return Vec::new();
    }
    vec![event(Kind::Denied(Denied {
        actor,
        purpose: None,
        route: route.to_owned(),
        reason,
    }))]
}

/// The area of a released person (employer, else city), for the breadth detector.
pub(crate) fn area_of(fields: &BTreeMap<String, String>) -> Option<String> {
    fields
        .get("employer")
        .or_else(|| fields.get("city"))
        .filter(|v| !v.is_empty())
        .map(|v| area_tag(v))
}

pub(crate) fn with_seen(mut r: Response, seen: Seen) -> Response {
    r.extensions_mut().insert(seen);
    r
}

/// What a read handler's blocking part returns: the response, the subjects read and their
/// areas.
pub(crate) type ReadOutcome = (Response, Vec<String>, Vec<Option<String>>);

/// The handler's answer with what it read attached; a lookup that found nobody (404) is
/// evidence too (guessing numbers).
pub(crate) fn answered(
    result: Result<ReadOutcome, Problem>,
    mut seen: Seen,
) -> Result<Response, Problem> {
    match result {
        Ok((r, subjects, areas)) => {
            seen.subjects = subjects;
            seen.areas = areas;
            Ok(with_seen(r, seen))
        }
        Err(p) if p.slug() == "not-found" => Ok(with_seen(p.into_response(), seen)),
        Err(p) => Err(p),
    }
}

pub(crate) fn seen(
    admitted: &Admitted,
    table: Table,
    lookup: Option<u64>,
    case: Option<String>,
) -> Seen {
    Seen {
        purpose: admitted.purpose.clone(),
        table,
        subjects: Vec::new(),
        lookup,
        case_ref: case,
        areas: Vec::new(),
    }
}
