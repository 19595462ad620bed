//! `ribat keys init`: the key ceremony of an embedded node.

use crate::bail;
use crate::error::{Context, Result};
use crate::home::{Home, restrict};
use crate::passphrases::Source;
use ribat_crypto::passphrase::KdfParams;
use ribat_custodian::ceremony::{self, CeremonySpec};
use ribat_custodian::policy::Policy;
use ribat_custodian::{LocalCustodian, QuorumReader};
use ribat_import::records::SEALED_CLASSES;
use ribat_policy::Class;
use std::path::PathBuf;

/// Runs the ceremony in `home`, printing what it made.
pub fn init(
    home: &Home,
    threshold: usize,
    custodians: usize,
    classes: &[Class],
    passphrases: &Source,
    kdf: KdfParams,
) -> Result<()> {
    let dirs = init_quiet(home, threshold, custodians, classes, passphrases, kdf)?;
    println!(
        "keys ready in {}: {} of {} custodians, classes {}, epoch 1",
        home.root().display(),
        threshold,
        custodians,
        classes
            .iter()
            .map(Class::as_str)
            .collect::<Vec<_>>()
            .join(", ")
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
    classes: &[Class],
    passphrases: &Source,
    kdf: KdfParams,
) -> Result<Vec<PathBuf>> {
    if home.has_keys() {
        bail!(
            "{} already has keys (group.json); a ceremony never overwrites keys. Use another --home",
            home.root().display()
        );
    }
    // Checked before anything is written: a ceremony that stops halfway leaves a home that
    // refuses a second ceremony and cannot import.
    let missing: Vec<&str> = SEALED_CLASSES
        .iter()
        .filter(|c| !classes.contains(c))
        .map(Class::as_str)
        .collect();
    if !missing.is_empty() {
        bail!(
            "the classes {} are required: the fund's tables seal fields in them, and the service keys are sealed to them (missing: {})",
            SEALED_CLASSES
                .iter()
                .map(Class::as_str)
                .collect::<Vec<_>>()
                .join(" and "),
            missing.join(", ")
        );
    }
    if let Some(twice) = classes
        .iter()
        .enumerate()
        .find_map(|(i, c)| classes[..i].contains(c).then_some(c))
    {
        bail!("class `{twice}` is named twice");
    }
    home.create()?;
    let passes = (1..=custodians)
        .map(|i| passphrases.get(i, true))
        .collect::<Result<Vec<_>>>()?;
    let dirs: Vec<_> = (1..=custodians).map(|i| home.custodian_dir(i)).collect();
    let spec = CeremonySpec {
        threshold,
        classes: classes.iter().map(Class::to_string).collect(),
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
    let index_key = QuorumReader::create_index_key(&group, store.as_ref())?;
    // Each custodian keeps its own sealed copy: in a mesh it finds with it the records a
    // user's signed request names, and answers for no other.
    for (dir, pass) in dirs.iter().zip(&passes) {
        LocalCustodian::keep_index_key(dir, pass, &index_key)
            .with_context(|| format!("cannot give {} the blind-index key", dir.display()))?;
    }
    QuorumReader::create_leak_key(&group, store.as_ref())?;
    Ok(dirs)
}
