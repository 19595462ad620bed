//! Ribat's test support: what the behaviour tests of several crates repeat, written once.
//! A dev-dependency only; nothing in a node links it.
//!
//! Must never: hide a failure. Its helpers panic with the reason, as a test must.
#![forbid(unsafe_code)]
// Test support fails loudly by design: a helper that cannot set up its world ends the test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod fs;
