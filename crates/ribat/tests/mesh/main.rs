//! The mesh as real processes on loopback: `ribat mesh init` writes the node directories,
//! `ribat node` processes elect a leader over mTLS, and each module proves one part of what
//! the mesh promises with nodes killed, paused, partitioned, replaced or lying.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

#[path = "../common/mod.rs"]
mod common;
mod support;

mod attestation;
mod custody;
mod data;
mod decisions;
mod identities;
mod membership;
mod reads;
mod simulate;
