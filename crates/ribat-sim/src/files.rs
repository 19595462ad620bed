//! The plaintext files a fund would hold, from a synthetic fund (`ribat sim generate`, the
//! benchmarks, and the synthetic persons an export's canaries are made of).
//!
//! ```text
//!   OUT/employers.csv                the employers register
//!   OUT/persons.csv                  the insured persons register
//!   OUT/ebds/DS_<aff>_<MMAAAA>.txt   one e-BDS declaration per employer and month
//!   OUT/ribat-only/honey.csv         CNSS numbers of honey persons: for custodians only,
//!                                    never part of the fund's own files
//!   OUT/ribat-only/sensitive.csv     CNSS numbers of public figures, whose reads will need a
//!                                    case reference (the public-figure rule)
//! ```

use crate::{Fund, FundSpec, generate};
use ribat_import::csv_files::{write_employers, write_persons};
use ribat_import::ebds::{self, Header};
use ribat_import::model::{DeclarationRow, EmployerRow, PersonRow};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Why the fund's files could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FilesError {
    /// A file or directory.
    #[error("cannot write {path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A register.
    #[error("cannot write {path}: {source}")]
    Csv {
        /// Where.
        path: PathBuf,
        /// Cause.
        source: csv::Error,
    },
    /// A generated declaration that the e-BDS writer refuses (a bug in the generator).
    #[error("{path}: {source}")]
    Ebds {
        /// Where.
        path: PathBuf,
        /// Cause.
        source: ebds::FileError,
    },
}

type Result<T> = std::result::Result<T, FilesError>;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FilesError + '_ {
    move |source| FilesError::Io {
        path: path.to_owned(),
        source,
    }
}

fn csv_err(path: &Path) -> impl FnOnce(csv::Error) -> FilesError + '_ {
    move |source| FilesError::Csv {
        path: path.to_owned(),
        source,
    }
}

/// Writes the fund's files under `out`; returns the fund.
pub fn write(spec: &FundSpec, out: &Path) -> Result<Fund> {
    let fund = generate(spec);
    write_fund(&fund, out)?;
    Ok(fund)
}

fn file(path: &Path) -> Result<BufWriter<std::fs::File>> {
    Ok(BufWriter::new(
        std::fs::File::create(path).map_err(io(path))?,
    ))
}

/// The import's view of a generated person.
pub fn person_row(f: &Fund, i: usize) -> PersonRow {
    let p = &f.persons[i];
    PersonRow {
        cnss: p.cnss.clone(),
        cin: p.cin.clone(),
        given: p.given.clone(),
        surname: p.surname.clone(),
        name_ar: p.name_arabic.clone(),
        birth_date: p.birth_date.clone(),
        city: p.city.clone(),
        rib: p.rib.clone(),
        employer: f
            .employers
            .get(p.employer)
            .map(|e| e.affiliation.clone())
            .unwrap_or_default(),
    }
}

/// The import's view of a generated employer.
pub fn employer_row(f: &Fund, i: usize) -> EmployerRow {
    let e = &f.employers[i];
    EmployerRow {
        affiliation: e.affiliation.clone(),
        ice: e.ice.clone(),
        name: e.name.clone(),
        activity: e.activity.clone(),
        address: e.address.clone(),
        city: e.city.clone(),
        postal_code: e.postal_code.clone(),
        agency: e.agency.clone(),
    }
}

/// Writes the files of an already generated fund.
pub fn write_fund(fund: &Fund, out: &Path) -> Result<()> {
    for d in [out.join("ebds"), out.join("ribat-only")] {
        std::fs::create_dir_all(&d).map_err(io(&d))?;
    }
    let path = out.join("employers.csv");
    let mut w = file(&path)?;
    let employers: Vec<EmployerRow> = (0..fund.employers.len())
        .map(|i| employer_row(fund, i))
        .collect();
    write_employers(&mut w, &employers).map_err(csv_err(&path))?;
    w.flush().map_err(io(&path))?;
    let path = out.join("persons.csv");
    let mut w = file(&path)?;
    let persons: Vec<PersonRow> = (0..fund.persons.len())
        .map(|i| person_row(fund, i))
        .collect();
    write_persons(&mut w, &persons).map_err(csv_err(&path))?;
    w.flush().map_err(io(&path))?;
    for (name, pick) in [("honey.csv", true), ("sensitive.csv", false)] {
        let path = out.join("ribat-only").join(name);
        let mut w = file(&path)?;
        let mut lines = vec!["cnss"];
        lines.extend(
            fund.persons
                .iter()
                .filter(|p| if pick { p.honey } else { p.sensitive })
                .map(|p| p.cnss.as_str()),
        );
        for l in lines {
            writeln!(w, "{l}").map_err(io(&path))?;
        }
        w.flush().map_err(io(&path))?;
    }

    // Group declarations by (period, employer).
    let mut groups: std::collections::BTreeMap<(String, usize), Vec<DeclarationRow>> =
        std::collections::BTreeMap::new();
    for d in &fund.declarations {
        let p = &fund.persons[d.person];
        groups
            .entry((d.period.clone(), d.employer))
            .or_default()
            .push(DeclarationRow {
                affiliation: fund.employers[d.employer].affiliation.clone(),
                period: d.period.clone(),
                cnss: p.cnss.clone(),
                nom_prenom: ascii_upper(&p.nom_prenom()),
                cin: d.entrant.then(|| p.cin.clone()),
                children: p.children,
                allowance: d.allowance,
                days: d.days,
                salary_real: d.salary_real,
                salary_capped: d.salary_capped,
                situation: d.situation.unwrap_or("").to_owned(),
                entrant: d.entrant,
            });
    }
    for ((period, e), rows) in groups {
        let emp = &fund.employers[e];
        let (y, m) = period.split_at(4);
        let header = Header {
            affiliation: emp.affiliation.clone(),
            period: period.clone(),
            name: emp.name.clone(),
            activity: emp.activity.clone(),
            address: emp.address.clone(),
            city: emp.city.clone(),
            postal_code: emp.postal_code.clone(),
            agency: emp.agency.clone(),
            issued: format!("{y}{m}28"),
            due: format!("{y}{m}28"),
        };
        let path = out
            .join("ebds")
            .join(ebds::file_name(&emp.affiliation, &period));
        let text = ebds::write(&header, &rows).map_err(|source| FilesError::Ebds {
            path: path.clone(),
            source,
        })?;
        std::fs::write(&path, text).map_err(io(&path))?;
    }
    Ok(())
}

/// e-BDS text fields are ASCII: accents are dropped (É → E), other letters kept as is.
fn ascii_upper(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'À' | 'Â' | 'Ä' | 'à' | 'â' | 'ä' => 'A',
            'É' | 'È' | 'Ê' | 'Ë' | 'é' | 'è' | 'ê' | 'ë' => 'E',
            'Ï' | 'Î' | 'ï' | 'î' => 'I',
            'Ô' | 'Ö' | 'ô' | 'ö' => 'O',
            'Ù' | 'Û' | 'Ü' | 'ù' | 'û' | 'ü' => 'U',
            'Ç' | 'ç' => 'C',
            c => c.to_ascii_uppercase(),
        })
        .collect()
}
