//! The gateway's end of the gateway ↔ custodian link: a custodian in another process,
//! reached over mTLS with the gateway's certificate. The custodian's end is
//! `ribat_custodian::serve`; both speak `ribat_custodian::wire`.
//!
//! Every answer that comes back is a claim: the quorum reader verifies its proof before it
//! is combined, and a refusal is read as the custodian's own (policy) or as its absence.

use ribat_audit::{CosignError, Cosigner, Hash, VerifierKey};
use ribat_crypto::combine::Partial;
use ribat_custodian::wire::{
    AUDITED_PATH, COSIGN_PATH, DECISION_PATH, PARTIAL_PATH, WireAudited, WireCosign, WireCosigned,
    WireDecision, WirePartial, WireRefusal,
};
use ribat_custodian::{Custodian, CustodianError, PartialRequest};
use ribat_net::client::{ClientError, Connection};
use std::sync::Arc;
use std::time::Duration;

/// One mTLS link to a peer's listener, with the gateway's certificate: a connection kept
/// open between calls, and a deadline for each.
pub struct Link {
    addr: String,
    host: String,
    config: Arc<rustls::ClientConfig>,
    runtime: tokio::runtime::Handle,
    deadline: Duration,
    conn: tokio::sync::Mutex<Option<Connection>>,
}

impl Link {
    /// To `addr`, whose certificate names `host`; each call must finish within `deadline`.
    pub fn new(
        addr: &str,
        host: &str,
        config: Arc<rustls::ClientConfig>,
        runtime: tokio::runtime::Handle,
        deadline: Duration,
    ) -> Self {
        Self {
            addr: addr.to_owned(),
            host: host.to_owned(),
            config,
            runtime,
            deadline,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// Where it leads.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// To `addr` (certificate naming `host`), with the same TLS settings, runtime and
    /// deadline.
    pub fn elsewhere(&self, addr: &str, host: &str) -> Self {
        Self::new(
            addr,
            host,
            self.config.clone(),
            self.runtime.clone(),
            self.deadline,
        )
    }

    /// POSTs `body` to `path` (reconnecting when the last connection closed).
    pub async fn post(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<ribat_net::client::Response, ClientError> {
        let mut guard = self.conn.lock().await;
        if !guard.as_ref().is_some_and(Connection::is_open) {
            *guard =
                Some(Connection::open(self.config.clone(), &self.addr, &self.host, true).await?);
        }
        let Some(conn) = guard.as_mut() else {
            return Err(ClientError::Http("no connection".into()));
        };
        match conn.send("POST", path, None, Some(body)).await {
            Ok(r) => Ok(r),
            Err(e) => {
                *guard = None;
                Err(e)
            }
        }
    }

    /// [`Self::post`] within the deadline; must be called from a blocking thread.
    pub fn post_blocking(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<ribat_net::client::Response, String> {
        self.runtime
            .block_on(async { tokio::time::timeout(self.deadline, self.post(path, body)).await })
            .map_err(|_| format!("no answer within {} ms", self.deadline.as_millis()))?
            .map_err(|e| e.to_string())
    }

    /// [`Self::post`] within the deadline, from async code.
    pub async fn post_within(
        &self,
        path: &str,
        body: Vec<u8>,
    ) -> Result<ribat_net::client::Response, String> {
        tokio::time::timeout(self.deadline, self.post(path, body))
            .await
            .map_err(|_| format!("no answer within {} ms", self.deadline.as_millis()))?
            .map_err(|e| e.to_string())
    }
}

/// A custodian in another process, reached over mTLS with the gateway's certificate.
pub struct RemoteCustodian {
    index: u32,
    link: Link,
}

impl std::fmt::Debug for RemoteCustodian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteCustodian({} at {})", self.index, self.link.addr)
    }
}

impl RemoteCustodian {
    /// Custodian `index`, reached over `link`: a call that misses the link's deadline
    /// skips the custodian for that read.
    pub fn new(index: u32, link: Link) -> Self {
        Self { index, link }
    }

    /// Where it is reached.
    pub fn addr(&self) -> &str {
        self.link.addr()
    }

    /// Custodian `index` at `addr` (certificate naming `host`), reached with the same TLS
    /// settings, runtime and deadline as this one (a resharing moved the custodian).
    pub fn elsewhere(&self, index: u32, addr: &str, host: &str) -> Self {
        Self {
            index,
            link: self.link.elsewhere(addr, host),
        }
    }

    /// Hands the custodian a decision (from a blocking thread), within the deadline.
    pub fn send_decision(&self, d: &ribat_detect::Decision, release: bool) -> Result<(), String> {
        let body = serde_json::to_vec(&WireDecision {
            decision: d.clone(),
            release,
        })
        .map_err(|e| e.to_string())?;
        let r = self.link.post_blocking(DECISION_PATH, body)?;
        if r.status < 300 {
            Ok(())
        } else {
            Err(format!("HTTP {}", r.status))
        }
    }

    /// Tells the custodian which request ids the gateway audited (best effort: a custodian
    /// that does not hear them in time treats its answers as unaudited and stops answering
    /// this gateway's certificate).
    pub async fn post_audited(&self, request_ids: Vec<String>) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&WireAudited { request_ids })
            .map_err(|e| ClientError::Http(e.to_string()))?;
        match self.link.post(AUDITED_PATH, body).await? {
            r if r.status < 300 => Ok(()),
            r => Err(ClientError::Http(format!("HTTP {}", r.status))),
        }
    }

    fn unavailable(&self, reason: impl Into<String>) -> CustodianError {
        CustodianError::Unavailable {
            custodian: self.index,
            reason: reason.into(),
        }
    }
}

impl Custodian for RemoteCustodian {
    fn index(&self) -> u32 {
        self.index
    }

    /// Must be called from a blocking thread (the gateway reads in `spawn_blocking`).
    fn partial_decrypt(&self, req: &PartialRequest) -> Result<Partial, CustodianError> {
        let body = serde_json::to_vec(req).map_err(|e| self.unavailable(e.to_string()))?;
        let r = self
            .link
            .post_blocking(PARTIAL_PATH, body)
            .map_err(|e| self.unavailable(e))?;
        if r.status == 200 {
            let wire: WirePartial = serde_json::from_slice(&r.body)
                .map_err(|e| self.unavailable(format!("unreadable answer: {e}")))?;
            return wire
                .into_partial()
                .map_err(|e| self.unavailable(format!("unreadable answer: {e}")));
        }
        let refusal: WireRefusal = serde_json::from_slice(&r.body).map_err(|_| {
            self.unavailable(format!("HTTP {} without a readable refusal", r.status))
        })?;
        if let Some((asked, held, retired)) = refusal.other_set {
            return Err(CustodianError::OtherSet {
                custodian: self.index,
                asked,
                held,
                retired,
            });
        }
        match (refusal.denial, refusal.error) {
            (Some(denial), _) => Err(CustodianError::Denied {
                custodian: self.index,
                denial,
            }),
            (None, Some(e)) => Err(self.unavailable(e)),
            (None, None) => Err(self.unavailable(format!("HTTP {}", r.status))),
        }
    }
}

/// A networked custodian's witness, asked over the same link to cosign the gateway's audit
/// checkpoints. Its key is pinned where the gateway learnt it (a mesh's ceremony), never
/// taken from the answer.
pub struct RemoteWitness {
    custodian: Arc<RemoteCustodian>,
    key: VerifierKey,
    origin: String,
}

impl std::fmt::Debug for RemoteWitness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RemoteWitness({} at {})",
            self.key.name(),
            self.custodian.addr()
        )
    }
}

impl RemoteWitness {
    /// The witness of `custodian`, whose cosignatures verify under `key`, for the log
    /// named `origin`.
    pub fn new(custodian: Arc<RemoteCustodian>, key: VerifierKey, origin: &str) -> Self {
        Self {
            custodian,
            key,
            origin: origin.to_owned(),
        }
    }
}

impl Cosigner for RemoteWitness {
    fn name(&self) -> String {
        self.key.name().to_owned()
    }

    fn verifier(&self) -> VerifierKey {
        self.key.clone()
    }

    /// Must be called from a blocking thread (checkpoints are signed in `spawn_blocking`).
    fn cosign(&self, old_size: u64, proof: &[Hash], note: &str) -> Result<String, CosignError> {
        self.ask(old_size, proof, note, None)
    }

    /// A custodian's witness believes only the entries it is shown: it counts them as
    /// audited once it has computed the checkpoint's root from them.
    fn wants_entries(&self) -> bool {
        true
    }

    fn cosign_entries(
        &self,
        old_size: u64,
        proof: &[Hash],
        note: &str,
        edge: &[Hash],
        entries: &[Vec<u8>],
    ) -> Result<String, CosignError> {
        self.ask(old_size, proof, note, Some((edge, entries)))
    }
}

impl RemoteWitness {
    fn ask(
        &self,
        old_size: u64,
        proof: &[Hash],
        note: &str,
        shown: Option<(&[Hash], &[Vec<u8>])>,
    ) -> Result<String, CosignError> {
        use base64ct::{Base64, Encoding};
        let b64 = |hs: &[Hash]| hs.iter().map(|h| Base64::encode_string(&h.0)).collect();
        let body = serde_json::to_vec(&WireCosign {
            origin: self.origin.clone(),
            old_size,
            proof: b64(proof),
            note: note.to_owned(),
            edge: shown.map(|(edge, _)| b64(edge)),
            entries: shown
                .map(|(_, entries)| entries.iter().map(|e| Base64::encode_string(e)).collect()),
        })
        .map_err(|e| CosignError::Unavailable(e.to_string()))?;
        let r = self
            .custodian
            .link
            .post_blocking(COSIGN_PATH, body)
            .map_err(CosignError::Unavailable)?;
        if r.status != 200 {
            return Err(CosignError::Unavailable(format!("HTTP {}", r.status)));
        }
        serde_json::from_slice::<WireCosigned>(&r.body)
            .map_err(|e| CosignError::Unavailable(format!("unreadable answer: {e}")))?
            .into_result()
    }
}

/// The mesh's identity service, the only holder of the token key: a gateway forwards its
/// clients' signed token requests there, and asks it for its own node's service tokens.
/// Its nodes are tried in order; the first that answers decides.
pub struct IdentityLink {
    nodes: Vec<(String, Link)>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for IdentityLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.nodes.iter().map(|(n, _)| n.as_str()).collect();
        write!(f, "IdentityLink({})", names.join(", "))
    }
}

/// Why the identity service gave no token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenRefusal {
    /// It answered with a refusal: its status, problem type and detail.
    Refused {
        /// HTTP status.
        status: u16,
        /// Problem type (slug).
        slug: String,
        /// What it said.
        detail: String,
    },
    /// None of its nodes answered.
    Unreachable(String),
}

impl std::fmt::Display for TokenRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused {
                status,
                slug,
                detail,
            } => write!(f, "HTTP {status} {slug}: {detail}"),
            Self::Unreachable(why) => f.write_str(why),
        }
    }
}

impl IdentityLink {
    /// The identity service on `nodes` (name, link to its mesh listener), asked in order.
    pub fn new(nodes: Vec<(String, Link)>, runtime: tokio::runtime::Handle) -> Self {
        Self { nodes, runtime }
    }

    /// A user's token, for their signed request the gateway forwards.
    pub async fn user_token(
        &self,
        ask: &ribat_identity::service::UserTokenAsk,
    ) -> Result<String, TokenRefusal> {
        self.ask(ribat_identity::service::USER_TOKEN_PATH, ask)
            .await
    }

    /// A token of one of the gateway's own node's service identities (from a blocking
    /// thread).
    pub fn service_token(
        &self,
        ask: &ribat_identity::service::ServiceTokenAsk,
    ) -> Result<String, TokenRefusal> {
        self.runtime
            .block_on(self.ask(ribat_identity::service::SERVICE_TOKEN_PATH, ask))
    }

    /// Asks each node in turn. A node that is unreachable, fails (5xx) or holds this
    /// gateway (its own detectors' decision, like a custodian's) leaves the request to the
    /// next; any other answer decides (a request one node refuses, every node refuses).
    async fn ask(&self, path: &str, ask: &impl serde::Serialize) -> Result<String, TokenRefusal> {
        let body = serde_json::to_vec(ask).map_err(|e| TokenRefusal::Unreachable(e.to_string()))?;
        let mut missed = Vec::new();
        let mut held = None;
        for (name, link) in &self.nodes {
            let r = match link.post_within(path, body.clone()).await {
                Ok(r) => r,
                Err(e) => {
                    missed.push(format!("{name} at {}: {e}", link.addr()));
                    continue;
                }
            };
            if r.status == 200 {
                return serde_json::from_slice::<ribat_identity::service::IssuedToken>(&r.body)
                    .map(|t| t.token)
                    .map_err(|e| TokenRefusal::Refused {
                        status: 502,
                        slug: "token-service-unreadable".into(),
                        detail: format!("the identity service's answer is unreadable: {e}"),
                    });
            }
            let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap_or_default();
            let text = |k: &str| v.get(k).and_then(|t| t.as_str()).map(str::to_owned);
            let refusal = TokenRefusal::Refused {
                status: r.status,
                slug: text("type")
                    .map(|t| {
                        t.strip_prefix(ribat_net::problem::TYPE_BASE)
                            .unwrap_or(&t)
                            .to_owned()
                    })
                    .unwrap_or_else(|| "token-refused".into()),
                detail: text("detail").unwrap_or_else(|| format!("HTTP {}", r.status)),
            };
            let next = r.status >= 500
                || matches!(&refusal, TokenRefusal::Refused { slug, .. } if slug == "quarantined");
            if !next {
                return Err(refusal);
            }
            missed.push(format!("{name} at {}: HTTP {}", link.addr(), r.status));
            held = Some(refusal);
        }
        if let Some(refusal) = held {
            return Err(refusal);
        }
        Err(TokenRefusal::Unreachable(format!(
            "the mesh's identity service did not answer ({})",
            missed.join("; ")
        )))
    }
}
