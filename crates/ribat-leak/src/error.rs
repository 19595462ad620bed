//! Why a file could not be scanned at all. A bad line is not an error: it is skipped and
//! counted in the file's report.

use std::path::PathBuf;
use thiserror::Error;

/// A file the scan cannot read.
#[derive(Debug, Error)]
pub enum LeakError {
    /// The file cannot be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is of a kind the scan does not read.
    #[error("{path}: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// What it is and what to do instead.
        reason: String,
    },
    /// The store of digests failed.
    #[error("the leak digests cannot be read: {0}")]
    Store(#[from] ribat_store::StoreError),
    /// A stored digest is damaged.
    #[error("a stored leak digest is damaged: {0}")]
    Digest(#[from] ribat_crypto::CryptoError),
}
