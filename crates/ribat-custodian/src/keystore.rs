//! A custodian's directory: its sealed shares, its own copy of the group file, its policy,
//! its honey list and its log.
//!
//! ```text
//!   DIR/custodian.json   shares of every class, sealed under the custodian's passphrase
//!   DIR/group.json       public group file, as received at the ceremony
//!   DIR/policy.json      the policy this custodian enforces
//!   DIR/honey.json       honey records (table, id), sealed under a key derived from the
//!                        custodian's identity share (format `ribat-honey/v1`)
//!   DIR/index-key.json   the deployment's blind-index key, given at the ceremony, sealed
//!                        the same way (format `ribat-index-key/v1`): the custodian finds
//!                        the records a user's signed request names
//!   DIR/served/          what it served and refused (a Merkle log: journal, tiles, lock)
//! ```
//!
//! `custodian.json` (format `ribat-custodian/v1`) holds the custodian index, the epoch, the
//! custodian set (absent: 1) and a passphrase-sealed blob whose associated data binds them.
//! The sealed plaintext is, per class: class-name length (1 byte), class name, scalar (32
//! bytes). Every share is checked against the Feldman commitments of the group file when it
//! is installed and again whenever it is loaded; a share that does not match is refused.
//!
//! After a resharing the plaintext also carries, under names starting with `~`, the keys a
//! custodian derived from its old share (its witness key, its honey-list key): they are not
//! the records' keys, and carrying them keeps the witness key gateways pinned and the honey
//! list readable across the change of shares.
//!
//! During a key rotation the file also holds the previous epoch's shares (entries named
//! `@class`, the epoch in clear as `previous_epoch` and bound by the associated data), so
//! that records not yet re-sealed stay readable; [`install_rotation`] and
//! [`finish_rotation`] write the two steps.
//!
//! A resharing writes the new set's shares and group beside the old ones
//! (`custodian.next.json`, `group.next.json`, [`install_next`]); when the mesh puts the new
//! set in force, [`promote`] renames them over the old files (the old share is gone), or
//! [`erase`] removes a custodian that is not in the new set.

use crate::error::CustodianError;
use ribat_crypto::group::GroupPublic;
use ribat_crypto::passphrase::{self, KdfParams, PassphraseSealed};
use ribat_crypto::secret::{Passphrase, SecretScalar};
use ribat_crypto::shamir::{KeyShare, verify_share};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use zeroize::Zeroizing;

/// Format tag of the sealed share file.
pub const CUSTODIAN_FORMAT: &str = "ribat-custodian/v1";
/// File names inside a custodian directory.
pub const SHARES_FILE: &str = "custodian.json";
/// The custodian's copy of the public group file.
pub const GROUP_FILE: &str = "group.json";
/// The custodian's policy.
pub const POLICY_FILE: &str = "policy.json";
/// The custodian's honey list.
pub const HONEY_FILE: &str = "honey.json";
/// The custodian's copy of the blind-index key.
pub const INDEX_KEY_FILE: &str = "index-key.json";
/// Format tag of the sealed blind-index key.
pub const INDEX_KEY_FORMAT: &str = "ribat-index-key/v1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharesFile {
    format: String,
    custodian: u32,
    epoch: u32,
    #[serde(default = "first_set", skip_serializing_if = "is_first_set")]
    set: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_epoch: Option<u32>,
    sealed: PassphraseSealed,
}

fn first_set() -> u32 {
    1
}

fn is_first_set(set: &u32) -> bool {
    *set == 1
}

/// The next set's shares, written by a resharing until the mesh puts it in force.
pub const NEXT_SHARES_FILE: &str = "custodian.next.json";
/// The next set's group file.
pub const NEXT_GROUP_FILE: &str = "group.next.json";
/// Prefix of the carried keys' names in the sealed plaintext (never a class's).
const CARRIED: char = '~';
/// Prefix of the previous epoch's shares in the sealed plaintext (never a class's).
const PREVIOUS: char = '@';

/// The shares of the epoch a rotation is moving records away from.
#[derive(Debug)]
pub struct PreviousShares {
    /// Its number.
    pub epoch: u32,
    /// Shares by class.
    pub shares: BTreeMap<String, KeyShare>,
}

/// The shares a custodian holds, once unsealed and checked.
#[derive(Debug)]
pub struct CustodianKeys {
    /// Custodian index.
    pub index: u32,
    /// Key epoch.
    pub epoch: u32,
    /// The custodian set its shares belong to (the group's).
    pub set: u32,
    /// Shares by class.
    pub shares: BTreeMap<String, KeyShare>,
    /// The group file this custodian trusts.
    pub group: GroupPublic,
    /// Keys derived from an earlier set's share, kept across resharings, by label.
    pub carried: BTreeMap<String, ribat_crypto::secret::SecretBytes<32>>,
    /// The previous epoch's shares while a rotation is unfinished.
    pub previous: Option<PreviousShares>,
}

impl CustodianKeys {
    /// The share of `class` in `epoch` (this one or the previous).
    pub fn share_at(&self, class: &str, epoch: u32) -> Option<&KeyShare> {
        match &self.previous {
            _ if epoch == self.epoch => self.shares.get(class),
            Some(p) if p.epoch == epoch => p.shares.get(class),
            _ => None,
        }
    }
}

fn dir_err(path: &Path, reason: impl Into<String>) -> CustodianError {
    CustodianError::Directory {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn aad(index: u32, epoch: u32, set: u32, previous: Option<u32>) -> Vec<u8> {
    let mut a = format!("{CUSTODIAN_FORMAT}|custodian={index}|epoch={epoch}");
    if set != 1 {
        a.push_str(&format!("|set={set}"));
    }
    if let Some(p) = previous {
        a.push_str(&format!("|previous={p}"));
    }
    a.into_bytes()
}

/// Writes `bytes` to `path` atomically and durably: temporary file, fsync, rename, fsync
/// of the directory. A crash leaves either the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CustodianError> {
    let parent = path
        .parent()
        .ok_or_else(|| dir_err(path, "no parent directory"))?;
    let tmp = path.with_extension("tmp");
    let io = |e: std::io::Error| dir_err(path, e.to_string());
    {
        let mut f = fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    fs::rename(&tmp, path).map_err(io)?;
    fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .map_err(io)?;
    Ok(())
}

/// Installs a custodian's shares in `dir`: checks each against the group's commitments,
/// refuses to overwrite existing shares, seals them under `pass`, and keeps a copy of the
/// group file.
pub fn install(
    dir: &Path,
    index: u32,
    shares: &[KeyShare],
    group: &GroupPublic,
    pass: &Passphrase,
    kdf: KdfParams,
) -> Result<(), CustodianError> {
    fs::create_dir_all(dir).map_err(|e| dir_err(dir, e.to_string()))?;
    let target = dir.join(SHARES_FILE);
    if target.exists() {
        return Err(dir_err(
            &target,
            "already holds key shares; refusing to overwrite them (move the directory away to start a new ceremony)",
        ));
    }
    let json = sealed_file(dir, index, shares, &[], &BTreeMap::new(), group, pass, kdf)?;
    write_atomic(&dir.join(GROUP_FILE), group.to_json()?.as_bytes())?;
    write_atomic(&target, &json)
}

/// Writes the shares of the next custodian set beside the ones in force (replacing an
/// earlier unfinished resharing's), with the keys `carried` from the current share.
pub fn install_next(
    dir: &Path,
    index: u32,
    shares: &[KeyShare],
    carried: &BTreeMap<String, ribat_crypto::secret::SecretBytes<32>>,
    group: &GroupPublic,
    pass: &Passphrase,
    kdf: KdfParams,
) -> Result<(), CustodianError> {
    fs::create_dir_all(dir).map_err(|e| dir_err(dir, e.to_string()))?;
    let json = sealed_file(dir, index, shares, &[], carried, group, pass, kdf)?;
    write_atomic(&dir.join(NEXT_GROUP_FILE), group.to_json()?.as_bytes())?;
    write_atomic(&dir.join(NEXT_SHARES_FILE), &json)
}

/// Writes, beside the shares in force, the shares of the next key epoch (`shares`,
/// checked against `rotated`, the group [`GroupPublic::rotated`] made) with the current
/// ones kept as the previous epoch's, and the keys derived from the current share carried.
/// [`promote`] puts them in force.
pub fn install_rotation(
    dir: &Path,
    keys: &CustodianKeys,
    shares: &[KeyShare],
    rotated: &GroupPublic,
    pass: &Passphrase,
    kdf: KdfParams,
) -> Result<(), CustodianError> {
    if keys.previous.is_some() {
        return Err(dir_err(
            dir,
            "a rotation is unfinished here; finish it before starting another",
        ));
    }
    if rotated.previous.as_ref().map(|p| p.epoch) != Some(keys.epoch) {
        return Err(dir_err(
            dir,
            format!(
                "the rotated group does not rotate away from epoch {}, the one held",
                keys.epoch
            ),
        ));
    }
    let current: Vec<KeyShare> = keys.shares.values().cloned().collect();
    let carried = keys_to_carry(keys)?;
    let json = sealed_file(
        dir, keys.index, shares, &current, &carried, rotated, pass, kdf,
    )?;
    write_atomic(&dir.join(NEXT_GROUP_FILE), rotated.to_json()?.as_bytes())?;
    write_atomic(&dir.join(NEXT_SHARES_FILE), &json)
}

/// Writes, beside the shares in force, the same shares without the previous epoch's (no
/// record is sealed under it any more); [`promote`] puts them in force and the previous
/// shares are gone.
pub fn finish_rotation(
    dir: &Path,
    keys: &CustodianKeys,
    pass: &Passphrase,
    kdf: KdfParams,
) -> Result<(), CustodianError> {
    let current: Vec<KeyShare> = keys.shares.values().cloned().collect();
    let group = keys.group.without_previous();
    let json = sealed_file(
        dir,
        keys.index,
        &current,
        &[],
        &keys.carried,
        &group,
        pass,
        kdf,
    )?;
    write_atomic(&dir.join(NEXT_GROUP_FILE), group.to_json()?.as_bytes())?;
    write_atomic(&dir.join(NEXT_SHARES_FILE), &json)
}

/// Removes next-epoch or next-set files that were never put in force (a rotation that
/// stopped before every custodian had its new share).
pub fn drop_next(dir: &Path) -> Result<(), CustodianError> {
    for f in [NEXT_SHARES_FILE, NEXT_GROUP_FILE] {
        match fs::remove_file(dir.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(dir_err(&dir.join(f), format!("cannot remove: {e}"))),
        }
    }
    Ok(())
}

/// The group file waiting beside the one in force, if any.
pub fn next_group(dir: &Path) -> Result<Option<GroupPublic>, CustodianError> {
    let path = dir.join(NEXT_GROUP_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(GroupPublic::from_json(&text)?)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(dir_err(&path, e.to_string())),
    }
}

/// The custodian set whose shares wait in `dir` for the mesh to put them in force.
pub fn pending_set(dir: &Path) -> Result<Option<u32>, CustodianError> {
    let path = dir.join(NEXT_SHARES_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => {
            let f: SharesFile = serde_json::from_str(&text)
                .map_err(|e| dir_err(&path, format!("not a custodian share file: {e}")))?;
            Ok(Some(f.set))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(dir_err(&path, e.to_string())),
    }
}

/// Puts the next set's shares in force: renames them (and their group) over the old ones,
/// which are gone. Safe to repeat after a crash between the two renames.
pub fn promote(dir: &Path) -> Result<(), CustodianError> {
    for (from, to) in [
        (NEXT_GROUP_FILE, GROUP_FILE),
        (NEXT_SHARES_FILE, SHARES_FILE),
    ] {
        match fs::rename(dir.join(from), dir.join(to)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(dir_err(
                    &dir.join(from),
                    format!("cannot put in force: {e}"),
                ));
            }
        }
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| dir_err(dir, e.to_string()))
}

/// Removes the shares (current and pending), a dealing kept for a resharing, and the honey
/// list of a custodian that is not in the set now in force; its policy and served log stay, as the record of what it did.
pub fn erase(dir: &Path) -> Result<(), CustodianError> {
    for f in [
        SHARES_FILE,
        NEXT_SHARES_FILE,
        NEXT_GROUP_FILE,
        HONEY_FILE,
        crate::reshare::DEALING_FILE,
    ] {
        match fs::remove_file(dir.join(f)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(dir_err(&dir.join(f), format!("cannot erase: {e}"))),
        }
    }
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| dir_err(dir, e.to_string()))
}

/// Whether `dir` holds shares in force or waiting for their set.
pub fn holds_shares(dir: &Path) -> bool {
    dir.join(SHARES_FILE).exists() || dir.join(NEXT_SHARES_FILE).exists()
}

#[allow(clippy::too_many_arguments)]
fn sealed_file(
    dir: &Path,
    index: u32,
    shares: &[KeyShare],
    previous: &[KeyShare],
    carried: &BTreeMap<String, ribat_crypto::secret::SecretBytes<32>>,
    group: &GroupPublic,
    pass: &Passphrase,
    kdf: KdfParams,
) -> Result<Vec<u8>, CustodianError> {
    let mut plain = Zeroizing::new(Vec::with_capacity((shares.len() + carried.len()) * 64));
    let mut put = |name: &str, bytes: &[u8; 32]| -> Result<(), CustodianError> {
        let len = u8::try_from(name.len()).map_err(|_| dir_err(dir, "class name too long"))?;
        plain.push(len);
        plain.extend_from_slice(name.as_bytes());
        plain.extend_from_slice(bytes);
        Ok(())
    };
    let own = |s: &KeyShare| -> Result<(), CustodianError> {
        if s.custodian != index {
            return Err(dir_err(
                dir,
                format!(
                    "share for custodian {} offered to custodian {index}",
                    s.custodian
                ),
            ));
        }
        if s.class.starts_with([CARRIED, PREVIOUS]) {
            return Err(dir_err(dir, format!("`{}` is not a class name", s.class)));
        }
        Ok(())
    };
    for s in shares {
        own(s)?;
        verify_share(s, &group.class(&s.class)?.commitments)?;
        put(&s.class, &s.secret().to_bytes())?;
    }
    let previous_epoch = group.previous.as_ref().map(|p| p.epoch);
    match previous_epoch {
        None if !previous.is_empty() => {
            return Err(dir_err(
                dir,
                "previous shares given for a group with no previous epoch",
            ));
        }
        Some(p) if previous.len() != group.classes.len() => {
            return Err(dir_err(
                dir,
                format!("a share of every class of epoch {p} is needed while it is rotated away"),
            ));
        }
        _ => {}
    }
    for s in previous {
        own(s)?;
        let epoch = previous_epoch.unwrap_or_default();
        verify_share(s, &group.class_at(&s.class, epoch)?.commitments)?;
        put(&format!("{PREVIOUS}{}", s.class), &s.secret().to_bytes())?;
    }
    for (label, key) in carried {
        put(&format!("{CARRIED}{label}"), key.expose())?;
    }
    let sealed = passphrase::seal(
        &plain,
        pass,
        kdf,
        &aad(index, group.epoch, group.set, previous_epoch),
    )?;
    let file = SharesFile {
        format: CUSTODIAN_FORMAT.into(),
        custodian: index,
        epoch: group.epoch,
        set: group.set,
        previous_epoch,
        sealed,
    };
    serde_json::to_vec_pretty(&file).map_err(|e| dir_err(dir, e.to_string()))
}

/// Format tag of the sealed honey list.
pub const HONEY_FORMAT: &str = "ribat-honey/v1";

/// One of the custodian's own sealed files (honey list, index key), as it is on disk.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedFile {
    format: String,
    custodian: u32,
    epoch: u32,
    sealed: String,
}

/// A key only this custodian can derive, from its identity share (or its first share),
/// for one `label`; `what` names the use in the error when it holds no share.
pub(crate) fn local_key(
    keys: &CustodianKeys,
    label: &str,
    what: &str,
) -> Result<ribat_crypto::secret::SecretBytes<32>, CustodianError> {
    if let Some(k) = keys.carried.get(label) {
        return Ok(ribat_crypto::secret::SecretBytes::new(*k.expose()));
    }
    let share = keys
        .shares
        .get("identity")
        .or_else(|| keys.shares.values().next())
        .ok_or_else(|| CustodianError::Directory {
            path: "(custodian)".into(),
            reason: format!("holds no share to derive its {what} from"),
        })?;
    Ok(share.derive_local_key(label)?)
}

const HONEY_LABEL: &str = "ribat/v1/honey-list";
const INDEX_LABEL: &str = "ribat/v1/index-key-seal";
const WITNESS_LABEL: &str = "ribat/v1/witness-cosignature-key";

/// The keys a custodian derived from its share that its next shares carry (its witness
/// key and its honey-list key), so that they survive a resharing.
pub fn keys_to_carry(
    keys: &CustodianKeys,
) -> Result<BTreeMap<String, ribat_crypto::secret::SecretBytes<32>>, CustodianError> {
    let mut carried = BTreeMap::new();
    for (label, what) in [
        (HONEY_LABEL, "honey-list key"),
        (WITNESS_LABEL, "witness key"),
        (INDEX_LABEL, "index-key seal"),
    ] {
        carried.insert(label.to_owned(), local_key(keys, label, what)?);
    }
    Ok(carried)
}

/// The witness key custodian `index` cosigns with in `deployment` once `carried` (from
/// [`keys_to_carry`] or [`fresh_keys_to_carry`]) is its: what its node tells the mesh.
pub fn carried_witness_key(
    carried: &BTreeMap<String, ribat_crypto::secret::SecretBytes<32>>,
    index: u32,
    deployment: &str,
) -> Result<ribat_audit::VerifierKey, CustodianError> {
    let seed = carried
        .get(WITNESS_LABEL)
        .ok_or_else(|| CustodianError::Directory {
            path: "(custodian)".into(),
            reason: "no witness key among the keys carried".into(),
        })?;
    Ok(witness_signer(seed, index, deployment)?.verifier())
}

/// The signer of custodian `index`'s witness in `deployment`, from its seed.
pub(crate) fn witness_signer(
    seed: &ribat_crypto::secret::SecretBytes<32>,
    index: u32,
    deployment: &str,
) -> Result<ribat_audit::NoteSigner, CustodianError> {
    let name = format!("custodian-{index}.{deployment}/witness");
    ribat_audit::NoteSigner::from_seed(&name, ribat_audit::note::COSIGNATURE_V1, seed.expose())
        .map_err(|e| CustodianError::Directory {
            path: "(custodian)".into(),
            reason: format!("witness key: {e}"),
        })
}

/// Fresh keys for a custodian that joins at a resharing and so has no earlier share.
pub fn fresh_keys_to_carry()
-> Result<BTreeMap<String, ribat_crypto::secret::SecretBytes<32>>, CustodianError> {
    let mut carried = BTreeMap::new();
    for label in [HONEY_LABEL, WITNESS_LABEL, INDEX_LABEL] {
        carried.insert(
            label.to_owned(),
            ribat_crypto::secret::SecretBytes::random()?,
        );
    }
    Ok(carried)
}

/// The seed of the custodian's witness key (it cosigns the node's audit checkpoints).
/// Derived from a share, so it exists only where the share is unsealed and needs no
/// file of its own; it changes with the key epoch, as the shares do.
pub fn witness_seed(
    keys: &CustodianKeys,
) -> Result<ribat_crypto::secret::SecretBytes<32>, CustodianError> {
    local_key(keys, WITNESS_LABEL, "witness key")
}

/// One of the custodian's own sealed files: what it seals (`format`, `file`) and the local
/// key it seals under (`label`, named `what` in errors).
struct Sealed {
    format: &'static str,
    file: &'static str,
    label: &'static str,
    what: &'static str,
    /// What the plaintext is, for the error when it is not.
    holds: &'static str,
}

const HONEY: Sealed = Sealed {
    format: HONEY_FORMAT,
    file: HONEY_FILE,
    label: HONEY_LABEL,
    what: "honey-list key",
    holds: "a list of [table, record id]",
};

const INDEX: Sealed = Sealed {
    format: INDEX_KEY_FORMAT,
    file: INDEX_KEY_FILE,
    label: INDEX_LABEL,
    what: "index-key seal",
    holds: "a 32-byte key",
};

impl Sealed {
    fn aad(&self, index: u32, epoch: u32) -> String {
        format!("{}|custodian={index}|epoch={epoch}", self.format)
    }

    fn save(&self, dir: &Path, keys: &CustodianKeys, plain: &[u8]) -> Result<(), CustodianError> {
        let key = local_key(keys, self.label, self.what)?;
        self.save_with(dir, keys.index, keys.epoch, &key, plain)
    }

    fn save_with(
        &self,
        dir: &Path,
        index: u32,
        epoch: u32,
        key: &ribat_crypto::secret::SecretBytes<32>,
        plain: &[u8],
    ) -> Result<(), CustodianError> {
        let aad = self.aad(index, epoch);
        let sealed = ribat_crypto::at_rest::seal(key, plain, aad.as_bytes())?;
        let file = SealedFile {
            format: self.format.into(),
            custodian: index,
            epoch,
            sealed: hex::encode(&sealed),
        };
        let json = serde_json::to_vec_pretty(&file).map_err(|e| dir_err(dir, e.to_string()))?;
        write_atomic(&dir.join(self.file), &json)
    }

    /// The plaintext, or `None` when there is no file.
    fn load(
        &self,
        dir: &Path,
        keys: &CustodianKeys,
    ) -> Result<Option<Zeroizing<Vec<u8>>>, CustodianError> {
        let path = dir.join(self.file);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(dir_err(&path, e.to_string())),
        };
        let file: SealedFile = serde_json::from_str(&text)
            .map_err(|e| dir_err(&path, format!("not a sealed file ({}): {e}", self.holds)))?;
        // A file sealed before a rotation stays readable: its key is carried, its epoch is
        // the previous one (or an earlier one, after the rotation finished).
        if file.format != self.format || file.custodian != keys.index || file.epoch > keys.epoch {
            return Err(dir_err(
                &path,
                "belongs to another custodian, epoch or format",
            ));
        }
        let bytes: Vec<u8> =
            hex::decode(&file.sealed).map_err(|_| dir_err(&path, "sealed contents are not hex"))?;
        let aad = self.aad(keys.index, file.epoch);
        Ok(Some(ribat_crypto::at_rest::open(
            &local_key(keys, self.label, self.what)?,
            &bytes,
            aad.as_bytes(),
            &path.display().to_string(),
        )?))
    }
}

/// Seals and writes the honey list of an opened custodian.
pub fn save_honey(
    dir: &Path,
    keys: &CustodianKeys,
    list: &[(String, String)],
) -> Result<(), CustodianError> {
    let plain = Zeroizing::new(serde_json::to_vec(list).map_err(|e| dir_err(dir, e.to_string()))?);
    HONEY.save(dir, keys, &plain)
}

/// Reads the honey list of an opened custodian; no file means no honey records.
pub fn load_honey(
    dir: &Path,
    keys: &CustodianKeys,
) -> Result<Vec<(String, String)>, CustodianError> {
    let Some(plain) = HONEY.load(dir, keys)? else {
        return Ok(Vec::new());
    };
    serde_json::from_slice(&plain).map_err(|e| {
        dir_err(
            &dir.join(HONEY_FILE),
            format!("sealed list is not {}: {e}", HONEY.holds),
        )
    })
}

/// Seals and writes the deployment's blind-index key for an opened custodian: with it the
/// custodian finds the records a user's signed request names, as the gateway did, and
/// answers for no other.
pub fn save_index_key(
    dir: &Path,
    keys: &CustodianKeys,
    key: &ribat_crypto::secret::SecretBytes<32>,
) -> Result<(), CustodianError> {
    INDEX.save(dir, keys, key.expose())
}

/// Same, for a custodian whose shares are not opened yet (one that joins at a resharing):
/// sealed under the key it will carry (`carried`, from [`fresh_keys_to_carry`] or
/// [`keys_to_carry`]) for key epoch `epoch`.
pub fn save_index_key_carried(
    dir: &Path,
    index: u32,
    epoch: u32,
    carried: &BTreeMap<String, ribat_crypto::secret::SecretBytes<32>>,
    key: &ribat_crypto::secret::SecretBytes<32>,
) -> Result<(), CustodianError> {
    let seal = carried
        .get(INDEX_LABEL)
        .ok_or_else(|| CustodianError::Directory {
            path: dir.display().to_string(),
            reason: "no index-key seal among the keys carried".into(),
        })?;
    INDEX.save_with(dir, index, epoch, seal, key.expose())
}

/// The blind-index key of an opened custodian, or `None` when its directory holds none (a
/// custodian made before signed requests, or one that joined at a resharing).
pub fn load_index_key(
    dir: &Path,
    keys: &CustodianKeys,
) -> Result<Option<ribat_crypto::secret::SecretBytes<32>>, CustodianError> {
    let Some(plain) = INDEX.load(dir, keys)? else {
        return Ok(None);
    };
    let bytes = <[u8; 32]>::try_from(plain.as_slice()).map_err(|_| {
        dir_err(
            &dir.join(INDEX_KEY_FILE),
            format!("does not hold {}", INDEX.holds),
        )
    })?;
    Ok(Some(ribat_crypto::secret::SecretBytes::new(bytes)))
}

/// Unseals and checks the shares in `dir`.
pub fn load(dir: &Path, pass: &Passphrase) -> Result<CustodianKeys, CustodianError> {
    load_files(dir, pass, SHARES_FILE, GROUP_FILE)
}

/// Unseals and checks the shares waiting in `dir` for their set to be put in force.
pub fn load_next(dir: &Path, pass: &Passphrase) -> Result<CustodianKeys, CustodianError> {
    load_files(dir, pass, NEXT_SHARES_FILE, NEXT_GROUP_FILE)
}

fn load_files(
    dir: &Path,
    pass: &Passphrase,
    shares_file: &str,
    group_file: &str,
) -> Result<CustodianKeys, CustodianError> {
    let read = |name: &str| {
        let p = dir.join(name);
        fs::read_to_string(&p).map_err(|e| dir_err(&p, format!("cannot read: {e}")))
    };
    let group = GroupPublic::from_json(&read(group_file)?)?;
    let shares_path = dir.join(shares_file);
    let file: SharesFile = serde_json::from_str(&read(shares_file)?)
        .map_err(|e| dir_err(&shares_path, format!("not a custodian share file: {e}")))?;
    if file.format != CUSTODIAN_FORMAT {
        return Err(dir_err(
            &shares_path,
            format!("format `{}`, expected `{CUSTODIAN_FORMAT}`", file.format),
        ));
    }
    let group_previous = group.previous.as_ref().map(|p| p.epoch);
    if file.epoch != group.epoch || file.set != group.set || file.previous_epoch != group_previous {
        return Err(dir_err(
            &shares_path,
            format!(
                "shares are epoch {} of custodian set {} (previous epoch {:?}), group file is epoch {} of set {} (previous epoch {:?})",
                file.epoch, file.set, file.previous_epoch, group.epoch, group.set, group_previous
            ),
        ));
    }
    let plain = passphrase::open(
        &file.sealed,
        pass,
        &aad(file.custodian, file.epoch, file.set, file.previous_epoch),
        &shares_path.display().to_string(),
    )?;
    let mut shares = BTreeMap::new();
    let mut previous_shares = BTreeMap::new();
    let mut carried = BTreeMap::new();
    let mut rest: &[u8] = &plain;
    while let Some((&len, tail)) = rest.split_first() {
        let len = len as usize;
        if tail.len() < len + 32 {
            return Err(dir_err(&shares_path, "sealed share list is truncated"));
        }
        let class = String::from_utf8(tail[..len].to_vec())
            .map_err(|_| dir_err(&shares_path, "class name is not UTF-8"))?;
        let mut sc = Zeroizing::new([0u8; 32]);
        sc.copy_from_slice(&tail[len..len + 32]);
        rest = &tail[len + 32..];
        if let Some(label) = class.strip_prefix(CARRIED) {
            carried.insert(
                label.to_owned(),
                ribat_crypto::secret::SecretBytes::new(*sc),
            );
            continue;
        }
        let secret = SecretScalar::from_canonical_bytes(*sc)
            .ok_or_else(|| dir_err(&shares_path, "share is not a canonical scalar"))?;
        if let Some(class) = class.strip_prefix(PREVIOUS) {
            let epoch = group_previous
                .ok_or_else(|| dir_err(&shares_path, "a previous share with no previous epoch"))?;
            let share = KeyShare::new(file.custodian, class.to_owned(), secret);
            verify_share(&share, &group.class_at(class, epoch)?.commitments)?;
            previous_shares.insert(class.to_owned(), share);
            continue;
        }
        let share = KeyShare::new(file.custodian, class.clone(), secret);
        verify_share(&share, &group.class(&class)?.commitments)?;
        shares.insert(class, share);
    }
    let previous = match group_previous {
        Some(epoch) if previous_shares.len() == group.classes.len() => Some(PreviousShares {
            epoch,
            shares: previous_shares,
        }),
        Some(epoch) => {
            return Err(dir_err(
                &shares_path,
                format!("the shares of epoch {epoch}, being rotated away, are incomplete"),
            ));
        }
        None => None,
    };
    Ok(CustodianKeys {
        index: file.custodian,
        epoch: file.epoch,
        set: file.set,
        shares,
        group,
        carried,
        previous,
    })
}
