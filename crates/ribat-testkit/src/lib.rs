//! Ribat's test support: what the behaviour tests of several crates repeat, written once.
//! A dev-dependency only; nothing in a node links it.
//!
//! Must never: hide a failure. Its helpers return the reason; the test decides to fail.
#![forbid(unsafe_code)]

pub mod fs;
