//! The identity a verified peer certificate names.

use crate::error::IdentityError;
use base64ct::{Base64UrlUnpadded, Encoding};
use ribat_policy::Role;
use sha2::{Digest, Sha256};

/// Who is on the other end of a TLS connection whose certificate chain was verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Identity name (subject CN).
    pub name: String,
    /// Role (subject OU).
    pub role: Role,
    /// Institution (subject O).
    pub institution: String,
    /// Serial number, lowercase hex.
    pub serial: String,
    /// SHA-256 of the certificate, base64url (RFC 8705 `x5t#S256`).
    pub thumbprint: String,
}

/// SHA-256 of a DER certificate, base64url without padding.
pub fn thumbprint(der: &[u8]) -> String {
    Base64UrlUnpadded::encode_string(&Sha256::digest(der))
}

fn one(
    attr: Option<&x509_parser::x509::AttributeTypeAndValue<'_>>,
    what: &str,
) -> Result<String, IdentityError> {
    attr.and_then(|a| a.as_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            IdentityError::Certificate(format!(
                "the certificate names no {what}; it was not issued by `ribat identity add`"
            ))
        })
}

impl PeerIdentity {
    /// Reads the identity out of a certificate that TLS has already verified.
    pub fn from_der(der: &[u8]) -> Result<Self, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::Certificate(e.to_string()))?;
        let subject = cert.subject();
        let serial = hex::encode(cert.raw_serial());
        Ok(Self {
            name: one(subject.iter_common_name().next(), "identity (CN)")?,
            role: Role::new(one(subject.iter_organizational_unit().next(), "role (OU)")?)
                .map_err(|e| IdentityError::Certificate(format!("the certificate's {e}")))?,
            institution: one(subject.iter_organization().next(), "institution (O)")?,
            serial,
            thumbprint: thumbprint(der),
        })
    }
}
