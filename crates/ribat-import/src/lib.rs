//! Ribat's import: turning the fund's records into sealed store records.
//!
//! Owns: the layout of each table (which field in which class, which blind indexes).
//!
//! Must never: write a plaintext field to the store (I4), or need a custodian: importing
//! uses only the public group keys and the blind-index key.
#![forbid(unsafe_code)]

pub mod records;
