//! The published copy of the log in the C2SP `tlog-tiles` layout, so that any web server
//! can serve it and any tlog client can fetch proofs from it:
//!
//! ```text
//! DIR/checkpoint                   the latest cosigned checkpoint (signed note)
//! DIR/tile/<L>/<N>                 256 hashes of height 8·L, index N·256 … N·256+255
//! DIR/tile/<L>/<N>.p/<W>           the first W (< 256) of them, while the tile fills
//! DIR/tile/entries/<N>[.p/<W>]     entries N·256 …, each as u16 BE length ‖ bytes
//! ```
//!
//! `<N>` is written in groups of three digits, all but the last prefixed with `x`
//! (`1234067` → `x001/x234/067`).
//!
//! Why a journal beside the tiles instead of tiles alone: the durability path must be
//! one sequential `write` and one `fdatasync` per group of appends. Publishing tiles at
//! that rate means creating and renaming several files per group (a partial tile per
//! level, an entry bundle, the checkpoint) and syncing the directory, which would cut
//! the append rate by an order of magnitude. So the journal is the durable truth and the
//! tiles are published from it whenever a checkpoint is made; a full tile is written
//! once and never changes. Tiles are not synced: after a crash they are written again
//! from the journal.

use crate::memtree::MemTree;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Hashes (or entries) per tile.
pub const WIDTH: u64 = 256;

/// The path element for tile index `n`.
pub fn index_path(n: u64) -> String {
    let mut groups = Vec::new();
    let mut n = n;
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let last = groups.len() - 1;
    groups
        .iter()
        .rev()
        .enumerate()
        .map(|(i, g)| {
            if i == last {
                format!("{g:03}")
            } else {
                format!("x{g:03}")
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// The path of a hash tile (`level` as a number) or entry bundle (`"entries"`).
pub fn tile_path(dir: &Path, level: &str, n: u64, width: u64) -> PathBuf {
    let mut p = dir.join("tile").join(level).join(index_path(n));
    if width < WIDTH {
        let name = format!(
            "{}.p",
            p.file_name().and_then(|s| s.to_str()).unwrap_or_default()
        );
        p.set_file_name(name);
        p = p.join(width.to_string());
    }
    p
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    // Synced before the rename: a tile is never rewritten, so it must never be left empty.
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The hash tiles of the tree at `size` from the tile holding `from` on (full tiles below
/// it were written by an earlier call), as (path, bytes). Cheap enough to run under the
/// log's lock; the writing is done outside it.
pub fn hash_tiles(
    dir: &Path,
    tree: &MemTree,
    size: u64,
    from: u64,
) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut level = 0u32;
    loop {
        let height = 8 * level as usize;
        let count = size >> height;
        if count == 0 {
            break;
        }
        let first_tile = (from >> height) / WIDTH;
        let tiles = count.div_ceil(WIDTH);
        for n in first_tile..tiles {
            let width = (count - n * WIDTH).min(WIDTH);
            let mut bytes = Vec::with_capacity(width as usize * 32);
            for i in 0..width {
                let h = tree
                    .complete(height, n * WIDTH + i)
                    .ok_or_else(|| std::io::Error::other("tile hash beyond the tree"))?;
                bytes.extend_from_slice(&h.0);
            }
            out.push((tile_path(dir, &level.to_string(), n, width), bytes));
        }
        level += 1;
    }
    Ok(out)
}

/// Writes tiles that are not there yet.
pub fn write_tiles(tiles: &[(PathBuf, Vec<u8>)]) -> std::io::Result<()> {
    tiles.iter().try_for_each(|(p, b)| write_new(p, b))
}

/// Writes the entry bundles for entries `first_tile·256 .. size`, from `entry(i)`.
pub fn publish_entries(
    dir: &Path,
    size: u64,
    from: u64,
    mut entry: impl FnMut(u64) -> std::io::Result<Vec<u8>>,
) -> std::io::Result<()> {
    let tiles = size.div_ceil(WIDTH);
    for n in from / WIDTH..tiles {
        let width = (size - n * WIDTH).min(WIDTH);
        let path = tile_path(dir, "entries", n, width);
        if path.exists() {
            continue;
        }
        let mut bytes = Vec::new();
        for i in 0..width {
            let e = entry(n * WIDTH + i)?;
            bytes.extend_from_slice(&(e.len() as u16).to_be_bytes());
            bytes.extend_from_slice(&e);
        }
        write_new(&path, &bytes)?;
    }
    Ok(())
}

/// Reads the level-0 tiles back: the published leaf hashes, for locating the first
/// entry that differs from them. Stops at the first missing tile.
pub fn read_leaf_hashes(dir: &Path, size: u64) -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    let tiles = size.div_ceil(WIDTH);
    for n in 0..tiles {
        let full = tile_path(dir, "0", n, WIDTH);
        let bytes = match std::fs::read(&full) {
            Ok(b) => b,
            Err(_) => {
                let width = (size - n * WIDTH).min(WIDTH);
                match std::fs::read(tile_path(dir, "0", n, width)) {
                    Ok(b) => b,
                    Err(_) => break,
                }
            }
        };
        let width = (size - n * WIDTH).min(WIDTH);
        if bytes.len() != width as usize * 32 && bytes.len() != WIDTH as usize * 32 {
            // A tile of the wrong length would shift every later index.
            break;
        }
        for c in bytes.chunks_exact(32) {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            out.push(h);
        }
    }
    out.truncate(size as usize);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::hash::leaf;

    fn tree_of(entries: &[Vec<u8>]) -> MemTree {
        let mut t = MemTree::new();
        for e in entries {
            t.push(leaf(e));
        }
        t
    }

    #[test]
    fn leaf_hashes_are_read_at_an_older_size_from_tiles_the_log_has_since_filled() {
        let d = tempfile::tempdir().unwrap();
        let entries: Vec<Vec<u8>> = (0..900)
            .map(|i| format!("entry {i}").into_bytes())
            .collect();
        let tree = tree_of(&entries);
        write_tiles(&hash_tiles(d.path(), &tree, 900, 0).unwrap()).unwrap();
        let leaves: Vec<[u8; 32]> = entries.iter().map(|e| leaf(e).0).collect();
        // At 600 the third tile is full now (256 hashes), not the 88 of then.
        assert_eq!(read_leaf_hashes(d.path(), 600), leaves[..600]);
        assert_eq!(read_leaf_hashes(d.path(), 900), leaves);
        // A tile cut short stops the reading there: no later index shifts.
        let third = tile_path(d.path(), "0", 2, 256);
        let bytes = std::fs::read(&third).unwrap();
        std::fs::write(&third, &bytes[..bytes.len() - 1]).unwrap();
        assert_eq!(read_leaf_hashes(d.path(), 900), leaves[..512]);
    }

    #[test]
    fn entry_bundles_published_in_steps_are_completed_from_the_tile_the_last_step_left_partial() {
        let d = tempfile::tempdir().unwrap();
        let entries: Vec<Vec<u8>> = (0..900)
            .map(|i| format!("entry {i}").into_bytes())
            .collect();
        let entry = |i: u64| Ok(entries[i as usize].clone());
        publish_entries(d.path(), 600, 0, entry).unwrap();
        assert!(tile_path(d.path(), "entries", 2, 88).exists());
        // 300 more: bundle 2 is completed (and 3 begun) from entry 600 on, bundles 0 and 1
        // left as they are.
        std::fs::remove_file(tile_path(d.path(), "entries", 0, 256)).unwrap();
        publish_entries(d.path(), 900, 600, entry).unwrap();
        assert!(tile_path(d.path(), "entries", 2, 256).exists());
        assert!(tile_path(d.path(), "entries", 3, 132).exists());
        assert!(
            !tile_path(d.path(), "entries", 0, 256).exists(),
            "bundles before the step's first entry are not its business"
        );
    }

    #[test]
    fn the_tiles_of_600_entries_hold_their_entries_and_hashes() {
        let d = tempfile::tempdir().unwrap();
        let entries: Vec<Vec<u8>> = (0..600)
            .map(|i| format!("entry {i}").into_bytes())
            .collect();
        let tree = tree_of(&entries);
        write_tiles(&hash_tiles(d.path(), &tree, 600, 0).unwrap()).unwrap();
        publish_entries(d.path(), 600, 0, |i| Ok(entries[i as usize].clone())).unwrap();
        // Entry bundles: 256, 256 and 88 entries, each as u16 length and bytes.
        let mut read = Vec::new();
        for (n, width) in [(0, 256), (1, 256), (2, 88)] {
            let b = std::fs::read(tile_path(d.path(), "entries", n, width)).unwrap();
            let mut at = 0;
            while at < b.len() {
                let len = usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
                read.push(b[at + 2..at + 2 + len].to_vec());
                at += 2 + len;
            }
        }
        assert_eq!(read, entries);
        // Level 0: every leaf hash; level 1: the two full subtrees of 256.
        let leaves: Vec<[u8; 32]> = entries.iter().map(|e| leaf(e).0).collect();
        assert_eq!(read_leaf_hashes(d.path(), 600), leaves);
        let level1 = std::fs::read(tile_path(d.path(), "1", 0, 2)).unwrap();
        let second = tree_of(&entries[256..512]).root(256).unwrap();
        assert_eq!(level1[..32], tree.root(256).unwrap().0);
        assert_eq!(level1[32..], second.0);
        // From 512 on, only the tiles that hold 512 and later are computed again.
        let again: Vec<PathBuf> = hash_tiles(d.path(), &tree, 600, 512)
            .unwrap()
            .into_iter()
            .map(|(p, _)| p)
            .collect();
        assert_eq!(
            again,
            [
                tile_path(d.path(), "0", 2, 88),
                tile_path(d.path(), "1", 0, 2)
            ]
        );
    }

    #[test]
    fn index_paths_follow_the_spec() {
        assert_eq!(index_path(0), "000");
        assert_eq!(index_path(67), "067");
        assert_eq!(index_path(1234067), "x001/x234/067");
        assert_eq!(index_path(1000), "x001/000");
        let d = Path::new("/l");
        assert_eq!(tile_path(d, "0", 5, 256), Path::new("/l/tile/0/005"));
        assert_eq!(
            tile_path(d, "entries", 1234067, 3),
            Path::new("/l/tile/entries/x001/x234/067.p/3")
        );
    }
}
