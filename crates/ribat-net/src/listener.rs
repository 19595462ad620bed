//! The mTLS accept loop shared by the gateway and networked custodians: TLS 1.3 with a
//! client certificate from the deployment's CA required, then HTTP/1.1 or HTTP/2 (ALPN)
//! served by an axum router that finds the caller's identity in the request extensions.
//!
//! A connection without a valid certificate never reaches HTTP: rustls answers with the
//! TLS alert that names the problem (certificate required, unknown CA, expired, revoked).
//! A certificate revoked after its connection opened is refused at its next request
//! (`certificate-revoked`, and the connection closed), whatever the connection's age; in a
//! mesh, a certificate not in the identity register is refused the same way
//! (`certificate-not-granted`).
//!
//! Bounded so that one valid certificate cannot hold the server: a handshake has 10 s, a
//! request's headers 10 s from the moment the connection waits for them (also between
//! keep-alive requests, so an idle connection is closed), one certificate holds at most
//! [`MAX_CONNECTIONS_PER_CERTIFICATE`] connections (further ones are answered
//! `too-many-connections`), and the server at most [`MAX_CONNECTIONS`].

use crate::problem::Problem;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use ribat_identity::PeerIdentity;
use ribat_identity::tls::{CertRef, Refused, ServerTls};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a client may take to send a request's headers, counted from when the
/// connection waits for them (after the handshake, and after each response).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections one certificate may hold open at once.
pub const MAX_CONNECTIONS_PER_CERTIFICATE: usize = 32;
/// Connections the server holds open at once, handshakes included.
pub const MAX_CONNECTIONS: usize = 2048;
/// Largest HTTP/1 read buffer, and so header block, taken in: above the API's own limits
/// (8 KiB of path and query, 16 KiB of headers), so that those are answered as problems.
pub const MAX_HEADER_BYTES: usize = 256 * 1024;
/// Most headers in an HTTP/1 request taken in (the API answers more than 64 itself).
pub const MAX_HEADER_COUNT: usize = 256;
/// Largest header list of an HTTP/2 request taken in.
pub const MAX_H2_HEADER_LIST: u32 = 256 * 1024;

/// Who is calling, as the TLS layer verified it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The identity in the verified client certificate.
    pub peer: PeerIdentity,
    /// The remote address.
    pub remote: SocketAddr,
    /// The verified client certificate, DER: a request signed by its key is checked
    /// against it, and forwarded with it to whoever checks the signature again.
    pub certificate: Arc<[u8]>,
}

/// Counts of connections refused before HTTP, for `/metrics`, and who hears of each.
#[derive(Default)]
pub struct TlsStats {
    /// Handshakes that failed (no, unknown, expired or revoked certificate; not TLS).
    pub handshake_failures: AtomicU64,
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Told of every handshake refused, with the remote address and why (a
    /// [`HandshakeRefusal`]): the detectors' and the SIEM's view of what never reached HTTP.
    pub on_refusal: std::sync::OnceLock<OnRefusal>,
}

impl std::fmt::Debug for TlsStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStats")
            .field("handshake_failures", &self.handshake_failures)
            .field("accepted", &self.accepted)
            .finish_non_exhaustive()
    }
}

/// Hears of a handshake refused: the remote address and why.
pub type OnRefusal = Arc<dyn Fn(SocketAddr, HandshakeRefusal) + Send + Sync>;

/// Why a connection was refused before HTTP, as TLS said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeRefusal {
    /// No client certificate.
    NoCertificate,
    /// A certificate from another CA.
    UnknownCa,
    /// An expired (or not yet valid) certificate.
    Expired,
    /// A certificate the revocation list names.
    Revoked,
    /// Any other certificate problem (wrong usage, bad signature, malformed).
    BadCertificate,
    /// A certificate from our CA without the subject fields an identity needs.
    NoIdentity,
    /// Not a TLS 1.3 client hello (plain HTTP on the TLS port, garbage, an old version).
    NotTls,
    /// The handshake did not finish within [`HANDSHAKE_TIMEOUT`].
    Timeout,
    /// The server holds [`MAX_CONNECTIONS`] already.
    ServerFull,
    /// Anything else that broke the handshake (the peer went away).
    Other,
}

impl HandshakeRefusal {
    /// The reason as events name it (`tls-unknown-ca`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoCertificate => "tls-no-certificate",
            Self::UnknownCa => "tls-unknown-ca",
            Self::Expired => "tls-certificate-expired",
            Self::Revoked => "tls-certificate-revoked",
            Self::BadCertificate => "tls-bad-certificate",
            Self::NoIdentity => "tls-certificate-without-identity",
            Self::NotTls => "tls-not-tls",
            Self::Timeout => "tls-handshake-timeout",
            Self::ServerFull => "tls-server-full",
            Self::Other => "tls-handshake-failed",
        }
    }

    /// What a failed accept's error says.
    pub fn of(e: &std::io::Error) -> Self {
        use rustls::{CertificateError, Error};
        let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<Error>()) else {
            return Self::Other;
        };
        match tls {
            Error::NoCertificatesPresented => Self::NoCertificate,
            Error::InvalidCertificate(c) => match c {
                CertificateError::UnknownIssuer => Self::UnknownCa,
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => Self::Expired,
                CertificateError::Revoked => Self::Revoked,
                _ => Self::BadCertificate,
            },
            Error::InvalidMessage(_)
            | Error::InappropriateHandshakeMessage { .. }
            | Error::InappropriateMessage { .. }
            | Error::PeerIncompatible(_) => Self::NotTls,
            _ => Self::Other,
        }
    }
}

impl TlsStats {
    fn refused(&self, remote: SocketAddr, why: HandshakeRefusal) {
        self.handshake_failures.fetch_add(1, Ordering::Relaxed);
        if let Some(hear) = self.on_refusal.get() {
            hear(remote, why);
        }
    }
}

/// Open connections per certificate serial.
#[derive(Debug, Default)]
struct PerCertificate {
    open: Mutex<HashMap<String, usize>>,
}

/// One connection's place in [`PerCertificate`], given back when the connection ends.
struct Held {
    table: Arc<PerCertificate>,
    serial: String,
    within: bool,
}

impl PerCertificate {
    fn hold(self: &Arc<Self>, serial: &str) -> Held {
        let mut open = match self.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let n = open.entry(serial.to_owned()).or_insert(0);
        *n += 1;
        Held {
            table: self.clone(),
            serial: serial.to_owned(),
            within: *n <= MAX_CONNECTIONS_PER_CERTIFICATE,
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = match self.table.open.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = open.get_mut(&self.serial) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.serial);
            }
        }
    }
}

/// The answer to a request that does not reach the router, if any: the certificate was
/// revoked since its connection opened (or, in a mesh, is not or no longer granted), or it
/// holds too many connections.
fn refusal(tls: &ServerTls, caller: &Caller, within: bool, version: Version) -> Option<Response> {
    let cert = CertRef {
        serial: &caller.peer.serial,
        thumbprint: &caller.peer.thumbprint,
        role: caller.peer.role.as_str(),
    };
    let problem = match tls.refused(&cert) {
        Some(Refused::Revoked) => Problem::unauthenticated(
            "certificate-revoked",
            format!(
                "the certificate of `{}` was revoked; ask the deployment's administrators for a new one",
                caller.peer.name
            ),
        ),
        Some(Refused::NotGranted) => Problem::forbidden(
            "certificate-not-granted",
            format!(
                "the certificate of `{}` (serial {}) is not in the mesh's identity register: issuing a certificate does not let it in; two security administrators grant it (`ribat mesh approve --grant CERT`, then `ribat mesh grant`)",
                caller.peer.name, caller.peer.serial
            ),
        ),
        Some(Refused::NotAMember) => Problem::forbidden(
            "not-a-member",
            format!(
                "`{}` is not a member of this mesh (or not with this certificate): two administrators add a node through the log (`ribat mesh add-node`) before it takes part",
                caller.peer.name
            ),
        ),
        Some(Refused::Lapsed) => Problem::forbidden(
            "certificate-review-lapsed",
            format!(
                "the access of `{}` passed its review date without being re-certified; a security administrator re-certifies it (`ribat identity recertify`; in a mesh, `ribat mesh recertify`)",
                caller.peer.name
            ),
        ),
        None => return within_limit(within, version),
    };
    Some(close_after(problem.into_response(), version))
}

/// The answer when a certificate holds too many connections, if it does.
fn within_limit(within: bool, version: Version) -> Option<Response> {
    let problem = if !within {
        Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too-many-connections",
            "Too many connections",
            format!(
                "this certificate already holds {MAX_CONNECTIONS_PER_CERTIFICATE} connections; reuse one (keep-alive, or HTTP/2 streams) instead of opening more"
            ),
        )
        .retry_after(1)
    } else {
        return None;
    };
    Some(close_after(problem.into_response(), version))
}

fn close_after(mut r: Response, version: Version) -> Response {
    // HTTP/1 says so in a header; HTTP/2 has no such header and is closed below.
    if version < Version::HTTP_2 {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

/// Serves `router` on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    router: Router,
    stats: Arc<TlsStats>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let per_cert = Arc::new(PerCertificate::default());
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: wait instead of spinning.
                eprintln!("warning: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Full: closing at once costs less than holding one more descriptor.
            stats.refused(remote, HandshakeRefusal::ServerFull);
            drop(tcp);
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.config());
        let router = router.clone();
        let stats = stats.clone();
        let tls = tls.clone();
        let per_cert = per_cert.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    stats.refused(remote, HandshakeRefusal::of(&e));
                    return;
                }
                Err(_) => {
                    stats.refused(remote, HandshakeRefusal::Timeout);
                    return;
                }
            };
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|der| {
                    PeerIdentity::from_der(der.as_ref())
                        .map(|p| (p, Arc::<[u8]>::from(der.as_ref())))
                });
            let Some(Ok((peer, certificate))) = peer else {
                // A chain our CA signed but without our subject fields: refuse.
                stats.refused(remote, HandshakeRefusal::NoIdentity);
                return;
            };
            stats.accepted.fetch_add(1, Ordering::Relaxed);
            let held = per_cert.hold(&peer.serial);
            let within = held.within;
            let caller = Caller {
                peer,
                remote,
                certificate,
            };
            let closing = Arc::new(tokio::sync::Notify::new());
            let closed = closing.clone();
            let svc = tower::service_fn(move |mut r: Request<hyper::body::Incoming>| {
                let router = router.clone();
                let refused = refusal(&tls, &caller, within, r.version());
                if refused.is_some() {
                    closing.notify_one();
                }
                r.extensions_mut().insert(caller.clone());
                async move {
                    match refused {
                        Some(response) => Ok(response),
                        None => tower::ServiceExt::oneshot(router, r).await,
                    }
                }
            });
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .max_buf_size(MAX_HEADER_BYTES)
                .max_headers(MAX_HEADER_COUNT);
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_header_list_size(MAX_H2_HEADER_LIST)
                .keep_alive_interval(Some(Duration::from_secs(20)))
                .keep_alive_timeout(Duration::from_secs(10));
            let conn =
                builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = closed.notified() => {
                    // Let the refusal go out, then close (HTTP/2 with a GOAWAY).
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
                }
            }
            drop(held);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::{AlertDescription, CertificateError, Error};

    fn io(e: Error) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn a_refused_handshake_is_named_by_what_tls_said() {
        let cases = [
            (Error::NoCertificatesPresented, "tls-no-certificate"),
            (
                Error::InvalidCertificate(CertificateError::UnknownIssuer),
                "tls-unknown-ca",
            ),
            (
                Error::InvalidCertificate(CertificateError::Expired),
                "tls-certificate-expired",
            ),
            (
                Error::InvalidCertificate(CertificateError::NotValidYet),
                "tls-certificate-expired",
            ),
            (
                Error::InvalidCertificate(CertificateError::Revoked),
                "tls-certificate-revoked",
            ),
            (
                Error::InvalidCertificate(CertificateError::BadSignature),
                "tls-bad-certificate",
            ),
            (
                Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
                "tls-not-tls",
            ),
            // The peer gave up on our certificate: nothing it showed was refused here.
            (
                Error::AlertReceived(AlertDescription::UnknownCA),
                "tls-handshake-failed",
            ),
        ];
        for (e, want) in cases {
            let said = format!("{e:?}");
            assert_eq!(HandshakeRefusal::of(&io(e)).as_str(), want, "{said}");
        }
        let plain = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "eof");
        assert_eq!(HandshakeRefusal::of(&plain), HandshakeRefusal::Other);
    }
}
