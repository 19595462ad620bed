//! The scenarios that span days against node processes: `ribat simulate --mesh N` for
//! `legit-week`, `low-and-slow` and `partner-review`.
//!
//! The nodes follow a lab clock (`ribat node --lab-clock FILE`: the system's time plus an
//! offset in FILE) that this run moves forward exactly as the embedded simulation moves its
//! own — at real speed while requests are on the wire, a jump over an idle night only when
//! nothing is in flight — so the same jobs, dispatch and scoring run against the mesh:
//! tokens, quotas, detectors' windows, decisions and review dates all see the simulated
//! week. Certificates, Raft and attestation keep real time.
//!
//! One lab condition, said in the report: custodians learn what a gateway audited when they
//! cosign its checkpoints (every 2 s of real time), so a jump of the clock between an answer
//! and its cosigning would look to their disagreement detector like an answer nobody
//! audited. The run puts in force, through the log with two administrators like any rules
//! change, rules whose disagreement grace outlasts the longest jump.

use super::*;
use crate::bench::node::{RunningMesh, running_mesh};
use ribat_node::mesh::Document;
use std::sync::atomic::AtomicI64;

/// The disagreement grace the lab's rules give (longer than any idle stretch a scenario
/// skips: a weekend, or partner-review's quiet days).
pub(super) const LAB_DISAGREEMENT_GRACE_MS: u64 = 40 * DAY;

/// A written offset the nodes already hold within this much is not written again (the
/// simulated and the system clock drift apart by a millisecond now and then).
const FOLLOW_SLACK_MS: i64 = 10;

/// Identities granted per log entry.
const GRANT_CHUNK: usize = 200;

/// What a run on a lab clock adds to the report.
#[derive(Debug, Serialize)]
pub(super) struct LabReport {
    pub(super) nodes: usize,
    /// How far ahead of the system's clock the lab's was at the end, ms (negative: behind;
    /// the simulated week sits on fixed dates).
    pub(super) clock_ahead_ms: i64,
    /// The members that said, at the end, they date by that clock (all of them, or the run
    /// measured something else than it claims).
    pub(super) nodes_on_the_lab_clock: usize,
    /// The lab's one change to the nodes' rules, put in force through the log.
    pub(super) disagreement_grace_ms: u64,
}

fn signed(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The mesh a lab run drives.
pub(super) struct MeshLab {
    mesh: RunningMesh,
    clock_file: PathBuf,
    /// The offset last written, ms.
    written_ms: AtomicI64,
    /// Bytes of each node's log already read for findings.
    log_read: Mutex<Vec<u64>>,
    /// Each caller's certificate serial, by name (a re-certification names a serial).
    serials: BTreeMap<String, String>,
}

impl MeshLab {
    /// Moves the nodes' clock to `clock`'s, and waits until every reading of it on the nodes
    /// sees the move.
    pub(super) fn follow(&self, clock: &SimClock) -> Result<()> {
        let offset = signed(clock.now_ms()) - signed(ribat_clock::real_ms());
        if offset <= self.written_ms.load(Ordering::SeqCst) + FOLLOW_SLACK_MS {
            return Ok(());
        }
        ribat_clock::write_offset(&self.clock_file, offset).map_err(|e| ribat_node::err!("{e}"))?;
        self.written_ms.store(offset, Ordering::SeqCst);
        std::thread::sleep(ribat_clock::LAB_REFRESH * 3);
        Ok(())
    }

    /// The lab's part of the report, the members asked how far ahead they date.
    pub(super) fn report(&self) -> Result<LabReport> {
        let ahead = self.written_ms.load(Ordering::SeqCst);
        let members = ribat_node::mesh::status(&self.mesh.dirs[0])?;
        let on_it = members
            .iter()
            .filter_map(|m| m.status.as_ref()?.lab_clock_ms)
            .filter(|ms| *ms >= ahead - FOLLOW_SLACK_MS)
            .count();
        Ok(LabReport {
            nodes: self.mesh.dirs.len(),
            clock_ahead_ms: ahead,
            nodes_on_the_lab_clock: on_it,
            disagreement_grace_ms: LAB_DISAGREEMENT_GRACE_MS,
        })
    }

    /// Every node's decisions, each once (the earliest enforcement of each).
    pub(super) fn decisions(&self) -> Result<Vec<Decision>> {
        let mut by_id: BTreeMap<String, Decision> = BTreeMap::new();
        for dir in &self.mesh.dirs {
            for r in ribat_gateway::watch::read_log(&dir.join("decisions"))? {
                if let ribat_gateway::watch::Record::Decision(d) = r {
                    let keep = by_id.get(&d.id).is_none_or(|k| {
                        d.enforced_ms.unwrap_or(u64::MAX) < k.enforced_ms.unwrap_or(u64::MAX)
                    });
                    if keep {
                        by_id.insert(d.id.clone(), *d);
                    }
                }
            }
        }
        Ok(by_id.into_values().collect())
    }

    /// The rules the nodes started with (which roles are essential).
    pub(super) fn rules_file(&self) -> PathBuf {
        self.mesh.dirs[0].join(ribat_node::serve::RULES_FILE)
    }

    /// The first ceremony administrator re-certifies `name` until `until_s`, through the
    /// log (`ribat mesh recertify`).
    pub(super) fn recertify(&self, name: &str, until_s: i64) -> Result<()> {
        let serial = self
            .serials
            .get(name)
            .with_context(|| format!("{name} was never granted"))?;
        let admins = ribat_node::mesh::MeshFile::read(&self.mesh.dirs[0])?.admins;
        let admin = admins.first().context("the mesh has no administrator")?;
        let key = self
            .mesh
            .out
            .join("admins")
            .join(format!("{}.key", admin.name));
        // Proposing runs a runtime of its own: not on the dispatcher's.
        let dir = &self.mesh.dirs[0];
        std::thread::scope(|s| {
            s.spawn(|| {
                ribat_node::grants::recertify(
                    dir,
                    &key,
                    &admin.name,
                    serial,
                    until_s,
                    "the simulation's review of the contract",
                )
            })
            .join()
            .map_err(|_| ribat_node::err!("the re-certification's thread failed"))?
        })?;
        Ok(())
    }

    /// The identities named by review-due findings the nodes logged since the last call.
    pub(super) fn new_findings(&self) -> Vec<String> {
        const MARK: &str = "finding: review due — the access of ";
        let Ok(mut read) = self.log_read.lock() else {
            return Vec::new();
        };
        let mut names = Vec::new();
        for (dir, done) in self.mesh.dirs.iter().zip(read.iter_mut()) {
            // Only what the log gained (it grows for the whole run), whole lines only.
            let mut fresh = Vec::new();
            let read_on = std::fs::File::open(dir.join("node.log")).and_then(|mut f| {
                use std::io::{Read, Seek};
                f.seek(std::io::SeekFrom::Start(*done))?;
                f.read_to_end(&mut fresh)
            });
            if read_on.is_err() {
                continue;
            }
            let whole = fresh.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            for line in String::from_utf8_lossy(&fresh[..whole]).lines() {
                if let Some(rest) = line.split(MARK).nth(1)
                    && let Some(name) = rest.split(" (").next()
                {
                    names.push(name.to_owned());
                }
            }
            *done += whole as u64;
        }
        names.sort();
        names.dedup();
        names
    }
}

/// A mesh of `nodes` processes on a lab clock, the fund imported, the scenario's callers
/// issued and granted through the log, the lab's rules in force on every node.
pub(super) fn build(home: &Home, o: &Options, nodes: usize, say: &dyn Fn(&str)) -> Result<Built> {
    if nodes < 3 {
        bail!("--mesh: at least 3 nodes (a threshold of 2 needs a third to survive a loss)");
    }
    let dir = fresh_dir(home, "simulate-lab")?;
    let g = generate(&dir, o, say)?;
    let (first_month, uploads) = (g.ebds_of(&g.first), g.ebds_of(&g.second));
    let (scale, window) = plan(o, &g.fund, ribat_clock::real_ms());
    // The nodes start an hour before the simulated window (on its fixed dates, ahead of
    // today or behind it): the callers are granted, with their review dates, in lab time.
    let clock_file = dir.join("lab-clock");
    let start = signed(window.0.saturating_sub(HOUR)) - signed(ribat_clock::real_ms());
    ribat_clock::write_offset(&clock_file, start).map_err(|e| ribat_node::err!("{e}"))?;
    // This process follows it too: what it signs and asks of the nodes while it sets the
    // mesh up (the import through node 1's directory, the grants) is dated as they date.
    ribat_clock::follow(&clock_file).map_err(|e| ribat_node::err!("{e}"))?;
    let mut files = vec![g.source.join("employers.csv"), g.source.join("persons.csv")];
    files.extend(first_month.into_iter().map(|(_, p)| p));
    let figures = g.source.join("ribat-only/sensitive.csv");
    let mesh = running_mesh(
        &dir,
        nodes,
        "sec.sim",
        &files,
        Some(&figures),
        Some(&clock_file),
        say,
    )
    .map_err(|e| ribat_node::err!("{e}"))?;
    let fund = g.fund;

    let specs = callers(o.scenario, scale, &fund);
    say(&format!(
        "issuing {} identities and granting them through the log…",
        specs.len()
    ));
    let deployment = ribat_node::mesh::deployment_home(&mesh.out);
    let ca = crate::identity::open_ca(&deployment)?;
    let mut actors = Vec::with_capacity(specs.len());
    let mut issued = Vec::with_capacity(specs.len());
    for (k, (name, role, inst, hostile)) in specs.into_iter().enumerate() {
        let d = crate::identity::add_client_quiet(&ca, &deployment, &name, role.name(), &inst)?;
        // Honest callers spread over every gateway; the attacker uses node 1's.
        let gateway = match hostile {
            true => mesh.gateway(1),
            false => mesh.gateways[k % mesh.gateways.len()].1.clone(),
        };
        actors.push(Actor {
            name,
            role,
            hostile,
            cfg: crate::api_client::config_in(&d)?,
            gateway,
            conn: tokio::sync::Mutex::new(None),
        });
        issued.push(d);
    }
    // Third parties' review dates as the scenario wants them; everyone else's grant carries
    // one it never reaches.
    let review_dates = reviews::dates(o.scenario, &actors, window);
    let mut by_date: BTreeMap<i64, Vec<PathBuf>> = BTreeMap::new();
    for (a, d) in actors.iter().zip(issued) {
        let due_ms = review_dates
            .get(&a.name)
            .copied()
            .unwrap_or(window.1 + 60 * DAY);
        by_date
            .entry(i64::try_from(due_ms / 1000)?)
            .or_default()
            .push(d);
    }
    for (due, certs) in &by_date {
        for chunk in certs.chunks(GRANT_CHUNK) {
            ribat_node::grants::grant_by_ceremony_admins_until(
                &mesh.out,
                &mesh.dirs[0],
                chunk,
                "the simulation's callers",
                *due,
            )?;
        }
    }
    let serials = ribat_node::grants::list(&mesh.dirs[0])?
        .into_iter()
        .map(|i| (i.registration.name, i.registration.serial))
        .collect();
    lab_rules(&mesh, &dir, say)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The simulated clock reads what the nodes' read now; the run moves both.
    let now = ribat_clock::real_ms().saturating_add_signed(start);
    let clock = Arc::new(SimClock::at_ms(now));
    // The callers date their signatures by the simulated clock, as the nodes check them.
    for a in &mut actors {
        let c = clock.clone();
        a.cfg.now = Some(Arc::new(move || c.now()));
    }
    let log_read = Mutex::new(vec![0; mesh.dirs.len()]);
    let lab = MeshLab {
        mesh,
        clock_file,
        written_ms: AtomicI64::new(start),
        log_read,
        serials,
    };
    // Findings logged before the simulated window are not the run's.
    lab.new_findings();
    Ok((
        World::new(
            fund,
            uploads,
            actors,
            clock,
            Place::Mesh(lab),
            review_dates,
            reviews::Reviews::default(),
        ),
        rt,
        scale,
        window,
    ))
}

/// Puts in force, through the log with the ceremony's two administrators, the nodes' rules
/// with a disagreement grace of [`LAB_DISAGREEMENT_GRACE_MS`]; waits until every node's
/// gateway and custodian detect by them.
fn lab_rules(mesh: &RunningMesh, dir: &std::path::Path, say: &dyn Fn(&str)) -> Result<()> {
    say(
        "two administrators put the lab's rules in force (disagreement grace outlasting the clock's jumps)…",
    );
    let started = match std::fs::read_to_string(mesh.dirs[0].join(ribat_node::serve::RULES_FILE)) {
        Ok(text) => ribat_detect::Rules::from_json(&text).map_err(|e| ribat_node::err!("{e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => ribat_detect::Rules::default(),
        Err(e) => return Err(e.into()),
    };
    let mut rules: serde_json::Value = serde_json::from_str(&started.to_json())?;
    rules["disagreement"]["grace-ms"] = LAB_DISAGREEMENT_GRACE_MS.into();
    let file = dir.join("lab-rules.json");
    std::fs::write(&file, serde_json::to_string_pretty(&rules)?)?;
    let statement = ribat_node::mesh::document_statement(Document::Rules, &file, 1)?;
    let admins = ribat_node::mesh::MeshFile::read(&mesh.dirs[0])?.admins;
    let mut approvals = Vec::new();
    for a in admins.iter().take(2) {
        let key = mesh.out.join("admins").join(format!("{}.key", a.name));
        approvals.push(ribat_node::mesh::approve_document(
            Document::Rules,
            &key,
            &a.name,
            &statement,
        )?);
    }
    ribat_node::mesh::put_in_force(Document::Rules, &mesh.dirs[0], statement, approvals)?;
    let deadline = Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let members = ribat_node::mesh::status(&mesh.dirs[0])?;
        let carried = members.iter().all(|m| {
            m.status
                .as_ref()
                .is_some_and(|s| !s.carried.is_empty() && s.carried.values().all(|c| c.1 >= 1))
        });
        if carried {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the lab's rules were not carried out by every node within 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
