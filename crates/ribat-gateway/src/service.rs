//! The gateway's own routes: tokens for a certificate's holder, the watch's decisions and
//! their two-person release, liveness, the OpenAPI document, metrics.

use crate::app::Authed;
use crate::app::{Shared, Tokens, require_role};
use crate::body::{
    DecisionsBody, HealthBody, ReleaseBody, ReleaseBodyState, ReleaseWord, TokenBody, TokenErrors,
    TokenIssued, TokenType,
};
use crate::reads::blocking;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ribat_net::listener::Caller;
use ribat_net::problem::Problem;

#[utoipa::path(
    post,
    path = "/v1/token",
    summary = "A token for the holder of the client certificate",
    request_body(content = Option<TokenBody>, content_type = "application/json"),
    responses(
        (status = 200, description = "OK", body = TokenIssued),
        (status = 400, description = "Malformed body or lifetime out of range", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "In a mesh: the request is not signed by its sender, or its signature or certificate is refused by the identity service", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "This gateway does not issue tokens, or the mesh's identity service did not answer", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn token(
    State(app): State<Shared>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, Problem> {
    let (token, claims) = match &app.tokens {
        Tokens::Signs(issuer) => {
            let ttl = ribat_identity::token::requested_ttl(&body)
                .map_err(|why| Problem::bad_request("bad-body", why))?;
            issuer
                .issue(&caller.peer, &app.audience, app.gate.now_utc(), ttl)
                .map_err(|e| Problem::internal(format!("cannot issue a token: {e}")))?
        }
        Tokens::Forwards(service) => {
            let signature = crate::signed::token_request(&app, &headers, &caller, &body)?;
            let token = forwarded(service, &caller, signature, &body).await?;
            // Bound to this very connection's certificate, by the key this gateway trusts.
            let claims = app
                .gate
                .authenticate(&caller, Some(&format!("Bearer {token}")))?;
            (token, claims)
        }
        Tokens::Off => {
            return Err(Problem::unavailable(
                "token-service-off",
                "this gateway does not issue tokens; ask the deployment's token service",
            ));
        }
    };
    Ok(Json(TokenIssued {
        token,
        token_type: TokenType::Bearer,
        expires_at: claims.exp,
        identity: claims.sub,
        role: claims.role.to_string(),
    })
    .into_response())
}

/// The client's signed token request (its signature checked here), forwarded to the mesh's
/// identity service: its token, or the service's refusal as it said it.
async fn forwarded(
    service: &crate::link::IdentityLink,
    caller: &Caller,
    signature: String,
    body: &[u8],
) -> Result<String, Problem> {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let ask = ribat_identity::service::UserTokenAsk {
        certificate: Base64UrlUnpadded::encode_string(&caller.certificate),
        body: Base64UrlUnpadded::encode_string(body),
        signature,
    };
    service.user_token(&ask).await.map_err(|r| match r {
        crate::link::TokenRefusal::Refused {
            status,
            slug,
            detail,
        } => Problem::new(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            &slug,
            "The identity service issued no token",
            detail,
        ),
        crate::link::TokenRefusal::Unreachable(why) => {
            Problem::unavailable("token-service-unavailable", why).retry_after(5)
        }
    })
}

/// Roles that see the decisions.
pub(crate) const DECISION_READERS: &[&str] = &["security", "auditor"];
/// Roles that approve releasing a decision.
pub(crate) const DECISION_RELEASERS: &[&str] = &["security"];

#[utoipa::path(
    get,
    path = "/v1/decisions",
    summary = "The detectors' signed decisions and those in force (security team, auditors)",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "OK", body = DecisionsBody),
        TokenErrors,
        (status = 403, description = "Not a security or auditor role; or this identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Essential services only", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn decisions_list(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
) -> Result<Response, Problem> {
    require_role(&claims, DECISION_READERS, "reading decisions")?;
    let in_force = app.watch.in_force();
    Ok(Json(DecisionsBody {
        key_id: app.watch.key_id(),
        in_force,
        decisions: app.watch.decisions(),
    })
    .into_response())
}

#[utoipa::path(
    post,
    path = "/v1/decisions/{id}/release",
    summary = "One administrator's approval to lift a decision early; two distinct administrators release it",
    security(("bearer" = [])),
    params(("id" = String, Path, pattern = "^[0-9a-f]{16}$", description = "Decision id")),
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "OK", body = ReleaseBodyState),
        TokenErrors,
        (status = 400, description = "Malformed body or no reason given", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not a security role; or this identity is quarantined", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such decision in force", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The same administrator again, or the target approving its own release; or a mesh node (a release goes through the mesh's log)", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Essential services only", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn decision_release(
    State(app): State<Shared>,
    Authed { claims, .. }: Authed,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Problem> {
    require_role(&claims, DECISION_RELEASERS, "releasing a decision")?;
    if let Some(member) = app.watch.mesh_member() {
        // Here it would lift this gateway's own hold only; the restriction in the mesh's
        // log stays, and every node (this one too) holds the identity by it.
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "release-through-the-mesh",
            "Release through the mesh",
            format!(
                "in a mesh a decision is released by two administrators' signatures through the log: `ribat mesh approve --id {member}/{id} --reason …` by each, then `ribat mesh release --id {member}/{id} …`"
            ),
        ));
    }
    let b: ReleaseBody = serde_json::from_slice(&body)
        .map_err(|e| Problem::bad_request("bad-body", format!("request body: {e}")))?;
    if b.reason.trim().is_empty() || b.reason.len() > 500 {
        return Err(Problem::bad_request(
            "bad-body",
            "reason: say why the decision is lifted (1 to 500 characters)",
        ));
    }
    let watch = app.watch.clone();
    let admin = claims.sub.clone();
    let state = blocking(move || {
        watch
            .approve_release(&id, &admin, b.reason.trim())
            .map_err(|e| match e {
                ribat_detect::decision::DecisionError::Unknown(_) => {
                    Problem::not_found(e.to_string())
                }
                other => Problem::new(
                    StatusCode::CONFLICT,
                    "release-refused",
                    "Release refused",
                    other.to_string(),
                ),
            })
    })
    .await?;
    let (state, approvals) = match state {
        ribat_detect::decision::ReleaseState::Pending { approvals } => {
            (ReleaseWord::Pending, approvals)
        }
        ribat_detect::decision::ReleaseState::Released { approvals } => {
            (ReleaseWord::Released, approvals)
        }
    };
    Ok(Json(ReleaseBodyState {
        state,
        approvals,
        needed: ribat_detect::decision::RELEASE_APPROVALS,
    })
    .into_response())
}

#[utoipa::path(
    get,
    path = "/healthz",
    summary = "Liveness: the audit log can record",
    responses(
        (status = 200, description = "OK", body = HealthBody),
        (status = 503, description = "The audit log has failed; no read is served", body = Problem, content_type = "application/problem+json")
    )
)]
pub(crate) async fn healthz(State(app): State<Shared>) -> Result<Response, Problem> {
    let n = app.vault.audit.log().size().map_err(|e| {
        Problem::unavailable(
            "audit-unavailable",
            format!("the audit log has failed: {e}"),
        )
    })?;
    Ok(Json(HealthBody {
        status: "ok",
        audit_entries: n,
    })
    .into_response())
}

#[utoipa::path(
    get,
    path = "/metrics",
    summary = "Prometheus metrics (no personal data in labels)",
    responses((status = 200, description = "OK", body = String, content_type = "text/plain"))
)]
pub(crate) async fn metrics(State(app): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(&app.tls),
    )
        .into_response()
}
