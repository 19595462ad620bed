//! Each leaked row against the vault's leak digests: whose it is, and whether what it says
//! is what the fund holds now, held once, or never held.
//!
//! ```text
//!   row ─► person id (CNSS → id under k_idx; else CIN, else name + birth date, through
//!          the blind indexes) ─► locator (k_leak) ─► that person's digests, every
//!          version, and their declarations' digests, every month
//!   each value of the row ─► digest(field, person id, value) ─► equal to which version?
//! ```

use crate::LeakError;
use crate::row::LeakRow;
use ribat_crypto::leak_digest::{
    CANARY, DIGEST_LEN, Digest, Field, LeakDigester, decode_body, normalise_field, salary_forms,
};
use ribat_store::{DigestRef, DigestRow, Store};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// How the scan finds a person: the node's blind indexes.
pub trait Resolver: Sync {
    /// The record id a CNSS number would have (whether or not such a person exists).
    fn by_cnss(&self, cnss: &str) -> Option<String>;
    /// Persons with this CIN.
    fn by_cin(&self, cin: &str) -> Result<Vec<String>, LeakError>;
    /// Persons with this name and birth date.
    fn by_name_birth(&self, name: &str, birth: &str) -> Result<Vec<String>, LeakError>;
    /// Whether the person is a honey record.
    fn is_honey(&self, person_id: &str) -> bool;
    /// The recipient whose export canary this person is, if any.
    fn canary_of(&self, person_id: &str) -> Option<String> {
        let _ = person_id;
        None
    }
}

/// What a row is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(tag = "class", rename_all = "kebab-case")]
pub enum Class {
    /// Every value is what the fund holds now.
    GenuineCurrent,
    /// Every value is what the fund held in an earlier version or month.
    GenuineOlder {
        /// The month (`AAAAMM`) of the declaration it matches, or `person v<N>`.
        version: String,
    },
    /// A person of the fund, with values the fund never held.
    Altered {
        /// Which fields.
        fields: Vec<&'static str>,
    },
    /// Looks like a row of ours but names nobody of the fund, or a real number with
    /// somebody else's details.
    Fabricated,
    /// A honey person: nobody legitimate ever read it.
    Honey,
    /// An export canary: names the recipient.
    Canary {
        /// The recipient.
        recipient: String,
    },
    /// Nothing in it identifies a person (another dataset, a page header).
    Unmatched,
}

impl Class {
    /// Its label in tables: `genuine-current`, `altered`…
    pub fn label(&self) -> &'static str {
        match self {
            Self::GenuineCurrent => "genuine-current",
            Self::GenuineOlder { .. } => "genuine-older",
            Self::Altered { .. } => "altered",
            Self::Fabricated => "fabricated",
            Self::Honey => "honey",
            Self::Canary { .. } => "canary",
            Self::Unmatched => "unmatched",
        }
    }

    /// Whether the row is of the fund's data (it affects a real person or names a source).
    pub fn ours(&self) -> bool {
        matches!(
            self,
            Self::GenuineCurrent
                | Self::GenuineOlder { .. }
                | Self::Altered { .. }
                | Self::Honey
                | Self::Canary { .. }
        )
    }
}

/// The verdict on one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// File index.
    pub file: u32,
    /// Line.
    pub line: u64,
    /// The class.
    #[serde(flatten)]
    pub class: Class,
    /// The person's record id (opaque), when found.
    pub person: Option<String>,
    /// The latest month of this person's declarations the row matched, if any.
    pub period: Option<String>,
    /// The salary matched only once rounded (whole dirhams, hundreds or thousands).
    pub rounded: bool,
    /// The row's salary could not be checked: no declaration digests for this person.
    pub unverified_salary: bool,
    /// The row came from an e-BDS line whose control sum does not add up.
    pub control_sum_fails: bool,
}

/// One stored digest set, compact: the month it describes (0 for the person record), its
/// record version and its body (`(field code, digest)` pairs, as stored).
#[derive(Debug, Clone)]
struct Entry {
    period: u32,
    version: u64,
    body: Box<[u8]>,
}

/// The digests of the persons a scan needs, by locator.
#[derive(Debug, Default)]
pub struct Digests {
    by_locator: HashMap<[u8; 16], Vec<Entry>>,
    /// Rows read from the store.
    pub rows_read: u64,
    /// Whether they were read in one pass over the whole table (large dumps) rather
    /// than looked up one by one.
    pub streamed: bool,
}

fn period_of(table: &str, record_id: &str) -> u32 {
    if table != "declarations" {
        return 0;
    }
    // Declaration ids are `d-AAAAMM-p-…`.
    record_id
        .get(2..8)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

impl Digests {
    fn add(&mut self, row: DigestRef<'_>) -> Result<(), LeakError> {
        // Checked once here, so that matching reads the stored bytes as they are.
        decode_body(row.body)?;
        let locator: [u8; 16] =
            row.locator
                .try_into()
                .map_err(|_| ribat_crypto::CryptoError::Malformed {
                    what: "leak digest locator",
                    reason: format!("{} bytes", row.locator.len()),
                })?;
        let e = Entry {
            period: period_of(row.table, row.record_id),
            version: row.version,
            body: row.body.into(),
        };
        self.by_locator.entry(locator).or_default().push(e);
        Ok(())
    }

    fn add_row(&mut self, row: &DigestRow) -> Result<(), LeakError> {
        self.add(DigestRef {
            locator: &row.locator,
            table: &row.table,
            record_id: &row.record_id,
            version: row.version,
            body: &row.body,
        })
    }

    /// Fetches the digests under `locators`: one lookup each for a few, one pass over the
    /// table when they are many (more than a twentieth of the persons).
    pub fn fetch(store: &dyn Store, locators: &HashSet<[u8; 16]>) -> Result<Self, LeakError> {
        let mut d = Self::default();
        let persons = store.count("persons")?;
        if (locators.len() as u64) * 20 > persons {
            d.streamed = true;
            let mut err = None;
            store.scan_digests(&mut |row| {
                d.rows_read += 1;
                if <[u8; 16]>::try_from(row.locator).is_ok_and(|l| locators.contains(&l))
                    && let Err(e) = d.add(row)
                {
                    err = Some(e);
                    return false;
                }
                true
            })?;
            if let Some(e) = err {
                return Err(e);
            }
        } else {
            for l in locators {
                for row in store.digests(l)? {
                    d.rows_read += 1;
                    d.add_row(&row)?;
                }
            }
        }
        Ok(d)
    }

    /// Adds the digests under more locators (persons found in a second round).
    pub fn fetch_more(
        &mut self,
        store: &dyn Store,
        locators: &HashSet<[u8; 16]>,
    ) -> Result<(), LeakError> {
        for l in locators {
            if self.by_locator.contains_key(l) {
                continue;
            }
            for row in store.digests(l)? {
                self.rows_read += 1;
                self.add_row(&row)?;
            }
        }
        Ok(())
    }

    fn of(&self, locator: &[u8; 16]) -> &[Entry] {
        self.by_locator.get(locator).map_or(&[], Vec::as_slice)
    }

    /// The latest declaration month filed under `locator`.
    pub fn latest_period(&self, locator: &[u8; 16]) -> Option<u32> {
        self.of(locator)
            .iter()
            .map(|e| e.period)
            .filter(|p| *p > 0)
            .max()
    }

    /// Whether any person record is filed under `locator`.
    pub fn knows(&self, locator: &[u8; 16]) -> bool {
        self.of(locator).iter().any(|e| e.period == 0)
    }
}

/// The person a row names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The person's record id.
    pub id: String,
    /// Its leak-digest locator.
    pub locator: [u8; 16],
    /// Found through the row's CNSS number (rather than its CIN or name).
    pub by_cnss: bool,
}

/// Which person each row names, or `None`.
pub fn locate(
    rows: &[LeakRow],
    resolver: &dyn Resolver,
    digester: &LeakDigester,
) -> Vec<Option<Located>> {
    rows.iter()
        .map(|r| {
            let id = r.cnss.as_deref().and_then(|c| resolver.by_cnss(c))?;
            let loc = digester.locator(&id);
            Some(Located {
                id,
                locator: loc,
                by_cnss: true,
            })
        })
        .collect()
}

/// Rows whose CNSS number names nobody (or that have none) are looked up by CIN, then by
/// name and birth date. Returns how many were found this way.
pub fn relocate(
    rows: &[LeakRow],
    located: &mut [Option<Located>],
    digests: &mut Digests,
    store: &dyn Store,
    resolver: &dyn Resolver,
    digester: &LeakDigester,
) -> Result<usize, LeakError> {
    let mut found = 0;
    let mut more = HashSet::new();
    let mut pending = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let known = located[i]
            .as_ref()
            .is_some_and(|l| digests.knows(&l.locator));
        if known || !r.has_identifier() {
            continue;
        }
        let mut ids = match &r.cin {
            Some(c) => resolver.by_cin(c)?,
            None => Vec::new(),
        };
        if ids.is_empty()
            && let Some(b) = &r.birth
        {
            for n in [&r.name, &r.name_ar].into_iter().flatten() {
                ids = resolver.by_name_birth(n, b)?;
                if !ids.is_empty() {
                    break;
                }
            }
        }
        // Two persons with one name and birth date: the first; its fields decide.
        if let Some(id) = ids.into_iter().next() {
            let loc = digester.locator(&id);
            more.insert(loc);
            pending.push((i, id, loc));
        }
    }
    digests.fetch_more(store, &more)?;
    for (i, id, loc) in pending {
        if digests.knows(&loc) {
            located[i] = Some(Located {
                id,
                locator: loc,
                by_cnss: false,
            });
            found += 1;
        }
    }
    Ok(found)
}

fn matches(entry: &Entry, field: Field, d: &Digest) -> bool {
    entry
        .body
        .chunks_exact(1 + DIGEST_LEN)
        .any(|c| c[0] == field as u8 && c[1..] == d[..])
}

fn has_field(entry: &Entry, field: Field) -> bool {
    entry
        .body
        .chunks_exact(1 + DIGEST_LEN)
        .any(|c| c[0] == field as u8)
}

/// Classifies one row.
pub fn classify(
    row: &LeakRow,
    located: Option<&Located>,
    digests: &Digests,
    resolver: &dyn Resolver,
    digester: &LeakDigester,
) -> Verdict {
    let mut v = Verdict {
        file: row.file,
        line: row.line,
        class: Class::Unmatched,
        person: None,
        period: None,
        rounded: false,
        unverified_salary: false,
        control_sum_fails: row.control_sum_fails,
    };
    if !row.has_identifier() {
        return v;
    }
    let Some(Located {
        id: pid,
        locator: loc,
        by_cnss: located_by_cnss,
    }) = located.filter(|l| digests.knows(&l.locator))
    else {
        v.class = Class::Fabricated;
        return v;
    };
    v.person = Some(pid.clone());
    let entries = digests.of(loc);
    // Only persons carrying a canary field are worth the digest that tells.
    let marked = entries
        .iter()
        .any(|e| e.period == 0 && has_field(e, Field::Canary))
        && {
            let mark = digester.digest(Field::Canary, pid, CANARY);
            entries
                .iter()
                .any(|e| e.period == 0 && matches(e, Field::Canary, &mark))
        };
    if marked {
        v.class = Class::Canary {
            recipient: resolver
                .canary_of(pid)
                .unwrap_or_else(|| "an export whose manifest cannot be opened".into()),
        };
        return v;
    }
    if resolver.is_honey(pid) {
        v.class = Class::Honey;
        return v;
    }
    let persons: Vec<&Entry> = entries.iter().filter(|e| e.period == 0).collect();
    let latest = persons.iter().map(|e| e.version).max().unwrap_or(0);
    let mut altered: Vec<&'static str> = Vec::new();
    let mut older: Option<String> = None;
    let mut identity_present = 0;
    let mut identity_matched = 0;
    // Each present field: the values to try, in order; the first that any version holds
    // decides which version.
    let mut check = |name: &'static str, tries: &[(Field, &str)]| {
        if tries.is_empty() {
            return;
        }
        identity_present += 1;
        let mut best: Option<u64> = None;
        for (f, value) in tries {
            let Some(norm) = normalise_field(*f, value) else {
                continue;
            };
            let d = digester.digest(*f, pid, &norm);
            for e in &persons {
                if matches(e, *f, &d) {
                    best = best.max(Some(e.version));
                }
            }
            if best.is_some() {
                break;
            }
        }
        match best {
            Some(ver) => {
                identity_matched += 1;
                if ver < latest {
                    older.get_or_insert(format!("person v{ver}"));
                }
            }
            None => altered.push(name),
        }
    };
    let one = |f: Field, v: Option<&str>| -> Vec<(Field, String)> {
        v.map(|v| vec![(f, v.to_owned())]).unwrap_or_default()
    };
    // A name: the full name (with the repetitive column beside it, or without), else one
    // word alone as a surname or a given name.
    let mut names: Vec<(Field, String)> = Vec::new();
    if let Some(name) = row.name.as_deref() {
        if let Some(extra) = row.name_extra.as_deref() {
            names.push((Field::Name, format!("{name} {extra}")));
        }
        names.push((Field::Name, name.to_owned()));
        names.push((Field::NameAr, name.to_owned()));
        if !name.trim().contains(' ') {
            names.push((Field::Surname, name.to_owned()));
            names.push((Field::Given, name.to_owned()));
        }
    }
    let mut name_ar = one(Field::NameAr, row.name_ar.as_deref());
    name_ar.extend(one(Field::Name, row.name_ar.as_deref()));
    for (name, tries) in [
        // Found through its CNSS number, the person has that number by construction.
        (
            "cnss",
            if *located_by_cnss {
                Vec::new()
            } else {
                one(Field::Cnss, row.cnss.as_deref())
            },
        ),
        ("cin", one(Field::Cin, row.cin.as_deref())),
        ("name", names),
        ("name_ar", name_ar),
        ("birth_date", one(Field::Birth, row.birth.as_deref())),
        ("rib", one(Field::Rib, row.rib.as_deref())),
    ] {
        let refs: Vec<(Field, &str)> = tries.iter().map(|(f, v)| (*f, v.as_str())).collect();
        check(name, &refs);
    }
    // The number that located the person matches by construction; a number and nothing
    // else of the person's is a real number with somebody else's details.
    if *located_by_cnss {
        identity_present += 1;
        identity_matched += 1;
    }
    if identity_present >= 3 && identity_matched <= 1 {
        v.class = Class::Fabricated;
        return v;
    }
    if row.salary.is_some() || row.days.is_some() {
        let months: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.period != 0)
            .filter(|e| {
                row.period
                    .as_deref()
                    .and_then(|p| p.parse::<u32>().ok())
                    .is_none_or(|p| p == e.period)
            })
            .collect();
        let newest = entries.iter().map(|e| e.period).max().unwrap_or(0);
        if entries.iter().all(|e| e.period == 0) {
            v.unverified_salary = true;
        } else if months.is_empty() {
            altered.push("period");
        } else {
            let salary = row.salary.map(|s| {
                let exact = digester.digest(Field::Salary, pid, &s.to_string());
                (s, exact)
            });
            let days = row
                .days
                .map(|d| digester.digest(Field::Days, pid, &d.to_string()));
            let mut rounded_forms: Option<Vec<(Field, Digest)>> = None;
            // The month matching most fields; among equals the latest.
            let mut best: Option<(usize, u32, bool)> = None;
            for e in &months {
                let mut hits = 0;
                let mut rounded = false;
                if let Some((s, exact)) = &salary {
                    if matches(e, Field::Salary, exact) {
                        hits += 1;
                    } else {
                        let forms = rounded_forms.get_or_insert_with(|| {
                            salary_forms(*s)
                                .iter()
                                .skip(1)
                                .map(|(f, _)| (*f, digester.digest(*f, pid, &s.to_string())))
                                .collect()
                        });
                        if forms.iter().any(|(f, d)| matches(e, *f, d)) {
                            hits += 1;
                            rounded = true;
                        }
                    }
                }
                if let Some(d) = &days
                    && matches(e, Field::Days, d)
                {
                    hits += 1;
                }
                if best.is_none_or(|(h, p, _)| hits > h || (hits == h && e.period > p)) {
                    best = Some((hits, e.period, rounded));
                }
            }
            if let Some((hits, period, rounded)) = best {
                let wanted = usize::from(salary.is_some()) + usize::from(days.is_some());
                if hits < wanted {
                    // Name the fields that this month does not hold.
                    let e = months.iter().find(|e| e.period == period);
                    if let (Some((_, exact)), Some(e)) = (&salary, e) {
                        let any = matches(e, Field::Salary, exact)
                            || rounded_forms
                                .as_ref()
                                .is_some_and(|f| f.iter().any(|(f, d)| matches(e, *f, d)));
                        if !any {
                            altered.push("salary");
                        }
                    }
                    if let (Some(d), Some(e)) = (&days, e)
                        && !matches(e, Field::Days, d)
                    {
                        altered.push("days");
                    }
                }
                if hits > 0 {
                    v.period = Some(period.to_string());
                    v.rounded = rounded;
                    if period < newest {
                        older.get_or_insert(period.to_string());
                    }
                }
            }
        }
    }
    v.class = if !altered.is_empty() {
        Class::Altered { fields: altered }
    } else if let Some(version) = older {
        Class::GenuineOlder { version }
    } else {
        Class::GenuineCurrent
    };
    v
}

/// Classifies every row on `threads` threads.
pub fn classify_all(
    rows: &[LeakRow],
    located: &[Option<Located>],
    digests: &Digests,
    resolver: &dyn Resolver,
    digester: &LeakDigester,
    threads: usize,
) -> Vec<Verdict> {
    let chunk = rows.len().div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = rows
            .chunks(chunk)
            .zip(located.chunks(chunk))
            .map(|(rs, ls)| {
                s.spawn(move || {
                    rs.iter()
                        .zip(ls)
                        .map(|(r, l)| classify(r, l.as_ref(), digests, resolver, digester))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        // A thread that panicked is a bug; its rows must not vanish from the verdicts.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}
