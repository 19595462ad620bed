//! What an end user asked, checked by the custodian itself.
//!
//! A gateway forwards with each partial request the user's request as they signed it
//! (`ribat_identity::signed`): their certificate, method, target, body and signature. The
//! custodian believes none of it on the gateway's word:
//!
//! ```text
//!   certificate ── chained to the deployment's CA, valid, not revoked, granted
//!               ── the one the token is bound to; names the requester
//!   signature   ── verifies over method, target, body digest, token, nonce, time
//!               ── within its window (a signature seen yesterday opens nothing today)
//!   target/body ── a read route: the subject (a CNSS number, a CIN, a name and birth
//!                  date, an affiliation number) and the purpose
//!   records     ── those the subject names, found as the gateway finds them (blind-index
//!                  key, store); a record outside them is refused
//! ```
//!
//! Why no nonce memory here: a custodian's answer for a record is the same every time
//! (`k_i·R`), so a gateway that sends a signed request again within its window learns
//! nothing it was not given the first time; the window bounds it, and the gateway takes
//! each nonce once for the user's sake (audit and quotas).
//!
//! Node jobs are not user requests and carry no user signature: opening the service keys
//! (the key records only), re-sealing during a key rotation (the job's node only), bulk
//! reads under an allowance two administrators signed ([`needs_signature`]).

use crate::request::{Asked, PartialRequest};
use base64ct::{Base64UrlUnpadded, Encoding};
use ribat_crypto::blind_index::{BlindIndexer, DECLARATIONS_OF, IndexKind};
use ribat_policy::{Purpose, Table};
use ribat_store::PointSource;
use std::collections::BTreeSet;

/// Who or what a read route names.
#[derive(Clone, PartialEq, Eq)]
pub enum Subject {
    /// `GET /v1/persons/{cnss}`.
    Person(String),
    /// `GET /v1/persons/{cnss}/declarations`.
    Declarations(String),
    /// `POST /v1/persons/search` by CIN.
    Cin(String),
    /// `POST /v1/persons/search` by name and birth date.
    NameBirth(String, String),
    /// `GET /v1/employers/{affiliation}`.
    Employer(String),
}

/// Names a person: never in a log.
impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Person(_) => "Person(redacted)",
            Self::Declarations(_) => "Declarations(redacted)",
            Self::Cin(_) => "Cin(redacted)",
            Self::NameBirth(..) => "NameBirth(redacted)",
            Self::Employer(_) => "Employer(redacted)",
        })
    }
}

/// A read as the user asked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AskedRead {
    /// Whom.
    pub subject: Subject,
    /// Why, as the request says it.
    pub purpose: String,
}

/// Whether a request needs its user's signature: every request but the node jobs'.
pub fn needs_signature(req: &PartialRequest) -> bool {
    ![
        Purpose::OPEN_INDEX_KEY,
        Purpose::OPEN_LEAK_KEY,
        Purpose::KEY_ROTATION,
    ]
    .contains(&req.purpose)
}

fn digits(v: &str, len: usize) -> Option<String> {
    (v.len() == len && v.bytes().all(|b| b.is_ascii_digit())).then(|| v.to_owned())
}

/// The one `purpose` of a query string (a second one, or one written with escapes, is
/// refused: the gateway would read it otherwise than this).
fn purpose_in(query: &str) -> Result<String, String> {
    let mut found = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "purpose" {
            if found.is_some() {
                return Err("the signed request names `purpose` twice".into());
            }
            found = Some(v);
        }
    }
    let p = found.ok_or("the signed request names no purpose")?;
    if p.contains('%') || p.contains('+') {
        return Err("the signed request's purpose is escaped; send it as it is".into());
    }
    Ok(p.to_owned())
}

/// The read a signed method, target and body ask for.
pub fn read_of(method: &str, target: &str, body: &[u8]) -> Result<AskedRead, String> {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let parts: Vec<&str> = path.split('/').collect();
    let not_a_read = || format!("the signed request is no read ({method} {path})");
    match (method, parts.as_slice()) {
        ("GET", ["", "v1", "persons", cnss]) => Ok(AskedRead {
            subject: Subject::Person(digits(cnss, 9).ok_or_else(not_a_read)?),
            purpose: purpose_in(query)?,
        }),
        ("GET", ["", "v1", "persons", cnss, "declarations"]) => Ok(AskedRead {
            subject: Subject::Declarations(digits(cnss, 9).ok_or_else(not_a_read)?),
            purpose: purpose_in(query)?,
        }),
        ("GET", ["", "v1", "employers", affiliation]) => Ok(AskedRead {
            subject: Subject::Employer(digits(affiliation, 7).ok_or_else(not_a_read)?),
            purpose: purpose_in(query)?,
        }),
        ("POST", ["", "v1", "persons", "search"]) if query.is_empty() => {
            #[derive(serde::Deserialize)]
            struct Search {
                purpose: Option<String>,
                cin: Option<String>,
                name: Option<String>,
                birth_date: Option<String>,
            }
            let b: Search = serde_json::from_slice(body)
                .map_err(|e| format!("the signed search body is not a search: {e}"))?;
            let subject = match (b.cin, b.name, b.birth_date) {
                (Some(cin), None, None) => Subject::Cin(cin),
                (None, Some(n), Some(d)) => Subject::NameBirth(n, d),
                _ => {
                    return Err(
                        "the signed search names neither a CIN nor a name and birth date".into(),
                    );
                }
            };
            Ok(AskedRead {
                subject,
                purpose: b.purpose.ok_or("the signed request names no purpose")?,
            })
        }
        _ => Err(not_a_read()),
    }
}

/// The table and the records a subject names, found as the gateway finds them.
pub fn records_named(
    index: &BlindIndexer,
    store: &dyn PointSource,
    subject: &Subject,
) -> Result<(Table, BTreeSet<String>), String> {
    let bad = |e: ribat_crypto::CryptoError| format!("the signed request's subject: {e}");
    let tagged = |kind: &str, tag: [u8; 16], table: Table| -> Result<BTreeSet<String>, String> {
        Ok(store
            .lookup(kind, &tag)
            .map_err(|e| format!("the store failed: {e}"))?
            .into_iter()
            .filter(|r| r.table == table.as_str())
            .map(|r| r.record_id)
            .collect())
    };
    Ok(match subject {
        Subject::Person(cnss) => (
            Table::Persons,
            [index.person_record_id(cnss).map_err(bad)?].into(),
        ),
        Subject::Employer(affiliation) => (
            Table::Employers,
            [index.employer_record_id(affiliation).map_err(bad)?].into(),
        ),
        Subject::Declarations(cnss) => {
            let person = index.person_record_id(cnss).map_err(bad)?;
            let tag = index.reference(DECLARATIONS_OF, &person).map_err(bad)?;
            (
                Table::Declarations,
                tagged(DECLARATIONS_OF, tag.0, Table::Declarations)?,
            )
        }
        Subject::Cin(cin) => (
            Table::Persons,
            tagged(
                IndexKind::Cin.label(),
                index.cin(cin).map_err(bad)?.0,
                Table::Persons,
            )?,
        ),
        Subject::NameBirth(name, birth) => (
            Table::Persons,
            tagged(
                IndexKind::NameBirth.label(),
                index.name_birth(name, birth).map_err(bad)?.0,
                Table::Persons,
            )?,
        ),
    })
}

/// The signed request's parts, checked for everything but the certificate's standing
/// (the caller's TLS settings know the CA and revocations): the signature over what it
/// covers with `token`, its window at `now`, the body against it, and the read it asks.
pub fn check_signed(asked: &Asked, token: &str, now: u64) -> Result<(Vec<u8>, AskedRead), String> {
    let certificate = Base64UrlUnpadded::decode_vec(&asked.certificate)
        .map_err(|_| "the forwarded certificate is not base64url".to_owned())?;
    let body = match &asked.body {
        Some(b) => Base64UrlUnpadded::decode_vec(b)
            .map_err(|_| "the forwarded body is not base64url".to_owned())?,
        None => Vec::new(),
    };
    ribat_identity::signed::check_request(
        &certificate,
        &asked.signature,
        &asked.method,
        &asked.target,
        Some(token),
        &body,
        now,
    )
    .map_err(|e| e.to_string())?;
    let read = read_of(&asked.method, &asked.target, &body)?;
    Ok((certificate, read))
}

/// Whether `req` stays within what the user asked: the purpose they signed, the table and
/// records their subject names.
pub fn within(
    read: &AskedRead,
    req: &PartialRequest,
    index: &BlindIndexer,
    store: &dyn PointSource,
) -> Result<(), String> {
    if read.purpose != req.purpose.as_str() {
        return Err(format!(
            "the user signed a read for purpose `{}`, the request is for `{}`",
            read.purpose, req.purpose
        ));
    }
    let (table, named) = records_named(index, store, &read.subject)?;
    if table != req.table {
        return Err(format!(
            "the user's signed request reads table `{table}`, not `{}`",
            req.table
        ));
    }
    let outside = req
        .record_ids
        .iter()
        .filter(|r| !named.contains(*r))
        .count();
    if outside > 0 {
        return Err(format!(
            "{outside} of the {} records asked are not named by the user's signed request",
            req.record_ids.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_read_route_names_its_subject_and_purpose() {
        let read = |m, t, b: &str| read_of(m, t, b.as_bytes());
        assert_eq!(
            read(
                "GET",
                "/v1/persons/152099839?purpose=counter-service&case=t-1",
                ""
            ),
            Ok(AskedRead {
                subject: Subject::Person("152099839".into()),
                purpose: "counter-service".into()
            })
        );
        assert_eq!(
            read(
                "GET",
                "/v1/persons/152099839/declarations?purpose=investigation",
                ""
            )
            .map(|r| r.subject),
            Ok(Subject::Declarations("152099839".into()))
        );
        assert_eq!(
            read(
                "GET",
                "/v1/employers/1234567?fields=name&purpose=employee-check",
                ""
            )
            .map(|r| r.subject),
            Ok(Subject::Employer("1234567".into()))
        );
        assert_eq!(
            read(
                "POST",
                "/v1/persons/search",
                r#"{"purpose":"counter-service","cin":"AB123456"}"#
            ),
            Ok(AskedRead {
                subject: Subject::Cin("AB123456".into()),
                purpose: "counter-service".into()
            })
        );
        assert_eq!(
            read(
                "POST",
                "/v1/persons/search",
                r#"{"purpose":"p","name":"A B","birth_date":"1980-01-02"}"#
            )
            .map(|r| r.subject),
            Ok(Subject::NameBirth("A B".into(), "1980-01-02".into()))
        );
    }

    #[test]
    fn a_subject_never_shows_whom_it_names() {
        for s in [
            Subject::Person("152099839".into()),
            Subject::Declarations("152099839".into()),
            Subject::Cin("AB123456".into()),
            Subject::NameBirth("Amina Tazi".into(), "1980-01-02".into()),
            Subject::Employer("1234567".into()),
        ] {
            let shown = format!("{s:?}");
            assert!(shown.ends_with("(redacted)"), "{shown}");
            for secret in ["152099839", "AB123456", "Amina", "1980", "1234567"] {
                assert!(!shown.contains(secret), "{shown}");
            }
        }
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        for (m, t, b, says) in [
            ("GET", "/v1/decisions", "", "no read"),
            ("POST", "/v1/persons/152099839", "", "no read"),
            ("GET", "/v1/persons/15209983", "", "no read"),
            ("GET", "/v1/persons/152099839", "", "no purpose"),
            (
                "GET",
                "/v1/persons/152099839?purpose=a&purpose=b",
                "",
                "twice",
            ),
            (
                "GET",
                "/v1/persons/152099839?purpose=counter%2Dservice",
                "",
                "escaped",
            ),
            ("POST", "/v1/persons/search", "{", "not a search"),
            (
                "POST",
                "/v1/persons/search",
                r#"{"purpose":"p"}"#,
                "neither",
            ),
            (
                "POST",
                "/v1/persons/search",
                r#"{"cin":"AB1"}"#,
                "no purpose",
            ),
            (
                "POST",
                "/v1/persons/search?x=1",
                r#"{"purpose":"p","cin":"AB1"}"#,
                "no read",
            ),
        ] {
            let e = read_of(m, t, b.as_bytes()).unwrap_err();
            assert!(e.contains(says), "{m} {t} {b}: {e}");
        }
    }
}
