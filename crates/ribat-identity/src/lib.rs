//! Who is calling: the deployment's private certificate authority, the client and server
//! certificates it issues, their revocation, the TLS settings that check them, and the
//! short-lived signed tokens that say who acts.
//!
//! Owns: `HOME/identity/` (CA certificate and key, revocation list, register of issued
//! certificates, token keys), reading an identity out of a verified peer certificate, and
//! PASETO v4.public tokens bound to a certificate's thumbprint.
//!
//! Must never: hold a vault share or a class key, accept a peer that no certificate
//! chain to the deployment's CA vouches for, trust a token's claims before its signature,
//! audience, validity and certificate binding are checked, or log a key or a token.
//!
//! ```text
//!   identity init ─► ca.pem, ca.key, crl.pem, token.key, token.pub
//!   identity add  ─► NAME/cert.pem, NAME/key.pem  (CN = name, OU = role, O = institution)
//!   identity revoke ─► crl.pem re-signed (servers reload it at the next connection)
//!   POST /v1/token (client certificate) ─► v4.public token {sub, role, aud, exp, cnf}
//!   in a mesh: the gateway forwards the signed request ─► identity service (service.rs)
//! ```
#![forbid(unsafe_code)]

pub mod ca;
mod error;
pub mod peer;
pub mod service;
pub mod signed;
pub mod tls;
pub mod token;

pub use ca::{Ca, CertKind, Issued};
pub use error::IdentityError;
pub use peer::PeerIdentity;
pub use token::{TokenClaims, TokenError, TokenIssuer, TokenVerifier};
