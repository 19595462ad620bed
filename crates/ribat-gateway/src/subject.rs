//! Who accessed one record: its entries in the node's audit log, each with an inclusion
//! proof against a checkpoint — the citizen's question, the data-protection authority's,
//! and the console's Audit page's (`ribat audit subject` asks it from the command line).

use base64ct::{Base64, Encoding};
use ribat_audit::hash::{Hash, leaf};
use ribat_audit::proof::verify_inclusion;
use ribat_audit::{AuditEntry, Log, LogError};

/// One access, as the log holds it.
#[derive(Debug, Clone)]
pub struct Access {
    /// Its index in the log.
    pub index: u64,
    /// The entry.
    pub entry: AuditEntry,
    /// Its leaf hash.
    pub leaf: Hash,
    /// Its inclusion proof in the checkpoint, checked here; `None` when it came after it.
    pub proof: Option<Vec<Hash>>,
}

/// A checkpoint the proofs are against: its size and root, and the cosigners its note
/// names (the log's own key first).
#[derive(Debug, Clone)]
pub struct Against {
    /// Tree size.
    pub size: u64,
    /// Root hash.
    pub root: Hash,
    /// Names on its signature lines.
    pub signed_by: Vec<String>,
}

/// Why the accesses could not be listed.
#[derive(Debug, thiserror::Error)]
pub enum SubjectError {
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] LogError),
    /// An entry did not decode, or is not in the checkpoint it should be in.
    #[error("audit entry {index}: {reason}")]
    Entry {
        /// Its index.
        index: u64,
        /// What is wrong.
        reason: String,
    },
    /// The checkpoint kept as the latest cosigned one does not parse.
    #[error("the latest cosigned checkpoint: {0}")]
    Checkpoint(String),
    /// The lookup could not be recorded, so nothing is listed.
    #[error("the lookup could not be recorded in the audit log, so nothing is listed: {0}")]
    Lookup(String),
}

/// The latest checkpoint a quorum of witnesses cosigned, when there is one yet.
pub fn latest_cosigned(log: &Log) -> Result<Option<Against>, SubjectError> {
    log.latest_checkpoint()?
        .map(|text| against_of(&text))
        .transpose()
}

/// A signed checkpoint note's size, root and signers (the latest cosigned one, or one of
/// the log's history).
pub fn against_of(note_text: &str) -> Result<Against, SubjectError> {
    let note = ribat_audit::note::SignedNote::parse(note_text)
        .map_err(|e| SubjectError::Checkpoint(e.to_string()))?;
    let cp = ribat_audit::note::Checkpoint::parse(&note.text)
        .map_err(|e| SubjectError::Checkpoint(e.to_string()))?;
    Ok(Against {
        size: cp.size,
        root: cp.root,
        signed_by: note.signatures.iter().map(|s| s.name.clone()).collect(),
    })
}

/// The accesses to one record, and the checkpoint they are proved against.
#[derive(Debug, Clone)]
pub struct Accesses {
    /// The latest checkpoint a quorum cosigned (`None`: none yet, nothing is proved).
    pub against: Option<Against>,
    /// Oldest first.
    pub accesses: Vec<Access>,
}

impl Accesses {
    /// The proof of `a` as the file `ribat audit verify-proof` checks (`None` when it came
    /// after the checkpoint).
    pub fn proof_file(&self, a: &Access) -> Option<serde_json::Value> {
        Some(proof_file(
            a.index,
            &a.leaf,
            a.proof.as_ref()?,
            self.against.as_ref()?,
        ))
    }
}

/// Every access to `record` in `log`, oldest first, each proved in the latest cosigned
/// checkpoint (and the proof checked) when it is in it.
pub fn accesses(log: &Log, record: &str) -> Result<Accesses, SubjectError> {
    let against = latest_cosigned(log)?;
    let size = against.as_ref().map_or(0, |a| a.size);
    let mut out = Vec::new();
    for index in log.entries_of(record)? {
        let bytes = log.entry(index)?;
        let entry = AuditEntry::decode(&bytes).map_err(|e| SubjectError::Entry {
            index,
            reason: e.to_string(),
        })?;
        let leaf_hash = leaf(&bytes);
        let proof = match &against {
            Some(at) if index < size => Some(proved(log, index, &leaf_hash, at)?),
            _ => None,
        };
        out.push(Access {
            index,
            entry,
            leaf: leaf_hash,
            proof,
        });
    }
    Ok(Accesses {
        against,
        accesses: out,
    })
}

/// Entry `index`'s proof in the latest cosigned checkpoint, checked, as the file `ribat
/// audit verify-proof` checks; `None` when no cosigned checkpoint holds it yet.
pub fn proof_of(log: &Log, index: u64) -> Result<Option<serde_json::Value>, SubjectError> {
    let Some(at) = latest_cosigned(log)? else {
        return Ok(None);
    };
    if index >= at.size {
        return Ok(None);
    }
    let leaf_hash = leaf(&log.entry(index)?);
    let proof = proved(log, index, &leaf_hash, &at)?;
    Ok(Some(proof_file(index, &leaf_hash, &proof, &at)))
}

/// Entry `index`'s inclusion proof in `at`, checked against its root.
fn proved(
    log: &Log,
    index: u64,
    leaf_hash: &Hash,
    at: &Against,
) -> Result<Vec<Hash>, SubjectError> {
    let p = log.inclusion_proof(index, at.size)?;
    verify_inclusion(index, at.size, leaf_hash, &p, &at.root).map_err(|e| SubjectError::Entry {
        index,
        reason: format!("not in the checkpoint it should be in: {e}"),
    })?;
    Ok(p)
}

fn proof_file(index: u64, leaf_hash: &Hash, proof: &[Hash], at: &Against) -> serde_json::Value {
    serde_json::json!({
        "leafIdx": index,
        "treeSize": at.size,
        "root": Base64::encode_string(&at.root.0),
        "leafHash": Base64::encode_string(&leaf_hash.0),
        "proof": proof.iter().map(|x| Base64::encode_string(&x.0)).collect::<Vec<_>>(),
    })
}

/// The purpose under which the security team and auditors look up who accessed a person.
pub const PURPOSE_ACCESS_REVIEW: &str = "access-review";
/// The purpose under which the citizen portal looks it up, on behalf of that person.
pub const PURPOSE_CITIZEN_REQUEST: &str = "citizen-request";
/// The outcome of a lookup's entry: the accesses were listed (no field was read).
pub const OUTCOME_LISTED: &str = "listed";

/// Who looks up a record's accesses.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    /// The certificate's identity.
    pub identity: &'a str,
    /// Its role.
    pub role: &'a str,
    /// Its institution.
    pub institution: &'a str,
}

impl Asker<'_> {
    /// Why it asks: the citizen portal for its citizen, everyone else to review accesses.
    pub fn purpose(&self) -> &'static str {
        if self.role == "citizen-portal" {
            PURPOSE_CITIZEN_REQUEST
        } else {
            PURPOSE_ACCESS_REVIEW
        }
    }
}

/// Who accessed `record`, as `asker` asks it: the lookup is recorded durably first (who
/// read a person is itself about that person: the authority's and the security team's
/// lookups show in the person's own list, this one included), then every access is
/// listed as [`accesses`] lists them.
pub fn looked_up(
    log: &crate::node_log::NodeLog,
    asker: &Asker<'_>,
    record: &str,
    time_ms: u64,
) -> Result<Accesses, SubjectError> {
    record_lookup(log, asker, record, time_ms)?;
    accesses(log.log(), record)
}

/// Appends `asker`'s lookup of `record` to the log; its index.
fn record_lookup(
    log: &crate::node_log::NodeLog,
    asker: &Asker<'_>,
    record: &str,
    time_ms: u64,
) -> Result<u64, SubjectError> {
    let request_id = ribat_crypto::secret::SecretBytes::<8>::random()
        .map(|r| hex::encode(r.expose()))
        .map_err(|e| SubjectError::Lookup(e.to_string()))?;
    let entry = AuditEntry {
        v: ribat_audit::entry::ENTRY_VERSION,
        time_ms,
        node: log.node().to_owned(),
        request_id,
        identity: asker.identity.to_owned(),
        role: asker.role.to_owned(),
        institution: asker.institution.to_owned(),
        purpose: asker.purpose().to_owned(),
        subject: record.to_owned(),
        record: record.to_owned(),
        table: ribat_policy::Table::Persons.as_str().to_owned(),
        classes: Vec::new(),
        fields: vec!["accesses".to_owned()],
        outcome: OUTCOME_LISTED.to_owned(),
        reason: None,
        custodians: Vec::new(),
    }
    .encode()
    .map_err(|e| SubjectError::Lookup(e.to_string()))?;
    log.log()
        .append(&entry)
        .map_err(|e| SubjectError::Lookup(e.to_string()))
}
