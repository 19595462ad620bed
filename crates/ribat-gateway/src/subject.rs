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
}

/// The latest checkpoint a quorum of witnesses cosigned, when there is one yet.
pub fn latest_cosigned(log: &Log) -> Result<Option<Against>, SubjectError> {
    let Some(text) = log.latest_checkpoint()? else {
        return Ok(None);
    };
    let note = ribat_audit::note::SignedNote::parse(&text)
        .map_err(|e| SubjectError::Checkpoint(e.to_string()))?;
    let cp = ribat_audit::note::Checkpoint::parse(&note.text)
        .map_err(|e| SubjectError::Checkpoint(e.to_string()))?;
    Ok(Some(Against {
        size: cp.size,
        root: cp.root,
        signed_by: note.signatures.iter().map(|s| s.name.clone()).collect(),
    }))
}

/// Every access to `record` in `log`, oldest first, each proved in `against` (and the
/// proof checked) when it is in it.
pub fn accesses(log: &Log, record: &str, against: &Against) -> Result<Vec<Access>, SubjectError> {
    let mut out = Vec::new();
    for index in log.entries_of(record)? {
        let bytes = log.entry(index)?;
        let entry = AuditEntry::decode(&bytes).map_err(|e| SubjectError::Entry {
            index,
            reason: e.to_string(),
        })?;
        let leaf_hash = leaf(&bytes);
        let proof = if index < against.size {
            let p = log.inclusion_proof(index, against.size)?;
            verify_inclusion(index, against.size, &leaf_hash, &p, &against.root).map_err(|e| {
                SubjectError::Entry {
                    index,
                    reason: format!("not in the checkpoint it should be in: {e}"),
                }
            })?;
            Some(p)
        } else {
            None
        };
        out.push(Access {
            index,
            entry,
            leaf: leaf_hash,
            proof,
        });
    }
    Ok(out)
}

impl Access {
    /// Its proof as the file `ribat audit verify-proof` checks (`None` after the
    /// checkpoint).
    pub fn proof_file(&self, against: &Against) -> Option<serde_json::Value> {
        let p = self.proof.as_ref()?;
        Some(serde_json::json!({
            "leafIdx": self.index,
            "treeSize": against.size,
            "root": Base64::encode_string(&against.root.0),
            "leafHash": Base64::encode_string(&self.leaf.0),
            "proof": p.iter().map(|x| Base64::encode_string(&x.0)).collect::<Vec<_>>(),
        }))
    }
}
