//! A custodian's part in a resharing (the protocol is written down in
//! [`ribat_crypto::reshare`]): as a dealer, it redeals every class of its share; as a new
//! custodian, it checks what each dealer sent against that dealer's commitments and the
//! public share the set in force gives it, combines, and writes its new shares beside the
//! old ones until the mesh puts the new set in force ([`crate::keystore::promote`]).
//!
//! The wire forms carry points and commitments as hex (they go into the mesh's log, signed
//! by the dealer's node) and sub-shares as hex scalars (they go to one custodian only, over
//! mTLS, and are never logged).
//!
//! A key rotation in a mesh takes the same path with other arithmetic: every custodian
//! contributes a random part of new class keys ([`contribute`], joint-Feldman DKG) instead of
//! redealing its share, and each sums what it receives ([`combine_rotation`]) into its share
//! of the next epoch, kept beside the previous epoch's.

use crate::error::CustodianError;
use crate::keystore::CustodianKeys;
use ribat_crypto::group::GroupPublic;
use ribat_crypto::point::{decode_point, encode_point};
use ribat_crypto::reshare::{Plan, SubShare, combine_subshares, redeal, reshared_class};
use ribat_crypto::secret::SecretBytes;
use ribat_crypto::secret::SecretScalar;
use ribat_crypto::shamir::KeyShare;
use ribat_crypto::{CryptoError, RistrettoPoint};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// One dealer's public commitments, per class: `D_{i,0..t'-1}` as hex.
pub type Commitments = BTreeMap<String, Vec<String>>;

/// What one dealer hands out: its commitments (public, for the log) and, per new
/// custodian, one sub-share of each class (secret, for that custodian alone).
pub struct Dealing {
    /// The dealer's index in the set in force.
    pub from: u32,
    /// Per class.
    pub commitments: Commitments,
    /// Per new custodian, one sub-share per class.
    pub subshares: BTreeMap<u32, Vec<SubShare>>,
}

impl std::fmt::Debug for Dealing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Dealing(from {}, {} classes, to {:?})",
            self.from,
            self.commitments.len(),
            self.subshares.keys().collect::<Vec<_>>()
        )
    }
}

/// Redeals every class this custodian holds under `plan`.
pub fn deal(keys: &CustodianKeys, plan: &Plan) -> Result<Dealing, CustodianError> {
    let mut parts = Vec::with_capacity(keys.shares.len());
    for share in keys.shares.values() {
        let r = redeal(share, plan)?;
        parts.push((r.class, r.commitments, r.subshares));
    }
    Ok(dealing_of(keys.index, parts))
}

/// A dealing from each class's public commitments and sub-shares: commitments as hex for
/// the log, sub-shares grouped by the custodian they go to.
fn dealing_of(from: u32, parts: Vec<(String, Vec<RistrettoPoint>, Vec<SubShare>)>) -> Dealing {
    let mut commitments = BTreeMap::new();
    let mut subshares: BTreeMap<u32, Vec<SubShare>> = BTreeMap::new();
    for (class, points, subs) in parts {
        commitments.insert(
            class,
            points
                .iter()
                .map(|p| hex::encode(encode_point(p)))
                .collect(),
        );
        for s in subs {
            subshares.entry(s.to).or_default().push(s);
        }
    }
    Dealing {
        from,
        commitments,
        subshares,
    }
}

/// The sub-shares one dealer sends one new custodian, as they travel.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireSubShares {
    /// The custodian set being made.
    pub set: u32,
    /// The dealer.
    pub from: u32,
    /// The new custodian.
    pub to: u32,
    /// Per class, the sub-share as 64 hex digits.
    pub shares: BTreeMap<String, HexSecret>,
    /// The deployment's blind-index key, as 64 hex digits, when the dealer holds it: a
    /// custodian that joins finds with it the records a user's signed request names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_key: Option<HexSecret>,
}

/// A secret scalar's hex, wiped when dropped.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HexSecret(String);

impl Drop for HexSecret {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

impl std::fmt::Debug for WireSubShares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WireSubShares(set {}, {} → {}, classes {:?})",
            self.set,
            self.from,
            self.to,
            self.shares.keys().collect::<Vec<_>>()
        )
    }
}

impl WireSubShares {
    /// The wire form of what `from` deals `to` for set `set`.
    pub fn new(set: u32, from: u32, to: u32, subs: &[SubShare]) -> Self {
        Self {
            set,
            from,
            to,
            shares: subs
                .iter()
                .map(|s| {
                    (
                        s.class.clone(),
                        HexSecret(hex::encode(s.secret().to_bytes().as_ref())),
                    )
                })
                .collect(),
            index_key: None,
        }
    }

    /// The same, carrying the blind-index key `key` (when the dealer holds one).
    pub fn with_index_key(mut self, key: Option<&SecretBytes<32>>) -> Self {
        self.index_key = key.map(|k| HexSecret(hex::encode(k.expose())));
        self
    }

    /// The blind-index key these sub-shares carry, if any.
    pub fn index_key(&self) -> Result<Option<SecretBytes<32>>, CustodianError> {
        let Some(h) = &self.index_key else {
            return Ok(None);
        };
        let mut bytes = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(h.0.as_bytes(), bytes.as_mut()).map_err(|_| {
            CustodianError::Directory {
                path: format!("(sub-shares of custodian {})", self.from),
                reason: "the blind-index key is not 64 hex digits".into(),
            }
        })?;
        Ok(Some(SecretBytes::new(*bytes)))
    }

    /// Back to sub-shares; refuses what is not a canonical scalar.
    pub fn subshares(&self) -> Result<Vec<SubShare>, CustodianError> {
        let mut out = Vec::with_capacity(self.shares.len());
        for (class, h) in &self.shares {
            let mut bytes = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(h.0.as_bytes(), bytes.as_mut()).map_err(|_| {
                CryptoError::SubShareRejected {
                    from: self.from,
                    to: self.to,
                    class: class.clone(),
                    reason: "it is not 64 hex digits".into(),
                }
            })?;
            let value = SecretScalar::from_canonical_bytes(*bytes).ok_or_else(|| {
                CryptoError::SubShareRejected {
                    from: self.from,
                    to: self.to,
                    class: class.clone(),
                    reason: "it is not a canonical scalar".into(),
                }
            })?;
            out.push(SubShare::new(self.from, self.to, class.clone(), value));
        }
        Ok(out)
    }
}

/// Where a dealer keeps its dealing until the resharing ends, sealed under a key derived
/// from its current share: a dealer restarted after logging its commitments sends the very
/// sub-shares those commitments are for.
pub const DEALING_FILE: &str = "reshare-dealing.json";
const DEALING_FORMAT: &str = "ribat-dealing/v1";
const DEALING_LABEL: &str = "ribat/v1/reshare-dealing";

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DealingFile {
    format: String,
    /// The statement (its digest) the dealing is for.
    statement: String,
    sealed: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct DealingPlain {
    from: u32,
    commitments: Commitments,
    subshares: Vec<WireSubShares>,
}

fn dealing_aad(keys: &CustodianKeys, statement: &str) -> Vec<u8> {
    format!(
        "{DEALING_FORMAT}|custodian={}|epoch={}|set={}|statement={statement}",
        keys.index, keys.epoch, keys.set
    )
    .into_bytes()
}

/// Keeps `dealing` (for the resharing whose statement digest is `statement`) in `dir`.
pub fn save_dealing(
    dir: &std::path::Path,
    keys: &CustodianKeys,
    statement: &str,
    set: u32,
    dealing: &Dealing,
) -> Result<(), CustodianError> {
    let plain = DealingPlain {
        from: dealing.from,
        commitments: dealing.commitments.clone(),
        subshares: dealing
            .subshares
            .iter()
            .map(|(to, subs)| WireSubShares::new(set, dealing.from, *to, subs))
            .collect(),
    };
    let bytes = Zeroizing::new(serde_json::to_vec(&plain).map_err(|e| dealing_err(dir, e))?);
    let key = crate::keystore::local_key(keys, DEALING_LABEL, "dealing key")?;
    let sealed = ribat_crypto::at_rest::seal(&key, &bytes, &dealing_aad(keys, statement))?;
    let file = DealingFile {
        format: DEALING_FORMAT.into(),
        statement: statement.to_owned(),
        sealed: hex::encode(sealed),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| dealing_err(dir, e))?;
    crate::keystore::write_atomic(&dir.join(DEALING_FILE), &json)
}

/// The dealing kept in `dir` for the resharing whose statement digest is `statement`, if
/// any (one kept for another resharing is not it).
pub fn load_dealing(
    dir: &std::path::Path,
    keys: &CustodianKeys,
    statement: &str,
) -> Result<Option<Dealing>, CustodianError> {
    let path = dir.join(DEALING_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(dealing_err(dir, e)),
    };
    let file: DealingFile = serde_json::from_str(&text).map_err(|e| dealing_err(dir, e))?;
    if file.format != DEALING_FORMAT || file.statement != statement {
        return Ok(None);
    }
    let sealed = hex::decode(&file.sealed).map_err(|e| dealing_err(dir, e))?;
    let key = crate::keystore::local_key(keys, DEALING_LABEL, "dealing key")?;
    let plain = ribat_crypto::at_rest::open(
        &key,
        &sealed,
        &dealing_aad(keys, statement),
        &path.display().to_string(),
    )?;
    let plain: DealingPlain = serde_json::from_slice(&plain).map_err(|e| dealing_err(dir, e))?;
    let mut subshares = BTreeMap::new();
    for w in &plain.subshares {
        subshares.insert(w.to, w.subshares()?);
    }
    Ok(Some(Dealing {
        from: plain.from,
        commitments: plain.commitments,
        subshares,
    }))
}

/// Forgets a kept dealing (the resharing ended).
pub fn forget_dealing(dir: &std::path::Path) -> Result<(), CustodianError> {
    match std::fs::remove_file(dir.join(DEALING_FILE)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(dealing_err(dir, e)),
    }
}

fn dealing_err(dir: &std::path::Path, e: impl std::fmt::Display) -> CustodianError {
    CustodianError::Directory {
        path: dir.join(DEALING_FILE).display().to_string(),
        reason: e.to_string(),
    }
}

fn points(dealer: u32, class: &str, hexes: &[String]) -> Result<Vec<RistrettoPoint>, CryptoError> {
    hexes
        .iter()
        .map(|h| {
            let b = hex::decode(h).map_err(|_| {
                CryptoError::Sharing(format!(
                    "dealer {dealer}'s commitment for `{class}` is not hex"
                ))
            })?;
            decode_point(&b, "reshare commitment")
        })
        .collect()
}

/// The group of the new set: the summed commitments of every dealer, class by class, with
/// the group keys of `current` kept (a dealer that shared anything but its own share is
/// caught here).
pub fn next_group(
    current: &GroupPublic,
    plan: &Plan,
    dealt: &BTreeMap<u32, Commitments>,
    set: u32,
) -> Result<GroupPublic, CustodianError> {
    let custodians = plan.new.len();
    let mut classes = BTreeMap::new();
    for (class, old) in &current.classes {
        let mut by_dealer = BTreeMap::new();
        for d in &plan.dealers {
            let hexes = dealt.get(d).and_then(|c| c.get(class)).ok_or_else(|| {
                CryptoError::Sharing(format!("dealer {d} committed nothing for `{class}`"))
            })?;
            by_dealer.insert(*d, points(*d, class, hexes)?);
        }
        classes.insert(
            class.clone(),
            reshared_class(old, plan, &by_dealer, custodians)?,
        );
    }
    Ok(GroupPublic::reshared(
        plan.new_threshold,
        custodians,
        current.epoch,
        set,
        classes,
    )?)
}

/// New custodian `to`'s shares of set `set`: every dealer's sub-shares checked against its
/// commitments and its public share in `current`, summed, and checked against the new
/// group. Refuses (naming the dealer) anything that does not add up.
pub fn combine(
    to: u32,
    plan: &Plan,
    current: &GroupPublic,
    dealt: &BTreeMap<u32, Commitments>,
    received: &[SubShare],
    set: u32,
) -> Result<(Vec<KeyShare>, GroupPublic), CustodianError> {
    let next = next_group(current, plan, dealt, set)?;
    let mut shares = Vec::with_capacity(current.classes.len());
    for class in current.classes.keys() {
        let mut subs = Vec::with_capacity(plan.dealers.len());
        for d in &plan.dealers {
            let s = received
                .iter()
                .find(|s| s.from == *d && s.class == *class)
                .ok_or_else(|| {
                    CryptoError::Sharing(format!(
                        "custodian {to} has no sub-share of `{class}` from dealer {d}"
                    ))
                })?;
            let hexes = dealt.get(d).and_then(|c| c.get(class)).ok_or_else(|| {
                CryptoError::Sharing(format!("dealer {d} committed nothing for `{class}`"))
            })?;
            let commitments = points(*d, class, hexes)?;
            ribat_crypto::reshare::verify_subshare(
                s,
                &commitments,
                current.public_share(class, *d)?,
                plan,
            )?;
            subs.push(s.clone());
        }
        let share = combine_subshares(to, class, plan, &subs)?;
        if share.public() != *next.public_share(class, to)? {
            return Err(CryptoError::Sharing(format!(
                "custodian {to}'s new share of `{class}` does not match the new group"
            ))
            .into());
        }
        shares.push(share);
    }
    Ok((shares, next))
}

/// A key rotation's contribution from this custodian: its random part of a new key for
/// every class it holds, shared to `custodians` with `threshold` ([`ribat_crypto::dkg`]),
/// in a dealing's shape (its commitments go to the log, its sub-shares to each custodian).
pub fn contribute(
    keys: &CustodianKeys,
    custodians: &[u32],
    threshold: usize,
) -> Result<Dealing, CustodianError> {
    let mut parts = Vec::with_capacity(keys.shares.len());
    for class in keys.shares.keys() {
        let c = ribat_crypto::dkg::contribute(keys.index, class, custodians, threshold)?;
        parts.push((c.class, c.commitments, c.subshares));
    }
    Ok(dealing_of(keys.index, parts))
}

/// The group after a rotation as custodian set `set`: `current`'s classes get new keys,
/// summed from every contributor's commitments, and `current`'s keys become the previous
/// epoch's.
pub fn rotated_group(
    current: &GroupPublic,
    contributors: &[u32],
    dealt: &BTreeMap<u32, Commitments>,
    set: u32,
) -> Result<GroupPublic, CustodianError> {
    let mut classes = BTreeMap::new();
    for class in current.classes.keys() {
        let mut by = BTreeMap::new();
        for d in contributors {
            let hexes = dealt.get(d).and_then(|c| c.get(class)).ok_or_else(|| {
                CryptoError::Sharing(format!("contributor {d} committed nothing for `{class}`"))
            })?;
            by.insert(*d, points(*d, class, hexes)?);
        }
        classes.insert(
            class.clone(),
            ribat_crypto::dkg::new_class(&by, current.threshold, current.custodians)?,
        );
    }
    let mut g = current.rotated(classes)?;
    g.set = set;
    Ok(g)
}

/// Custodian `to`'s shares of the new epoch: one sub-share of each class from every
/// contributor, each checked against that contributor's committed commitments (a bad one
/// is refused and its sender named), summed, and checked against the rotated group.
pub fn combine_rotation(
    to: u32,
    current: &GroupPublic,
    contributors: &[u32],
    dealt: &BTreeMap<u32, Commitments>,
    received: &[SubShare],
    set: u32,
) -> Result<(Vec<KeyShare>, GroupPublic), CustodianError> {
    let next = rotated_group(current, contributors, dealt, set)?;
    let ids: Vec<u32> = (1..=u32::try_from(current.custodians).unwrap_or(u32::MAX)).collect();
    let mut shares = Vec::with_capacity(current.classes.len());
    for class in current.classes.keys() {
        let mut subs = Vec::with_capacity(contributors.len());
        for d in contributors {
            let s = received
                .iter()
                .find(|s| s.from == *d && s.class == *class && s.to == to)
                .ok_or_else(|| {
                    CryptoError::Sharing(format!(
                        "custodian {to} has no sub-share of `{class}` from contributor {d}"
                    ))
                })?;
            let hexes = dealt.get(d).and_then(|c| c.get(class)).ok_or_else(|| {
                CryptoError::Sharing(format!("contributor {d} committed nothing for `{class}`"))
            })?;
            ribat_crypto::dkg::verify_contribution(
                s,
                &points(*d, class, hexes)?,
                &ids,
                current.threshold,
            )?;
            subs.push(s.clone());
        }
        let share = ribat_crypto::dkg::combine_contributions(to, class, contributors, &subs)?;
        if share.public() != *next.public_share(class, to)? {
            return Err(CryptoError::Sharing(format!(
                "custodian {to}'s new share of `{class}` does not match the rotated group"
            ))
            .into());
        }
        shares.push(share);
    }
    Ok((shares, next))
}
