//! The mesh's replicated security state: who the members and administrators are, the
//! restrictions in force and their releases, the identity register (certificates granted
//! and revoked), the policy and detection rules in force — and the rules by which every
//! node applies an entry of the log.
//!
//! Owns: the entries ([`command`]), their signatures ([`sign`]), the state machine
//! ([`state`]) that Raft (openraft, in the node) feeds in commit order, and what a node's
//! custodian must do to match that state ([`enforce`]). Raft orders and
//! replicates; signatures make entries authentic: an entry that grants or relaxes anything
//! carries the signatures that justify it, checked by every node as it applies it.
//!
//! Must never: read a clock, do I/O or draw randomness while applying (two nodes applying
//! the same entries hold the same bytes); apply a relaxation without two administrators;
//! let an entry through because the leader sent it.
#![forbid(unsafe_code)]

pub mod attest;
pub mod command;
pub mod custodians;
pub mod enforce;
pub mod sign;
pub mod state;

pub use command::{Admin, Approval, Command, Member, Registration, Restriction, Seat};
pub use sign::{KeyPair, PublicKey, Sig};
pub use state::{Applied, Genesis, Rejected, SecurityState, Standing};
