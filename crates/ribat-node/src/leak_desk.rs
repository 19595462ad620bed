//! The node's leak desk: dumps the security team uploads from the console, scanned one
//! after another in the background (the work of `ribat leak scan`), each scan's state in
//! `HOME/leaks/<id>.json` and its report in `HOME/leaks/<id>/report/`.
//!
//! A dump is leaked personal data: it is deleted as soon as its scan ends (done or failed),
//! and a dump whose upload never finished is deleted at the next start. A node killed
//! while a dump waits or is scanned scans it again at its next start. The notification
//! list is written only once two distinct security administrators approved it, and each
//! fetch of it is recorded before its bytes leave.

use crate::embedded::Embedded;
use crate::error::Result;
use crate::leak::{ScanOptions, scan_into, write_report};
use ribat_gateway::leak_desk::{
    LeakCandidate, LeakDesk, LeakDeskError, LeakPhase, LeakReport, LeakState, Notification,
};
use ribat_leak::summary::Summary;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// How often a scan's progress is shown (in memory; the state file is written at the
/// start and the end).
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// Distinct administrators who must approve the notification list.
pub const NOTIFY_APPROVALS: usize = 2;
/// The candidates a report keeps.
const CANDIDATES_SHOWN: usize = 5;

/// `HOME/leaks`.
pub fn dir(home: &crate::home::Home) -> PathBuf {
    home.root().join("leaks")
}

/// The node's leak desk.
pub struct NodeLeaks {
    dir: PathBuf,
    jobs: Arc<Mutex<BTreeMap<String, LeakState>>>,
    queue: Mutex<mpsc::Sender<String>>,
    node: Arc<Embedded>,
    // Approvals and fetches one at a time: two arriving together must both count.
    notifying: Mutex<()>,
}

impl std::fmt::Debug for NodeLeaks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeLeaks({})", self.dir.display())
    }
}

fn state_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

fn failed(e: impl std::fmt::Display) -> LeakDeskError {
    LeakDeskError::Failed(e.to_string())
}

fn save(dir: &Path, s: &LeakState) -> std::result::Result<(), LeakDeskError> {
    let json = serde_json::to_vec_pretty(s).map_err(failed)?;
    ribat_identity::ca::write_file(&state_file(dir, &s.id), &json, true)
        .map_err(|e| failed(format!("cannot write the scan's state: {e}")))
}

/// A directory only this node's user may enter (dumps and lists are personal data).
fn private_dir(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

fn now_s() -> i64 {
    i64::try_from(ribat_clock::now_secs()).unwrap_or(i64::MAX)
}

/// The dump of scan `id` (its directory also holds the report).
fn dump_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(id).join("dump")
}

fn report_dir(dir: &Path, id: &str) -> PathBuf {
    dir.join(id).join("report")
}

/// Deletes a dump, saying so when it cannot (it is leaked personal data).
fn forget_dump(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => eprintln!(
            "warning: cannot delete {} ({e}); it is a leaked dump in plaintext: delete it by hand",
            path.display()
        ),
    }
}

pub use crate::jobs::valid_id;

impl NodeLeaks {
    /// Opens `HOME/leaks`, takes up what a previous run left queued or half scanned, and
    /// starts the scanner over `node`.
    pub fn start(home: &crate::home::Home, node: Arc<Embedded>) -> Result<Arc<Self>> {
        let dir = dir(home);
        private_dir(&dir)?;
        let jobs = crate::jobs::load_states::<LeakState>(&dir, "a leak scan's state", |s| &s.id)?;
        let unfinished: Vec<String> = jobs
            .values()
            .filter(|s| matches!(s.phase, LeakPhase::Queued | LeakPhase::Scanning))
            .map(|s| s.id.clone())
            .collect();
        // A dump whose scan ended, or that never finished arriving (no state file: never
        // acknowledged), is plaintext nobody will scan.
        for e in std::fs::read_dir(&dir)? {
            let path = e?.path();
            let id = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_owned();
            if path.is_dir() && !unfinished.contains(&id) {
                forget_dump(&path.join("dump"));
                forget_dump(&path.join("dump.partial"));
                if !jobs.contains_key(&id) {
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
        }
        let jobs = Arc::new(Mutex::new(jobs));
        let worker = Scanner {
            dir: dir.clone(),
            jobs: jobs.clone(),
            node: node.clone(),
        };
        let tx = crate::jobs::start_worker(
            "leak-scans",
            unfinished,
            |n| {
                format!(
                    "leaks: {n} dump(s) left queued or half scanned by the last run; scanning them again"
                )
            },
            move |id| worker.scan(id),
        )?;
        let desk = Arc::new(Self {
            dir,
            jobs,
            queue: Mutex::new(tx),
            node,
            notifying: Mutex::new(()),
        });
        Ok(desk)
    }

    fn known(&self, id: &str) -> std::result::Result<LeakState, LeakDeskError> {
        if !valid_id(id) {
            return Err(LeakDeskError::NotFound(
                "a scan id is 16 hexadecimal digits".into(),
            ));
        }
        crate::jobs::lock(&self.jobs)
            .get(id)
            .cloned()
            .ok_or_else(|| LeakDeskError::NotFound(format!("no leak scan {id} on this node")))
    }

    fn put(&self, s: &LeakState) -> std::result::Result<(), LeakDeskError> {
        save(&self.dir, s)?;
        crate::jobs::lock(&self.jobs).insert(s.id.clone(), s.clone());
        Ok(())
    }
}

impl LeakDesk for NodeLeaks {
    fn place(&self) -> std::result::Result<(String, PathBuf), LeakDeskError> {
        let id = crate::jobs::new_id().map_err(failed)?;
        let d = self.dir.join(&id);
        private_dir(&d).map_err(|e| failed(format!("cannot keep the dump: {e}")))?;
        Ok((id.clone(), dump_path(&self.dir, &id)))
    }

    fn queue(
        &self,
        id: &str,
        file: &str,
        bytes: u64,
        sha256: &str,
        by: &str,
    ) -> std::result::Result<LeakState, LeakDeskError> {
        let s = LeakState {
            id: id.to_owned(),
            file: ribat_gateway::leak_desk::clean_file_name(file),
            bytes,
            sha256: sha256.to_owned(),
            by: by.to_owned(),
            uploaded_at: now_s(),
            phase: LeakPhase::Queued,
            rows_done: 0,
            report: None,
            error: None,
            approvals: Vec::new(),
            notification: None,
        };
        // Durable before it is acknowledged: a restart scans it from this file.
        self.put(&s)?;
        crate::jobs::lock(&self.queue)
            .send(id.to_owned())
            .map_err(|_| {
                failed(
                    "the scanner stopped; restart the node (the dump is kept and will be scanned)",
                )
            })?;
        Ok(s)
    }

    fn state(&self, id: &str) -> std::result::Result<LeakState, LeakDeskError> {
        self.known(id)
    }

    fn list(&self) -> std::result::Result<Vec<LeakState>, LeakDeskError> {
        // Ids sort in upload order.
        Ok(crate::jobs::lock(&self.jobs)
            .values()
            .rev()
            .cloned()
            .collect())
    }

    fn approve_notification(
        &self,
        id: &str,
        admin: &str,
    ) -> std::result::Result<LeakState, LeakDeskError> {
        let _one = crate::jobs::lock(&self.notifying);
        let mut s = self.known(id)?;
        if s.phase != LeakPhase::Done {
            return Err(LeakDeskError::Refused(format!(
                "scan {id} has not finished; the notification list follows its report"
            )));
        }
        if s.notification.is_some() {
            return Err(LeakDeskError::Refused(format!(
                "the notification list of scan {id} is already written"
            )));
        }
        if s.approvals.iter().any(|a| a == admin) {
            return Err(LeakDeskError::Refused(format!(
                "{admin} already approved the notification list of scan {id}; a second administrator must approve"
            )));
        }
        s.approvals.push(admin.to_owned());
        if s.approvals.len() < NOTIFY_APPROVALS {
            self.put(&s)?;
            return Ok(s);
        }
        // Counted now from the report (record ids only); the list itself is made, through
        // the custodians, at each fetch, and never kept on the node's disk (I4).
        let persons = crate::leak::affected_persons(&report_dir(&self.dir, id))
            .map_err(|e| failed(e.chain()))?;
        s.notification = Some(Notification {
            persons: persons.len() as u64,
            approved_at: now_s(),
            fetched: Vec::new(),
        });
        self.put(&s)?;
        Ok(s)
    }

    fn fetch_notification(
        &self,
        id: &str,
        who: &str,
    ) -> std::result::Result<Vec<u8>, LeakDeskError> {
        let _one = crate::jobs::lock(&self.notifying);
        let mut s = self.known(id)?;
        let Some(n) = s.notification.as_mut() else {
            return Err(LeakDeskError::Refused(format!(
                "the notification list of scan {id} is not written: two security administrators must approve it"
            )));
        };
        // Recorded before anything is decrypted; the custodians and the audit log record
        // each person's identity read under `breach-notification`.
        n.fetched.push((who.to_owned(), now_s()));
        let approvers = [s.approvals[0].clone(), s.approvals[1].clone()];
        self.put(&s)?;
        let report = report_dir(&self.dir, id);
        crate::leak::affected_persons(&report)
            .and_then(|persons| {
                crate::leak::notification_list(
                    &self.node,
                    &persons,
                    [approvers[0].as_str(), approvers[1].as_str()],
                )
            })
            .map_err(|e| failed(e.chain()))
    }
}

/// The background side: scans one dump at a time.
struct Scanner {
    dir: PathBuf,
    jobs: Arc<Mutex<BTreeMap<String, LeakState>>>,
    node: Arc<Embedded>,
}

impl Scanner {
    /// Changes a scan's state in memory, and on disk when `durable`.
    fn update(&self, id: &str, durable: bool, f: impl FnOnce(&mut LeakState)) {
        let snapshot = {
            let mut jobs = crate::jobs::lock(&self.jobs);
            let Some(s) = jobs.get_mut(id) else { return };
            f(s);
            s.clone()
        };
        if durable && let Err(e) = save(&self.dir, &snapshot) {
            eprintln!("warning: leak scan {id}: {e}");
        }
    }

    fn scan(&self, id: &str) {
        self.update(id, true, |s| {
            s.phase = LeakPhase::Scanning;
            s.rows_done = 0;
            s.error = None;
        });
        let dump = dump_path(&self.dir, id);
        let result = if dump.exists() {
            self.run(id, &dump)
        } else {
            Err(crate::err!(
                "the dump is no longer on this node's disk; upload it again"
            ))
        };
        // Scanned, or to be uploaded again: either way the leaked rows go before anyone is
        // told the scan ended.
        forget_dump(&dump);
        match result {
            Ok(report) => self.update(id, true, |s| {
                s.phase = LeakPhase::Done;
                s.rows_done = report.rows;
                s.report = Some(report);
            }),
            Err(e) => {
                eprintln!("leak scan {id} failed: {}", e.chain());
                self.update(id, true, |s| {
                    s.phase = LeakPhase::Failed;
                    s.error = Some(format!("{}; upload the dump again", e.chain()));
                });
            }
        }
    }

    fn run(&self, id: &str, dump: &Path) -> Result<LeakReport> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let opts = ScanOptions {
            files: vec![dump.to_owned()],
            encoding: None,
            threads,
            attribute: true,
            matching: crate::leak::Matching::Auto,
            checks: crate::leak::Checks::Records,
        };
        let report = report_dir(&self.dir, id);
        let mut done = 0u64;
        let mut last = Instant::now();
        let mut scan = scan_into(&self.node, &opts, Some(&report), &mut |_| {
            done += 1;
            if last.elapsed() >= PROGRESS_EVERY {
                last = Instant::now();
                self.update(id, false, |s| s.rows_done = done);
            }
        })?;
        write_report(&report, &scan)?;
        let out = report_of(&scan.summary);
        scan.finish_cleanup();
        Ok(out)
    }
}

/// Every class a report shows, in the order of the chart.
const CLASSES: [&str; 7] = [
    "genuine-current",
    "genuine-older",
    "altered",
    "fabricated",
    "honey",
    "canary",
    "unmatched",
];

/// The console's view of a scan's summary.
fn report_of(s: &Summary) -> LeakReport {
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    for f in &s.files {
        for (why, n) in &f.skipped {
            *skipped.entry(why.clone()).or_default() += n;
        }
    }
    LeakReport {
        headline: s.headline(),
        rows: s.rows,
        classes: CLASSES
            .iter()
            .map(|c| ((*c).to_owned(), s.classes.get(*c).copied().unwrap_or(0)))
            .collect(),
        affected_persons: s.affected_persons,
        altered_fields: s.altered_fields.clone().into_iter().collect(),
        skipped: skipped.into_iter().collect(),
        refused: s
            .refused
            .iter()
            .map(|(_, why)| ("dump".to_owned(), why.clone()))
            .collect(),
        honey: s.honey.clone(),
        canaries: s.canaries.clone().into_iter().collect(),
        candidates: s
            .candidates
            .iter()
            .take(CANDIDATES_SHOWN)
            .map(|c| LeakCandidate {
                identity: c.identity.clone(),
                role: c.role.clone(),
                covered: c.covered,
                of: c.of,
                chance_log10: c.chance_log10,
                first_ms: c.first_ms,
                last_ms: c.last_ms,
            })
            .collect(),
        latest_period_in_dump: s.window.latest_period_in_dump.clone(),
        latest_period_in_vault: s.window.latest_period_in_vault.clone(),
        seconds: s.seconds,
    }
}
