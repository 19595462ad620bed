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

/// A custodian in another process, reached over mTLS with the gateway's certificate.
pub struct RemoteCustodian {
    index: u32,
    addr: String,
    host: String,
    config: Arc<rustls::ClientConfig>,
    runtime: tokio::runtime::Handle,
    deadline: Duration,
    conn: tokio::sync::Mutex<Option<Connection>>,
}

impl std::fmt::Debug for RemoteCustodian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteCustodian({} at {})", self.index, self.addr)
    }
}

impl RemoteCustodian {
    /// Custodian `index` at `addr`, whose certificate names `host`; each call must finish
    /// within `deadline` or the custodian is skipped for that read.
    pub fn new(
        index: u32,
        addr: &str,
        host: &str,
        config: Arc<rustls::ClientConfig>,
        runtime: tokio::runtime::Handle,
        deadline: Duration,
    ) -> Self {
        Self {
            index,
            addr: addr.to_owned(),
            host: host.to_owned(),
            config,
            runtime,
            deadline,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// Where it is reached.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Custodian `index` at `addr` (certificate naming `host`), reached with the same TLS
    /// settings, runtime and deadline as this one (a resharing moved the custodian).
    pub fn elsewhere(&self, index: u32, addr: &str, host: &str) -> Self {
        Self::new(
            index,
            addr,
            host,
            self.config.clone(),
            self.runtime.clone(),
            self.deadline,
        )
    }

    async fn post(
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

    /// Hands the custodian a decision (from a blocking thread), within the deadline.
    pub fn send_decision(&self, d: &ribat_detect::Decision, release: bool) -> Result<(), String> {
        let body = serde_json::to_vec(&WireDecision {
            decision: d.clone(),
            release,
        })
        .map_err(|e| e.to_string())?;
        let r = self
            .runtime
            .block_on(async {
                tokio::time::timeout(self.deadline, self.post(DECISION_PATH, body)).await
            })
            .map_err(|_| format!("no answer within {} ms", self.deadline.as_millis()))?
            .map_err(|e| e.to_string())?;
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
        match self.post(AUDITED_PATH, body).await? {
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
            .runtime
            .block_on(async {
                tokio::time::timeout(self.deadline, self.post(PARTIAL_PATH, body)).await
            })
            .map_err(|_| {
                self.unavailable(format!("no answer within {} ms", self.deadline.as_millis()))
            })?
            .map_err(|e| self.unavailable(e.to_string()))?;
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
            self.custodian.addr
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
        let c = &self.custodian;
        let r = c
            .runtime
            .block_on(async { tokio::time::timeout(c.deadline, c.post(COSIGN_PATH, body)).await })
            .map_err(|_| {
                CosignError::Unavailable(format!("no answer within {} ms", c.deadline.as_millis()))
            })?
            .map_err(|e| CosignError::Unavailable(e.to_string()))?;
        if r.status != 200 {
            return Err(CosignError::Unavailable(format!("HTTP {}", r.status)));
        }
        serde_json::from_slice::<WireCosigned>(&r.body)
            .map_err(|e| CosignError::Unavailable(format!("unreadable answer: {e}")))?
            .into_result()
    }
}
