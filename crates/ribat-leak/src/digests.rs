//! The leak digests of the persons a scan names, fetched from the store once: a lookup
//! each for a few persons, passes over the whole table side by side for many.
//!
//! Millions of persons must cost a few allocations, not millions: each pass keeps what it
//! reads on a shelf of its own (one arena of bodies, one vector of entries, and per person
//! the first of its entries there), so that passes never wait for one another and nothing
//! read is copied or sorted again afterwards.

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

/// One digest set on a shelf: where its body lies in the shelf's arena, and the same
/// person's next entry on this shelf.
#[derive(Debug, Clone, Copy)]
struct Entry {
    period: u32,
    len: u16,
    version: u64,
    at: usize,
    next: u32,
}

const NONE: u32 = u32::MAX;

/// What one pass (or the lookups) kept.
#[derive(Debug, Default)]
struct Shelf {
    /// Per slot, its first entry here, or [`NONE`]; shorter than the slots when the last
    /// ones have nothing here.
    head: Vec<u32>,
    entries: Vec<Entry>,
    arena: Vec<u8>,
}

impl Shelf {
    fn with_capacity(slots: usize, rows: usize) -> Self {
        Self {
            head: vec![NONE; slots],
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
        // Checked once here, so that matching reads the stored bytes as they are.
        check_body(body)?;
        let idx = u32::try_from(self.entries.len())
            .ok()
            .filter(|i| *i != NONE)
            .ok_or_else(too_many)?;
        let len = u16::try_from(body.len()).map_err(|_| malformed("longer than 64 KiB"))?;
        let s = slot as usize;
        if self.head.len() <= s {
            self.head.resize(s + 1, NONE);
        }
        self.entries.push(Entry {
            period: period_of(table, record_id),
            len,
            version,
            at: self.arena.len(),
            next: self.head[s],
        });
        self.head[s] = idx;
        self.arena.extend_from_slice(body);
        Ok(())
    }

    fn chain(&self, slot: u32) -> impl Iterator<Item = Held<'_>> {
        let first = self.head.get(slot as usize).copied().unwrap_or(NONE);
        std::iter::successors(self.entries.get(first as usize), |e| {
            self.entries.get(e.next as usize)
        })
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
    /// The shelf of bodies looked up one person at a time, once there is one.
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
            for (slot, l) in order.iter().enumerate() {
                let slot = u32::try_from(slot).map_err(|_| too_many())?;
                d.rows_read += d.look_up(store, l, slot)?;
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
        let parts: Vec<Result<(Shelf, u64), LeakError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..of)
                .map(|index| {
                    s.spawn(move || {
                        let mut shelf = Shelf::with_capacity(slots.len(), per_part);
                        let mut read = 0u64;
                        let mut err = None;
                        store.scan_digests(Part { index, of }, &mut |row| {
                            read += 1;
                            let Ok(l) = <[u8; 16]>::try_from(row.locator) else {
                                return true;
                            };
                            if let Some(slot) = slots.get(&l)
                                && let Err(e) = shelf.keep(
                                    slot,
                                    row.table,
                                    row.record_id,
                                    row.version,
                                    row.body,
                                )
                            {
                                err = Some(e);
                                return false;
                            }
                            true
                        })?;
                        err.map_or(Ok((shelf, read)), Err)
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
        for l in sorted {
            if self.slots.get(l).is_some() {
                continue;
            }
            let slot = u32::try_from(self.slots.len())
                .ok()
                .filter(|n| *n != u32::MAX)
                .ok_or_else(too_many)?;
            self.rows_read += self.look_up(store, l, slot)?;
            self.slots.get_or_insert(*l, slot);
        }
        Ok(())
    }

    /// Looks up the digests under `locator` and files them in `slot`.
    fn look_up(
        &mut self,
        store: &dyn Store,
        locator: &[u8; 16],
        slot: u32,
    ) -> Result<u64, LeakError> {
        let rows = store.digests(locator)?;
        let i = match self.lookups {
            Some(i) => i,
            None => {
                self.shelves.push(Shelf::default());
                self.lookups = Some(self.shelves.len() - 1);
                self.shelves.len() - 1
            }
        };
        let shelf = self.shelves.get_mut(i).ok_or_else(too_many)?;
        for row in &rows {
            shelf.keep(slot, &row.table, &row.record_id, row.version, &row.body)?;
        }
        Ok(rows.len() as u64)
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
            .flat_map(move |sh| sh.chain(slot.unwrap_or(NONE)))
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
        self.chain(slot).any(|e| e.period == 0)
    }
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
    fn a_shelf_chains_a_persons_sets_and_keeps_them_apart_from_others() {
        let mut sh = Shelf::with_capacity(3, 4);
        let body_a = [1u8; 9];
        let body_b = [2u8; 18];
        sh.keep(1, "persons", "p-x", 1, &body_a).unwrap();
        sh.keep(2, "persons", "p-y", 1, &body_b).unwrap();
        sh.keep(1, "declarations", "d-202501-p-x", 1, &body_b)
            .unwrap();
        let mut one: Vec<(u32, usize)> = sh.chain(1).map(|h| (h.period, h.body.len())).collect();
        one.sort_unstable();
        assert_eq!(one, vec![(0, 9), (202_501, 18)]);
        assert_eq!(sh.chain(2).count(), 1);
        assert_eq!(sh.chain(0).count(), 0);
        // A slot beyond the head is empty, not an error.
        assert_eq!(sh.chain(99).count(), 0);
        // A body that is not whole pairs is refused.
        assert!(sh.keep(0, "persons", "p-z", 1, &[0u8; 10]).is_err());
    }
}
