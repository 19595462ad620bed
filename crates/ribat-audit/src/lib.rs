//! Ribat's audit log: the Merkle log that makes the access history append-only (I5) and
//! lets a read release plaintext only once it is recorded (I2).
//!
//! Owns: RFC 6962 / RFC 9162 hashing (`hash`), roots and proofs (`tree` as the reference,
//! `memtree` for the live log), proof verification for outsiders (`proof`, `proof_file`),
//! entries (`entry`), the durable journal with group commit (`journal`, `log`), C2SP signed
//! notes, checkpoints and cosignatures (`note`), witnesses (`witness`), the tlog-tiles copy
//! (`tiles`) and whole-directory verification (`verify`).
//!
//! Must never: acknowledge an append before it is synced, accept an append after a failed
//! write, cosign a checkpoint that does not extend the last one cosigned, accept a proof
//! whose length does not match its sizes, compare hashes in variable time, or hold
//! plaintext personal data in an entry.
#![forbid(unsafe_code)]

pub mod entry;
pub mod frontier;
pub mod hash;
pub mod journal;
pub mod log;
pub mod memtree;
pub mod note;
pub mod proof;
pub mod proof_file;
pub mod tiles;
pub mod tree;
pub mod verify;
pub mod witness;

pub use entry::AuditEntry;
pub use hash::Hash;
pub use log::{CheckpointReport, CosignError, Cosigner, Log, LogError};
pub use note::{NoteSigner, VerifierKey};
pub use verify::{Trust, verify_dir};
pub use witness::Witness;
