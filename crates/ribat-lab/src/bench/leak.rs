//! `ribat bench leak`: a dump of every person of a generated fund, matched against the
//! node that holds the fund, against parsing the same file alone (same run; medians of
//! three turns each).

use crate::embedded::Embedded;
use crate::home::Home;
use crate::leak::{self, ScanOptions};
use ribat_import::importer::Importer;
use ribat_import::records::RecordSealer;
use ribat_node::{Context, Result};
use ribat_sim::leak::{Reads, Variant, make};
use serde::Serialize;
use std::time::Instant;

#[derive(Serialize)]
struct Report {
    rows: u64,
    seconds: f64,
    rows_per_s: f64,
    parse_only_seconds: f64,
    ratio: f64,
    ours: u64,
    genuine_current: u64,
    threads: usize,
    import_seconds: f64,
    /// Every timed scan, seconds (`seconds` is their median).
    scan_samples: Vec<f64>,
    /// Every timed parse alone, seconds (`parse_only_seconds` is their median).
    parse_samples: Vec<f64>,
}

/// Timed runs of each, taking turns: a shared 2-core VM varies by a third from one minute to
/// the next (two runs of this bench on one day gave ratios of 2.87 and 3.12), and
/// one run would measure the neighbours as much as the code.
const RUNS: usize = 5;

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied().unwrap_or(0.0)
}

/// Runs the benchmark on a fund of `rows` persons.
pub fn run(home: &Home, rows: usize, seed: u64, json: bool) -> Result<()> {
    let say = |m: &str| {
        if !json {
            println!("{m}");
        }
    };
    let dir = crate::bench::node::fresh_dir(home, "bench-leak")?;
    let src = dir.join("source");
    say(&format!(
        "generating {rows} persons with one month of declarations…"
    ));
    let spec = ribat_sim::FundSpec::new(rows, (rows / 12).max(1), 1, seed);
    let fund = ribat_sim::files::write(&spec, &src)?;
    let (node_home, pass) = crate::bench::node::keyed_node(&dir)?;
    let node = Embedded::open(&node_home, &pass)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    say("importing it sealed, with leak digests…");
    let t = Instant::now();
    {
        let leak = node.leak_digester("import")?;
        let sealer = RecordSealer::new(&node.group, &node.vault.index)?.with_leak_digests(&leak);
        Importer::new(node.vault.store.as_ref(), &sealer, threads, 5_000).run(
            &[
                src.join("employers.csv"),
                src.join("persons.csv"),
                src.join("ebds"),
            ],
            &mut |_| {},
        )?;
    }
    let import_seconds = t.elapsed().as_secs_f64();
    // The whole fund, leaked by one recipient, every column.
    let everyone = Reads {
        by: vec![(
            ribat_sim::leak::ALPHA.to_owned(),
            (0..fund.persons.len()).collect(),
        )],
    };
    let dump = make(&fund, &everyone, Variant::Full, seed);
    drop(fund);
    let file = dir.join("dump.csv");
    for (_, bytes) in &dump.files {
        std::fs::write(&file, bytes)?;
    }
    drop(dump);
    let mut parse_samples = Vec::new();
    let mut scan_samples = Vec::new();
    let mut last = None;
    // Parse and scan take turns, so that a slow minute of the machine weighs on both.
    for run in 1..=RUNS {
        say(&format!("run {run} of {RUNS}: parsing the dump alone…"));
        let t = Instant::now();
        let (parsed, _, refused) = leak::read_all(std::slice::from_ref(&file), None);
        parse_samples.push(t.elapsed().as_secs_f64());
        ribat_node::ensure!(refused.is_empty(), "the dump was refused: {refused:?}");
        let parsed_rows = parsed.len();
        drop(parsed);
        say(&format!(
            "run {run} of {RUNS}: scanning it (parse, match, classify)…"
        ));
        let t = Instant::now();
        let mut scan = leak::scan_into(
            &node,
            &ScanOptions {
                files: vec![file.clone()],
                encoding: None,
                threads,
                attribute: false,
                matching: leak::Matching::Auto,
                checks: leak::Checks::Records,
            },
            None,
            &mut |_| {},
        )?;
        scan_samples.push(t.elapsed().as_secs_f64());
        // Neither side's freeing of its rows is timed (the parse's happens after its
        // timer too), and neither may run under the other's next turn.
        scan.finish_cleanup();
        ribat_node::ensure!(
            scan.summary.rows == parsed_rows as u64,
            "the scan classified {} rows of {parsed_rows}",
            scan.summary.rows
        );
        last = Some(scan);
    }
    let scan = last.context("no run")?;
    let seconds = median(&scan_samples);
    let parse_only_seconds = median(&parse_samples);
    let r = Report {
        rows: scan.summary.rows,
        seconds,
        rows_per_s: scan.summary.rows as f64 / seconds.max(1e-9),
        parse_only_seconds,
        ratio: seconds / parse_only_seconds.max(1e-9),
        ours: scan.summary.ours,
        genuine_current: scan
            .summary
            .classes
            .get("genuine-current")
            .copied()
            .unwrap_or(0),
        threads,
        import_seconds,
        scan_samples,
        parse_samples,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} rows matched in {:.2} s ({:.0} rows/s); parsing alone {:.2} s; ratio {:.2} ({} of the fund's, {} genuine-current; {threads} threads)",
            r.rows,
            r.seconds,
            r.rows_per_s,
            r.parse_only_seconds,
            r.ratio,
            r.ours,
            r.genuine_current
        );
    }
    Ok(())
}
