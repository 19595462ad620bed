//! What one audit entry says: one access to one subject. Version 1, JSON, one object,
//! fields in this order:
//!
//! ```json
//! {"v":1,"time_ms":1763860000123,"node":"node.embedded","request_id":"cli-18f2…",
//!  "identity":"clerk.casa-anfa.0042","role":"clerk","institution":"agence Casa-Anfa",
//!  "purpose":"counter-service","subject":"p-kjdhfa…","record":"p-kjdhfa…","table":"persons",
//!  "classes":["identity"],"fields":["given","surname"],"outcome":"released",
//!  "custodians":[1,3]}
//! ```
//!
//! - `subject` is the person's (or employer's) record id, itself a keyed blind index of the
//!   CNSS number: whoever holds the log learns no identifier from it. `record` is the
//!   record read: the subject's own, or one of their declarations.
//! - `outcome` is `released` (plaintext left the gateway), `denied` (a rule refused it;
//!   `reason` says which, without quoting any value) or `failed` (the quorum could not
//!   answer).
//! - `custodians` are the indices of the custodians whose partial decryptions were used.
//!
//! An entry never carries plaintext personal data: no name, number or amount. Entries are
//! at most `MAX_ENTRY` bytes; one access to n subjects is n entries, so that the proof
//! shown to one citizen reveals nothing about the others.

use serde::{Deserialize, Serialize};

/// Entry format version.
pub const ENTRY_VERSION: u8 = 1;

/// Longest encoded entry (the entry-bundle format of tlog-tiles prefixes each with a u16).
pub const MAX_ENTRY: usize = 65_535;

/// One access to one subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// Format version, 1.
    pub v: u8,
    /// Unix time in milliseconds.
    pub time_ms: u64,
    /// Node (gateway) that served the request.
    pub node: String,
    /// Request id, shared with the custodians' own logs.
    pub request_id: String,
    /// End user identity.
    pub identity: String,
    /// Role.
    pub role: String,
    /// Institution the identity belongs to (agency, partner, batch).
    pub institution: String,
    /// Declared purpose.
    pub purpose: String,
    /// Record id of the person or employer the data is about (a blind index).
    pub subject: String,
    /// Record read (the subject's own record, or one of their declarations).
    pub record: String,
    /// Table.
    pub table: String,
    /// Classes opened.
    pub classes: Vec<String>,
    /// Fields released.
    pub fields: Vec<String>,
    /// `released`, `denied` or `failed`.
    pub outcome: String,
    /// Why it was denied or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Custodians whose partials were combined.
    pub custodians: Vec<u32>,
}

/// Why an entry cannot be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// Not a version-1 entry.
    #[error("not an audit entry: {0}")]
    Malformed(String),
    /// Too long for the log.
    #[error("an audit entry is at most {MAX_ENTRY} bytes, this one is {0}")]
    TooLong(usize),
}

impl AuditEntry {
    /// The bytes that go into the log.
    pub fn encode(&self) -> Result<Vec<u8>, EntryError> {
        let bytes = serde_json::to_vec(self).map_err(|e| EntryError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_ENTRY {
            return Err(EntryError::TooLong(bytes.len()));
        }
        Ok(bytes)
    }

    /// Parses a version-1 entry.
    pub fn decode(bytes: &[u8]) -> Result<Self, EntryError> {
        let e: Self =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        if e.v != ENTRY_VERSION {
            return Err(EntryError::Malformed(format!("unknown version {}", e.v)));
        }
        Ok(e)
    }
}

/// The subject of any JSON entry that has one (custodians' entries have none), for the
/// per-subject index.
pub fn subject_of(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Subject {
        subject: Option<String>,
    }
    serde_json::from_slice::<Subject>(bytes).ok()?.subject
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AuditEntry {
        AuditEntry {
            v: 1,
            time_ms: 1,
            node: "n".into(),
            request_id: "r".into(),
            identity: "i".into(),
            role: "clerk".into(),
            institution: "agence".into(),
            purpose: "counter-service".into(),
            subject: "p-abc".into(),
            record: "p-abc".into(),
            table: "persons".into(),
            classes: vec!["identity".into()],
            fields: vec!["given".into()],
            outcome: "released".into(),
            reason: None,
            custodians: vec![1, 2],
        }
    }

    #[test]
    fn round_trips_and_refuses_other_versions_and_fields() {
        let e = sample();
        let b = e.encode().unwrap();
        assert_eq!(AuditEntry::decode(&b).unwrap(), e);
        assert_eq!(subject_of(&b).as_deref(), Some("p-abc"));
        let v2 = String::from_utf8(b.clone())
            .unwrap()
            .replace("\"v\":1", "\"v\":2");
        assert!(AuditEntry::decode(v2.as_bytes()).is_err());
        let extra = String::from_utf8(b)
            .unwrap()
            .replace("{\"v\"", "{\"cin\":\"BE1\",\"v\"");
        assert!(AuditEntry::decode(extra.as_bytes()).is_err());
        let mut long = sample();
        long.reason = Some("x".repeat(MAX_ENTRY));
        assert!(matches!(long.encode(), Err(EntryError::TooLong(_))));
    }

    #[test]
    fn an_entry_of_exactly_max_entry_bytes_is_taken_and_one_more_is_not() {
        let mut e = sample();
        e.reason = Some(String::new());
        let base = e.encode().unwrap().len();
        e.reason = Some("x".repeat(MAX_ENTRY - base));
        assert_eq!(e.encode().unwrap().len(), MAX_ENTRY);
        e.reason = Some("x".repeat(MAX_ENTRY - base + 1));
        assert!(matches!(e.encode(), Err(EntryError::TooLong(n)) if n == MAX_ENTRY + 1));
    }
}
