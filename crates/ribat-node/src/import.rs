//! `ribat import`: the fund's files into the embedded node, with progress and a report.

use crate::bail;
use crate::embedded::Embedded;
use crate::error::{Context, Result};
use crate::home::Home;
use crate::passphrases::Source;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ribat_import::importer::{Importer, Progress, Summary};
use ribat_import::records::RecordSealer;
use ribat_policy::Table;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// Options of an import.
pub struct ImportOptions {
    /// Files or directories.
    pub inputs: Vec<PathBuf>,
    /// CNSS numbers of honey persons (CSV with a `cnss` header).
    pub honey: Option<PathBuf>,
    /// CNSS numbers of public figures (CSV with a `cnss` header).
    pub public_figures: Option<PathBuf>,
    /// Where rejected files and lines are listed.
    pub report: Option<PathBuf>,
    /// Sealing threads.
    pub threads: usize,
}

/// Runs an import; returns its summary.
pub fn run(home: &Home, passphrases: &Source, opts: &ImportOptions) -> Result<Summary> {
    let node = match Embedded::open(home, passphrases) {
        Ok(n) => n,
        Err(e) if crate::mesh::is_node(home) => {
            return Err(e).context(
                "cannot open this mesh node for an import (its directory imports only while its own process is stopped; while it runs, send the files to its gateway: `ribat import --gateway HOST:PORT --identity DIR FILES` (an identity with role `intake`))",
            );
        }
        Err(e) => return Err(e),
    };
    if opts.honey.is_some() && node.custodians.is_empty() {
        bail!(
            "--honey: this node reaches every custodian over the network (a mesh node), and a honey list is registered in each custodian's own directory; that is not built for the mesh yet, so nothing was imported — import without --honey"
        );
    }
    let leak = node.leak_digester("import")?;
    let sealer = RecordSealer::new(&node.group, &node.vault.index)?.with_leak_digests(&leak);
    let importer = Importer::new(node.vault.store.as_ref(), &sealer, opts.threads, 5_000);
    let bar = if std::io::stderr().is_terminal() {
        let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        b.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} rows  {per_sec}  eta {eta}",
            )
            .context("progress bar template")?,
        );
        Some(b)
    } else {
        None
    };
    let mut on_progress = |p: Progress| {
        if let Some(b) = &bar {
            b.set_length(p.total);
            b.set_position(p.done);
        }
    };
    let summary = importer.run(&opts.inputs, &mut on_progress)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(h) = &opts.honey {
        let n = install_honey(&node, &sealer, h)?;
        println!("honey list: {n} persons registered with every custodian");
    }
    if let Some(p) = &opts.public_figures {
        let (n, path) = write_public_figures(home, &sealer, p)?;
        println!(
            "public figures: {n} persons listed in {} (a gateway reads it at start)",
            path.display()
        );
    }
    let report = opts
        .report
        .clone()
        .unwrap_or_else(|| home.root().join("import-rejects.csv"));
    write_report(&report, &summary)?;
    let rate = (summary.persons.stored + summary.declarations.stored + summary.employers.stored)
        as f64
        / summary.seconds.max(1e-9);
    println!(
        "imported {} files in {:.1} s ({:.0} records/s): employers {} new, {} already there; persons {} new, {} already there; declarations {} new, {} already there",
        summary.files,
        summary.seconds,
        rate,
        summary.employers.stored,
        summary.employers.already,
        summary.persons.stored,
        summary.persons.already,
        summary.declarations.stored,
        summary.declarations.already
    );
    if summary.rejects.is_empty() {
        println!("no file or line was rejected");
    } else {
        println!(
            "{} files or lines rejected, listed with their reasons in {}",
            summary.rejects.len(),
            report.display()
        );
        for r in summary.rejects.iter().take(5) {
            println!("  {}:{}: {}", r.file.display(), r.line, r.reason);
        }
    }
    Ok(summary)
}

fn write_report(path: &Path, s: &Summary) -> Result<()> {
    let mut w = csv::Writer::from_path(path)
        .with_context(|| format!("cannot write the report {}", path.display()))?;
    w.write_record(["file", "line", "reason"])?;
    for r in &s.rejects {
        w.write_record([
            r.file.display().to_string(),
            r.line.to_string(),
            r.reason.clone(),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Writes HOME/public-figures.txt from a CSV of CNSS numbers; returns how many and where.
pub fn write_public_figures(
    home: &Home,
    sealer: &RecordSealer<'_>,
    csv_path: &Path,
) -> Result<(usize, PathBuf)> {
    let ids = person_ids(sealer, csv_path, "public-figure list")?;
    let path = home.root().join(crate::serve::PUBLIC_FIGURES_FILE);
    let mut text = String::from("# record ids of public figures (opaque), one per line\n");
    for (_, id) in &ids {
        text.push_str(id);
        text.push('\n');
    }
    ribat_identity::ca::write_file(&path, text.as_bytes(), false)?;
    Ok((ids.len(), path))
}

/// The persons a CSV with a `cnss` header lists, as (table, record id).
fn person_ids(sealer: &RecordSealer<'_>, path: &Path, what: &str) -> Result<Vec<(String, String)>> {
    let mut rd = csv::Reader::from_path(path)
        .with_context(|| format!("cannot read the {what} {}", path.display()))?;
    if rd.headers()?.iter().next() != Some("cnss") {
        bail!("{}: the {what} needs a `cnss` header", path.display());
    }
    let mut ids = Vec::new();
    for (n, rec) in rd.records().enumerate() {
        let rec = rec.with_context(|| format!("{} line {}", path.display(), n + 2))?;
        let cnss = rec.get(0).unwrap_or_default();
        ids.push((Table::Persons.as_str().to_owned(), sealer.person_id(cnss)?));
    }
    Ok(ids)
}

/// Adds the honey persons listed in `path` to every custodian's honey list.
pub fn install_honey(node: &Embedded, sealer: &RecordSealer<'_>, path: &Path) -> Result<usize> {
    let ids = person_ids(sealer, path, "honey list")?;
    for c in &node.custodians {
        c.add_honey(&ids)?;
    }
    if node.custodians.len() < node.group.custodians {
        eprintln!(
            "warning: only the custodians that opened registered the honey list; re-run with every passphrase to reach the others"
        );
    }
    Ok(ids.len())
}
