//! The import: files in, validated, sealed in parallel, stored in durable batches.
//!
//! ```text
//!   inputs ─► employers.csv ─► persons.csv ─► DS_*.txt (sorted)
//!     each row: validate ─► reject (file, line, reason) │ id ─► already stored? skip
//!     batch of rows ─► seal on every core ─► one transaction (fsync) ─► progress
//! ```
//!
//! Resumable by construction: record ids are derived from the identifiers under the index
//! key, and a committed batch is durable, so after a crash or `kill -9` a re-run skips what
//! was stored and finishes the rest without duplicates. Nothing is dropped silently:
//! every refused file or row is in the returned rejects.

use crate::csv_files::{CsvError, read_employers, read_persons};
use crate::ebds;
use crate::model::{DeclarationRow, EmployerRow, PersonRow};
use crate::records::{RecordSealer, declaration_id};
use ribat_crypto::CryptoError;
use ribat_crypto::blind_index::normalise_cin;
use ribat_policy::Table;
use ribat_store::{Store, StoreError, StoredRecord};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;
use thiserror::Error;

/// A refused file or row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// File.
    pub file: PathBuf,
    /// 1-based line; 0 for the file as a whole.
    pub line: usize,
    /// Why (never the refused value).
    pub reason: String,
}

/// Stored and already-present counts of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Sealed and stored by this run.
    pub stored: u64,
    /// Found already stored (a re-run after a crash).
    pub already: u64,
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Summary {
    /// Files read.
    pub files: usize,
    /// Employers.
    pub employers: Counts,
    /// Persons.
    pub persons: Counts,
    /// Declaration lines.
    pub declarations: Counts,
    /// Refused files and rows.
    pub rejects: Vec<Reject>,
    /// Wall-clock seconds.
    pub seconds: f64,
}

/// Progress after each durable batch.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Rows handled (stored, skipped or rejected).
    pub done: u64,
    /// Rows in all inputs (estimated from line counts).
    pub total: u64,
}

/// Why an import stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ImportError {
    /// An input cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// No input file was found.
    #[error(
        "nothing to import in {0}: expected employers.csv, persons.csv and DS_<affiliation>_<MMAAAA>.txt files"
    )]
    NoInput(String),
    /// The store failed; what was committed before is kept.
    #[error("store failed (batches committed before this are kept; re-run to finish): {0}")]
    Store(#[from] StoreError),
    /// Sealing failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// A sealing thread died.
    #[error("a sealing worker stopped unexpectedly; re-run the import to finish")]
    Worker,
}

/// Runs imports into one store.
pub struct Importer<'a> {
    store: &'a dyn Store,
    sealer: &'a RecordSealer<'a>,
    threads: usize,
    batch: usize,
}

enum Kind {
    Employers,
    Persons,
    Ebds,
}

fn classify(p: &Path) -> Option<Kind> {
    let name = p.file_name()?.to_str()?;
    if name.ends_with("employers.csv") {
        Some(Kind::Employers)
    } else if name.ends_with("persons.csv") {
        Some(Kind::Persons)
    } else if name.starts_with("DS_") && name.ends_with(".txt") {
        Some(Kind::Ebds)
    } else {
        None
    }
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<(), ImportError> {
    let io = |source| ImportError::Io {
        path: p.to_owned(),
        source,
    };
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort();
        for e in entries {
            walk(&e, out)?;
        }
    } else {
        std::fs::metadata(p).map_err(io)?;
        out.push(p.to_owned());
    }
    Ok(())
}

fn count_lines(p: &Path) -> Result<u64, ImportError> {
    let bytes = std::fs::read(p).map_err(|source| ImportError::Io {
        path: p.to_owned(),
        source,
    })?;
    Ok(bytes.iter().filter(|&&b| b == b'\n').count() as u64)
}

/// The files under some inputs, by kind, as an import reads them (directories walked in
/// name order).
#[derive(Debug, Default)]
pub struct Ordered {
    /// `employers.csv` files.
    pub employers: Vec<PathBuf>,
    /// `persons.csv` files.
    pub persons: Vec<PathBuf>,
    /// e-BDS declaration files.
    pub declarations: Vec<PathBuf>,
    /// Files that are none of those (not read).
    pub skipped: Vec<PathBuf>,
}

impl Ordered {
    /// Every file read, in the import's order: employers, persons, then declarations.
    pub fn files(&self) -> impl Iterator<Item = &PathBuf> {
        self.employers
            .iter()
            .chain(&self.persons)
            .chain(&self.declarations)
    }
}

/// The files under `inputs`, as an import reads them.
pub fn in_import_order(inputs: &[PathBuf]) -> Result<Ordered, ImportError> {
    let mut found = Vec::new();
    for i in inputs {
        walk(i, &mut found)?;
    }
    let mut o = Ordered::default();
    for f in found {
        match classify(&f) {
            Some(Kind::Employers) => o.employers.push(f),
            Some(Kind::Persons) => o.persons.push(f),
            Some(Kind::Ebds) => o.declarations.push(f),
            None => o.skipped.push(f),
        }
    }
    Ok(o)
}

impl<'a> Importer<'a> {
    /// An importer sealing on `threads` cores and committing `batch` records at a time.
    pub fn new(
        store: &'a dyn Store,
        sealer: &'a RecordSealer<'a>,
        threads: usize,
        batch: usize,
    ) -> Self {
        Self {
            store,
            sealer,
            threads: threads.max(1),
            batch: batch.max(1),
        }
    }

    /// Imports every file under `inputs`.
    pub fn run(
        &self,
        inputs: &[PathBuf],
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Summary, ImportError> {
        let t0 = Instant::now();
        let Ordered {
            employers,
            persons,
            declarations: ebds,
            skipped,
        } = in_import_order(inputs)?;
        let mut sum = Summary::default();
        for f in skipped {
            sum.rejects.push(Reject {
                file: f,
                line: 0,
                reason: "not a file ribat imports (employers.csv, persons.csv, DS_<affiliation>_<MMAAAA>.txt); skipped".into(),
            });
        }
        if employers.is_empty() && persons.is_empty() && ebds.is_empty() {
            let shown: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
            return Err(ImportError::NoInput(shown.join(", ")));
        }
        let mut total = 0;
        for f in employers.iter().chain(&persons).chain(&ebds) {
            total += count_lines(f)?;
        }
        // An import into empty tables is a bulk load: the store may build its secondary
        // indexes once at the end. Random-keyed index updates otherwise dominate at scale.
        let bulk = [Table::Employers, Table::Persons, Table::Declarations]
            .iter()
            .map(|t| self.store.count(t.as_str()))
            .collect::<Result<Vec<_>, _>>()?
            .iter()
            .all(|&n| n == 0);
        if bulk {
            self.store.set_bulk(true)?;
        }
        let phases = self.phases(&employers, &persons, &ebds, total, &mut sum, progress);
        if bulk {
            // Also after a failure: a store left in bulk mode would answer lookups slowly.
            self.store.set_bulk(false)?;
        }
        phases?;
        progress(Progress { done: total, total });
        sum.seconds = t0.elapsed().as_secs_f64();
        Ok(sum)
    }

    /// Employers, then persons, then declarations.
    fn phases(
        &self,
        employers: &[PathBuf],
        persons: &[PathBuf],
        ebds: &[PathBuf],
        total: u64,
        sum: &mut Summary,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), ImportError> {
        let mut state = Run {
            done: 0,
            total,
            known_persons: HashSet::new(),
            known_employers: HashSet::new(),
        };
        for f in employers {
            sum.files += 1;
            self.employers(f, sum, &mut state, progress)?;
        }
        for f in persons {
            sum.files += 1;
            self.persons(f, sum, &mut state, progress)?;
        }
        // Declarations of every file are pooled so that commits carry full batches: files
        // hold a dozen lines on average, and a commit per file would be an fsync per file.
        let mut pooled = Vec::new();
        for f in ebds {
            sum.files += 1;
            self.declarations(f, sum, &mut state, &mut pooled)?;
        }
        let counts = self.store_all(
            Table::Declarations.as_str(),
            pooled,
            |(_, (person, employer, d))| self.sealer.declaration(d, person, employer, 1),
            &mut state,
            progress,
        )?;
        add(&mut sum.declarations, counts);
        Ok(())
    }

    /// Reads a register: `None` when the whole file is refused; rejected rows are recorded.
    fn csv_rows<T>(
        &self,
        f: &Path,
        read: fn(&[u8]) -> Result<crate::csv_files::Rows<T>, CsvError>,
        sum: &mut Summary,
    ) -> Result<Option<Vec<(usize, T)>>, ImportError> {
        let bytes = self.read(f)?;
        match read(&bytes) {
            Ok((rows, bad)) => {
                reject_rows(f, bad, sum);
                Ok(Some(rows))
            }
            Err(e) => {
                refuse_file(f, &e, sum);
                Ok(None)
            }
        }
    }

    fn read(&self, f: &Path) -> Result<Vec<u8>, ImportError> {
        std::fs::read(f).map_err(|source| ImportError::Io {
            path: f.to_owned(),
            source,
        })
    }

    fn employers(
        &self,
        f: &Path,
        sum: &mut Summary,
        st: &mut Run,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), ImportError> {
        let Some(rows) = self.csv_rows(f, read_employers, sum)? else {
            return Ok(());
        };
        let mut first: HashMap<String, usize> = HashMap::new();
        let mut todo: Vec<(String, EmployerRow)> = Vec::new();
        for (line, e) in rows {
            if let Some(r) = duplicate(&mut first, &e.affiliation, f, line, "affiliation number") {
                sum.rejects.push(r);
                continue;
            }
            let id = self.sealer.employer_id(&e.affiliation)?;
            st.known_employers.insert(id.clone());
            todo.push((id, e));
        }
        let counts = self.store_all(
            Table::Employers.as_str(),
            todo,
            |(id, e)| self.sealer.employer(id, e, 1),
            st,
            progress,
        )?;
        add(&mut sum.employers, counts);
        Ok(())
    }

    fn persons(
        &self,
        f: &Path,
        sum: &mut Summary,
        st: &mut Run,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<(), ImportError> {
        let Some(rows) = self.csv_rows(f, read_persons, sum)? else {
            return Ok(());
        };
        let mut cnss_seen: HashMap<String, usize> = HashMap::with_capacity(rows.len());
        let mut cin_seen: HashMap<String, usize> = HashMap::with_capacity(rows.len());
        let mut todo: Vec<(String, PersonRow)> = Vec::with_capacity(rows.len());
        for (line, p) in rows {
            let cin = normalise_cin(&p.cin)?;
            let dup = duplicate(&mut cnss_seen, &p.cnss, f, line, "CNSS number")
                .or_else(|| duplicate(&mut cin_seen, &cin, f, line, "CIN"));
            if let Some(r) = dup {
                sum.rejects.push(r);
                continue;
            }
            let id = self.sealer.person_id(&p.cnss)?;
            st.known_persons.insert(id.clone());
            todo.push((id, p));
        }
        let counts = self.store_all(
            Table::Persons.as_str(),
            todo,
            |(id, p)| self.sealer.person(id, p, 1),
            st,
            progress,
        )?;
        add(&mut sum.persons, counts);
        Ok(())
    }

    /// Parses and checks one e-BDS file; its accepted lines join `pooled` as
    /// (declaration id, (person id, employer id, row)).
    #[allow(clippy::type_complexity)]
    fn declarations(
        &self,
        f: &Path,
        sum: &mut Summary,
        st: &mut Run,
        pooled: &mut Vec<(String, (String, String, DeclarationRow))>,
    ) -> Result<(), ImportError> {
        let bytes = self.read(f)?;
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let lines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        let parsed = match ebds::parse(name, &bytes) {
            Ok(p) => p,
            Err(e) => {
                refuse_declaration(f, e.problems(), sum);
                st.done += lines;
                return Ok(());
            }
        };
        let employer = self.sealer.employer_id(&parsed.header.affiliation)?;
        if !st.known_employers.contains(&employer)
            && self
                .store
                .version(Table::Employers.as_str(), &employer)?
                .is_none()
        {
            sum.rejects.push(Reject {
                file: f.to_owned(),
                line: 2,
                reason: "file refused: the employer is not in the employers register; import employers.csv first".into(),
            });
            st.done += lines;
            return Ok(());
        }
        // One file is one declaration: a line whose person is unknown refuses all of it,
        // so that the vault never holds less than the file's totals say.
        let mut accepted = Vec::with_capacity(parsed.rows.len());
        let mut unknown = Vec::new();
        for (row, line) in parsed.rows.into_iter().zip(parsed.lines) {
            let person = self.sealer.person_id(&row.cnss)?;
            if !st.known_persons.contains(&person) {
                if self
                    .store
                    .version(Table::Persons.as_str(), &person)?
                    .is_none()
                {
                    unknown.push(ebds::Rejected {
                        line,
                        reason: "the insured number is not in the persons register; import persons.csv first".into(),
                    });
                    continue;
                }
                st.known_persons.insert(person.clone());
            }
            accepted.push((person, row));
        }
        if !unknown.is_empty() {
            refuse_declaration(f, unknown.into_iter(), sum);
            st.done += lines;
            return Ok(());
        }
        st.known_employers.insert(employer.clone());
        let accepted_before = pooled.len();
        for (person, row) in accepted {
            pooled.push((
                declaration_id(&row.period, &person, &employer),
                (person, employer.clone(), row),
            ));
        }
        // Header and totals lines count as done now; employee lines when committed.
        st.done += lines.saturating_sub((pooled.len() - accepted_before) as u64);
        Ok(())
    }

    /// Skips what is stored, seals the rest on every core, commits batch by batch.
    ///
    /// Sealing and storing overlap: a writer thread commits batch `k` while the cores seal
    /// batch `k+1`. Progress is reported only for committed (acknowledged) batches.
    fn store_all<T: Sync>(
        &self,
        table: &str,
        items: Vec<(String, T)>,
        seal: impl Fn(&(String, T)) -> Result<StoredRecord, CryptoError> + Sync,
        st: &mut Run,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Counts, ImportError> {
        let mut counts = Counts::default();
        // A table that is empty needs no per-record check; after a crash it is not empty.
        let check = self.store.count(table)? > 0;
        let store = self.store;
        std::thread::scope(|s| -> Result<(), ImportError> {
            let (to_writer, batches) = std::sync::mpsc::sync_channel::<(Vec<StoredRecord>, u64)>(1);
            let (to_main, acks) = std::sync::mpsc::channel::<u64>();
            let writer = s.spawn(move || -> Result<(), ImportError> {
                for (records, handled) in batches {
                    store.put_records(&records)?;
                    if to_main.send(handled).is_err() {
                        break;
                    }
                }
                Ok(())
            });
            let ack = |st: &mut Run, handled: u64, progress: &mut dyn FnMut(Progress)| {
                st.done += handled;
                progress(Progress {
                    done: st.done,
                    total: st.total,
                });
            };
            for chunk in items.chunks(self.batch) {
                let fresh: Vec<&(String, T)> = if check {
                    let mut v = Vec::with_capacity(chunk.len());
                    for item in chunk {
                        if store.version(table, &item.0)?.is_some() {
                            counts.already += 1;
                        } else {
                            v.push(item);
                        }
                    }
                    v
                } else {
                    chunk.iter().collect()
                };
                let sealed = self.seal_parallel(&fresh, &seal)?;
                counts.stored += sealed.len() as u64;
                if to_writer.send((sealed, chunk.len() as u64)).is_err() {
                    break; // the writer stopped; its error is reported below
                }
                while let Ok(h) = acks.try_recv() {
                    ack(st, h, progress);
                }
            }
            drop(to_writer);
            let written = writer.join().map_err(|_| ImportError::Worker)?;
            while let Ok(h) = acks.try_recv() {
                ack(st, h, progress);
            }
            written
        })?;
        Ok(counts)
    }

    fn seal_parallel<T: Sync>(
        &self,
        items: &[&(String, T)],
        seal: &(impl Fn(&(String, T)) -> Result<StoredRecord, CryptoError> + Sync),
    ) -> Result<Vec<StoredRecord>, ImportError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let per = items.len().div_ceil(self.threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = items
                .chunks(per)
                .map(|c| s.spawn(move || c.iter().map(|i| seal(i)).collect::<Result<Vec<_>, _>>()))
                .collect();
            let mut out = Vec::with_capacity(items.len());
            for h in handles {
                out.extend(h.join().map_err(|_| ImportError::Worker)??);
            }
            Ok(out)
        })
    }
}

struct Run {
    done: u64,
    total: u64,
    known_persons: HashSet<String>,
    known_employers: HashSet<String>,
}

/// Records the first line of `key`; a later line with the same key is a reject.
fn duplicate(
    seen: &mut HashMap<String, usize>,
    key: &str,
    f: &Path,
    line: usize,
    what: &str,
) -> Option<Reject> {
    match seen.get(key) {
        Some(first) => Some(Reject {
            file: f.to_owned(),
            line,
            reason: format!("{what} already on line {first}"),
        }),
        None => {
            seen.insert(key.to_owned(), line);
            None
        }
    }
}

fn add(c: &mut Counts, d: Counts) {
    c.stored += d.stored;
    c.already += d.already;
}

fn refuse_file(f: &Path, e: &CsvError, sum: &mut Summary) {
    let (line, reason) = match e {
        CsvError::Header { .. } => (1, format!("file refused: {e}")),
        CsvError::Unreadable { line, reason } => {
            (*line as usize, format!("file refused: {reason}"))
        }
    };
    let reason = reason.replacen(&format!("line {line}: "), "", 1);
    sum.rejects.push(Reject {
        file: f.to_owned(),
        line,
        reason,
    });
}

/// Every wrong line of a declaration file, each as a refusal of the whole file.
fn refuse_declaration(f: &Path, problems: impl Iterator<Item = ebds::Rejected>, sum: &mut Summary) {
    sum.rejects.extend(problems.map(|r| Reject {
        file: f.to_owned(),
        line: r.line,
        reason: format!("file refused: {}", r.reason),
    }));
}

fn reject_rows(f: &Path, bad: Vec<ebds::Rejected>, sum: &mut Summary) {
    sum.rejects.extend(bad.into_iter().map(|r| Reject {
        file: f.to_owned(),
        line: r.line,
        reason: r.reason,
    }));
}
