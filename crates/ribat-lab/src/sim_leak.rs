//! `ribat sim leak`: a fresh node holding a generated fund, partners and clerks reading it
//! (audited), then labelled dumps of every variant, each scanned and scored against its
//! truth when asked.
//!
//! ```text
//!   OUT/source/              the generated fund's files
//!   OUT/node/                the node (sealed store, audit log, custodians)
//!   OUT/passphrases/         its custodians' throwaway passphrases (owner-only)
//!   OUT/dumps/VARIANT/       the dump's files, truth.csv (file,line,class,cnss,field),
//!                            sources.txt; and scan/ (report.md, summary.json, rows.jsonl)
//! ```

use crate::embedded::Embedded;
use crate::leak::{self, Read, ScanOptions};
use ribat_custodian::LocalCustodian;
use ribat_custodian::policy::{Policy, Quota};
use ribat_custodian::request::Requester;
use ribat_gateway::vault::Reader;
use ribat_import::importer::Importer;
use ribat_import::records::RecordSealer;
use ribat_leak::attribute::{Access, Attribution, SIGNIFICANT_LOG10};
use ribat_leak::classify::Verdict;
use ribat_node::{Context, Result};
use ribat_policy::{Purpose, Role};
use ribat_sim::FundSpec;
use ribat_sim::fund::Fund;
use ribat_sim::leak::{Dump, TruthRow, Variant, make, plan_reads};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// What to simulate.
pub struct LeakSimOptions {
    /// Persons in the fund.
    pub persons: usize,
    /// Seed.
    pub seed: u64,
    /// Output directory (must not exist yet or be empty).
    pub out: PathBuf,
    /// Variants (all when empty).
    pub variants: Vec<Variant>,
    /// Scan each dump and score it against its truth.
    pub evaluate: bool,
    /// Also make the two export dumps (approved exports with canaries).
    pub exports: bool,
}

/// The partners who receive exports in the simulation.
const DELTA: &str = "partner.delta";
/// See [`DELTA`].
const EPSILON: &str = "partner.epsilon";

/// Two approved exports (with canaries) and the dumps made of them: one recipient's file
/// as it was sent, and two recipients' files merged, shuffled, without a header.
fn export_dumps(
    node: &Embedded,
    fund: &Fund,
    ids: &[String],
    o: &LeakSimOptions,
) -> Result<Vec<(&'static str, Dump)>> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(o.seed ^ 0xe4);
    let by_id: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, s)| (s.as_str(), i))
        .collect();
    std::fs::create_dir_all(o.out.join("exports"))?;
    let mut files: Vec<(&str, Vec<String>, HashSet<String>)> = Vec::new();
    for (k, recipient) in [DELTA, EPSILON].into_iter().enumerate() {
        let mut persons: Vec<usize> = (0..fund.persons.len())
            .filter(|&i| !fund.persons[i].honey)
            .collect();
        persons.shuffle(&mut rng);
        persons.truncate((fund.persons.len() / 8).max(10));
        // The simulation plays the two approvers; `ribat export` checks them.
        let req = crate::exports::Request {
            id: format!("{:016x}", o.seed.wrapping_add(k as u64 + 1)),
            recipient: recipient.into(),
            purpose: Purpose::PARTNER_EXPORT,
            cnss: persons
                .iter()
                .map(|&i| fund.persons[i].cnss.clone())
                .collect(),
            requested_by: "sim".into(),
            requested_at: 0,
            approvals: vec!["sec.one".into(), "sec.two".into()],
            ran_at: None,
            rows: None,
            file_sha256: None,
            file: None,
            fetched: Vec::new(),
        };
        let out = o.out.join("exports").join(format!("{recipient}.csv"));
        let m = crate::exports::execute(node, &req, &out)?;
        let text = std::fs::read_to_string(&out)?;
        let rows: Vec<String> = text.lines().skip(1).map(str::to_owned).collect();
        files.push((recipient, rows, m.canaries.into_iter().collect()));
    }
    let sealer = RecordSealer::new(&node.group, &node.vault.index)?;
    let label = |row: &str, canaries: &HashSet<String>| -> Result<(&'static str, Option<usize>)> {
        let cnss = row.split(',').next().unwrap_or("");
        let pid = sealer.person_id(cnss)?;
        Ok(if canaries.contains(&pid) {
            ("canary", None)
        } else {
            ("genuine-current", by_id.get(pid.as_str()).copied())
        })
    };
    // One recipient's file as sent, and both files merged and shuffled without a header.
    let (recipient, rows, canaries) = &files[0];
    let sent: Vec<(&String, &HashSet<String>)> = rows.iter().map(|r| (r, canaries)).collect();
    let mut merged: Vec<(&String, &HashSet<String>)> = Vec::new();
    for (_, rows, canaries) in &files {
        merged.extend(rows.iter().map(|r| (r, canaries)));
    }
    merged.shuffle(&mut rng);
    let header = crate::exports::FIELDS.join(",");
    let mut out = Vec::new();
    for (name, file, header, rows, sources) in [
        (
            "export-canary",
            "export.csv",
            Some(header.as_str()),
            sent,
            vec![(*recipient).to_owned()],
        ),
        (
            "export-merge",
            "merged.csv",
            None,
            merged,
            vec![DELTA.to_owned(), EPSILON.to_owned()],
        ),
    ] {
        let mut d = Dump {
            sources,
            ..Dump::default()
        };
        let mut text = header.map(|h| format!("{h}\n")).unwrap_or_default();
        let first = if header.is_some() { 2 } else { 1 };
        for (n, (r, canaries)) in rows.iter().enumerate() {
            text.push_str(r);
            text.push('\n');
            let (class, person) = label(r, canaries)?;
            d.truth.push(TruthRow {
                file: file.into(),
                line: n as u64 + first,
                class,
                person,
                field: None,
            });
        }
        d.files.push((file.into(), text.into_bytes()));
        out.push((name, d));
    }
    Ok(out)
}

/// The score of one variant.
#[derive(Debug, Clone, Serialize)]
pub struct Score {
    /// Variant.
    pub variant: &'static str,
    /// Rows in the truth.
    pub rows: u64,
    /// Of the rows called the fund's, the share that are.
    pub ours_precision: f64,
    /// Of the fund's rows, the share called so.
    pub ours_recall: f64,
    /// Of the real persons in the dump, the share named affected.
    pub affected_recall: f64,
    /// Truth class → scanned class → rows.
    pub confusion: BTreeMap<String, BTreeMap<String, u64>>,
    /// Rows whose class was exactly the truth's.
    pub exact: u64,
    /// The true sources.
    pub sources: Vec<String>,
    /// What the scan named (significant candidates, or honey readers).
    pub named: Vec<String>,
    /// Whether it named exactly the true sources.
    pub attribution_correct: bool,
    /// The fewest leaked rows from which, in each of 5 random draws, the first candidate is
    /// a true source and chance is below one in a million; `None` when even all do not.
    pub fewest_rows: Option<usize>,
    /// Seconds the scan took.
    pub scan_seconds: f64,
}

fn say(s: &str) {
    eprintln!("{s}");
}

/// Bulk reads for everyone: the simulation is about what leaks after access was granted.
fn open_policy() -> Policy {
    let mut p = Policy::embedded_default();
    for r in p.roles.values_mut() {
        r.quota = Some(Quota {
            distinct_records: 10_000_000,
            window_secs: 86_400,
        });
        r.limits.clear();
        r.role_limits.clear();
    }
    p
}

fn role_of(identity: &str) -> (Role, Purpose) {
    match identity.split('.').next() {
        Some("partner") => (
            Role::constant("partner"),
            Purpose::constant("partner-verification"),
        ),
        Some("clerk") => (
            Role::constant("clerk"),
            Purpose::constant("counter-service"),
        ),
        _ => (
            Role::constant("pension-batch"),
            Purpose::constant("pension-run"),
        ),
    }
}

/// Builds the node, makes the reads and the dumps; scores them if asked.
pub fn run(o: &LeakSimOptions) -> Result<Vec<Score>> {
    if o.out.exists() && std::fs::read_dir(&o.out)?.next().is_some() {
        ribat_node::bail!(
            "{} is not empty: a leak simulation writes a fresh node there",
            o.out.display()
        );
    }
    let source = o.out.join("source");
    say(&format!(
        "generating a fund of {} persons over 3 months…",
        o.persons
    ));
    let spec = FundSpec::new(o.persons, (o.persons / 12).max(1), 3, o.seed);
    let fund = ribat_sim::files::write(&spec, &source)?;
    let (home, pass) = crate::bench::node::keyed_node(&o.out)?;
    let policy = open_policy();
    for i in 1..=3 {
        LocalCustodian::write_policy(&home.custodian_dir(i), &policy)?;
    }
    LocalCustodian::write_policy(home.root(), &policy)?;
    let node = Embedded::open(&home, &pass)?;
    {
        say("importing it sealed, with leak digests…");
        let leak = node.leak_digester("import")?;
        let sealer = RecordSealer::new(&node.group, &node.vault.index)?.with_leak_digests(&leak);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let importer = Importer::new(node.vault.store.as_ref(), &sealer, threads, 5_000);
        let summary = importer.run(
            &[
                source.join("employers.csv"),
                source.join("persons.csv"),
                source.join("ebds"),
            ],
            &mut |_| {},
        )?;
        if !summary.rejects.is_empty() {
            ribat_node::bail!(
                "the generated files were rejected: {:?}",
                summary.rejects.first()
            );
        }
        crate::import::install_honey(&node, &sealer, &source.join("ribat-only/honey.csv"))?;
    }
    let reads = plan_reads(&fund, o.seed);
    let total: usize = reads.by.iter().map(|(_, v)| v.len()).sum();
    say(&format!(
        "{} identities read {total} persons through the quorum (audited)…",
        reads.by.len()
    ));
    read_through(&node, &fund, &reads.by)?;
    let variants = if o.variants.is_empty() {
        Variant::ALL.to_vec()
    } else {
        o.variants.clone()
    };
    let sealer = RecordSealer::new(&node.group, &node.vault.index)?;
    let ids: Vec<String> = fund
        .persons
        .iter()
        .map(|p| sealer.person_id(&p.cnss))
        .collect::<Result<_, _>>()?;
    let mut dumps: Vec<(&'static str, Dump)> = variants
        .iter()
        .map(|v| (v.name(), make(&fund, &reads, *v, o.seed)))
        .collect();
    if o.exports {
        say("two partners receive approved exports with canaries…");
        dumps.extend(export_dumps(&node, &fund, &ids, o)?);
    }
    let accesses = if o.evaluate {
        leak::read_accesses(&node)?
    } else {
        Vec::new()
    };
    let persons = o.persons as u64;
    let mut scores = Vec::new();
    for (name, dump) in dumps {
        let dir = o.out.join("dumps").join(name);
        let files = write_dump(&dir, &dump, &fund)?;
        if !o.evaluate {
            say(&format!(
                "{name}: {} rows in {}",
                dump.truth.len(),
                dir.display()
            ));
            continue;
        }
        let mut verdicts = Vec::new();
        let mut full = leak::scan_into(
            &node,
            &ScanOptions {
                files: files.clone(),
                encoding: None,
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
                attribute: true,
                matching: leak::Matching::Auto,
                checks: leak::Checks::Records,
            },
            Some(&dir.join("scan")),
            &mut |v| verdicts.push(v.clone()),
        )?;
        full.finish_cleanup();
        leak::write_report(&dir.join("scan"), &full)?;
        let s = score(
            name,
            &dump,
            &files,
            &full,
            &verdicts,
            &ids,
            (&accesses, persons),
        );
        say(&format!(
            "{:<20} rows {:>6}  ours P {:.3} R {:.3}  affected R {:.3}  exact {:>6}  attribution {}  fewest rows {}",
            s.variant,
            s.rows,
            s.ours_precision,
            s.ours_recall,
            s.affected_recall,
            s.exact,
            if s.attribution_correct {
                "right"
            } else {
                "WRONG"
            },
            s.fewest_rows.map_or("-".into(), |n| n.to_string())
        ));
        scores.push(s);
    }
    Ok(scores)
}

fn read_through(node: &Embedded, fund: &Fund, by: &[(String, Vec<usize>)]) -> Result<()> {
    let sealer = RecordSealer::new(&node.group, &node.vault.index)?;
    let mut jobs: Vec<(usize, String)> = Vec::new();
    let mut honey: Vec<(usize, String)> = Vec::new();
    for (k, (_, persons)) in by.iter().enumerate() {
        for &i in persons {
            let id = sealer.person_id(&fund.persons[i].cnss)?;
            if fund.persons[i].honey {
                honey.push((k, id));
            } else {
                jobs.push((k, id));
            }
        }
    }
    let failures = std::sync::atomic::AtomicUsize::new(0);
    let read = |k: usize, id: &str| {
        let (role, purpose) = role_of(&by[k].0);
        let r = Reader {
            who: Requester {
                identity: by[k].0.clone(),
                role,
            },
            institution: "sim".into(),
            purpose,
            token: None,
            asked: None,
        };
        if node.vault.person(&r, id, &["cnss"]).is_err() {
            failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    };
    // Eight readers at once, so that audit appends share their fsyncs.
    let chunk = jobs.len().div_ceil(8).max(1);
    std::thread::scope(|s| {
        for part in jobs.chunks(chunk) {
            let read = &read;
            s.spawn(move || {
                for (k, id) in part {
                    read(*k, id);
                }
            });
        }
    });
    // Honey reads last: the custodians refuse them and quarantine whoever made one.
    for (k, id) in &honey {
        read(*k, id);
    }
    let failed = failures.into_inner();
    say(&format!(
        "  {failed} reads refused ({} of them asked for honey records)",
        honey.len()
    ));
    Ok(())
}

fn write_dump(dir: &Path, dump: &Dump, fund: &Fund) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut files = Vec::new();
    for (name, bytes) in &dump.files {
        let p = dir.join(name);
        std::fs::write(&p, bytes).with_context(|| format!("cannot write {}", p.display()))?;
        files.push(p);
    }
    let mut truth = String::from("file,line,class,cnss,field\n");
    for t in &dump.truth {
        truth.push_str(&format!(
            "{},{},{},{},{}\n",
            t.file,
            t.line,
            t.class,
            t.person.map_or("", |i| fund.persons[i].cnss.as_str()),
            t.field.unwrap_or("")
        ));
    }
    std::fs::write(dir.join("truth.csv"), truth)?;
    std::fs::write(dir.join("sources.txt"), dump.sources.join("\n") + "\n")?;
    Ok(files)
}

fn score(
    variant: &'static str,
    dump: &Dump,
    files: &[PathBuf],
    scan: &leak::Scan,
    verdicts: &[Verdict],
    ids: &[String],
    // The node's audit log as attribution reads it, and its count of persons.
    (accesses, persons): (&[Read], u64),
) -> Score {
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let by_row: HashMap<(&str, u64), &Verdict> = verdicts
        .iter()
        .filter_map(|v| Some(((names.get(v.file as usize)?.as_str(), v.line), v)))
        .collect();
    let mut confusion: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    let (mut tp, mut fp, mut fneg, mut exact) = (0u64, 0u64, 0u64, 0u64);
    let mut truth_persons = HashSet::new();
    for t in &dump.truth {
        let got = by_row
            .get(&(t.file.as_str(), t.line))
            .map_or("missing", |v| v.class.label());
        *confusion
            .entry(t.class.into())
            .or_default()
            .entry(got.into())
            .or_insert(0) += 1;
        let truly = matches!(
            t.class,
            "genuine-current" | "genuine-older" | "altered" | "honey" | "canary"
        );
        let said = by_row
            .get(&(t.file.as_str(), t.line))
            .is_some_and(|v| v.class.ours());
        match (truly, said) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fneg += 1,
            _ => {}
        }
        exact += u64::from(got == t.class);
        if truly
            && !matches!(t.class, "honey" | "canary")
            && let Some(i) = t.person
        {
            truth_persons.insert(ids[i].as_str());
        }
    }
    // Verdicts on rows the truth does not list (a line the generator did not label) count
    // as false when called ours.
    let labelled: HashSet<(&str, u64)> = dump
        .truth
        .iter()
        .map(|t| (t.file.as_str(), t.line))
        .collect();
    fp += verdicts
        .iter()
        .filter(|v| v.class.ours())
        .filter(|v| {
            names
                .get(v.file as usize)
                .is_none_or(|n| !labelled.contains(&(n.as_str(), v.line)))
        })
        .count() as u64;
    let found: HashSet<&str> = verdicts
        .iter()
        .filter(|v| v.class.ours())
        .filter_map(|v| v.person.as_deref())
        .collect();
    let affected = truth_persons.iter().filter(|p| found.contains(*p)).count();
    let named: Vec<String> = if !scan.summary.canaries.is_empty() {
        // "partner.delta (export 0123…)" names partner.delta.
        let mut n: Vec<String> = scan
            .summary
            .canaries
            .keys()
            .map(|r| r.split(" (").next().unwrap_or(r).to_owned())
            .collect();
        n.sort();
        n.dedup();
        n
    } else if !scan.summary.honey.is_empty() {
        let mut n: Vec<String> = scan
            .summary
            .honey
            .iter()
            .flat_map(|(_, r)| r.clone())
            .collect();
        n.sort();
        n.dedup();
        n
    } else {
        let mut n: Vec<String> = scan
            .summary
            .candidates
            .iter()
            .filter(|c| c.chance_log10 <= SIGNIFICANT_LOG10)
            .map(|c| c.identity.clone())
            .collect();
        n.sort();
        n
    };
    let mut sources = dump.sources.clone();
    sources.sort();
    let ratio = |a: u64, b: u64| if b == 0 { 1.0 } else { a as f64 / b as f64 };
    Score {
        variant,
        rows: dump.truth.len() as u64,
        ours_precision: ratio(tp, tp + fp),
        ours_recall: ratio(tp, tp + fneg),
        affected_recall: ratio(affected as u64, truth_persons.len() as u64),
        confusion,
        exact,
        attribution_correct: named == sources,
        named,
        fewest_rows: fewest_rows(&found, &sources, accesses, persons),
        sources,
        scan_seconds: scan.summary.seconds,
    }
}

/// The fewest leaked persons from which attribution names a true source, in 5 of 5 draws.
fn fewest_rows(
    found: &HashSet<&str>,
    sources: &[String],
    accesses: &[Read],
    persons: u64,
) -> Option<usize> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut pool: Vec<&str> = found.iter().copied().collect();
    pool.sort_unstable();
    let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(7);
    for k in [
        1usize, 2, 3, 4, 5, 6, 8, 10, 12, 15, 20, 25, 30, 40, 50, 75, 100,
    ] {
        if k > pool.len() {
            break;
        }
        let ok = (0..5).all(|_| {
            pool.shuffle(&mut rng);
            let mut att = Attribution::new(pool[..k].iter().copied());
            for r in accesses.iter().filter(|r| r.released) {
                att.read(&Access {
                    identity: &r.identity,
                    role: &r.role,
                    subject: &r.subject,
                    time_ms: r.time_ms,
                });
            }
            att.candidates(persons).first().is_some_and(|c| {
                let who = c.identity.strip_prefix("export/").unwrap_or(&c.identity);
                sources.iter().any(|s| s == who) && c.chance_log10 <= SIGNIFICANT_LOG10
            })
        });
        if ok {
            return Some(k);
        }
    }
    None
}

/// Prints the scores as a Markdown table.
pub fn print_table(scores: &[Score]) {
    println!(
        "| variant | rows | ours precision | ours recall | affected recall | exact class | attribution | fewest rows |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---:|");
    for s in scores {
        println!(
            "| {} | {} | {:.3} | {:.3} | {:.3} | {} ({:.1}%) | {} → {} | {} |",
            s.variant,
            s.rows,
            s.ours_precision,
            s.ours_recall,
            s.affected_recall,
            s.exact,
            100.0 * s.exact as f64 / s.rows.max(1) as f64,
            s.sources.join("+"),
            if s.attribution_correct {
                "right".to_owned()
            } else {
                format!("WRONG ({})", s.named.join("+"))
            },
            s.fewest_rows.map_or("-".into(), |n| n.to_string())
        );
    }
    println!();
    println!("Confusion (truth → scanned: rows):");
    for s in scores {
        let parts: Vec<String> = s
            .confusion
            .iter()
            .map(|(t, m)| {
                let inner: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!("{t} → {}", inner.join(", "))
            })
            .collect();
        println!("- {}: {}", s.variant, parts.join("; "));
    }
}
