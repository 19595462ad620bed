//! Hash maps keyed by MAC outputs (leak-digest locators, opaque record ids): the keys are
//! uniform already, so SipHash's defence against chosen keys buys nothing and costs a
//! large share of a scan of millions of rows. Never for keys a dump's author chooses.

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

#[cfg(test)]
mod tests {
    use super::*;

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
