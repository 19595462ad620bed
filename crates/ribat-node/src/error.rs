//! The node's errors: each component's own error kept as its type (so a caller can branch
//! on a store failure, a quorum refusal or a token problem), a plain message where the node
//! itself refuses what the operator asked, and what the node was doing when it failed.
//!
//! [`Context`] adds that last part (`.context("cannot open the store")`); the binary prints
//! the chain, outermost first.

use std::fmt::Display;

/// Everything a node operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The node refuses or cannot do what was asked; the message says why and what to do.
    #[error("{0}")]
    Message(String),
    /// What the node was doing when `source` happened.
    #[error("{doing}")]
    During {
        /// What the node was doing, in the operator's words.
        doing: String,
        /// The failure underneath.
        #[source]
        source: Box<NodeError>,
    },
    /// A file or socket.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A JSON document.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A CSV file.
    #[error(transparent)]
    Csv(#[from] csv::Error),
    /// The store.
    #[error(transparent)]
    Store(#[from] ribat_store::StoreError),
    /// Cryptography (a sealed share, an envelope, a group file).
    #[error(transparent)]
    Crypto(#[from] ribat_crypto::CryptoError),
    /// A custodian.
    #[error(transparent)]
    Custodian(#[from] ribat_custodian::CustodianError),
    /// The quorum of custodians.
    #[error(transparent)]
    Quorum(#[from] ribat_custodian::QuorumError),
    /// An audit log.
    #[error(transparent)]
    Log(#[from] ribat_audit::LogError),
    /// A signed note or checkpoint.
    #[error(transparent)]
    Note(#[from] ribat_audit::note::NoteError),
    /// An audit entry.
    #[error(transparent)]
    Entry(#[from] ribat_audit::entry::EntryError),
    /// A Merkle proof.
    #[error(transparent)]
    Proof(#[from] ribat_audit::proof::ProofError),
    /// A read that could not be audited first.
    #[error(transparent)]
    AuditFirst(#[from] ribat_gateway::AuditFirstError),
    /// The node's own audit log and checkpoints.
    #[error(transparent)]
    NodeLog(#[from] ribat_gateway::node_log::NodeLogError),
    /// Listing a record's accesses with their proofs.
    #[error(transparent)]
    Subject(#[from] ribat_gateway::subject::SubjectError),
    /// The vault (reader, blind-index key).
    #[error(transparent)]
    Vault(#[from] ribat_gateway::vault::VaultError),
    /// The watch (detectors, decision log).
    #[error(transparent)]
    Watch(#[from] ribat_gateway::watch::WatchError),
    /// An export.
    #[error(transparent)]
    Export(#[from] ribat_gateway::exports::ExportError),
    /// The CA, a certificate or the TLS settings.
    #[error(transparent)]
    Identity(#[from] ribat_identity::IdentityError),
    /// A token.
    #[error(transparent)]
    Token(#[from] ribat_identity::TokenError),
    /// A decision's signature or release.
    #[error(transparent)]
    Decision(#[from] ribat_detect::decision::DecisionError),
    /// An import.
    #[error(transparent)]
    Import(#[from] ribat_import::importer::ImportError),
    /// A leak scan.
    #[error(transparent)]
    Leak(#[from] ribat_leak::LeakError),
    /// A call over mTLS.
    #[error(transparent)]
    Client(#[from] ribat_net::client::ClientError),
    /// An environment variable.
    #[error(transparent)]
    Env(#[from] std::env::VarError),
    /// A time out of range.
    #[error(transparent)]
    Time(#[from] time::error::ComponentRange),
    /// A number that does not parse.
    #[error(transparent)]
    Int(#[from] std::num::ParseIntError),
    /// A number out of range.
    #[error(transparent)]
    Number(#[from] std::num::TryFromIntError),
    /// A task of the async runtime failed (it panicked or was cancelled).
    #[error(transparent)]
    Task(#[from] tokio::task::JoinError),
    /// The async runtime's semaphore was closed (the runtime is stopping).
    #[error(transparent)]
    Semaphore(#[from] tokio::sync::AcquireError),
    /// A progress bar's template.
    #[error(transparent)]
    Progress(#[from] indicatif::style::TemplateError),
    /// The synthetic fund's files (export canaries).
    #[error(transparent)]
    Sim(#[from] ribat_sim::files::FilesError),
}

/// The node's result.
pub type Result<T, E = NodeError> = std::result::Result<T, E>;

impl NodeError {
    /// A failure described in words.
    pub fn msg(m: impl Into<String>) -> Self {
        Self::Message(m.into())
    }

    /// The whole chain in one line, outermost first (`doing: cause: cause`).
    pub fn chain(&self) -> String {
        let mut out = self.to_string();
        let mut cur = std::error::Error::source(self);
        while let Some(c) = cur {
            out.push_str(": ");
            out.push_str(&c.to_string());
            cur = c.source();
        }
        out
    }

    /// The innermost failure of the chain.
    pub fn root(&self) -> &NodeError {
        match self {
            Self::During { source, .. } => source.root(),
            e => e,
        }
    }
}

/// Says what the node was doing when a failure happened.
pub trait Context<T> {
    /// Wraps the failure with `doing`.
    fn context(self, doing: impl Display) -> Result<T>;
    /// Same, with the words made only on failure.
    fn with_context<D: Display>(self, doing: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<NodeError>> Context<T> for std::result::Result<T, E> {
    fn context(self, doing: impl Display) -> Result<T> {
        self.map_err(|e| NodeError::During {
            doing: doing.to_string(),
            source: Box::new(e.into()),
        })
    }

    fn with_context<D: Display>(self, doing: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| NodeError::During {
            doing: doing().to_string(),
            source: Box::new(e.into()),
        })
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, doing: impl Display) -> Result<T> {
        self.ok_or_else(|| NodeError::Message(doing.to_string()))
    }

    fn with_context<D: Display>(self, doing: impl FnOnce() -> D) -> Result<T> {
        self.ok_or_else(|| NodeError::Message(doing().to_string()))
    }
}

/// A [`NodeError::Message`] from a format string.
#[macro_export]
macro_rules! err {
    ($($t:tt)*) => { $crate::NodeError::Message(format!($($t)*)) };
}

/// Returns a [`NodeError::Message`] from a format string.
#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => { return Err($crate::err!($($t)*).into()) };
}

/// Returns a [`NodeError::Message`] unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($t:tt)*) => { if !$cond { $crate::bail!($($t)*) } };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_reads_outermost_first_and_keeps_the_typed_cause() {
        let io: std::result::Result<(), _> =
            Err(std::io::Error::new(std::io::ErrorKind::NotFound, "gone"));
        let e = io
            .context("cannot read HOME/group.json")
            .context("cannot open the node")
            .unwrap_err();
        assert_eq!(e.to_string(), "cannot open the node");
        let mut chain = vec![];
        let mut cur: Option<&dyn std::error::Error> = Some(&e);
        while let Some(c) = cur {
            chain.push(c.to_string());
            cur = c.source();
        }
        assert_eq!(
            chain,
            [
                "cannot open the node",
                "cannot read HOME/group.json",
                "gone"
            ]
        );
        assert!(matches!(e.root(), NodeError::Io(_)));
        assert_eq!(
            e.chain(),
            "cannot open the node: cannot read HOME/group.json: gone"
        );
    }

    #[test]
    fn a_missing_value_becomes_the_message() {
        let e = None::<u8>.context("no custodian is open").unwrap_err();
        assert!(matches!(e, NodeError::Message(m) if m == "no custodian is open"));
    }
}
