//! Ribat's vault cryptography.
//!
//! Owns: the class keys' Feldman sharing (`shamir`), the public group file (`group`),
//! sealing and opening records (`envelope`), RFC 9497 DLEQ proofs (`dleq`), verifying and
//! combining custodians' partial decryptions (`combine`), blind indexes (`blind_index`),
//! leak digests (`leak_digest`),
//! passphrase sealing of shares at rest (`passphrase`), resharing a class key to a new set
//! of custodians (`reshare`), generating a new class key jointly for a rotation (`dkg`)
//! and the secret types (`secret`).
//!
//! Must never: implement a primitive (every one comes from RustCrypto or dalek), hold a
//! class key `k_c` after a ceremony, print or log a secret, or do I/O.
//!
//! ```text
//!  ceremony ─ deal(k_c) ─► shares k_{c,i} ──► custodian i ─ k_{c,i}·R + DLEQ proof ─┐
//!      └─► group file (Y_c, C_j, Y_{c,i}) ─► Sealer (R, S = r·Y_c, DEK, AEAD)         │
//!                                  combiner ◄─ verify proofs, λ-combine t partials ◄─┘
//! ```
#![forbid(unsafe_code)]

pub mod at_rest;
pub mod blind_index;
pub mod combine;
pub mod dkg;
pub mod dleq;
mod entropy;
pub mod envelope;
mod error;
pub mod group;
pub mod leak_digest;
pub mod passphrase;
pub mod point;
pub mod reshare;
pub mod secret;
pub mod shamir;

pub use curve25519_dalek::ristretto::RistrettoPoint;
pub use error::{CryptoError, Result};
