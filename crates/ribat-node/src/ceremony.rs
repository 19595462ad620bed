//! `ribat keys init`: the key ceremony of an embedded node.

use crate::bail;
use crate::error::{Context, Result};
use crate::home::{Home, restrict};
use crate::passphrases::Source;
use ribat_crypto::passphrase::KdfParams;
use ribat_custodian::ceremony::{self, CeremonySpec};
use ribat_custodian::policy::Policy;
use ribat_custodian::{LocalCustodian, QuorumReader};
use std::path::PathBuf;

/// Runs the ceremony in `home`, printing what it made.
pub fn init(
    home: &Home,
    threshold: usize,
    custodians: usize,
    classes: &[String],
    passphrases: &Source,
    kdf: KdfParams,
) -> Result<()> {
    let dirs = init_quiet(home, threshold, custodians, classes, passphrases, kdf)?;
    println!(
        "keys ready in {}: {} of {} custodians, classes {}, epoch 1",
        home.root().display(),
        threshold,
        custodians,
        classes.join(", ")
    );
    println!("group file (public): {}", home.group_file().display());
    for (i, d) in dirs.iter().enumerate() {
        println!(
            "custodian {}: {} (shares sealed under its passphrase)",
            i + 1,
            d.display()
        );
    }
    Ok(())
}

/// Runs the ceremony in `home`; returns the custodian directories.
pub fn init_quiet(
    home: &Home,
    threshold: usize,
    custodians: usize,
    classes: &[String],
    passphrases: &Source,
    kdf: KdfParams,
) -> Result<Vec<PathBuf>> {
    if home.has_keys() {
        bail!(
            "{} already has keys (group.json); a ceremony never overwrites keys. Use another --home",
            home.root().display()
        );
    }
    if !classes.iter().any(|c| c == "identity") {
        bail!("the class `identity` is required: the blind-index key is sealed to it");
    }
    home.create()?;
    let passes = (1..=custodians)
        .map(|i| passphrases.get(i, true))
        .collect::<Result<Vec<_>>>()?;
    let dirs: Vec<_> = (1..=custodians).map(|i| home.custodian_dir(i)).collect();
    let spec = CeremonySpec {
        threshold,
        classes: classes.to_vec(),
        epoch: 1,
        kdf,
    };
    let group =
        ceremony::run(&spec, &dirs, &passes, &home.group_file()).context("key ceremony failed")?;
    for d in &dirs {
        restrict(d)?;
        LocalCustodian::write_policy(d, &Policy::embedded_default())?;
    }
    // The gateway's own copy: it enforces the same policy as the custodians, separately (I3).
    LocalCustodian::write_policy(home.root(), &Policy::embedded_default())?;
    // The detectors' thresholds, beside the policy they are tuned to.
    std::fs::write(
        home.root().join(crate::serve::RULES_FILE),
        ribat_detect::Rules::default().to_json(),
    )
    .context("cannot write the rules file")?;
    let store = crate::embedded::open_store(home)?;
    QuorumReader::create_index_key(&group, store.as_ref())?;
    QuorumReader::create_leak_key(&group, store.as_ref())?;
    Ok(dirs)
}
