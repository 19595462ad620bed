//! Ribat's audit log: the Merkle tree that makes the access history append-only (I5).
//!
//! Owns: RFC 6962 / RFC 9162 hashing (`hash`), roots and proofs over leaf hashes (`tree`),
//! proof verification for outsiders (`proof`) and the proof file format of
//! `ribat audit verify-proof` (`proof_file`).
//!
//! Must never: accept a proof whose length does not match its sizes, compare hashes in
//! variable time, or hold plaintext personal data in an entry.
//!
//! Not yet here (issue 4): durable tiles with group commit, signed and cosigned
//! checkpoints, entries and the per-subject index.
#![forbid(unsafe_code)]

pub mod hash;
pub mod proof;
pub mod proof_file;
pub mod tree;

pub use hash::Hash;
