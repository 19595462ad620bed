//! A custodian in this process: unsealed shares, its guard, its log, its own view of the store.
//!
//! ```text
//!   request(table, ids, class, purpose, who)
//!     └► guard.decide ──deny──► log "denied" (fsync) ─► Denied
//!          └allow─► R_j = store.point(table, id_j, class)   (never from the caller)
//!               ─► P_j = k_{c,i}·R_j, one composite DLEQ proof
//!               ─► log "served" (fsync) ─► answer      (a log failure refuses: I2)
//! ```

use crate::clock::Clock;
use crate::error::{CustodianError, Denial};
use crate::guard::{Command, Guard};
use crate::keystore::{self, CustodianKeys, POLICY_FILE};
use crate::policy::Policy;
use crate::request::PartialRequest;
use crate::served_log::{ServedEntry, ServedLog};
use ribat_crypto::combine::{Partial, answer};
use ribat_crypto::dleq::Dleq;
use ribat_crypto::point::decode_point;
use ribat_crypto::secret::Passphrase;
use ribat_store::PointSource;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Anything that answers partial decryptions: in this process, or another over mTLS.
pub trait Custodian: Send + Sync {
    /// Custodian index `i`.
    fn index(&self) -> u32;
    /// Runs every check and, if they pass, answers `k_{c,i}·R_j` with a proof.
    fn partial_decrypt(&self, req: &PartialRequest) -> Result<Partial, CustodianError>;
    /// Whether this custodian runs in the reader's own process (its proofs are then
    /// checked only when an opening fails; see [`ribat_crypto::combine::accept_in_process`]).
    fn in_process(&self) -> bool {
        false
    }
}

/// A custodian whose shares are unsealed in this process.
pub struct LocalCustodian {
    dir: std::path::PathBuf,
    index: u32,
    /// Swapped whole when a resharing's set is put in force; emptied when this custodian
    /// is not in it.
    keys: std::sync::RwLock<Arc<CustodianKeys>>,
    store: Arc<dyn PointSource>,
    guard: Mutex<Guard>,
    log: ServedLog,
    clock: Arc<dyn Clock>,
    dleq: Dleq,
    observer: std::sync::OnceLock<Arc<dyn Observer>>,
    /// The deployment's blind-index key, given at the ceremony: with it the custodian finds
    /// the records a user's signed request names ([`crate::asked`]).
    index_key: Option<ribat_crypto::secret::SecretBytes<32>>,
}

/// Told of every entry a custodian logs (its answers, refusals and quarantines), after
/// the entry is durable: the detectors' view of the custodian. Must not block long.
pub trait Observer: Send + Sync {
    /// An entry, and the reason of a quarantine it imposed.
    fn logged(&self, entry: &ServedEntry, quarantine_reason: Option<&str>);
}

impl std::fmt::Debug for LocalCustodian {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LocalCustodian({})", self.index)
    }
}

impl LocalCustodian {
    /// Opens the custodian in `dir`: unseals its shares, loads its policy and honey list,
    /// and replays its log into its guard.
    pub fn open(
        dir: &Path,
        pass: &Passphrase,
        store: Arc<dyn PointSource>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CustodianError> {
        let keys = keystore::load(dir, pass)?;
        let policy = match std::fs::read_to_string(dir.join(POLICY_FILE)) {
            Ok(text) => Policy::from_json(&text).map_err(|reason| CustodianError::Directory {
                path: dir.join(POLICY_FILE).display().to_string(),
                reason,
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CustodianError::Directory {
                    path: dir.join(POLICY_FILE).display().to_string(),
                    reason: "missing; a custodian never runs without its own policy".into(),
                });
            }
            Err(e) => {
                return Err(CustodianError::Directory {
                    path: dir.join(POLICY_FILE).display().to_string(),
                    reason: e.to_string(),
                });
            }
        };
        let honey = keystore::load_honey(dir, &keys)?;
        let index_key = keystore::load_index_key(dir, &keys)?;
        let mut guard = Guard::new(policy, honey);
        let (log, replay) =
            ServedLog::open_dir(dir, keys.index).map_err(|e| CustodianError::Directory {
                path: dir
                    .join(crate::served_log::SERVED_DIR)
                    .display()
                    .to_string(),
                reason: format!("cannot open or replay the served log: {e}"),
            })?;
        for e in &replay {
            // The guard counted allowed requests whether or not they were answered.
            if e.outcome == "served" || e.outcome == "failed" {
                guard.record_served(&e.identity, &e.role, &e.table, &e.records, e.time);
            }
            if e.outcome == "released" {
                guard.release(&e.identity);
                continue;
            }
            if let Some(until) = e.quarantine_until {
                guard.apply(&Command::Quarantine {
                    identity: e.identity.clone(),
                    until,
                    reason: "replayed".into(),
                });
            }
        }
        Ok(Self {
            dir: dir.to_owned(),
            index: keys.index,
            keys: std::sync::RwLock::new(Arc::new(keys)),
            store,
            guard: Mutex::new(guard),
            log,
            clock,
            dleq: Dleq::ribat(),
            observer: std::sync::OnceLock::new(),
            index_key,
        })
    }

    /// Whether `req` stays within the read the user signed (`read`): its purpose, and the
    /// records its subject names, found with this custodian's own copy of the blind-index
    /// key and its own view of the store.
    pub fn within_asked(
        &self,
        read: &crate::asked::AskedRead,
        req: &PartialRequest,
    ) -> Result<(), String> {
        let key = self.index_key.as_ref().ok_or(
            "this custodian holds no blind-index key (its directory has no index-key.json), so it cannot tell which records a signed request names and answers no user's read",
        )?;
        let index = ribat_crypto::blind_index::BlindIndexer::new(
            ribat_crypto::secret::SecretBytes::new(*key.expose()),
        );
        crate::asked::within(read, req, &index, self.store.as_ref())
    }

    /// The blind-index key this custodian holds, to pass on to a custodian that joins.
    pub fn index_key(&self) -> Option<&ribat_crypto::secret::SecretBytes<32>> {
        self.index_key.as_ref()
    }

    /// Gives this custodian the deployment's blind-index key (sealed in its directory).
    pub fn keep_index_key(
        dir: &Path,
        pass: &Passphrase,
        key: &ribat_crypto::secret::SecretBytes<32>,
    ) -> Result<(), CustodianError> {
        let keys = keystore::load(dir, pass)?;
        keystore::save_index_key(dir, &keys, key)
    }

    /// This custodian as a witness of the audit log whose key is `log`: it cosigns that
    /// log's checkpoints only when each extends the last it cosigned. Its state lives in
    /// the custodian's directory; its key name is `custodian-<i>.<deployment>/witness`.
    pub fn witness(
        &self,
        deployment: &str,
        log: ribat_audit::VerifierKey,
    ) -> Result<ribat_audit::Witness, CustodianError> {
        let signer = self.witness_signer(deployment)?;
        let clock = self.clock.clone();
        ribat_audit::Witness::open(&self.dir, signer, log, Box::new(move || clock.now())).map_err(
            |e| CustodianError::Directory {
                path: e.path,
                reason: e.reason,
            },
        )
    }

    /// The key this custodian's witness cosigns with in `deployment`, as gateways pin it.
    pub fn witness_key(
        &self,
        deployment: &str,
    ) -> Result<ribat_audit::VerifierKey, CustodianError> {
        Ok(self.witness_signer(deployment)?.verifier())
    }

    fn witness_signer(&self, deployment: &str) -> Result<ribat_audit::NoteSigner, CustodianError> {
        let seed = keystore::witness_seed(&*self.keys()?)?;
        keystore::witness_signer(&seed, self.index, deployment)
    }

    /// Registers honey records: from now on any request for one quarantines the requester.
    /// The list is kept sealed in the custodian's directory. Returns how many are new.
    pub fn add_honey(&self, records: &[(String, String)]) -> Result<usize, CustodianError> {
        let mut g = self.guard.lock().map_err(|_| CustodianError::Poisoned)?;
        let added = g.add_honey(records);
        keystore::save_honey(&self.dir, &*self.keys()?, &g.honey_list())?;
        Ok(added)
    }

    /// The honey records (table, id). For a leak scan run by the custodians' own
    /// operators: a honey person in a dump names whoever read it.
    pub fn honey_records(&self) -> Result<Vec<(String, String)>, CustodianError> {
        let g = self.guard.lock().map_err(|_| CustodianError::Poisoned)?;
        Ok(g.honey_list())
    }

    /// Writes the policy of a custodian directory.
    pub fn write_policy(dir: &Path, policy: &Policy) -> Result<(), CustodianError> {
        let json = serde_json::to_vec_pretty(policy).map_err(|e| CustodianError::Directory {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        keystore::write_atomic(&dir.join(POLICY_FILE), &json)
    }

    /// Decides by `policy` from the next request on (the mesh put it in force, signed by two
    /// administrators), and keeps it in the custodian's directory, so that a restart starts
    /// from it rather than from an older one.
    pub fn set_policy(&self, policy: Policy) -> Result<(), CustodianError> {
        Self::write_policy(&self.dir, &policy)?;
        self.guard
            .lock()
            .map_err(|_| CustodianError::Poisoned)?
            .set_policy(policy);
        Ok(())
    }

    /// The policy it decides by now.
    pub fn policy(&self) -> Result<Policy, CustodianError> {
        Ok(self
            .guard
            .lock()
            .map_err(|_| CustodianError::Poisoned)?
            .policy()
            .clone())
    }

    /// The group file this custodian verified its shares against (when it opened, or
    /// when a resharing's set was put in force).
    pub fn group(&self) -> Result<ribat_crypto::group::GroupPublic, CustodianError> {
        Ok(self.keys()?.group.clone())
    }

    /// The shares it answers with now.
    pub fn keys(&self) -> Result<Arc<CustodianKeys>, CustodianError> {
        self.keys
            .read()
            .map(|k| k.clone())
            .map_err(|_| CustodianError::Poisoned)
    }

    /// Answers with the shares of a later custodian set from now on (a resharing's, put in
    /// force by the mesh); the old shares are dropped (and zeroized) with the last read
    /// that used them.
    pub fn replace_keys(&self, keys: CustodianKeys) -> Result<(), CustodianError> {
        let mut held = self.keys.write().map_err(|_| CustodianError::Poisoned)?;
        // Later: another set, a later epoch, or the same epoch with its rotation finished.
        let later = (keys.set, keys.epoch, keys.previous.is_none())
            > (held.set, held.epoch, held.previous.is_none());
        if keys.index != self.index || !later {
            return Err(CustodianError::Directory {
                path: self.dir.display().to_string(),
                reason: format!(
                    "custodian {} of set {} epoch {} cannot take the shares of custodian {} of set {} epoch {}",
                    self.index, held.set, held.epoch, keys.index, keys.set, keys.epoch
                ),
            });
        }
        *held = Arc::new(keys);
        Ok(())
    }

    /// Stops answering for good: this custodian is not in custodian set `set`, now in
    /// force. Its shares are dropped from memory; [`keystore::erase`] removes them from
    /// its directory.
    pub fn retire(&self, set: u32) -> Result<(), CustodianError> {
        let mut held = self.keys.write().map_err(|_| CustodianError::Poisoned)?;
        let k = &**held;
        *held = Arc::new(CustodianKeys {
            index: k.index,
            epoch: k.epoch,
            set,
            shares: std::collections::BTreeMap::new(),
            group: k.group.clone(),
            carried: std::collections::BTreeMap::new(),
            previous: None,
        });
        Ok(())
    }

    /// Plugs a deployment's own check into this custodian's guard.
    pub fn add_hook(&self, hook: Arc<dyn crate::guard::PolicyHook>) -> Result<(), CustodianError> {
        self.guard
            .lock()
            .map_err(|_| CustodianError::Poisoned)?
            .add_hook(hook);
        Ok(())
    }

    /// Sets the observer (once; a second one is refused).
    pub fn set_observer(&self, o: Arc<dyn Observer>) -> Result<(), CustodianError> {
        self.observer.set(o).map_err(|_| CustodianError::Directory {
            path: self.dir.display().to_string(),
            reason: "an observer is already set".into(),
        })
    }

    /// Quarantines `identity` until `until` (Unix seconds) on a decision made elsewhere in
    /// the mesh; durable in the custodian's log, so a restart keeps it. A quarantine only
    /// restricts, so a custodian accepts it from its gateway without a quorum.
    pub fn impose(&self, identity: &str, until: u64, reason: &str) -> Result<(), CustodianError> {
        let now = self.clock.now();
        let entry = self.control_entry(identity, now, "quarantined", reason, Some(until));
        self.append(&entry)?;
        self.guard
            .lock()
            .map_err(|_| CustodianError::Poisoned)?
            .apply(&Command::Quarantine {
                identity: identity.to_owned(),
                until,
                reason: reason.to_owned(),
            });
        Ok(())
    }

    /// Lifts a quarantine (two administrators released the decision); durable.
    pub fn lift(&self, identity: &str, reason: &str) -> Result<(), CustodianError> {
        let now = self.clock.now();
        let entry = self.control_entry(identity, now, "released", reason, None);
        self.append(&entry)?;
        self.guard
            .lock()
            .map_err(|_| CustodianError::Poisoned)?
            .release(identity);
        Ok(())
    }

    fn control_entry(
        &self,
        identity: &str,
        now: u64,
        outcome: &str,
        reason: &str,
        until: Option<u64>,
    ) -> ServedEntry {
        ServedEntry {
            v: 1,
            time: now,
            custodian: self.index,
            request_id: format!("decision-{now}"),
            identity: identity.to_owned(),
            role: String::new(),
            purpose: String::new(),
            table: String::new(),
            class: String::new(),
            records: Vec::new(),
            outcome: outcome.to_owned(),
            reason: Some(reason.to_owned()),
            quarantine_until: until,
        }
    }

    /// Whether this custodian holds `identity` in quarantine now.
    pub fn is_quarantined(&self, identity: &str) -> Result<bool, CustodianError> {
        let g = self.guard.lock().map_err(|_| CustodianError::Poisoned)?;
        Ok(g.is_quarantined(identity, self.clock.now()))
    }

    fn log_entry(
        &self,
        req: &PartialRequest,
        now: u64,
        outcome: Outcome<'_>,
        quarantine_until: Option<u64>,
    ) -> ServedEntry {
        let (word, reason) = match outcome {
            Outcome::Served => ("served", None),
            Outcome::Denied(d) => ("denied", Some(d.to_string())),
            Outcome::Failed(e) => ("failed", Some(e.to_string())),
        };
        ServedEntry {
            v: 1,
            time: now,
            custodian: self.index,
            request_id: req.request_id.clone(),
            identity: req.requester.identity.clone(),
            role: req.requester.role.to_string(),
            purpose: req.purpose.to_string(),
            table: req.table.to_string(),
            class: req.class.to_string(),
            records: req.record_ids.clone(),
            outcome: word.into(),
            reason,
            quarantine_until,
        }
    }

    fn append(&self, entry: &ServedEntry) -> Result<(), CustodianError> {
        self.append_with(entry, None)
    }

    fn append_with(
        &self,
        entry: &ServedEntry,
        quarantine_reason: Option<&str>,
    ) -> Result<(), CustodianError> {
        self.log
            .append(entry)
            .map_err(|source| CustodianError::LogUnavailable {
                custodian: self.index,
                path: self.log.dir().display().to_string(),
                source,
            })?;
        if let Some(o) = self.observer.get() {
            o.logged(entry, quarantine_reason);
        }
        Ok(())
    }
}

enum Outcome<'a> {
    Served,
    Denied(&'a Denial),
    Failed(&'a CustodianError),
}

impl LocalCustodian {
    /// Resolves every `R` from the store and answers with a proof.
    fn compute(
        &self,
        req: &PartialRequest,
        keys: &CustodianKeys,
    ) -> Result<Partial, CustodianError> {
        let index = self.index;
        let epoch = req.epoch.unwrap_or(1);
        let share = keys.share_at(req.class.as_str(), epoch).ok_or_else(|| {
            match keys.share_at(req.class.as_str(), keys.epoch) {
                None => CustodianError::UnknownClass {
                    custodian: index,
                    class: req.class.to_string(),
                },
                Some(_) => CustodianError::WrongEpoch {
                    custodian: index,
                    record_epoch: epoch,
                    held: keys.epoch,
                },
            }
        })?;
        let mut points = Vec::with_capacity(req.record_ids.len());
        for id in &req.record_ids {
            let sp = self
                .store
                .point(req.table.as_str(), id, &req.class)?
                .ok_or_else(|| CustodianError::UnknownRecord {
                    custodian: index,
                    table: req.table.to_string(),
                    record_id: id.clone(),
                    class: req.class.to_string(),
                })?;
            // Re-sealed since the reader fetched its envelope (or never under the epoch it
            // names): answered by no share, so that the reader fetches it again.
            if sp.epoch != epoch {
                return Err(CustodianError::WrongEpoch {
                    custodian: index,
                    record_epoch: sp.epoch,
                    held: epoch,
                });
            }
            points.push(decode_point(&sp.r, "stored R")?);
        }
        Ok(answer(&self.dleq, share, &points)?)
    }
}

impl Custodian for LocalCustodian {
    fn index(&self) -> u32 {
        self.index
    }

    fn in_process(&self) -> bool {
        true
    }

    fn partial_decrypt(&self, req: &PartialRequest) -> Result<Partial, CustodianError> {
        let index = self.index;
        // A request for another custodian set is a reader that has not caught up with a
        // resharing (or one behind it): neither a policy matter nor counted, but never
        // answered with shares the reader would check against the wrong public keys.
        let keys = self.keys()?;
        let asked = req.set.unwrap_or(1);
        if asked != keys.set || keys.shares.is_empty() {
            return Err(CustodianError::OtherSet {
                custodian: index,
                asked,
                held: keys.set,
                retired: keys.shares.is_empty(),
            });
        }
        // A rotation's reads open only records still under the epoch rotated away from,
        // each once (re-sealed, it is under the new epoch): the purpose opens nothing else.
        if req.purpose == ribat_policy::Purpose::KEY_ROTATION {
            let rotating = keys.previous.as_ref().map(|p| p.epoch);
            if rotating != Some(req.epoch.unwrap_or(1)) {
                return Err(CustodianError::NoRotation {
                    custodian: index,
                    asked: req.epoch.unwrap_or(1),
                    rotating,
                });
            }
        }
        let now = self.clock.now();
        let verdict = {
            let mut g = self.guard.lock().map_err(|_| CustodianError::Poisoned)?;
            g.decide(req, now)
        };
        if let Err(denial) = &verdict.outcome {
            let quarantine = verdict
                .commands
                .iter()
                .map(|Command::Quarantine { until, reason, .. }| (*until, reason.as_str()))
                .next();
            self.append_with(
                &self.log_entry(req, now, Outcome::Denied(denial), quarantine.map(|q| q.0)),
                quarantine.map(|q| q.1),
            )?;
            return Err(CustodianError::Denied {
                custodian: index,
                denial: denial.clone(),
            });
        }
        let partial = match self.compute(req, &keys) {
            Ok(p) => p,
            Err(e) => {
                // Allowed and counted, but not answered: logged so a restart counts it too.
                self.append(&self.log_entry(req, now, Outcome::Failed(&e), None))?;
                return Err(e);
            }
        };
        // Logged before the answer leaves; if the log cannot be written, nothing leaves.
        self.append(&self.log_entry(req, now, Outcome::Served, None))?;
        Ok(partial)
    }
}
