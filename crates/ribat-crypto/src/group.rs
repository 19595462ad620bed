//! The public group file: what the ceremony publishes and every writer and combiner reads.
//!
//! JSON, format `ribat-group/v1`:
//!
//! ```json
//! { "format": "ribat-group/v1", "threshold": 2, "custodians": 3, "epoch": 1,
//!   "classes": { "identity": { "group_key": "<hex Y_c>",
//!                              "commitments": ["<hex C_0>", "<hex C_1>"],
//!                              "public_shares": ["<hex Y_c1>", "<hex Y_c2>", "<hex Y_c3>"] } } }
//! ```
//!
//! Only public values. Loading recomputes `Y_c` and every `Y_{c,i}` from the commitments
//! and refuses a file whose published values disagree with them.
//!
//! After a resharing ([`crate::reshare`]) the file also says `"set": N`, the number of the
//! custodian set it describes (absent means 1, the ceremony's): the group keys stay, the
//! commitments and public shares are the new set's.
//!
//! While a key rotation re-seals the records of the previous epoch, the file also holds
//! that epoch's keys under `"previous": { "epoch": 1, "classes": { … } }`: new records are
//! sealed to `epoch`'s keys, records not yet re-sealed are still opened with the previous
//! ones. Once no record is left under the previous epoch, it is dropped.

use crate::point::{decode_point, encode_point};
use crate::shamir::{ClassDealing, check_threshold, public_share};
use crate::{CryptoError, Result};
use curve25519_dalek::ristretto::RistrettoPoint;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format tag of version 1.
pub const GROUP_FORMAT: &str = "ribat-group/v1";

/// Public keys of one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassPublic {
    /// `Y_c`.
    pub group_key: RistrettoPoint,
    /// Feldman commitments `C_0..C_{t-1}`.
    pub commitments: Vec<RistrettoPoint>,
    /// `Y_{c,i}` at position `i-1`.
    pub public_shares: Vec<RistrettoPoint>,
}

/// The whole public group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPublic {
    /// `t`.
    pub threshold: usize,
    /// `n`.
    pub custodians: usize,
    /// Key epoch; bound into every DEK and AAD.
    pub epoch: u32,
    /// The custodian set these shares belong to: 1 from the ceremony, one more at each
    /// resharing (the class keys, and so the records, do not change with it).
    pub set: u32,
    /// Per class.
    pub classes: BTreeMap<String, ClassPublic>,
    /// The epoch being rotated away from, while records sealed under it remain.
    pub previous: Option<PreviousEpoch>,
}

/// The keys of the epoch a rotation is moving records away from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousEpoch {
    /// Its number, below the group's.
    pub epoch: u32,
    /// Its classes' keys (same threshold and custodians as the group's).
    pub classes: BTreeMap<String, ClassPublic>,
}

impl GroupPublic {
    /// Builds the public view of a ceremony's dealings.
    pub fn from_dealings(
        threshold: usize,
        custodians: usize,
        epoch: u32,
        dealings: &[ClassDealing],
    ) -> Result<Self> {
        let mut classes = BTreeMap::new();
        for d in dealings {
            let public_shares = d.shares.iter().map(|s| s.public()).collect();
            classes.insert(
                d.class.clone(),
                ClassPublic {
                    group_key: d.group_key(),
                    commitments: d.commitments.clone(),
                    public_shares,
                },
            );
        }
        let g = Self {
            threshold,
            custodians,
            epoch,
            set: 1,
            classes,
            previous: None,
        };
        g.check()?;
        Ok(g)
    }

    /// The group of custodian set `set` (`threshold` of `custodians`), whose classes were
    /// reshared ([`crate::reshare::reshared_class`]); checked like a loaded file.
    pub fn reshared(
        threshold: usize,
        custodians: usize,
        epoch: u32,
        set: u32,
        classes: BTreeMap<String, ClassPublic>,
    ) -> Result<Self> {
        let g = Self {
            threshold,
            custodians,
            epoch,
            set,
            classes,
            previous: None,
        };
        g.check()?;
        Ok(g)
    }

    /// The group of the next epoch, whose classes' keys are `classes` (made by
    /// [`crate::dkg`]): this epoch's keys become the previous ones. Refused while a
    /// rotation is unfinished, and when `classes` do not name the same classes.
    pub fn rotated(&self, classes: BTreeMap<String, ClassPublic>) -> Result<Self> {
        if let Some(p) = &self.previous {
            return Err(malformed(format!(
                "a rotation from epoch {} is unfinished; finish it before starting another",
                p.epoch
            )));
        }
        if !classes.keys().eq(self.classes.keys()) {
            return Err(malformed("a rotation must give new keys to every class"));
        }
        let g = Self {
            threshold: self.threshold,
            custodians: self.custodians,
            epoch: self
                .epoch
                .checked_add(1)
                .ok_or_else(|| malformed("epoch overflow"))?,
            set: self.set,
            classes,
            previous: Some(PreviousEpoch {
                epoch: self.epoch,
                classes: self.classes.clone(),
            }),
        };
        g.check()?;
        Ok(g)
    }

    /// The same group without the previous epoch's keys (no record is sealed under them
    /// any more).
    pub fn without_previous(&self) -> Self {
        Self {
            previous: None,
            ..self.clone()
        }
    }

    /// The epochs whose records this group opens: the previous one first, if any.
    pub fn epochs(&self) -> Vec<u32> {
        self.previous
            .iter()
            .map(|p| p.epoch)
            .chain([self.epoch])
            .collect()
    }

    /// The keys of a class in `epoch` (this one or the previous), or an error saying
    /// which epochs this group knows.
    pub fn class_at(&self, class: &str, epoch: u32) -> Result<&ClassPublic> {
        if epoch == self.epoch {
            return self.class(class);
        }
        match &self.previous {
            Some(p) if p.epoch == epoch => {
                p.classes.get(class).ok_or_else(|| CryptoError::Malformed {
                    what: "class name",
                    reason: format!("no class `{class}` in epoch {epoch}"),
                })
            }
            _ => Err(CryptoError::Malformed {
                what: "key epoch",
                reason: format!(
                    "epoch {epoch} is not among the epochs of the group file ({:?})",
                    self.epochs()
                ),
            }),
        }
    }

    /// `Y_{c,i}` of custodian `i` in `epoch`.
    pub fn public_share_at(
        &self,
        class: &str,
        epoch: u32,
        custodian: u32,
    ) -> Result<&RistrettoPoint> {
        let c = self.class_at(class, epoch)?;
        (custodian as usize)
            .checked_sub(1)
            .and_then(|i| c.public_shares.get(i))
            .ok_or_else(|| CryptoError::Malformed {
                what: "custodian index",
                reason: format!("no custodian {custodian} in a group of {}", self.custodians),
            })
    }

    /// The keys of a class, or an error naming the classes that exist.
    pub fn class(&self, class: &str) -> Result<&ClassPublic> {
        self.classes
            .get(class)
            .ok_or_else(|| CryptoError::Malformed {
                what: "class name",
                reason: format!(
                    "no class `{class}` in the group file (known: {})",
                    self.classes.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })
    }

    /// `Y_{c,i}` of custodian `i`.
    pub fn public_share(&self, class: &str, custodian: u32) -> Result<&RistrettoPoint> {
        self.public_share_at(class, self.epoch, custodian)
    }

    fn check(&self) -> Result<()> {
        check_threshold(self.threshold, self.custodians)?;
        if self.set == 0 {
            return Err(malformed("custodian set 0 (sets count from 1)"));
        }
        if self.classes.is_empty() {
            return Err(malformed("no classes"));
        }
        if let Some(p) = &self.previous {
            if p.epoch >= self.epoch {
                return Err(malformed(format!(
                    "previous epoch {} is not below epoch {}",
                    p.epoch, self.epoch
                )));
            }
            if !p.classes.keys().eq(self.classes.keys()) {
                return Err(malformed(
                    "the previous epoch's classes differ from this epoch's",
                ));
            }
            self.check_classes(&p.classes)?;
        }
        self.check_classes(&self.classes)
    }

    fn check_classes(&self, classes: &BTreeMap<String, ClassPublic>) -> Result<()> {
        for (name, c) in classes {
            if c.commitments.len() != self.threshold {
                return Err(malformed(format!(
                    "class `{name}` has {} commitments for threshold {}",
                    c.commitments.len(),
                    self.threshold
                )));
            }
            if c.commitments.first() != Some(&c.group_key) {
                return Err(malformed(format!(
                    "class `{name}`: group key is not the first commitment"
                )));
            }
            if c.public_shares.len() != self.custodians {
                return Err(malformed(format!(
                    "class `{name}` has {} public shares for {} custodians",
                    c.public_shares.len(),
                    self.custodians
                )));
            }
            for (pos, y) in c.public_shares.iter().enumerate() {
                let i = u32::try_from(pos + 1).map_err(|_| malformed("index"))?;
                if public_share(&c.commitments, i)? != *y {
                    return Err(malformed(format!(
                        "class `{name}`: public share {i} does not follow from the commitments"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Serialises to the documented JSON.
    pub fn to_json(&self) -> Result<String> {
        let file = GroupFile {
            format: GROUP_FORMAT.into(),
            threshold: self.threshold,
            custodians: self.custodians,
            epoch: self.epoch,
            set: self.set,
            classes: classes_file(&self.classes),
            previous: self.previous.as_ref().map(|p| PreviousFile {
                epoch: p.epoch,
                classes: classes_file(&p.classes),
            }),
        };
        serde_json::to_string_pretty(&file).map_err(|e| malformed(e.to_string()))
    }

    /// Parses and checks the documented JSON.
    pub fn from_json(text: &str) -> Result<Self> {
        let f: GroupFile = serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        if f.format != GROUP_FORMAT {
            return Err(malformed(format!(
                "format is `{}`, expected `{GROUP_FORMAT}`",
                f.format
            )));
        }
        let g = Self {
            threshold: f.threshold,
            custodians: f.custodians,
            epoch: f.epoch,
            set: f.set,
            classes: classes_from_file(f.classes)?,
            previous: f
                .previous
                .map(|p| {
                    Ok::<_, CryptoError>(PreviousEpoch {
                        epoch: p.epoch,
                        classes: classes_from_file(p.classes)?,
                    })
                })
                .transpose()?,
        };
        g.check()?;
        Ok(g)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupFile {
    format: String,
    threshold: usize,
    custodians: usize,
    epoch: u32,
    #[serde(default = "first_set", skip_serializing_if = "is_first_set")]
    set: u32,
    classes: BTreeMap<String, ClassFile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous: Option<PreviousFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviousFile {
    epoch: u32,
    classes: BTreeMap<String, ClassFile>,
}

fn classes_file(classes: &BTreeMap<String, ClassPublic>) -> BTreeMap<String, ClassFile> {
    classes
        .iter()
        .map(|(k, c)| {
            (
                k.clone(),
                ClassFile {
                    group_key: hex32(&c.group_key),
                    commitments: c.commitments.iter().map(hex32).collect(),
                    public_shares: c.public_shares.iter().map(hex32).collect(),
                },
            )
        })
        .collect()
}

fn classes_from_file(
    classes: BTreeMap<String, ClassFile>,
) -> Result<BTreeMap<String, ClassPublic>> {
    let points = |hs: &[String]| hs.iter().map(|h| unhex_point(h)).collect::<Result<_>>();
    classes
        .into_iter()
        .map(|(k, c)| {
            Ok((
                k,
                ClassPublic {
                    group_key: unhex_point(&c.group_key)?,
                    commitments: points(&c.commitments)?,
                    public_shares: points(&c.public_shares)?,
                },
            ))
        })
        .collect()
}

fn first_set() -> u32 {
    1
}

fn is_first_set(set: &u32) -> bool {
    *set == 1
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassFile {
    group_key: String,
    commitments: Vec<String>,
    public_shares: Vec<String>,
}

fn malformed(reason: impl Into<String>) -> CryptoError {
    CryptoError::Malformed {
        what: "group file",
        reason: reason.into(),
    }
}

fn hex32(p: &RistrettoPoint) -> String {
    hex::encode(encode_point(p))
}

fn unhex_point(h: &str) -> Result<RistrettoPoint> {
    let bytes = base16(h).ok_or_else(|| malformed(format!("`{h}` is not 64 hex digits")))?;
    decode_point(&bytes, "group file point")
}

fn base16(h: &str) -> Option<Vec<u8>> {
    if h.len() != 64 {
        return None;
    }
    hex::decode(h).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shamir::deal;

    #[test]
    fn json_round_trip_and_tamper_refusal() {
        let d = vec![
            deal("identity", 2, 3).unwrap(),
            deal("financial", 2, 3).unwrap(),
        ];
        let g = GroupPublic::from_dealings(2, 3, 1, &d).unwrap();
        let text = g.to_json().unwrap();
        assert_eq!(GroupPublic::from_json(&text).unwrap(), g);

        // Swap in another dealing's public share: refused.
        let mut forged = g.clone();
        forged.classes.get_mut("identity").unwrap().public_shares[1] = d[1].shares[1].public();
        let err = GroupPublic::from_json(&forged.to_json().unwrap()).unwrap_err();
        assert!(err.to_string().contains("public share 2"), "{err}");
        assert!(GroupPublic::from_json("{}").is_err());
    }

    #[test]
    fn a_ceremony_file_says_no_set_and_a_reshared_one_keeps_its_number() {
        let d = vec![deal("identity", 2, 3).unwrap()];
        let g = GroupPublic::from_dealings(2, 3, 1, &d).unwrap();
        assert_eq!(g.set, 1);
        assert!(!g.to_json().unwrap().contains("\"set\""));
        let later = GroupPublic::reshared(2, 3, 1, 4, g.classes.clone()).unwrap();
        let text = later.to_json().unwrap();
        assert!(text.contains("\"set\": 4"), "{text}");
        assert_eq!(GroupPublic::from_json(&text).unwrap().set, 4);
        let zero = text.replace("\"set\": 4", "\"set\": 0");
        let err = GroupPublic::from_json(&zero).unwrap_err();
        assert!(err.to_string().contains("set 0"), "{err}");
    }

    #[test]
    fn a_rotated_group_keeps_the_previous_epoch_until_it_is_finished() {
        let old = vec![deal("identity", 2, 3).unwrap()];
        let g = GroupPublic::from_dealings(2, 3, 1, &old).unwrap();
        assert!(!g.to_json().unwrap().contains("previous"));
        let new = GroupPublic::from_dealings(2, 3, 1, &[deal("identity", 2, 3).unwrap()])
            .unwrap()
            .classes;
        let r = g.rotated(new.clone()).unwrap();
        assert_eq!((r.epoch, r.epochs()), (2, vec![1, 2]));
        assert_eq!(
            r.class_at("identity", 1).unwrap(),
            g.class("identity").unwrap()
        );
        assert_eq!(r.class_at("identity", 2).unwrap(), &new["identity"]);
        assert_eq!(
            r.public_share_at("identity", 1, 2).unwrap(),
            g.public_share("identity", 2).unwrap()
        );
        let err = r.class_at("identity", 3).unwrap_err().to_string();
        assert!(err.contains("epoch 3") && err.contains("[1, 2]"), "{err}");
        let text = r.to_json().unwrap();
        assert_eq!(GroupPublic::from_json(&text).unwrap(), r);
        // A second rotation waits for the first to finish.
        let err = r.rotated(new.clone()).unwrap_err().to_string();
        assert!(err.contains("unfinished"), "{err}");
        let done = r.without_previous();
        assert_eq!((done.epoch, done.epochs()), (2, vec![2]));
        assert!(done.class_at("identity", 1).is_err());
        assert_eq!(done.rotated(g.classes.clone()).unwrap().epoch, 3);
        // A previous epoch not below the current one, or with other classes, is refused.
        let bad = text.replace("\"epoch\": 1", "\"epoch\": 2");
        let err = GroupPublic::from_json(&bad).unwrap_err().to_string();
        assert!(err.contains("not below"), "{err}");
        let mut other = BTreeMap::new();
        other.insert("financial".to_owned(), new["identity"].clone());
        assert!(g.rotated(other).is_err());
    }
}
