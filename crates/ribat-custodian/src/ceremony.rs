//! The key ceremony: one dealing per class, one sealed directory per custodian.
//!
//! ```text
//!   check spec ─► deal every class (t of n) ─► group file ─► for each custodian i:
//!       install(i): verify k_{c,i} against the commitments, seal under passphrase_i
//!   ─► drop the dealings (the shares zeroize; k_c was never kept)
//! ```

use crate::error::CustodianError;
use crate::keystore::{self, write_atomic};
use ribat_crypto::group::GroupPublic;
use ribat_crypto::passphrase::KdfParams;
use ribat_crypto::secret::Passphrase;
use ribat_crypto::shamir::{check_threshold, deal};
use std::path::{Path, PathBuf};

/// What to create.
#[derive(Debug, Clone)]
pub struct CeremonySpec {
    /// `t`.
    pub threshold: usize,
    /// Class names, e.g. `identity`, `financial`.
    pub classes: Vec<String>,
    /// Key epoch of the new keys.
    pub epoch: u32,
    /// argon2id parameters for the sealed shares.
    pub kdf: KdfParams,
}

fn refuse(reason: impl Into<String>) -> CustodianError {
    CustodianError::Directory {
        path: "(ceremony)".into(),
        reason: reason.into(),
    }
}

/// Runs the ceremony for `dirs.len()` custodians; `passphrases[i]` seals `dirs[i]`. Writes
/// the public group file to `group_path` and returns it.
pub fn run(
    spec: &CeremonySpec,
    dirs: &[PathBuf],
    passphrases: &[Passphrase],
    group_path: &Path,
) -> Result<GroupPublic, CustodianError> {
    let n = dirs.len();
    check_threshold(spec.threshold, n)?;
    if passphrases.len() != n {
        return Err(refuse(format!(
            "{n} custodians but {} passphrases",
            passphrases.len()
        )));
    }
    if passphrases.iter().any(Passphrase::is_empty) {
        return Err(refuse("every custodian needs a non-empty passphrase"));
    }
    if spec.classes.is_empty() {
        return Err(refuse(
            "at least one class is needed, e.g. --classes identity,financial",
        ));
    }
    for (i, c) in spec.classes.iter().enumerate() {
        let ok = !c.is_empty()
            && c.len() <= 64
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok {
            return Err(refuse(format!(
                "class name `{c}`: use lowercase letters, digits and dashes"
            )));
        }
        if spec.classes[..i].contains(c) {
            return Err(refuse(format!("class `{c}` is listed twice")));
        }
    }
    if let Some(d) = dirs.iter().find(|d| d.join(keystore::SHARES_FILE).exists()) {
        return Err(refuse(format!(
            "{} already holds key shares; a ceremony never overwrites keys",
            d.display()
        )));
    }
    let dealings = spec
        .classes
        .iter()
        .map(|c| deal(c, spec.threshold, n))
        .collect::<Result<Vec<_>, _>>()?;
    let group = GroupPublic::from_dealings(spec.threshold, n, spec.epoch, &dealings)?;
    for (pos, (dir, pass)) in dirs.iter().zip(passphrases).enumerate() {
        let index = u32::try_from(pos + 1).map_err(|_| refuse("too many custodians"))?;
        let mine: Vec<_> = dealings.iter().map(|d| d.shares[pos].clone()).collect();
        keystore::install(dir, index, &mine, &group, pass, spec.kdf)?;
    }
    drop(dealings);
    write_atomic(group_path, group.to_json()?.as_bytes())?;
    Ok(group)
}
