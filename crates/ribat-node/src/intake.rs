//! The node's intake: files the gateway received (`POST /v1/intake`) imported one after
//! another in the background, each with its state in `HOME/intake/<id>.json`.
//!
//! A file is acknowledged (`202`) only once it is on disk and synced, and its state file
//! says `queued`; a node killed while files wait or import takes them up again at its next
//! start, in arrival order (the importer stores nothing twice, so a file cut off halfway is
//! finished, not doubled). Once imported (or failed) the file is deleted: the register in
//! plaintext does not stay on the node's disk (I4); its state file names no person.

use crate::embedded::Embedded;
use crate::error::Result;
use crate::home::Home;
use ribat_gateway::intake::{IntakeDesk, IntakeError, IntakeReject, IntakeState};
use ribat_import::importer::Importer;
use ribat_import::records::RecordSealer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Refused lines kept in an intake's state (the rest are counted).
pub const REJECTS_SHOWN: usize = 100;
/// How often an import's progress is written to its state file.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// `HOME/intake`.
pub fn dir(home: &Home) -> PathBuf {
    home.root().join("intake")
}

/// The node's intake desk.
pub struct NodeIntake {
    dir: PathBuf,
    jobs: Arc<Mutex<BTreeMap<String, IntakeState>>>,
    queue: Mutex<mpsc::Sender<String>>,
}

impl std::fmt::Debug for NodeIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeIntake({})", self.dir.display())
    }
}

fn state_file(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

fn save(dir: &Path, s: &IntakeState) -> std::result::Result<(), IntakeError> {
    let json = serde_json::to_vec_pretty(s).map_err(|e| IntakeError::Failed(e.to_string()))?;
    ribat_identity::ca::write_file(&state_file(dir, &s.id), &json, false)
        .map_err(|e| IntakeError::Failed(format!("cannot write the intake's state: {e}")))
}

/// Deletes an intake's file (its directory), saying so when it cannot.
fn forget(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!(
            "warning: cannot delete {} ({e}); it holds an intake file in plaintext: delete it by hand",
            dir.display()
        );
    }
}

impl NodeIntake {
    /// Opens `HOME/intake`, takes up what a previous run left queued or half imported,
    /// and starts the worker that imports into `node`.
    pub fn start(home: &Home, node: Arc<Embedded>) -> Result<Arc<Self>> {
        let dir = dir(home);
        std::fs::create_dir_all(&dir)?;
        let jobs = crate::jobs::load_states::<IntakeState>(&dir, "an intake state", |s| &s.id)?;
        let unfinished: Vec<String> = jobs
            .values()
            .filter(|s| s.state == "queued" || s.state == "importing")
            .map(|s| s.id.clone())
            .collect();
        // A file whose import ended, or that never finished arriving (no state file: a
        // crash mid-upload, never acknowledged), holds plaintext nobody will import.
        for e in std::fs::read_dir(&dir)? {
            let path = e?.path();
            let id = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if path.is_dir() && !unfinished.iter().any(|u| u == id) {
                forget(&path);
            }
        }
        let jobs = Arc::new(Mutex::new(jobs));
        let worker = Worker {
            dir: dir.clone(),
            jobs: jobs.clone(),
            node,
        };
        let tx = crate::jobs::start_worker(
            "intake",
            unfinished,
            |n| {
                format!(
                    "intake: {n} file(s) left queued or half imported by the last run; importing them again"
                )
            },
            move |id| worker.import(id),
        )?;
        let desk = Arc::new(Self {
            dir,
            jobs,
            queue: Mutex::new(tx),
        });
        Ok(desk)
    }
}

impl IntakeDesk for NodeIntake {
    fn place(&self, file: &str) -> std::result::Result<(String, PathBuf), IntakeError> {
        let id = crate::jobs::new_id().map_err(IntakeError::Failed)?;
        let d = self.dir.join(&id);
        std::fs::create_dir_all(&d)
            .map_err(|e| IntakeError::Failed(format!("cannot keep the file: {e}")))?;
        Ok((id, d.join(file)))
    }

    fn queue(
        &self,
        id: &str,
        file: &str,
        bytes: u64,
        sha256: &str,
        by: &str,
    ) -> std::result::Result<IntakeState, IntakeError> {
        let s = IntakeState {
            id: id.to_owned(),
            file: file.to_owned(),
            bytes,
            sha256: sha256.to_owned(),
            by: by.to_owned(),
            state: "queued".into(),
            done: 0,
            total: 0,
            stored: 0,
            already: 0,
            rejected: 0,
            rejects: Vec::new(),
            error: None,
        };
        // Durable before it is acknowledged: a restart takes it up from this file.
        save(&self.dir, &s)?;
        crate::jobs::lock(&self.jobs).insert(id.to_owned(), s.clone());
        crate::jobs::lock(&self.queue)
            .send(id.to_owned())
            .map_err(|_| IntakeError::Failed("the intake worker stopped; restart the node (the file is kept and will be imported)".into()))?;
        Ok(s)
    }

    fn state(&self, id: &str) -> std::result::Result<IntakeState, IntakeError> {
        crate::jobs::lock(&self.jobs)
            .get(id)
            .cloned()
            .ok_or_else(|| IntakeError::NotFound(format!("no intake {id} on this node")))
    }
}

/// The background side: imports one queued file at a time.
struct Worker {
    dir: PathBuf,
    jobs: Arc<Mutex<BTreeMap<String, IntakeState>>>,
    node: Arc<Embedded>,
}

impl Worker {
    /// Changes an intake's state in memory, and on disk when `durable`.
    fn update(&self, id: &str, durable: bool, f: impl FnOnce(&mut IntakeState)) {
        let snapshot = {
            let mut jobs = crate::jobs::lock(&self.jobs);
            let Some(s) = jobs.get_mut(id) else { return };
            f(s);
            s.clone()
        };
        if !durable {
            return;
        }
        if let Err(e) = save(&self.dir, &snapshot) {
            eprintln!("warning: intake {id}: {e}");
        }
    }

    fn import(&self, id: &str) {
        let Some(file) = crate::jobs::lock(&self.jobs)
            .get(id)
            .map(|s| s.file.clone())
        else {
            return;
        };
        self.update(id, true, |s| {
            s.state = "importing".into();
            s.error = None;
        });
        let path = self.dir.join(id).join(&file);
        let result = self.run(id, &path);
        // Imported, or to be sent again: either way the plaintext goes, before anyone is
        // told the import ended.
        forget(&self.dir.join(id));
        match result {
            Ok(summary) => self.update(id, true, |s| {
                let c = [summary.employers, summary.persons, summary.declarations];
                s.state = "done".into();
                s.stored = c.iter().map(|c| c.stored).sum();
                s.already = c.iter().map(|c| c.already).sum();
                s.rejected = summary.rejects.len() as u64;
                s.rejects = summary
                    .rejects
                    .iter()
                    .take(REJECTS_SHOWN)
                    .map(|r| IntakeReject {
                        line: r.line as u64,
                        reason: r.reason.clone(),
                    })
                    .collect();
            }),
            Err(e) => {
                eprintln!("intake {id} ({file}) failed: {}", e.chain());
                self.update(id, true, |s| {
                    s.state = "failed".into();
                    s.error = Some(format!(
                        "{}; send the file again (rows already stored are not stored twice)",
                        e.chain()
                    ));
                });
            }
        }
    }

    fn run(&self, id: &str, path: &Path) -> Result<ribat_import::importer::Summary> {
        let leak = self.node.leak_digester(&format!("intake-{id}"))?;
        let sealer =
            RecordSealer::new(&self.node.group, &self.node.vault.index)?.with_leak_digests(&leak);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let importer = Importer::new(self.node.vault.store.as_ref(), &sealer, threads, 5_000);
        let mut last = Instant::now();
        let mut on_progress = |p: ribat_import::importer::Progress| {
            let durable = last.elapsed() >= PROGRESS_EVERY;
            if durable {
                last = Instant::now();
            }
            self.update(id, durable, |s| {
                s.done = p.done;
                s.total = p.total;
            });
        };
        Ok(importer.run(&[path.to_owned()], &mut on_progress)?)
    }
}

/// The files under `inputs` in the order the importer needs them: employers, persons,
/// then declarations (sorted); other files are refused before anything is sent.
pub fn files_to_send(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let ordered = ribat_import::importer::in_import_order(inputs)?;
    let name = |p: &Path| {
        p.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned()
    };
    // The gateway takes files by their exact names (`old-persons.csv` is not one): those
    // it would refuse are named here, before anything is sent.
    let (take, refused): (Vec<&PathBuf>, Vec<&PathBuf>) = ordered
        .files()
        .partition(|p| ribat_gateway::intake::valid_file_name(&name(p)));
    for s in refused.into_iter().chain(&ordered.skipped) {
        eprintln!(
            "skipped {}: the intake takes employers.csv, persons.csv and DS_<affiliation>_<MMAAAA>.txt",
            s.display()
        );
    }
    if take.is_empty() {
        crate::bail!(
            "nothing to send: no employers.csv, persons.csv or DS_<affiliation>_<MMAAAA>.txt under the inputs"
        );
    }
    Ok(take.into_iter().cloned().collect())
}

/// `ribat import --gateway ADDR --identity DIR FILES…`: each file sent to the running
/// gateway's intake as the identity in DIR (role `intake`), then followed until the node
/// has imported it, with progress; the next file is sent once the previous is done, so
/// persons are registered before their declarations arrive.
pub fn send(gateway: &str, identity: &Path, inputs: &[PathBuf]) -> Result<Vec<IntakeState>> {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use std::io::IsTerminal;
    let files = files_to_send(inputs)?;
    let cfg = crate::api_client::config_in(identity)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let host = crate::mesh::host_of(gateway).to_owned();
    let mut done = Vec::new();
    for f in &files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let bytes =
            std::fs::read(f).map_err(|e| crate::err!("cannot read {}: {e}", f.display()))?;
        let size = bytes.len();
        let sent = rt.block_on(async {
            let mut c =
                ribat_net::client::Connection::open(cfg.clone(), gateway, &host, false).await?;
            let token = crate::api_client::token(&mut c, 300).await?;
            let path = format!("/v1/intake?purpose=register-intake&file={name}");
            let r = c
                .send_raw(
                    "POST",
                    &path,
                    Some(&token),
                    bytes,
                    "application/octet-stream",
                )
                .await?;
            Ok::<_, crate::NodeError>((r.status, r.json()))
        })?;
        if sent.0 != 202 {
            crate::bail!(
                "{}: the gateway refused it (HTTP {}): {}",
                f.display(),
                sent.0,
                sent.1["detail"].as_str().unwrap_or("no detail")
            );
        }
        let mut state: IntakeState = serde_json::from_value(sent.1)?;
        eprintln!(
            "{}: {size} bytes kept by the node as intake {} (sha256 {}), importing…",
            f.display(),
            state.id,
            state.sha256
        );
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows  eta {eta}",
            ) {
                b.set_style(style);
            }
            b
        });
        while state.state == "queued" || state.state == "importing" {
            std::thread::sleep(Duration::from_millis(300));
            let id = state.id.clone();
            let r = rt.block_on(async {
                let mut c =
                    ribat_net::client::Connection::open(cfg.clone(), gateway, &host, false).await?;
                let token = crate::api_client::token(&mut c, 60).await?;
                let r = c
                    .send("GET", &format!("/v1/intake/{id}"), Some(&token), None)
                    .await?;
                Ok::<_, crate::NodeError>((r.status, r.json()))
            })?;
            if r.0 != 200 {
                crate::bail!(
                    "intake {id}: the gateway answered HTTP {}: {}",
                    r.0,
                    r.1["detail"].as_str().unwrap_or("no detail")
                );
            }
            state = serde_json::from_value(r.1)?;
            if let Some(b) = &bar {
                b.set_length(state.total);
                b.set_position(state.done);
            }
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if state.state == "failed" {
            crate::bail!(
                "{}: the import failed: {}",
                f.display(),
                state.error.as_deref().unwrap_or("no reason given")
            );
        }
        println!(
            "{}: {} records stored, {} already stored, {} line(s) refused",
            f.display(),
            state.stored,
            state.already,
            state.rejected
        );
        for r in &state.rejects {
            println!("  line {}: {}", r.line, r.reason);
        }
        if state.rejected as usize > state.rejects.len() {
            println!(
                "  … and {} more",
                state.rejected as usize - state.rejects.len()
            );
        }
        done.push(state);
    }
    Ok(done)
}
