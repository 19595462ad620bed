//! A small mTLS HTTP client: one connection (HTTP/2 multiplexed, or HTTP/1.1), JSON in and
//! out. The gateway uses it to reach networked custodians; the benchmark, the tests and the
//! simulator use it to call the API the way a partner system would.

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::body::Bytes;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use ribat_identity::signed::{COSIGN_HEADER, Covered, RequestSigner, SIGNATURE_HEADER, digest};
pub use rustls::ClientConfig;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// Why a call failed before an HTTP status came back.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// TCP connection failed.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// Address.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The TLS handshake or the first exchange failed (the server's alert is in the text).
    #[error("TLS with {addr} failed: {reason}")]
    Tls {
        /// Address.
        addr: String,
        /// Cause, as rustls words it.
        reason: String,
    },
    /// HTTP failed.
    #[error("HTTP: {0}")]
    Http(String),
}

enum Sender {
    H1(http1::SendRequest<Full<Bytes>>),
    H2(http2::SendRequest<Full<Bytes>>),
}

/// An open connection.
pub struct Connection {
    sender: Sender,
    authority: String,
    /// Signs every request (`Ribat-Signature`), with the key of the
    /// certificate the connection presents.
    signer: Option<Arc<RequestSigner>>,
    /// What signatures are dated with (`None`: the system clock).
    now: Option<Now>,
}

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Content type.
    pub content_type: String,
    /// Body.
    pub body: Vec<u8>,
    /// Retry-After, when given.
    pub retry_after: Option<String>,
    /// Every header, names in lowercase, in the order received.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// The first header named `name` (lowercase), when given and readable as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// A client's TLS settings and, where it holds a certificate's key, the signer of its
/// requests: a connection opened with a signer signs every request it sends.
#[derive(Clone)]
pub struct ClientSide {
    /// TLS settings.
    pub tls: Arc<ClientConfig>,
    /// Signs requests with the key of the certificate the TLS settings present.
    pub signer: Option<Arc<RequestSigner>>,
    /// The time signatures are dated with, in Unix seconds (`None`: the system clock; a
    /// simulation passes its own clock, which the gateway it calls runs on too).
    pub now: Option<Now>,
}

/// A clock in Unix seconds.
pub type Now = Arc<dyn Fn() -> u64 + Send + Sync>;

impl std::fmt::Debug for ClientSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientSide(signing: {})", self.signer.is_some())
    }
}

impl From<Arc<ClientConfig>> for ClientSide {
    fn from(tls: Arc<ClientConfig>) -> Self {
        Self {
            tls,
            signer: None,
            now: None,
        }
    }
}

impl Connection {
    /// Connects to `addr` (host:port), verifying the server as `host`, with HTTP/2 when `h2`;
    /// signs its requests when `config` has a signer.
    pub async fn open(
        config: impl Into<ClientSide>,
        addr: &str,
        host: &str,
        h2: bool,
    ) -> Result<Self, ClientError> {
        let ClientSide {
            tls: config,
            signer,
            now,
        } = config.into();
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let name = ribat_identity::tls::server_name(host).map_err(|e| ClientError::Tls {
            addr: addr.to_owned(),
            reason: e.to_string(),
        })?;
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| ClientError::Tls {
                addr: addr.to_owned(),
                reason: e.to_string(),
            })?;
        let io = TokioIo::new(tls);
        let sender = if h2 {
            let (s, conn) = http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| tls_or_http(addr, &e))?;
            tokio::spawn(conn);
            Sender::H2(s)
        } else {
            let (s, conn) = http1::handshake(io)
                .await
                .map_err(|e| tls_or_http(addr, &e))?;
            tokio::spawn(conn);
            Sender::H1(s)
        };
        // Host and port, as a browser names what it connected to (an Origin check compares
        // against it).
        let authority = match addr.rsplit_once(':').map(|(_, port)| port) {
            Some(port) if host.contains(':') => format!("[{host}]:{port}"),
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        Ok(Self {
            sender,
            authority,
            signer,
            now,
        })
    }

    /// Signs every request with `signer` from now on: it must hold the key of the
    /// certificate this connection presented, or the gateway refuses them.
    pub fn signing(mut self, signer: Arc<RequestSigner>) -> Self {
        self.signer = Some(signer);
        self
    }

    fn time(&self) -> u64 {
        self.now.as_ref().map_or_else(unix_now, |now| now())
    }

    /// `covered` signed by `signer` now (by this connection's clock).
    fn sign(
        &self,
        signer: &RequestSigner,
        covered: &Covered<'_>,
    ) -> Result<ribat_identity::signed::Signature, ClientError> {
        signer
            .sign(covered, self.time())
            .map_err(|e| ClientError::Http(e.to_string()))
    }

    /// Sends a request (signed, when the connection signs) that `cosigner` co-signs: a
    /// supervisor's consent to this one request of an identity under step-up.
    pub async fn send_cosigned(
        &mut self,
        method: &str,
        path: &str,
        bearer: &str,
        body: Option<Vec<u8>>,
        cosigner: &RequestSigner,
    ) -> Result<Response, ClientError> {
        let json = body.is_some();
        let body = body.unwrap_or_default();
        let signer = self.signer.clone().ok_or_else(|| {
            ClientError::Http("a co-signed request must be signed by its sender first".into())
        })?;
        let covered = Covered {
            method,
            target: path,
            body_digest: &digest(&body),
            token: Some(bearer),
        };
        let sig = self.sign(&signer, &covered)?;
        let co = cosigner
            .cosign(&covered, &sig)
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let (sig, co) = (sig.header(), co.header());
        self.send_headers(
            method,
            path,
            Some(bearer),
            body,
            json.then_some("application/json"),
            &[(SIGNATURE_HEADER, &sig), (COSIGN_HEADER, &co)],
        )
        .await
    }

    /// Whether the connection can still carry requests.
    pub fn is_open(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => !s.is_closed(),
            Sender::H2(s) => !s.is_closed(),
        }
    }

    /// Sends a request; `body` is JSON when given.
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> Result<Response, ClientError> {
        let json = body.is_some();
        self.request(
            method,
            path,
            bearer,
            body.unwrap_or_default(),
            json.then_some("application/json"),
        )
        .await
    }

    /// Sends a request with a body of the given content type.
    pub async fn send_raw(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Response, ClientError> {
        self.request(method, path, bearer, body, Some(content_type))
            .await
    }

    /// A request with exactly these headers besides the usual ones (no token, no
    /// signature): what a browser sends (`Origin`, `Accept-Language`, a form's body).
    pub async fn send_as_browser(
        &mut self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        self.send_headers(method, path, None, body, content_type, headers)
            .await
    }

    /// A GET with extra headers (a co-signature).
    pub async fn get_with(
        &mut self,
        path: &str,
        bearer: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        self.request_with("GET", path, bearer, Vec::new(), None, headers)
            .await
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> Result<Response, ClientError> {
        self.request_with(method, path, bearer, body, content_type, &[])
            .await
    }

    async fn request_with(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Vec<u8>,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        // Every request, with a token or without (a token request: a mesh's identity
        // service issues one only for a request its sender signed).
        let signed = match &self.signer {
            Some(signer) => {
                let covered = Covered {
                    method,
                    target: path,
                    body_digest: &digest(&body),
                    token: bearer,
                };
                Some(self.sign(signer, &covered)?.header())
            }
            None => None,
        };
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(s) = &signed {
            all.push((SIGNATURE_HEADER, s));
        }
        self.send_headers(method, path, bearer, body, content_type, &all)
            .await
    }

    /// Sends exactly these headers besides the usual ones (no signature added).
    async fn send_headers(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Vec<u8>,
        content_type: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Response, ClientError> {
        let mut b = Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.authority))
            .header("accept", "application/json");
        if let Sender::H1(_) = self.sender {
            b = b.header("host", &self.authority);
        }
        if let Some(t) = bearer {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = match &mut self.sender {
            Sender::H1(s) => {
                s.ready()
                    .await
                    .map_err(|e| tls_or_http(&self.authority, &e))?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready()
                    .await
                    .map_err(|e| tls_or_http(&self.authority, &e))?;
                s.send_request(req).await
            }
        }
        .map_err(|e| tls_or_http(&self.authority, &e))?;
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content_type = header("content-type").unwrap_or_default();
        let retry_after = header("retry-after");
        let headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?
            .to_bytes()
            .to_vec();
        Ok(Response {
            status,
            content_type,
            body,
            retry_after,
            headers,
        })
    }
}

fn unix_now() -> u64 {
    ribat_clock::now_secs()
}

/// In TLS 1.3 a server refuses a client certificate after the client thinks the handshake
/// is done, so the refusal surfaces at the first exchange; name the TLS cause when there
/// is one.
fn tls_or_http(addr: &str, e: &hyper::Error) -> ClientError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            return ClientError::Tls {
                addr: addr.to_owned(),
                reason: inner.to_string(),
            };
        }
        source = s.source();
    }
    ClientError::Http(e.to_string())
}
