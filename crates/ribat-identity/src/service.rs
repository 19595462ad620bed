//! The identity service: in a mesh, the one place the deployment's token key lives.
//!
//! A gateway that held the token key could mint a token for any identity and read in its
//! name wherever the token is believed. In a mesh the key sits only on the nodes named as
//! the identity service (`ribat mesh init --token-service`); gateways and custodians hold
//! its public half. A gateway asked for a token forwards what the user sent: their client
//! certificate and their `POST /v1/token` signed with that certificate's key
//! ([`crate::signed`]). The service checks the certificate itself (chained to the CA, not
//! revoked, granted), the signature, its time and its nonce, and only then issues a token
//! bound to that certificate. A gateway can thus obtain a token for a user only while that
//! user is asking for one, and the token is bound to the user's certificate, whose key the
//! gateway does not hold: custodians refuse any read that key did not sign.
//!
//! A gateway also asks for its own node's service identities (the node's blind-index and
//! leak-digest keys, a key rotation's re-sealing job): those tokens are bound to the
//! gateway's own certificate and name only identities of that node.
//!
//! ```text
//!   client ──POST /v1/token + Ribat-Signature──► gateway ──POST /v1/mesh/token──► identity service
//!          ◄──────────── token (bound to the client's certificate) ─────────────┘
//! ```

use crate::PeerIdentity;
use crate::error::IdentityError;
use crate::signed::{Nonces, SignatureError, check_request};
use crate::tls::ServerTls;
use crate::token::{TokenClaims, TokenIssuer, requested_ttl};
use base64ct::{Base64UrlUnpadded, Encoding};
use ribat_policy::Role;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Where a gateway forwards a user's token request (on the identity node's mesh listener).
pub const USER_TOKEN_PATH: &str = "/v1/mesh/token";
/// Where a gateway asks for a token of its own node's service identity.
pub const SERVICE_TOKEN_PATH: &str = "/v1/mesh/service-token";
/// The client's route whose signed request a user token answers.
pub const TOKEN_TARGET: &str = "/v1/token";
/// Seconds a service identity's token lives.
pub const SERVICE_TTL_SECS: u64 = 60;
/// The role of the certificates that forward requests to the service.
pub const GATEWAY_ROLE: &str = "gateway";

/// A user's token request, as a gateway forwards it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTokenAsk {
    /// The client certificate the user's connection presented, DER, base64url.
    pub certificate: String,
    /// The body of their `POST /v1/token`, base64url (empty when none).
    pub body: String,
    /// Their `Ribat-Signature` header over that request.
    pub signature: String,
}

/// A gateway's request for a token of its own node's service identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTokenAsk {
    /// The identity (`node.embedded`, `rotation.<node>`).
    pub identity: String,
    /// Its role.
    pub role: Role,
}

/// The service's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedToken {
    /// The token.
    pub token: String,
}

/// Why the service issued no token. No message repeats a signature, a key or a token.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The caller is not a gateway (only gateways forward requests).
    #[error("only a gateway's certificate asks the identity service; `{0}` is not one")]
    NotAGateway(String),
    /// What the gateway sent is not a forwarded request.
    #[error("malformed request to the identity service: {0}")]
    Malformed(String),
    /// The user's certificate does not verify, is revoked or was never granted.
    #[error("the user's certificate: {0}")]
    Certificate(String),
    /// The user's signature is missing, malformed, out of its window, replayed or false.
    #[error("the user's signed token request: {0}")]
    Signature(#[from] SignatureError),
    /// The body asks for what cannot be given.
    #[error("{0}")]
    Body(String),
    /// A gateway asked for an identity that is not one of its node's own.
    #[error(
        "`{gateway}` may ask only for its own node's service identities, not `{identity}` ({role})"
    )]
    NotItsIdentity {
        /// The gateway's certificate name.
        gateway: String,
        /// What it asked for.
        identity: String,
        /// With that role.
        role: String,
    },
    /// Signing failed.
    #[error("cannot issue a token: {0}")]
    Issue(#[from] IdentityError),
}

impl ServiceError {
    /// The HTTP status that says it: 400 for a malformed request, 401 for an
    /// unauthenticated user, 403 for a gateway asking beyond its node, 500 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::Malformed(_) | Self::Body(_) => 400,
            Self::Certificate(_) | Self::Signature(_) => 401,
            Self::NotAGateway(_) | Self::NotItsIdentity { .. } => 403,
            Self::Issue(_) => 500,
        }
    }

    /// A short name for the problem, as the gateway's API names its problems.
    pub fn slug(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::Body(_) => "bad-body",
            Self::Certificate(_) => "certificate-refused",
            Self::Signature(_) => "bad-signature",
            Self::NotAGateway(_) | Self::NotItsIdentity { .. } => "forbidden",
            Self::Issue(_) => "internal",
        }
    }
}

/// The identity service: the token key, the audience it issues for, and the nonces of
/// the signed requests it answered.
pub struct TokenService {
    issuer: TokenIssuer,
    audience: String,
    nonces: Nonces,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenService({})", self.audience)
    }
}

fn decoded(v: &str, what: &str) -> Result<Vec<u8>, ServiceError> {
    Base64UrlUnpadded::decode_vec(v)
        .map_err(|_| ServiceError::Malformed(format!("{what} is not base64url")))
}

fn at(now: u64) -> Result<time::OffsetDateTime, ServiceError> {
    i64::try_from(now)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .ok_or_else(|| ServiceError::Issue(IdentityError::Invalid(format!("time {now}"))))
}

/// The gateway's node, from its certificate's name (`gateway.<node>`).
fn gateway_node(gateway: &PeerIdentity) -> Result<&str, ServiceError> {
    match gateway.name.strip_prefix("gateway.") {
        Some(node) if gateway.role == GATEWAY_ROLE && !node.is_empty() => Ok(node),
        _ => Err(ServiceError::NotAGateway(gateway.name.clone())),
    }
}

impl TokenService {
    /// Issues with `issuer`'s key, for `audience`.
    pub fn new(issuer: TokenIssuer, audience: &str) -> Self {
        Self {
            issuer,
            audience: audience.to_owned(),
            nonces: Nonces::default(),
        }
    }

    /// A token for the user whose signed `POST /v1/token` the gateway `caller` forwards,
    /// at `now` (Unix seconds); `tls` judges the user's certificate as the handshake would.
    pub fn for_user(
        &self,
        caller: &PeerIdentity,
        tls: &ServerTls,
        ask: &UserTokenAsk,
        now: u64,
    ) -> Result<(String, TokenClaims), ServiceError> {
        if caller.role != GATEWAY_ROLE {
            return Err(ServiceError::NotAGateway(caller.name.clone()));
        }
        let certificate = decoded(&ask.certificate, "certificate")?;
        let body = decoded(&ask.body, "body")?;
        let user = tls
            .verify_forwarded(&certificate)
            .map_err(ServiceError::Certificate)?;
        let signature = check_request(
            &certificate,
            &ask.signature,
            "POST",
            TOKEN_TARGET,
            None,
            &body,
            now,
        )?;
        if !self
            .nonces
            .first_use(&user.thumbprint, &signature.nonce, signature.time, now)
        {
            return Err(SignatureError::Replayed.into());
        }
        let ttl = requested_ttl(&body).map_err(ServiceError::Body)?;
        Ok(self.issuer.issue(&user, &self.audience, at(now)?, ttl)?)
    }

    /// A token for one of the gateway `caller`'s own node's service identities — the
    /// node's (`node.embedded`, role `service`) or its re-sealing job's (`rotation.<node>`,
    /// role `rotation`) — bound to the gateway's certificate, for a minute.
    pub fn for_node(
        &self,
        caller: &PeerIdentity,
        ask: &ServiceTokenAsk,
        now: u64,
    ) -> Result<(String, TokenClaims), ServiceError> {
        let node = gateway_node(caller)?;
        let allowed = (ask.identity == "node.embedded" && ask.role == Role::SERVICE)
            || (ask.identity == format!("rotation.{node}") && ask.role == "rotation");
        if !allowed {
            return Err(ServiceError::NotItsIdentity {
                gateway: caller.name.clone(),
                identity: ask.identity.clone(),
                role: ask.role.to_string(),
            });
        }
        let who = PeerIdentity {
            name: ask.identity.clone(),
            role: ask.role.clone(),
            ..caller.clone()
        };
        Ok(self
            .issuer
            .issue(&who, &self.audience, at(now)?, SERVICE_TTL_SECS)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{Ca, CertKind};
    use crate::signed::{Covered, RequestSigner, digest};
    use crate::tls::TlsFiles;

    const NOW: u64 = 1_800_000_000;

    struct World {
        _d: tempfile::TempDir,
        ca: Ca,
        tls: ServerTls,
        service: TokenService,
        gateway: PeerIdentity,
    }

    fn peer(pem: &str) -> PeerIdentity {
        let der = crate::tls::certs_from_pem(pem, "test").unwrap();
        PeerIdentity::from_der(der[0].as_ref()).unwrap()
    }

    fn world() -> World {
        let d = tempfile::tempdir().unwrap();
        let ca = Ca::init(&d.path().join("ca"), "ribat.test").unwrap();
        let node = ca
            .issue(
                "node-3",
                "node",
                "mesh",
                &CertKind::Server {
                    hosts: vec!["localhost".into()],
                },
                1,
            )
            .unwrap();
        let dir = d.path().join("node");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.cert_pem().unwrap()).unwrap();
        std::fs::write(dir.join("cert.pem"), &node.cert_pem).unwrap();
        std::fs::write(dir.join("key.pem"), node.key_pem.as_bytes()).unwrap();
        let tls = ServerTls::new(TlsFiles::in_dir(&dir, &ca.dir().join("crl.pem"))).unwrap();
        let gw = ca
            .issue(
                "gateway.node-1",
                "gateway",
                "mesh",
                &CertKind::Server {
                    hosts: vec!["localhost".into()],
                },
                1,
            )
            .unwrap();
        let service = TokenService::new(ca.token_issuer().unwrap(), "ribat.test");
        World {
            gateway: peer(&gw.cert_pem),
            _d: d,
            ca,
            tls,
            service,
        }
    }

    fn user(w: &World, name: &str) -> RequestSigner {
        let issued =
            w.ca.issue(name, "clerk", "agency-rabat", &CertKind::Client, 1)
                .unwrap();
        RequestSigner::from_pem(&issued.cert_pem, &issued.key_pem).unwrap()
    }

    fn ask(signer: &RequestSigner, target: &str, body: &[u8], time: u64) -> UserTokenAsk {
        let sig = signer
            .sign(
                &Covered {
                    method: "POST",
                    target,
                    body_digest: &digest(body),
                    token: None,
                },
                time,
            )
            .unwrap();
        UserTokenAsk {
            certificate: Base64UrlUnpadded::encode_string(signer.certificate()),
            body: Base64UrlUnpadded::encode_string(body),
            signature: sig.header(),
        }
    }

    #[test]
    fn a_signed_token_request_gets_a_token_bound_to_the_users_certificate_once() {
        let w = world();
        let salma = user(&w, "clerk.salma");
        let a = ask(&salma, TOKEN_TARGET, br#"{"ttl_secs": 120}"#, NOW);
        let (token, claims) = w.service.for_user(&w.gateway, &w.tls, &a, NOW + 1).unwrap();
        assert_eq!(claims.sub, "clerk.salma");
        assert_eq!(claims.role, "clerk");
        assert_eq!(
            claims.cnf.x5t_s256,
            crate::peer::thumbprint(salma.certificate())
        );
        let verified =
            w.ca.token_issuer()
                .unwrap()
                .verifier()
                .verify(&token, at(NOW + 2).unwrap())
                .unwrap();
        assert_eq!(verified.sub, "clerk.salma");
        assert_eq!(
            at(NOW + 1).unwrap() + time::Duration::seconds(120),
            time::OffsetDateTime::parse(
                &verified.exp,
                &time::format_description::well_known::Rfc3339
            )
            .unwrap()
        );
        // The same signed request again (a gateway replaying what it forwarded): refused.
        let again = w.service.for_user(&w.gateway, &w.tls, &a, NOW + 2);
        assert!(
            matches!(
                again,
                Err(ServiceError::Signature(SignatureError::Replayed))
            ),
            "{again:?}"
        );
    }

    #[test]
    fn what_the_user_did_not_sign_or_sign_now_gets_no_token() {
        let w = world();
        let salma = user(&w, "clerk.salma");
        let refused = |a: &UserTokenAsk, caller: &PeerIdentity| {
            w.service.for_user(caller, &w.tls, a, NOW).unwrap_err()
        };
        // Signed for another route (a read), or over another body, or long ago.
        let e = refused(&ask(&salma, "/v1/persons/1", b"", NOW), &w.gateway);
        assert!(
            matches!(e, ServiceError::Signature(SignatureError::BadSignature)),
            "{e}"
        );
        let mut longer = ask(&salma, TOKEN_TARGET, br#"{"ttl_secs": 60}"#, NOW);
        longer.body = Base64UrlUnpadded::encode_string(br#"{"ttl_secs": 900}"#);
        let e = refused(&longer, &w.gateway);
        assert!(
            matches!(e, ServiceError::Signature(SignatureError::BodyMismatch)),
            "{e}"
        );
        let e = refused(&ask(&salma, TOKEN_TARGET, b"", NOW - 120), &w.gateway);
        assert!(
            matches!(
                e,
                ServiceError::Signature(SignatureError::OutOfWindow { .. })
            ),
            "{e}"
        );
        assert_eq!(e.status(), 401);
        // The gateway signing with its own key in the user's name: the certificate sent is
        // the user's, and the gateway's signature does not verify with it.
        let gw_issued =
            w.ca.issue("gateway.node-9", "gateway", "mesh", &CertKind::Client, 1)
                .unwrap();
        let gw_key = RequestSigner::from_pem(&gw_issued.cert_pem, &gw_issued.key_pem).unwrap();
        let mut forged = ask(&gw_key, TOKEN_TARGET, b"", NOW);
        forged.certificate = Base64UrlUnpadded::encode_string(salma.certificate());
        let e = refused(&forged, &w.gateway);
        assert!(
            matches!(e, ServiceError::Signature(SignatureError::BadSignature)),
            "{e}"
        );
        // A revoked user.
        let revoked = user(&w, "clerk.gone");
        w.ca.revoke("clerk.gone").unwrap();
        let e = refused(&ask(&revoked, TOKEN_TARGET, b"", NOW), &w.gateway);
        assert!(matches!(e, ServiceError::Certificate(_)), "{e}");
        assert!(e.to_string().to_lowercase().contains("revoked"), "{e}");
        // A lifetime out of range, signed as such.
        let e = refused(
            &ask(&salma, TOKEN_TARGET, br#"{"ttl_secs": 0}"#, NOW),
            &w.gateway,
        );
        assert!(matches!(e, ServiceError::Body(_)), "{e}");
        assert_eq!(e.status(), 400);
        // A certificate that is not a gateway's forwarding a good request.
        let e = refused(
            &ask(&salma, TOKEN_TARGET, b"", NOW),
            &peer(
                &w.ca
                    .issue("clerk.x", "clerk", "a", &CertKind::Client, 1)
                    .unwrap()
                    .cert_pem,
            ),
        );
        assert!(matches!(e, ServiceError::NotAGateway(_)), "{e}");
        assert_eq!(e.status(), 403);
        // Garbage in place of a certificate.
        let mut garbage = ask(&salma, TOKEN_TARGET, b"", NOW);
        garbage.certificate = "***".into();
        assert!(matches!(
            refused(&garbage, &w.gateway),
            ServiceError::Malformed(_)
        ));
    }

    #[test]
    fn a_gateway_gets_tokens_for_its_own_nodes_service_identities_only() {
        let w = world();
        let ok = |identity: &str, role: Role| {
            w.service.for_node(
                &w.gateway,
                &ServiceTokenAsk {
                    identity: identity.into(),
                    role,
                },
                NOW,
            )
        };
        let (_, c) = ok("node.embedded", Role::SERVICE).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.role.as_str()),
            ("node.embedded", "service")
        );
        assert_eq!(
            c.cnf.x5t_s256, w.gateway.thumbprint,
            "bound to the gateway's certificate"
        );
        let (_, c) = ok("rotation.node-1", Role::constant("rotation")).unwrap();
        assert_eq!(c.sub, "rotation.node-1");
        for (identity, role) in [
            ("rotation.node-2", Role::constant("rotation")),
            ("node.embedded", Role::constant("clerk")),
            ("clerk.salma", Role::constant("clerk")),
            ("sec.amina", Role::SECURITY),
        ] {
            let e = ok(identity, role).unwrap_err();
            assert!(
                matches!(e, ServiceError::NotItsIdentity { .. }),
                "{identity}: {e}"
            );
        }
        // Only gateways ask.
        let node = PeerIdentity {
            name: "node-1".into(),
            role: Role::constant("node"),
            ..w.gateway.clone()
        };
        let e = w
            .service
            .for_node(
                &node,
                &ServiceTokenAsk {
                    identity: "node.embedded".into(),
                    role: Role::SERVICE,
                },
                NOW,
            )
            .unwrap_err();
        assert!(matches!(e, ServiceError::NotAGateway(_)), "{e}");
    }
}
