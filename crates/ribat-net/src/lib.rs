//! Ribat's mTLS transport, shared by gateways and networked custodians (and, later, mesh
//! members): the server side (`listener`: TLS 1.3 with a client certificate from the
//! deployment's CA, bounded handshakes, headers and connections, revocation checked before
//! every request), the client side (`client`: one HTTP/1.1 or HTTP/2 connection, JSON in and
//! out) and errors as RFC 9457 problem documents (`problem`).
//!
//! Owns no routes and no policy: what a caller may do is decided by whoever mounts a router.
//!
//! Must never: hand a request to a router before its certificate chain and revocation
//! status are checked, or wait on a client without a bound.
//!
//! ```text
//!   TCP ─► TLS 1.3 (client cert required, CA, expiry, CRL) ─► caps per certificate ─►
//!   header timeout ─► revocation re-checked ─► router(Caller in extensions)
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod listener;
pub mod problem;

pub use listener::{Caller, TlsStats};
pub use problem::Problem;
