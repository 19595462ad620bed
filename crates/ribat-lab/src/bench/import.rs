//! `ribat bench import`: sealing and storing a generated fund, against the same files
//! parsed by the same parsers and inserted in clear into SQLite, in the same run, with the
//! same batch size and durability (WAL, synchronous=FULL).
//!
//! Everything happens under `HOME/bench-import`, which is replaced on every run. Generating
//! the files and opening the custodians (argon2) are not timed.

use crate::embedded::Embedded;
use crate::home::Home;
use ribat_import::csv_files::{read_employers, read_persons};
use ribat_import::ebds;
use ribat_import::importer::Importer;
use ribat_import::records::RecordSealer;
type Result<T, E = super::BenchError> = std::result::Result<T, E>;
use ribat_node::bail;
use rusqlite::{Connection, params};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Instant;

const BATCH: usize = 5_000;

#[derive(Serialize)]
struct Report {
    persons: u64,
    employers: u64,
    declarations: u64,
    threads: usize,
    seconds: f64,
    persons_per_s: f64,
    records_per_s: f64,
    plaintext_seconds: f64,
    ratio: f64,
    generate_seconds: f64,
    store_bytes: u64,
    plaintext_bytes: u64,
}

fn size(paths: &[PathBuf]) -> u64 {
    paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// Runs the benchmark.
pub fn run(home: &Home, persons: usize, seed: u64, threads: usize, json: bool) -> Result<()> {
    let dir = crate::bench::node::fresh_dir(home, "bench-import")?;
    let src = dir.join("source");
    let say = |m: &str| {
        if !json {
            println!("{m}");
        }
    };

    say(&format!(
        "generating {persons} persons with one month of declarations…"
    ));
    let t = Instant::now();
    let spec = ribat_sim::FundSpec::new(persons, (persons / 12).max(1), 1, seed);
    let fund = ribat_sim::files::write(&spec, &src)?;
    let generate_seconds = t.elapsed().as_secs_f64();
    drop(fund);

    // Keys for the bench node, passphrases drawn at random and kept beside it (owner-only).
    let (node_home, source) = crate::bench::node::keyed_node(&dir)?;
    let node = Embedded::open(&node_home, &source)?;
    let leak = node.leak_digester("import")?;
    let sealer = RecordSealer::new(&node.group, &node.vault.index)?.with_leak_digests(&leak);
    let inputs = vec![
        src.join("employers.csv"),
        src.join("persons.csv"),
        src.join("ebds"),
    ];

    say("importing (sealed)…");
    let importer = Importer::new(node.vault.store.as_ref(), &sealer, threads, BATCH);
    let t = Instant::now();
    let summary = importer.run(&inputs, &mut |_| {})?;
    let seconds = t.elapsed().as_secs_f64();
    if !summary.rejects.is_empty() {
        bail!(
            "the generated files were rejected: {:?}",
            summary.rejects.first()
        );
    }

    say("importing the same files in clear into SQLite (baseline)…");
    let plain = dir.join("plain.sqlite");
    let t = Instant::now();
    plaintext_import(&plain, &src)?;
    let plaintext_seconds = t.elapsed().as_secs_f64();

    let p = summary.persons.stored;
    let records = p + summary.employers.stored + summary.declarations.stored;
    let report = Report {
        persons: p,
        employers: summary.employers.stored,
        declarations: summary.declarations.stored,
        threads,
        seconds,
        persons_per_s: p as f64 / seconds,
        records_per_s: records as f64 / seconds,
        plaintext_seconds,
        ratio: seconds / plaintext_seconds,
        generate_seconds,
        store_bytes: size(&[
            node_home.store_file(),
            node_home.root().join("store.sqlite-wal"),
        ]),
        plaintext_bytes: size(&[plain.clone(), dir.join("plain.sqlite-wal")]),
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{} persons, {} employers, {} declarations sealed and stored in {:.1} s on {} threads: {:.0} persons/s ({:.0} records/s)",
            report.persons,
            report.employers,
            report.declarations,
            report.seconds,
            threads,
            report.persons_per_s,
            report.records_per_s
        );
        println!(
            "plaintext SQLite, same files and parsers: {:.1} s; ratio {:.1}x; store {:.0} MB vs {:.0} MB in clear",
            report.plaintext_seconds,
            report.ratio,
            report.store_bytes as f64 / 1e6,
            report.plaintext_bytes as f64 / 1e6
        );
    }
    Ok(())
}

/// The baseline: parse and validate exactly as the import does, insert in clear.
fn plaintext_import(db: &Path, src: &Path) -> Result<()> {
    let mut c = Connection::open(db)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.execute_batch(
        "CREATE TABLE employers (affiliation TEXT PRIMARY KEY, ice TEXT, name TEXT, activity TEXT, address TEXT, city TEXT, postal_code TEXT, agency TEXT);
         CREATE TABLE persons (cnss TEXT PRIMARY KEY, cin TEXT UNIQUE, given TEXT, surname TEXT, name_ar TEXT, birth_date TEXT, city TEXT, rib TEXT, employer TEXT);
         CREATE INDEX persons_name_birth ON persons (surname, given, birth_date);
         CREATE TABLE declarations (period TEXT, cnss TEXT, affiliation TEXT, days INTEGER, salary_real INTEGER, salary_capped INTEGER, allowance INTEGER, situation TEXT, PRIMARY KEY (cnss, period));",
    )?;
    let (employers, _) = read_employers(&std::fs::read(src.join("employers.csv"))?)?;
    for chunk in employers.chunks(BATCH) {
        let tx = c.transaction()?;
        {
            let mut st =
                tx.prepare_cached("INSERT INTO employers VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
            for (_, e) in chunk {
                st.execute(params![
                    e.affiliation,
                    e.ice,
                    e.name,
                    e.activity,
                    e.address,
                    e.city,
                    e.postal_code,
                    e.agency
                ])?;
            }
        }
        tx.commit()?;
    }
    let (persons, _) = read_persons(&std::fs::read(src.join("persons.csv"))?)?;
    for chunk in persons.chunks(BATCH) {
        let tx = c.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO persons VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for (_, p) in chunk {
                st.execute(params![
                    p.cnss,
                    p.cin,
                    p.given,
                    p.surname,
                    p.name_ar,
                    p.birth_date,
                    p.city,
                    p.rib,
                    p.employer
                ])?;
            }
        }
        tx.commit()?;
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(src.join("ebds"))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    let mut rows = Vec::new();
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let parsed =
            ebds::parse(&name, &std::fs::read(&f)?).map_err(|e| ribat_node::err!("{name}: {e}"))?;
        rows.extend(parsed.rows);
    }
    for chunk in rows.chunks(BATCH) {
        let tx = c.transaction()?;
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO declarations VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for d in chunk {
                st.execute(params![
                    d.period,
                    d.cnss,
                    d.affiliation,
                    d.days,
                    d.salary_real as i64,
                    d.salary_capped as i64,
                    d.allowance as i64,
                    d.situation
                ])?;
            }
        }
        tx.commit()?;
    }
    Ok(())
}
