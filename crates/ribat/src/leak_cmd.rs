//! `ribat leak scan`: a dumped file against the vault, without decrypting it.
//!
//! The rows are matched to persons through the blind indexes this node holds, and their
//! values checked against the leak digests, whose key the custodians open for the scan
//! (each logs it). Attribution reads this node's audit log.

use crate::embedded::Embedded;
use anyhow::{Context, Result};
use ribat_audit::AuditEntry;
use ribat_crypto::blind_index::BlindIndexer;
use ribat_import::records::{PERSONS, RecordSealer};
use ribat_leak::LeakError;
use ribat_leak::attribute::{Access, Attribution};
use ribat_leak::classify::{self, Class, Resolver, Verdict};
use ribat_leak::digests::Digests;
use ribat_leak::encoding::TextEncoding;
use ribat_leak::read::{FileReport, ReadOptions, read_file};
use ribat_leak::row::LeakRow;
use ribat_leak::summary::Summary;
use ribat_store::Store;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to scan and how.
pub struct ScanOptions {
    /// Files.
    pub files: Vec<PathBuf>,
    /// Encoding of every file, when the guess should not be trusted.
    pub encoding: Option<TextEncoding>,
    /// Classification threads.
    pub threads: usize,
    /// Ask the audit log who read the leaked persons.
    pub attribute: bool,
    /// How rows meet the digests.
    pub matching: Matching,
    /// How values are checked.
    pub checks: Checks,
}

/// How a scan's rows meet the leak digests. Both give the same verdicts (tested); they
/// differ in cost only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Matching {
    /// A walk of the whole digest table when the dump names more than a twentieth as
    /// many persons as the table has rows, else a lookup per person.
    #[default]
    Auto,
    /// Always one walk of the whole digest table.
    Walk,
    /// Always a lookup per person.
    Lookups,
}

/// How a scan checks a row's values (see [`classify::Checking`]). Both give the same
/// verdicts (tested); they differ in cost only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Checks {
    /// A whole record, or a whole declaration, with one digest first; field by field
    /// where it differs or the store holds no such digest.
    #[default]
    Records,
    /// Every field with its own digest.
    Fields,
}

impl From<Checks> for classify::Checking {
    fn from(c: Checks) -> Self {
        match c {
            Checks::Records => Self::Records,
            Checks::Fields => Self::Fields,
        }
    }
}

/// A finished scan.
pub struct Scan {
    /// The summary.
    pub summary: Summary,
    /// One verdict per row.
    pub verdicts: Vec<Verdict>,
    /// The thread freeing the rows and scratch space, still at work when the scan
    /// returns (millions of small allocations: the answer need not wait for them).
    /// Joined by [`Scan::finish_cleanup`], or left to end on its own.
    pub cleanup: Option<std::thread::JoinHandle<()>>,
}

impl Scan {
    /// Waits until the rows the scan read are freed (a benchmark does, so that freeing
    /// does not run under the next timed turn).
    pub fn finish_cleanup(&mut self) {
        if let Some(h) = self.cleanup.take() {
            // Freeing memory cannot fail; a panic there would be a bug in Drop code.
            let _ = h.join();
        }
    }
}

/// The node's blind indexes, as the classifier asks them.
struct NodeResolver<'a> {
    node: &'a Embedded,
    index: &'a BlindIndexer,
    sealer: RecordSealer<'a>,
    store: &'a dyn Store,
    honey: HashSet<String>,
    // Manifests opened so far: each canary opens its export's manifest once.
    recipients: std::sync::Mutex<std::collections::HashMap<String, Option<String>>>,
}

impl Resolver for NodeResolver<'_> {
    fn by_cnss(&self, cnss: &str) -> Option<String> {
        self.sealer.person_id(cnss).ok()
    }

    fn by_cin(&self, cin: &str) -> Result<Vec<String>, LeakError> {
        let Ok(tag) = self.index.cin(cin) else {
            return Ok(Vec::new());
        };
        persons(self.store.lookup("cin", &tag.0)?)
    }

    fn by_name_birth(&self, name: &str, birth: &str) -> Result<Vec<String>, LeakError> {
        let Ok(tag) = self.index.name_birth(name, birth) else {
            return Ok(Vec::new());
        };
        persons(self.store.lookup("name-birth", &tag.0)?)
    }

    fn is_honey(&self, person_id: &str) -> bool {
        self.honey.contains(person_id)
    }

    fn canary_of(&self, person_id: &str) -> Option<String> {
        if let Ok(cache) = self.recipients.lock()
            && let Some(r) = cache.get(person_id)
        {
            return r.clone();
        }
        let r = match crate::export_cmd::recipient_of_canary(self.node, person_id) {
            Ok(r) => r,
            Err(e) => Some(format!(
                "an export whose manifest could not be opened: {e:#}"
            )),
        };
        if let Ok(mut cache) = self.recipients.lock() {
            cache.insert(person_id.to_owned(), r.clone());
        }
        r
    }
}

fn persons(refs: Vec<ribat_store::RecordRef>) -> Result<Vec<String>, LeakError> {
    Ok(refs
        .into_iter()
        .filter(|r| r.table == PERSONS)
        .map(|r| r.record_id)
        .collect())
}

/// Reads every file; a file that cannot be read is listed with why, the others go on.
pub fn read_all(
    files: &[PathBuf],
    encoding: Option<TextEncoding>,
) -> (Vec<LeakRow>, Vec<FileReport>, Vec<(String, String)>) {
    let opts = ReadOptions {
        encoding,
        ..ReadOptions::default()
    };
    let mut rows = Vec::new();
    let mut reports = Vec::new();
    let mut refused = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let idx = u32::try_from(i).unwrap_or(u32::MAX);
        match read_file(f, idx, &opts, &mut |r| rows.push(r)) {
            Ok(rep) => reports.push(rep),
            Err(e) => refused.push((f.display().to_string(), e.to_string())),
        }
    }
    (rows, reports, refused)
}

/// Scans files against the node.
pub fn scan(node: &Embedded, opts: &ScanOptions) -> Result<Scan> {
    let t0 = Instant::now();
    timing("start", t0);
    let (rows, reports, refused) = read_all(&opts.files, opts.encoding);
    timing("parse", t0);
    let (verdicts, latest_in_vault, scratch) =
        match_rows(node, &rows, opts.threads, opts.matching, opts.checks)?;
    // Millions of small allocations are freed off the answer's path: on a thread of their
    // own, beside the summary and the attribution.
    let cleanup = std::thread::Builder::new()
        .name("leak-scan-free".into())
        .spawn(move || drop((rows, scratch)))
        .ok();
    let mut summary = Summary::new(reports, refused, &verdicts);
    summary.window.latest_period_in_vault = latest_in_vault;
    timing("summary", t0);
    if opts.attribute {
        attribute(node, &verdicts, &mut summary)?;
    }
    summary.seconds = t0.elapsed().as_secs_f64();
    Ok(Scan {
        summary,
        verdicts,
        cleanup,
    })
}

/// With `RIBAT_LEAK_TIMING` set, the seconds since `since` at each phase, and the
/// process's CPU seconds so far (a shared machine's wall clock varies by a third), on
/// stderr.
fn timing(what: &str, since: Instant) {
    if std::env::var_os("RIBAT_LEAK_TIMING").is_some() {
        eprintln!(
            "{what}: {:.3} (cpu {:.2})",
            since.elapsed().as_secs_f64(),
            cpu_seconds().unwrap_or(f64::NAN)
        );
    }
}

/// User and system time of this process, from `/proc/self/stat` (Linux; ticks of 1/100 s).
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split(' ').collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// What matching used and no longer needs, to be freed off the main path.
pub struct Scratch {
    _digests: Digests,
}

/// Matches and classifies rows; also returns the latest month the vault holds for the
/// persons found.
pub fn match_rows(
    node: &Embedded,
    rows: &[LeakRow],
    threads: usize,
    matching: Matching,
    checks: Checks,
) -> Result<(Vec<Verdict>, Option<String>, Scratch)> {
    let tt = Instant::now();
    let lap = |what: &str| timing(what, tt);
    let digester = node.leak_digester("leak-scan")?;
    lap("key");
    let store = node.vault.store.as_ref();
    let mut resolver = NodeResolver {
        node,
        recipients: std::sync::Mutex::new(std::collections::HashMap::new()),
        index: &node.vault.index,
        sealer: RecordSealer::new(&node.group, &node.vault.index)?,
        store,
        honey: HashSet::new(),
    };
    // The custodians' honey list (a handful of records), asked once.
    if let Some(c) = node.custodians.first() {
        resolver.honey = c
            .honey_records()?
            .into_iter()
            .filter(|(t, _)| t == PERSONS)
            .map(|(_, id)| id)
            .collect();
    }
    let mut located = classify::locate(rows, &resolver, &digester, threads);
    lap("locate");
    let pass = match matching {
        Matching::Auto => None,
        Matching::Walk => Some(true),
        Matching::Lookups => Some(false),
    };
    let mut digests = Digests::fetch_by(store, &mut located, threads, pass)
        .context("reading the leak digests")?;
    lap("fetch");
    classify::relocate(
        rows,
        &mut located,
        &mut digests,
        store,
        &resolver,
        &digester,
    )?;
    lap("relocate");
    let latest = digests.latest_period_held().map(|p| p.to_string());
    let verdicts = classify::classify_all(
        rows,
        located,
        &digests,
        &resolver,
        &digester,
        threads,
        checks.into(),
    );
    lap("classify");
    Ok((verdicts, latest, Scratch { _digests: digests }))
}

/// One access in this node's audit log, as attribution needs it.
pub struct Read {
    /// Who.
    pub identity: String,
    /// Its role.
    pub role: String,
    /// The person's record id.
    pub subject: String,
    /// When, ms.
    pub time_ms: u64,
    /// Whether plaintext was released (a refused request for a honey record still counts
    /// against whoever made it).
    pub released: bool,
}

/// Every access to a person in this node's audit log.
pub fn read_accesses(node: &Embedded) -> Result<Vec<Read>> {
    let log = node.vault.audit.log();
    let mut out = Vec::new();
    for i in 0..log.size()? {
        let e = AuditEntry::decode(&log.entry(i)?)?;
        if e.table != PERSONS {
            continue;
        }
        out.push(Read {
            released: e.outcome == "released",
            identity: e.identity,
            role: e.role,
            subject: e.subject,
            time_ms: e.time_ms,
        });
    }
    Ok(out)
}

/// Who read the leaked persons; who asked for the honey ones.
pub fn attribute(node: &Embedded, verdicts: &[Verdict], summary: &mut Summary) -> Result<()> {
    let reads = read_accesses(node)?;
    let persons = node.vault.store.count(PERSONS)?;
    attribute_with(&reads, persons, verdicts, summary);
    Ok(())
}

/// Same, over accesses already read.
pub fn attribute_with(reads: &[Read], persons: u64, verdicts: &[Verdict], summary: &mut Summary) {
    let leaked = verdicts
        .iter()
        .filter(|v| v.class.ours())
        .filter_map(|v| v.person.as_deref());
    let mut honey_readers: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        verdicts
            .iter()
            .filter(|v| v.class == Class::Honey)
            .filter_map(|v| v.person.clone())
            .map(|h| (h, Default::default()))
            .collect();
    let mut att = Attribution::new(leaked);
    for r in reads {
        if let Some(who) = honey_readers.get_mut(&r.subject) {
            who.insert(r.identity.clone());
        }
        if r.released {
            att.read(&Access {
                identity: &r.identity,
                role: &r.role,
                subject: &r.subject,
                time_ms: r.time_ms,
            });
        }
    }
    summary.candidates = att.candidates(persons);
    summary.honey = honey_readers
        .into_iter()
        .map(|(h, r)| (h, r.into_iter().collect()))
        .collect();
    if let Some(c) = summary.candidates.first() {
        summary.window.reads_from_ms = Some(c.first_ms);
        summary.window.reads_to_ms = Some(c.last_ms);
    }
}

/// Writes `report.md`, `summary.json` and `rows.jsonl` (one verdict per row, persons as
/// opaque record ids, no leaked value) into `dir`.
pub fn write_report(dir: &Path, scan: &Scan) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let write = |name: &str, bytes: &[u8]| {
        ribat_identity::ca::write_file(&dir.join(name), bytes, true)
            .with_context(|| format!("cannot write {}", dir.join(name).display()))
    };
    write("report.md", scan.summary.to_markdown().as_bytes())?;
    write(
        "summary.json",
        serde_json::to_string_pretty(&scan.summary)?.as_bytes(),
    )?;
    let mut rows = String::new();
    for v in &scan.verdicts {
        rows.push_str(&serde_json::to_string(v)?);
        rows.push('\n');
    }
    write("rows.jsonl", rows.as_bytes())?;
    Ok(())
}

/// Prints what a person at a terminal wants first.
pub fn print_human(s: &Summary) {
    println!("{}", s.headline());
    for (k, v) in &s.classes {
        println!("  {k:<16} {v}");
    }
    for f in &s.files {
        if f.skipped_total() > 0 {
            println!(
                "  {}: {} lines skipped ({})",
                f.path.display(),
                f.skipped_total(),
                f.skipped
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    for (f, why) in &s.refused {
        println!("  refused {f}: {why}");
    }
    for (h, readers) in &s.honey {
        println!(
            "  honey record {h} in the dump; read by {}",
            readers.join(", ")
        );
    }
    match s.candidates.first() {
        Some(c) => println!(
            "  most likely source: {} ({}) read {} of the {} leaked persons; by chance ≤ 1e{:.0}",
            c.identity, c.role, c.covered, c.of, c.chance_log10
        ),
        None if s.ours > 0 => println!("  no identity in this node's audit log read these persons"),
        None => {}
    }
}

/// Fields of the notification list, in its column order.
const NOTIFY_FIELDS: [&str; 6] = ["cnss", "cin", "given", "surname", "name_ar", "city"];

/// Writes the data-protection authority's notification list for a scan whose report is in
/// `report`: every real person a genuine or altered row names, in clear.
///
/// The list is personal data, so it is written only after a quorum approval: two distinct
/// security administrators named by the caller (checked against the identity register),
/// and the custodian quorum, which decrypts each person's identity fields under purpose
/// `breach-notification` and logs every one (the audit log does too).
pub fn notify(
    home: &crate::home::Home,
    node: &Embedded,
    report: &Path,
    out: &Path,
    approvers: &[String],
) -> Result<usize> {
    anyhow::ensure!(
        approvers.len() == 2 && approvers[0] != approvers[1],
        "the notification list needs two distinct security administrators (--as A --as B)"
    );
    let ca = crate::identity_cmd::open_ca(home)?;
    let register = ca.register()?;
    for a in approvers {
        anyhow::ensure!(
            register
                .iter()
                .any(|e| &e.name == a && e.role == "security" && e.revoked_at.is_none()),
            "{a} is not a security administrator of this deployment"
        );
    }
    anyhow::ensure!(
        !out.exists(),
        "{} exists; the list never overwrites a file",
        out.display()
    );
    let rows = std::fs::read_to_string(report.join("rows.jsonl")).with_context(|| {
        format!(
            "no scan in {} (run `ribat leak scan … --report {}` first)",
            report.display(),
            report.display()
        )
    })?;
    let mut persons: std::collections::BTreeMap<String, (u64, std::collections::BTreeSet<String>)> =
        Default::default();
    for (i, line) in rows.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("rows.jsonl line {} is damaged", i + 1))?;
        let class = v["class"].as_str().unwrap_or_default();
        if !matches!(class, "genuine-current" | "genuine-older" | "altered") {
            continue;
        }
        if let Some(p) = v["person"].as_str() {
            let e = persons.entry(p.to_owned()).or_default();
            e.0 += 1;
            e.1.insert(class.to_owned());
        }
    }
    let reader = ribat_gateway::vault::Reader {
        who: ribat_custodian::request::Requester {
            identity: format!("notify/{}+{}", approvers[0], approvers[1]),
            role: "security".into(),
        },
        institution: "cnss".into(),
        purpose: "breach-notification".into(),
        token: None,
    };
    let ids: Vec<String> = persons.keys().cloned().collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = NOTIFY_FIELDS.to_vec();
    header.extend(["rows_in_dump", "classes"]);
    w.write_record(&header)?;
    for batch in ids.chunks(500) {
        let req = node
            .vault
            .request(&reader, PERSONS, "identity", batch.to_vec());
        let read = node
            .vault
            .audited(&reader, &req, &NOTIFY_FIELDS, None)
            .context("the custodians did not release the affected persons")?;
        for (id, fields) in &read.records {
            let mut rec: Vec<String> = NOTIFY_FIELDS
                .iter()
                .map(|f| {
                    fields
                        .get(f)
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                        .unwrap_or_default()
                })
                .collect();
            let (n, classes) = &persons[id];
            rec.push(n.to_string());
            rec.push(classes.iter().cloned().collect::<Vec<_>>().join(" "));
            w.write_record(&rec)?;
        }
    }
    let bytes = w.into_inner().context("writing the notification list")?;
    ribat_identity::ca::write_file(out, &bytes, true)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(ids.len())
}
