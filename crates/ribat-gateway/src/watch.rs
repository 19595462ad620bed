//! The gateway's watch: every access, refusal and authentication failure the gateway sees,
//! and every answer its custodians log, goes through the detectors; a finding in force
//! becomes a decision that is enforced here at once, then at every custodian, then signed
//! and written durably to the decision log (`HOME/decisions`). Events and decisions also go
//! out as OCSF JSON lines and, when configured, as CEF over syslog.
//!
//! A decision ends when its time is up or when two distinct administrators release it.

use crate::containment::Containment;
use ribat_custodian::clock::Clock;
use ribat_detect::decision::{ReleaseState, key_id};
use ribat_detect::event::{Actor, CustodianAnswer, Event, Kind};
use ribat_detect::{Decision, DecisionSigner, Engine, Release, ReleaseBook, Rules, Target};
use ribat_net::problem::Problem;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// Files in the decision directory.
pub const KEY_FILE: &str = "key";
/// The verifying key (hex), for `ribat decisions` and auditors.
pub const PUB_FILE: &str = "key.pub";
/// The decision log (a Merkle log like the audit log).
pub const LOG_DIR: &str = "log";

/// Errors opening the watch.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A file or directory.
    #[error("{path}: {reason}")]
    Io {
        /// Path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The decision log.
    #[error("decision log: {0}")]
    Log(#[from] ribat_audit::LogError),
}

fn io(path: &Path, e: impl std::fmt::Display) -> WatchError {
    WatchError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// One entry of the decision log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "kebab-case")]
pub enum Record {
    /// A decision.
    Decision(Box<Decision>),
    /// One administrator's approval to release a decision.
    Approval(Release),
    /// A decision released by the approvals listed.
    Released {
        /// Decision id.
        decision: String,
        /// Approving administrators.
        approvals: Vec<String>,
        /// When, ms.
        time_ms: u64,
    },
}

/// Something besides the gateway that carries out decisions (a custodian).
pub trait Enforcer: Send + Sync {
    /// Its name in `enforced_by`.
    fn name(&self) -> String;
    /// Carries out `d`; `Ok(false)` when the decision is nothing this component enforces.
    fn enforce(&self, d: &Decision) -> Result<bool, String>;
    /// Lifts `d`.
    fn release(&self, d: &Decision) -> Result<(), String>;
}

impl Enforcer for ribat_custodian::LocalCustodian {
    fn name(&self) -> String {
        format!("custodian-{}", ribat_custodian::Custodian::index(self))
    }

    fn enforce(&self, d: &Decision) -> Result<bool, String> {
        match (&d.target, d.action) {
            (Target::Identity(id), ribat_detect::Action::Quarantine) => self
                .impose(
                    id,
                    d.until_ms / 1000,
                    &format!("decision {}: {}", d.id, d.rule),
                )
                .map(|()| true)
                .map_err(|e| e.to_string()),
            _ => Ok(false),
        }
    }

    fn release(&self, d: &Decision) -> Result<(), String> {
        match (&d.target, d.action) {
            (Target::Identity(id), ribat_detect::Action::Quarantine) => self
                .lift(id, &format!("decision {} released", d.id))
                .map_err(|e| e.to_string()),
            _ => Ok(()),
        }
    }
}

impl Enforcer for crate::link::RemoteCustodian {
    fn name(&self) -> String {
        format!("custodian-{}", ribat_custodian::Custodian::index(self))
    }

    fn enforce(&self, d: &Decision) -> Result<bool, String> {
        match (&d.target, d.action) {
            (Target::Identity(_), ribat_detect::Action::Quarantine) => {
                self.send_decision(d, false).map(|()| true)
            }
            _ => Ok(false),
        }
    }

    fn release(&self, d: &Decision) -> Result<(), String> {
        match (&d.target, d.action) {
            (Target::Identity(_), ribat_detect::Action::Quarantine) => self.send_decision(d, true),
            _ => Ok(()),
        }
    }
}

/// A networked custodian's detectors are the watch of the node that runs it.
impl ribat_custodian::serve::Observer for Watch {
    fn observe(&self, component: &str, kind: Kind) {
        Watch::observe(
            self,
            &Event {
                time_ms: self.clock().now_ms(),
                component: component.to_owned(),
                kind,
            },
        );
    }

    fn node_held(&self, name: &str, serial: &str) -> Option<(u64, String)> {
        self.node_quarantined(name, serial)
    }
}

/// The gateway's quorum reader, as the enforcer of `proof-failure` decisions: the reader
/// set the custodian aside the moment its proof failed; the signed decision holds it aside
/// for the rule's duration, and its release by two administrators takes it back at once.
pub struct ReaderEnforcer(pub Arc<crate::vault::Vault>);

/// The custodian among `asked` that decision `d` sets aside, if any.
pub fn set_aside_by(d: &Decision, asked: impl IntoIterator<Item = u32>) -> Option<u32> {
    let (Target::Node(node), ribat_detect::Action::Quarantine) = (&d.target, d.action) else {
        return None;
    };
    asked
        .into_iter()
        .find(|i| ribat_detect::detectors::custodian_node(*i) == *node)
}

impl ReaderEnforcer {
    fn custodian(&self, d: &Decision) -> Option<u32> {
        set_aside_by(d, self.0.reader.custodians().iter().map(|c| c.index()))
    }
}

impl Enforcer for ReaderEnforcer {
    fn name(&self) -> String {
        "gateway-reader".into()
    }

    fn enforce(&self, d: &Decision) -> Result<bool, String> {
        let Some(c) = self.custodian(d) else {
            return Ok(false);
        };
        let secs = d.until_ms.saturating_sub(d.time_ms) / 1000;
        self.0.reader.set_aside_for(
            c,
            std::time::Duration::from_secs(secs),
            format!("decision {}: {}", d.id, d.title),
        );
        Ok(true)
    }

    fn release(&self, d: &Decision) -> Result<(), String> {
        if let Some(c) = self.custodian(d) {
            self.0.reader.take_back(c);
        }
        Ok(())
    }
}

/// Where events and decisions go besides the decision log.
#[derive(Debug, Default, Clone)]
pub struct Outputs {
    /// OCSF JSON lines file.
    pub ocsf: Option<PathBuf>,
    /// Syslog collector (UDP `HOST:PORT`) for CEF lines.
    pub syslog: Option<String>,
}

/// A line for the writer thread.
enum Line {
    Ocsf(String),
    Cef(u8, String),
}

/// The watch.
pub struct Watch {
    node: String,
    clock: Arc<dyn Clock>,
    engine: Mutex<Engine>,
    containment: Mutex<Containment>,
    book: Mutex<ReleaseBook>,
    decisions: Mutex<Vec<Decision>>,
    /// Decisions released, with the administrators who released them.
    released: Mutex<std::collections::BTreeMap<String, Vec<String>>>,
    /// Reads, refusals and decisions of the last hour, for the console's chart.
    activity: Mutex<crate::activity::Activity>,
    /// The mesh member this watch's decisions are carried by, when in a mesh: there a
    /// release is two administrators' signatures through the log, not approvals here.
    mesh_member: std::sync::OnceLock<String>,
    log: ribat_audit::Log,
    signer: DecisionSigner,
    enforcers: Mutex<Vec<Arc<dyn Enforcer>>>,
    out: Option<Mutex<std::sync::mpsc::Sender<Line>>>,
    public_figures: HashSet<String>,
    seq: AtomicU64,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

fn load_or_create_key(dir: &Path) -> Result<DecisionSigner, WatchError> {
    let path = dir.join(KEY_FILE);
    let seed = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = zeroize::Zeroizing::new(
                hex::decode(text.trim())
                    .map_err(|_| io(&path, "not a hex Ed25519 seed; restore it from backup"))?,
            );
            let arr: [u8; 32] = bytes
                .as_slice()
                .try_into()
                .map_err(|_| io(&path, "not a 32-byte Ed25519 seed; restore it from backup"))?;
            zeroize::Zeroizing::new(arr)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let fresh =
                ribat_crypto::secret::SecretBytes::<32>::random().map_err(|e| io(&path, e))?;
            let text = zeroize::Zeroizing::new(hex::encode(fresh.expose()));
            ribat_identity::ca::write_file(&path, text.as_bytes(), true)
                .map_err(|e| io(&path, e))?;
            zeroize::Zeroizing::new(*fresh.expose())
        }
        Err(e) => return Err(io(&path, e)),
    };
    let signer = DecisionSigner::from_seed(&seed);
    let pub_path = dir.join(PUB_FILE);
    let pub_hex = hex::encode(signer.verifying_key().as_bytes());
    match std::fs::read_to_string(&pub_path) {
        Ok(t) if t.trim() == pub_hex => {}
        Ok(_) => {
            return Err(io(
                &pub_path,
                "does not match the decision key; the key was replaced, so earlier decisions would not verify",
            ));
        }
        Err(_) => {
            ribat_identity::ca::write_file(&pub_path, format!("{pub_hex}\n").as_bytes(), false)
                .map_err(|e| io(&pub_path, e))?
        }
    }
    Ok(signer)
}

/// Reads a decision log without opening it for writing (a running gateway holds it).
pub fn read_log(dir: &Path) -> Result<Vec<Record>, WatchError> {
    let path = dir.join(LOG_DIR).join(ribat_audit::log::JOURNAL);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let mut bad = None;
    ribat_audit::journal::scan(&path, 0, |i, entry, _| {
        match serde_json::from_slice::<Record>(entry) {
            Ok(r) => out.push(r),
            Err(e) => bad = bad.take().or(Some(format!("entry {i}: {e}"))),
        }
        Ok(())
    })
    .map_err(|d| io(&path, d))?;
    match bad {
        Some(b) => Err(io(&path, b)),
        None => Ok(out),
    }
}

/// The verifying key of a decision directory.
pub fn verifying_key(dir: &Path) -> Result<ed25519_dalek::VerifyingKey, WatchError> {
    let path = dir.join(PUB_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| io(&path, "not a hex Ed25519 public key"))?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|e| io(&path, e))
}

impl Watch {
    /// Detects by `rules` from the next event on (the mesh put them in force).
    pub fn set_rules(&self, rules: Rules) {
        match self.engine.lock() {
            Ok(mut e) => e.set_rules(rules),
            Err(poisoned) => poisoned.into_inner().set_rules(rules),
        }
    }

    /// Opens the decision directory `dir` (key and log; created when new) and replays the
    /// decisions still in force.
    pub fn open(
        dir: &Path,
        node: &str,
        rules: Rules,
        clock: Arc<dyn Clock>,
        outputs: &Outputs,
        public_figures: HashSet<String>,
    ) -> Result<Self, WatchError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let signer = load_or_create_key(dir)?;
        let earlier = read_log(dir)?;
        let (log, _) = ribat_audit::Log::open(&dir.join(LOG_DIR), &format!("{node}/decisions"))?;
        let mut containment = Containment::default();
        let mut book = ReleaseBook::default();
        let mut decisions = Vec::new();
        let mut released = std::collections::BTreeMap::new();
        for r in earlier {
            match r {
                Record::Decision(d) => {
                    containment.apply(&d);
                    book.decided(&d);
                    decisions.push(*d);
                }
                Record::Approval(a) => {
                    let _ = book.approve(&a);
                }
                Record::Released {
                    decision,
                    approvals,
                    ..
                } => {
                    containment.release(&decision);
                    book.ended(&decision);
                    released.insert(decision, approvals);
                }
            }
        }
        let out = spawn_writer(outputs, node)?;
        Ok(Self {
            node: node.to_owned(),
            clock,
            engine: Mutex::new(Engine::new(rules)),
            containment: Mutex::new(containment),
            book: Mutex::new(book),
            decisions: Mutex::new(decisions),
            released: Mutex::new(released),
            mesh_member: std::sync::OnceLock::new(),
            activity: Mutex::new(crate::activity::Activity::default()),
            log,
            signer,
            enforcers: Mutex::new(Vec::new()),
            out: out.map(Mutex::new),
            public_figures,
            seq: AtomicU64::new(0),
        })
    }

    /// Adds a component that carries out decisions (a custodian).
    pub fn add_enforcer(&self, e: Arc<dyn Enforcer>) {
        if let Ok(mut v) = self.enforcers.lock() {
            v.push(e);
        }
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The clock (shared with the gate and the custodians).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The key id decisions are signed with.
    pub fn key_id(&self) -> String {
        key_id(&self.signer.verifying_key())
    }

    /// Whether a record is on the public-figure list.
    pub fn is_public_figure(&self, record_id: &str) -> bool {
        self.public_figures.contains(record_id)
    }

    fn send(&self, line: Line) {
        if let Some(out) = &self.out
            && let Ok(tx) = out.lock()
        {
            let _ = tx.send(line);
        }
    }

    /// Feeds an event to the detectors; returns the decisions it led to (already in force).
    pub fn observe(&self, ev: &Event) -> Vec<Decision> {
        if let Some(v) = ribat_detect::ocsf::event(ev) {
            self.send(Line::Ocsf(v.to_string()));
        }
        if let Some(c) = ribat_detect::cef::event(ev) {
            self.send(Line::Cef(1, c));
        }
        if let Ok(mut a) = self.activity.lock() {
            a.note(ev);
        }
        let judged = match self.engine.lock() {
            Ok(mut e) => e.observe(ev),
            Err(_) => return Vec::new(),
        };
        judged
            .into_iter()
            .map(|j| self.decide(&j.finding, j.mode))
            .collect()
    }

    fn decide(&self, f: &ribat_detect::Finding, mode: ribat_detect::Mode) -> Decision {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let mut d = Decision::from_finding(&self.node, f, mode, self.clock.now_ms(), seq);
        if let Ok(mut a) = self.activity.lock() {
            a.decided(d.time_ms);
        }
        if d.enforces() {
            // Here first (the next request is refused), then every custodian (durably).
            if let Ok(mut c) = self.containment.lock() {
                c.apply(&d);
                d.enforced_by.push(self.node.clone());
            }
            let enforcers = self.enforcers.lock().map(|v| v.clone()).unwrap_or_default();
            for e in enforcers {
                match e.enforce(&d) {
                    Ok(true) => d.enforced_by.push(e.name()),
                    Ok(false) => {}
                    Err(err) => eprintln!(
                        "warning: {} could not enforce decision {}: {err}",
                        e.name(),
                        d.id
                    ),
                }
            }
            d.enforced_ms = Some(self.clock.now_ms());
        }
        self.signer.sign(&mut d);
        self.append(&Record::Decision(Box::new(d.clone())));
        if let Ok(mut b) = self.book.lock() {
            b.decided(&d);
        }
        if let Ok(mut all) = self.decisions.lock() {
            all.push(d.clone());
        }
        self.send(Line::Ocsf(ribat_detect::ocsf::finding(&d).to_string()));
        self.send(Line::Cef(
            d.severity.ocsf_id() * 2,
            ribat_detect::cef::decision(&d),
        ));
        d
    }

    fn append(&self, r: &Record) {
        let written = serde_json::to_vec(r)
            .map_err(|e| e.to_string())
            .and_then(|b| self.log.append(&b).map_err(|e| e.to_string()));
        if let Err(e) = written {
            // The decision is in force in memory; losing its record is what must be loud.
            eprintln!("ALERT: a decision could not be written to the decision log: {e}");
        }
    }

    /// Whether `actor` may be served now (decisions in force).
    pub fn check(&self, actor: &Actor, cosigned: bool) -> Result<(), Problem> {
        let essential = self
            .engine
            .lock()
            .map(|e| e.rules().essential_roles.clone())
            .unwrap_or_default();
        self.containment
            .lock()
            .map_err(|_| {
                Problem::internal("the containment state is poisoned; restart the gateway")
            })?
            .check(actor, cosigned, &essential, self.clock.now_ms())
    }

    /// Whether a node (a gateway, seen from a custodian) is quarantined: until when (ms)
    /// and by which decision.
    pub fn node_quarantined(&self, name: &str, serial: &str) -> Option<(u64, String)> {
        self.containment
            .lock()
            .ok()?
            .node_quarantined(name, serial, self.clock.now_ms())
    }

    /// Every decision, oldest first.
    pub fn decisions(&self) -> Vec<Decision> {
        self.decisions.lock().map(|d| d.clone()).unwrap_or_default()
    }

    /// The administrators who approved releasing decision `id` so far, while it is in
    /// force and not yet released.
    pub fn pending_approvals(&self, id: &str) -> Vec<String> {
        self.book
            .lock()
            .map(|b| b.approvals(id))
            .unwrap_or_default()
    }

    /// Who released decision `id`, when it was released.
    pub fn released_by(&self, id: &str) -> Option<Vec<String>> {
        self.released.lock().ok()?.get(id).cloned()
    }

    /// Counts a request of `role` that a decision in force refused (for the chart only).
    pub fn held(&self, role: &str, time_ms: u64) {
        if let Ok(mut a) = self.activity.lock() {
            a.held(role, time_ms);
        }
    }

    /// Reads, refusals (by role) and decisions, minute by minute over the hour to now.
    pub fn activity(&self) -> Vec<crate::activity::Minute> {
        let now = self.clock.now_ms();
        self.activity
            .lock()
            .map(|a| a.last_hour(now))
            .unwrap_or_default()
    }

    /// Says that this watch's decisions are carried through a mesh by member `name`
    /// (restrictions `name/ID`), released only through its log.
    /// (Said once, at the node's start; a second call changes nothing.)
    pub fn carried_by_mesh_member(&self, name: &str) {
        let _ = self.mesh_member.set(name.to_owned());
    }

    /// The mesh member carrying this watch's decisions, when in a mesh.
    pub fn mesh_member(&self) -> Option<&str> {
        self.mesh_member.get().map(String::as_str)
    }

    /// Whether `d` is signed by this watch's decision key.
    pub fn signed_here(&self, d: &Decision) -> bool {
        d.verify(&self.signer.verifying_key()).is_ok()
    }

    /// How many decisions this watch holds (an open console asks it every 250 ms: no
    /// copy of them).
    pub fn decision_count(&self) -> usize {
        self.decisions.lock().map_or(0, |d| d.len())
    }

    /// Ids of the decisions in force now.
    pub fn in_force(&self) -> Vec<String> {
        self.containment
            .lock()
            .map(|c| c.in_force(self.clock.now_ms()))
            .unwrap_or_default()
    }

    /// One administrator's approval to release decision `id`.
    pub fn approve_release(
        &self,
        id: &str,
        admin: &str,
        reason: &str,
    ) -> Result<ReleaseState, ribat_detect::decision::DecisionError> {
        let r = Release {
            decision: id.to_owned(),
            admin: admin.to_owned(),
            time_ms: self.clock.now_ms(),
            reason: reason.to_owned(),
        };
        let state = self
            .book
            .lock()
            .map_err(|_| ribat_detect::decision::DecisionError::Unknown(id.to_owned()))?
            .approve(&r)?;
        self.append(&Record::Approval(r));
        if let ReleaseState::Released { approvals } = &state {
            self.lift(id, approvals.clone());
        }
        Ok(state)
    }

    /// Lifts decision `id`, released elsewhere by the administrators `approvals` (in a
    /// mesh: a release committed with their signatures, which every node checked). Returns
    /// whether this watch held such a decision.
    pub fn released_elsewhere(&self, id: &str, approvals: Vec<String>) -> bool {
        let held = self.decisions().iter().any(|d| d.id == id);
        if held {
            self.lift(id, approvals);
        }
        held
    }

    /// Holds `target` by `action` until `until_ms`: restriction `id`, which another node
    /// decided (in a mesh, carried to this one by the log).
    pub fn hold_elsewhere(
        &self,
        id: &str,
        target: Target,
        action: ribat_detect::Action,
        until_ms: u64,
    ) {
        if let Ok(mut c) = self.containment.lock() {
            c.hold(id, target, action, until_ms);
        }
    }

    /// Lifts what [`Self::hold_elsewhere`] held under `id` (two administrators released it).
    pub fn lift_elsewhere(&self, id: &str) {
        if let Ok(mut c) = self.containment.lock() {
            c.release(id);
        }
    }

    fn lift(&self, id: &str, approvals: Vec<String>) {
        let d = self.decisions().into_iter().find(|d| d.id == id);
        if let Ok(mut c) = self.containment.lock() {
            c.release(id);
        }
        if let Some(d) = &d {
            if let Ok(mut e) = self.engine.lock() {
                e.forget(&d.target);
            }
            let enforcers = self.enforcers.lock().map(|v| v.clone()).unwrap_or_default();
            for e in enforcers {
                if let Err(err) = e.release(d) {
                    eprintln!("warning: {} could not lift decision {id}: {err}", e.name());
                }
            }
        }
        if let Ok(mut r) = self.released.lock() {
            r.insert(id.to_owned(), approvals.clone());
        }
        self.append(&Record::Released {
            decision: id.to_owned(),
            approvals,
            time_ms: self.clock.now_ms(),
        });
    }

    /// Flushes the outputs (at stop).
    pub fn flush(&self) {
        self.send(Line::Ocsf(String::new()));
    }
}

/// The writer thread for OCSF lines and syslog datagrams: detection never waits on a
/// disk or a collector.
fn spawn_writer(
    o: &Outputs,
    node: &str,
) -> Result<Option<std::sync::mpsc::Sender<Line>>, WatchError> {
    if o.ocsf.is_none() && o.syslog.is_none() {
        return Ok(None);
    }
    let mut file = match &o.ocsf {
        Some(p) => Some(std::io::BufWriter::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| io(p, e))?,
        )),
        None => None,
    };
    let syslog = match &o.syslog {
        Some(addr) => {
            let s = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| io(Path::new(addr), e))?;
            s.connect(addr)
                .map_err(|e| io(Path::new(addr), format!("syslog collector: {e}")))?;
            Some(s)
        }
        None => None,
    };
    let host = node.to_owned();
    let (tx, rx) = std::sync::mpsc::channel::<Line>();
    std::thread::Builder::new()
        .name("ribat-events".into())
        .spawn(move || {
            use std::sync::mpsc::RecvTimeoutError;
            const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(500);
            let mut last_flush = std::time::Instant::now();
            // Lines written since the last flush: flushed within FLUSH_EVERY even when no
            // other line follows (a lone finding must reach the SIEM, not wait for the next).
            let mut pending = false;
            loop {
                let line = match rx.recv_timeout(FLUSH_EVERY) {
                    Ok(line) => line,
                    Err(RecvTimeoutError::Timeout) => {
                        if pending && let Some(f) = &mut file {
                            let _ = f.flush();
                            last_flush = std::time::Instant::now();
                        }
                        pending = false;
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                match line {
                    Line::Ocsf(l) => {
                        if let Some(f) = &mut file {
                            if !l.is_empty() {
                                let _ = writeln!(f, "{l}");
                                pending = true;
                            }
                            if l.is_empty() || last_flush.elapsed() > FLUSH_EVERY {
                                let _ = f.flush();
                                last_flush = std::time::Instant::now();
                                pending = false;
                            }
                        }
                    }
                    Line::Cef(sev, l) => {
                        if let Some(s) = &syslog {
                            let _ = s.send(ribat_detect::cef::syslog(sev, &host, &l).as_bytes());
                        }
                    }
                }
            }
            if let Some(f) = &mut file {
                let _ = f.flush();
            }
        })
        .map_err(|e| io(Path::new("ribat-events thread"), e))?;
    Ok(Some(tx))
}

/// Turns a custodian's log entries into events for the watch.
pub struct CustodianEvents {
    /// The watch (weak: the watch holds the custodians as enforcers).
    pub watch: Weak<Watch>,
    /// The gateway's name (the node custodians answer).
    pub node: String,
}

impl ribat_custodian::custodian::Observer for CustodianEvents {
    fn logged(&self, e: &ribat_custodian::served_log::ServedEntry, why: Option<&str>) {
        let Some(watch) = self.watch.upgrade() else {
            return;
        };
        if e.outcome == "quarantined" || e.outcome == "released" {
            return; // the watch's own decisions, carried out
        }
        let ev = Event {
            time_ms: watch.clock.now_ms(),
            component: format!("custodian-{}", e.custodian),
            kind: Kind::CustodianAnswer(CustodianAnswer {
                custodian: e.custodian,
                request_id: e.request_id.clone(),
                node: self.node.clone(),
                table: e.table.clone(),
                identity: e.identity.clone(),
                records: e.records.len(),
                outcome: e.outcome.clone(),
                quarantined: why.map(str::to_owned),
            }),
        };
        watch.observe(&ev);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ribat_custodian::clock::ManualClock;
    use ribat_detect::event::Access;

    fn read(identity: &str, subject: &str, t: u64) -> Event {
        Event {
            time_ms: t,
            component: "gw".into(),
            kind: Kind::Access(Access {
                actor: Actor {
                    identity: identity.into(),
                    role: "partner".into(),
                    institution: "bank".into(),
                    serial: "01".into(),
                    addr: "10.0.0.1".into(),
                },
                purpose: "partner-verification".parse().unwrap(),
                route: "/v1/persons/{cnss}".into(),
                table: ribat_policy::Table::Persons,
                subject: Some(subject.into()),
                lookup: None,
                case_ref: None,
                public_figure: false,
                area: None,
            }),
        }
    }

    /// Records what it is asked to set aside and take back, as the reader would.
    #[derive(Default)]
    struct Aside(Mutex<Vec<(u32, bool)>>);

    impl Enforcer for Aside {
        fn name(&self) -> String {
            "reader".into()
        }
        fn enforce(&self, d: &Decision) -> Result<bool, String> {
            let Some(c) = set_aside_by(d, [1, 2, 3]) else {
                return Ok(false);
            };
            self.0.lock().unwrap().push((c, true));
            Ok(true)
        }
        fn release(&self, d: &Decision) -> Result<(), String> {
            if let Some(c) = set_aside_by(d, [1, 2, 3]) {
                self.0.lock().unwrap().push((c, false));
            }
            Ok(())
        }
    }

    #[test]
    fn a_lone_event_reaches_the_ocsf_file_without_waiting_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.ocsf.jsonl");
        let w = Watch::open(
            dir.path(),
            "gw",
            Rules::default(),
            Arc::new(ManualClock::at(1_800_000_000)),
            &Outputs {
                ocsf: Some(path.clone()),
                syslog: None,
            },
            HashSet::new(),
        )
        .unwrap();
        // Two events in a row after a quiet while, then silence (no flush asked): the
        // second, written right after a flush, must not wait for a third to reach the disk.
        let event = |node: &str| Event {
            time_ms: 1_800_000_000_000,
            component: "gw".into(),
            kind: Kind::NodeAttestation {
                node: node.into(),
                isolated: false,
                verdict: "drifting: 0.1.0, retired for RUSTSEC-2026-0104".into(),
            },
        };
        std::thread::sleep(std::time::Duration::from_millis(600));
        w.observe(&event("node-2"));
        w.observe(&event("node-3"));
        let both = (0..100).any(|_| {
            let ocsf = std::fs::read_to_string(&path).unwrap_or_default();
            let found = ["node-2", "node-3"]
                .iter()
                .all(|n| ocsf.contains(&format!("node-attestation: {n} drifting")));
            if !found {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            found
        });
        assert!(
            both,
            "{}",
            std::fs::read_to_string(&path).unwrap_or_default()
        );
    }

    #[test]
    fn a_failed_proof_becomes_a_signed_decision_that_sets_the_custodian_aside_until_two_release_it()
    {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at(1_800_000_000));
        let w = Watch::open(
            dir.path(),
            "gw",
            Rules::default(),
            clock,
            &Outputs {
                ocsf: Some(dir.path().join("events.ocsf.jsonl")),
                syslog: None,
            },
            HashSet::new(),
        )
        .unwrap();
        let aside = Arc::new(Aside::default());
        w.add_enforcer(aside.clone());
        let failed = |t: u64| Event {
            time_ms: t,
            component: "gw".into(),
            kind: Kind::ProofFailure {
                custodian: 2,
                reason: "the DLEQ proof does not verify".into(),
            },
        };
        let t0 = 1_800_000_000_000;
        let made = w.observe(&failed(t0));
        assert_eq!(made.len(), 1, "{made:?}");
        let d = &made[0];
        assert_eq!(d.rule, "proof-failure");
        assert_eq!(d.target, Target::Node("custodian-2".into()));
        assert_eq!(d.until_ms - d.time_ms, 600_000);
        assert!(
            d.evidence[0].contains("proof of custodian 2 failed"),
            "{d:?}"
        );
        assert!(d.enforced_by.contains(&"reader".to_owned()), "{d:?}");
        d.verify(&verifying_key(dir.path()).unwrap()).unwrap();
        // The same custodian failing again while set aside is one decision, not two.
        assert!(w.observe(&failed(t0 + 1_000)).is_empty());
        assert_eq!(*aside.0.lock().unwrap(), vec![(2, true)]);
        w.approve_release(&d.id, "sec.amina", "share restored")
            .unwrap();
        w.approve_release(&d.id, "sec.youssef", "checked").unwrap();
        assert_eq!(*aside.0.lock().unwrap(), vec![(2, true), (2, false)]);
        // The OCSF writer is a thread of its own (detection never waits on a disk): its
        // line is awaited, not assumed.
        w.flush();
        let path = dir.path().join("events.ocsf.jsonl");
        let said = (0..250).any(|_| {
            let ocsf = std::fs::read_to_string(&path).unwrap_or_default();
            let found = ocsf
                .lines()
                .any(|l| l.contains("\"class_uid\":2004") && l.contains("proof-failure"));
            if !found {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            found
        });
        assert!(said, "no decision in {}", path.display());
    }

    #[test]
    fn a_decision_is_enforced_signed_logged_and_survives_a_restart_until_released_by_two() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::at(1_800_000_000));
        let open = || {
            Watch::open(
                dir.path(),
                "gw",
                Rules::default(),
                clock.clone(),
                &Outputs {
                    ocsf: Some(dir.path().join("events.ocsf.jsonl")),
                    syslog: None,
                },
                HashSet::new(),
            )
            .unwrap()
        };
        let w = open();
        let t0 = 1_800_000_000_000;
        let mut made = Vec::new();
        for i in 0..12 {
            made.extend(w.observe(&read("partner-x", &format!("p-{i}"), t0 + i * 100)));
        }
        assert_eq!(made.len(), 1, "{made:?}");
        let d = &made[0];
        assert_eq!(d.rule, "velocity");
        assert_eq!(d.enforced_by, vec!["gw".to_owned()]);
        let key = verifying_key(dir.path()).unwrap();
        d.verify(&key).unwrap();
        let actor = |id: &str| Actor {
            identity: id.into(),
            role: "partner".into(),
            institution: "bank".into(),
            serial: "01".into(),
            addr: "10.0.0.1".into(),
        };
        assert_eq!(
            w.check(&actor("partner-x"), false).unwrap_err().slug(),
            "quarantined"
        );
        assert!(w.check(&actor("partner-y"), false).is_ok());
        w.flush();
        drop(w);

        // Restart: the decision is replayed from the log and still refuses.
        let w = open();
        assert_eq!(
            w.check(&actor("partner-x"), false).unwrap_err().slug(),
            "quarantined"
        );
        assert!(matches!(
            w.approve_release(&d.id, "sec.amina", "confirmed with the partner"),
            Ok(ReleaseState::Pending { .. })
        ));
        assert!(
            w.check(&actor("partner-x"), false).is_err(),
            "one approval is not enough"
        );
        drop(w);
        let w = open();
        assert!(
            w.approve_release(&d.id, "sec.amina", "again").is_err(),
            "the same administrator twice, even across a restart"
        );
        assert!(matches!(
            w.approve_release(&d.id, "sec.youssef", "confirmed"),
            Ok(ReleaseState::Released { .. })
        ));
        assert!(w.check(&actor("partner-x"), false).is_ok());
        drop(w);
        let w = open();
        assert!(
            w.check(&actor("partner-x"), false).is_ok(),
            "released stays released"
        );
        let records = read_log(dir.path()).unwrap();
        assert_eq!(
            records.len(),
            4,
            "decision, two approvals, released: {records:?}"
        );
        let ocsf = std::fs::read_to_string(dir.path().join("events.ocsf.jsonl")).unwrap();
        assert!(ocsf.lines().any(|l| l.contains("\"class_uid\":2004")));
        assert_eq!(
            ocsf.lines()
                .filter(|l| l.contains("\"class_uid\":6005"))
                .count(),
            12
        );
    }
}
