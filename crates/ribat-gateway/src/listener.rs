//! The mTLS accept loop shared by the gateway and networked custodians: TLS 1.3 with a
//! client certificate from the deployment's CA required, then HTTP/1.1 or HTTP/2 (ALPN)
//! served by an axum router that finds the caller's identity in the request extensions.
//!
//! A connection without a valid certificate never reaches HTTP: rustls answers with the
//! TLS alert that names the problem (certificate required, unknown CA, expired, revoked).

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use ribat_identity::PeerIdentity;
use ribat_identity::tls::ServerTls;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who is calling, as the TLS layer verified it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The identity in the verified client certificate.
    pub peer: PeerIdentity,
    /// The remote address.
    pub remote: SocketAddr,
}

/// Counts of connections refused before HTTP, for `/metrics`.
#[derive(Debug, Default)]
pub struct TlsStats {
    /// Handshakes that failed (no, unknown, expired or revoked certificate; not TLS).
    pub handshake_failures: AtomicU64,
    /// Connections accepted.
    pub accepted: AtomicU64,
}

/// Serves `router` on `listener` until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    router: Router,
    stats: Arc<TlsStats>,
) -> std::io::Result<()> {
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
        let _ = tcp.set_nodelay(true);
        let acceptor = TlsAcceptor::from(tls.config());
        let router = router.clone();
        let stats = stats.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                _ => {
                    stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            };
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|der| PeerIdentity::from_der(der.as_ref()));
            let Some(Ok(peer)) = peer else {
                // A chain our CA signed but without our subject fields: refuse.
                stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                return;
            };
            stats.accepted.fetch_add(1, Ordering::Relaxed);
            let caller = Caller { peer, remote };
            let svc = tower::ServiceExt::map_request(router, move |mut r: Request<_>| {
                r.extensions_mut().insert(caller.clone());
                r
            });
            let _ = Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc))
                .await;
        });
    }
}
