//! Ribat's simulator: a synthetic social-security fund to protect and to attack.
//!
//! Owns: synthetic employers, insured persons and declarations with Moroccan names in
//! Latin and Arabic script and the fund's identifier shapes (`fund`, `names`); the rules of
//! those identifiers live in `ribat_import::ids`.
//!
//! Must never: use real personal data, or be linked into the read path of a node.
#![forbid(unsafe_code)]

pub mod files;
pub mod fund;
pub mod leak;
pub mod names;

pub use fund::{Declaration, Employer, Fund, FundSpec, Person, generate};
