//! The proof files outsiders check with `ribat audit verify-proof`: JSON, byte fields in
//! standard base64 (the format of transparency-dev's test data).
//!
//! ```json
//! {"leafIdx": 0, "treeSize": 8, "root": "…", "leafHash": "…", "proof": ["…", …]}
//! {"size1": 3, "size2": 8, "root1": "…", "root2": "…", "proof": ["…", …]}
//! ```
//!
//! `proof` may be `null` or absent for an empty proof. Other keys (`desc`, `wantErr`) are
//! ignored. A hash that does not decode to 32 bytes makes the proof invalid, with a reason.

use crate::hash::Hash;
use crate::proof::{ProofError, verify_consistency, verify_inclusion};
use base64ct::{Base64, Encoding};
use serde::Deserialize;
use thiserror::Error;

/// Why a proof file is not valid.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// The file is not a proof file.
    #[error("not a proof file: {0}")]
    Format(String),
    /// A field is not a base64 SHA-256 hash.
    #[error("{field} is not a base64-encoded 32-byte hash ({reason})")]
    BadHash {
        /// Which field.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The proof does not verify.
    #[error(transparent)]
    Proof(#[from] ProofError),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    leaf_idx: Option<u64>,
    tree_size: Option<u64>,
    root: Option<String>,
    leaf_hash: Option<String>,
    size1: Option<u64>,
    size2: Option<u64>,
    root1: Option<String>,
    root2: Option<String>,
    #[serde(default)]
    proof: Option<Vec<String>>,
}

fn hash(field: &str, b64: &str) -> Result<Hash, VerifyError> {
    let bytes = Base64::decode_vec(b64).map_err(|e| VerifyError::BadHash {
        field: field.to_owned(),
        reason: e.to_string(),
    })?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| VerifyError::BadHash {
            field: field.to_owned(),
            reason: format!("{} bytes", b.len()),
        })?;
    Ok(Hash(arr))
}

fn required<T>(v: Option<T>, name: &str) -> Result<T, VerifyError> {
    v.ok_or_else(|| VerifyError::Format(format!("missing `{name}`")))
}

/// Verifies a proof file's text; on success, says what was proved.
pub fn verify_text(text: &str) -> Result<String, VerifyError> {
    let raw: Raw = serde_json::from_str(text).map_err(|e| VerifyError::Format(e.to_string()))?;
    let proof = raw
        .proof
        .unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, h)| hash(&format!("proof[{i}]"), h))
        .collect::<Result<Vec<_>, _>>()?;
    match (raw.leaf_idx, raw.size1) {
        (Some(index), None) => {
            let size = required(raw.tree_size, "treeSize")?;
            let root = hash("root", &required(raw.root, "root")?)?;
            let leaf = hash("leafHash", &required(raw.leaf_hash, "leafHash")?)?;
            verify_inclusion(index, size, &leaf, &proof, &root)?;
            Ok(format!("leaf {index} is included in the tree of size {size} with root {}", root.to_hex()))
        }
        (None, Some(size1)) => {
            let size2 = required(raw.size2, "size2")?;
            let root1 = hash("root1", &required(raw.root1, "root1")?)?;
            let root2 = hash("root2", &required(raw.root2, "root2")?)?;
            verify_consistency(size1, size2, &proof, &root1, &root2)?;
            Ok(format!("the tree of size {size2} extends the tree of size {size1}"))
        }
        _ => Err(VerifyError::Format(
            "expected an inclusion proof (leafIdx, treeSize, root, leafHash, proof) or a consistency proof (size1, size2, root1, root2, proof)"
                .into(),
        )),
    }
}
