//! The leak digests of the persons a scan names, fetched from the store once: a lookup
//! each for a few persons, passes over the whole table side by side for many.
//!
//! Millions of persons must cost a few allocations, not millions: each pass keeps what it
//! reads in one vector of entries and one arena of bodies, so that passes never wait for
//! one another. Each pass then packs what it kept by slot (a counting sort: one person's
//! digest sets, and their bodies, side by side, in the order the rows will ask for them).
//! Classifying then reads memory front to back instead of chasing a chain through
//! gigabytes for every row; the gather that packs it makes the same random reads in a
//! tight loop, where the processor overlaps them.

use crate::LeakError;
use crate::classify::Located;
use crate::mac_hash::LocatorTable;
use ribat_crypto::leak_digest::check_body;
use ribat_store::{Part, Store};
use std::collections::HashSet;

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
            first,
            entries,
            arena,
            persons,
        })
    }
}

/// Rows of a pass waiting to be probed: a batch at a time, so that the probes' cache misses
/// overlap (see [`LocatorTable::touch`]).
#[derive(Default)]
struct Batch {
    rows: Vec<([u8; 16], u32, u64, std::ops::Range<usize>)>,
    bodies: Vec<u8>,
}

/// Rows per batch: enough misses in flight, still in the first-level cache.
const BATCH: usize = 64;

impl Batch {
    fn push(&mut self, locator: [u8; 16], period: u32, version: u64, body: &[u8]) {
        let at = self.bodies.len();
        self.bodies.extend_from_slice(body);
        self.rows
            .push((locator, period, version, at..self.bodies.len()));
    }

    fn full(&self) -> bool {
        self.rows.len() >= BATCH
    }

    /// Keeps the rows whose locator is one of the scan's, and empties the batch.
    fn flush(&mut self, slots: &LocatorTable, into: &mut Reading) -> Result<(), LeakError> {
        let warm = self
            .rows
            .iter()
            .fold(0u32, |acc, r| acc ^ slots.touch(&r.0));
        std::hint::black_box(warm);
        for (locator, period, version, body) in self.rows.drain(..) {
            if let Some(slot) = slots.get(&locator) {
                let body = self.bodies.get(body).unwrap_or(&[]);
                into.keep_period(slot, period, version, body)?;
            }
        }
        self.bodies.clear();
        Ok(())
    }
}

/// Digest sets packed by slot: slot `s`'s are `entries[first[s]..first[s + 1]]`, their
/// bodies side by side in the same order.
#[derive(Debug, Default)]
struct Shelf {
    first: Vec<u32>,
    entries: Vec<Entry>,
    arena: Vec<u8>,
    /// One bit per slot: a person record is here.
    persons: Vec<u64>,
}

impl Shelf {
    fn chain(&self, slot: u32) -> impl Iterator<Item = Held<'_>> {
        let s = slot as usize;
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
    slots: LocatorTable,
    shelves: Vec<Shelf>,
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
        // A lookup costs about what reading twenty rows in a pass does.
        let estimate = store.digest_rows_estimate()?;
        if (order.len() as u64) * 20 <= estimate {
            let mut reading = Reading::default();
            for (slot, l) in order.iter().enumerate() {
                let slot = u32::try_from(slot).map_err(|_| too_many())?;
                d.rows_read += look_up(store, l, slot, &mut reading)?;
            }
            d.shelves.push(reading.pack(d.slots.len())?);
            return Ok(d);
        }
        d.streamed = true;
        let of = u32::try_from(threads.max(1))
            .unwrap_or(1)
            .min(store.digest_scan_parts().max(1));
        let slots = &d.slots;
        // Sized once: growing vectors of millions of rows would copy them over and over.
        let per_part = (estimate / u64::from(of)).min(1 << 28) as usize;
        let parts: Vec<Result<(Shelf, u64), LeakError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..of)
                .map(|index| {
                    s.spawn(move || {
                        let mut reading = Reading::with_capacity(per_part);
                        let mut batch = Batch::default();
                        let mut read = 0u64;
                        let mut err = None;
                        store.scan_digests(Part { index, of }, &mut |row| {
                            read += 1;
                            let Ok(l) = <[u8; 16]>::try_from(row.locator) else {
                                return true;
                            };
                            let period = period_of(row.table, row.record_id);
                            batch.push(l, period, row.version, row.body);
                            if batch.full()
                                && let Err(e) = batch.flush(slots, &mut reading)
                            {
                                err = Some(e);
                                return false;
                            }
                            true
                        })?;
                        if err.is_none() {
                            err = batch.flush(slots, &mut reading).err();
                        }
                        match err {
                            Some(e) => Err(e),
                            // Packed here, each part on its own thread.
                            None => Ok((reading.pack(slots.len())?, read)),
                        }
                    })
                })
                .collect();
            // A thread that panicked is a bug; its rows must not vanish.
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        for p in parts {
            let (shelf, read) = p?;
            d.rows_read += read;
            d.shelves.push(shelf);
        }
        Ok(d)
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
            if self.slots.get(l).is_some() {
                continue;
            }
            let slot = u32::try_from(self.slots.len())
                .ok()
                .filter(|n| *n != u32::MAX)
                .ok_or_else(too_many)?;
            self.rows_read += look_up(store, l, slot, &mut reading)?;
            self.slots.get_or_insert(*l, slot);
        }
        if !reading.entries.is_empty() {
            self.shelves.push(reading.pack(self.slots.len())?);
        }
        Ok(())
    }

    /// Where the digests under `locator` are, if fetched.
    pub fn slot(&self, locator: &[u8; 16]) -> Option<u32> {
        self.slots.get(locator)
    }

    /// How many persons were asked for.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// The digest sets of `slot`, in no particular order.
    pub fn chain(&self, slot: Option<u32>) -> impl Iterator<Item = Held<'_>> {
        self.shelves
            .iter()
            .filter(move |_| slot.is_some())
            .flat_map(move |sh| sh.chain(slot.unwrap_or(u32::MAX)))
    }

    /// The digest sets of `slot` by month, then version, then content: the same order
    /// however the table was read.
    pub fn of(&self, slot: Option<u32>) -> Vec<Held<'_>> {
        let mut v: Vec<Held<'_>> = self.chain(slot).collect();
        v.sort_unstable_by(|a, b| {
            (a.period, a.version, a.body).cmp(&(b.period, b.version, b.body))
        });
        v
    }

    /// The latest declaration month filed in `slot`.
    pub fn latest_period(&self, slot: Option<u32>) -> Option<u32> {
        self.chain(slot).map(|e| e.period).filter(|p| *p > 0).max()
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
        let (word, bit) = (s as usize / 64, s % 64);
        self.shelves
            .iter()
            .any(|sh| sh.persons.get(word).is_some_and(|w| w & (1 << bit) != 0))
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

fn malformed(what: &str) -> LeakError {
    LeakError::Digest(ribat_crypto::CryptoError::Malformed {
        what: "leak digests",
        reason: what.to_owned(),
    })
}

fn too_many() -> LeakError {
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
    fn a_batch_keeps_the_scans_persons_only_and_empties_itself() {
        let mut slots = LocatorTable::with_capacity(2);
        slots.get_or_insert([1; 16], 0);
        slots.get_or_insert([2; 16], 1);
        let mut batch = Batch::default();
        let mut r = Reading::default();
        for i in 0..150u8 {
            let locator = [i % 4; 16];
            batch.push(locator, u32::from(i), 1, &[i; 9]);
            if batch.full() {
                batch.flush(&slots, &mut r).unwrap();
                assert!(batch.rows.is_empty() && batch.bodies.is_empty());
            }
        }
        batch.flush(&slots, &mut r).unwrap();
        // Locators 1 and 2 of 0..4: half of the 150 rows, each with its own body.
        assert_eq!(r.entries.len(), 75);
        let sh = r.pack(2).unwrap();
        assert!(
            sh.chain(0)
                .all(|h| h.period % 4 == 1 && h.body == [h.period as u8; 9])
        );
        assert!(
            sh.chain(1)
                .all(|h| h.period % 4 == 2 && h.body == [h.period as u8; 9])
        );
    }

    #[test]
    fn a_set_for_a_slot_beyond_the_scan_is_refused_when_packed() {
        let mut r = Reading::default();
        r.keep(5, "persons", "p-x", 1, &[1u8; 9]).unwrap();
        assert!(r.pack(5).is_err());
    }
}
