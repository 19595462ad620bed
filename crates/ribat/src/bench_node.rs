//! A throwaway node for benchmarks: a directory of its own under HOME (marked, so that a
//! bench never deletes what it did not make), random custodian passphrases in 0600 files,
//! and the key ceremony.

use crate::home::Home;
use crate::passphrases::{self, Source};
use anyhow::{Context, Result, bail};
use ribat_crypto::passphrase::KdfParams;
use ribat_crypto::secret::SecretBytes;
use std::io::Write;
use std::path::PathBuf;

const MARKER: &str = ".ribat-bench";

/// HOME/NAME, emptied if a previous bench made it, refused otherwise.
pub fn fresh_dir(home: &Home, name: &str) -> Result<PathBuf> {
    let dir = home.root().join(name);
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by a ribat benchmark; move it away",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(dir.join(MARKER), b"made by a ribat benchmark\n")?;
    Ok(dir)
}

/// A 2-of-3 node in `dir/node` whose passphrases are random files in `dir/passphrases`.
pub fn keyed_node(dir: &std::path::Path) -> Result<(Home, Source)> {
    let node_home = Home::at(dir.join("node"));
    let pass_dir = dir.join("passphrases");
    std::fs::create_dir_all(&pass_dir)?;
    crate::home::restrict(&pass_dir)?;
    for i in 1..=3 {
        use std::os::unix::fs::OpenOptionsExt;
        let raw = SecretBytes::<18>::random()?;
        let text: zeroize::Zeroizing<String> =
            zeroize::Zeroizing::new(raw.expose().iter().map(|b| format!("{b:02x}")).collect());
        std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(pass_dir.join(passphrases::file_name(i)))?
            .write_all(text.as_bytes())?;
    }
    let source = Source::Dir(pass_dir);
    crate::keys::init_quiet(
        &node_home,
        2,
        3,
        &["identity".into(), "financial".into()],
        &source,
        KdfParams::default(),
    )?;
    Ok((node_home, source))
}

/// 32 random bytes as hex (a benchmark's throwaway key).
pub fn random_hex() -> Result<zeroize::Zeroizing<String>> {
    let raw = SecretBytes::<32>::random()?;
    Ok(zeroize::Zeroizing::new(
        raw.expose().iter().map(|b| format!("{b:02x}")).collect(),
    ))
}
