//! The one error type of the vault cryptography.

use thiserror::Error;

/// Everything that can go wrong while sealing, proving, combining or opening.
///
/// Each variant names what was wrong so that a caller can tell an operator what to do;
/// none carries secret material.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum CryptoError {
    /// Bytes that should encode a ristretto255 point do not.
    #[error("{what} is not a valid ristretto255 point encoding")]
    InvalidPoint {
        /// Which value was being decoded.
        what: &'static str,
    },
    /// Bytes that should encode a canonical scalar do not.
    #[error("{what} is not a canonical ristretto255 scalar")]
    InvalidScalar {
        /// Which value was being decoded.
        what: &'static str,
    },
    /// A DLEQ proof did not verify.
    #[error("DLEQ proof does not verify: the answer was not computed with the claimed key share")]
    ProofInvalid,
    /// A proof was asked over lists of different lengths, or an empty or oversized batch.
    #[error("proof batch is malformed: {reason}")]
    BatchMalformed {
        /// What is wrong with the batch.
        reason: &'static str,
    },
    /// A threshold parameter is out of range.
    #[error("threshold {threshold} of {custodians} custodians is not possible: {reason}")]
    Threshold {
        /// Requested threshold `t`.
        threshold: usize,
        /// Requested number of custodians `n`.
        custodians: usize,
        /// Why the combination is refused.
        reason: &'static str,
    },
    /// The secret-sharing library refused an operation.
    #[error("secret sharing failed: {0}")]
    Sharing(String),
    /// A key share does not match the dealer's Feldman commitments.
    #[error(
        "key share of custodian {custodian} for class `{class}` does not match the published Feldman commitments; refuse it and ask for a new ceremony"
    )]
    ShareRejected {
        /// Custodian index (1-based).
        custodian: u32,
        /// Key class.
        class: String,
    },
    /// A resharing sub-share that fails its checks: its dealer is named.
    #[error(
        "the sub-share custodian {from} dealt to custodian {to} for class `{class}` is refused: {reason}"
    )]
    SubShareRejected {
        /// The old custodian that dealt it.
        from: u32,
        /// The new custodian it was for.
        to: u32,
        /// Key class.
        class: String,
        /// Which check failed.
        reason: String,
    },
    /// Fewer valid partial decryptions than the threshold.
    #[error("only {have} valid partial decryptions for class `{class}`, {need} are needed")]
    NotEnoughPartials {
        /// Valid partials available.
        have: usize,
        /// The threshold.
        need: usize,
        /// Key class.
        class: String,
    },
    /// Two partials claim the same custodian index.
    #[error("custodian {0} answered twice in one combination")]
    DuplicateCustodian(u32),
    /// A partial was computed for another class than the one being opened.
    #[error("partial decryption is for class `{got}`, but class `{expected}` is being opened")]
    WrongClass {
        /// Class being opened.
        expected: String,
        /// Class the partial claims.
        got: String,
    },
    /// The envelope was sealed under another key epoch than the keys in use.
    #[error(
        "record was sealed under key epoch {envelope}, but the keys in use are epoch {current}; re-seal it or load the keys of that epoch"
    )]
    EpochMismatch {
        /// Epoch written in the envelope.
        envelope: u32,
        /// Epoch of the keys in use.
        current: u32,
    },
    /// The envelope names another record than the one requested.
    #[error("envelope belongs to {envelope}, not to the requested {requested}")]
    RecordMismatch {
        /// `table/record` found in the envelope.
        envelope: String,
        /// `table/record` that was asked for.
        requested: String,
    },
    /// A field failed authentication: wrong key, moved ciphertext or altered bytes.
    #[error(
        "field `{field}` failed authentication: the ciphertext was altered, moved from another record or field, or the key is wrong"
    )]
    FieldAuthentication {
        /// Field name.
        field: String,
    },
    /// An envelope or sealed file is not in the documented layout.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// Which structure.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A layout version this build does not know.
    #[error("{what} has format version {version}, this build reads version {supported}")]
    UnsupportedVersion {
        /// Which structure.
        what: &'static str,
        /// Version found.
        version: u8,
        /// Version supported.
        supported: u8,
    },
    /// A passphrase did not open a sealed file.
    #[error("the passphrase does not open {what} (or the file was altered)")]
    WrongPassphrase {
        /// Which file.
        what: String,
    },
    /// Key-derivation parameters were refused.
    #[error("key derivation parameters refused: {0}")]
    Kdf(String),
    /// The operating system's random source failed.
    #[error("the operating system's random number generator failed: {0}")]
    Entropy(String),
    /// Encryption failed (only on absurd input sizes).
    #[error("encryption of field `{field}` failed")]
    Encryption {
        /// Field name.
        field: String,
    },
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, CryptoError>;
