//! `persons.csv` and `employers.csv`: the fund's registers, comma-separated UTF-8 with a
//! header line.
//!
//! ```text
//! persons.csv:   cnss,cin,given,surname,name_ar,birth_date,city,rib,employer
//! employers.csv: affiliation,ice,name,activity,address,city,postal_code,agency
//! ```
//!
//! Reading validates every row (identifier shapes, RIB key, calendar dates) and rejects a
//! bad row by line number and field, never quoting the value.

use crate::ebds::Rejected;
use crate::ids::{cnss_is_valid, date_is_valid, rib_is_valid};
use crate::model::{EmployerRow, PersonRow};
use ribat_crypto::blind_index::normalise_cin;
use std::io::{Read, Write};

/// Accepted rows with their line numbers, and rejected rows.
pub type Rows<T> = (Vec<(usize, T)>, Vec<Rejected>);

/// Header of `persons.csv`.
pub const PERSON_COLUMNS: [&str; 9] = [
    "cnss",
    "cin",
    "given",
    "surname",
    "name_ar",
    "birth_date",
    "city",
    "rib",
    "employer",
];
/// Header of `employers.csv`.
pub const EMPLOYER_COLUMNS: [&str; 8] = [
    "affiliation",
    "ice",
    "name",
    "activity",
    "address",
    "city",
    "postal_code",
    "agency",
];

/// Why a whole CSV file was refused.
#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    /// The header is not the expected one.
    #[error("line 1: header is `{found}`, expected `{expected}`")]
    Header {
        /// Header found.
        found: String,
        /// Header expected.
        expected: String,
    },
    /// The file cannot be read as CSV.
    #[error("line {line}: {reason}")]
    Unreadable {
        /// Line.
        line: u64,
        /// Why.
        reason: String,
    },
}

/// Writes persons.
pub fn write_persons(w: impl Write, rows: &[PersonRow]) -> csv::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(PERSON_COLUMNS)?;
    for p in rows {
        out.write_record([
            &p.cnss,
            &p.cin,
            &p.given,
            &p.surname,
            &p.name_ar,
            &p.birth_date,
            &p.city,
            &p.rib,
            &p.employer,
        ])?;
    }
    out.flush()?;
    Ok(())
}

/// Writes employers.
pub fn write_employers(w: impl Write, rows: &[EmployerRow]) -> csv::Result<()> {
    let mut out = csv::Writer::from_writer(w);
    out.write_record(EMPLOYER_COLUMNS)?;
    for e in rows {
        out.write_record([
            &e.affiliation,
            &e.ice,
            &e.name,
            &e.activity,
            &e.address,
            &e.city,
            &e.postal_code,
            &e.agency,
        ])?;
    }
    out.flush()?;
    Ok(())
}

fn records<const N: usize>(
    r: impl Read,
    columns: [&str; N],
    mut each: impl FnMut(u64, [String; N]),
) -> Result<(), CsvError> {
    let mut rd = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(r);
    let unreadable = |e: csv::Error| CsvError::Unreadable {
        line: e.position().map_or(0, csv::Position::line),
        reason: match e.kind() {
            csv::ErrorKind::Utf8 { .. } => {
                "not UTF-8 (convert the file from Windows-1256 or Latin-1 first)".into()
            }
            _ => "not readable as CSV".into(),
        },
    };
    let header = rd.headers().map_err(unreadable)?.clone();
    if header.iter().map(str::trim).ne(columns.iter().copied()) {
        return Err(CsvError::Header {
            found: header.iter().collect::<Vec<_>>().join(","),
            expected: columns.join(","),
        });
    }
    for rec in rd.records() {
        let rec = rec.map_err(unreadable)?;
        let line = rec.position().map_or(0, csv::Position::line);
        let mut fields: [String; N] = std::array::from_fn(|_| String::new());
        if rec.len() != N {
            // Reported through `each` as an empty row would hide it; use a marker instead.
            fields[0] = format!("\u{0}{}", rec.len());
        } else {
            for (f, v) in fields.iter_mut().zip(rec.iter()) {
                *f = v.trim().to_owned();
            }
        }
        each(line, fields);
    }
    Ok(())
}

fn wrong_count<const N: usize>(f: &[String; N], line: u64) -> Option<Rejected> {
    f[0].strip_prefix('\u{0}').map(|n| Rejected {
        line: line as usize,
        reason: format!("{n} fields, expected {N}"),
    })
}

/// Reads and validates persons.
pub fn read_persons(r: &[u8]) -> Result<Rows<PersonRow>, CsvError> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    records(r, PERSON_COLUMNS, |line, f| {
        if let Some(rej) = wrong_count(&f, line) {
            bad.push(rej);
            return;
        }
        let [
            cnss,
            cin,
            given,
            surname,
            name_ar,
            birth_date,
            city,
            rib,
            employer,
        ] = f;
        let reject = |reason: &str| Rejected {
            line: line as usize,
            reason: reason.to_owned(),
        };
        let problem = if !cnss_is_valid(&cnss) {
            Some("cnss is not a 9-digit insured number")
        } else if normalise_cin(&cin).is_err() {
            Some("cin is not 1–2 letters followed by digits")
        } else if given.is_empty() || surname.is_empty() {
            Some("given name and surname are required")
        } else if !date_is_valid(&birth_date) {
            Some("birth_date is not a valid YYYY-MM-DD date")
        } else if !rib_is_valid(&rib) {
            Some("rib is not 24 digits with a valid key")
        } else if employer.len() != 7 || !employer.bytes().all(|b| b.is_ascii_digit()) {
            Some("employer is not a 7-digit affiliation number")
        } else {
            None
        };
        match problem {
            Some(p) => bad.push(reject(p)),
            None => ok.push((
                line as usize,
                PersonRow {
                    cnss,
                    cin,
                    given,
                    surname,
                    name_ar,
                    birth_date,
                    city,
                    rib,
                    employer,
                },
            )),
        }
    })?;
    Ok((ok, bad))
}

/// Reads and validates employers.
pub fn read_employers(r: &[u8]) -> Result<Rows<EmployerRow>, CsvError> {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    records(r, EMPLOYER_COLUMNS, |line, f| {
        if let Some(rej) = wrong_count(&f, line) {
            bad.push(rej);
            return;
        }
        let [
            affiliation,
            ice,
            name,
            activity,
            address,
            city,
            postal_code,
            agency,
        ] = f;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        let problem = if !digits(&affiliation, 7) {
            Some("affiliation is not 7 digits")
        } else if !digits(&ice, 15) {
            Some("ice is not 15 digits")
        } else if name.is_empty() {
            Some("name is required")
        } else {
            None
        };
        match problem {
            Some(p) => bad.push(Rejected {
                line: line as usize,
                reason: p.to_owned(),
            }),
            None => ok.push((
                line as usize,
                EmployerRow {
                    affiliation,
                    ice,
                    name,
                    activity,
                    address,
                    city,
                    postal_code,
                    agency,
                },
            )),
        }
    })?;
    Ok((ok, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person() -> PersonRow {
        PersonRow {
            cnss: "123456789".into(),
            cin: "BE123456".into(),
            given: "Fatima Zahra".into(),
            surname: "El Fassi, dite \"Zahra\"".into(),
            name_ar: "فاطمة الزهراء الفاسي".into(),
            birth_date: "1984-02-29".into(),
            city: "FES".into(),
            rib: crate::ids::make_rib(7, 780, 1234).unwrap(),
            employer: "1234567".into(),
        }
    }

    #[test]
    fn persons_round_trip_with_quotes_commas_and_arabic() {
        let mut buf = Vec::new();
        write_persons(&mut buf, &[person()]).unwrap();
        let (ok, bad) = read_persons(&buf[..]).unwrap();
        assert!(bad.is_empty(), "{bad:?}");
        assert_eq!(ok, vec![(2, person())]);
    }

    #[test]
    fn bad_rows_are_named_by_line_without_their_values() {
        let mut buf = Vec::new();
        let mut p2 = person();
        p2.rib.replace_range(0..1, "9");
        let mut p3 = person();
        p3.birth_date = "1985-02-29".into();
        write_persons(&mut buf, &[person(), p2, p3]).unwrap();
        buf.extend_from_slice(b"1,2,3\n");
        let (ok, bad) = read_persons(&buf[..]).unwrap();
        assert_eq!(ok.len(), 1);
        let lines: Vec<_> = bad.iter().map(|r| (r.line, r.reason.as_str())).collect();
        assert_eq!(
            lines,
            [
                (3, "rib is not 24 digits with a valid key"),
                (4, "birth_date is not a valid YYYY-MM-DD date"),
                (5, "3 fields, expected 9")
            ]
        );
        assert!(bad.iter().all(|r| !r.reason.contains("123456789")));
    }

    #[test]
    fn a_wrong_header_or_encoding_refuses_the_file() {
        let e = read_persons(&b"cnss,name\n1,2\n"[..]).unwrap_err();
        assert!(
            e.to_string().starts_with("line 1: header is `cnss,name`"),
            "{e}"
        );
        let mut latin1 = PERSON_COLUMNS.join(",").into_bytes();
        latin1.extend_from_slice(b"\n123456789,BE1,H\xe9l\xe8ne,X,Y,1990-01-01,FES,1,1234567\n");
        let e = read_persons(&latin1[..]).unwrap_err();
        assert!(e.to_string().contains("line 2: not UTF-8"), "{e}");
    }
}
