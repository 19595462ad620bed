//! Short-lived PASETO v4.public tokens (Ed25519) that say who acts, bound to the caller's
//! client certificate.
//!
//! Claims: `iss` (the deployment's token service), `sub` (identity), `role`, `inst`,
//! `aud` (the deployment), `iat`/`nbf`/`exp` (RFC 3339, as PASETO registers them), `jti`,
//! `serial` (the bound certificate's serial) and `cnf.x5t#S256` (its SHA-256 thumbprint,
//! as in RFC 8705). PASETO has no algorithm field, so no algorithm can be substituted.
//! Claims are checked here with an injected time, not the library's clock, so that a
//! test can show an expired token being refused.

use crate::error::IdentityError;
use crate::peer::PeerIdentity;
use pasetors::Public;
use pasetors::keys::{AsymmetricKeyPair, AsymmetricPublicKey, AsymmetricSecretKey, Generate};
use pasetors::paserk::FormatAsPaserk;
use pasetors::token::UntrustedToken;
use pasetors::version4::{PublicToken, V4};
use ribat_policy::Role;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use zeroize::Zeroizing;

/// Longest lifetime a token may be issued for, in seconds.
pub const MAX_TTL_SECS: u64 = 900;
/// Default lifetime, in seconds.
pub const DEFAULT_TTL_SECS: u64 = 300;
/// Clock skew tolerated between issuer and verifier, in seconds.
pub const SKEW_SECS: i64 = 30;

/// Why a token was refused. Messages say what to do; none repeats the token.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// No token was presented.
    #[error(
        "no token: send `Authorization: Bearer <token>`; get one from POST /v1/token with your client certificate"
    )]
    Missing,
    /// Not a v4.public token at all.
    #[error("the token is not a PASETO v4.public token ({0})")]
    Malformed(String),
    /// The signature does not verify under the deployment's token key.
    #[error(
        "the token's signature does not verify under this deployment's token key: it was forged or altered"
    )]
    BadSignature,
    /// Expired.
    #[error("the token expired at {expired}; get a new one from POST /v1/token")]
    Expired {
        /// When.
        expired: String,
    },
    /// Not valid yet.
    #[error("the token is not valid before {not_before}; check the clocks")]
    NotYetValid {
        /// When.
        not_before: String,
    },
    /// Issued for another audience.
    #[error("the token is for audience `{got}`, this service accepts `{want}`")]
    WrongAudience {
        /// Audience in the token.
        got: String,
        /// Audience expected.
        want: String,
    },
    /// Bound to another client certificate than the one presented.
    #[error(
        "the token is bound to another client certificate than the one this connection presented (a replayed token)"
    )]
    WrongCertificate,
    /// The token's identity or role differs from the certificate's.
    #[error("the token names `{token}` but the certificate names `{cert}`")]
    IdentityMismatch {
        /// In the token.
        token: String,
        /// In the certificate.
        cert: String,
    },
    /// The certificate the token is bound to was revoked.
    #[error("the certificate this token is bound to has been revoked")]
    Revoked,
}

/// The cnf claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confirmation {
    /// Thumbprint of the bound certificate.
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

/// A token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Issuer.
    pub iss: String,
    /// Identity.
    pub sub: String,
    /// Role.
    pub role: Role,
    /// Institution.
    pub inst: String,
    /// Audience.
    pub aud: String,
    /// Issued at.
    pub iat: String,
    /// Not before.
    pub nbf: String,
    /// Expires.
    pub exp: String,
    /// Token id.
    pub jti: String,
    /// Serial of the bound certificate, hex.
    pub serial: String,
    /// Certificate binding.
    pub cnf: Confirmation,
}

fn rfc3339(t: OffsetDateTime) -> Result<String, IdentityError> {
    t.format(&Rfc3339)
        .map_err(|e| IdentityError::Invalid(e.to_string()))
}

fn parse_time(s: &str, claim: &str) -> Result<OffsetDateTime, TokenError> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|_| TokenError::Malformed(format!("claim `{claim}` is not an RFC 3339 time")))
}

/// The lifetime a `POST /v1/token` asks for: `ttl_secs` when given (a whole number of
/// seconds, 1 to [`MAX_TTL_SECS`]), else [`DEFAULT_TTL_SECS`]; why not, otherwise.
pub fn ttl_of(ttl_secs: Option<&serde_json::Value>) -> Result<u64, String> {
    let Some(v) = ttl_secs else {
        return Ok(DEFAULT_TTL_SECS);
    };
    // JSON Schema counts 842.0 as an integer, so a client may send it so.
    let ttl = v
        .as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(f))
                .map(|f| f as u64)
        })
        .ok_or("ttl_secs: a whole number of seconds")?;
    if ttl == 0 || ttl > MAX_TTL_SECS {
        return Err(format!("ttl_secs: 1 to {MAX_TTL_SECS}"));
    }
    Ok(ttl)
}

/// The body of a `POST /v1/token`: nothing (or white space), or `{"ttl_secs": N}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    // `null` is refused, not read as absent.
    #[serde(default, deserialize_with = "present")]
    ttl_secs: Option<serde_json::Value>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// The lifetime the body of a `POST /v1/token` asks for ([`ttl_of`]), or why it is refused.
pub fn requested_ttl(body: &[u8]) -> Result<u64, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DEFAULT_TTL_SECS);
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("request body: {e}"))?;
    if !v.is_object() {
        return Err(r#"request body: a JSON object, {"ttl_secs": N}, or nothing"#.into());
    }
    let r = TokenRequest::deserialize(v).map_err(|e| format!("request body: {e}"))?;
    ttl_of(r.ttl_secs.as_ref())
}

/// Signs tokens. Holds the deployment's token key.
pub struct TokenIssuer {
    deployment: String,
    secret: AsymmetricSecretKey<V4>,
    public: AsymmetricPublicKey<V4>,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenIssuer({})", self.deployment)
    }
}

fn key_err(e: impl std::fmt::Debug) -> IdentityError {
    IdentityError::Invalid(format!("token key: {e:?}"))
}

impl TokenIssuer {
    /// A fresh key.
    pub fn generate(deployment: &str) -> Result<Self, IdentityError> {
        let kp = AsymmetricKeyPair::<V4>::generate().map_err(key_err)?;
        Ok(Self {
            deployment: deployment.to_owned(),
            secret: kp.secret,
            public: kp.public,
        })
    }

    /// From a PASERK `k4.secret.` string.
    pub fn from_paserk(deployment: &str, text: &str) -> Result<Self, IdentityError> {
        let secret = AsymmetricSecretKey::<V4>::try_from(text.trim()).map_err(key_err)?;
        let public = AsymmetricPublicKey::<V4>::try_from(&secret).map_err(key_err)?;
        Ok(Self {
            deployment: deployment.to_owned(),
            secret,
            public,
        })
    }

    /// From the PASERK file at `path` (as `identity init` writes `token.key`).
    pub fn from_file(deployment: &str, path: &std::path::Path) -> Result<Self, IdentityError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path).map_err(|e| IdentityError::file(path, e))?,
        );
        Self::from_paserk(deployment, &text).map_err(|e| IdentityError::file(path, e))
    }

    /// The secret key as PASERK (zeroized on drop).
    pub fn secret_paserk(&self) -> Result<Zeroizing<String>, IdentityError> {
        let mut s = Zeroizing::new(String::new());
        self.secret.fmt(&mut *s).map_err(key_err)?;
        Ok(s)
    }

    /// The public key as PASERK `k4.public.`.
    pub fn public_paserk(&self) -> Result<String, IdentityError> {
        let mut s = String::new();
        self.public.fmt(&mut s).map_err(key_err)?;
        Ok(s)
    }

    /// A verifier for this issuer's tokens.
    pub fn verifier(&self) -> TokenVerifier {
        TokenVerifier {
            audience: self.deployment.clone(),
            public: self.public.clone(),
        }
    }

    /// Issues a token for the holder of `peer`'s certificate, for `audience`, valid from
    /// `now` for `ttl_secs` (at most [`MAX_TTL_SECS`]).
    pub fn issue(
        &self,
        peer: &PeerIdentity,
        audience: &str,
        now: OffsetDateTime,
        ttl_secs: u64,
    ) -> Result<(String, TokenClaims), IdentityError> {
        if ttl_secs == 0 || ttl_secs > MAX_TTL_SECS {
            return Err(IdentityError::Invalid(format!(
                "token lifetime: 1 to {MAX_TTL_SECS} seconds"
            )));
        }
        let mut jti = [0u8; 16];
        getrandom::fill(&mut jti).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let ttl = i64::try_from(ttl_secs).map_err(key_err)?;
        let claims = TokenClaims {
            iss: format!("{}/token-service", self.deployment),
            sub: peer.name.clone(),
            role: peer.role.clone(),
            inst: peer.institution.clone(),
            aud: audience.to_owned(),
            iat: rfc3339(now)?,
            nbf: rfc3339(now)?,
            exp: rfc3339(now + time::Duration::seconds(ttl))?,
            jti: hex::encode(jti),
            serial: peer.serial.clone(),
            cnf: Confirmation {
                x5t_s256: peer.thumbprint.clone(),
            },
        };
        let json = serde_json::to_vec(&claims).map_err(key_err)?;
        let token = PublicToken::sign(&self.secret, &json, None, None).map_err(key_err)?;
        Ok((token, claims))
    }
}

/// Checks tokens against the deployment's public token key and audience.
#[derive(Clone)]
pub struct TokenVerifier {
    audience: String,
    public: AsymmetricPublicKey<V4>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenVerifier({})", self.audience)
    }
}

impl TokenVerifier {
    /// From a PASERK `k4.public.` string and the audience this service accepts.
    pub fn from_paserk(audience: &str, text: &str) -> Result<Self, IdentityError> {
        Ok(Self {
            audience: audience.to_owned(),
            public: AsymmetricPublicKey::<V4>::try_from(text.trim()).map_err(key_err)?,
        })
    }

    /// Verifies signature, audience and validity at `now`; the certificate binding is
    /// the caller's to check ([`TokenVerifier::verify_bound`] does both).
    pub fn verify(&self, token: &str, now: OffsetDateTime) -> Result<TokenClaims, TokenError> {
        let claims = self.verify_signature(token)?;
        check_time(&claims, now)?;
        Ok(claims)
    }

    /// Verifies the signature and the audience only: what does not change with time, so
    /// that a caller may remember the result for this exact token string.
    pub fn verify_signature(&self, token: &str) -> Result<TokenClaims, TokenError> {
        let untrusted = UntrustedToken::<Public, V4>::try_from(token.trim())
            .map_err(|e| TokenError::Malformed(format!("{e:?}")))?;
        let trusted = PublicToken::verify(&self.public, &untrusted, None, None)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: TokenClaims = serde_json::from_str(trusted.payload())
            .map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
        if claims.aud != self.audience {
            return Err(TokenError::WrongAudience {
                got: claims.aud,
                want: self.audience.clone(),
            });
        }
        // Times that do not parse are refused now, not at each use.
        parse_time(&claims.exp, "exp")?;
        parse_time(&claims.nbf, "nbf")?;
        Ok(claims)
    }

    /// Verifies the token and that it is bound to the certificate this connection
    /// presented, naming the same identity and role.
    pub fn verify_bound(
        &self,
        token: &str,
        peer: &PeerIdentity,
        now: OffsetDateTime,
    ) -> Result<TokenClaims, TokenError> {
        let claims = self.verify(token, now)?;
        check_binding(&claims, peer)?;
        Ok(claims)
    }
}

/// Whether claims are valid at `now` (with [`SKEW_SECS`] of tolerance).
pub fn check_time(claims: &TokenClaims, now: OffsetDateTime) -> Result<(), TokenError> {
    let skew = time::Duration::seconds(SKEW_SECS);
    let exp = parse_time(&claims.exp, "exp")?;
    if now >= exp + skew {
        return Err(TokenError::Expired {
            expired: claims.exp.clone(),
        });
    }
    let nbf = parse_time(&claims.nbf, "nbf")?;
    if now + skew < nbf {
        return Err(TokenError::NotYetValid {
            not_before: claims.nbf.clone(),
        });
    }
    Ok(())
}

/// Whether claims are bound to the certificate `peer` presented, for the same identity.
pub fn check_binding(claims: &TokenClaims, peer: &PeerIdentity) -> Result<(), TokenError> {
    if claims.cnf.x5t_s256 != peer.thumbprint {
        return Err(TokenError::WrongCertificate);
    }
    if claims.sub != peer.name || claims.role != peer.role {
        return Err(TokenError::IdentityMismatch {
            token: format!("{} ({})", claims.sub, claims.role),
            cert: format!("{} ({})", peer.name, peer.role),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(name: &str, thumb: &str) -> PeerIdentity {
        PeerIdentity {
            name: name.into(),
            role: "clerk".parse().unwrap(),
            institution: "agency".into(),
            serial: "01".into(),
            thumbprint: thumb.into(),
        }
    }

    #[test]
    fn token_checks_each_say_what_is_wrong() {
        let issuer = TokenIssuer::generate("ribat.test").unwrap();
        let v = issuer.verifier();
        let now = OffsetDateTime::now_utc();
        let alice = peer("alice", "T1");
        let (tok, claims) = issuer.issue(&alice, "ribat.test", now, 300).unwrap();
        assert_eq!(v.verify_bound(&tok, &alice, now).unwrap(), claims);

        let later = now + time::Duration::seconds(301 + SKEW_SECS);
        assert!(matches!(
            v.verify(&tok, later),
            Err(TokenError::Expired { .. })
        ));
        assert_eq!(
            v.verify_bound(&tok, &peer("alice", "T2"), now),
            Err(TokenError::WrongCertificate)
        );
        assert!(matches!(
            v.verify_bound(&tok, &peer("bob", "T1"), now),
            Err(TokenError::IdentityMismatch { .. })
        ));
        let (other_aud, _) = issuer.issue(&alice, "ribat.other", now, 300).unwrap();
        assert!(matches!(
            v.verify(&other_aud, now),
            Err(TokenError::WrongAudience { .. })
        ));
        let forger = TokenIssuer::generate("ribat.test").unwrap();
        let (forged, _) = forger.issue(&alice, "ribat.test", now, 300).unwrap();
        assert_eq!(v.verify(&forged, now), Err(TokenError::BadSignature));
        // One flipped character in the payload breaks the signature.
        let mut bytes = tok.clone().into_bytes();
        let i = bytes.len() / 2;
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(bytes).unwrap();
        assert!(v.verify(&altered, now).is_err());
        assert!(matches!(
            v.verify("v3.local.xyz", now),
            Err(TokenError::Malformed(_))
        ));
        assert!(
            issuer
                .issue(&alice, "ribat.test", now, MAX_TTL_SECS + 1)
                .is_err()
        );
    }

    #[test]
    fn keys_round_trip_through_paserk() {
        let issuer = TokenIssuer::generate("d").unwrap();
        let again = TokenIssuer::from_paserk("d", &issuer.secret_paserk().unwrap()).unwrap();
        let v = TokenVerifier::from_paserk("d", &issuer.public_paserk().unwrap()).unwrap();
        let now = OffsetDateTime::now_utc();
        let (tok, _) = again.issue(&peer("a", "t"), "d", now, 60).unwrap();
        v.verify(&tok, now).unwrap();
        assert!(issuer.public_paserk().unwrap().starts_with("k4.public."));
    }

    #[test]
    fn a_token_requests_body_asks_for_a_lifetime_in_range_or_none() {
        assert_eq!(requested_ttl(b""), Ok(DEFAULT_TTL_SECS));
        assert_eq!(requested_ttl(b" \n"), Ok(DEFAULT_TTL_SECS));
        assert_eq!(requested_ttl(b"{}"), Ok(DEFAULT_TTL_SECS));
        assert_eq!(requested_ttl(br#"{"ttl_secs": 120}"#), Ok(120));
        assert_eq!(requested_ttl(br#"{"ttl_secs": 842.0}"#), Ok(842));
        for bad in [
            &br#"{"ttl_secs": null}"#[..],
            br#"{"ttl_secs": 901}"#,
            br#"{"ttl_secs": 0}"#,
            br#"{"ttl": 60}"#,
            b"[]",
            b"\xff",
        ] {
            assert!(
                requested_ttl(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_token_lifetime_is_a_whole_number_of_seconds_up_to_fifteen_minutes() {
        let ttl = |json: &str| requested_ttl(json.as_bytes());
        assert_eq!(ttl("{}"), Ok(300));
        assert_eq!(ttl(r#"{"ttl_secs": 60}"#), Ok(60));
        assert_eq!(ttl(r#"{"ttl_secs": 842.0}"#), Ok(842));
        assert_eq!(ttl(r#"{"ttl_secs": 900}"#), Ok(900));
        for bad in ["0", "901", "1.5", "-1", "null", "\"60\"", "1e300"] {
            let e = ttl(&format!(r#"{{"ttl_secs": {bad}}}"#)).unwrap_err();
            assert!(e.starts_with("ttl_secs:"), "{bad}: {e}");
        }
        assert!(ttl(r#"{"ttl": 60}"#).unwrap_err().contains("unknown field"));
    }
}
