//! What every handler shares: the gateway's state ([`App`]), the authenticated caller of a
//! data route ([`Authed`]: a token bound to the connection's certificate, an optional
//! supervisor's co-signature, the watch's verdict on the caller) and the role check.

use crate::gate::Gate;
use crate::metrics::Metrics;
use crate::vault::Vault;
use crate::watch::Watch;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use ribat_detect::event::Actor;
use ribat_identity::TokenIssuer;
use ribat_net::listener::{Caller, TlsStats};
use ribat_net::problem::Problem;
use std::sync::Arc;

/// Everything the handlers share.
pub struct App {
    /// The reading side.
    pub vault: Arc<Vault>,
    /// The gateway's checks.
    pub gate: Gate,
    /// Who signs the tokens this gateway hands its clients.
    pub tokens: Tokens,
    /// Audience tokens are issued for.
    pub audience: String,
    /// Counters.
    pub metrics: Metrics,
    /// TLS counters.
    pub tls: Arc<TlsStats>,
    /// Where uploaded declaration files are kept (durably, before they are imported).
    pub uploads: std::path::PathBuf,
    /// Detectors and decisions.
    pub watch: Arc<Watch>,
    /// The node's export desk, where this gateway runs beside the vault.
    pub exports: Option<Arc<dyn crate::desk::ExportDesk>>,
    /// The node's intake (register and declaration files imported in the background),
    /// where this gateway runs beside the store.
    pub intake: Option<Arc<dyn crate::intake::IntakeDesk>>,
    /// The node's leak desk (dumps scanned in the background), where this gateway runs
    /// beside the vault.
    pub leaks: Option<Arc<dyn crate::leak_desk::LeakDesk>>,
    /// The node's identity desk, where the node keeps the deployment's CA (not in a mesh:
    /// there certificates are granted and revoked through the log).
    pub identities: Option<Arc<dyn crate::identity_desk::IdentityDesk>>,
    /// The mesh this gateway belongs to, for the console (set once a mesh node's gateway
    /// is assembled; unset in the embedded shape).
    pub mesh: std::sync::OnceLock<Arc<dyn crate::mesh_view::MeshView>>,
    /// Upload bodies that may be read at once ([`crate::api::CONCURRENT_UPLOADS`]).
    pub upload_slots: Arc<tokio::sync::Semaphore>,
    /// Requests signed by their sender: required or not, nonces, co-signers.
    pub signatures: crate::signed::Signatures,
    /// The identity register this node keeps (`register.json`: the CA's, or in a mesh the
    /// replicated one), for the console's Identities page.
    pub register: Option<std::path::PathBuf>,
}

/// Who signs the tokens a gateway hands its clients.
#[derive(Debug)]
pub enum Tokens {
    /// This gateway, with the deployment's token key (`ribat serve`; a mesh gateway on a
    /// node of the identity service).
    Signs(Arc<TokenIssuer>),
    /// The mesh's identity service: the gateway forwards each client's signed request.
    Forwards(Arc<crate::link::IdentityLink>),
    /// Nobody here: clients bring tokens from elsewhere.
    Off,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

pub(crate) type Shared = Arc<App>;

/// The actor of a connection: its certificate and address.
pub(crate) fn actor_of(c: &Caller) -> Actor {
    Actor {
        identity: c.peer.name.clone(),
        role: c.peer.role.to_string(),
        institution: c.peer.institution.clone(),
        serial: c.peer.serial.clone(),
        addr: c.remote.ip().to_string(),
    }
}

impl App {
    pub(crate) fn watch_component(&self) -> String {
        self.watch.node().to_owned()
    }
}

/// The caller of a data route: the token, verified and bound to the connection's
/// certificate, and the request's signature by that certificate's key when it came
/// signed. Handlers that take it never run for an unauthenticated request.
pub struct Authed {
    /// Verified claims.
    pub claims: ribat_identity::TokenClaims,
    /// The token itself, carried to networked custodians.
    pub token: String,
    /// The request's verified signature (its body is checked by the handler that reads it).
    pub signed: Option<crate::signed::SignedRequest>,
}

impl FromRequestParts<Shared> for Authed {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, app: &Shared) -> Result<Self, Problem> {
        let caller = parts
            .extensions
            .get::<Caller>()
            .ok_or_else(|| Problem::internal("a request arrived without its TLS identity"))?;
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let claims = app.gate.authenticate(caller, header)?;
        let token = crate::gate::bearer(header).unwrap_or_default().to_owned();
        let (signed, cosigned) = crate::signed::check(app, parts, caller, &claims, &token)?;
        app.watch.check(&actor_of(caller), cosigned)?;
        Ok(Self {
            claims,
            token,
            signed,
        })
    }
}

/// Header carrying a supervisor's co-signature of one request under step-up.
pub const COSIGN_HEADER: &str = ribat_identity::signed::COSIGN_HEADER;

pub(crate) fn require_role(
    claims: &ribat_identity::TokenClaims,
    roles: &[&str],
    what: &str,
) -> Result<(), Problem> {
    if roles.contains(&claims.role.as_str()) {
        Ok(())
    } else {
        Err(Problem::forbidden(
            "role-not-allowed",
            format!(
                "{what} is for role {}, not `{}`",
                roles.join(" or "),
                claims.role
            ),
        ))
    }
}
