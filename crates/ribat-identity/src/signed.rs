//! Requests signed by their sender, with the key of the client certificate that opened the
//! connection (in the spirit of DPoP, RFC 9449, with the mTLS key as the proof key).
//!
//! A token says who acts; mTLS says the token came over that identity's connection. Neither
//! stops whoever holds the gateway from using a token it saw for other records, or from
//! inventing requests in its holder's name: the gateway is the TLS end. A signature over
//! the request by the certificate's key travels further: the gateway forwards it to the
//! custodians, who check it themselves against the certificate (chained to the deployment's
//! CA, not revoked) and answer only for the records that request names.
//!
//! ```text
//!   Ribat-Signature: t=<unix seconds>, n=<nonce>, d=<body digest>, s=<signature, base64url>
//!   signed text, lines joined by \n:
//!     ribat-request/v1
//!     <METHOD>
//!     <path and query, exactly as sent>
//!     <d: base64url SHA-256 of the body>       (of nothing for a GET)
//!     <base64url SHA-256 of the bearer token>  (`-` when none)
//!     <nonce>
//!     <t>
//!   Ribat-Cosign: c=<co-signer's certificate, base64url DER>, s=<signature>
//!     over: ribat-cosign/v1 \n <the signed text above>
//! ```
//!
//! Signatures are ECDSA P-256 with SHA-256 (ASN.1 DER), the key type the deployment's CA
//! issues; Ed25519 client keys sign too. A signature is good for [`WINDOW_SECS`] after its
//! time (and [`crate::token::SKEW_SECS`] before), and its nonce is taken once within that
//! window by whoever remembers nonces ([`Nonces`]).

use crate::error::IdentityError;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair,
    UnparsedPublicKey,
};
use base64ct::{Base64UrlUnpadded, Encoding};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use thiserror::Error;

/// The header that carries the sender's signature.
pub const SIGNATURE_HEADER: &str = "ribat-signature";
/// The header that carries a supervisor's co-signature of one request (step-up).
pub const COSIGN_HEADER: &str = "ribat-cosign";
/// How long after its time a signature is taken, in seconds.
pub const WINDOW_SECS: u64 = 60;
/// Shortest and longest nonce, in characters (base64url: 16 random bytes are 22).
const NONCE_LEN: std::ops::RangeInclusive<usize> = 16..=64;
/// Most nonces remembered at once; past it the oldest are forgotten first, and a request
/// whose nonce could have been forgotten is refused (see [`Nonces::first_use`]).
const MAX_REMEMBERED: usize = 1 << 20;

/// Why a signature was refused. No message repeats a signature, a key or a token.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// No signature header.
    #[error(
        "this request must be signed by its sender: send `Ribat-Signature: t=<unix time>, n=<nonce>, d=<body SHA-256>, s=<signature>` made with your client certificate's key (see the README, \"Signed requests\")"
    )]
    Missing,
    /// The header or a part of it is not what the format says.
    #[error("the request signature is malformed: {0}")]
    Malformed(String),
    /// Older than the window, or from the future.
    #[error("the request signature is dated {time}, {reason}; sign each request when you send it")]
    OutOfWindow {
        /// The signature's time (unix seconds).
        time: u64,
        /// Too old or too early.
        reason: String,
    },
    /// The signature does not verify under the certificate's key.
    #[error(
        "the request signature does not verify with the certificate's key over this method, path, body and token"
    )]
    BadSignature,
    /// The certificate's key is of a type that cannot sign requests.
    #[error("the certificate's key cannot sign requests: {0}")]
    KeyType(String),
    /// The nonce was used before within the window.
    #[error("the request's nonce was used before: a replayed request")]
    Replayed,
    /// The body is not the one signed.
    #[error("the request body is not the body the signature covers")]
    BodyMismatch,
}

/// SHA-256, base64url without padding.
pub fn digest(bytes: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(&Sha256::digest(bytes))
}

/// What a request signature covers: everything but the time and nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Covered<'a> {
    /// `GET`, `POST`.
    pub method: &'a str,
    /// Path and query, as sent.
    pub target: &'a str,
    /// [`digest`] of the body.
    pub body_digest: &'a str,
    /// The bearer token sent with it, if any.
    pub token: Option<&'a str>,
}

impl Covered<'_> {
    /// The signed text for `nonce` and `time`.
    pub fn text(&self, nonce: &str, time: u64) -> String {
        let token = self
            .token
            .map_or_else(|| "-".to_owned(), |t| digest(t.as_bytes()));
        format!(
            "ribat-request/v1\n{}\n{}\n{}\n{token}\n{nonce}\n{time}",
            self.method, self.target, self.body_digest
        )
    }
}

/// The text a co-signer signs: the sender's signed text, under its own label.
pub fn cosign_text(signed_text: &str) -> String {
    format!("ribat-cosign/v1\n{signed_text}")
}

/// The `Ribat-Signature` header `header`, checked whole against a request whose body is
/// known: made by `certificate`'s key (DER) over `covered`'s method, target and token and
/// over `body`, within its window at `now`. What every party that sees the whole request
/// checks (a gateway against its connection's certificate, a custodian or the identity
/// service against a forwarded one); the nonce is the caller's to take.
pub fn check_request(
    certificate: &[u8],
    header: &str,
    method: &str,
    target: &str,
    token: Option<&str>,
    body: &[u8],
    now: u64,
) -> Result<Signature, SignatureError> {
    let signature = Signature::parse(header)?;
    signature.check_time(now)?;
    signature.check_body(body)?;
    signature.verify(certificate, &signature.covers(method, target, token))?;
    Ok(signature)
}

/// A `Ribat-Signature` header's parts.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// Unix seconds.
    pub time: u64,
    /// Single-use value.
    pub nonce: String,
    /// [`digest`] of the body signed (given in the header, so that whoever has not read
    /// the body yet can check the signature, and the body against it once read).
    pub body_digest: String,
    /// The signature bytes.
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for Signature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signature(t={}, n={})", self.time, self.nonce)
    }
}

fn malformed(why: impl Into<String>) -> SignatureError {
    SignatureError::Malformed(why.into())
}

/// `k=v, k=v` with exactly the keys `keys`, in that order.
fn parts<'a>(header: &'a str, keys: &[&str]) -> Result<Vec<&'a str>, SignatureError> {
    let items: Vec<&str> = header.split(',').map(str::trim).collect();
    if items.len() != keys.len() {
        return Err(malformed(format!(
            "expected {} parts ({}), found {}",
            keys.len(),
            keys.iter()
                .map(|k| format!("{k}="))
                .collect::<Vec<_>>()
                .join(", "),
            items.len()
        )));
    }
    items
        .iter()
        .zip(keys)
        .map(|(item, key)| {
            item.strip_prefix(key)
                .and_then(|r| r.strip_prefix('='))
                .filter(|v| !v.is_empty())
                .ok_or_else(|| malformed(format!("expected `{key}=…` where `{item}` is")))
        })
        .collect()
}

fn base64url(v: &str, what: &str) -> Result<Vec<u8>, SignatureError> {
    Base64UrlUnpadded::decode_vec(v).map_err(|_| malformed(format!("{what} is not base64url")))
}

impl Signature {
    /// Reads a `Ribat-Signature` header value.
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let p = parts(header, &["t", "n", "d", "s"])?;
        let time = p[0]
            .parse::<u64>()
            .map_err(|_| malformed("t is not a unix time in seconds"))?;
        let nonce = p[1];
        if !NONCE_LEN.contains(&nonce.len())
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(malformed(format!(
                "n is {} to {} base64url characters (16 random bytes or more)",
                NONCE_LEN.start(),
                NONCE_LEN.end()
            )));
        }
        let body_digest = p[2];
        if base64url(body_digest, "d")?.len() != 32 {
            return Err(malformed(
                "d is the body's SHA-256, 43 base64url characters",
            ));
        }
        Ok(Self {
            time,
            nonce: nonce.to_owned(),
            body_digest: body_digest.to_owned(),
            signature: base64url(p[3], "s")?,
        })
    }

    /// As a header value.
    pub fn header(&self) -> String {
        format!(
            "t={}, n={}, d={}, s={}",
            self.time,
            self.nonce,
            self.body_digest,
            Base64UrlUnpadded::encode_string(&self.signature)
        )
    }

    /// What it covers for this method, target and token (the body as its digest says).
    pub fn covers<'a>(
        &'a self,
        method: &'a str,
        target: &'a str,
        token: Option<&'a str>,
    ) -> Covered<'a> {
        Covered {
            method,
            target,
            body_digest: &self.body_digest,
            token,
        }
    }

    /// Checks the signature with the DER certificate `cert`'s key, over what it covers.
    pub fn verify(&self, cert: &[u8], covered: &Covered<'_>) -> Result<(), SignatureError> {
        verify(
            cert,
            covered.text(&self.nonce, self.time).as_bytes(),
            &self.signature,
        )
    }

    /// Refused unless `body` is the body signed.
    pub fn check_body(&self, body: &[u8]) -> Result<(), SignatureError> {
        if digest(body) == self.body_digest {
            Ok(())
        } else {
            Err(SignatureError::BodyMismatch)
        }
    }

    /// Refused unless `now` is within the window after the signature's time.
    pub fn check_time(&self, now: u64) -> Result<(), SignatureError> {
        let skew = crate::token::SKEW_SECS.unsigned_abs();
        if self.time > now.saturating_add(skew) {
            return Err(SignatureError::OutOfWindow {
                time: self.time,
                reason: format!("{} s ahead of this server's clock", self.time - now),
            });
        }
        if now.saturating_sub(self.time) > WINDOW_SECS {
            return Err(SignatureError::OutOfWindow {
                time: self.time,
                reason: format!(
                    "{} s ago; a signature is good for {WINDOW_SECS} s",
                    now - self.time
                ),
            });
        }
        Ok(())
    }
}

/// A `Ribat-Cosign` header's parts: the co-signer's certificate and its signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Cosignature {
    /// The co-signer's certificate, DER.
    pub certificate: Vec<u8>,
    /// Its signature over [`cosign_text`] of the request's signed text.
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for Cosignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Cosignature({} bytes of certificate)",
            self.certificate.len()
        )
    }
}

impl Cosignature {
    /// Reads a `Ribat-Cosign` header value.
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let p = parts(header, &["c", "s"]).map_err(|e| match e {
            SignatureError::Malformed(m) => malformed(format!(
                "the co-signature: {m} (a co-signature is `c=<certificate>, s=<signature>` over this one request; a supervisor's token no longer co-signs)"
            )),
            other => other,
        })?;
        Ok(Self {
            certificate: base64url(p[0], "c")?,
            signature: base64url(p[1], "s")?,
        })
    }

    /// As a header value.
    pub fn header(&self) -> String {
        format!(
            "c={}, s={}",
            Base64UrlUnpadded::encode_string(&self.certificate),
            Base64UrlUnpadded::encode_string(&self.signature)
        )
    }
}

/// Verifies `signature` over `text` with the key of the DER certificate `cert` (whether the
/// certificate is to be believed is the caller's business: TLS verified it, or the caller
/// chains it to the CA).
pub fn verify(cert: &[u8], text: &[u8], signature: &[u8]) -> Result<(), SignatureError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| SignatureError::KeyType(format!("not a certificate ({e})")))?;
    let spki = parsed.public_key();
    let key = spki.subject_public_key.data.as_ref();
    let oid = spki.algorithm.algorithm.to_id_string();
    let alg: &dyn aws_lc_rs::signature::VerificationAlgorithm = match oid.as_str() {
        // id-ecPublicKey: the curve must be P-256 (prime256v1).
        "1.2.840.10045.2.1" => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            if curve.as_deref() != Some("1.2.840.10045.3.1.7") {
                return Err(SignatureError::KeyType(
                    "an EC key on another curve than P-256".into(),
                ));
            }
            &ECDSA_P256_SHA256_ASN1
        }
        "1.3.101.112" => &ED25519,
        other => {
            return Err(SignatureError::KeyType(format!(
                "algorithm {other}; ECDSA P-256 and Ed25519 keys sign"
            )));
        }
    };
    UnparsedPublicKey::new(alg, key)
        .verify(text, signature)
        .map_err(|_| SignatureError::BadSignature)
}

enum Key {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// Signs requests with a client certificate's key.
pub struct RequestSigner {
    key: Key,
    certificate: Vec<u8>,
    rng: SystemRandom,
}

impl std::fmt::Debug for RequestSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestSigner(redacted)")
    }
}

impl RequestSigner {
    /// From a certificate and its private key, both PEM (`cert.pem`, `key.pem`).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, IdentityError> {
        let bad = |why: String| IdentityError::Invalid(format!("request signing key: {why}"));
        let certificate = crate::tls::certs_from_pem(cert_pem, "the certificate")?
            .into_iter()
            .next()
            .ok_or_else(|| bad("the certificate file holds no certificate".into()))?
            .as_ref()
            .to_vec();
        let der = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| bad(format!("the key file is not a PEM private key ({e})")))?;
        let PrivateKeyDer::Pkcs8(pkcs8) = der else {
            return Err(bad(
                "the key is not PKCS#8 (`ribat identity add` writes PKCS#8)".into(),
            ));
        };
        let key = match EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            pkcs8.secret_pkcs8_der(),
        ) {
            Ok(k) => Key::Ecdsa(k),
            Err(_) => Key::Ed25519(
                Ed25519KeyPair::from_pkcs8(pkcs8.secret_pkcs8_der())
                    .map_err(|_| bad("neither an ECDSA P-256 nor an Ed25519 key".into()))?,
            ),
        };
        let signer = Self {
            key,
            certificate,
            rng: SystemRandom::new(),
        };
        // The key must be the certificate's, or every request would be refused later.
        let probe = "ribat-request/v1 key check";
        verify(
            &signer.certificate,
            probe.as_bytes(),
            &signer.raw_sign(probe)?,
        )
        .map_err(|_| bad("the key is not the certificate's".into()))?;
        Ok(signer)
    }

    /// From an identity directory's `cert.pem` and `key.pem`.
    pub fn in_dir(dir: &std::path::Path) -> Result<Self, IdentityError> {
        let read = |f: &str| {
            std::fs::read_to_string(dir.join(f)).map_err(|e| IdentityError::file(&dir.join(f), e))
        };
        let key = zeroize::Zeroizing::new(read("key.pem")?);
        Self::from_pem(&read("cert.pem")?, &key)
    }

    /// The certificate, DER.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    fn raw_sign(&self, text: &str) -> Result<Vec<u8>, IdentityError> {
        match &self.key {
            Key::Ecdsa(k) => k
                .sign(&self.rng, text.as_bytes())
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| IdentityError::Invalid("request signing failed".into())),
            Key::Ed25519(k) => Ok(k.sign(text.as_bytes()).as_ref().to_vec()),
        }
    }

    /// Signs a request at `now` with a fresh nonce.
    pub fn sign(&self, covered: &Covered<'_>, now: u64) -> Result<Signature, IdentityError> {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).map_err(|e| IdentityError::Invalid(e.to_string()))?;
        let nonce = Base64UrlUnpadded::encode_string(&raw);
        let signature = self.raw_sign(&covered.text(&nonce, now))?;
        Ok(Signature {
            time: now,
            nonce,
            body_digest: covered.body_digest.to_owned(),
            signature,
        })
    }

    /// Co-signs the one request `covered` signed by `sender`.
    pub fn cosign(
        &self,
        covered: &Covered<'_>,
        sender: &Signature,
    ) -> Result<Cosignature, IdentityError> {
        Ok(Cosignature {
            certificate: self.certificate.clone(),
            signature: self.raw_sign(&cosign_text(&covered.text(&sender.nonce, sender.time)))?,
        })
    }
}

/// Nonces seen within their window, so that each is taken once.
#[derive(Debug, Default)]
pub struct Nonces {
    seen: Mutex<Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    /// Nonce → the time until which it is remembered.
    until: HashMap<String, u64>,
    /// Oldest time a forgotten nonce could have been good until: a signature older than
    /// this may have been seen and forgotten, so it is refused.
    forgot_until: u64,
}

impl Nonces {
    /// Takes `nonce` of a signature dated `time` (already checked to be in its window):
    /// `false` when it was taken before.
    pub fn first_use(&self, scope: &str, nonce: &str, time: u64, now: u64) -> bool {
        let mut seen = match self.seen.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        let until = time.saturating_add(WINDOW_SECS + 1);
        if until <= seen.forgot_until {
            return false;
        }
        if seen.until.len() >= MAX_REMEMBERED {
            seen.until.retain(|_, u| *u > now);
        }
        if seen.until.len() >= MAX_REMEMBERED {
            // Under a flood of fresh nonces: forget the oldest half, and refuse from now
            // on anything they could have been replayed as.
            let mut times: Vec<u64> = seen.until.values().copied().collect();
            let (_, mid, _) = times.select_nth_unstable(MAX_REMEMBERED / 2);
            let cut = *mid;
            seen.until.retain(|_, u| *u > cut);
            seen.forgot_until = seen.forgot_until.max(cut);
            if until <= seen.forgot_until {
                return false;
            }
        }
        let key = format!("{scope}\n{nonce}");
        match seen.until.get(&key) {
            Some(u) if *u > now => false,
            _ => {
                seen.until.insert(key, until);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{Ca, CertKind};

    fn identity(role: &str) -> (tempfile::TempDir, RequestSigner) {
        let d = tempfile::tempdir().unwrap();
        let ca = Ca::init(d.path(), "test").unwrap();
        let issued = ca
            .issue("amina", role, "agency-1", &CertKind::Client, 1)
            .unwrap();
        let signer = RequestSigner::from_pem(&issued.cert_pem, &issued.key_pem).unwrap();
        (d, signer)
    }

    const NOW: u64 = 1_800_000_000;

    fn covered<'a>(target: &'a str, digest: &'a str) -> Covered<'a> {
        Covered {
            method: "GET",
            target,
            body_digest: digest,
            token: Some("v4.public.token"),
        }
    }

    #[test]
    fn a_signature_verifies_only_over_what_was_signed() {
        let (_d, s) = identity("clerk");
        let empty = digest(b"");
        let c = covered("/v1/persons/152099839?purpose=counter-service", &empty);
        let sig = s.sign(&c, NOW).unwrap();
        let parsed = Signature::parse(&sig.header()).unwrap();
        assert_eq!(parsed, sig);
        let ok = |c: &Covered<'_>, nonce: &str, time: u64| {
            verify(
                s.certificate(),
                c.text(nonce, time).as_bytes(),
                &parsed.signature,
            )
        };
        assert_eq!(ok(&c, &sig.nonce, NOW), Ok(()));
        assert_eq!(
            parsed.verify(s.certificate(), &parsed.covers(c.method, c.target, c.token)),
            Ok(())
        );
        assert_eq!(parsed.check_body(b""), Ok(()));
        assert_eq!(parsed.check_body(b"{}"), Err(SignatureError::BodyMismatch));
        let other_body = digest(b"{}");
        let changed = [
            Covered {
                method: "POST",
                ..c.clone()
            },
            covered("/v1/persons/152099840?purpose=counter-service", &empty),
            covered("/v1/persons/152099839?purpose=investigation", &empty),
            covered("/v1/persons/152099839?purpose=counter-service", &other_body),
            Covered {
                token: Some("v4.public.other"),
                ..c.clone()
            },
            Covered {
                token: None,
                ..c.clone()
            },
        ];
        for other in &changed {
            assert_eq!(
                ok(other, &sig.nonce, NOW),
                Err(SignatureError::BadSignature),
                "{other:?}"
            );
        }
        assert_eq!(
            ok(&c, "AAAAAAAAAAAAAAAAAAAAAA", NOW),
            Err(SignatureError::BadSignature)
        );
        assert_eq!(
            ok(&c, &sig.nonce, NOW + 1),
            Err(SignatureError::BadSignature)
        );
        // Another identity's certificate does not verify it.
        let (_e, other) = identity("clerk");
        assert_eq!(
            verify(
                other.certificate(),
                c.text(&sig.nonce, NOW).as_bytes(),
                &sig.signature
            ),
            Err(SignatureError::BadSignature)
        );
    }

    #[test]
    fn a_cosignature_covers_one_request_and_only_as_a_cosignature() {
        let (_d, clerk) = identity("clerk");
        let (_e, supervisor) = identity("supervisor");
        let empty = digest(b"");
        let c = covered("/v1/persons/152099839?purpose=counter-service", &empty);
        let sig = clerk.sign(&c, NOW).unwrap();
        let co = supervisor.cosign(&c, &sig).unwrap();
        let parsed = Cosignature::parse(&co.header()).unwrap();
        assert_eq!(parsed, co);
        let text = c.text(&sig.nonce, sig.time);
        assert_eq!(
            verify(
                &parsed.certificate,
                cosign_text(&text).as_bytes(),
                &parsed.signature
            ),
            Ok(())
        );
        // Not a request signature, and not the co-signature of the next request.
        assert_eq!(
            verify(&parsed.certificate, text.as_bytes(), &parsed.signature),
            Err(SignatureError::BadSignature)
        );
        let next = clerk.sign(&c, NOW + 5).unwrap();
        assert_eq!(
            verify(
                &parsed.certificate,
                cosign_text(&c.text(&next.nonce, next.time)).as_bytes(),
                &parsed.signature
            ),
            Err(SignatureError::BadSignature)
        );
        // A token in the header, as before, is told what changed.
        let old = Cosignature::parse("v4.public.abc").unwrap_err().to_string();
        assert!(old.contains("no longer co-signs"), "{old}");
    }

    #[test]
    fn headers_of_the_wrong_shape_say_what_is_wrong() {
        for (h, says) in [
            ("", "expected 4 parts"),
            ("t=1, n=AAAAAAAAAAAAAAAAAAAAAA, s=AA", "expected 4 parts"),
            ("n=AAAAAAAAAAAAAAAAAAAAAA, t=1, d=D, s=AA", "expected `t=…`"),
            ("t=-1, n=AAAAAAAAAAAAAAAAAAAAAA, d=D, s=AA", "unix time"),
            ("t=1, n=short, d=D, s=AA", "base64url characters"),
            (
                "t=1, n=AAAAAAAAAAAAAAAA AAAAAA, d=D, s=AA",
                "base64url characters",
            ),
            (
                "t=1, n=AAAAAAAAAAAAAAAAAAAAAA, d=AAAA, s=AA",
                "43 base64url",
            ),
            (
                "t=1, n=AAAAAAAAAAAAAAAAAAAAAA, d=D, s=!!",
                "d is not base64url",
            ),
            (
                "t=1, n=AAAAAAAAAAAAAAAAAAAAAA, d=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU, s=!!",
                "s is not base64url",
            ),
            (
                "t=1, n=AAAAAAAAAAAAAAAAAAAAAA, d=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU, s=",
                "expected `s=…`",
            ),
        ] {
            let e = Signature::parse(h).unwrap_err().to_string();
            assert!(e.contains(says), "{h:?}: {e}");
        }
    }

    #[test]
    fn a_signature_is_taken_within_its_window_only() {
        let at = |time| Signature {
            time,
            nonce: "AAAAAAAAAAAAAAAAAAAAAA".into(),
            body_digest: digest(b""),
            signature: vec![],
        };
        assert!(at(NOW).check_time(NOW).is_ok());
        assert!(at(NOW - WINDOW_SECS).check_time(NOW).is_ok());
        assert!(at(NOW - WINDOW_SECS - 1).check_time(NOW).is_err());
        assert!(at(NOW + 30).check_time(NOW).is_ok());
        assert!(at(NOW + 31).check_time(NOW).is_err());
    }

    #[test]
    fn a_nonce_is_taken_once_per_scope_within_its_window() {
        let n = Nonces::default();
        assert!(n.first_use("amina", "AAAAAAAAAAAAAAAAAAAAAA", NOW, NOW));
        assert!(!n.first_use("amina", "AAAAAAAAAAAAAAAAAAAAAA", NOW, NOW + 10));
        assert!(n.first_use("youssef", "AAAAAAAAAAAAAAAAAAAAAA", NOW, NOW + 10));
        // Once its window is over the signature is refused by its time anyway; the
        // nonce may be forgotten.
        assert!(n.first_use("amina", "AAAAAAAAAAAAAAAAAAAAAA", NOW + 100, NOW + 100));
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused_when_loaded() {
        let d = tempfile::tempdir().unwrap();
        let ca = Ca::init(d.path(), "test").unwrap();
        let a = ca.issue("a", "clerk", "x", &CertKind::Client, 1).unwrap();
        let b = ca.issue("b", "clerk", "x", &CertKind::Client, 1).unwrap();
        let e = RequestSigner::from_pem(&a.cert_pem, &b.key_pem).unwrap_err();
        assert!(e.to_string().contains("not the certificate's"), "{e}");
    }
}
