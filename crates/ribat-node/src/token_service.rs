//! The mesh's identity service on a node's listener: the routes where gateways forward
//! their clients' signed token requests and ask for their own node's service tokens
//! (`ribat_identity::service` decides; this is its HTTP end). Only nodes named in
//! `mesh.json`'s `token_service` hold the token key and serve these routes.

use axum::body::Bytes;
use axum::extract::Extension;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ribat_custodian::serve::Observer;
use ribat_detect::event::{Actor, AuthFailure, Kind};
use ribat_identity::service::{
    IssuedToken, SERVICE_TOKEN_PATH, ServiceError, ServiceTokenAsk, TokenService, USER_TOKEN_PATH,
    UserTokenAsk,
};
use ribat_identity::tls::ServerTls;
use ribat_net::Caller;
use ribat_net::problem::Problem;
use std::sync::Arc;

/// The detectors of this node's custodian, as the identity service reports to them, and
/// the component name it reports as.
pub(crate) type Watched = Option<(Arc<dyn Observer>, String)>;

/// The two routes, answering for `service`; `tls` judges forwarded certificates as this
/// node's listener judges its own callers. A gateway forwarded what its client did not
/// sign, or a certificate the mesh refuses, only when it is not honest (an honest gateway
/// checks both before it forwards): each such refusal is an authentication failure of
/// that gateway's certificate for `watched`, and a gateway the detectors hold gets no token.
pub(crate) fn router(
    service: Arc<TokenService>,
    tls: Arc<ServerTls>,
    watched: Watched,
) -> axum::Router {
    let users = {
        let (service, watched) = (service.clone(), watched.clone());
        move |Extension(caller): Extension<Caller>, body: Bytes| {
            let (service, tls, watched) = (service.clone(), tls.clone(), watched.clone());
            async move {
                if let Some(refused) = held(&watched, &caller) {
                    return refused;
                }
                answer(move || {
                    let ask: UserTokenAsk = parse(&body)?;
                    let issued = service.for_user(&caller.peer, &tls, &ask, now());
                    if let (Err(e), Some((o, component))) = (&issued, &watched)
                        && matches!(e, ServiceError::Signature(_) | ServiceError::Certificate(_))
                    {
                        o.observe(
                            component,
                            Kind::AuthFailure(AuthFailure {
                                actor: Actor {
                                    identity: caller.peer.name.clone(),
                                    role: caller.peer.role.to_string(),
                                    institution: caller.peer.institution.clone(),
                                    serial: caller.peer.serial.clone(),
                                    addr: caller.remote.ip().to_string(),
                                },
                                reason: "token-request-refused".into(),
                            }),
                        );
                    }
                    issued
                })
                .await
            }
        }
    };
    let nodes = move |Extension(caller): Extension<Caller>, body: Bytes| {
        let (service, watched) = (service.clone(), watched.clone());
        async move {
            if let Some(refused) = held(&watched, &caller) {
                return refused;
            }
            answer(move || {
                let ask: ServiceTokenAsk = parse(&body)?;
                service.for_node(&caller.peer, &ask, now())
            })
            .await
        }
    };
    axum::Router::new()
        .route(USER_TOKEN_PATH, axum::routing::post(users))
        .route(SERVICE_TOKEN_PATH, axum::routing::post(nodes))
}

/// The refusal of a gateway the detectors hold, if they hold it.
fn held(watched: &Watched, caller: &Caller) -> Option<Response> {
    let (o, _) = watched.as_ref()?;
    let (until, id) = o.node_held(&caller.peer.name, &caller.peer.serial)?;
    Some(
        Problem::forbidden(
            "quarantined",
            format!(
                "{} is held until {} (decision {id}); the identity service issues it no token meanwhile",
                caller.peer.name,
                until / 1000
            ),
        )
        .into_response(),
    )
}

fn now() -> u64 {
    crate::mesh::now_ms() / 1000
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ServiceError> {
    serde_json::from_slice(body).map_err(|e| ServiceError::Malformed(e.to_string()))
}

/// Runs `issue` off the async threads (it verifies signatures) and answers with the token
/// or the problem that says why not.
async fn answer<F>(issue: F) -> Response
where
    F: FnOnce() -> Result<(String, ribat_identity::TokenClaims), ServiceError> + Send + 'static,
{
    match tokio::task::spawn_blocking(issue).await {
        Ok(Ok((token, _))) => axum::Json(IssuedToken { token }).into_response(),
        Ok(Err(e)) => Problem::new(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.slug(),
            "The identity service issued no token",
            e.to_string(),
        )
        .into_response(),
        Err(e) => Problem::internal(format!("the token task failed: {e}")).into_response(),
    }
}
