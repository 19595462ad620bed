//! I2 — audit before plaintext. A read goes to the quorum; the plaintext it returns stays
//! in the gateway until one entry per subject is durable in the node's log; if the log
//! cannot write, the plaintext is dropped (its buffers zeroized) and the read refused.
//! Refusals and failures are logged too, best effort: their absence releases nothing.

use crate::node_log::NodeLog;
use ribat_audit::entry::{AuditEntry, ENTRY_VERSION};
use ribat_audit::log::LogError;
use ribat_custodian::PartialRequest;
use ribat_custodian::quorum::{QuorumError, QuorumRead, QuorumReader};

/// What the gateway knows of an access beyond the request itself.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    /// Institution of the requester (agency, partner, batch).
    pub institution: &'a str,
    /// Fields that will be released from the opened class.
    pub fields: &'a [&'a str],
    /// Unix time in milliseconds.
    pub time_ms: u64,
    /// The person the records are about, when they are not the records themselves
    /// (a person's declarations); `None` makes each record its own subject.
    pub subject: Option<&'a str>,
}

/// Why an audited read returned nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditFirstError {
    /// The quorum refused or failed (and that is logged).
    #[error(transparent)]
    Quorum(#[from] QuorumError),
    /// The read succeeded but could not be logged: nothing is released.
    #[error(
        "read refused: the access could not be recorded in the audit log, so no plaintext is released ({0})"
    )]
    AuditUnavailable(LogError),
    /// An entry could not be encoded.
    #[error("read refused: {0}")]
    Entry(String),
}

fn entries(
    log: &NodeLog,
    req: &PartialRequest,
    access: Access<'_>,
    outcome: &str,
    reason: Option<String>,
    custodians: &[u32],
) -> Result<Vec<Vec<u8>>, AuditFirstError> {
    req.record_ids
        .iter()
        .map(|id| {
            AuditEntry {
                v: ENTRY_VERSION,
                time_ms: access.time_ms,
                node: log.node().to_owned(),
                request_id: req.request_id.clone(),
                identity: req.requester.identity.clone(),
                role: req.requester.role.to_string(),
                institution: access.institution.to_owned(),
                purpose: req.purpose.to_string(),
                subject: access.subject.map_or_else(|| id.clone(), str::to_owned),
                record: id.clone(),
                table: req.table.to_string(),
                classes: vec![req.class.to_string()],
                fields: access.fields.iter().map(|f| (*f).to_owned()).collect(),
                outcome: outcome.to_owned(),
                reason: reason.clone(),
                custodians: custodians.to_vec(),
            }
            .encode()
            .map_err(|e| AuditFirstError::Entry(e.to_string()))
        })
        .collect()
}

/// Reads through the quorum and returns the plaintext only once the access is durable.
pub fn read_audited(
    reader: &QuorumReader,
    log: &NodeLog,
    req: &PartialRequest,
    access: Access<'_>,
) -> Result<QuorumRead, AuditFirstError> {
    match reader.read(req) {
        Ok(read) => {
            let batch = entries(log, req, access, "released", None, &read.served_by)?;
            let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
            if let Err(e) = log.log().append_all(&refs) {
                drop(read);
                return Err(AuditFirstError::AuditUnavailable(e));
            }
            Ok(read)
        }
        Err(e) => {
            let outcome = match e {
                QuorumError::Refused { .. } => "denied",
                _ => "failed",
            };
            // Reasons name rules and custodians, never values.
            if let Ok(batch) = entries(log, req, access, outcome, Some(e.to_string()), &[]) {
                let refs: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
                let _ = log.log().append_all(&refs);
            }
            Err(e.into())
        }
    }
}
