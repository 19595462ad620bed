//! A custodian's directory: its sealed shares, its own copy of the group file, its policy,
//! its honey list and its log.
//!
//! ```text
//!   DIR/custodian.json   shares of every class, sealed under the custodian's passphrase
//!   DIR/group.json       public group file, as received at the ceremony
//!   DIR/policy.json      the policy this custodian enforces
//!   DIR/honey.json       honey records (table, id), sealed under a key derived from the
//!                        custodian's identity share (format `ribat-honey/v1`)
//!   DIR/served/          what it served and refused (a Merkle log: journal, tiles, lock)
//! ```
//!
//! `custodian.json` (format `ribat-custodian/v1`) holds the custodian index, the epoch and a
//! passphrase-sealed blob whose associated data binds both. The sealed plaintext is, per
//! class: class-name length (1 byte), class name, scalar (32 bytes). Every share is checked
//! against the Feldman commitments of the group file when it is installed and again
//! whenever it is loaded; a share that does not match is refused.

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

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SharesFile {
    format: String,
    custodian: u32,
    epoch: u32,
    sealed: PassphraseSealed,
}

/// The shares a custodian holds, once unsealed and checked.
#[derive(Debug)]
pub struct CustodianKeys {
    /// Custodian index.
    pub index: u32,
    /// Key epoch.
    pub epoch: u32,
    /// Shares by class.
    pub shares: BTreeMap<String, KeyShare>,
    /// The group file this custodian trusts.
    pub group: GroupPublic,
}

fn dir_err(path: &Path, reason: impl Into<String>) -> CustodianError {
    CustodianError::Directory {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}

fn aad(index: u32, epoch: u32) -> Vec<u8> {
    format!("{CUSTODIAN_FORMAT}|custodian={index}|epoch={epoch}").into_bytes()
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
    let mut plain = Zeroizing::new(Vec::with_capacity(shares.len() * 48));
    for s in shares {
        if s.custodian != index {
            return Err(dir_err(
                dir,
                format!(
                    "share for custodian {} offered to custodian {index}",
                    s.custodian
                ),
            ));
        }
        verify_share(s, &group.class(&s.class)?.commitments)?;
        let name = s.class.as_bytes();
        let len = u8::try_from(name.len()).map_err(|_| dir_err(dir, "class name too long"))?;
        plain.push(len);
        plain.extend_from_slice(name);
        plain.extend_from_slice(s.secret().to_bytes().as_ref());
    }
    let sealed = passphrase::seal(&plain, pass, kdf, &aad(index, group.epoch))?;
    let file = SharesFile {
        format: CUSTODIAN_FORMAT.into(),
        custodian: index,
        epoch: group.epoch,
        sealed,
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| dir_err(dir, e.to_string()))?;
    write_atomic(&dir.join(GROUP_FILE), group.to_json()?.as_bytes())?;
    write_atomic(&target, &json)
}

/// Format tag of the sealed honey list.
pub const HONEY_FORMAT: &str = "ribat-honey/v1";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HoneyFile {
    format: String,
    custodian: u32,
    epoch: u32,
    sealed: String,
}

/// A key only this custodian can derive, from its identity share (or its first share),
/// for one `label`; `what` names the use in the error when it holds no share.
fn local_key(
    keys: &CustodianKeys,
    label: &str,
    what: &str,
) -> Result<ribat_crypto::secret::SecretBytes<32>, CustodianError> {
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

fn honey_key(
    keys: &CustodianKeys,
) -> Result<ribat_crypto::secret::SecretBytes<32>, CustodianError> {
    local_key(keys, "ribat/v1/honey-list", "honey-list key")
}

/// The seed of the custodian's witness key (it cosigns the node's audit checkpoints).
/// Derived from a share, so it exists only where the share is unsealed and needs no
/// file of its own; it changes with the key epoch, as the shares do.
pub fn witness_seed(
    keys: &CustodianKeys,
) -> Result<ribat_crypto::secret::SecretBytes<32>, CustodianError> {
    local_key(keys, "ribat/v1/witness-cosignature-key", "witness key")
}

/// Seals and writes the honey list of an opened custodian.
pub fn save_honey(
    dir: &Path,
    keys: &CustodianKeys,
    list: &[(String, String)],
) -> Result<(), CustodianError> {
    let plain = Zeroizing::new(serde_json::to_vec(list).map_err(|e| dir_err(dir, e.to_string()))?);
    let aad = format!(
        "{HONEY_FORMAT}|custodian={}|epoch={}",
        keys.index, keys.epoch
    );
    let sealed = ribat_crypto::at_rest::seal(&honey_key(keys)?, &plain, aad.as_bytes())?;
    let file = HoneyFile {
        format: HONEY_FORMAT.into(),
        custodian: keys.index,
        epoch: keys.epoch,
        sealed: hex::encode(&sealed),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| dir_err(dir, e.to_string()))?;
    write_atomic(&dir.join(HONEY_FILE), &json)
}

/// Reads the honey list of an opened custodian; no file means no honey records.
pub fn load_honey(
    dir: &Path,
    keys: &CustodianKeys,
) -> Result<Vec<(String, String)>, CustodianError> {
    let path = dir.join(HONEY_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(dir_err(&path, e.to_string())),
    };
    let file: HoneyFile = serde_json::from_str(&text)
        .map_err(|e| dir_err(&path, format!("not a sealed honey list: {e}")))?;
    if file.format != HONEY_FORMAT || file.custodian != keys.index || file.epoch != keys.epoch {
        return Err(dir_err(
            &path,
            "belongs to another custodian, epoch or format",
        ));
    }
    let bytes: Vec<u8> =
        hex::decode(&file.sealed).map_err(|_| dir_err(&path, "sealed list is not hex"))?;
    let aad = format!(
        "{HONEY_FORMAT}|custodian={}|epoch={}",
        keys.index, keys.epoch
    );
    let plain = ribat_crypto::at_rest::open(
        &honey_key(keys)?,
        &bytes,
        aad.as_bytes(),
        &path.display().to_string(),
    )?;
    serde_json::from_slice(&plain).map_err(|e| {
        dir_err(
            &path,
            format!("sealed list is not a list of [table, record id]: {e}"),
        )
    })
}

/// Unseals and checks the shares in `dir`.
pub fn load(dir: &Path, pass: &Passphrase) -> Result<CustodianKeys, CustodianError> {
    let read = |name: &str| {
        let p = dir.join(name);
        fs::read_to_string(&p).map_err(|e| dir_err(&p, format!("cannot read: {e}")))
    };
    let group = GroupPublic::from_json(&read(GROUP_FILE)?)?;
    let shares_path = dir.join(SHARES_FILE);
    let file: SharesFile = serde_json::from_str(&read(SHARES_FILE)?)
        .map_err(|e| dir_err(&shares_path, format!("not a custodian share file: {e}")))?;
    if file.format != CUSTODIAN_FORMAT {
        return Err(dir_err(
            &shares_path,
            format!("format `{}`, expected `{CUSTODIAN_FORMAT}`", file.format),
        ));
    }
    if file.epoch != group.epoch {
        return Err(dir_err(
            &shares_path,
            format!(
                "shares are epoch {}, group file is epoch {}",
                file.epoch, group.epoch
            ),
        ));
    }
    let plain = passphrase::open(
        &file.sealed,
        pass,
        &aad(file.custodian, file.epoch),
        &shares_path.display().to_string(),
    )?;
    let mut shares = BTreeMap::new();
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
        let secret = SecretScalar::from_canonical_bytes(*sc)
            .ok_or_else(|| dir_err(&shares_path, "share is not a canonical scalar"))?;
        let share = KeyShare::new(file.custodian, class.clone(), secret);
        verify_share(&share, &group.class(&class)?.commitments)?;
        shares.insert(class, share);
        rest = &tail[len + 32..];
    }
    Ok(CustodianKeys {
        index: file.custodian,
        epoch: file.epoch,
        shares,
        group,
    })
}
