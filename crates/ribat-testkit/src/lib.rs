//! Ribat's test support: what the behaviour tests of several crates repeat, written once.
//! A dev-dependency only; nothing in a node links it. It depends on no crate of the
//! workspace, so that every crate's unit tests can use it too.
//!
//! Must never: hide a failure. Its helpers return the reason; the test decides to fail.
#![forbid(unsafe_code)]

pub mod fs;
pub mod vectors;
