//! Ribat's detectors: they watch every access and decide, within a handful of records,
//! whether an identity, a certificate, an address or a whole role must be slowed, asked
//! for a supervisor's co-signature, quarantined, or cut back to essential services.
//!
//! Owns: the event model (`event`), the rules file `ribat-rules/v1` (`rules`), the
//! detectors as pure state machines (`detectors`: state + event + time → state +
//! findings), the engine that runs them and turns findings into graded responses
//! (`engine`, `response`), signed decision records and their two-person release
//! (`decision`), and the SIEM formats (`ocsf`, `cef`).
//!
//! Must never: do I/O or read a clock (time arrives in each event, so a simulated week runs
//! in minutes and every test is exact), hold personal data in what it emits (record ids are
//! opaque; looked-up numbers stay in memory and are never serialised), or lift a decision
//! on one person's word.
//!
//! ```text
//!   gateway / custodians ─► Event ─► Engine ─► detectors ─► Finding ─► rules (mode) ─► Response
//!                                                                        │ shadow: alert only
//!   OCSF 6005 (access) ◄─┘                    OCSF 2004 / CEF (alert) ◄──┘ enforce: signed Decision
//! ```
#![forbid(unsafe_code)]

pub mod cef;
pub mod decision;
pub mod detectors;
pub mod engine;
pub mod event;
pub mod ocsf;
pub mod response;
pub mod rule_id;
pub mod rules;

pub use decision::{Decision, DecisionSigner, Release, ReleaseBook};
pub use engine::Engine;
pub use event::{Actor, Event, Kind};
pub use response::{Action, Finding, Severity, Target};
pub use rule_id::RuleId;
pub use rules::{Mode, Rules};
