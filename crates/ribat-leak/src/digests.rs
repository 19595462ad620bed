//! The leak digests of the persons a scan names, fetched from the store once: a lookup
//! each for a few persons, one walk of the whole table, in parts side by side, for many.
//!
//! Millions of persons must cost a few allocations, not millions: what is kept goes into
//! one vector of entries and one arena of bodies per part (a shelf). A walk reads each
//! part in locator order beside the part's persons sorted the same way, so their sets
//! arrive grouped and in the order of their slots (their ranks): nothing is hashed,
//! probed or moved after reading. Lookups give slots in order of first appearance and pack
//! what they read by slot (a counting sort), which for a few persons costs nothing.

use crate::LeakError;
use crate::mac_hash::LocatorTable;
use ribat_crypto::leak_digest::check_body;
use ribat_store::{Part, Store};
use std::collections::HashSet;

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

/// A digest set held for a scan: the month it describes (0 for the person record), the
/// version of the record it was computed from, and its body (`(field code, digest)`
/// pairs, as stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held<'a> {
    /// `AAAAMM` of a declaration; 0 for the person record.
    pub period: u32,
    /// Record version.
    pub version: u64,
    /// The stored pairs.
    pub body: &'a [u8],
}

/// One digest set: whose (slot), what, and where its body lies in its arena.
#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    period: u32,
    len: u16,
    slot: u32,
    version: u64,
    at: usize,
}

/// Digest sets as a pass (or the lookups) read them.
#[derive(Debug, Default)]
struct Reading {
    entries: Vec<Entry>,
    arena: Vec<u8>,
}

impl Reading {
    fn with_capacity(rows: usize) -> Self {
        Self {
            entries: Vec::with_capacity(rows),
            // A person's or a declaration's body is 6 to 13 pairs of 9 bytes.
            arena: Vec::with_capacity(rows.saturating_mul(72)),
        }
    }

    fn keep(
        &mut self,
        slot: u32,
        table: &str,
        record_id: &str,
        version: u64,
        body: &[u8],
    ) -> Result<(), LeakError> {
        self.keep_period(slot, period_of(table, record_id), version, body)
    }

    fn keep_period(
        &mut self,
        slot: u32,
        period: u32,
        version: u64,
        body: &[u8],
    ) -> Result<(), LeakError> {
        // Checked once here, so that matching reads the stored bytes as they are.
        check_body(body)?;
        if self.entries.len() >= u32::MAX as usize {
            return Err(too_many());
        }
        let len = u16::try_from(body.len()).map_err(|_| malformed("longer than 64 KiB"))?;
        self.entries.push(Entry {
            period,
            len,
            slot,
            version,
            at: self.arena.len(),
        });
        self.arena.extend_from_slice(body);
        Ok(())
    }

    /// Packs by slot, for `slots` slots.
    fn pack(self, slots: usize) -> Result<Shelf, LeakError> {
        let mut first = vec![0u32; slots + 1];
        for e in &self.entries {
            match first.get_mut(e.slot as usize + 1) {
                Some(c) => *c += 1,
                None => return Err(malformed("a digest set for a slot beyond the scan's")),
            }
        }
        for i in 1..first.len() {
            first[i] += first[i - 1];
        }
        let mut next = first.clone();
        let mut entries = vec![Entry::default(); self.entries.len()];
        for e in &self.entries {
            let at = &mut next[e.slot as usize];
            entries[*at as usize] = *e;
            *at += 1;
        }
        drop(next);
        let mut arena = Vec::with_capacity(self.arena.len());
        let mut persons = vec![0u64; slots.div_ceil(64)];
        for e in &mut entries {
            let body = self
                .arena
                .get(e.at..e.at + usize::from(e.len))
                .ok_or_else(|| malformed("a body outside its arena"))?;
            e.at = arena.len();
            arena.extend_from_slice(body);
            if e.period == 0 {
                persons[e.slot as usize / 64] |= 1 << (e.slot % 64);
            }
        }
        Ok(Shelf {
            base: 0,
            first,
            entries,
            arena,
            persons,
        })
    }

    /// The shelf of sets kept in order of slot (as a walk keeps them), for `slots`
    /// slots: nothing moves. Sets out of order are packed instead.
    fn in_order(self, slots: usize) -> Result<Shelf, LeakError> {
        if !self.entries.is_sorted_by_key(|e| e.slot) {
            return self.pack(slots);
        }
        let mut first = vec![0u32; slots + 1];
        let mut persons = vec![0u64; slots.div_ceil(64)];
        for e in &self.entries {
            match first.get_mut(e.slot as usize + 1) {
                Some(c) => *c += 1,
                None => return Err(malformed("a digest set for a slot beyond the scan's")),
            }
            if e.period == 0 {
                persons[e.slot as usize / 64] |= 1 << (e.slot % 64);
            }
        }
        for i in 1..first.len() {
            first[i] += first[i - 1];
        }
        Ok(Shelf {
            base: 0,
            first,
            entries: self.entries,
            arena: self.arena,
            persons,
        })
    }
}

/// What one part of a walk read: its rows by locator, and their persons' sets.
struct Walked {
    share: Vec<([u8; 16], u32)>,
    /// The share's persons, sorted: a rank is a position here.
    persons: Vec<[u8; 16]>,
    shelf: Shelf,
    read: u64,
}

/// Walks `part` of the table beside `share` (its located rows, as `(locator, row)`),
/// keeping the sets of the share's persons, each under its rank among them.
fn walk_part(
    store: &dyn Store,
    part: Part,
    mut share: Vec<([u8; 16], u32)>,
    capacity: usize,
) -> Result<Walked, LeakError> {
    share.sort_unstable();
    let mut persons: Vec<[u8; 16]> = share.iter().map(|(l, _)| *l).collect();
    persons.dedup();
    let mut reading = Reading::with_capacity(capacity.min(persons.len().saturating_mul(4)));
    let (mut next, mut read, mut err) = (0usize, 0u64, None);
    store.scan_digests(part, &mut |row| {
        read += 1;
        let Ok(l) = <[u8; 16]>::try_from(row.locator) else {
            return true;
        };
        while persons.get(next).is_some_and(|p| *p < l) {
            next += 1;
        }
        match persons.get(next) {
            // Every person of the share is behind: the rest of the part is nobody's.
            None => false,
            Some(p) if *p == l => {
                let period = period_of(row.table, row.record_id);
                // Below the share's length, itself below u32::MAX (checked by the caller).
                let rank = u32::try_from(next).unwrap_or(u32::MAX);
                match reading.keep_period(rank, period, row.version, row.body) {
                    Ok(()) => true,
                    Err(e) => {
                        err = Some(e);
                        false
                    }
                }
            }
            Some(_) => true,
        }
    })?;
    if let Some(e) = err {
        return Err(e);
    }
    Ok(Walked {
        shelf: reading.in_order(persons.len())?,
        share,
        persons,
        read,
    })
}

/// The first `bits` bits of a locator (at most 32).
fn prefix(l: &[u8; 16], bits: u32) -> usize {
    let head = u32::from_be_bytes([l[0], l[1], l[2], l[3]]);
    (head >> (32 - bits.clamp(1, 32))) as usize
}

/// Walks the `of` parts of the table side by side, each beside its share.
fn walk_parts(
    store: &dyn Store,
    shares: Vec<Vec<([u8; 16], u32)>>,
    of: u32,
    per_part: usize,
) -> Vec<Result<Walked, LeakError>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = shares
            .into_iter()
            .zip(0u32..)
            .map(|(share, index)| {
                s.spawn(move || walk_part(store, Part { index, of }, share, per_part))
            })
            .collect();
        // A thread that panicked is a bug; its rows must not vanish.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Digest sets packed by slot: slot `s`'s are `entries[first[s]..first[s + 1]]`, their
/// bodies side by side in the same order.
#[derive(Debug, Default)]
struct Shelf {
    /// The first slot this shelf holds: slot `s` is at `s - base`.
    base: u32,
    first: Vec<u32>,
    entries: Vec<Entry>,
    arena: Vec<u8>,
    /// One bit per slot: a person record is here.
    persons: Vec<u64>,
}

impl Shelf {
    fn chain(&self, slot: u32) -> impl Iterator<Item = Held<'_>> {
        // A slot below the base is not here (nor above the end: `first` says so).
        let s = slot
            .checked_sub(self.base)
            .map_or(usize::MAX - 1, |s| s as usize);
        let from = self.first.get(s).copied().unwrap_or(0) as usize;
        let to = self.first.get(s + 1).copied().unwrap_or(0) as usize;
        self.entries
            .get(from..to)
            .unwrap_or(&[])
            .iter()
            .map(|e| Held {
                period: e.period,
                version: e.version,
                body: self
                    .arena
                    .get(e.at..e.at + usize::from(e.len))
                    .unwrap_or(&[]),
            })
    }
}

/// The digests of the persons a scan needs, by locator.
#[derive(Debug, Default)]
pub struct Digests {
    /// The persons a walk of the table read, by locator, sorted: a slot is a rank here.
    walked: Vec<[u8; 16]>,
    /// Where in `walked` the locators beginning with each prefix of `radix_bits` bits
    /// begin (locators are MAC outputs, spread evenly): a lookup among millions searches
    /// a handful instead of halving 80 MB.
    radix: Vec<u32>,
    radix_bits: u32,
    /// The persons looked up one by one; their slots follow the walked persons'.
    slots: LocatorTable,
    shelves: Vec<Shelf>,
    /// Rows read from the store.
    pub rows_read: u64,
    /// Whether they were read in passes over the whole table (large dumps) rather
    /// than looked up one by one.
    pub streamed: bool,
}

/// Whether reading the whole digest table (about `table_rows` rows) is cheaper than
/// looking `persons` up one by one: a lookup costs about what reading twenty rows in a
/// pass does.
pub fn worth_a_pass(persons: u64, table_rows: u64) -> bool {
    persons.saturating_mul(20) > table_rows
}

/// The month a digest row describes: `AAAAMM` for a declaration, 0 for a person record.
pub(crate) fn period_of(table: &str, record_id: &str) -> u32 {
    if table != "declarations" {
        return 0;
    }
    // Declaration ids are `d-AAAAMM-p-…-e-…`.
    record_id
        .get(2..8)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0)
}

impl Digests {
    /// Fetches the digests of the located rows' persons: one lookup each for a few,
    /// passes over the table (in `threads` parts read side by side, where the store
    /// can) when they are many (more than a twentieth of the table's rows). Each located
    /// row learns its slot.
    pub fn fetch(
        store: &dyn Store,
        located: &mut [Option<Located>],
        threads: usize,
    ) -> Result<Self, LeakError> {
        Self::fetch_by(store, located, threads, None)
    }

    /// [`Digests::fetch`], told whether to walk the whole table (`Some(true)`), to look
    /// each person up (`Some(false)`), or to choose by the counts (`None`).
    pub fn fetch_by(
        store: &dyn Store,
        located: &mut [Option<Located>],
        threads: usize,
        pass: Option<bool>,
    ) -> Result<Self, LeakError> {
        let estimate = store.digest_rows_estimate()?;
        let named = located.iter().flatten().count() as u64;
        if pass.unwrap_or_else(|| worth_a_pass(named, estimate)) {
            return Self::walk(store, located, threads, estimate);
        }
        let mut d = Self {
            slots: LocatorTable::with_capacity(located.len()),
            ..Self::default()
        };
        let mut order = Vec::new();
        for l in located.iter_mut().flatten() {
            let next = u32::try_from(d.slots.len())
                .ok()
                .filter(|n| *n != u32::MAX)
                .ok_or_else(too_many)?;
            let (slot, new) = d.slots.get_or_insert(l.locator, next);
            if new {
                order.push(l.locator);
            }
            l.slot = Some(slot);
        }
        let mut reading = Reading::default();
        for (slot, l) in order.iter().enumerate() {
            let slot = u32::try_from(slot).map_err(|_| too_many())?;
            d.rows_read += look_up(store, l, slot, &mut reading)?;
        }
        d.shelves.push(reading.pack(d.slots.len())?);
        Ok(d)
    }

    /// The digests of every person under `locators` (sorted, each once): a dump too large
    /// to hold is read twice, once for its locators and once to classify it, so that the
    /// table is walked once whatever the dump's size. A slot is the locator's position.
    pub fn fetch_locators(
        store: &dyn Store,
        locators: &[[u8; 16]],
        threads: usize,
        pass: Option<bool>,
    ) -> Result<Self, LeakError> {
        if locators.len() >= u32::MAX as usize {
            return Err(too_many());
        }
        let estimate = store.digest_rows_estimate()?;
        if pass.unwrap_or_else(|| worth_a_pass(locators.len() as u64, estimate)) {
            return Self::walk_sorted(store, locators, threads, estimate);
        }
        let mut d = Self {
            slots: LocatorTable::with_capacity(locators.len()),
            ..Self::default()
        };
        let mut reading = Reading::default();
        for (slot, l) in (0u32..).zip(locators) {
            d.rows_read += look_up(store, l, slot, &mut reading)?;
            d.slots.get_or_insert(*l, slot);
        }
        d.shelves.push(reading.pack(d.slots.len())?);
        Ok(d)
    }

    /// A walk for `locators` (sorted, each once): each part's persons are a run of them.
    fn walk_sorted(
        store: &dyn Store,
        locators: &[[u8; 16]],
        threads: usize,
        estimate: u64,
    ) -> Result<Self, LeakError> {
        let of = u32::try_from(threads.max(1))
            .unwrap_or(1)
            .min(store.digest_scan_parts().max(1));
        let mut shares: Vec<Vec<([u8; 16], u32)>> = Vec::new();
        let mut from = 0usize;
        for index in 0..of {
            let to = if index + 1 == of {
                locators.len()
            } else {
                let hi = Part {
                    index: index + 1,
                    of,
                }
                .locator_bounds()
                .0;
                locators.partition_point(|l| *l < hi)
            };
            let share = locators
                .get(from..to)
                .unwrap_or(&[])
                .iter()
                .zip(0u32..)
                .map(|(l, i)| (*l, i))
                .collect();
            shares.push(share);
            from = to;
        }
        let per_part = (estimate / u64::from(of)).min(1 << 28) as usize;
        Self::gathered(walk_parts(store, shares, of, per_part), |_, _| {})
    }

    /// The digests a walk's parts read, in locator order: a part's ranks continue from the
    /// one before (`each` learns each part and its first rank).
    fn gathered(
        parts: Vec<Result<Walked, LeakError>>,
        mut each: impl FnMut(&Walked, u32),
    ) -> Result<Self, LeakError> {
        let mut d = Self {
            streamed: true,
            ..Self::default()
        };
        for p in parts {
            let mut p = p?;
            let base = u32::try_from(d.walked.len()).map_err(|_| too_many())?;
            each(&p, base);
            p.shelf.base = base;
            d.walked.extend(p.persons);
            d.rows_read += p.read;
            d.shelves.push(p.shelf);
        }
        if d.walked.len() >= u32::MAX as usize {
            return Err(too_many());
        }
        d.index_walked();
        Ok(d)
    }

    /// Builds the prefix index of `walked` (sorted) once it is large enough to need one:
    /// about four locators per prefix.
    fn index_walked(&mut self) {
        let n = self.walked.len();
        if n < 1 << 12 {
            return;
        }
        let bits = (usize::BITS - (n / 4).leading_zeros()).min(24);
        let mut radix = Vec::with_capacity((1 << bits) + 1);
        let mut at = 0usize;
        for p in 0..(1usize << bits) {
            while self.walked.get(at).is_some_and(|l| prefix(l, bits) < p) {
                at += 1;
            }
            radix.push(u32::try_from(at).unwrap_or(u32::MAX));
        }
        radix.push(u32::try_from(n).unwrap_or(u32::MAX));
        self.radix = radix;
        self.radix_bits = bits;
    }

    /// Slots for a further block of a scan whose persons were fetched by
    /// [`Digests::fetch_locators`]; a person it does not hold (none, unless the file
    /// changed between the two readings) is looked up.
    pub fn fetch_block(
        &mut self,
        store: &dyn Store,
        located: &mut [Option<Located>],
    ) -> Result<(), LeakError> {
        let mut fresh = HashSet::new();
        for l in located.iter_mut().flatten() {
            l.slot = self.slot(&l.locator);
            if l.slot.is_none() {
                fresh.insert(l.locator);
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        self.fetch_more(store, &fresh)?;
        for l in located.iter_mut().flatten() {
            if l.slot.is_none() {
                l.slot = self.slot(&l.locator);
            }
        }
        Ok(())
    }

    /// One walk of the whole table, in `threads` parts side by side where the store can:
    /// each part's persons sorted by locator, and its digest rows read in locator order
    /// beside them (the store's promise), so that what is kept arrives already grouped by
    /// person and a person's slot is its rank. No table of locators is built or probed,
    /// nothing is sorted after reading, and the pass stops once its persons are behind it.
    fn walk(
        store: &dyn Store,
        located: &mut [Option<Located>],
        threads: usize,
        estimate: u64,
    ) -> Result<Self, LeakError> {
        let of = u32::try_from(threads.max(1))
            .unwrap_or(1)
            .min(store.digest_scan_parts().max(1));
        let lows: Vec<[u8; 16]> = (0..of)
            .map(|index| Part { index, of }.locator_bounds().0)
            .collect();
        // Each located row, by the part its locator falls in.
        let mut shares: Vec<Vec<([u8; 16], u32)>> = vec![Vec::new(); lows.len()];
        for (i, l) in located.iter().enumerate() {
            if let Some(l) = l {
                let row = u32::try_from(i).map_err(|_| too_many())?;
                let part = lows
                    .partition_point(|lo| *lo <= l.locator)
                    .saturating_sub(1);
                if let Some(s) = shares.get_mut(part) {
                    s.push((l.locator, row));
                }
            }
        }
        // Sized once: growing vectors of millions of rows would copy them over and over.
        let per_part = (estimate / u64::from(of)).min(1 << 28) as usize;
        Self::gathered(walk_parts(store, shares, of, per_part), |p, base| {
            let mut rank = base;
            let mut last = None;
            for (l, row) in &p.share {
                if last.is_some_and(|x| x != l) {
                    rank += 1;
                }
                last = Some(l);
                if let Some(Some(at)) = located.get_mut(*row as usize) {
                    at.slot = Some(rank);
                }
            }
        })
    }

    /// Adds the digests under more locators (persons found in a second round), one
    /// lookup each.
    pub fn fetch_more(
        &mut self,
        store: &dyn Store,
        locators: &HashSet<[u8; 16]>,
    ) -> Result<(), LeakError> {
        let mut sorted: Vec<&[u8; 16]> = locators.iter().collect();
        // The same slots whatever the set's order.
        sorted.sort_unstable();
        let mut reading = Reading::default();
        for l in sorted {
            if self.slot(l).is_some() {
                continue;
            }
            let slot = u32::try_from(self.slots())
                .ok()
                .filter(|n| *n != u32::MAX)
                .ok_or_else(too_many)?;
            self.rows_read += look_up(store, l, slot, &mut reading)?;
            self.slots.get_or_insert(*l, slot);
        }
        if !reading.entries.is_empty() {
            self.shelves.push(reading.pack(self.slots())?);
        }
        Ok(())
    }

    /// Where the digests under `locator` are, if fetched.
    pub fn slot(&self, locator: &[u8; 16]) -> Option<u32> {
        let (lo, hi) = if self.radix.is_empty() {
            (0, self.walked.len())
        } else {
            let p = prefix(locator, self.radix_bits);
            (
                self.radix.get(p).map_or(0, |&x| x as usize),
                self.radix
                    .get(p + 1)
                    .map_or(self.walked.len(), |&x| x as usize),
            )
        };
        match self.walked.get(lo..hi).map(|w| w.binary_search(locator)) {
            Some(Ok(rank)) => u32::try_from(lo + rank).ok(),
            _ => self.slots.get(locator),
        }
    }

    /// How many persons were asked for.
    pub fn slots(&self) -> usize {
        self.walked.len() + self.slots.len()
    }

    /// Reads where the sets of each of `slots` begin, level by level (offsets, entries,
    /// bodies), and returns a value made of what it read. Rows are judged in file order
    /// while sets lie in locator order: a block of rows warmed this way first waits for
    /// its cache misses together instead of one after the other.
    pub fn warm(&self, slots: impl Iterator<Item = Option<u32>> + Clone) -> u64 {
        let mut acc = 0u64;
        for sh in &self.shelves {
            let at = |s: Option<u32>| {
                s.and_then(|s| s.checked_sub(sh.base))
                    .and_then(|s| sh.first.get(s as usize))
                    .copied()
            };
            for s in slots.clone() {
                acc ^= u64::from(at(s).unwrap_or(0));
            }
            let entries = |s: Option<u32>| {
                let from = at(s).unwrap_or(0) as usize;
                let to = s.and_then(|s| at(Some(s + 1))).unwrap_or(0) as usize;
                sh.entries.get(from..to).unwrap_or(&[])
            };
            for s in slots.clone() {
                acc ^= entries(s).iter().map(|e| e.at as u64).fold(0, |a, b| a ^ b);
            }
            // Both ends of every body: a person's sets span a few cache lines.
            for s in slots.clone() {
                for e in entries(s) {
                    let last = e.at + usize::from(e.len).max(1) - 1;
                    for i in [e.at, last] {
                        acc ^= u64::from(sh.arena.get(i).copied().unwrap_or(0));
                    }
                }
            }
        }
        acc
    }

    /// The digest sets of `slot` by month, then version, then content: the same order
    /// however the table was read.
    /// They go into `into`, emptied first: a scan reuses one vector for millions of rows.
    pub fn fill<'a>(&'a self, slot: Option<u32>, into: &mut Vec<Held<'a>>) {
        into.clear();
        if let Some(s) = slot {
            // Shelf by shelf: each gives a slice of known length, copied in one go.
            for sh in &self.shelves {
                into.extend(sh.chain(s));
            }
        }
        into.sort_unstable_by(|a, b| {
            (a.period, a.version, a.body).cmp(&(b.period, b.version, b.body))
        });
    }

    /// The latest declaration month held for any of the persons fetched.
    pub fn latest_period_held(&self) -> Option<u32> {
        self.shelves
            .iter()
            .flat_map(|sh| sh.entries.iter().map(|e| e.period))
            .filter(|p| *p > 0)
            .max()
    }

    /// Whether any person record is filed in `slot`.
    pub fn knows(&self, slot: Option<u32>) -> bool {
        let Some(s) = slot else {
            return false;
        };
        self.shelves.iter().any(|sh| {
            s.checked_sub(sh.base).is_some_and(|s| {
                sh.persons
                    .get(s as usize / 64)
                    .is_some_and(|w| w & (1 << (s % 64)) != 0)
            })
        })
    }
}

/// Looks up the digests under `locator` and keeps them for `slot`.
fn look_up(
    store: &dyn Store,
    locator: &[u8; 16],
    slot: u32,
    reading: &mut Reading,
) -> Result<u64, LeakError> {
    let rows = store.digests(locator)?;
    for row in &rows {
        reading.keep(slot, &row.table, &row.record_id, row.version, &row.body)?;
    }
    Ok(rows.len() as u64)
}

pub(crate) fn malformed(what: &str) -> LeakError {
    LeakError::Digest(ribat_crypto::CryptoError::Malformed {
        what: "leak digests",
        reason: what.to_owned(),
    })
}

pub(crate) fn too_many() -> LeakError {
    LeakError::Digest(ribat_crypto::CryptoError::Malformed {
        what: "leak scan",
        reason: "more than 4 billion persons or digest sets in one scan".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shelf_holds_each_persons_sets_together_and_apart_from_others() {
        let mut r = Reading::with_capacity(4);
        let body_a = [1u8; 9];
        let body_b = [2u8; 18];
        r.keep(1, "persons", "p-x", 1, &body_a).unwrap();
        r.keep(2, "persons", "p-y", 1, &body_b).unwrap();
        r.keep(1, "declarations", "d-202501-p-x", 1, &body_b)
            .unwrap();
        // Declarations alone do not make a person known.
        r.keep(0, "declarations", "d-202501-p-z", 1, &body_a)
            .unwrap();
        // A body that is not whole pairs is refused.
        assert!(r.keep(0, "persons", "p-z", 1, &[0u8; 10]).is_err());
        let sh = r.pack(4).unwrap();
        let mut one: Vec<(u32, usize, u8)> = sh
            .chain(1)
            .map(|h| (h.period, h.body.len(), h.body[0]))
            .collect();
        one.sort_unstable();
        assert_eq!(one, vec![(0, 9, 1), (202_501, 18, 2)]);
        assert_eq!(
            sh.chain(2).map(|h| h.body).collect::<Vec<_>>(),
            vec![&body_b[..]]
        );
        assert_eq!(sh.chain(0).count(), 1);
        assert_eq!(sh.chain(3).count(), 0);
        // A slot beyond the packing is empty, not an error.
        assert_eq!(sh.chain(99).count(), 0);
        let d = Digests {
            shelves: vec![sh],
            ..Digests::default()
        };
        assert!(d.knows(Some(1)) && d.knows(Some(2)));
        assert!(!d.knows(Some(0)) && !d.knows(Some(3)) && !d.knows(Some(99)) && !d.knows(None));
        assert_eq!(d.latest_period_held(), Some(202_501));
    }

    #[test]
    fn a_shelf_kept_in_order_answers_for_its_own_slots_only() {
        let mut r = Reading::default();
        // As a walk keeps them: by rank, a person record (month 0) for ranks 0 and 2.
        for (rank, period) in [(0, 0), (0, 202501), (1, 202502), (2, 0), (2, 202501)] {
            r.keep_period(rank, period, 1, &[rank as u8 + 1; 9])
                .unwrap();
        }
        let mut sh = r.in_order(4).unwrap();
        sh.base = 10;
        let periods = |slot| sh.chain(slot).map(|h| h.period).collect::<Vec<_>>();
        assert_eq!(periods(10), [0, 202501]);
        assert_eq!(periods(11), [202502]);
        assert_eq!(periods(12), [0, 202501]);
        assert!(sh.chain(12).all(|h| h.body == [3; 9]));
        for outside in [0, 9, 13, 14, u32::MAX] {
            assert_eq!(periods(outside), [0u32; 0], "slot {outside}");
        }
        let d = Digests {
            shelves: vec![sh],
            ..Digests::default()
        };
        assert!(d.knows(Some(10)) && d.knows(Some(12)));
        assert!(!d.knows(Some(11)) && !d.knows(Some(2)) && !d.knows(Some(0)));
    }

    #[test]
    fn sets_kept_out_of_order_are_packed_rather_than_misfiled() {
        let mut r = Reading::default();
        for rank in [2u32, 0, 1, 0] {
            r.keep_period(rank, 0, 1, &[rank as u8 + 1; 9]).unwrap();
        }
        let sh = r.in_order(3).unwrap();
        for rank in 0..3u32 {
            assert!(sh.chain(rank).all(|h| h.body == [rank as u8 + 1; 9]));
        }
        assert_eq!(sh.chain(0).count(), 2);
    }

    #[test]
    fn a_set_for_a_slot_beyond_the_scan_is_refused_when_packed() {
        let mut r = Reading::default();
        r.keep(5, "persons", "p-x", 1, &[1u8; 9]).unwrap();
        assert!(r.pack(5).is_err());
    }
}
