//! Reading through a quorum: ask custodians until `t` valid answers, combine, open.
//!
//! ```text
//!   envelopes ← store (ciphertext and R of each record)
//!   for custodian in order:   answer ─► verify class and proof against Y_{c,i}
//!        refused / unreachable / lying ─► named in `faults`, next custodian
//!   t verified ─► S_j = Σ λ_i·P_ij ─► open envelope j
//! ```

use crate::custodian::Custodian;
use crate::error::{CustodianError, Denial};
use crate::request::{PartialRequest, Requester};
use ribat_crypto::CryptoError;
use ribat_crypto::blind_index::BlindIndexer;
use ribat_crypto::combine::{Partial, accept_in_process, combine, verify_partial};
use ribat_crypto::dleq::Dleq;
use ribat_crypto::envelope::{Envelope, OpenedFields, Sealer};
use ribat_crypto::group::GroupPublic;
use ribat_crypto::secret::SecretBytes;
use ribat_policy::{Class, Purpose, Table};
use ribat_store::{Store, StoreError, StoredClass, StoredRecord};
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;

/// How long a read waits for the custodians and the reader to be on the same custodian set
/// again, while a resharing's set is put in force.
pub const SET_CHANGE_WAIT: Duration = Duration::from_secs(3);

/// How long a custodian whose answer failed its proof is asked only as a last resort.
pub const SET_ASIDE: Duration = Duration::from_secs(600);

/// A custodian the reader set aside, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// Its index.
    pub custodian: u32,
    /// Why (the proof or answer that failed; never a value).
    pub reason: String,
    /// Seconds left.
    pub remaining_secs: u64,
}

pub use crate::policy::{INDEX_KEY_RECORD, LEAK_KEY_RECORD};
/// Class the blind-index key is sealed to.
pub const INDEX_KEY_CLASS: Class = Class::IDENTITY;
/// Class the leak-digest key is sealed to: it opens digests of salaries, so it needs the
/// class that guards salaries.
pub const LEAK_KEY_CLASS: Class = Class::FINANCIAL;

/// A service key kept sealed in the `keys` table.
#[derive(Debug, Clone)]
struct ServiceKey {
    record: &'static str,
    class: Class,
    field: &'static str,
    purpose: Purpose,
}

const INDEX_KEY: ServiceKey = ServiceKey {
    record: INDEX_KEY_RECORD,
    class: INDEX_KEY_CLASS,
    field: "k_idx",
    purpose: Purpose::OPEN_INDEX_KEY,
};

const LEAK_KEY: ServiceKey = ServiceKey {
    record: LEAK_KEY_RECORD,
    class: LEAK_KEY_CLASS,
    field: "k_leak",
    purpose: Purpose::OPEN_LEAK_KEY,
};

/// Why one custodian did not contribute.
#[derive(Debug)]
pub enum Fault {
    /// It refused by policy.
    Denied(Denial),
    /// Its proof did not verify, or it answered for another class: it is lying or broken.
    BadAnswer(CryptoError),
    /// Any other failure (unreachable, log unavailable, unknown record…).
    Failed(CustodianError),
}

/// One custodian's fault, named.
#[derive(Debug)]
pub struct CustodianFault {
    /// Custodian index.
    pub custodian: u32,
    /// What happened.
    pub fault: Fault,
}

impl fmt::Display for CustodianFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.fault {
            Fault::Denied(d) => write!(f, "custodian {} refused: {d}", self.custodian),
            Fault::BadAnswer(e) => write!(
                f,
                "custodian {} gave an invalid answer: {e}",
                self.custodian
            ),
            Fault::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// Why a quorum read failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum QuorumError {
    /// The custodians refused by policy.
    #[error("read refused: {denial}")]
    Refused {
        /// The first refusal (they enforce the same policy).
        denial: Denial,
        /// Everything every custodian said.
        faults: Vec<CustodianFault>,
    },
    /// Too few custodians gave valid answers.
    #[error("only {have} of the {need} custodians needed answered validly: {}", list(.faults))]
    NotEnoughCustodians {
        /// Valid answers.
        have: usize,
        /// Threshold.
        need: usize,
        /// What the others did.
        faults: Vec<CustodianFault>,
    },
    /// A requested record is not in the store.
    #[error("no record {table}/{record_id} with class `{class}` in the store")]
    UnknownRecord {
        /// Table.
        table: String,
        /// Record.
        record_id: String,
        /// Class.
        class: String,
    },
    /// Cryptography refused (a record cannot be opened).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn list(faults: &[CustodianFault]) -> String {
    if faults.is_empty() {
        return "no other custodian is reachable".into();
    }
    faults
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The records opened by one read, with who served it and who failed.
#[derive(Debug)]
pub struct QuorumRead {
    /// Opened records, in request order.
    pub records: Vec<(String, OpenedFields)>,
    /// Custodians whose answers were combined.
    pub served_by: Vec<u32>,
    /// Custodians that failed, and how.
    pub faults: Vec<CustodianFault>,
}

/// The state of one read's asking round.
struct Asking {
    /// Accepted answers, in the order they came.
    good: Vec<ribat_crypto::combine::VerifiedPartial>,
    /// In-process answers accepted without their proof checked yet.
    unchecked: Vec<ribat_crypto::combine::Partial>,
    /// Custodians that did not contribute, and why.
    faults: Vec<CustodianFault>,
    /// The order custodians are asked in (indexes into the reader's list): those set
    /// aside last.
    order: Vec<usize>,
    /// The next position in `order` to ask.
    next: usize,
    /// The custodians and their public keys, as they were when the read began.
    m: Arc<Members>,
}

/// The custodian set a reader asks, and the group whose public shares check the answers:
/// replaced whole when a resharing's set is put in force.
struct Members {
    group: GroupPublic,
    custodians: Vec<Arc<dyn Custodian>>,
}

/// Reads through `t` of the custodians.
pub struct QuorumReader {
    members: std::sync::RwLock<Arc<Members>>,
    store: Arc<dyn Store>,
    dleq: Dleq,
    /// Custodians whose answers failed their proof: until when, and why.
    aside: Mutex<HashMap<u32, (Instant, String)>>,
    /// Custodians never asked, and why (in a mesh: their node is isolated).
    cut_off: Mutex<HashMap<u32, String>>,
}

impl QuorumReader {
    /// A reader over `custodians`, asked in order.
    pub fn new(
        group: GroupPublic,
        custodians: Vec<Arc<dyn Custodian>>,
        store: Arc<dyn Store>,
    ) -> Self {
        Self {
            members: std::sync::RwLock::new(Arc::new(Members { group, custodians })),
            store,
            dleq: Dleq::ribat(),
            aside: Mutex::new(HashMap::new()),
            cut_off: Mutex::new(HashMap::new()),
        }
    }

    /// Never asks `custodian` until [`Self::ask_again`]: unlike a custodian set aside, it is
    /// not asked even when the others cannot make a quorum (in a mesh, its node's
    /// attestation is missing, stale or outside the allowed set; its answers cannot be
    /// trusted to come from what the mesh allowed).
    pub fn cut_off(&self, custodian: u32, why: String) {
        if let Ok(mut c) = self.cut_off.lock() {
            c.insert(custodian, why);
        }
    }

    /// Asks `custodian` again.
    pub fn ask_again(&self, custodian: u32) {
        if let Ok(mut c) = self.cut_off.lock() {
            c.remove(&custodian);
        }
    }

    /// The custodians never asked now, and why, in index order.
    pub fn cut_off_now(&self) -> Vec<(u32, String)> {
        let mut v: Vec<(u32, String)> = self.cut_off.lock().map_or_else(
            |_| Vec::new(),
            |c| c.iter().map(|(i, w)| (*i, w.clone())).collect(),
        );
        v.sort();
        v
    }

    /// The custodians set aside now: a custodian whose answer failed its proof is asked
    /// only when the others cannot make a quorum, for [`SET_ASIDE`], so that reads stop
    /// paying for it (and stop failing over it) while its operators look.
    pub fn set_aside(&self) -> Vec<SetAside> {
        let now = Instant::now();
        let Ok(aside) = self.aside.lock() else {
            return Vec::new();
        };
        let mut v: Vec<SetAside> = aside
            .iter()
            .filter(|(_, (until, _))| *until > now)
            .map(|(c, (until, reason))| SetAside {
                custodian: *c,
                reason: reason.clone(),
                remaining_secs: until.duration_since(now).as_secs(),
            })
            .collect();
        v.sort_by_key(|a| a.custodian);
        v
    }

    /// Sets `custodian` aside for `how_long` with `reason` (a signed decision does: its
    /// duration is the rule's), or longer if it already is.
    pub fn set_aside_for(&self, custodian: u32, how_long: Duration, reason: String) {
        if let Ok(mut aside) = self.aside.lock() {
            let until = Instant::now() + how_long;
            let e = aside.entry(custodian).or_insert((until, reason.clone()));
            if e.0 <= until {
                *e = (until, reason);
            }
        }
    }

    /// Asks `custodian` in its turn again (the decision that set it aside was released).
    pub fn take_back(&self, custodian: u32) {
        if let Ok(mut aside) = self.aside.lock() {
            aside.remove(&custodian);
        }
    }

    fn put_aside(&self, custodian: u32, why: &CryptoError) {
        if let Ok(mut aside) = self.aside.lock() {
            aside.insert(
                custodian,
                (
                    Instant::now() + SET_ASIDE,
                    format!("its answer failed verification ({why}); asked only as a last resort"),
                ),
            );
        }
    }

    fn members(&self) -> Arc<Members> {
        match self.members.read() {
            Ok(m) => m.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Asks `custodians` and checks their answers against `group` from the next read on
    /// (a resharing's set, now in force; the group keys are the same, the public shares
    /// new). Custodians set aside under the old set are asked again: an index may now be
    /// another node.
    pub fn replace_set(&self, group: GroupPublic, custodians: Vec<Arc<dyn Custodian>>) {
        let m = Arc::new(Members { group, custodians });
        match self.members.write() {
            Ok(mut w) => *w = m,
            Err(poisoned) => *poisoned.into_inner() = m,
        }
        if let Ok(mut aside) = self.aside.lock() {
            aside.clear();
        }
    }

    /// Custodians in the order to ask them: those set aside last, those cut off never.
    fn order(&self, m: &Members) -> Vec<usize> {
        let now = Instant::now();
        let cut: Vec<u32> = self.cut_off_now().into_iter().map(|(c, _)| c).collect();
        let aside: Vec<u32> = self.aside.lock().map_or_else(
            |_| Vec::new(),
            |a| {
                a.iter()
                    .filter(|(_, (until, _))| *until > now)
                    .map(|(c, _)| *c)
                    .collect()
            },
        );
        let mut order: Vec<usize> = (0..m.custodians.len())
            .filter(|&k| !cut.contains(&m.custodians[k].index()))
            .collect();
        order.sort_by_key(|&k| aside.contains(&m.custodians[k].index()));
        order
    }

    /// The custodians it asks.
    pub fn custodians(&self) -> Vec<Arc<dyn Custodian>> {
        self.members().custodians.clone()
    }

    /// The group this reader trusts.
    pub fn group(&self) -> GroupPublic {
        self.members().group.clone()
    }

    /// Opens `class` of the requested records.
    ///
    /// While a resharing's new set is being put in force, custodians and this reader move
    /// to it a moment apart, and a custodian on the other side refuses as such (never as
    /// a liar). A read that fell short for that reason is asked again, a little later, for
    /// up to [`SET_CHANGE_WAIT`]: the nodes of a mesh apply the same log entry within
    /// milliseconds of one another. So is a read whose record a key rotation re-sealed
    /// between the reader fetching its envelope and a custodian looking up its `R`.
    ///
    /// Records sealed under different key epochs (a rotation under way) are asked for in
    /// one request per epoch, each answered with that epoch's shares.
    pub fn read(&self, req: &PartialRequest) -> Result<QuorumRead, QuorumError> {
        let began = Instant::now();
        loop {
            match self.read_once(req) {
                Err(QuorumError::NotEnoughCustodians { faults, .. })
                    if began.elapsed() < SET_CHANGE_WAIT
                        && faults.iter().any(|f| {
                            matches!(
                                f.fault,
                                Fault::Failed(
                                    CustodianError::OtherSet { retired: false, .. }
                                        | CustodianError::WrongEpoch { .. }
                                )
                            )
                        }) =>
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                other => return other,
            }
        }
    }

    fn read_once(&self, req: &PartialRequest) -> Result<QuorumRead, QuorumError> {
        let m = self.members();
        let mut envelopes = Vec::with_capacity(req.record_ids.len());
        for id in &req.record_ids {
            let bytes = self
                .store
                .envelope(req.table.as_str(), id, &req.class)?
                .ok_or_else(|| QuorumError::UnknownRecord {
                    table: req.table.to_string(),
                    record_id: id.clone(),
                    class: req.class.to_string(),
                })?;
            envelopes.push(Envelope::from_bytes(&bytes)?);
        }
        let epoch = envelopes.first().map_or(m.group.epoch, |e| e.epoch);
        if envelopes.iter().any(|e| e.epoch != epoch) {
            return self.read_by_epoch(req, &envelopes);
        }
        // Absent set and epoch mean 1: a request is copied only to say otherwise.
        let stamped;
        let req = match (m.group.set, epoch) {
            (1, 1) => req,
            (set, epoch) => {
                stamped = PartialRequest {
                    set: (set != 1).then_some(set),
                    epoch: (epoch != 1).then_some(epoch),
                    ..req.clone()
                };
                &stamped
            }
        };
        let keys = m.group.class_at(&req.class, epoch)?;
        let points = envelopes
            .iter()
            .map(Envelope::r_point)
            .collect::<Result<Vec<_>, _>>()?;
        let mut ask = Asking {
            good: Vec::with_capacity(m.group.threshold),
            unchecked: Vec::new(),
            faults: Vec::new(),
            order: self.order(&m),
            next: 0,
            m: m.clone(),
        };
        self.collect(req, &points, &mut ask, true)?;
        let records = match self.open_all(&m, req, keys, &envelopes, &ask.good) {
            Ok(r) => r,
            Err(QuorumError::Crypto(CryptoError::FieldAuthentication { .. }))
                if !ask.unchecked.is_empty() =>
            {
                // An opening failed with unchecked partials in the mix: check them now,
                // drop and name the liars, ask further custodians (their proofs checked).
                let unchecked = std::mem::take(&mut ask.unchecked);
                for p in unchecked {
                    let ok = m
                        .group
                        .public_share_at(&req.class, epoch, p.custodian)
                        .and_then(|y| verify_partial(&self.dleq, &req.class, y, &points, &p));
                    if let Err(e) = ok {
                        self.put_aside(p.custodian, &e);
                        ask.good.retain(|v| v.custodian() != p.custodian);
                        ask.faults.push(CustodianFault {
                            custodian: p.custodian,
                            fault: Fault::BadAnswer(e),
                        });
                    }
                }
                self.collect(req, &points, &mut ask, false)?;
                self.open_all(&m, req, keys, &envelopes, &ask.good)?
            }
            Err(e) => return Err(e),
        };
        let served_by = ask.good.iter().map(|v| v.custodian()).collect();
        Ok(QuorumRead {
            records,
            served_by,
            faults: ask.faults,
        })
    }

    /// One request per key epoch among `envelopes` (a rotation under way), the records
    /// put back in the order asked.
    fn read_by_epoch(
        &self,
        req: &PartialRequest,
        envelopes: &[Envelope],
    ) -> Result<QuorumRead, QuorumError> {
        let mut epochs: Vec<u32> = envelopes.iter().map(|e| e.epoch).collect();
        epochs.sort_unstable();
        epochs.dedup();
        let mut opened: HashMap<String, OpenedFields> = HashMap::new();
        let mut served_by: Vec<u32> = Vec::new();
        let mut faults = Vec::new();
        for epoch in epochs {
            let ids: Vec<String> = req
                .record_ids
                .iter()
                .zip(envelopes)
                .filter(|(_, e)| e.epoch == epoch)
                .map(|(id, _)| id.clone())
                .collect();
            let part = PartialRequest {
                request_id: format!("{}/e{epoch}", req.request_id),
                record_ids: ids,
                ..req.clone()
            };
            let read = self.read_once(&part)?;
            opened.extend(read.records);
            for c in read.served_by {
                if !served_by.contains(&c) {
                    served_by.push(c);
                }
            }
            faults.extend(read.faults);
        }
        let records = req
            .record_ids
            .iter()
            .map(|id| {
                opened.remove(id).map(|f| (id.clone(), f)).ok_or_else(|| {
                    QuorumError::UnknownRecord {
                        table: req.table.to_string(),
                        record_id: id.clone(),
                        class: req.class.to_string(),
                    }
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(QuorumRead {
            records,
            served_by,
            faults,
        })
    }

    /// Asks custodians, from `ask.next` on, until `t` answers are accepted; an in-process
    /// custodian's answer is accepted unchecked when `defer` (kept for checking later).
    fn collect(
        &self,
        req: &PartialRequest,
        points: &[ribat_crypto::RistrettoPoint],
        ask: &mut Asking,
        defer: bool,
    ) -> Result<(), QuorumError> {
        let m = ask.m.clone();
        while ask.good.len() < m.group.threshold {
            // The custodians still needed are asked at once, each on its own thread, so a
            // read waits for the slowest of them (each logs durably before it answers),
            // not for the sum; one that fails is replaced in a further round.
            let want = m.group.threshold - ask.good.len();
            let batch: Vec<&Arc<dyn Custodian>> = ask
                .order
                .iter()
                .skip(ask.next)
                .take(want)
                .filter_map(|&k| m.custodians.get(k))
                .collect();
            if batch.is_empty() {
                break;
            }
            ask.next += batch.len();
            let answers: Vec<Result<Partial, CustodianError>> = match batch.as_slice() {
                [one] => vec![one.partial_decrypt(req)],
                many => std::thread::scope(|s| {
                    let handles: Vec<_> = many
                        .iter()
                        .map(|c| s.spawn(move || c.partial_decrypt(req)))
                        .collect();
                    handles
                        .into_iter()
                        .zip(many)
                        .map(|(h, c)| {
                            h.join().unwrap_or_else(|_| {
                                Err(CustodianError::Unavailable {
                                    custodian: c.index(),
                                    reason: "its thread panicked".into(),
                                })
                            })
                        })
                        .collect()
                }),
            };
            for (c, answer) in batch.into_iter().zip(answers) {
                self.take(req, points, ask, defer, c.as_ref(), answer);
            }
        }
        if ask.good.len() < m.group.threshold {
            // Say why the custodians not asked were not.
            for (custodian, why) in self.cut_off_now() {
                if ask.faults.iter().all(|f| f.custodian != custodian) {
                    ask.faults.push(CustodianFault {
                        custodian,
                        fault: Fault::Failed(CustodianError::Unavailable {
                            custodian,
                            reason: format!("not asked: {why}"),
                        }),
                    });
                }
            }
            let denial = ask.faults.iter().find_map(|f| match &f.fault {
                Fault::Denied(d) => Some(d.clone()),
                _ => None,
            });
            let faults = std::mem::take(&mut ask.faults);
            return Err(match denial {
                Some(denial) => QuorumError::Refused { denial, faults },
                None => QuorumError::NotEnoughCustodians {
                    have: ask.good.len(),
                    need: m.group.threshold,
                    faults,
                },
            });
        }
        Ok(())
    }

    /// Accepts one custodian's answer into `ask`, or records its fault.
    fn take(
        &self,
        req: &PartialRequest,
        points: &[ribat_crypto::RistrettoPoint],
        ask: &mut Asking,
        defer: bool,
        c: &dyn Custodian,
        answer: Result<Partial, CustodianError>,
    ) {
        let i = c.index();
        let fault = match answer {
            Ok(p) if p.custodian != i => Fault::BadAnswer(CryptoError::ProofInvalid),
            Ok(p) if defer && c.in_process() => {
                match accept_in_process(&req.class, points.len(), &p) {
                    Ok(v) => {
                        ask.good.push(v);
                        ask.unchecked.push(p);
                        return;
                    }
                    Err(e) => Fault::BadAnswer(e),
                }
            }
            Ok(p) => match ask
                .m
                .group
                .public_share_at(&req.class, req.epoch.unwrap_or(1), i)
                .and_then(|y| verify_partial(&self.dleq, &req.class, y, points, &p))
            {
                Ok(v) => {
                    ask.good.push(v);
                    return;
                }
                Err(e) => Fault::BadAnswer(e),
            },
            Err(CustodianError::Denied { denial, .. }) => Fault::Denied(denial),
            Err(e) => Fault::Failed(e),
        };
        if let Fault::BadAnswer(e) = &fault {
            self.put_aside(i, e);
        }
        ask.faults.push(CustodianFault {
            custodian: i,
            fault,
        });
    }

    fn open_all(
        &self,
        m: &Members,
        req: &PartialRequest,
        keys: &ribat_crypto::group::ClassPublic,
        envelopes: &[Envelope],
        good: &[ribat_crypto::combine::VerifiedPartial],
    ) -> Result<Vec<(String, OpenedFields)>, QuorumError> {
        let shared = combine(&req.class, m.group.threshold, good)?;
        let epoch = req.epoch.unwrap_or(1);
        let mut records = Vec::with_capacity(envelopes.len());
        for ((env, s), id) in envelopes.iter().zip(&shared).zip(&req.record_ids) {
            let fields = env.open(req.table.as_str(), id, &req.class, keys, epoch, s)?;
            records.push((id.clone(), fields));
        }
        Ok(records)
    }

    /// Draws a blind-index key and stores it sealed to the identity class. Done once, at
    /// set-up; only a quorum can open it again. The key is handed back once, for the
    /// ceremony to give each custodian its own sealed copy (each finds with it the records
    /// a user's signed request names).
    pub fn create_index_key(
        group: &GroupPublic,
        store: &dyn Store,
    ) -> Result<SecretBytes<32>, QuorumError> {
        create_service_key(INDEX_KEY, group, store)
    }

    /// Draws the leak-digest key and stores it sealed to the financial class, unless the
    /// store holds one already (a home made before leak digests existed gets one when it
    /// is first needed; an existing key is never replaced, or its digests would be lost).
    pub fn create_leak_key(group: &GroupPublic, store: &dyn Store) -> Result<(), QuorumError> {
        if store
            .version(Table::Keys.as_str(), LEAK_KEY_RECORD)?
            .is_some()
        {
            return Ok(());
        }
        create_service_key(LEAK_KEY, group, store).map(drop)
    }

    /// Opens the leak-digest key through the quorum: every custodian checks and logs it
    /// like any read, under its own purpose, which opens nothing else.
    pub fn open_leak_key(
        &self,
        who: &Requester,
        request_id: &str,
    ) -> Result<SecretBytes<32>, QuorumError> {
        self.open_leak_key_with(who, request_id, None)
    }

    /// Same, carrying the service identity's token to networked custodians.
    pub fn open_leak_key_with(
        &self,
        who: &Requester,
        request_id: &str,
        token: Option<crate::request::Bearer>,
    ) -> Result<SecretBytes<32>, QuorumError> {
        self.open_service_key(LEAK_KEY, who, request_id, token)
    }

    /// Opens the blind-index key through the quorum, as the service identity `who`.
    pub fn open_index_key(
        &self,
        who: &Requester,
        request_id: &str,
    ) -> Result<BlindIndexer, QuorumError> {
        self.open_index_key_with(who, request_id, None)
    }

    /// Same, carrying the service identity's token to networked custodians.
    pub fn open_index_key_with(
        &self,
        who: &Requester,
        request_id: &str,
        token: Option<crate::request::Bearer>,
    ) -> Result<BlindIndexer, QuorumError> {
        Ok(BlindIndexer::new(
            self.open_service_key(INDEX_KEY, who, request_id, token)?,
        ))
    }

    fn open_service_key(
        &self,
        key: ServiceKey,
        who: &Requester,
        request_id: &str,
        token: Option<crate::request::Bearer>,
    ) -> Result<SecretBytes<32>, QuorumError> {
        let read = self.read(&PartialRequest {
            set: None,
            epoch: None,
            request_id: request_id.to_owned(),
            requester: who.clone(),
            purpose: key.purpose.clone(),
            table: Table::Keys,
            class: key.class.clone(),
            record_ids: vec![key.record.into()],
            token,
            asked: None,
        })?;
        let malformed = |reason: String| CryptoError::Malformed {
            what: "service key record",
            reason,
        };
        let raw = read
            .records
            .first()
            .and_then(|(_, f)| f.get(key.field))
            .ok_or_else(|| malformed(format!("no {} field", key.field)))?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|_| malformed(format!("{} is not 32 bytes", key.field)))?;
        Ok(SecretBytes::new(bytes))
    }
}

fn create_service_key(
    key: ServiceKey,
    group: &GroupPublic,
    store: &dyn Store,
) -> Result<SecretBytes<32>, QuorumError> {
    let secret = SecretBytes::<32>::random()?;
    let env = Sealer::new(&key.class, group.class(&key.class)?, group.epoch).seal(
        Table::Keys.as_str(),
        key.record,
        &[(key.field, secret.expose())],
    )?;
    store.put_records(&[StoredRecord {
        table: Table::Keys.to_string(),
        record_id: key.record.into(),
        version: 1,
        classes: vec![StoredClass {
            class: key.class.into(),
            epoch: env.epoch,
            r: env.r,
            envelope: env.to_bytes()?,
        }],
        index: Vec::new(),
        digests: Vec::new(),
    }])?;
    Ok(secret)
}
