//! `ribat leak scan`: a dumped file against the vault, without decrypting it.
//!
//! The rows are matched to persons through the blind indexes this node holds, and their
//! values checked against the leak digests, whose key the custodians open for the scan
//! (each logs it). Attribution reads this node's audit log.

use crate::embedded::Embedded;
use crate::error::{Context, Result};
use ribat_audit::AuditEntry;
use ribat_crypto::blind_index::BlindIndexer;
use ribat_import::records::RecordSealer;
use ribat_leak::LeakError;
use ribat_leak::attribute::{Access, Attribution};
use ribat_leak::classify::{self, Class, Resolver, Verdict};
use ribat_leak::digests::Digests;
use ribat_leak::encoding::TextEncoding;
use ribat_leak::read::{FileReport, ReadOptions, read_file};
use ribat_leak::row::LeakRow;
use ribat_leak::rows_file::RowsWriter;
use ribat_leak::summary::{Summary, Tally};
use ribat_policy::{Purpose, Role, Table};
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
    /// Keep the persons named and ask the audit log who read them.
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

/// A finished scan. Its verdicts went to the caller one by one as each block of rows was
/// classified; what is kept is what the report and the attribution need.
pub struct Scan {
    /// The summary.
    pub summary: Summary,
    /// The thread freeing the last rows and scratch space, still at work when the scan
    /// returns (millions of small allocations: the answer need not wait for them).
    /// Joined by [`Scan::finish_cleanup`], or left to end on its own.
    pub cleanup: Option<std::thread::JoinHandle<()>>,
}

/// The persons of a scan whose rows are the fund's: bounded by the vault's persons, not by
/// the dump's rows.
#[derive(Debug, Default)]
struct Named {
    /// Persons of genuine, older, altered, honey and canary rows (record ids).
    leaked: HashSet<String>,
    /// Honey persons in the dump.
    honey: std::collections::BTreeSet<String>,
}

impl Named {
    fn add(&mut self, v: &Verdict) {
        let Some(p) = v.person.as_deref() else {
            return;
        };
        if v.class.ours() && !self.leaked.contains(p) {
            self.leaked.insert(p.to_owned());
        }
        if v.class == Class::Honey && !self.honey.contains(p) {
            self.honey.insert(p.to_owned());
        }
    }
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
        let r = match crate::exports::recipient_of_canary(self.node, person_id) {
            Ok(r) => r,
            Err(e) => Some(format!(
                "an export whose manifest could not be opened: {}",
                e.chain()
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
        .filter(|r| r.table == Table::Persons.as_str())
        .map(|r| r.record_id)
        .collect())
}

/// Reads every file; a file that cannot be read is listed with why, the others go on.
/// Every row is held: for parsing alone (the benchmark's baseline); a scan reads in blocks.
pub fn read_all(
    files: &[PathBuf],
    encoding: Option<TextEncoding>,
) -> (Vec<LeakRow>, Vec<FileReport>, Vec<(String, String)>) {
    let mut rows = Vec::new();
    let (reports, refused) = read_each(files, encoding, &mut |r| rows.push(r));
    (rows, reports, refused)
}

fn read_each(
    files: &[PathBuf],
    encoding: Option<TextEncoding>,
    each: &mut dyn FnMut(LeakRow),
) -> (Vec<FileReport>, Vec<(String, String)>) {
    let opts = ReadOptions {
        encoding,
        ..ReadOptions::default()
    };
    let mut reports = Vec::new();
    let mut refused = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let idx = u32::try_from(i).unwrap_or(u32::MAX);
        match read_file(f, idx, &opts, each) {
            Ok(rep) => reports.push(rep),
            Err(e) => refused.push((f.display().to_string(), e.to_string())),
        }
    }
    (reports, refused)
}

/// The memory a block of rows may take. A dump that fits in one block (a fund's dump of
/// 200,000 full rows does) is read once and matched whole. A larger one is read twice: once
/// for the persons it names (16 bytes each are kept), then, with their digests fetched in
/// one walk of the table, again to classify it a block at a time. Either way one block of
/// rows is alive at a time, whatever the dump's size.
const BLOCK_BYTES: usize = 128 << 20;

/// [`BLOCK_BYTES`], or `RIBAT_LEAK_BLOCK_KIB` KiB (at least 16): tests read small dumps in
/// many blocks with it, to show that blocks change no verdict.
fn block_bytes() -> usize {
    std::env::var("RIBAT_LEAK_BLOCK_KIB")
        .ok()
        .and_then(|k| k.parse::<usize>().ok())
        .map_or(BLOCK_BYTES, |k| k.max(16) << 10)
}

/// Scans files against the node. Each verdict goes to `each` as its block is classified,
/// in file and line order; nothing of them is kept but the summary's counts and the
/// persons named.
pub fn scan(
    node: &Embedded,
    opts: &ScanOptions,
    each: &mut dyn FnMut(&Verdict) -> Result<()>,
) -> Result<Scan> {
    let t0 = Instant::now();
    timing("start", t0);
    let block_bytes = block_bytes();
    let mut matcher = Matcher::new(node, opts)?;
    let mut tally = Tally::default();
    let mut named = Named::default();
    let mut failed: Option<crate::NodeError> = None;
    let mut emit = |verdicts: &[Verdict]| -> Result<()> {
        for v in verdicts {
            tally.add(v);
            if opts.attribute {
                named.add(v);
            }
            each(v)?;
        }
        Ok(())
    };
    // The first reading: the rows, up to one block; past it, only the persons they name.
    let mut block: Vec<LeakRow> = Vec::new();
    let mut bytes = 0usize;
    let mut wanted: Option<Vec<[u8; 16]>> = None;
    let (mut reports, mut refused) = read_each(&opts.files, opts.encoding, &mut |r| {
        bytes += r.footprint();
        block.push(r);
        if bytes >= block_bytes && failed.is_none() {
            bytes = 0;
            let w = wanted.get_or_insert_with(Vec::new);
            matcher.collect_locators(&std::mem::take(&mut block), w);
        }
    });
    timing("read", t0);
    let last = match wanted {
        None => {
            let verdicts = matcher.classify(&block)?;
            emit(&verdicts)?;
            Freed(Box::new((block, verdicts)))
        }
        Some(mut w) => {
            matcher.collect_locators(&std::mem::take(&mut block), &mut w);
            w.sort_unstable();
            w.dedup();
            timing("located", t0);
            matcher.fetch_all(&w)?;
            drop(w);
            timing("fetched", t0);
            // The second reading: a block at a time, each let go before the next is read.
            let mut again = |block: Vec<LeakRow>, failed: &mut Option<crate::NodeError>| {
                if failed.is_none()
                    && let Err(e) = matcher.classify(&block).and_then(|v| emit(&v))
                {
                    *failed = Some(e);
                }
            };
            bytes = 0;
            (reports, refused) = read_each(&opts.files, opts.encoding, &mut |r| {
                bytes += r.footprint();
                block.push(r);
                if bytes >= block_bytes {
                    bytes = 0;
                    again(std::mem::take(&mut block), &mut failed);
                }
            });
            again(std::mem::take(&mut block), &mut failed);
            Freed(Box::new(()))
        }
    };
    timing("classified", t0);
    if let Some(e) = failed {
        return Err(e);
    }
    let mut summary = Summary::of(reports, refused, tally);
    summary.window.latest_period_in_vault = matcher.latest_period();
    // Millions of small allocations are freed off the answer's path: on a thread of their
    // own, beside the attribution.
    let scratch = (last, matcher.into_scratch());
    let cleanup = std::thread::Builder::new()
        .name("leak-scan-free".into())
        .spawn(move || drop(scratch))
        .ok();
    if opts.attribute {
        attribute(node, &named, &mut summary)?;
    }
    summary.seconds = t0.elapsed().as_secs_f64();
    timing("end", t0);
    Ok(Scan { summary, cleanup })
}

/// What a block left behind, on its way to the freeing thread.
struct Freed(#[allow(dead_code)] Box<dyn Send>);

/// Scans, writing each verdict into `report/rows.jsonl` as it comes when a report is
/// asked for (see [`ribat_leak::rows_file`]), and to `each`.
pub fn scan_into(
    node: &Embedded,
    opts: &ScanOptions,
    report: Option<&Path>,
    each: &mut dyn FnMut(&Verdict),
) -> Result<Scan> {
    let Some(dir) = report else {
        return scan(node, opts, &mut |v| {
            each(v);
            Ok(())
        });
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("rows.jsonl");
    let mut rows = RowsFile::create(&path)?;
    let scan = scan(node, opts, &mut |v| {
        each(v);
        rows.writer
            .push(v)
            .with_context(|| format!("cannot write {}", path.display()))
    })?;
    rows.finish(&path)?;
    Ok(scan)
}

/// `rows.jsonl` being written: under a temporary name, readable by its owner only (the
/// record ids are the vault's), renamed when whole.
struct RowsFile {
    tmp: PathBuf,
    writer: RowsWriter<std::io::BufWriter<std::fs::File>>,
}

impl RowsFile {
    fn create(path: &Path) -> Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("jsonl.partial");
        let f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        Ok(Self {
            tmp,
            writer: RowsWriter::new(std::io::BufWriter::with_capacity(1 << 20, f)),
        })
    }

    fn finish(self, path: &Path) -> Result<()> {
        let io = |e: std::io::Error| crate::err!("cannot write {}: {e}", path.display());
        let (buf, _) = self.writer.finish().map_err(io)?;
        let f = buf.into_inner().map_err(|e| io(e.into_error()))?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&self.tmp, path).map_err(io)?;
        Ok(())
    }
}

/// With `RIBAT_LEAK_TIMING` set, the seconds since `since` at each phase, and the
/// process's CPU seconds so far (a shared machine's wall clock varies by a third), on
/// stderr.
fn timing(what: &str, since: Instant) {
    if std::env::var_os("RIBAT_LEAK_TIMING").is_some() {
        eprintln!(
            "{what}: {:.3} (cpu {:.2}, peak rss {} MiB)",
            since.elapsed().as_secs_f64(),
            cpu_seconds().unwrap_or(f64::NAN),
            peak_rss_kib().map_or_else(|| "?".into(), |k| (k >> 10).to_string())
        );
    }
}

/// The most memory this process has held resident so far (`VmHWM`, Linux), KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
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
    _digests: Option<Digests>,
}

/// Matches blocks of one scan's rows: the digests fetched for one block stay for the
/// next (a person named in both is fetched once and keeps one slot).
struct Matcher<'a> {
    digester: ribat_crypto::leak_digest::LeakDigester,
    resolver: NodeResolver<'a>,
    store: &'a dyn Store,
    digests: Option<Digests>,
    threads: usize,
    pass: Option<bool>,
    checks: Checks,
}

impl<'a> Matcher<'a> {
    fn new(node: &'a Embedded, opts: &ScanOptions) -> Result<Self> {
        let digester = node.leak_digester("leak-scan")?;
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
                .filter(|(t, _)| t == Table::Persons.as_str())
                .map(|(_, id)| id)
                .collect();
        }
        Ok(Self {
            digester,
            resolver,
            store,
            digests: None,
            threads: opts.threads,
            pass: match opts.matching {
                Matching::Auto => None,
                Matching::Walk => Some(true),
                Matching::Lookups => Some(false),
            },
            checks: opts.checks,
        })
    }

    /// Adds the locators of the persons `rows` name by CNSS number to `into` (16 bytes
    /// a row at most; sorted and rid of repeats whenever a block more than doubles it).
    fn collect_locators(&self, rows: &[LeakRow], into: &mut Vec<[u8; 16]>) {
        let before = into.len();
        let located = classify::locate(rows, &self.resolver, &self.digester, self.threads);
        into.extend(located.into_iter().flatten().map(|l| l.locator));
        if into.len() > 2 * before.max(1 << 16) {
            into.sort_unstable();
            into.dedup();
        }
    }

    /// Fetches the digests of every person under `locators` (sorted, each once).
    fn fetch_all(&mut self, locators: &[[u8; 16]]) -> Result<()> {
        self.digests = Some(
            Digests::fetch_locators(self.store, locators, self.threads, self.pass)
                .context("reading the leak digests")?,
        );
        Ok(())
    }

    /// The verdicts on one block of rows, in its order.
    fn classify(&mut self, rows: &[LeakRow]) -> Result<Vec<Verdict>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let tt = Instant::now();
        let lap = |what: &str| timing(what, tt);
        let mut located = classify::locate(rows, &self.resolver, &self.digester, self.threads);
        lap("locate");
        let digests = match self.digests.as_mut() {
            Some(d) => {
                d.fetch_block(self.store, &mut located)
                    .context("reading the leak digests")?;
                d
            }
            None => self.digests.insert(
                Digests::fetch_by(self.store, &mut located, self.threads, self.pass)
                    .context("reading the leak digests")?,
            ),
        };
        lap("fetch");
        classify::relocate(
            rows,
            &mut located,
            digests,
            self.store,
            &self.resolver,
            &self.digester,
        )?;
        lap("relocate");
        let verdicts = classify::classify_all(
            rows,
            located,
            digests,
            &self.resolver,
            &self.digester,
            self.threads,
            self.checks.into(),
        );
        lap("classify");
        Ok(verdicts)
    }

    /// The latest month the vault holds for the persons found so far.
    fn latest_period(&self) -> Option<String> {
        self.digests
            .as_ref()
            .and_then(Digests::latest_period_held)
            .map(|p| p.to_string())
    }

    fn into_scratch(self) -> Scratch {
        Scratch {
            _digests: self.digests,
        }
    }
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
        // A lookup of who accessed a person read none of its values.
        if e.table != Table::Persons.as_str() || e.outcome == ribat_gateway::subject::OUTCOME_LISTED
        {
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
fn attribute(node: &Embedded, named: &Named, summary: &mut Summary) -> Result<()> {
    let reads = read_accesses(node)?;
    let persons = node.vault.store.count(Table::Persons.as_str())?;
    attribute_with(&reads, persons, named, summary);
    Ok(())
}

/// Same, over accesses already read.
fn attribute_with(reads: &[Read], persons: u64, named: &Named, summary: &mut Summary) {
    let mut honey_readers: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        named
            .honey
            .iter()
            .map(|h| (h.clone(), Default::default()))
            .collect();
    let mut att = Attribution::new(named.leaked.iter().map(String::as_str));
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

/// Writes `report.md` and `summary.json` into `dir` (beside the `rows.jsonl` that
/// [`scan_into`] wrote: persons as opaque record ids, no leaked value).
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
    crate::ensure!(
        approvers.len() == 2 && approvers[0] != approvers[1],
        "the notification list needs two distinct security administrators (--as A --as B)"
    );
    let ca = crate::identity::open_ca(home)?;
    let register = ca.register()?;
    for a in approvers {
        crate::ensure!(
            register
                .iter()
                .any(|e| &e.name == a && e.role == "security" && e.revoked_at.is_none()),
            "{a} is not a security administrator of this deployment"
        );
    }
    crate::ensure!(
        !out.exists(),
        "{} exists; the list never overwrites a file",
        out.display()
    );
    let affected = affected_persons(report)?;
    let bytes = notification_list(node, &affected, [&approvers[0], &approvers[1]])?;
    ribat_identity::ca::write_file(out, &bytes, true)
        .with_context(|| format!("cannot write {}", out.display()))?;
    Ok(affected.len())
}

/// The persons a notification list names, by record id: every real person a genuine or
/// altered row of the scan in `report` names, with its rows in the dump and their classes.
pub type Affected = std::collections::BTreeMap<String, (u64, std::collections::BTreeSet<String>)>;

/// The persons the scan whose report is in `report` found affected (from its
/// `rows.jsonl`, record ids only: nothing is decrypted).
pub fn affected_persons(report: &Path) -> Result<Affected> {
    let rows = std::fs::File::open(report.join("rows.jsonl")).with_context(|| {
        format!(
            "no scan in {} (run `ribat leak scan … --report {}` first)",
            report.display(),
            report.display()
        )
    })?;
    let mut persons = Affected::default();
    // Line by line: the file may be large; the list is as long as the persons it names.
    for (i, line) in std::io::BufRead::lines(std::io::BufReader::new(rows)).enumerate() {
        let line = line.with_context(|| format!("cannot read rows.jsonl line {}", i + 1))?;
        let v: serde_json::Value = serde_json::from_str(&line)
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
    Ok(persons)
}

/// The notification list of `persons`, as CSV, in clear: each person's identity decrypted
/// by the custodian quorum under purpose `breach-notification` on behalf of the two
/// `approvers` (whom the caller checked), every read logged by the custodians and the
/// audit log.
pub fn notification_list(
    node: &Embedded,
    persons: &Affected,
    approvers: [&str; 2],
) -> Result<Vec<u8>> {
    let reader = ribat_gateway::vault::Reader {
        who: ribat_custodian::request::Requester {
            identity: format!("notify/{}+{}", approvers[0], approvers[1]),
            role: Role::SECURITY,
        },
        institution: "cnss".into(),
        purpose: Purpose::BREACH_NOTIFICATION,
        token: None,
        asked: None,
    };
    let ids: Vec<String> = persons.keys().cloned().collect();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<&str> = NOTIFY_FIELDS.to_vec();
    header.extend(["rows_in_dump", "classes"]);
    w.write_record(&header)?;
    for batch in ids.chunks(500) {
        let req = node.vault.request(
            &reader,
            Table::Persons,
            &ribat_policy::Class::IDENTITY,
            batch.to_vec(),
        );
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
    let bytes = w
        .into_inner()
        .map_err(|e| e.into_error())
        .context("writing the notification list")?;
    Ok(bytes)
}
