//! The access policy and the quota windows, as every component that enforces or watches
//! them reads them.
//!
//! Owns: the policy file (`ribat-policy/v1`: which role may read which classes for which
//! purposes, and how much) and the sliding windows that count distinct records per
//! identity, role and institution; and the vocabulary every component speaks ([`vocab`]:
//! roles, purposes, classes, tables).
//!
//! Must never: do I/O, read a clock (times come with each call), or depend on a store:
//! custodians, gateways and the pure detectors all link it.
#![forbid(unsafe_code)]

pub mod policy;
pub mod vocab;
pub mod window;

pub use vocab::{Class, NameError, Purpose, REVIEWED_ROLES, Role, Table};
