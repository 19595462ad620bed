//! Identity errors.

use thiserror::Error;

/// Everything identity management can fail with.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A file is missing, unreadable or malformed.
    #[error("{path}: {reason}")]
    File {
        /// Path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A name, role or option is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Certificate generation or parsing failed.
    #[error("certificate: {0}")]
    Certificate(String),
    /// TLS configuration failed.
    #[error("TLS configuration: {0}")]
    Tls(String),
}

impl IdentityError {
    pub(crate) fn file(path: &std::path::Path, reason: impl std::fmt::Display) -> Self {
        Self::File {
            path: path.display().to_string(),
            reason: reason.to_string(),
        }
    }
}
