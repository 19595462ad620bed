//! The journal: the log's durable, append-only copy of every entry, in order.
//!
//! ```text
//! header   8 bytes  "RIBATJ01"
//! record   u32 BE   length L of the entry (1 ..= 65 535)
//!          u64 BE   leaf index (0, 1, 2, … with no gap)
//!          L bytes  the entry
//!          8 bytes  first 8 bytes of the RFC 6962 leaf hash of the entry
//! ```
//!
//! Appends are grouped: many records, one `write`, one `fdatasync`. The index and the
//! check bytes make damage visible by position: a record whose index is not the next one
//! was dropped, reordered or inserted; a record whose check bytes do not match was
//! altered. Only the *last* record may be incomplete or unchecked, and only because a
//! crash cut a write short: such a tail belongs to appends that never returned, and open
//! cuts it. Anything else is damage, and open refuses the log. A bad record counts as a
//! crash tail only if it is within `MAX_TORN` bytes of the end (the writer syncs at least
//! every `MAX_GROUP` bytes, so no crash leaves more unsynced) and after every entry a
//! checkpoint covers (those were acknowledged long ago): otherwise a damaged length field
//! in the middle would make open cut away everything after it.
//!
//! The check bytes catch accidents and careless edits. A careful forger can recompute
//! them; what catches him is the tree: the signed, cosigned checkpoints no longer match.

use crate::entry::MAX_ENTRY;
use crate::hash::{Hash, leaf};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

/// File magic and version.
pub const MAGIC: &[u8; 8] = b"RIBATJ01";
/// Bytes around an entry in a record.
pub const OVERHEAD: usize = 4 + 8 + 8;
/// Most bytes the writer writes between two syncs.
pub const MAX_GROUP: usize = 4 << 20;
/// Longest tail a crash can leave unfinished: a group and the record it began inside.
pub const MAX_TORN: u64 = (MAX_GROUP + MAX_ENTRY + OVERHEAD) as u64;

/// A record's bytes.
pub fn record(index: u64, entry: &[u8], leaf_hash: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.len() + OVERHEAD);
    out.extend_from_slice(&(entry.len() as u32).to_be_bytes());
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(entry);
    out.extend_from_slice(&leaf_hash.0[..8]);
    out
}

/// Damage found by a scan, by position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Damage {
    /// The file does not start with the magic.
    #[error("not a Ribat audit journal (bad header)")]
    Header,
    /// A record carries another index than the next one.
    #[error(
        "entry {expected}: found the record of entry {found} in its place (entries dropped, reordered or inserted)"
    )]
    Sequence {
        /// Index expected here.
        expected: u64,
        /// Index found.
        found: u64,
    },
    /// A record's bytes do not match its check bytes.
    #[error("entry {index}: its bytes were altered (check bytes do not match)")]
    Altered {
        /// Index.
        index: u64,
    },
    /// The journal ends inside a record that a checkpoint covers, or far from the end.
    #[error("entry {index}: the journal is cut short or garbled from here on")]
    Truncated {
        /// Index.
        index: u64,
    },
    /// A record's length is impossible.
    #[error("entry {index}: impossible length {len}")]
    Length {
        /// Index.
        index: u64,
        /// Length read.
        len: u64,
    },
    /// The journal could not be read.
    #[error("cannot read the journal: {0}")]
    Io(String),
}

impl Damage {
    /// The entry index where the damage is, when there is one.
    pub fn index(&self) -> Option<u64> {
        match self {
            Self::Sequence { expected, .. } => Some(*expected),
            Self::Altered { index } | Self::Length { index, .. } | Self::Truncated { index } => {
                Some(*index)
            }
            Self::Header | Self::Io(_) => None,
        }
    }
}

/// What a scan found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanEnd {
    /// Complete, checked entries.
    pub entries: u64,
    /// Bytes of the header and those entries: where the next record goes.
    pub valid_len: u64,
    /// Bytes after them that form no complete record (a crash mid-append).
    pub torn_bytes: u64,
}

/// Reads every record in order and gives each entry (index, bytes, leaf hash) to `each`.
/// A bad record past entry `protected` (the size a checkpoint covers) and within
/// `MAX_TORN` of the end is reported as a torn tail; anything else wrong is `Damage`.
/// A missing file is an empty journal.
pub fn scan(
    path: &Path,
    protected: u64,
    mut each: impl FnMut(u64, &[u8], &Hash) -> Result<(), Damage>,
) -> Result<ScanEnd, Damage> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ScanEnd::default()),
        Err(e) => return Err(Damage::Io(e.to_string())),
    };
    let total = file
        .metadata()
        .map_err(|e| Damage::Io(e.to_string()))?
        .len();
    if total == 0 {
        return Ok(ScanEnd::default());
    }
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut magic = [0u8; 8];
    if total < 8 {
        return Ok(ScanEnd {
            entries: 0,
            valid_len: 0,
            torn_bytes: total,
        });
    }
    r.read_exact(&mut magic)
        .map_err(|e| Damage::Io(e.to_string()))?;
    if &magic != MAGIC {
        return Err(Damage::Header);
    }
    let mut pos = 8u64;
    let mut index = 0u64;
    let mut buf = Vec::with_capacity(4096);
    loop {
        let left = total - pos;
        if left == 0 {
            break;
        }
        let crash_tail = index >= protected && left <= MAX_TORN;
        let torn = || ScanEnd {
            entries: index,
            valid_len: pos,
            torn_bytes: left,
        };
        if left < 12 {
            return if crash_tail {
                Ok(torn())
            } else {
                Err(Damage::Truncated { index })
            };
        }
        let mut head = [0u8; 12];
        r.read_exact(&mut head)
            .map_err(|e| Damage::Io(e.to_string()))?;
        let len = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let mut idx = [0u8; 8];
        idx.copy_from_slice(&head[4..]);
        let found = u64::from_be_bytes(idx);
        let rec_len = 12 + len + 8;
        if len == 0 || len > MAX_ENTRY as u64 {
            // Zeros where a crash extended the file but left the data unwritten.
            if crash_tail {
                return Ok(torn());
            }
            return Err(Damage::Length { index, len });
        }
        if rec_len > left {
            return if crash_tail {
                Ok(torn())
            } else {
                Err(Damage::Truncated { index })
            };
        }
        buf.resize(len as usize + 8, 0);
        r.read_exact(&mut buf)
            .map_err(|e| Damage::Io(e.to_string()))?;
        let (entry, check) = buf.split_at(len as usize);
        let h = leaf(entry);
        if h.0[..8] != *check || found != index {
            if crash_tail {
                // An unfinished final group (a power cut may persist its pages in any order).
                return Ok(torn());
            }
            if found != index {
                return Err(Damage::Sequence {
                    expected: index,
                    found,
                });
            }
            return Err(Damage::Altered { index });
        }
        each(index, entry, &h)?;
        index += 1;
        pos += rec_len;
    }
    Ok(ScanEnd {
        entries: index,
        valid_len: pos,
        torn_bytes: 0,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A journal of the magic and `zeros` zero bytes, as a crash that extended the file
    /// without writing its data leaves it.
    fn zeros_after_magic(dir: &Path, zeros: u64) -> std::path::PathBuf {
        let path = dir.join(format!("zeros-{zeros}"));
        let mut bytes = MAGIC.to_vec();
        bytes.resize(8 + zeros as usize, 0);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn a_torn_tail_is_at_most_a_group_and_the_record_it_began_inside() {
        let d = tempfile::tempdir().unwrap();
        // Computed here, not read from MAX_TORN: a wrong MAX_TORN would pass its own test.
        let most = (MAX_GROUP + MAX_ENTRY + OVERHEAD) as u64;
        let end = scan(&zeros_after_magic(d.path(), most), 0, |_, _, _| Ok(())).unwrap();
        assert_eq!((end.entries, end.valid_len, end.torn_bytes), (0, 8, most));
        let longer = scan(&zeros_after_magic(d.path(), most + 1), 0, |_, _, _| Ok(()));
        assert_eq!(longer, Err(Damage::Length { index: 0, len: 0 }));
    }

    fn scan_bytes(dir: &Path, bytes: &[u8], protected: u64) -> Result<ScanEnd, Damage> {
        let path = dir.join("journal");
        std::fs::write(&path, bytes).unwrap();
        scan(&path, protected, |_, _, _| Ok(()))
    }

    #[test]
    fn a_journal_shorter_than_a_record_head_is_told_apart_from_a_bad_head() {
        let d = tempfile::tempdir().unwrap();
        let with = |tail: &[u8]| [MAGIC.as_slice(), tail].concat();
        // The magic alone: an empty journal, nothing torn. Less: a torn header.
        let end = scan_bytes(d.path(), MAGIC, 0).unwrap();
        assert_eq!((end.entries, end.valid_len, end.torn_bytes), (0, 8, 0));
        assert_eq!(scan_bytes(d.path(), &MAGIC[..5], 0).unwrap().torn_bytes, 5);
        // Under a checkpoint (protected): five bytes are a cut record, twelve zero bytes
        // a whole head with an impossible length.
        assert_eq!(
            scan_bytes(d.path(), &with(&[0; 5]), 1),
            Err(Damage::Truncated { index: 0 })
        );
        assert_eq!(
            scan_bytes(d.path(), &with(&[0; 12]), 1),
            Err(Damage::Length { index: 0, len: 0 })
        );
        // The largest entry is a record like any other.
        let big = vec![b'x'; MAX_ENTRY];
        let end = scan_bytes(d.path(), &with(&record(0, &big, &leaf(&big))), 1).unwrap();
        assert_eq!((end.entries, end.torn_bytes), (1, 0));
        // A length past the largest entry is impossible, not merely cut short.
        let mut head = (MAX_ENTRY as u32 + 1).to_be_bytes().to_vec();
        head.extend_from_slice(&[0; 8 + 100]);
        assert_eq!(
            scan_bytes(d.path(), &with(&head), 1),
            Err(Damage::Length {
                index: 0,
                len: MAX_ENTRY as u64 + 1
            })
        );
    }

    #[test]
    fn a_missing_journal_is_empty_and_one_that_cannot_be_opened_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let end = scan(&d.path().join("absent"), 0, |_, _, _| Ok(())).unwrap();
        assert_eq!(end.entries, 0);
        let file = d.path().join("a-file");
        std::fs::write(&file, b"").unwrap();
        let under_a_file = scan(&file.join("journal"), 0, |_, _, _| Ok(()));
        assert!(
            matches!(under_a_file, Err(Damage::Io(_))),
            "{under_a_file:?}"
        );
    }
}
