//! The public test vectors in `../shared/testdata/` (beside the clone), found the same way
//! from every crate's tests.
//!
//! The path is taken at run time from `CARGO_MANIFEST_DIR`, never at compile time: a build
//! cache shared between clones would keep the first clone's path.

use std::io;
use std::path::PathBuf;

/// `../shared/testdata/REL`, seen from a crate of this workspace (`crates/NAME`).
pub fn path(rel: &str) -> io::Result<PathBuf> {
    let crate_dir = std::env::var_os("CARGO_MANIFEST_DIR").ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            "CARGO_MANIFEST_DIR is not set: run the tests through cargo",
        )
    })?;
    let p = PathBuf::from(crate_dir)
        .join("../../../shared/testdata")
        .join(rel);
    if p.exists() {
        Ok(p)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} is missing: the public vectors are read from ../shared/testdata",
                p.display()
            ),
        ))
    }
}

/// The text of `../shared/testdata/REL`; the error names the file.
pub fn read(rel: &str) -> io::Result<String> {
    let p = path(rel)?;
    std::fs::read_to_string(&p)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
}

/// Every file of the transparency-dev Merkle vectors of one kind (`inclusion`,
/// `consistency`), each in its case directory, sorted.
pub fn merkle(kind: &str) -> io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for case in std::fs::read_dir(path(&format!("merkle/{kind}"))?)? {
        for f in std::fs::read_dir(case?.path())? {
            out.push(f?.path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_vectors_are_found_and_a_missing_one_is_named() {
        let inclusion = merkle("inclusion").unwrap();
        assert!(inclusion.len() > 10, "{inclusion:?}");
        assert!(inclusion.windows(2).all(|w| w[0] < w[1]));
        assert!(read("rfc9497/allVectors.json").unwrap().starts_with('['));
        let e = read("no-such/file.json").unwrap_err();
        assert!(e.to_string().contains("no-such/file.json"), "{e}");
    }
}
