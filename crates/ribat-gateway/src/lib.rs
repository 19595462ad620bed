//! Ribat's gateway: what stands between a caller and the quorum.
//!
//! Owns: audit before plaintext (I2, `audit_first`): a read's plaintext leaves the gateway
//! only after one entry per subject is durable in the node's audit log, and the node's
//! checkpoints, signed with its key and cosigned by the custodians as witnesses (`node_log`);
//! the JSON API over `ribat_net`'s mTLS listener (`api`, `gate`), the gateway's end of the
//! link to networked custodians (`link`; the custodian's end is `ribat_custodian::serve`)
//! and the watch that turns events into signed decisions (`watch`), which is also the
//! networked custodian's `Observer`.
//!
//! Must never: return plaintext whose access is not durably logged, put plaintext in an
//! entry, or keep serving once its log has failed.
#![forbid(unsafe_code)]

mod accesses;
pub mod activity;
pub mod api;
pub mod app;
pub mod audit_first;
mod body;
mod console;
pub mod containment;
pub mod desk;
pub mod exports;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod gate;
pub mod identity_desk;
pub mod intake;
pub mod leak_desk;
pub mod link;
pub mod mesh_view;
pub mod metrics;
pub mod node_log;
pub mod openapi;
mod reads;
mod seen;
mod service;
pub mod signed;
pub mod subject;
mod to_disk;
mod upload;
pub use upload::clear_unanswered_uploads;
pub mod vault;
pub mod watch;

pub use audit_first::{Access, AuditFirstError, read_audited};
pub use node_log::NodeLog;
