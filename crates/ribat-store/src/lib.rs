//! Ribat's store: sealed envelopes, their `R` points, blind-index tags and record versions.
//!
//! Owns: the schema and the durable write path of the vault's data at rest.
//!
//! Must never: hold plaintext of a protected field (I4), interpret an envelope, or hold a
//! key. It stores bytes the vault crate produced and hands them back.
//!
//! One schema for every record type: `records` (table, id, version), `sealed` (one row per
//! sealed class: epoch, `R`, envelope), `blind_index` (kind, tag → record) and `digests`
//! (locator → record version, keyed field digests, kept across versions). Persons,
//! employers, declarations and exports have the same shape at rest (opaque id, sealed
//! classes, tags), so one schema and one conformance suite serve them all; the logical
//! table is a column restricted to [`TABLES`].
//!
//! ```text
//!   import / writer ── put_records (one transaction, fsync) ──► records, sealed, blind_index
//!   custodian ─────── point(table, id, class) ─────────────────► R, epoch   (I3: its own lookup)
//!   reader ────────── envelope(table, id, class), lookup(tag) ─► ciphertext, record ids
//! ```
#![forbid(unsafe_code)]

pub mod conformance;
mod error;
mod postgres_store;
mod sqlite;

pub use error::StoreError;
pub use postgres_store::PostgresStore;
pub use sqlite::SqliteStore;

/// Tables a record may belong to. Both backends refuse any other name.
pub const TABLES: [&str; 5] = ["persons", "employers", "declarations", "exports", "keys"];

/// One sealed class of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClass {
    /// Class name.
    pub class: String,
    /// Key epoch the envelope was sealed under.
    pub epoch: u32,
    /// `R`, also inside the envelope; kept apart so that custodians read 32 bytes.
    pub r: [u8; 32],
    /// The envelope bytes (`ribat_crypto::envelope` layout).
    pub envelope: Vec<u8>,
}

/// A record as written: its classes and its blind-index tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    /// Table name (`persons`, `employers`, `declarations`, `exports`, `keys`).
    pub table: String,
    /// Opaque record id.
    pub record_id: String,
    /// Version, increasing with every rewrite of the record.
    pub version: u64,
    /// Sealed classes.
    pub classes: Vec<StoredClass>,
    /// `(kind, tag)` pairs.
    pub index: Vec<(String, [u8; 16])>,
    /// Leak digests: `(locator, body)` pairs, keyed hashes only (see
    /// `ribat_crypto::leak_digest`). Unlike tags they are kept when a record is replaced:
    /// a leaked copy of an older version must still be recognised as ours.
    pub digests: Vec<([u8; 16], Vec<u8>)>,
}

/// A stored leak digest, borrowed from the store while a pass over them runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestRef<'a> {
    /// The locator it is filed under.
    pub locator: &'a [u8],
    /// Table of the record.
    pub table: &'a str,
    /// Record id.
    pub record_id: &'a str,
    /// Version of the record the digests were computed from.
    pub version: u64,
    /// `(field code, digest)` pairs.
    pub body: &'a [u8],
}

/// A stored leak digest and the record version it describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRow {
    /// The locator it is filed under.
    pub locator: [u8; 16],
    /// Table of the record.
    pub table: String,
    /// Record id.
    pub record_id: String,
    /// Version of the record the digests were computed from.
    pub version: u64,
    /// `(field code, digest)` pairs.
    pub body: Vec<u8>,
}

/// What a custodian needs to answer for one record: `R` and the epoch it was sealed under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPoint {
    /// `R`.
    pub r: [u8; 32],
    /// Key epoch.
    pub epoch: u32,
}

/// Where one sealed class of a record is: what a pass over the sealed classes returns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SealedRef {
    /// Table name.
    pub table: String,
    /// Record id.
    pub record_id: String,
    /// Class name.
    pub class: String,
}

/// One sealed class moved to a new key epoch: written only if the row is still what the
/// re-sealer read (epoch and `R`), so that a record replaced meanwhile is left as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseal {
    /// Where it is.
    pub at: SealedRef,
    /// The epoch it was read under.
    pub from_epoch: u32,
    /// The `R` it was read with.
    pub from_r: [u8; 32],
    /// The new epoch, `R` and envelope (its class is `at.class`).
    pub to: StoredClass,
}

/// A record found through a blind index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordRef {
    /// Table name.
    pub table: String,
    /// Record id.
    pub record_id: String,
}

/// The part of the store custodians read: `R` by record, resolved by the custodian itself so
/// that a gateway cannot pass off one record's point under another's name.
pub trait PointSource: Send + Sync {
    /// `R` and epoch of `class` of a record, or `None` when there is no such record.
    fn point(
        &self,
        table: &str,
        record_id: &str,
        class: &str,
    ) -> Result<Option<StoredPoint>, StoreError>;
    /// Records carrying `tag` under `kind` (a custodian finds what a user's signed search
    /// names, as the gateway did).
    fn lookup(&self, kind: &str, tag: &[u8; 16]) -> Result<Vec<RecordRef>, StoreError>;
}

/// The whole store, as writers and readers use it. Both backends pass one conformance suite.
pub trait Store: PointSource {
    /// Writes records in one transaction, durable when this returns (I6). A record that
    /// exists is replaced only by a higher version; an equal version is a no-op, so that an
    /// import re-run after a crash writes no duplicates.
    fn put_records(&self, records: &[StoredRecord]) -> Result<(), StoreError>;
    /// Enters (`true`) or leaves (`false`) a bulk load into an empty store: a backend may
    /// drop its secondary indexes and build them once at the end, instead of updating them
    /// at random positions for every record. While on, only `put_records`, `version` and
    /// `count` are fast; a crash while on leaves a store that rebuilds its indexes when
    /// reopened. The default does nothing.
    fn set_bulk(&self, on: bool) -> Result<(), StoreError> {
        let _ = on;
        Ok(())
    }
    /// The envelope of `class` of a record.
    fn envelope(
        &self,
        table: &str,
        record_id: &str,
        class: &str,
    ) -> Result<Option<Vec<u8>>, StoreError>;
    /// Version of a record.
    fn version(&self, table: &str, record_id: &str) -> Result<Option<u64>, StoreError>;
    /// Number of records in a table.
    fn count(&self, table: &str) -> Result<u64, StoreError>;
    /// Up to `limit` sealed classes under key `epoch`, in order of table, record id and
    /// class, from just after `after` (from the start when `None`): a key rotation's pass,
    /// which can stop anywhere and start again.
    fn sealed_under(
        &self,
        epoch: u32,
        after: Option<&SealedRef>,
        limit: usize,
    ) -> Result<Vec<SealedRef>, StoreError>;
    /// How many sealed classes are under key `epoch`.
    fn count_sealed_under(&self, epoch: u32) -> Result<u64, StoreError>;
    /// Moves sealed classes to their new epoch in one transaction, durable when this
    /// returns; each only if its row still holds `from_epoch` and `from_r`. Returns how
    /// many moved.
    fn reseal(&self, rows: &[Reseal]) -> Result<usize, StoreError>;
    /// Leaves no copy of a replaced or re-sealed row in the backend's files, as far as the
    /// backend can, and says whether it could (SQLite: freed cells are zeroed as they go,
    /// and here the write-ahead log is copied back and emptied, so the database file holds
    /// no older page either; not while another connection reads from the log). Called when
    /// a key rotation has re-sealed everything. The default can do nothing: `false`.
    fn forget_replaced(&self) -> Result<bool, StoreError> {
        Ok(false)
    }
    /// The leak digests filed under `locator`, every version.
    fn digests(&self, locator: &[u8; 16]) -> Result<Vec<DigestRow>, StoreError>;
    /// About how many digest rows there are (exact where counting is cheap): enough to
    /// choose between looking persons up one by one and one pass over the table.
    fn digest_rows_estimate(&self) -> Result<u64, StoreError>;
    /// Into how many parts a digest scan is best split: parts read side by side only
    /// where the backend can serve them at once.
    fn digest_scan_parts(&self) -> u32 {
        1
    }
    /// Every leak digest whose locator lies in `part` (see [`Part::locator_bounds`]), in
    /// order of locator, then table, record id and version, lent to `each` without copying
    /// (a scan of a large dump reads them once instead of looking each row up, and walks
    /// them beside its rows sorted the same way); `each` returning `false` stops the pass.
    /// The parts of one count are disjoint and together hold every digest, so that threads
    /// can each read one at the same time.
    fn scan_digests(
        &self,
        part: Part,
        each: &mut dyn FnMut(DigestRef<'_>) -> bool,
    ) -> Result<(), StoreError>;
}

/// The `index`-th of `of` disjoint parts of a table scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    /// Which part, from 0.
    pub index: u32,
    /// How many parts.
    pub of: u32,
}

impl Part {
    /// The whole table.
    pub const WHOLE: Self = Self { index: 0, of: 1 };

    /// The locators this part covers: from the first (inclusive) to the second
    /// (exclusive; `None` for the last part). Parts split the range of the locator's first
    /// eight bytes evenly, which splits the rows evenly since locators are MAC outputs.
    pub fn locator_bounds(self) -> ([u8; 16], Option<[u8; 16]>) {
        let of = u128::from(self.of.max(1));
        let at = |i: u32| -> [u8; 16] {
            // Below 2^64 since i < of.
            let head = ((u128::from(i) << 64) / of) as u64;
            let mut b = [0u8; 16];
            b[..8].copy_from_slice(&head.to_be_bytes());
            b
        };
        let upper = (u128::from(self.index) + 1 < of).then(|| at(self.index + 1));
        (at(self.index.min(self.of.max(1) - 1)), upper)
    }
}

#[cfg(test)]
mod tests {
    use super::Part;

    #[test]
    fn parts_of_locators_are_disjoint_ordered_and_cover_every_locator() {
        for of in [1u32, 2, 3, 7] {
            let parts: Vec<Part> = (0..of).map(|index| Part { index, of }).collect();
            assert_eq!(parts[0].locator_bounds().0, [0; 16]);
            assert_eq!(parts[of as usize - 1].locator_bounds().1, None);
            for w in parts.windows(2) {
                assert_eq!(w[0].locator_bounds().1, Some(w[1].locator_bounds().0));
                assert!(w[0].locator_bounds().0 < w[1].locator_bounds().0);
            }
            for first in [0u8, 1, 0x54, 0x55, 0x56, 0x7f, 0x80, 0xaa, 0xff] {
                for fill in [0u8, 0xff] {
                    let mut l = [fill; 16];
                    l[0] = first;
                    let holding = parts
                        .iter()
                        .filter(|p| {
                            let (lo, hi) = p.locator_bounds();
                            lo <= l && hi.is_none_or(|h| l < h)
                        })
                        .count();
                    assert_eq!(holding, 1, "{l:?} among {of} parts");
                }
            }
        }
    }
}
