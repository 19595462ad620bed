//! Requests signed by their sender, at the gateway: the signature checked against the
//! connection's own certificate, its nonce taken once, a supervisor's co-signature checked
//! as consent to this one request; what was signed carried to the custodians, who check it
//! again for themselves (`ribat_custodian::asked`).

use crate::app::Shared;
use axum::http::request::Parts;
use base64ct::{Base64UrlUnpadded, Encoding};
use ribat_custodian::request::Asked;
use ribat_identity::TokenClaims;
use ribat_identity::signed::{COSIGN_HEADER, Cosignature, Nonces, SIGNATURE_HEADER, Signature};
use ribat_identity::tls::ServerTls;
use ribat_net::listener::Caller;
use ribat_net::problem::Problem;
use std::sync::Arc;

/// Roles whose members may co-sign a request of an identity under step-up.
pub const COSIGNING_ROLES: &[&str] = &["supervisor"];

/// How the gateway takes signed requests.
#[derive(Debug)]
pub struct Signatures {
    /// Whether the read routes refuse a request without a signature (a mesh's custodians
    /// refuse one anyway; the embedded shape takes both, checking those that come signed).
    pub required: bool,
    /// Checks a co-signer's certificate (chained to the deployment's CA, not revoked);
    /// without it no co-signature is taken.
    pub tls: Option<Arc<ServerTls>>,
    nonces: Nonces,
}

impl Signatures {
    /// Signatures required on the read routes or not; co-signers checked by `tls`.
    pub fn new(required: bool, tls: Option<Arc<ServerTls>>) -> Self {
        Self {
            required,
            tls,
            nonces: Nonces::default(),
        }
    }
}

/// A request whose signature verified, waiting for its body to be checked against it.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    signature: Signature,
    header: String,
    certificate: Arc<[u8]>,
    method: String,
    target: String,
}

fn refused(e: impl std::fmt::Display) -> Problem {
    Problem::unauthenticated("bad-signature", e.to_string())
}

impl SignedRequest {
    /// What custodians are shown, once `body` is known to be the body signed.
    pub fn asked(&self, body: &[u8]) -> Result<Asked, Problem> {
        self.signature.check_body(body).map_err(refused)?;
        Ok(Asked {
            certificate: Base64UrlUnpadded::encode_string(&self.certificate),
            method: self.method.clone(),
            target: self.target.clone(),
            body: (!body.is_empty()).then(|| Base64UrlUnpadded::encode_string(body)),
            signature: self.header.clone(),
        })
    }
}

/// The signed request a read route carries to the custodians: `None` where signatures
/// are not required and none came; refused where one is required and none came, or where
/// the body is not the one signed.
pub(crate) fn asked_of(
    app: &Shared,
    signed: Option<&SignedRequest>,
    body: &[u8],
) -> Result<Option<Asked>, Problem> {
    match signed {
        Some(s) => s.asked(body).map(Some),
        None if app.signatures.required => {
            Err(refused(ribat_identity::signed::SignatureError::Missing))
        }
        None => Ok(None),
    }
}

/// Checks the request's signature, if any, and a co-signature, if any: the verified
/// signature, and whether a supervisor co-signed this very request.
pub(crate) fn check(
    app: &Shared,
    parts: &Parts,
    caller: &Caller,
    claims: &TokenClaims,
    token: &str,
) -> Result<(Option<SignedRequest>, bool), Problem> {
    let header = |name: &str| -> Result<Option<&str>, Problem> {
        parts
            .headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| refused(format!("the `{name}` header is not ASCII")))
            })
            .transpose()
    };
    let cosign = header(COSIGN_HEADER)?;
    let Some(value) = header(SIGNATURE_HEADER)? else {
        if cosign.is_some() {
            return Err(Problem::forbidden(
                "step-up-refused",
                "a co-signature covers one signed request: sign the request itself (`Ribat-Signature`) and have the supervisor co-sign exactly that",
            ));
        }
        return Ok((None, false));
    };
    let signature = Signature::parse(value).map_err(refused)?;
    let now = app.gate.clock().now();
    signature.check_time(now).map_err(refused)?;
    let method = parts.method.as_str();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path(), |p| p.as_str());
    let covered = signature.covers(method, target, Some(token));
    signature
        .verify(&caller.certificate, &covered)
        .map_err(refused)?;
    if !app
        .signatures
        .nonces
        .first_use(&claims.sub, &signature.nonce, signature.time, now)
    {
        return Err(refused(ribat_identity::signed::SignatureError::Replayed));
    }
    let cosigned = match cosign {
        None => false,
        Some(c) => {
            cosigner(app, c, &covered, &signature, &claims.sub)?;
            true
        }
    };
    Ok((
        Some(SignedRequest {
            header: value.to_owned(),
            certificate: caller.certificate.clone(),
            method: method.to_owned(),
            target: target.to_owned(),
            signature,
        }),
        cosigned,
    ))
}

/// The `Ribat-Signature` of a `POST /v1/token` that this gateway forwards to the mesh's
/// identity service, checked here first (over the body, with no token, against the
/// connection's certificate, within its window, its nonce taken once per identity) so that
/// an honest gateway forwards only what its client signed: the header, to forward.
pub(crate) fn token_request(
    app: &Shared,
    headers: &axum::http::HeaderMap,
    caller: &Caller,
    body: &[u8],
) -> Result<String, Problem> {
    let value = headers
        .get(SIGNATURE_HEADER)
        .ok_or_else(|| {
            refused(format!(
                "{}. In this mesh tokens come from its identity service, which issues one only for a request its sender signed.",
                ribat_identity::signed::SignatureError::Missing
            ))
        })?
        .to_str()
        .map_err(|_| refused(format!("the `{SIGNATURE_HEADER}` header is not ASCII")))?;
    let now = app.gate.clock().now();
    let signature = ribat_identity::signed::check_request(
        &caller.certificate,
        value,
        "POST",
        ribat_identity::service::TOKEN_TARGET,
        None,
        body,
        now,
    )
    .map_err(refused)?;
    if !app
        .signatures
        .nonces
        .first_use(&caller.peer.name, &signature.nonce, signature.time, now)
    {
        return Err(refused(ribat_identity::signed::SignatureError::Replayed));
    }
    Ok(value.to_owned())
}

/// A supervisor's co-signature of exactly this request: their certificate chained to the
/// deployment's CA and not revoked, a co-signing role, another identity than the sender's,
/// their signature over this request's signed text (its nonce makes it good once).
fn cosigner(
    app: &Shared,
    header: &str,
    covered: &ribat_identity::signed::Covered<'_>,
    signature: &Signature,
    requester: &str,
) -> Result<(), Problem> {
    let bad = |why: String| Problem::forbidden("step-up-refused", why);
    let co = Cosignature::parse(header).map_err(|e| bad(e.to_string()))?;
    let tls = app
        .signatures
        .tls
        .as_ref()
        .ok_or_else(|| bad("this gateway takes no co-signatures".into()))?;
    let peer = tls
        .verify_forwarded(&co.certificate)
        .map_err(|e| bad(format!("the co-signer: {e}")))?;
    if !COSIGNING_ROLES.contains(&peer.role.as_str()) {
        return Err(bad(format!(
            "a co-signature comes from a {}, not a `{}`",
            COSIGNING_ROLES.join(" or "),
            peer.role
        )));
    }
    if peer.name == requester {
        return Err(bad("nobody co-signs their own request".into()));
    }
    let text = ribat_identity::signed::cosign_text(&covered.text(&signature.nonce, signature.time));
    ribat_identity::signed::verify(&co.certificate, text.as_bytes(), &co.signature).map_err(|_| {
        bad(format!(
            "the co-signature of `{}` does not cover this request (a co-signature is good for the one request it signs)",
            peer.name
        ))
    })
}
