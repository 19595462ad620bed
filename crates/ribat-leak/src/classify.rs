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
use crate::mac_hash::MacMap;
use crate::row::LeakRow;
use ribat_crypto::leak_digest::{
    CANARY, DIGEST_LEN, Digest, Field, LeakDigester, check_body, normalise_field, salary_forms,
};
use ribat_store::{DigestRef, Part, Store};
use serde::Serialize;
use std::collections::HashSet;

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
/// record version, and where its body (`(field code, digest)` pairs, as stored) lies: in
/// which arena, where, how long.
#[derive(Debug, Clone, Copy)]
struct Entry {
    period: u32,
    arena: u16,
    len: u16,
    version: u64,
    at: usize,
    /// The same person's next entry, or [`NONE`].
    next: u32,
}

const NONE: u32 = u32::MAX;

/// The entry for `row`, its body about to go at `at` in arena `arena`.
fn entry(
    arena: usize,
    at: usize,
    table: &str,
    record_id: &str,
    version: u64,
    body: &[u8],
) -> Result<Entry, LeakError> {
    // Checked once here, so that matching reads the stored bytes as they are.
    check_body(body)?;
    let malformed = |what: &str| {
        LeakError::Digest(ribat_crypto::CryptoError::Malformed {
            what: "leak digest body",
            reason: what.to_owned(),
        })
    };
    Ok(Entry {
        period: period_of(table, record_id),
        arena: u16::try_from(arena).map_err(|_| malformed("too many arenas"))?,
        len: u16::try_from(body.len()).map_err(|_| malformed("longer than 64 KiB"))?,
        version,
        at,
        next: NONE,
    })
}

/// The digests of the persons a scan needs, by locator: an arena of bodies per part read
/// and, per person (slot), a chain of entries, so that millions of persons cost a few
/// allocations rather than millions, and entries stay where they were read instead of
/// being sorted across gigabytes.
#[derive(Debug, Default)]
pub struct Digests {
    slots: MacMap<[u8; 16], u32>,
    /// The first entry of each slot's chain, or [`NONE`].
    head: Vec<u32>,
    entries: Vec<Entry>,
    arenas: Vec<Vec<u8>>,
    lookups: Option<usize>,
    /// Rows read from the store.
    pub rows_read: u64,
    /// Whether they were read in passes over the whole table (large dumps) rather
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

/// What one part of a streamed pass kept: `(slot, entry)` with `at` into its own arena.
#[derive(Default)]
struct PartRows {
    kept: Vec<(u32, Entry)>,
    arena: Vec<u8>,
    read: u64,
}

impl PartRows {
    fn keep(&mut self, arena: usize, slot: u32, row: &DigestRef<'_>) -> Result<(), LeakError> {
        let e = entry(
            arena,
            self.arena.len(),
            row.table,
            row.record_id,
            row.version,
            row.body,
        )?;
        self.arena.extend_from_slice(row.body);
        self.kept.push((slot, e));
        Ok(())
    }
}

impl Digests {
    /// Fetches the digests of the located rows' persons: one lookup each for a few,
    /// passes over the table (in `threads` parts read side by side, where the store
    /// can) when they are many (more than a twentieth of the table's rows).
    /// Each located row learns its slot.
    pub fn fetch(
        store: &dyn Store,
        located: &mut [Option<Located>],
        threads: usize,
    ) -> Result<Self, LeakError> {
        let mut d = Self::default();
        for l in located.iter_mut().flatten() {
            let next = u32::try_from(d.slots.len()).map_err(|_| too_many())?;
            l.slot = Some(*d.slots.entry(l.locator).or_insert(next));
        }
        // A lookup costs about what reading twenty rows in a pass does.
        let estimate = store.digest_rows_estimate()?;
        if (d.slots.len() as u64) * 20 <= estimate {
            let mut by_slot: Vec<([u8; 16], u32)> = d.slots.iter().map(|(l, s)| (*l, *s)).collect();
            by_slot.sort_unstable_by_key(|(_, s)| *s);
            for (l, slot) in by_slot {
                d.rows_read += d.append(store, &l, slot)?;
            }
            return Ok(d);
        }
        d.streamed = true;
        let of = u32::try_from(threads.max(1))
            .unwrap_or(1)
            .min(store.digest_scan_parts().max(1));
        let slots = &d.slots;
        // Sized once: growing vectors of millions of rows would copy them over and over.
        let per_part = (estimate / u64::from(of)).min(1 << 28) as usize;
        let parts: Vec<Result<PartRows, LeakError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..of)
                .map(|index| {
                    s.spawn(move || {
                        let mut p = PartRows {
                            kept: Vec::with_capacity(per_part),
                            arena: Vec::with_capacity(per_part * 72),
                            read: 0,
                        };
                        let mut err = None;
                        store.scan_digests(Part { index, of }, &mut |row| {
                            p.read += 1;
                            let Ok(l) = <[u8; 16]>::try_from(row.locator) else {
                                return true;
                            };
                            if let Some(&slot) = slots.get(&l)
                                && let Err(e) = p.keep(index as usize, slot, &row)
                            {
                                err = Some(e);
                                return false;
                            }
                            true
                        })?;
                        err.map_or(Ok(p), Err)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let parts = parts.into_iter().collect::<Result<Vec<_>, _>>()?;
        d.head = vec![NONE; d.slots.len()];
        d.entries
            .reserve(parts.iter().map(|p| p.kept.len()).sum::<usize>());
        for p in parts {
            d.rows_read += p.read;
            for (slot, e) in p.kept {
                d.link(slot, e)?;
            }
            d.arenas.push(p.arena);
        }
        Ok(d)
    }

    /// Puts `e` at the head of `slot`'s chain.
    fn link(&mut self, slot: u32, mut e: Entry) -> Result<(), LeakError> {
        let idx = u32::try_from(self.entries.len())
            .ok()
            .filter(|i| *i != NONE)
            .ok_or_else(too_many)?;
        let s = slot as usize;
        if self.head.len() <= s {
            self.head.resize(s + 1, NONE);
        }
        e.next = self.head[s];
        self.head[s] = idx;
        self.entries.push(e);
        Ok(())
    }

    /// Adds the digests under more locators (persons found in a second round), one
    /// lookup each.
    pub fn fetch_more(
        &mut self,
        store: &dyn Store,
        locators: &HashSet<[u8; 16]>,
    ) -> Result<(), LeakError> {
        for l in locators {
            if self.slots.contains_key(l) {
                continue;
            }
            let slot = u32::try_from(self.slots.len()).map_err(|_| too_many())?;
            self.rows_read += self.append(store, l, slot)?;
            self.slots.insert(*l, slot);
        }
        Ok(())
    }

    /// Looks up the digests under `locator` and files them in `slot`.
    fn append(
        &mut self,
        store: &dyn Store,
        locator: &[u8; 16],
        slot: u32,
    ) -> Result<u64, LeakError> {
        let rows = store.digests(locator)?;
        // Looked-up bodies go in an arena of their own, after the parts'.
        if self.lookups.is_none() {
            self.lookups = Some(self.arenas.len());
            self.arenas.push(Vec::new());
        }
        let i = self.lookups.unwrap_or(0);
        for row in &rows {
            let at = self.arenas.get(i).map_or(0, Vec::len);
            let e = entry(i, at, &row.table, &row.record_id, row.version, &row.body)?;
            self.link(slot, e)?;
            if let Some(a) = self.arenas.get_mut(i) {
                a.extend_from_slice(&row.body);
            }
        }
        if self.head.len() <= slot as usize {
            self.head.resize(slot as usize + 1, NONE);
        }
        Ok(rows.len() as u64)
    }

    /// Where the digests under `locator` are, if fetched.
    pub fn slot(&self, locator: &[u8; 16]) -> Option<u32> {
        self.slots.get(locator).copied()
    }

    /// The entries of `slot`, in no particular order.
    fn chain(&self, slot: Option<u32>) -> impl Iterator<Item = &Entry> {
        let first = slot
            .and_then(|s| self.head.get(s as usize).copied())
            .unwrap_or(NONE);
        std::iter::successors(self.entries.get(first as usize), |e| {
            self.entries.get(e.next as usize)
        })
    }

    /// The entries of `slot` by month, then version: the same order however the table
    /// was read.
    fn of(&self, slot: Option<u32>) -> Vec<Entry> {
        let mut v: Vec<Entry> = self.chain(slot).copied().collect();
        v.sort_unstable_by_key(|e| (e.period, e.version, e.arena, e.at));
        v
    }

    fn body(&self, e: &Entry) -> &[u8] {
        self.arenas
            .get(usize::from(e.arena))
            .and_then(|a| a.get(e.at..e.at + usize::from(e.len)))
            .unwrap_or(&[])
    }

    /// The latest declaration month filed in `slot`.
    pub fn latest_period(&self, slot: Option<u32>) -> Option<u32> {
        self.chain(slot).map(|e| e.period).filter(|p| *p > 0).max()
    }

    /// Whether any person record is filed in `slot`.
    pub fn knows(&self, slot: Option<u32>) -> bool {
        self.chain(slot).any(|e| e.period == 0)
    }
}

fn too_many() -> LeakError {
    LeakError::Digest(ribat_crypto::CryptoError::Malformed {
        what: "leak scan",
        reason: "more than 4 billion persons in one scan".into(),
    })
}

/// The person a row names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The person's record id.
    pub id: String,
    /// Its leak-digest locator.
    pub locator: [u8; 16],
    /// Where its digests are in the fetched [`Digests`], once fetched.
    pub slot: Option<u32>,
    /// Found through the row's CNSS number (rather than its CIN or name).
    pub by_cnss: bool,
}

/// Which person each row names through its CNSS number, or `None`; on `threads` threads.
pub fn locate(
    rows: &[LeakRow],
    resolver: &dyn Resolver,
    digester: &LeakDigester,
    threads: usize,
) -> Vec<Option<Located>> {
    in_chunks(rows.len(), threads, |i| {
        let id = rows[i].cnss.as_deref().and_then(|c| resolver.by_cnss(c))?;
        let loc = digester.locator(&id);
        Some(Located {
            id,
            locator: loc,
            slot: None,
            by_cnss: true,
        })
    })
}

/// `f(0)`, …, `f(n - 1)`, in order, shared out among `threads` threads.
fn in_chunks<T: Send>(n: usize, threads: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let chunk = n.div_ceil(threads.max(1)).max(1);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|from| s.spawn(move || (from..(from + chunk).min(n)).map(f).collect::<Vec<T>>()))
            .collect();
        // A thread that panicked is a bug; its rows must not vanish.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
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
        let known = located[i].as_ref().is_some_and(|l| digests.knows(l.slot));
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
        if digests.knows(digests.slot(&loc)) {
            located[i] = Some(Located {
                slot: digests.slot(&loc),
                id,
                locator: loc,
                by_cnss: false,
            });
            found += 1;
        }
    }
    Ok(found)
}

fn matches(body: &[u8], field: Field, d: &Digest) -> bool {
    body.chunks_exact(1 + DIGEST_LEN).any(|c| {
        c[0] == field as u8 && <[u8; DIGEST_LEN]>::try_from(&c[1..]).is_ok_and(|x| x == *d)
    })
}

fn has_field(body: &[u8], field: Field) -> bool {
    body.chunks_exact(1 + DIGEST_LEN)
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
        slot,
        by_cnss: located_by_cnss,
        ..
    }) = located.filter(|l| digests.knows(l.slot))
    else {
        v.class = Class::Fabricated;
        return v;
    };
    v.person = Some(pid.clone());
    let entries = digests.of(*slot);
    // Only persons carrying a canary field are worth the digest that tells.
    let marked = entries
        .iter()
        .any(|e| e.period == 0 && has_field(digests.body(e), Field::Canary))
        && {
            let mark = digester.digest(Field::Canary, pid, CANARY);
            entries
                .iter()
                .any(|e| e.period == 0 && matches(digests.body(e), Field::Canary, &mark))
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
    // Each present field: its normal forms to try, in order; the first that any version
    // holds decides which version. A value with no normal form is present and wrong.
    let mut check = |name: &'static str, present: bool, tries: &[(Field, &str)]| {
        if !present {
            return;
        }
        identity_present += 1;
        let mut best: Option<u64> = None;
        for (f, norm) in tries {
            let d = digester.digest(*f, pid, norm);
            for e in &persons {
                if matches(digests.body(e), *f, &d) {
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
    // Normalised once each: names are the costly ones, and every name field shares one
    // normal form.
    let norm = |f: Field, v: Option<&str>| v.and_then(|v| normalise_field(f, v));
    fn one(f: Field, n: &Option<String>) -> Vec<(Field, &str)> {
        n.as_deref().map(|n| vec![(f, n)]).unwrap_or_default()
    }
    let name_n = norm(Field::Name, row.name.as_deref());
    // A name: the full name (with the repetitive column beside it, or without), else one
    // word alone as a surname or a given name.
    let full_n = match (row.name.as_deref(), row.name_extra.as_deref()) {
        (Some(name), Some(extra)) => normalise_field(Field::Name, &format!("{name} {extra}")),
        _ => None,
    };
    let mut names = one(Field::Name, &full_n);
    if let Some(n) = name_n.as_deref() {
        names.extend([(Field::Name, n), (Field::NameAr, n)]);
        if row.name.as_deref().is_some_and(|w| !w.trim().contains(' ')) {
            names.extend([(Field::Surname, n), (Field::Given, n)]);
        }
    }
    let ar_n = norm(Field::NameAr, row.name_ar.as_deref());
    let mut name_ar = one(Field::NameAr, &ar_n);
    name_ar.extend(one(Field::Name, &ar_n));
    let cnss_n = norm(Field::Cnss, row.cnss.as_deref());
    let cin_n = norm(Field::Cin, row.cin.as_deref());
    let birth_n = norm(Field::Birth, row.birth.as_deref());
    let rib_n = norm(Field::Rib, row.rib.as_deref());
    // Found through its CNSS number, the person has that number by construction.
    check(
        "cnss",
        row.cnss.is_some() && !*located_by_cnss,
        &one(Field::Cnss, &cnss_n),
    );
    check("cin", row.cin.is_some(), &one(Field::Cin, &cin_n));
    check("name", row.name.is_some(), &names);
    check("name_ar", row.name_ar.is_some(), &name_ar);
    check(
        "birth_date",
        row.birth.is_some(),
        &one(Field::Birth, &birth_n),
    );
    check("rib", row.rib.is_some(), &one(Field::Rib, &rib_n));
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
                    if matches(digests.body(e), Field::Salary, exact) {
                        hits += 1;
                    } else {
                        let forms = rounded_forms.get_or_insert_with(|| {
                            salary_forms(*s)
                                .iter()
                                .skip(1)
                                .map(|(f, _)| (*f, digester.digest(*f, pid, &s.to_string())))
                                .collect()
                        });
                        if forms.iter().any(|(f, d)| matches(digests.body(e), *f, d)) {
                            hits += 1;
                            rounded = true;
                        }
                    }
                }
                if let Some(d) = &days
                    && matches(digests.body(e), Field::Days, d)
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
                        let any = matches(digests.body(e), Field::Salary, exact)
                            || rounded_forms.as_ref().is_some_and(|f| {
                                f.iter().any(|(f, d)| matches(digests.body(e), *f, d))
                            });
                        if !any {
                            altered.push("salary");
                        }
                    }
                    if let (Some(d), Some(e)) = (&days, e)
                        && !matches(digests.body(e), Field::Days, d)
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
    in_chunks(rows.len(), threads, |i| {
        classify(
            &rows[i],
            located.get(i).and_then(Option::as_ref),
            digests,
            resolver,
            digester,
        )
    })
}
