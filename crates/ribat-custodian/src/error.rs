//! Custodian errors and denials.

use ribat_crypto::CryptoError;
use ribat_policy::{Class, Purpose, Role, Table};
use ribat_store::StoreError;
use thiserror::Error;

/// Why a custodian refused to answer. The requester sees this; it never reveals which
/// records are honey records.
#[derive(Debug, Clone, Error, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "denial", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Denial {
    /// The role is not in the policy.
    #[error("role `{role}` is not known to this custodian's policy")]
    UnknownRole {
        /// Role.
        role: Role,
    },
    /// The role may not read this class.
    #[error("role `{role}` may not read class `{class}`")]
    ClassNotAllowed {
        /// Role.
        role: Role,
        /// Class.
        class: Class,
    },
    /// The purpose is missing, unknown, or not allowed for the role.
    #[error("purpose `{purpose}` is not allowed for role `{role}` (allowed: {allowed})")]
    PurposeNotAllowed {
        /// Role.
        role: Role,
        /// Purpose given.
        purpose: Purpose,
        /// Purposes the role may use.
        allowed: String,
    },
    /// The table may not be read for this purpose.
    #[error("table `{table}` cannot be read for purpose `{purpose}`")]
    TableNotAllowed {
        /// Table.
        table: Table,
        /// Purpose.
        purpose: Purpose,
    },
    /// The identity has read its quota of distinct records for the window.
    #[error(
        "quota exceeded: `{identity}` may read {limit} distinct records per {window_secs} s; this request would make {would_be}. Wait or ask a supervisor"
    )]
    QuotaExceeded {
        /// Identity.
        identity: String,
        /// Limit.
        limit: usize,
        /// Window length.
        window_secs: u64,
        /// Distinct records after this request.
        would_be: usize,
    },
    /// The identity is quarantined.
    #[error("identity `{identity}` is quarantined until {} UTC; contact the security team", utc(*.until))]
    Quarantined {
        /// Identity.
        identity: String,
        /// End of the quarantine.
        until: u64,
    },
    /// A deployment's own check refused.
    #[error("refused by the `{hook}` check: {reason}")]
    Hook {
        /// Hook name.
        hook: String,
        /// Its reason.
        reason: String,
    },
    /// The request itself is malformed.
    #[error("malformed request: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The caller is not who it must be (a custodian served by the network checks the
    /// gateway's certificate and the end user's token itself).
    #[error("not authenticated: {reason}")]
    Unauthenticated {
        /// What is wrong.
        reason: String,
    },
}

/// `YYYY-MM-DD HH:MM:SS` of a Unix time, for messages.
pub fn utc(unix: u64) -> String {
    i64::try_from(unix)
        .ok()
        .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| format!("unix time {unix}"))
}

/// Everything a custodian call can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CustodianError {
    /// The custodian refused by policy.
    #[error("custodian {custodian} refused: {denial}")]
    Denied {
        /// Custodian index.
        custodian: u32,
        /// Why.
        denial: Denial,
    },
    /// A requested record does not exist for this class.
    #[error("custodian {custodian}: no record {table}/{record_id} with class `{class}`")]
    UnknownRecord {
        /// Custodian index.
        custodian: u32,
        /// Table.
        table: String,
        /// Record.
        record_id: String,
        /// Class.
        class: String,
    },
    /// This custodian holds no share of the class.
    #[error("custodian {custodian} holds no share of class `{class}`")]
    UnknownClass {
        /// Custodian index.
        custodian: u32,
        /// Class.
        class: String,
    },
    /// The record was sealed under another key epoch.
    #[error(
        "custodian {custodian}: record sealed under epoch {record_epoch}, this custodian holds epoch {held}"
    )]
    WrongEpoch {
        /// Custodian index.
        custodian: u32,
        /// Epoch of the record.
        record_epoch: u32,
        /// Epoch of the held shares.
        held: u32,
    },
    /// A key-rotation read while no rotation is under way at this custodian, or for
    /// another epoch than the one being rotated away from.
    #[error("custodian {custodian}: {}", no_rotation(*asked, *rotating))]
    NoRotation {
        /// Custodian index.
        custodian: u32,
        /// The epoch the request named.
        asked: u32,
        /// The epoch being rotated away from, if any.
        rotating: Option<u32>,
    },
    /// The request names another custodian set than the one this custodian serves (its
    /// reader has not caught up with a resharing), or this custodian left the set in force.
    #[error("custodian {custodian}: {}", other_set(*asked, *held, *retired))]
    OtherSet {
        /// Custodian index.
        custodian: u32,
        /// The set the request named.
        asked: u32,
        /// The set in force here.
        held: u32,
        /// Whether this custodian is not in the set in force (it answers no set).
        retired: bool,
    },
    /// The custodian's own log could not be written: it fails closed (I2).
    #[error(
        "custodian {custodian} cannot write its log at {path} ({source}); it refuses to answer until it can"
    )]
    LogUnavailable {
        /// Custodian index.
        custodian: u32,
        /// Log path.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file of the custodian's directory is missing, unreadable or malformed.
    #[error("custodian directory {path}: {reason}")]
    Directory {
        /// Path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// Cryptography refused.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A lock was poisoned by a panic elsewhere.
    #[error("custodian state lock poisoned; restart the custodian")]
    Poisoned,
    /// The custodian could not be reached (remote custodians).
    #[error("custodian {custodian} unavailable: {reason}")]
    Unavailable {
        /// Custodian index.
        custodian: u32,
        /// Why.
        reason: String,
    },
}

fn no_rotation(asked: u32, rotating: Option<u32>) -> String {
    match rotating {
        None => format!("a key-rotation read for epoch {asked}, but no key rotation is under way"),
        Some(r) => {
            format!("a key-rotation read for epoch {asked}, but the rotation is from epoch {r}")
        }
    }
}

fn other_set(asked: u32, held: u32, retired: bool) -> String {
    match retired {
        true => format!(
            "not in custodian set {held}, now in force; it answers no request (this one named set {asked})"
        ),
        false => {
            format!("the request names custodian set {asked}, this custodian serves set {held}")
        }
    }
}
