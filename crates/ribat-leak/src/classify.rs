//! Each leaked row against the vault's leak digests: whose it is, and whether what it says
//! is what the fund holds now, held once, or never held.
//!
//! ```text
//!   row ─► person id (CNSS → id under k_idx; else CIN, else name + birth date, through
//!          the blind indexes) ─► locator (k_leak) ─► that person's digests, every
//!          version, and their declarations' digests, every month
//!   CIN + name + birth date + RIB ─► one digest ─► what the latest version holds?
//!   salary + days                 ─► one digest ─► what the latest month holds?
//!   otherwise each value of the row ─► digest(field, person id, value) ─► equal to which
//!          version, which month?
//! ```
//!
//! The whole-record digests only decide the common case, a row that repeats the latest
//! record and month; every other row is judged field by field, so that the verdict (and
//! the fields it names as altered) is the one the single-field digests give.

use crate::LeakError;
pub use crate::digests::Located;
use crate::digests::{Digests, Held};
use crate::row::LeakRow;
use ribat_crypto::leak_digest::{
    CANARY, DIGEST_LEN, Digest, Field, LeakDigester, WholeRecord, decimal, normal_form,
    normalise_field, salary_forms,
};
use ribat_store::Store;
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// Where the person's digests were in the scan (counting distinct persons by it is
    /// cheaper than by record id).
    #[serde(skip)]
    pub slot: Option<u32>,
    /// The latest month (`AAAAMM`) of this person's declarations the row matched, if any.
    #[serde(
        serialize_with = "period_as_text",
        skip_serializing_if = "Option::is_none"
    )]
    pub period: Option<u32>,
    /// The salary matched only once rounded (whole dirhams, hundreds or thousands).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rounded: bool,
    /// The row's salary could not be checked: no declaration digests for this person.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unverified_salary: bool,
    /// The row came from an e-BDS line whose control sum does not add up.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub control_sum_fails: bool,
}

impl Verdict {
    /// `row` as unmatched, before anything is known of it.
    fn unmatched(row: &LeakRow) -> Self {
        Self {
            file: row.file,
            line: row.line,
            class: Class::Unmatched,
            person: None,
            slot: None,
            period: None,
            rounded: false,
            unverified_salary: false,
            control_sum_fails: row.control_sum_fails,
        }
    }
}

/// How a row's values are checked against its person's digests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Checking {
    /// A row holding a whole record, or a whole declaration, is checked with that one
    /// digest first, and field by field only when it differs or was never stored.
    #[default]
    Records,
    /// Every field with its own digest only: the same verdicts with more digests per row
    /// (for comparing the two).
    Fields,
}

/// Which person each row names through its CNSS number, or `None`; on `threads` threads.
pub fn locate(
    rows: &[LeakRow],
    resolver: &dyn Resolver,
    digester: &LeakDigester,
    threads: usize,
) -> Vec<Option<Located>> {
    in_parts(
        &mut vec![(); rows.len()],
        threads,
        None,
        || digester.worker(),
        |_| (),
        |w, i, ()| {
            let id = rows[i].cnss.as_deref().and_then(|c| resolver.by_cnss(c))?;
            let loc = w.locator(&id);
            Some(Located {
                id,
                locator: loc,
                slot: None,
                by_cnss: true,
            })
        },
    )
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

/// Months are written as the dump and the declarations write them: `"202501"`.
fn period_as_text<S: serde::Serializer>(p: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(p) => s.collect_str(p),
        None => s.serialize_none(),
    }
}

/// The verdict with the person's record id moved in from `located`, when found.
fn with_person(mut v: Verdict, located: Option<Located>) -> Verdict {
    if v.slot.is_some() {
        v.person = located.map(|l| l.id);
    }
    v
}

/// The verdict on one row, without the person's record id: `entries` are the digest sets
/// of the person `located` names, sorted by month, version and content, and `slot` is
/// where the scan keeps them.
fn judge(
    row: &LeakRow,
    located: Option<&Located>,
    entries: &[Held<'_>],
    slot: Option<u32>,
    resolver: &dyn Resolver,
    checking: Checking,
    mac: &dyn Fn(Field, &str, &[&str]) -> Digest,
) -> Verdict {
    let mut v = Verdict::unmatched(row);
    if !row.has_identifier() {
        return v;
    }
    let Some(Located {
        id: pid,
        by_cnss: located_by_cnss,
        ..
    }) = located
    else {
        v.class = Class::Fabricated;
        return v;
    };
    // Sorted by month: a person record, if any, comes first.
    if entries.first().is_none_or(|e| e.period != 0) {
        v.class = Class::Fabricated;
        return v;
    }
    // Found: `classify` moves the record id in.
    v.slot = slot;
    // Only persons carrying a canary field are worth the digest that tells.
    let marked = entries
        .iter()
        .any(|e| e.period == 0 && has_field(e.body, Field::Canary))
        && {
            let mark = mac(Field::Canary, pid, &[CANARY]);
            entries
                .iter()
                .any(|e| e.period == 0 && matches(e.body, Field::Canary, &mark))
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
    // Sorted by month, person records (month 0) first.
    let persons = &entries[..entries.partition_point(|e| e.period == 0)];
    let latest = persons.iter().map(|e| e.version).max().unwrap_or(0);
    let mut altered: Vec<&'static str> = Vec::new();
    let mut older: Option<String> = None;
    let mut identity_present = 0;
    let mut identity_matched = 0;
    // The latest version holding `value` as `field`, if any does.
    let held = |field: Field, value: &str| -> Option<u64> {
        let d = mac(field, pid, &[value]);
        persons
            .iter()
            .filter(|e| matches(e.body, field, &d))
            .map(|e| e.version)
            .max()
    };
    let held_form = |field: Field, value: Option<&String>| {
        value
            .and_then(|v| normal_form(field, v))
            .and_then(|n| held(field, &n))
    };
    // Each present field: the version holding it, tried in its normal forms in order
    // (the later ones only when the earlier fail); none is an altered field.
    let mut check = |name: &'static str, present: bool, found: Option<u64>| {
        if !present {
            return;
        }
        identity_present += 1;
        match found {
            Some(ver) => {
                identity_matched += 1;
                if ver < latest {
                    older.get_or_insert(format!("person v{ver}"));
                }
            }
            None => altered.push(name),
        }
    };
    // Found through its CNSS number, the person has that number by construction.
    if row.cnss.is_some() && !*located_by_cnss {
        check("cnss", true, held_form(Field::Cnss, row.cnss.as_ref()));
    }
    // The full name (with the repetitive column beside it), else the name alone.
    let with_extra =
        row.name
            .as_deref()
            .zip(row.name_extra.as_deref())
            .and_then(|(name, extra)| {
                let mut both = String::with_capacity(name.len() + extra.len() + 1);
                both.push_str(name);
                both.push(' ');
                both.push_str(extra);
                normalise_field(Field::Name, &both)
            });
    let alone = || {
        row.name
            .as_deref()
            .and_then(|n| normalise_field(Field::Name, n))
    };
    let whole = checking == Checking::Records && {
        let alone_form;
        let name = match &with_extra {
            Some(f) => Some(f.as_str()),
            None => {
                alone_form = alone();
                alone_form.as_deref()
            }
        };
        holds_latest_record(row, name, persons, latest, pid, mac)
    };
    if !whole {
        check(
            "cin",
            row.cin.is_some(),
            held_form(Field::Cin, row.cin.as_ref()),
        );
        if row.name.is_some() {
            // Else the name alone in either script, else the column holds a surname or a
            // given name alone, of one word or several ("EL HADDAD", "Fatima Zahra").
            let found = with_extra.and_then(|f| held(Field::Name, &f)).or_else(|| {
                let n = alone()?;
                held(Field::Name, &n)
                    .or_else(|| held(Field::NameAr, &n))
                    .or_else(|| held(Field::Surname, &n))
                    .or_else(|| held(Field::Given, &n))
            });
            check("name", true, found);
        }
    }
    if let Some(ar) = row.name_ar.as_deref() {
        let found = normalise_field(Field::NameAr, ar)
            .and_then(|n| held(Field::NameAr, &n).or_else(|| held(Field::Name, &n)));
        check("name_ar", true, found);
    }
    if whole {
        // CIN, name, birth date and RIB, each as the latest version holds it.
        identity_present += 4;
        identity_matched += 4;
    } else {
        check(
            "birth_date",
            row.birth.is_some(),
            held_form(Field::Birth, row.birth.as_ref()),
        );
        check(
            "rib",
            row.rib.is_some(),
            held_form(Field::Rib, row.rib.as_ref()),
        );
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
        let wanted_period = row.period.as_deref().and_then(|p| p.parse::<u32>().ok());
        // Sorted by month: the row's month, if it names one, is a run of them.
        let declared = &entries[persons.len()..];
        let months = match wanted_period {
            Some(p) => {
                let from = declared.partition_point(|e| e.period < p);
                &declared[from..declared.partition_point(|e| e.period <= p)]
            }
            None => declared,
        };
        let newest = entries.last().map_or(0, |e| e.period);
        if persons.len() == entries.len() {
            v.unverified_salary = true;
        } else if months.is_empty() {
            altered.push("period");
        } else if let Some(period) = (checking == Checking::Records)
            .then(|| holds_latest_declaration(row, months, pid, mac))
            .flatten()
        {
            v.period = Some(period);
            if period < newest {
                older.get_or_insert(period.to_string());
            }
        } else {
            let mut buf = [0u8; 20];
            let salary = row.salary.map(|s| {
                let exact = mac(Field::Salary, pid, &[decimal(s, &mut buf)]);
                (s, exact)
            });
            let days = row
                .days
                .map(|d| mac(Field::Days, pid, &[decimal(u64::from(d), &mut buf)]));
            let mut rounded_forms: Option<Vec<(Field, Digest)>> = None;
            // The month matching most fields; among equals the latest.
            let mut best: Option<(usize, u32, bool)> = None;
            for e in months {
                let mut hits = 0;
                let mut rounded = false;
                if let Some((s, exact)) = &salary {
                    if matches(e.body, Field::Salary, exact) {
                        hits += 1;
                    } else {
                        let forms = rounded_forms.get_or_insert_with(|| {
                            let value = decimal(*s, &mut buf);
                            salary_forms(*s)
                                .iter()
                                .skip(1)
                                .map(|(f, _)| (*f, mac(*f, pid, &[value])))
                                .collect()
                        });
                        if forms.iter().any(|(f, d)| matches(e.body, *f, d)) {
                            hits += 1;
                            rounded = true;
                        }
                    }
                }
                if let Some(d) = &days
                    && matches(e.body, Field::Days, d)
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
                        let any = matches(e.body, Field::Salary, exact)
                            || rounded_forms
                                .as_ref()
                                .is_some_and(|f| f.iter().any(|(f, d)| matches(e.body, *f, d)));
                        if !any {
                            altered.push("salary");
                        }
                    }
                    if let (Some(d), Some(e)) = (&days, e)
                        && !matches(e.body, Field::Days, d)
                    {
                        altered.push("days");
                    }
                }
                if hits > 0 {
                    v.period = Some(period);
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

/// Whether the row's CIN, name (`name`, normalised), birth date and RIB are, all four,
/// what the person's latest record holds: one digest instead of four. `false` when one is
/// missing or no latest record carries a whole-record digest; then each is checked on its
/// own, as after a miss.
fn holds_latest_record(
    row: &LeakRow,
    name: Option<&str>,
    persons: &[Held<'_>],
    latest: u64,
    pid: &str,
    mac: &dyn Fn(Field, &str, &[&str]) -> Digest,
) -> bool {
    let latest_wholes = || {
        persons
            .iter()
            .filter(move |e| e.version == latest && has_field(e.body, Field::Record))
    };
    if latest_wholes().next().is_none() {
        return false;
    }
    let (Some(cin), Some(name), Some(birth), Some(rib)) = (
        row.cin.as_deref().and_then(|v| normal_form(Field::Cin, v)),
        name,
        row.birth
            .as_deref()
            .and_then(|v| normal_form(Field::Birth, v)),
        row.rib.as_deref().and_then(|v| normal_form(Field::Rib, v)),
    ) else {
        return false;
    };
    let whole = WholeRecord {
        cin: &cin,
        name,
        birth: &birth,
        rib: &rib,
    };
    let d = mac(Field::Record, pid, &whole.values());
    latest_wholes().any(|e| matches(e.body, Field::Record, &d))
}

/// The month of `months` (one person's declarations, sorted by month) whose salary and
/// days the row repeats exactly, when it is the latest month and the first of its
/// versions: then it is the month the field-by-field search would choose (every field
/// matched, none later), found with one digest instead of two.
fn holds_latest_declaration(
    row: &LeakRow,
    months: &[Held<'_>],
    pid: &str,
    mac: &dyn Fn(Field, &str, &[&str]) -> Digest,
) -> Option<u32> {
    let (salary, days) = (row.salary?, row.days?);
    let last = months.last()?;
    let first = months.get(months.partition_point(|e| e.period < last.period))?;
    if !has_field(first.body, Field::Declaration) {
        return None;
    }
    let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
    let values = [decimal(salary, &mut a), decimal(u64::from(days), &mut b)];
    let d = mac(Field::Declaration, pid, &values);
    matches(first.body, Field::Declaration, &d).then_some(first.period)
}

/// Classifies every row on `threads` threads; `located` is consumed (its record ids move
/// into the verdicts rather than being copied).
pub fn classify_all(
    rows: &[LeakRow],
    mut located: Vec<Option<Located>>,
    digests: &Digests,
    resolver: &dyn Resolver,
    digester: &LeakDigester,
    threads: usize,
    checking: Checking,
) -> Vec<Verdict> {
    in_parts(
        &mut located,
        threads,
        Verdict::unmatched(&LeakRow::default()),
        || {
            (
                std::cell::RefCell::new(digester.worker()),
                Vec::<Held<'_>>::new(),
            )
        },
        |block| {
            std::hint::black_box(
                digests.warm(block.iter().map(|l| l.as_ref().and_then(|l| l.slot))),
            );
        },
        |(w, entries), i, l| {
            let l = l.take();
            // The thread's own keyed state; borrowed for one digest at a time, so the
            // shared digester is only a fallback that never runs.
            let mac = |f: Field, id: &str, v: &[&str]| match w.try_borrow_mut() {
                Ok(mut w) => w.digest_of(f, id, v),
                Err(_) => digester.digest_of(f, id, v),
            };
            let slot = l.as_ref().and_then(|l| l.slot);
            // One vector per thread, refilled for each row.
            digests.fill(slot, entries);
            with_person(
                judge(
                    &rows[i],
                    l.as_ref(),
                    entries,
                    slot,
                    resolver,
                    checking,
                    &mac,
                ),
                l,
            )
        },
    )
}

/// Items handed to `ahead` at a time, before any of them is processed.
const BLOCK: usize = 32;

/// `f(state, i, &mut items[i])` for every item, shared out among `threads` threads in
/// consecutive parts, each thread with a `state` of its own from `init`; `ahead` sees each
/// block of a part's items before `f` does. The results are written in place into one
/// vector made beforehand (of `blank`s): millions of them are neither collected per thread
/// nor copied together after.
fn in_parts<S, T: Send, U: Send + Clone>(
    items: &mut [T],
    threads: usize,
    blank: U,
    init: impl Fn() -> S + Sync,
    ahead: impl Fn(&[T]) + Sync,
    f: impl Fn(&mut S, usize, &mut T) -> U + Sync,
) -> Vec<U> {
    let mut out = vec![blank; items.len()];
    let part = items.len().div_ceil(threads.max(1)).max(1);
    let (f, init, ahead) = (&f, &init, &ahead);
    // A thread that panicked is a bug: the scope panics on (its rows must not vanish).
    std::thread::scope(|s| {
        for (k, (ins, outs)) in items.chunks_mut(part).zip(out.chunks_mut(part)).enumerate() {
            s.spawn(move || {
                let mut state = init();
                let blocks = ins.chunks_mut(BLOCK).zip(outs.chunks_mut(BLOCK));
                for (b, (ins, outs)) in blocks.enumerate() {
                    ahead(ins);
                    for (j, (t, u)) in ins.iter_mut().zip(outs.iter_mut()).enumerate() {
                        *u = f(&mut state, k * part + b * BLOCK + j, t);
                    }
                }
            });
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use ribat_crypto::leak_digest::encode_body;
    use ribat_crypto::secret::SecretBytes;
    use std::cell::Cell;

    struct NoIndexes;

    impl Resolver for NoIndexes {
        fn by_cnss(&self, _: &str) -> Option<String> {
            None
        }
        fn by_cin(&self, _: &str) -> Result<Vec<String>, LeakError> {
            Ok(Vec::new())
        }
        fn by_name_birth(&self, _: &str, _: &str) -> Result<Vec<String>, LeakError> {
            Ok(Vec::new())
        }
        fn is_honey(&self, _: &str) -> bool {
            false
        }
    }

    const PID: &str = "p-1";

    fn digester() -> LeakDigester {
        LeakDigester::new(&SecretBytes::new([9u8; 32])).unwrap()
    }

    /// A person record's body as an import writes it, with or without its whole-record
    /// digest.
    fn person_body(l: &LeakDigester, cin: &str, rib: &str, whole: bool) -> Vec<u8> {
        let name = normalise_field(Field::Name, "Youssef Mansouri").unwrap();
        let mut pairs = vec![
            (Field::Cin, l.digest(Field::Cin, PID, cin)),
            (Field::Name, l.digest(Field::Name, PID, &name)),
            (Field::Birth, l.digest(Field::Birth, PID, "1984-07-08")),
            (Field::Rib, l.digest(Field::Rib, PID, rib)),
        ];
        if whole {
            let w = WholeRecord {
                cin,
                name: &name,
                birth: "1984-07-08",
                rib,
            };
            pairs.push((Field::Record, l.digest_of(Field::Record, PID, &w.values())));
        }
        encode_body(&pairs)
    }

    fn month_body(l: &LeakDigester, salary: u64, days: u64, whole: bool) -> Vec<u8> {
        let (s, d) = (salary.to_string(), days.to_string());
        let mut pairs: Vec<(Field, Digest)> = salary_forms(salary)
            .iter()
            .map(|(f, v)| (*f, l.digest(*f, PID, &v.to_string())))
            .collect();
        pairs.push((Field::Days, l.digest(Field::Days, PID, &d)));
        if whole {
            pairs.push((
                Field::Declaration,
                l.digest_of(Field::Declaration, PID, &[&s, &d]),
            ));
        }
        encode_body(&pairs)
    }

    /// Person v1 (an older RIB), person v2, January and February.
    fn bodies(l: &LeakDigester, whole: bool) -> Vec<(u32, u64, Vec<u8>)> {
        let mut v = vec![
            (0, 1, person_body(l, "K890193", OLD_RIB, whole)),
            (0, 2, person_body(l, "K890193", RIB, whole)),
            (202_501, 1, month_body(l, 552_839, 26, whole)),
            (202_502, 1, month_body(l, 601_037, 22, whole)),
        ];
        v.sort();
        v
    }

    const RIB: &str = "007285557520054208582345";
    const OLD_RIB: &str = "007285557520054208580000";

    fn row() -> LeakRow {
        LeakRow {
            cnss: Some("152099839".into()),
            cin: Some("K890193".into()),
            name: Some("MANSOURI".into()),
            name_extra: Some("Youssef".into()),
            birth: Some("1984-07-08".into()),
            rib: Some(RIB.into()),
            salary: Some(601_037),
            days: Some(22),
            ..LeakRow::default()
        }
    }

    /// The verdict on `row` and how many digests it took.
    fn judged(row: &LeakRow, whole: bool, checking: Checking) -> (Verdict, usize) {
        judged_over(row, bodies(&digester(), whole), checking)
    }

    fn judged_over(
        row: &LeakRow,
        stored: Vec<(u32, u64, Vec<u8>)>,
        checking: Checking,
    ) -> (Verdict, usize) {
        let l = digester();
        let entries: Vec<Held<'_>> = stored
            .iter()
            .map(|(period, version, body)| Held {
                period: *period,
                version: *version,
                body,
            })
            .collect();
        let located = Located {
            id: PID.into(),
            locator: l.locator(PID),
            slot: Some(0),
            by_cnss: true,
        };
        let count = Cell::new(0);
        let mac = |f: Field, id: &str, v: &[&str]| {
            count.set(count.get() + 1);
            l.digest_of(f, id, v)
        };
        let v = judge(
            row,
            Some(&located),
            &entries,
            Some(0),
            &NoIndexes,
            checking,
            &mac,
        );
        (v, count.get())
    }

    #[test]
    fn a_surname_of_several_words_alone_in_its_column_is_the_persons_surname() {
        // The person is "Youssef El Haddad"; the dump's one name column holds the surname.
        let l = digester();
        let full = normalise_field(Field::Name, "Youssef El Haddad").unwrap();
        let surname = normalise_field(Field::Surname, "El Haddad").unwrap();
        let body = encode_body(&[
            (Field::Cin, l.digest(Field::Cin, PID, "K890193")),
            (Field::Name, l.digest(Field::Name, PID, &full)),
            (Field::Surname, l.digest(Field::Surname, PID, &surname)),
            (Field::Given, l.digest(Field::Given, PID, "youssef")),
        ]);
        let row = |name: &str| LeakRow {
            cnss: Some("152099839".into()),
            cin: Some("K890193".into()),
            name: Some(name.into()),
            ..LeakRow::default()
        };
        for (written, class) in [
            ("EL HADDAD", Class::GenuineCurrent),
            ("Haddad", Class::GenuineCurrent),
            (
                "EL MANSOURI",
                Class::Altered {
                    fields: vec!["name"],
                },
            ),
        ] {
            let (v, _) = judged_over(&row(written), vec![(0, 1, body.clone())], Checking::Fields);
            assert_eq!(v.class, class, "{written}");
        }
    }

    #[test]
    fn a_row_repeating_the_latest_record_and_month_costs_two_digests() {
        let (v, macs) = judged(&row(), true, Checking::Records);
        assert_eq!(v.class, Class::GenuineCurrent);
        assert_eq!(v.period, Some(202_502));
        assert_eq!(macs, 2);
        // Four identity fields, salary and days, and the rounded salary forms tried on
        // January, whose exact salary differs.
        let (by_fields, macs) = judged(&row(), true, Checking::Fields);
        assert_eq!(by_fields, v);
        assert_eq!(macs, 9);
    }

    #[test]
    fn whole_digests_give_the_verdicts_fields_give() {
        let older_rib = LeakRow {
            rib: Some(OLD_RIB.into()),
            ..row()
        };
        let january = LeakRow {
            salary: Some(552_839),
            days: Some(26),
            ..row()
        };
        let january_named = LeakRow {
            period: Some("202501".into()),
            ..january.clone()
        };
        // Whole dirhams: the centimes dropped.
        let rounded = LeakRow {
            salary: Some(601_000),
            ..row()
        };
        let altered = LeakRow {
            cin: Some("K890194".into()),
            days: Some(21),
            ..row()
        };
        let partial = LeakRow {
            rib: None,
            days: None,
            ..row()
        };
        let older = |v: &str| Class::GenuineOlder {
            version: v.to_owned(),
        };
        let cases = [
            (row(), Class::GenuineCurrent),
            (older_rib, older("person v1")),
            (january, older("202501")),
            (january_named, older("202501")),
            (rounded.clone(), Class::GenuineCurrent),
            (
                altered,
                Class::Altered {
                    fields: vec!["cin", "days"],
                },
            ),
            (partial, Class::GenuineCurrent),
        ];
        for (r, class) in cases {
            let (records, with_whole) = judged(&r, true, Checking::Records);
            let (fields, by_fields) = judged(&r, true, Checking::Fields);
            assert_eq!(records, fields, "{r:?}");
            assert_eq!(records.class, class, "{r:?}: {records:?}");
            // A miss costs one digest more than fields alone, never a different verdict.
            assert!(with_whole <= by_fields + 2, "{r:?}");
            // A store written before whole digests existed: the same verdict, and not one
            // digest more than checking field by field.
            let (old_store, old_macs) = judged(&r, false, Checking::Records);
            assert_eq!(old_store, fields, "{r:?}");
            assert_eq!(old_macs, judged(&r, false, Checking::Fields).1, "{r:?}");
        }
        assert!(judged(&rounded, true, Checking::Records).0.rounded);
    }

    #[test]
    fn a_corrected_month_is_judged_on_its_first_version_as_fields_judge_it() {
        // February declared at 6,010.37 then corrected to 6,010.00: a row saying 6,010.00
        // matches the first version once rounded and the correction exactly. Field by
        // field, the first version of the month wins (rounded); so must the whole digest.
        let l = digester();
        let mut stored = bodies(&l, true);
        stored.push((202_502, 2, month_body(&l, 601_000, 22, true)));
        stored.sort();
        let r = LeakRow {
            salary: Some(601_000),
            ..row()
        };
        let (records, _) = judged_over(&r, stored.clone(), Checking::Records);
        let (fields, _) = judged_over(&r, stored, Checking::Fields);
        assert_eq!(records, fields);
        assert!(records.rounded);
    }

    #[test]
    fn parts_keep_order_and_indexes_and_see_every_block_ahead() {
        for (n, threads) in [(0, 2), (1, 2), (7, 2), (10, 3), (5, 8), (100, 2), (65, 1)] {
            let mut items: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
            let seen = std::sync::Mutex::new(Vec::new());
            let out = in_parts(
                &mut items,
                threads,
                (0, String::new()),
                || (),
                |block| seen.lock().unwrap().extend(block.iter().cloned()),
                |_, i, s| (i, std::mem::take(s)),
            );
            let want: Vec<(usize, String)> = (0..n).map(|i| (i, format!("r{i}"))).collect();
            assert_eq!(out, want, "{n} items on {threads} threads");
            let mut seen = seen.into_inner().unwrap();
            seen.sort();
            let mut all: Vec<String> = want.into_iter().map(|(_, s)| s).collect();
            all.sort();
            assert_eq!(seen, all, "every item seen ahead once");
        }
    }
}
