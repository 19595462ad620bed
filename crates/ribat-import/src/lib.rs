//! Ribat's import: turning the fund's records into sealed store records.
//!
//! Owns: the fund's file formats (e-BDS, the registers' CSV) and identifier rules, the
//! layout of each table (which field in which class, which blind indexes), and the
//! resumable import that validates, seals and stores.
//!
//! Must never: write a plaintext field to the store (I4), or need a custodian: importing
//! uses only the public group keys and the blind-index key.
#![forbid(unsafe_code)]

pub mod csv_files;
pub mod ebds;
pub mod ids;
pub mod importer;
pub mod model;
pub mod records;
