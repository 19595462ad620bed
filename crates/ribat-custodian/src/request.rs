//! What a reader asks a custodian.

use ribat_policy::{Class, Purpose, Role, Table};
use serde::{Deserialize, Serialize};

/// Who asks: the end user's identity (from the mTLS certificate and token) and role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Requester {
    /// Stable identity name, e.g. `clerk.casa-anfa.0042` or `partner.insurer-x`.
    pub identity: String,
    /// Role in the policy, e.g. `clerk`, `partner`.
    pub role: Role,
}

/// A request for partial decryptions of one class of a batch of records.
///
/// It names records, never points: each custodian resolves `R` from the store itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartialRequest {
    /// Unique id, carried into every log.
    pub request_id: String,
    /// Who asks.
    pub requester: Requester,
    /// Why; required.
    pub purpose: Purpose,
    /// Table.
    pub table: Table,
    /// Class.
    pub class: Class,
    /// Records, in the order the answers will come back.
    pub record_ids: Vec<String>,
    /// The custodian set whose public shares the reader checks answers against (absent:
    /// 1, the ceremony's). A custodian of another set refuses, so that a reader and a
    /// custodian on either side of a resharing never mistake each other for liars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<u32>,
    /// The key epoch the records were sealed under, as their envelopes say (absent: 1).
    /// The custodian answers with that epoch's share, and refuses a record the store
    /// holds under another epoch (re-sealed by a rotation since the reader fetched it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
    /// The end user's signed token, carried to custodians in other processes so that each
    /// checks who acts itself (I3); in-process custodians share the gateway's check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Bearer>,
    /// What the end user asked, as they signed it, carried to custodians in other
    /// processes: each checks the signature against the user's certificate and answers
    /// only for the records that request names (a gateway cannot use a user's token and
    /// signature for other records, nor make requests up in the user's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked: Option<Asked>,
}

/// An end user's request as they signed it (`ribat_identity::signed`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Asked {
    /// The user's certificate, DER, base64url.
    pub certificate: String,
    /// `GET`, `POST`.
    pub method: String,
    /// Path and query, as the user sent them.
    pub target: String,
    /// The body, base64url (a search's JSON); absent when the request had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The `Ribat-Signature` header the user sent.
    pub signature: String,
}

impl Asked {
    /// A request signed now by `signer` (the user's client), as a gateway forwards it.
    pub fn signed_by(
        signer: &ribat_identity::signed::RequestSigner,
        method: &str,
        target: &str,
        body: &[u8],
        token: &str,
    ) -> Result<Self, ribat_identity::IdentityError> {
        use base64ct::{Base64UrlUnpadded, Encoding};
        let now = ribat_clock::now_secs();
        let signature = signer.sign(
            &ribat_identity::signed::Covered {
                method,
                target,
                body_digest: &ribat_identity::signed::digest(body),
                token: Some(token),
            },
            now,
        )?;
        Ok(Self {
            certificate: Base64UrlUnpadded::encode_string(signer.certificate()),
            method: method.to_owned(),
            target: target.to_owned(),
            body: (!body.is_empty()).then(|| Base64UrlUnpadded::encode_string(body)),
            signature: signature.header(),
        })
    }
}

/// The target names a person: never in a log.
impl std::fmt::Debug for Asked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Asked({} redacted)", self.method)
    }
}

/// A bearer token, kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Bearer(pub String);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(redacted)")
    }
}

/// Largest batch one request may cover (a composite proof's limit is 65 535).
pub const MAX_RECORDS_PER_REQUEST: usize = 10_000;
