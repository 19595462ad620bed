//! A witness: cosigns a log's checkpoint only if it extends the last one it cosigned
//! (`c2sp.org/tlog-witness` semantics, in process). In the embedded shape every custodian
//! is a witness of the node's log; in a mesh every node witnesses its peers.
//!
//! State, per log, in the witness's directory: `witness-<key ID>.json`
//! (`{"format":"ribat-witness/v1","origin":…,"size":…,"root":base64}`), replaced atomically
//! after each cosignature and before the cosignature is returned, so a witness never
//! cosigns two incompatible views even across a crash. A refused fork is kept as evidence
//! in `witness-alerts.jsonl` (the checkpoint, the proof and the state it contradicts).

use crate::frontier::Frontier;
use crate::hash::{Hash, empty};
use crate::log::{CosignError, Cosigner, write_atomic};
use crate::note::{COSIGNATURE_V1, NoteSigner, VerifierKey, open_checkpoint};
use crate::proof::verify_consistency;
use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    format: String,
    origin: String,
    size: u64,
    root: String,
}

const FORMAT: &str = "ribat-witness/v1";

/// A witness of one log.
pub struct Witness {
    signer: NoteSigner,
    log: VerifierKey,
    state_path: PathBuf,
    alerts_path: PathBuf,
    state: Mutex<(u64, Hash)>,
    clock: Box<dyn Fn() -> u64 + Send + Sync>,
}

impl std::fmt::Debug for Witness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Witness({} of {})", self.signer.name(), self.log.name())
    }
}

/// Why a witness cannot open.
#[derive(Debug, thiserror::Error)]
#[error("witness state {path}: {reason}")]
pub struct WitnessError {
    /// Path.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl Witness {
    /// Opens the witness whose state lives in `dir`, cosigning with `signer` (a
    /// `COSIGNATURE_V1` key) the checkpoints of the log whose key is `log`.
    pub fn open(
        dir: &Path,
        signer: NoteSigner,
        log: VerifierKey,
        clock: Box<dyn Fn() -> u64 + Send + Sync>,
    ) -> Result<Self, WitnessError> {
        let state_path = dir.join(format!("witness-{:08x}.json", log.id()));
        let err = |reason: String| WitnessError {
            path: state_path.display().to_string(),
            reason,
        };
        if signer.verifier().kind() != COSIGNATURE_V1 {
            return Err(err("a witness signs with a cosignature/v1 key".into()));
        }
        let state = match std::fs::read_to_string(&state_path) {
            Ok(text) => {
                let f: StateFile = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
                if f.format != FORMAT || f.origin != log.name() {
                    return Err(err(format!("not a {FORMAT} state for {}", log.name())));
                }
                let root: [u8; 32] = Base64::decode_vec(&f.root)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| err("the root is not 32 bytes of base64".into()))?;
                (f.size, Hash(root))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, empty()),
            Err(e) => return Err(err(e.to_string())),
        };
        Ok(Self {
            signer,
            log,
            alerts_path: dir.join("witness-alerts.jsonl"),
            state_path,
            state: Mutex::new(state),
            clock,
        })
    }

    /// The witness's verifier key.
    pub fn verifier(&self) -> VerifierKey {
        self.signer.verifier()
    }

    /// The size the witness last cosigned.
    pub fn last_size(&self) -> u64 {
        self.state.lock().map_or(0, |s| s.0)
    }

    fn alert(&self, note: &str, old: (u64, Hash), proof: &[Hash], reason: &str) {
        let line = serde_json::json!({
            "time": (self.clock)(),
            "log": self.log.name(),
            "cosigned_size": old.0,
            "cosigned_root": Base64::encode_string(&old.1.0),
            "refused_checkpoint": note,
            "proof": proof.iter().map(|h| Base64::encode_string(&h.0)).collect::<Vec<_>>(),
            "reason": reason,
        });
        // The refusal itself does not depend on this record being written.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.alerts_path)
        {
            let _ = f
                .write_all(format!("{line}\n").as_bytes())
                .and_then(|()| f.sync_data());
        }
    }
}

impl Witness {
    /// Cosigns `note` after computing its root from the tree's right edge at the size last
    /// cosigned (checked against the root cosigned then) and the `entries` appended since;
    /// returns the cosignature and the request ids of those entries — now known to be in
    /// the log exactly as the checkpoint says, so a custodian may count them as audited.
    pub fn cosign_entries(
        &self,
        old_size: u64,
        note: &str,
        edge: &[Hash],
        entries: &[Vec<u8>],
    ) -> Result<(String, Vec<String>), CosignError> {
        let (opened, mut st) = self.begin(old_size, note)?;
        let cp = opened.checkpoint;
        let mut f = Frontier::from_hashes(old_size, edge.to_vec()).ok_or_else(|| {
            CosignError::Refused(format!(
                "the edge of a tree of {old_size} has {} hashes, not {}",
                old_size.count_ones(),
                edge.len()
            ))
        })?;
        if !f.root().ct_eq(&st.1) {
            let why = format!(
                "the edge shown for size {old_size} does not fold to the root cosigned then"
            );
            self.alert(note, *st, edge, &why);
            return Err(CosignError::Inconsistent(why));
        }
        let mut ids = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            let entry = crate::AuditEntry::decode(e).map_err(|err| {
                CosignError::Refused(format!("entry {}: {err}", old_size + i as u64))
            })?;
            ids.push(entry.request_id);
            f.push_entry(e);
        }
        if f.size() != cp.size || !f.root().ct_eq(&cp.root) {
            let why = format!(
                "the {} entries shown after size {old_size} make size {} root {}, not the checkpoint's size {} root {}",
                entries.len(),
                f.size(),
                f.root().to_hex(),
                cp.size,
                cp.root.to_hex()
            );
            self.alert(note, *st, edge, &why);
            return Err(CosignError::Inconsistent(why));
        }
        self.commit(&mut st, &cp)?;
        Ok((
            self.signer.sign_line(&opened.note.text, (self.clock)()),
            ids,
        ))
    }

    /// The checkpoint `note`, signed by the log, and the witness's state held while it is
    /// judged: refused unless the caller starts from the size last cosigned.
    fn begin(
        &self,
        old_size: u64,
        note: &str,
    ) -> Result<
        (
            crate::note::OpenedCheckpoint,
            std::sync::MutexGuard<'_, (u64, Hash)>,
        ),
        CosignError,
    > {
        let opened =
            open_checkpoint(note, &self.log).map_err(|e| CosignError::Refused(e.to_string()))?;
        let st = self
            .state
            .lock()
            .map_err(|_| CosignError::Unavailable("witness state poisoned".into()))?;
        if old_size != st.0 {
            return Err(CosignError::Conflict(st.0));
        }
        Ok((opened, st))
    }

    /// Keeps `cp` as the last cosigned, durably, before any cosignature of it leaves.
    fn commit(
        &self,
        st: &mut (u64, Hash),
        cp: &crate::note::Checkpoint,
    ) -> Result<(), CosignError> {
        let file = StateFile {
            format: FORMAT.into(),
            origin: cp.origin.clone(),
            size: cp.size,
            root: Base64::encode_string(&cp.root.0),
        };
        let json =
            serde_json::to_vec(&file).map_err(|e| CosignError::Unavailable(e.to_string()))?;
        write_atomic(&self.state_path, &json)
            .map_err(|e| CosignError::Unavailable(e.to_string()))?;
        *st = (cp.size, cp.root);
        Ok(())
    }
}

impl Cosigner for Witness {
    fn name(&self) -> String {
        self.signer.name().to_owned()
    }

    fn verifier(&self) -> VerifierKey {
        self.signer.verifier()
    }

    fn cosign(&self, old_size: u64, proof: &[Hash], note: &str) -> Result<String, CosignError> {
        let (opened, mut st) = self.begin(old_size, note)?;
        let cp = opened.checkpoint;
        if cp.size < st.0 {
            let why = format!(
                "size {} is smaller than the size {} already cosigned",
                cp.size, st.0
            );
            self.alert(note, *st, proof, &why);
            return Err(CosignError::Inconsistent(why));
        }
        if st.0 > 0 {
            if let Err(e) = verify_consistency(st.0, cp.size, proof, &st.1, &cp.root) {
                let why = format!(
                    "size {} root {} does not extend the cosigned size {} root {}: {e}",
                    cp.size,
                    cp.root.to_hex(),
                    st.0,
                    st.1.to_hex()
                );
                self.alert(note, *st, proof, &why);
                return Err(CosignError::Inconsistent(why));
            }
        } else if !proof.is_empty() {
            return Err(CosignError::Refused(
                "a proof from the empty tree is empty".into(),
            ));
        }
        self.commit(&mut st, &cp)?;
        Ok(self.signer.sign_line(&opened.note.text, (self.clock)()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::note::ED25519;

    fn keys() -> (NoteSigner, VerifierKey) {
        let log = NoteSigner::generate("ribat.test/audit/node-1", ED25519).unwrap();
        let me = NoteSigner::generate("custodian-1.ribat.test/witness", COSIGNATURE_V1).unwrap();
        (me, log.verifier())
    }

    /// A witness of `log` (a fresh key of its own: the state is the log's).
    fn open(dir: &Path, log: &VerifierKey) -> Result<Witness, WitnessError> {
        let me = NoteSigner::generate("custodian-1.ribat.test/witness", COSIGNATURE_V1).unwrap();
        Witness::open(dir, me, log.clone(), Box::new(|| 1_763_900_000))
    }

    #[test]
    fn a_witness_names_its_key_and_its_log() {
        let d = tempfile::tempdir().unwrap();
        let w = open(d.path(), &keys().1).unwrap();
        assert_eq!(
            format!("{w:?}"),
            "Witness(custodian-1.ribat.test/witness of ribat.test/audit/node-1)"
        );
    }

    #[test]
    fn a_state_it_cannot_read_or_that_is_another_logs_is_refused_never_taken_for_a_fresh_start() {
        let d = tempfile::tempdir().unwrap();
        let (me, log) = keys();
        let state = d.path().join(format!("witness-{:08x}.json", log.id()));
        let root = Base64::encode_string(&[0u8; 32]);
        let write = |format: &str, origin: &str| {
            std::fs::write(
                &state,
                format!(r#"{{"format":"{format}","origin":"{origin}","size":7,"root":"{root}"}}"#),
            )
            .unwrap();
        };
        // Its own state opens (and the size it cosigned is kept).
        write(FORMAT, log.name());
        assert!(Witness::open(d.path(), me, log.clone(), Box::new(|| 0)).is_ok());
        // Another format, another log's origin: refused.
        for (format, origin) in [
            ("other-format", log.name()),
            (FORMAT, "ribat.test/audit/node-9"),
        ] {
            write(format, origin);
            let e = open(d.path(), &log).unwrap_err();
            assert!(e.reason.starts_with("not a "), "{e}");
        }
        // A state that exists but cannot be read (here a directory) is an error: starting
        // again from size 0 would cosign any fork.
        std::fs::remove_file(&state).unwrap();
        std::fs::create_dir(&state).unwrap();
        assert!(open(d.path(), &log).is_err());
    }
}
