//! `ribat keys rotate`: a new key epoch for every class, for when `t` shares may have
//! leaked (a resharing cannot help then: it keeps the same class keys), and every record
//! re-sealed to it by a job that can stop anywhere and start again.
//!
//! ```text
//!   begin   every custodian contributes to each new class key (joint-Feldman DKG, no
//!           dealer: ribat_crypto::dkg), checks the sub-shares sent to it, and writes its
//!           new share beside its current one, which it keeps as the previous epoch's
//!           ─► HOME/rotation.json (the commit point) ─► promote ─► HOME/group.json
//!   re-seal pages of records still under the previous epoch: read through the quorum
//!           under purpose `key-rotation` (audited like any read; custodians answer it only
//!           for records still under the previous epoch, so each record opens once),
//!           sealed again to the new epoch with a fresh R, written only if the row is
//!           unchanged since it was read
//!   finish  once no record is left under the previous epoch: HOME/rotation.json
//!           ─► custodians drop the previous shares ─► HOME/group.json without them
//! ```
//!
//! New records are sealed to the new epoch from `begin` on (writers seal with
//! HOME/group.json's current epoch), and reads go on throughout: a custodian answers each
//! record with the share of the epoch it is stored under. A crash at any point is repaired
//! by running the command again ([`reconcile`]): with the journal, the step it names is
//! completed; without it, files a step left beside the custodians' shares are dropped (a
//! begin that had not reached its commit point starts over with a fresh DKG).
//!
//! In the embedded shape one process holds every custodian's passphrase, so the
//! custodians' consent is that of whoever runs the command; in a mesh each custodian
//! contributes on its own node, through the log (`ribat mesh reshare --rotate`,
//! [`crate::reshare`]), and [`reseal_pass`] runs on the node the administrators named.

use crate::bail;
use crate::embedded::Embedded;
use crate::error::{Context, Result};
use crate::home::Home;
use crate::passphrases::Source;
use ribat_crypto::dkg;
use ribat_crypto::envelope::Sealer;
use ribat_crypto::group::GroupPublic;
use ribat_crypto::passphrase::KdfParams;
use ribat_crypto::shamir::KeyShare;
use ribat_custodian::keystore::{self, CustodianKeys};
use ribat_custodian::{Custodian, Requester};
use ribat_gateway::vault::Reader;
use ribat_policy::{Class, Purpose, Role, Table};
use ribat_store::{Reseal, SealedRef, StoredClass};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The journal of a rotation step under way, in the node's home.
pub const JOURNAL: &str = "rotation.json";
const JOURNAL_FORMAT: &str = "ribat-rotation/v1";

/// Records per request of the re-sealing job, by default.
pub const DEFAULT_BATCH: usize = 256;

/// The identity the re-sealing job reads under.
pub fn rotation_identity() -> Requester {
    Requester {
        identity: "rotation.embedded".into(),
        role: Role::constant("rotation"),
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Journal {
    format: String,
    /// `begin` or `finish`.
    step: String,
    /// The group every custodian and the home hold once the step is done.
    group: String,
}

/// Where a rotation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The epoch new records are sealed to.
    pub epoch: u32,
    /// The epoch being rotated away from, if a rotation is under way.
    pub previous: Option<u32>,
    /// Sealed classes still under the previous epoch.
    pub left: u64,
}

/// How far the re-sealing job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Sealed classes to re-seal when the job (re)started.
    pub total: u64,
    /// Re-sealed since.
    pub done: u64,
}

/// What a run of the job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The epoch rotated to.
    pub epoch: u32,
    /// Sealed classes re-sealed by this run.
    pub resealed: u64,
    /// Rows left as they were because they changed after they were read (a record
    /// replaced meanwhile is already sealed to the new epoch).
    pub changed_meanwhile: u64,
    /// Whether the rotation is finished (the previous shares erased).
    pub finished: bool,
}

fn read_group(path: &Path) -> Result<GroupPublic> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    GroupPublic::from_json(&text)
        .with_context(|| format!("{} is not a valid group file", path.display()))
}

fn write_home_group(home: &Home, group: &GroupPublic) -> Result<()> {
    keystore::write_atomic(&home.group_file(), group.to_json()?.as_bytes())?;
    Ok(())
}

/// Where the home's rotation stands, from its group file and store (no passphrase).
pub fn status(home: &Home) -> Result<Status> {
    let group = read_group(&home.group_file())?;
    let left = match &group.previous {
        Some(p) => crate::embedded::open_store(home)?.count_sealed_under(p.epoch)?,
        None => 0,
    };
    Ok(Status {
        epoch: group.epoch,
        previous: group.previous.as_ref().map(|p| p.epoch),
        left,
    })
}

/// Completes a step a crash interrupted, or drops what an uncommitted one left behind.
/// Returns whether there was anything to repair.
pub fn reconcile(home: &Home, passphrases: &Source, kdf: KdfParams) -> Result<bool> {
    let group = read_group(&home.group_file())?;
    let journal_path = home.root().join(JOURNAL);
    let journal = match std::fs::read_to_string(&journal_path) {
        Ok(text) => Some(
            serde_json::from_str::<Journal>(&text)
                .with_context(|| format!("{} is not a rotation journal", journal_path.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let dirs: Vec<_> = (1..=group.custodians)
        .map(|i| (i, home.custodian_dir(i)))
        .collect();
    let Some(journal) = journal else {
        let mut dropped = false;
        for (_, d) in &dirs {
            if keystore::next_group(d)?.is_some() {
                keystore::drop_next(d)?;
                dropped = true;
            }
        }
        return Ok(dropped);
    };
    if journal.format != JOURNAL_FORMAT {
        bail!(
            "{}: format `{}`, expected `{JOURNAL_FORMAT}`",
            journal_path.display(),
            journal.format
        );
    }
    let target = GroupPublic::from_json(&journal.group)
        .with_context(|| format!("{}: its group", journal_path.display()))?;
    // The previous shares go only once nothing is sealed under them (the home's group
    // keeps its previous epoch until the finish is complete).
    if let (Some(p), true) = (&group.previous, journal.step == "finish") {
        let left = crate::embedded::open_store(home)?.count_sealed_under(p.epoch)?;
        if left > 0 {
            bail!(
                "{}: refusing to erase the shares of epoch {}: {left} sealed classes are still under epoch {}; run `ribat keys rotate` after removing this journal",
                journal_path.display(),
                p.epoch,
                p.epoch
            );
        }
    }
    for (i, d) in &dirs {
        if read_group(&d.join(keystore::GROUP_FILE))? == target {
            continue;
        }
        if keystore::next_group(d)?.as_ref() == Some(&target) {
            keystore::promote(d)?;
            continue;
        }
        match journal.step.as_str() {
            // The previous shares are still there: drop them now.
            "finish" => {
                let keys = keystore::load(d, &passphrases.get(*i, false)?)?;
                keystore::finish_rotation(d, &keys, &passphrases.get(*i, false)?, kdf)?;
                keystore::promote(d)?;
            }
            _ => bail!(
                "custodian {i} holds neither the rotated group of {} nor its next share; restore its directory from a backup",
                journal_path.display()
            ),
        }
    }
    write_home_group(home, &target)?;
    std::fs::remove_file(&journal_path)
        .with_context(|| format!("cannot remove {}", journal_path.display()))?;
    Ok(true)
}

fn write_journal(home: &Home, step: &str, group: &GroupPublic) -> Result<()> {
    let j = Journal {
        format: JOURNAL_FORMAT.into(),
        step: step.into(),
        group: group.to_json()?,
    };
    keystore::write_atomic(&home.root().join(JOURNAL), &serde_json::to_vec_pretty(&j)?)?;
    Ok(())
}

/// The new epoch's shares of every custodian, by a DKG among all of them: each
/// contributes to every class, each checks the sub-shares sent to it. Returns the rotated
/// group and each custodian's new shares.
fn generate(group: &GroupPublic) -> Result<(GroupPublic, BTreeMap<u32, Vec<KeyShare>>)> {
    let ids: Vec<u32> = (1..=group.custodians)
        .map(|i| u32::try_from(i).context("custodian index"))
        .collect::<Result<_>>()?;
    let mut classes = BTreeMap::new();
    let mut shares: BTreeMap<u32, Vec<KeyShare>> = BTreeMap::new();
    for class in group.classes.keys() {
        let contributions = ids
            .iter()
            .map(|&i| dkg::contribute(i, class, &ids, group.threshold))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let commitments: BTreeMap<u32, _> = contributions
            .iter()
            .map(|c| (c.from, c.commitments.clone()))
            .collect();
        for &j in &ids {
            let mine: Vec<_> = contributions
                .iter()
                .flat_map(|c| c.subshares.iter().filter(|s| s.to == j).cloned())
                .collect();
            for s in &mine {
                let from = commitments
                    .get(&s.from)
                    .context("a sub-share from no contributor")?;
                dkg::verify_contribution(s, from, &ids, group.threshold)?;
            }
            shares
                .entry(j)
                .or_default()
                .push(dkg::combine_contributions(j, class, &ids, &mine)?);
        }
        classes.insert(
            class.clone(),
            dkg::new_class(&commitments, group.threshold, group.custodians)?,
        );
    }
    Ok((group.rotated(classes)?, shares))
}

/// Starts a rotation: a new epoch for every class, shared among every custodian of the
/// home (each must open). Returns the rotated group.
pub fn begin(home: &Home, passphrases: &Source, kdf: KdfParams) -> Result<GroupPublic> {
    let rotated = stage(home, passphrases, kdf)?;
    // Every custodian has its new share on disk: from here the rotation happens.
    write_journal(home, "begin", &rotated)?;
    reconcile(home, passphrases, kdf)?;
    Ok(rotated)
}

/// The new keys, each custodian's share written beside its current ones; nothing is in
/// force until the journal is written.
fn stage(home: &Home, passphrases: &Source, kdf: KdfParams) -> Result<GroupPublic> {
    let group = read_group(&home.group_file())?;
    if let Some(p) = &group.previous {
        bail!(
            "a rotation from epoch {} to {} is under way; run `ribat keys rotate` to finish it",
            p.epoch,
            group.epoch
        );
    }
    let mut opened: Vec<(usize, CustodianKeys)> = Vec::new();
    for i in 1..=group.custodians {
        let dir = home.custodian_dir(i);
        let keys = passphrases
            .get(i, false)
            .and_then(|p| Ok(keystore::load(&dir, &p)?))
            .with_context(|| {
                format!("custodian {i} must open: every custodian takes a share of the new keys")
            })?;
        if keys.group != group {
            bail!(
                "custodian {i}'s group file differs from {}; refusing to rotate keys the custodians do not agree on",
                home.group_file().display()
            );
        }
        check_policy(&dir, i)?;
        opened.push((i, keys));
    }
    let (rotated, mut shares) = generate(&group)?;
    for (i, keys) in &opened {
        let mine = shares
            .remove(&u32::try_from(*i).context("custodian index")?)
            .context("no new share for a custodian")?;
        keystore::install_rotation(
            &home.custodian_dir(*i),
            keys,
            &mine,
            &rotated,
            &passphrases.get(*i, false)?,
            kdf,
        )?;
    }
    Ok(rotated)
}

/// The custodian's policy must let the job read under `key-rotation` (a home made before
/// rotations existed lacks the role).
fn check_policy(dir: &Path, i: usize) -> Result<()> {
    let text = std::fs::read_to_string(dir.join(keystore::POLICY_FILE))
        .with_context(|| format!("cannot read custodian {i}'s policy"))?;
    let policy = ribat_custodian::policy::Policy::from_json(&text)
        .map_err(|e| crate::error::NodeError::Message(format!("custodian {i}'s policy: {e}")))?;
    let allowed = policy
        .roles
        .get(&rotation_identity().role)
        .is_some_and(|r| r.purposes.contains(&Purpose::KEY_ROTATION));
    if !allowed {
        bail!(
            "custodian {i}'s policy ({}) has no role `rotation` with purpose `key-rotation`, so it would refuse the re-sealing job; add the role as in `Policy::embedded_default` (classes identity and financial) and start again",
            dir.join(keystore::POLICY_FILE).display()
        );
    }
    Ok(())
}

/// Re-seals, page by page, every record still under the previous epoch, telling
/// `progress` after each page; finishes the rotation when none is left.
pub fn reseal(
    home: &Home,
    node: &Embedded,
    passphrases: &Source,
    kdf: KdfParams,
    batch: usize,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report> {
    let group = node.vault.reader.group();
    let (done, changed) = reseal_pass(
        &node.vault,
        &rotation_identity(),
        &|| Ok(None),
        batch,
        progress,
    )?;
    if group.previous.is_some() {
        finish(home, node, passphrases, kdf)?;
    }
    Ok(Report {
        epoch: group.epoch,
        resealed: done,
        changed_meanwhile: changed,
        finished: true,
    })
}

/// Mints a token for the job's identity when custodians are in other processes (each
/// page asks for a fresh one: tokens live a minute, a pass lasts longer).
pub type JobTokens<'a> = &'a dyn Fn() -> Result<Option<ribat_custodian::request::Bearer>>;

/// One pass of the re-sealing job through `vault` as `who`: every sealed class still under
/// the previous epoch of the vault's group, page by page. Returns how many were re-sealed
/// and how many had changed since they were read (left as they were). An error once any
/// row is left under the previous epoch after the pass.
pub fn reseal_pass(
    vault: &ribat_gateway::vault::Vault,
    who: &Requester,
    tokens: JobTokens<'_>,
    batch: usize,
    progress: &mut dyn FnMut(Progress),
) -> Result<(u64, u64)> {
    let group = vault.reader.group();
    let Some(previous) = group.previous.as_ref().map(|p| p.epoch) else {
        return Ok((0, 0));
    };
    let store = vault.store.clone();
    let total = store.count_sealed_under(previous)?;
    let mut done = 0u64;
    let mut changed = 0u64;
    let mut reader = Reader {
        who: who.clone(),
        institution: "ribat".into(),
        purpose: Purpose::KEY_ROTATION,
        token: None,
        asked: None,
    };
    let mut sealers: BTreeMap<String, Sealer> = BTreeMap::new();
    let mut after: Option<SealedRef> = None;
    progress(Progress { total, done });
    loop {
        let page = store.sealed_under(previous, after.as_ref(), batch.max(1))?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        // One request per table and class on the page.
        let mut groups: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for r in page {
            groups
                .entry((r.table, r.class))
                .or_default()
                .push(r.record_id);
        }
        let mut rows = Vec::new();
        reader.token = tokens()?;
        for ((table, class), ids) in groups {
            // What each row holds now: written back only if it still does.
            let mut points = Vec::with_capacity(ids.len());
            for id in &ids {
                points.push(store.point(&table, id, &class)?);
            }
            let table_v: Table = table.parse().map_err(|e: ribat_policy::NameError| {
                crate::error::NodeError::Message(e.to_string())
            })?;
            let class_v: Class = class.parse().map_err(|e: ribat_policy::NameError| {
                crate::error::NodeError::Message(e.to_string())
            })?;
            let keep: Vec<(String, [u8; 32])> = ids
                .into_iter()
                .zip(points)
                .filter_map(|(id, p)| p.filter(|p| p.epoch == previous).map(|p| (id, p.r)))
                .collect();
            if keep.is_empty() {
                continue;
            }
            let req = vault.request(
                &reader,
                table_v,
                &class_v,
                keep.iter().map(|(id, _)| id.clone()).collect(),
            );
            let read = vault
                .audited(&reader, &req, &["*"], None)
                .with_context(|| format!("re-sealing {table}/{class}"))?;
            let sealer = match sealers.entry(class.clone()) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(Sealer::new(&class, group.class(&class)?, group.epoch))
                }
            };
            for ((id, fields), (_, from_r)) in read.records.iter().zip(&keep) {
                let values: Vec<(&str, &[u8])> = fields.iter().collect();
                let env = sealer.seal(&table, id, &values)?;
                rows.push(Reseal {
                    at: SealedRef {
                        table: table.clone(),
                        record_id: id.clone(),
                        class: class.clone(),
                    },
                    from_epoch: previous,
                    from_r: *from_r,
                    to: StoredClass {
                        class: class.clone(),
                        epoch: env.epoch,
                        r: env.r,
                        envelope: env.to_bytes()?,
                    },
                });
            }
        }
        let moved = store.reseal(&rows)? as u64;
        done += moved;
        changed += rows.len() as u64 - moved;
        after = Some(last);
        progress(Progress { total, done });
    }
    // A row skipped because it changed is under the new epoch now, or still under the
    // previous one if it was re-imported under it (impossible once the home's group is
    // rotated, but counted, not assumed).
    let left = store.count_sealed_under(previous)?;
    if left > 0 {
        bail!(
            "{left} sealed classes are still under epoch {previous} after a full pass; run the job again"
        );
    }
    if !store.forget_replaced()? {
        eprintln!(
            "note: the store could not drop every older copy of the re-sealed rows from its files (a reader kept SQLite's log busy, or PostgreSQL, whose dead rows stay until it vacuums); until then a copy of those files still holds ciphertext the previous epoch's shares open"
        );
    }
    Ok((done, changed))
}

/// Drops the previous epoch's shares from every custodian (on disk and in the open
/// node), once no record is under it.
fn finish(home: &Home, node: &Embedded, passphrases: &Source, kdf: KdfParams) -> Result<()> {
    let done = node.vault.reader.group().without_previous();
    write_journal(home, "finish", &done)?;
    reconcile(home, passphrases, kdf)?;
    for c in &node.custodians {
        let i = usize::try_from(c.index()).context("custodian index")?;
        let keys = keystore::load(&home.custodian_dir(i), &passphrases.get(i, false)?)?;
        c.replace_keys(keys)?;
    }
    node.vault
        .reader
        .replace_set(done, node.vault.reader.custodians());
    Ok(())
}

fn print_status(s: &Status, json: bool) -> Result<()> {
    if json {
        println!(
            "{}",
            serde_json::json!({ "epoch": s.epoch, "previous": s.previous, "left": s.left })
        );
        return Ok(());
    }
    match s.previous {
        Some(p) => println!(
            "rotation from epoch {p} to {} under way: {} sealed classes left under epoch {p}; run `ribat keys rotate` to go on",
            s.epoch, s.left
        ),
        None => println!("epoch {}: no rotation under way", s.epoch),
    }
    Ok(())
}

/// `ribat keys rotate`: repairs an interrupted step, begins a rotation unless one is
/// under way, re-seals with a progress bar (progress lines when stderr is not a
/// terminal), finishes.
pub fn run(
    home: &Home,
    passphrases: &Source,
    kdf: KdfParams,
    batch: usize,
    status_only: bool,
    json: bool,
) -> Result<()> {
    if !home.has_keys() {
        bail!(
            "no keys in {}: run `ribat keys init` first",
            home.root().display()
        );
    }
    if crate::mesh::is_node(home) {
        bail!(
            "{} is a mesh node's directory: a mesh rotates its keys through its log, every node's custodian contributing (`ribat mesh reshare --dir DIR --rotate JOB_NODE --reason … --out FILE`, then two administrators' approvals); nothing was changed",
            home.root().display()
        );
    }
    if status_only {
        return print_status(&status(home)?, json);
    }
    if batch == 0 || batch > ribat_custodian::request::MAX_RECORDS_PER_REQUEST {
        bail!(
            "--batch {batch}: between 1 and {}",
            ribat_custodian::request::MAX_RECORDS_PER_REQUEST
        );
    }
    if reconcile(home, passphrases, kdf)? {
        eprintln!("note: a rotation step interrupted earlier was completed");
    }
    let before = status(home)?;
    // Opening the node takes its custodians' logs' locks: no `ribat serve` holds this home's
    // keys in memory while they change under it (it would refuse to start meanwhile, and
    // one running makes this open fail with what to do).
    let probe = Embedded::open(home, passphrases)?;
    if before.previous.is_none() {
        let g = begin(home, passphrases, kdf)?;
        eprintln!(
            "epoch {}: new keys for {} classes shared among {} custodians by all of them (no dealer); new records are sealed to it from now on",
            g.epoch,
            g.classes.len(),
            g.custodians
        );
    } else {
        eprintln!(
            "resuming the rotation to epoch {}: {} sealed classes left",
            before.epoch, before.left
        );
    }
    drop(probe);
    let node = Embedded::open(home, passphrases)?;
    let bar = progress_bar()?;
    let mut last_line = 0u64;
    let mut on_progress = |p: Progress| match &bar {
        Some(b) => {
            b.set_length(p.total);
            b.set_position(p.done);
        }
        // A line at each twentieth, so that a log shows the job moving.
        None => {
            let step = (p.total / 20).max(1);
            if p.done == 0 || p.done >= last_line + step || p.done == p.total {
                last_line = p.done;
                eprintln!("re-sealed {} of {}", p.done, p.total);
            }
        }
    };
    let report = reseal(home, &node, passphrases, kdf, batch, &mut on_progress)?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Err(e) = node.checkpoint() {
        eprintln!("warning: the audit checkpoint after the rotation failed: {e}");
    }
    if json {
        println!(
            "{}",
            serde_json::json!({
                "epoch": report.epoch,
                "resealed": report.resealed,
                "changed_meanwhile": report.changed_meanwhile,
                "finished": report.finished,
            })
        );
    } else {
        println!(
            "rotation to epoch {} finished: {} sealed classes re-sealed by this run ({} replaced meanwhile, already under the new epoch); the previous epoch's shares are erased",
            report.epoch, report.resealed, report.changed_meanwhile
        );
    }
    Ok(())
}

fn progress_bar() -> Result<Option<indicatif::ProgressBar>> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return Ok(None);
    }
    let b =
        indicatif::ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::stderr());
    b.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} re-sealed  {per_sec}  eta {eta}",
        )
        .context("progress bar template")?,
    );
    Ok(Some(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home_with_keys() -> (tempfile::TempDir, Home, Source) {
        let d = tempfile::tempdir().unwrap();
        let pass_dir = d.path().join("pass");
        let source = crate::passphrases::random_files(&pass_dir, 3).unwrap();
        let home = Home::at(d.path().join("node"));
        crate::ceremony::init_quiet(
            &home,
            2,
            3,
            &ribat_import::records::SEALED_CLASSES,
            &source,
            KdfParams::insecure_for_tests(),
        )
        .unwrap();
        (d, home, source)
    }

    fn custodian_groups(home: &Home) -> Vec<GroupPublic> {
        (1..=3)
            .map(|i| read_group(&home.custodian_dir(i).join(keystore::GROUP_FILE)).unwrap())
            .collect()
    }

    #[test]
    fn a_rotation_stopped_before_its_journal_is_dropped_and_one_stopped_after_is_completed() {
        let (_d, home, source) = home_with_keys();
        let kdf = KdfParams::insecure_for_tests();
        let epoch1 = read_group(&home.group_file()).unwrap();

        // Stopped after the new shares were written, before the commit point: dropped.
        stage(&home, &source, kdf).unwrap();
        assert!(
            keystore::next_group(&home.custodian_dir(2))
                .unwrap()
                .is_some()
        );
        assert!(reconcile(&home, &source, kdf).unwrap());
        assert!(
            keystore::next_group(&home.custodian_dir(2))
                .unwrap()
                .is_none()
        );
        assert_eq!(read_group(&home.group_file()).unwrap(), epoch1);
        assert!(custodian_groups(&home).iter().all(|g| *g == epoch1));
        assert!(
            !reconcile(&home, &source, kdf).unwrap(),
            "nothing left to repair"
        );

        // Stopped after the journal, one custodian promoted: completed for all.
        let rotated = stage(&home, &source, kdf).unwrap();
        write_journal(&home, "begin", &rotated).unwrap();
        keystore::promote(&home.custodian_dir(1)).unwrap();
        assert!(reconcile(&home, &source, kdf).unwrap());
        assert_eq!(read_group(&home.group_file()).unwrap(), rotated);
        assert!(custodian_groups(&home).iter().all(|g| *g == rotated));
        assert!(!home.root().join(JOURNAL).exists());
        assert_eq!(
            status(&home).unwrap(),
            Status {
                epoch: 2,
                previous: Some(1),
                // The service keys (index, leak digests) are under epoch 1 still.
                left: 2,
            }
        );
        let err = begin(&home, &source, kdf).unwrap_err().to_string();
        assert!(err.contains("under way"), "{err}");

        // The job re-seals the service keys; the node opens its blind-index key after.
        let node = Embedded::open(&home, &source).unwrap();
        let mut seen = Vec::new();
        let report = reseal(&home, &node, &source, kdf, 1, &mut |p| seen.push(p)).unwrap();
        assert_eq!(
            (report.epoch, report.resealed, report.finished),
            (2, 2, true)
        );
        assert_eq!(seen.first(), Some(&Progress { total: 2, done: 0 }));
        assert_eq!(seen.last(), Some(&Progress { total: 2, done: 2 }));
        let done = rotated.without_previous();
        assert_eq!(read_group(&home.group_file()).unwrap(), done);
        assert!(custodian_groups(&home).iter().all(|g| *g == done));
        assert_eq!(node.vault.reader.group(), done);
        drop(node);
        Embedded::open(&home, &source).unwrap();

        // A finish journal while records remain under the previous epoch (which `finish`
        // never writes) is refused, and changes nothing; the job then finishes.
        let rotated = stage(&home, &source, kdf).unwrap();
        write_journal(&home, "begin", &rotated).unwrap();
        reconcile(&home, &source, kdf).unwrap();
        assert_eq!((rotated.epoch, status(&home).unwrap().left), (3, 2));
        write_journal(&home, "finish", &rotated.without_previous()).unwrap();
        let err = reconcile(&home, &source, kdf).unwrap_err().to_string();
        assert!(err.contains("still under epoch 2"), "{err}");
        assert!(custodian_groups(&home).iter().all(|g| *g == rotated));
        std::fs::remove_file(home.root().join(JOURNAL)).unwrap();
        let node = Embedded::open(&home, &source).unwrap();
        reseal(&home, &node, &source, kdf, 64, &mut |_| {}).unwrap();
        drop(node);
        assert!(custodian_groups(&home).iter().all(|g| g.previous.is_none()));
        let keys = keystore::load(&home.custodian_dir(3), &source.get(3, false).unwrap()).unwrap();
        assert_eq!((keys.epoch, keys.previous.is_none()), (3, true));
    }
}
