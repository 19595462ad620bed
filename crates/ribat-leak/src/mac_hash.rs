//! Hash maps keyed by MAC outputs (leak-digest locators, opaque record ids): the keys are
//! uniform already, so SipHash's defence against chosen keys buys nothing and costs a
//! large share of a scan of millions of rows. Never for keys a dump's author chooses
//! (a locator is a MAC under `k_leak` of a record id the blind indexes gave: never chosen).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// Folds the key's words with one multiply each.
#[derive(Debug, Default, Clone, Copy)]
pub struct MacHasher(u64);

impl Hasher for MacHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for w in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..w.len()].copy_from_slice(w);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
}

/// A map keyed by MAC outputs.
pub type MacMap<K, V> = HashMap<K, V, BuildHasherDefault<MacHasher>>;
/// A set of MAC outputs.
pub type MacSet<K> = HashSet<K, BuildHasherDefault<MacHasher>>;

/// Leak-digest locators to slots, in one flat array with key and slot side by side (open
/// addressing, linear probing, at most half full): a probe into millions of persons costs
/// one cache miss rather than hashbrown's two (control bytes, then the bucket), and a scan
/// probes once per digest row of the whole table. The locator's first eight bytes, a MAC
/// output, are the hash.
#[derive(Debug, Default, Clone)]
pub struct LocatorTable {
    cells: Vec<Cell>,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    key: [u8; 16],
    slot: u32,
}

/// A slot no locator can have (slots are counted from 0 and stop before it).
const EMPTY: u32 = u32::MAX;

impl LocatorTable {
    /// Room for `n` locators without growing.
    pub fn with_capacity(n: usize) -> Self {
        let cap = n.max(4).saturating_mul(2).next_power_of_two();
        Self {
            cells: vec![
                Cell {
                    key: [0; 16],
                    slot: EMPTY
                };
                cap
            ],
            len: 0,
        }
    }

    /// How many locators it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn start(&self, key: &[u8; 16]) -> usize {
        let mut w = [0u8; 8];
        w.copy_from_slice(&key[..8]);
        (u64::from_le_bytes(w) as usize) & (self.cells.len().wrapping_sub(1))
    }

    /// The cell holding `key`, or the empty one where it would go.
    fn find(&self, key: &[u8; 16]) -> usize {
        let mask = self.cells.len().wrapping_sub(1);
        let mut i = self.start(key);
        // At most half full: an empty cell comes before the probe wraps around.
        for _ in 0..self.cells.len() {
            match self.cells.get(i) {
                Some(c) if c.slot != EMPTY && c.key != *key => i = (i + 1) & mask,
                _ => break,
            }
        }
        i
    }

    /// The slot of `key`, if held.
    pub fn get(&self, key: &[u8; 16]) -> Option<u32> {
        if self.cells.is_empty() {
            return None;
        }
        self.cells
            .get(self.find(key))
            .filter(|c| c.slot != EMPTY)
            .map(|c| c.slot)
    }

    /// The slot of `key`; when absent, `key` is given `slot` (which must not be
    /// `u32::MAX`). Returns the slot and whether it was inserted now.
    pub fn get_or_insert(&mut self, key: [u8; 16], slot: u32) -> (u32, bool) {
        if (self.len + 1) * 2 > self.cells.len() {
            self.grow();
        }
        let i = self.find(&key);
        match self.cells.get_mut(i) {
            Some(c) if c.slot != EMPTY => (c.slot, false),
            Some(c) => {
                *c = Cell { key, slot };
                self.len += 1;
                (slot, true)
            }
            None => (slot, false),
        }
    }

    fn grow(&mut self) {
        let old = std::mem::replace(self, Self::with_capacity(self.cells.len().max(4)));
        for c in old.cells.into_iter().filter(|c| c.slot != EMPTY) {
            self.get_or_insert(c.key, c.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locator_table_finds_what_it_holds_and_nothing_else() {
        let mut t = LocatorTable::default();
        assert_eq!(t.get(&[1; 16]), None);
        // Keys sharing their first eight bytes collide on purpose; growth rehashes.
        for i in 0..5_000u32 {
            let mut k = [7u8; 16];
            k[8..12].copy_from_slice(&i.to_le_bytes());
            if i % 2 == 0 {
                k[..4].copy_from_slice(&i.to_le_bytes());
            }
            assert_eq!(t.get_or_insert(k, i), (i, true));
            assert_eq!(t.get_or_insert(k, 99_999), (i, false), "inserted twice");
        }
        assert_eq!(t.len(), 5_000);
        for i in 0..5_000u32 {
            let mut k = [7u8; 16];
            k[8..12].copy_from_slice(&i.to_le_bytes());
            if i % 2 == 0 {
                k[..4].copy_from_slice(&i.to_le_bytes());
            }
            assert_eq!(t.get(&k), Some(i));
        }
        assert_eq!(t.get(&[9; 16]), None);
    }

    #[test]
    fn distinct_keys_stay_distinct() {
        let mut m: MacMap<[u8; 16], u32> = MacMap::default();
        for i in 0..10_000u32 {
            let mut k = [0u8; 16];
            k[12..].copy_from_slice(&i.to_be_bytes());
            m.insert(k, i);
        }
        assert_eq!(m.len(), 10_000);
        let mut k = [0u8; 16];
        k[12..].copy_from_slice(&77u32.to_be_bytes());
        assert_eq!(m.get(&k), Some(&77));
    }
}
