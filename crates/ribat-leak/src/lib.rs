//! Leak tracing: is this dump ours, who is affected, what is genuine, who leaked it.
//!
//! Owns: reading dumped files of any shape as hostile input (`lines`, `encoding`, `table`,
//! `ebds`, `text`), finding the identifying columns by their content (`columns`), the
//! extracted rows (`row`), fetching the vault's leak digests for them (`digests`), classifying
//! each one (`classify`), the attribution arithmetic (`attribute`), the summary
//! (`summary`) and the verdicts file (`rows_file`).
//!
//! Must never: decrypt the vault (rows are checked against keyed digests only), hold a
//! value longer than the scan needs, print a leaked value in an error, or let one bad
//! line stop a scan — a line it cannot use is skipped and counted with its reason.
//!
//! ```text
//!   files ─► lines (bounded) ─► decode ─► table / e-BDS / text ─► columns ─► LeakRow
//!   LeakRow ─► locators (k_leak) ─► digests (store) ─► classification ─► summary
//!   matched persons + audit log ─► attribution (who read them all, chance, window)
//! ```
#![forbid(unsafe_code)]

pub mod attribute;
pub mod classify;
pub mod columns;
pub mod digests;
pub mod ebds;
pub mod encoding;
mod error;
pub mod lines;
pub mod mac_hash;
pub mod read;
pub mod row;
pub mod rows_file;
pub mod sheet;
pub mod summary;
pub mod table;
mod tabular;
pub mod text;

pub use error::LeakError;
