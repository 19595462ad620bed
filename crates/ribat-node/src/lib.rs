//! What one running Ribat node is, as a library: its directory (`home`), where its
//! custodians' passphrases come from (`passphrases`), its store (chosen by the caller, never
//! a global), the key ceremony that fills it (`ceremony`), the embedded assembly of
//! custodians, reader and audit log (`embedded`), the gateway and networked custodian
//! processes (`serve`), and the operations the `ribat` binary dispatches to: identities,
//! import, reads, the audit trail, decisions, the two-person export desk (`exports`),
//! leak tracing with the notification list (`leak`), and a mesh's nodes (`mesh`) and
//! identity register (`grants`).
//!
//! Must never: print a secret, keep a class key, serve a read whose access is not durably
//! logged (it reads through `ribat_gateway::read_audited`), or start a custodian from a
//! directory whose passphrase did not open it.
//!
//! ```text
//!   HOME ─► home ─► ceremony (keys init) ─► custodians/custodian-<i>/
//!        └► embedded: store + custodians + QuorumReader + NodeLog ─► read / audit / exports / leak
//!        └► serve: gateway (api + watch + desk) │ custodian (ribat_custodian::serve)
//! ```
#![forbid(unsafe_code)]

pub mod allowances;
pub mod api_client;
pub mod attest;
pub mod audit;
pub mod ceremony;
pub mod decisions;
pub mod embedded;
pub mod error;
pub mod exports;
pub mod grants;
pub mod home;
pub mod identity;
pub mod identity_desk;
pub mod import;
pub mod intake;
mod jobs;
pub mod leak;
pub mod leak_desk;
pub mod mesh;
pub mod mesh_view;
pub mod passphrases;
pub mod read;
pub mod reshare;
pub mod reviews;
pub mod rotate;
pub mod serve;
mod token_service;

pub use embedded::Embedded;
pub use error::{Context, NodeError, Result};
pub use home::{Home, StoreSpec};
