//! The node's audit log, its key, and its witnesses.
//!
//! ```text
//! AUDIT/log-key     the node's Ed25519 log key, Go note format, mode 0600
//! AUDIT/trust       the keys outsiders verify with (log key, witness keys, quorum)
//! AUDIT/journal, AUDIT/checkpoint, AUDIT/tile/…   the log (see ribat_audit::log)
//! ```
//!
//! The log key sits in a file readable only by the node's user: whoever holds it can sign
//! a checkpoint, but not make a forked one pass, because the witnesses (who keep their own
//! record of what they cosigned) refuse it and verification requires their quorum.

use ribat_audit::VerifierKey;
use ribat_audit::log::{CheckpointReport, Cosigner, Log, LogError, OpenReport};
use ribat_audit::note::{ED25519, NoteError, NoteSigner};
use ribat_audit::verify::Trust;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why the node log cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeLogError {
    /// The log itself.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The key or trust file.
    #[error("{path}: {reason}")]
    Keys {
        /// File.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// The node's log with its signer and witnesses.
pub struct NodeLog {
    log: Log,
    signer: NoteSigner,
    /// Replaced whole when a resharing gives a custodian index to another node.
    witnesses: std::sync::RwLock<Vec<Arc<dyn Cosigner>>>,
    quorum: usize,
    node: String,
    opened: OpenReport,
}

impl std::fmt::Debug for NodeLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeLog({})", self.node)
    }
}

/// The origin (and log key name) of node `node` in `deployment`.
pub fn origin(deployment: &str, node: &str) -> String {
    format!("{deployment}/audit/{node}")
}

/// Reads the node's log key, creating it (0600) on first use.
pub fn log_key(dir: &Path, origin: &str) -> Result<NoteSigner, NodeLogError> {
    let path = dir.join("log-key");
    let err = |reason: String| NodeLogError::Keys {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = zeroize::Zeroizing::new(text);
            let key = NoteSigner::parse(&text).map_err(|e| err(e.to_string()))?;
            if key.name() != origin {
                return Err(err(format!("a key for {}, not {origin}", key.name())));
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            let key = NoteSigner::generate(origin, ED25519).map_err(|e| err(e.to_string()))?;
            write_private(&path, key.to_private_text().as_bytes()).map_err(err)?;
            Ok(key)
        }
        Err(e) => Err(err(e.to_string())),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| e.to_string())?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| e.to_string())
}

impl NodeLog {
    /// Opens the log in `dir` for `node`, with `witnesses` of which `quorum` must cosign.
    /// On first use writes `dir/trust`; afterwards refuses witnesses or a log key that
    /// differ from it (a swapped key would let someone else's checkpoints pass).
    pub fn open(
        dir: &Path,
        deployment: &str,
        node: &str,
        witnesses: Vec<Arc<dyn Cosigner>>,
        quorum: usize,
    ) -> Result<Self, NodeLogError> {
        let origin = origin(deployment, node);
        let signer = log_key(dir, &origin)?;
        let trust = Trust {
            log: signer.verifier(),
            witnesses: witnesses.iter().map(|w| w.verifier()).collect(),
            quorum,
        };
        let trust_path = dir.join("trust");
        match std::fs::read_to_string(&trust_path) {
            Ok(text) => {
                let pinned = Trust::parse(&text).map_err(|e| keys_err(&trust_path, &e))?;
                if pinned.log != trust.log {
                    return Err(NodeLogError::Keys {
                        path: trust_path.display().to_string(),
                        reason: "the log key differs from the pinned one".into(),
                    });
                }
                for w in &trust.witnesses {
                    if !pinned.witnesses.contains(w) {
                        return Err(NodeLogError::Keys {
                            path: trust_path.display().to_string(),
                            reason: format!(
                                "witness {} is not the pinned key of that name",
                                w.name()
                            ),
                        });
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                ribat_audit::log::write_atomic(&trust_path, trust.to_text().as_bytes())?;
            }
            Err(e) => {
                return Err(NodeLogError::Keys {
                    path: trust_path.display().to_string(),
                    reason: e.to_string(),
                });
            }
        }
        let (log, opened) = Log::open(dir, &origin)?;
        Ok(Self {
            log,
            signer,
            witnesses: std::sync::RwLock::new(witnesses),
            quorum,
            node: node.to_owned(),
            opened,
        })
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.log
    }

    /// The node's name, as written in entries.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// What opening found (entries, a torn tail cut).
    pub fn opened(&self) -> &OpenReport {
        &self.opened
    }

    /// The trust file's path.
    pub fn trust_path(&self) -> PathBuf {
        self.log.dir().join("trust")
    }

    /// Signs a checkpoint of everything durable and asks the witnesses to cosign it.
    pub fn checkpoint(&self) -> Result<CheckpointReport, LogError> {
        let held = match self.witnesses.read() {
            Ok(w) => w.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let ws: Vec<&dyn Cosigner> = held.iter().map(AsRef::as_ref).collect();
        self.log.checkpoint(&self.signer, &ws, self.quorum)
    }

    /// Asks `witnesses` from the next checkpoint on. Each must be pinned in the trust
    /// file, or among `vouched` (keys the caller took from an authenticated source: in a
    /// mesh, a new custodian's word signed by its node and committed), which are pinned
    /// now, beside the earlier ones (kept: they verify the checkpoints already made).
    pub fn set_witnesses(
        &self,
        witnesses: Vec<Arc<dyn Cosigner>>,
        vouched: &[VerifierKey],
    ) -> Result<(), NodeLogError> {
        pin(self.log.dir(), vouched)?;
        let path = self.trust_path();
        let text = std::fs::read_to_string(&path).map_err(|e| NodeLogError::Keys {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let pinned = Trust::parse(&text).map_err(|e| keys_err(&path, &e))?;
        for w in &witnesses {
            if !pinned.witnesses.contains(&w.verifier()) {
                return Err(NodeLogError::Keys {
                    path: path.display().to_string(),
                    reason: format!("witness {} is not a pinned key", w.name()),
                });
            }
        }
        match self.witnesses.write() {
            Ok(mut w) => *w = witnesses,
            Err(poisoned) => *poisoned.into_inner() = witnesses,
        }
        Ok(())
    }
}

/// Pins `keys` as witnesses in the trust file of the log in `dir`, beside those pinned
/// already (nothing when the log was never opened: its first opening pins what it is given).
pub fn pin(dir: &Path, keys: &[VerifierKey]) -> Result<(), NodeLogError> {
    let path = dir.join("trust");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(NodeLogError::Keys {
                path: path.display().to_string(),
                reason: e.to_string(),
            });
        }
    };
    let mut trust = Trust::parse(&text).map_err(|e| keys_err(&path, &e))?;
    let before = trust.witnesses.len();
    for k in keys {
        if !trust.witnesses.contains(k) {
            trust.witnesses.push(k.clone());
        }
    }
    if trust.witnesses.len() > before {
        ribat_audit::log::write_atomic(&path, trust.to_text().as_bytes())?;
    }
    Ok(())
}

fn keys_err(path: &Path, e: &NoteError) -> NodeLogError {
    NodeLogError::Keys {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}
