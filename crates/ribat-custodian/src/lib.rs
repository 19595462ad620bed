//! Ribat's custodians and the quorum that reads through them.
//!
//! Owns: a custodian's directory (sealed shares, policy, honey list, log), the key
//! ceremony that fills those directories, the custodian's own checks (`guard`, a pure state
//! machine), partial decryption with proofs, the quorum reader that combines answers, and
//! the custodian's network service (`serve`, with the wire types in `wire` that the
//! gateway's client shares).
//!
//! Must never: take a point `R` from a caller (it resolves records itself, I3), answer
//! before its log entry is durable (I2), hold another custodian's share or a class key
//! (I1), or tell a requester that a record is a honey record.
//!
//! ```text
//!   ceremony ─► DIR_i/{custodian.json, group.json, policy.json, honey.json}
//!   reader ── PartialRequest ─► custodian_i: guard ─► store.point ─► k·R + proof ─► log ─┐
//!     ▲                                                                                 │
//!     └──────────── verify proofs, combine t, open envelopes ◄──────────────────────────┘
//! ```
#![forbid(unsafe_code)]

pub mod allowance;
pub mod asked;
pub mod ceremony;
pub mod clock;
pub mod custodian;
mod error;
pub mod guard;
pub mod keystore;
pub mod quorum;
pub mod request;
pub mod reshare;
pub mod serve;
pub mod served_log;
pub mod wire;

// The policy and its windows live in their own leaf crate (detectors use them without a
// store); the paths through this crate stay.
pub use ribat_policy::{policy, window};

pub use custodian::{Custodian, LocalCustodian};
pub use error::{CustodianError, Denial, utc as error_utc};
pub use quorum::{CustodianFault, Fault, QuorumError, QuorumRead, QuorumReader};
pub use request::{PartialRequest, Requester};
