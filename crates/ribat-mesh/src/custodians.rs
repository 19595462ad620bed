//! Which node holds which custodian, and the resharing that changes it.
//!
//! The ceremony's custodians are set 1. Two administrators start a resharing to set
//! `n + 1` ([`ReshareStatement`]: the new holders, index by index, the new threshold, and
//! the `t` custodians of set `n` that deal); each dealer's node logs its public commitments
//! ([`DealtStatement`], signed with its node key) and sends each new custodian its
//! sub-shares directly, over mTLS; each new custodian's node logs that it checked and
//! sealed its new shares ([`ReceivedStatement`]). When every new custodian has, the new set
//! is in force on every node at the same index of the log: the new custodians promote
//! their shares, the old ones erase theirs, and readers check answers against the group
//! that the committed commitments give (the group keys never change, so no record is
//! re-sealed). Until then the old set serves: a resharing that stalls (a dealer lost, a new
//! node that never answers) costs nothing but its own time, and two administrators can
//! start another to the same set number, which replaces it.
//!
//! No cryptography here (the state machine applies entries without it): the commitments
//! are kept as the dealers signed them, and every node that uses them checks them
//! (`ribat_custodian::reshare` in the node: the group keys must come out unchanged). A
//! new custodian logs `ReceivedStatement` only after checking every sub-share against the
//! committed commitments, so a set in force is one whose every share was checked.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One dealer's public commitments, per class (hex points, as it signed them).
pub type Commitments = BTreeMap<String, Vec<String>>;

/// The custodian set in force: who holds which index, and how it was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustodianSet {
    /// 1 for the ceremony's, one more at each resharing.
    pub number: u32,
    /// Custodians a read needs.
    pub threshold: usize,
    /// The node that holds each custodian index (empty for a state written before sets
    /// were replicated: `mesh.json`'s peers say it then).
    pub holders: BTreeMap<u32, String>,
    /// The custodians of the previous set that dealt it (none for set 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dealers: Vec<u32>,
    /// Their commitments, from which every node computes this set's public shares.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dealt: BTreeMap<u32, Commitments>,
    /// The witness key each new custodian said it cosigns with (signed by its node):
    /// gateways pin it for a custodian the ceremony did not name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub witnesses: BTreeMap<u32, String>,
    /// The class keys' epoch: 1 from the ceremony, one more at each rotation.
    #[serde(default = "first_epoch", skip_serializing_if = "is_first_epoch")]
    pub epoch: u32,
    /// Whether this set was made by a key rotation (its dealers' commitments are then
    /// contributions to new class keys, not redealt shares).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rotated: bool,
    /// While records are still sealed under the previous epoch: the node re-sealing them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resealing: Option<Resealing>,
}

fn first_epoch() -> u32 {
    1
}

fn is_first_epoch(e: &u32) -> bool {
    *e == 1
}

/// A rotation's re-sealing job, from the set's entry into force until the job node says no
/// record is left under the previous epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resealing {
    /// The epoch rotated away from.
    pub from_epoch: u32,
    /// The node that runs the job.
    pub job: String,
}

impl CustodianSet {
    /// The ceremony's set.
    pub fn first(threshold: usize, holders: BTreeMap<u32, String>) -> Self {
        Self {
            number: 1,
            threshold,
            holders,
            dealers: Vec::new(),
            dealt: BTreeMap::new(),
            witnesses: BTreeMap::new(),
            epoch: 1,
            rotated: false,
            resealing: None,
        }
    }

    /// The index `node` holds in this set, if any.
    pub fn index_of(&self, node: &str) -> Option<u32> {
        self.holders
            .iter()
            .find(|(_, n)| n.as_str() == node)
            .map(|(i, _)| *i)
    }
}

impl Default for CustodianSet {
    fn default() -> Self {
        Self::first(0, BTreeMap::new())
    }
}

/// `1=node-1, 2=node-4, 3=node-3`: who holds which custodian, in one line.
pub fn holders_line(holders: &BTreeMap<u32, String>) -> String {
    holders
        .iter()
        .map(|(i, n)| format!("{i}={n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What two administrators sign to move the custodians to a new set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReshareStatement {
    /// The set it makes: the one in force plus one.
    pub set: u32,
    /// The node that will hold each index, `1..=n` exactly.
    pub holders: BTreeMap<u32, String>,
    /// Custodians a read will need.
    pub threshold: usize,
    /// Exactly the current threshold of custodians of the set in force, which deal.
    pub dealers: Vec<u32>,
    /// Why (an incident, a host replaced).
    pub reason: String,
    /// A key rotation rather than a resharing: the same holders and threshold, every
    /// holder contributing to new class keys, then `job` re-seals every record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate: Option<RotateSpec>,
}

/// What makes a statement a key rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotateSpec {
    /// The node (a member running a gateway) that re-seals the records.
    pub job: String,
}

/// The job node logs that no record is left under the previous epoch: every custodian then
/// erases that epoch's shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResealedStatement {
    /// The set in force.
    pub set: u32,
    /// The epoch whose records are all re-sealed (the previous one).
    pub from_epoch: u32,
}

/// A dealer's node logs its commitments for the resharing in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DealtStatement {
    /// The set being made.
    pub set: u32,
    /// The dealer's index in the set in force.
    pub dealer: u32,
    /// Per class, `D_{i,0..t'-1}`.
    pub commitments: Commitments,
}

/// A new custodian's node logs that it checked every sub-share and sealed its new shares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedStatement {
    /// The set being made.
    pub set: u32,
    /// Its index in that set.
    pub custodian: u32,
    /// The key its witness cosigns gateways' checkpoints with (a C2SP verifier key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<String>,
}

/// A resharing under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resharing {
    /// What two administrators signed.
    pub statement: ReshareStatement,
    /// The administrators.
    pub by: BTreeSet<String>,
    /// Commitments logged so far, by dealer.
    pub dealt: BTreeMap<u32, Commitments>,
    /// New custodians that have their shares sealed.
    pub received: BTreeSet<u32>,
    /// Their witness keys, as they said them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub witnesses: BTreeMap<u32, String>,
}

/// The custodian set in force and the resharing under way, if any: a pure state machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Custodians {
    /// In force.
    pub set: CustodianSet,
    /// Under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resharing: Option<Resharing>,
}

/// What a resharing entry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// A resharing to this set is under way (replacing any unfinished one).
    Started(u32),
    /// One more dealer's commitments.
    Dealt(u32),
    /// One more new custodian ready; the set is not in force yet.
    Received(u32),
    /// The new set is in force.
    InForce(u32),
    /// Every record is re-sealed under the set's epoch; the previous epoch's shares go.
    Resealed(u32),
}

impl Custodians {
    /// The ceremony's set.
    pub fn first(threshold: usize, holders: BTreeMap<u32, String>) -> Self {
        Self {
            set: CustodianSet::first(threshold, holders),
            resharing: None,
        }
    }

    /// Starts a resharing whose statement two administrators (`by`) signed; `is_member`
    /// says who is in the mesh. Refuses a statement that cannot make a sound set.
    pub fn start(
        &mut self,
        s: &ReshareStatement,
        by: BTreeSet<String>,
        is_member: impl Fn(&str) -> bool,
    ) -> Result<Step, String> {
        if s.set != self.set.number + 1 {
            return Err(format!(
                "it makes custodian set {}, but set {} is in force: the next is {}",
                s.set,
                self.set.number,
                self.set.number + 1
            ));
        }
        if s.reason.trim().is_empty() {
            return Err("a resharing says why".into());
        }
        if self.set.holders.is_empty() {
            return Err(
                "this mesh's state names no custodian holders (it predates replicated custodian sets): make the mesh again with `ribat mesh init`".into(),
            );
        }
        let n = s.holders.len();
        if s.holders.keys().copied().ne(1..=n as u32) {
            return Err(format!(
                "the new custodians must be numbered 1 to {n}, are {:?}",
                s.holders.keys().collect::<Vec<_>>()
            ));
        }
        if s.threshold < 2 || s.threshold > n {
            return Err(format!(
                "threshold {} for {n} custodians: it must be at least 2 and at most {n}",
                s.threshold
            ));
        }
        let mut nodes = BTreeSet::new();
        for (i, node) in &s.holders {
            if !is_member(node) {
                return Err(format!("custodian {i}'s node `{node}` is not a member"));
            }
            if !nodes.insert(node.as_str()) {
                return Err(format!(
                    "`{node}` would hold two custodians: a node holds at most one"
                ));
            }
        }
        if let Some(r) = &self.set.resealing {
            return Err(format!(
                "records are still being re-sealed from epoch {} (by {}): finish the rotation first",
                r.from_epoch, r.job
            ));
        }
        let dealers: BTreeSet<u32> = s.dealers.iter().copied().collect();
        if let Some(rot) = &s.rotate {
            if s.holders != self.set.holders || s.threshold != self.set.threshold {
                return Err(
                    "a key rotation keeps the holders and the threshold of the set in force".into(),
                );
            }
            if dealers.iter().copied().ne(self.set.holders.keys().copied())
                || dealers.len() != s.dealers.len()
            {
                return Err("in a key rotation every custodian contributes".into());
            }
            if !is_member(&rot.job) {
                return Err(format!("the job's node `{}` is not a member", rot.job));
            }
        } else if dealers.len() != s.dealers.len() || dealers.len() != self.set.threshold {
            return Err(format!(
                "{} distinct dealers where the set in force needs exactly {}",
                dealers.len(),
                self.set.threshold
            ));
        }
        for d in &dealers {
            match self.set.holders.get(d) {
                Some(node) if is_member(node) => {}
                Some(node) => {
                    return Err(format!("dealer {d}'s node `{node}` is no longer a member"));
                }
                None => {
                    return Err(format!(
                        "there is no custodian {d} in set {}",
                        self.set.number
                    ));
                }
            }
        }
        self.resharing = Some(Resharing {
            statement: s.clone(),
            by,
            dealt: BTreeMap::new(),
            received: BTreeSet::new(),
            witnesses: BTreeMap::new(),
        });
        Ok(Step::Started(s.set))
    }

    /// Dealer `d.dealer`'s commitments, logged by `node` (whose signature the caller
    /// checked): the node must hold that custodian in the set in force.
    pub fn dealt(&mut self, d: &DealtStatement, node: &str) -> Result<Step, String> {
        let holder = self.set.holders.get(&d.dealer).cloned();
        let r = self.under_way(d.set)?;
        if !r.statement.dealers.contains(&d.dealer) {
            return Err(format!(
                "custodian {} is not a dealer of set {}",
                d.dealer, d.set
            ));
        }
        if holder.as_deref() != Some(node) {
            return Err(format!(
                "`{node}` does not hold custodian {} in the set in force",
                d.dealer
            ));
        }
        if r.dealt.contains_key(&d.dealer) {
            return Err(format!("dealer {} already dealt set {}", d.dealer, d.set));
        }
        let t = r.statement.threshold;
        if d.commitments.is_empty() || d.commitments.values().any(|c| c.len() != t) {
            return Err(format!(
                "dealer {} must commit to {t} coefficients for every class",
                d.dealer
            ));
        }
        r.dealt.insert(d.dealer, d.commitments.clone());
        Ok(Step::Dealt(d.dealer))
    }

    /// New custodian `c.custodian` is ready, says `node` (whose signature the caller
    /// checked): the node must be the one the resharing named, and every dealer must have
    /// dealt. When it is the last, the new set is in force.
    pub fn received(&mut self, c: &ReceivedStatement, node: &str) -> Result<Step, String> {
        let r = self.under_way(c.set)?;
        match r.statement.holders.get(&c.custodian) {
            Some(h) if h == node => {}
            _ => {
                return Err(format!(
                    "`{node}` is not custodian {} of set {}",
                    c.custodian, c.set
                ));
            }
        }
        if r.dealt.len() != r.statement.dealers.len() {
            return Err(format!(
                "custodian {} cannot hold its shares before every dealer dealt",
                c.custodian
            ));
        }
        if !r.received.insert(c.custodian) {
            return Err(format!(
                "custodian {} of set {} is ready already",
                c.custodian, c.set
            ));
        }
        if let Some(w) = &c.witness {
            r.witnesses.insert(c.custodian, w.clone());
        }
        if r.received.len() < r.statement.holders.len() {
            return Ok(Step::Received(c.custodian));
        }
        let done = self.resharing.take().ok_or("no resharing under way")?;
        let (epoch, resealing) = match &done.statement.rotate {
            Some(r) => (
                self.set.epoch + 1,
                Some(Resealing {
                    from_epoch: self.set.epoch,
                    job: r.job.clone(),
                }),
            ),
            None => (self.set.epoch, None),
        };
        self.set = CustodianSet {
            number: done.statement.set,
            threshold: done.statement.threshold,
            holders: done.statement.holders,
            dealers: done.statement.dealers,
            dealt: done.dealt,
            witnesses: done.witnesses,
            epoch,
            rotated: done.statement.rotate.is_some(),
            resealing,
        };
        Ok(Step::InForce(self.set.number))
    }

    /// The job's node says every record is re-sealed (its signature checked by the
    /// caller): only the job's node, only for the set and epoch under way.
    pub fn resealed(&mut self, r: &ResealedStatement, node: &str) -> Result<Step, String> {
        match &self.set.resealing {
            Some(j) if r.set == self.set.number && r.from_epoch == j.from_epoch => {
                if j.job != node {
                    return Err(format!(
                        "`{node}` is not the re-sealing job's node ({})",
                        j.job
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "no re-sealing from epoch {} is under way in set {}",
                    r.from_epoch, r.set
                ));
            }
        }
        self.set.resealing = None;
        Ok(Step::Resealed(self.set.epoch))
    }

    fn under_way(&mut self, set: u32) -> Result<&mut Resharing, String> {
        match self.resharing.as_mut() {
            Some(r) if r.statement.set == set => Ok(r),
            Some(r) => Err(format!(
                "the resharing under way makes set {}, not {set}",
                r.statement.set
            )),
            None => Err(format!("no resharing to set {set} is under way")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holders(names: &[&str]) -> BTreeMap<u32, String> {
        names
            .iter()
            .enumerate()
            .map(|(i, n)| (i as u32 + 1, (*n).to_owned()))
            .collect()
    }

    fn statement(set: u32, names: &[&str], t: usize, dealers: &[u32]) -> ReshareStatement {
        ReshareStatement {
            set,
            holders: holders(names),
            threshold: t,
            dealers: dealers.to_vec(),
            reason: "node-2's host was taken".into(),
            rotate: None,
        }
    }

    fn commitments(t: usize) -> Commitments {
        BTreeMap::from([("identity".to_owned(), vec!["00".to_owned(); t])])
    }

    const MEMBERS: [&str; 4] = ["node-1", "node-2", "node-3", "node-4"];

    fn member(n: &str) -> bool {
        MEMBERS.contains(&n)
    }

    #[test]
    fn a_new_set_is_in_force_only_when_every_dealer_dealt_and_every_new_custodian_is_ready() {
        let mut c = Custodians::first(2, holders(&["node-1", "node-2", "node-3"]));
        let s = statement(2, &["node-1", "node-4", "node-3"], 2, &[1, 3]);
        assert_eq!(c.start(&s, BTreeSet::new(), member), Ok(Step::Started(2)));
        let ready = |i| ReceivedStatement {
            set: 2,
            custodian: i,
            witness: None,
        };
        assert!(c.received(&ready(1), "node-1").is_err(), "before dealing");
        for (d, node) in [(1, "node-1"), (3, "node-3")] {
            let dealt = DealtStatement {
                set: 2,
                dealer: d,
                commitments: commitments(2),
            };
            assert_eq!(c.dealt(&dealt, node), Ok(Step::Dealt(d)));
            assert!(c.dealt(&dealt, node).is_err(), "twice");
        }
        assert_eq!(c.received(&ready(1), "node-1"), Ok(Step::Received(1)));
        assert!(c.received(&ready(1), "node-1").is_err(), "twice");
        assert_eq!(c.received(&ready(2), "node-4"), Ok(Step::Received(2)));
        assert_eq!(
            c.set.number, 1,
            "the old set serves until the last is ready"
        );
        assert_eq!(c.received(&ready(3), "node-3"), Ok(Step::InForce(2)));
        assert_eq!(c.set.number, 2);
        assert_eq!(c.set.index_of("node-4"), Some(2));
        assert_eq!(c.set.index_of("node-2"), None);
        assert_eq!(c.set.dealt.len(), 2);
        assert!(c.resharing.is_none());
    }

    #[test]
    fn only_the_named_nodes_deal_and_receive() {
        let mut c = Custodians::first(2, holders(&["node-1", "node-2", "node-3"]));
        c.start(
            &statement(2, &["node-1", "node-4", "node-3"], 2, &[1, 3]),
            BTreeSet::new(),
            member,
        )
        .unwrap();
        let dealt = |dealer| DealtStatement {
            set: 2,
            dealer,
            commitments: commitments(2),
        };
        // node-2 is not a dealer, and nobody deals in another's name.
        assert!(
            c.dealt(&dealt(2), "node-2")
                .unwrap_err()
                .contains("not a dealer")
        );
        assert!(
            c.dealt(&dealt(1), "node-3")
                .unwrap_err()
                .contains("does not hold")
        );
        // Commitments for another threshold, or for another set.
        let short = DealtStatement {
            commitments: commitments(1),
            ..dealt(1)
        };
        assert!(
            c.dealt(&short, "node-1")
                .unwrap_err()
                .contains("2 coefficients")
        );
        let other = DealtStatement { set: 3, ..dealt(1) };
        assert!(
            c.dealt(&other, "node-1")
                .unwrap_err()
                .contains("makes set 2")
        );
        c.dealt(&dealt(1), "node-1").unwrap();
        c.dealt(&dealt(3), "node-3").unwrap();
        // The removed node cannot say it is the new custodian 2.
        let ready = ReceivedStatement {
            set: 2,
            custodian: 2,
            witness: None,
        };
        assert!(
            c.received(&ready, "node-2")
                .unwrap_err()
                .contains("is not custodian 2")
        );
    }

    #[test]
    fn a_statement_that_cannot_make_a_sound_set_is_refused() {
        let c = Custodians::first(2, holders(&["node-1", "node-2", "node-3"]));
        for (s, words) in [
            (
                statement(3, &["node-1", "node-4", "node-3"], 2, &[1, 3]),
                "next is 2",
            ),
            (
                statement(2, &["node-1", "node-1", "node-3"], 2, &[1, 3]),
                "two custodians",
            ),
            (
                statement(2, &["node-1", "node-9", "node-3"], 2, &[1, 3]),
                "not a member",
            ),
            (
                statement(2, &["node-1", "node-4", "node-3"], 1, &[1, 3]),
                "at least 2",
            ),
            (
                statement(2, &["node-1", "node-4", "node-3"], 4, &[1, 3]),
                "at most 3",
            ),
            (
                statement(2, &["node-1", "node-4", "node-3"], 2, &[1]),
                "exactly 2",
            ),
            (
                statement(2, &["node-1", "node-4", "node-3"], 2, &[1, 1]),
                "exactly 2",
            ),
            (
                statement(2, &["node-1", "node-4", "node-3"], 2, &[1, 4]),
                "no custodian 4",
            ),
            (
                ReshareStatement {
                    reason: " ".into(),
                    ..statement(2, &["node-1", "node-4", "node-3"], 2, &[1, 3])
                },
                "says why",
            ),
            (
                ReshareStatement {
                    holders: BTreeMap::from([(1, "node-1".into()), (3, "node-3".into())]),
                    ..statement(2, &["node-1", "node-4", "node-3"], 2, &[1, 3])
                },
                "numbered 1 to 2",
            ),
        ] {
            let mut c = c.clone();
            let err = c.start(&s, BTreeSet::new(), member).unwrap_err();
            assert!(err.contains(words), "{err} (wanted {words})");
            assert_eq!(
                c,
                Custodians::first(2, holders(&["node-1", "node-2", "node-3"]))
            );
        }
    }

    #[test]
    fn another_resharing_to_the_same_set_replaces_an_unfinished_one_and_two_of_three_becomes_three_of_four()
     {
        let mut c = Custodians::first(2, holders(&["node-1", "node-2", "node-3"]));
        c.start(
            &statement(2, &["node-1", "node-4", "node-3"], 2, &[1, 3]),
            BTreeSet::new(),
            member,
        )
        .unwrap();
        c.dealt(
            &DealtStatement {
                set: 2,
                dealer: 1,
                commitments: commitments(2),
            },
            "node-1",
        )
        .unwrap();
        let wider = statement(2, &["node-1", "node-2", "node-3", "node-4"], 3, &[2, 3]);
        assert_eq!(
            c.start(&wider, BTreeSet::new(), member),
            Ok(Step::Started(2))
        );
        let r = c.resharing.as_ref().unwrap();
        assert!(
            r.dealt.is_empty(),
            "the replaced resharing's dealing is void"
        );
        for (d, node) in [(2, "node-2"), (3, "node-3")] {
            let s = DealtStatement {
                set: 2,
                dealer: d,
                commitments: commitments(3),
            };
            c.dealt(&s, node).unwrap();
        }
        for (i, node) in [(1, "node-1"), (2, "node-2"), (3, "node-3"), (4, "node-4")] {
            c.received(
                &ReceivedStatement {
                    set: 2,
                    custodian: i,
                    witness: None,
                },
                node,
            )
            .unwrap();
        }
        assert_eq!(
            (c.set.number, c.set.threshold, c.set.holders.len()),
            (2, 3, 4)
        );
    }

    #[test]
    fn a_rotation_keeps_holders_every_custodian_contributes_and_only_the_job_ends_it() {
        let mut c = Custodians::first(2, holders(&["node-1", "node-2", "node-3"]));
        let rotate = |dealers: &[u32], names: &[&str]| ReshareStatement {
            rotate: Some(RotateSpec {
                job: "node-1".into(),
            }),
            ..statement(2, names, 2, dealers)
        };
        for (s, why) in [
            (
                rotate(&[1, 2], &["node-1", "node-2", "node-3"]),
                "every custodian contributes",
            ),
            (
                rotate(&[1, 2, 3], &["node-1", "node-4", "node-3"]),
                "keeps the holders",
            ),
            (
                ReshareStatement {
                    rotate: Some(RotateSpec {
                        job: "node-9".into(),
                    }),
                    ..rotate(&[1, 2, 3], &["node-1", "node-2", "node-3"])
                },
                "not a member",
            ),
        ] {
            let err = c.clone().start(&s, BTreeSet::new(), member).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
        let s = rotate(&[1, 2, 3], &["node-1", "node-2", "node-3"]);
        c.start(&s, BTreeSet::new(), member).unwrap();
        for d in 1..=3u32 {
            let node = format!("node-{d}");
            let st = DealtStatement {
                set: 2,
                dealer: d,
                commitments: commitments(2),
            };
            assert_eq!(c.dealt(&st, &node), Ok(Step::Dealt(d)));
        }
        for j in 1..=3u32 {
            let st = ReceivedStatement {
                set: 2,
                custodian: j,
                witness: None,
            };
            c.received(&st, &format!("node-{j}")).unwrap();
        }
        assert_eq!((c.set.number, c.set.epoch, c.set.rotated), (2, 2, true));
        assert_eq!(
            c.set.resealing,
            Some(Resealing {
                from_epoch: 1,
                job: "node-1".into()
            })
        );
        // No resharing (nor rotation) while records are under the previous epoch.
        let err = c
            .clone()
            .start(
                &statement(3, &["node-1", "node-2", "node-3"], 2, &[1, 2]),
                BTreeSet::new(),
                member,
            )
            .unwrap_err();
        assert!(err.contains("finish the rotation first"), "{err}");
        // Only the job's node, for this set and epoch, ends it.
        let done = ResealedStatement {
            set: 2,
            from_epoch: 1,
        };
        assert!(
            c.clone()
                .resealed(&done, "node-2")
                .unwrap_err()
                .contains("not the re-sealing job")
        );
        let wrong = ResealedStatement {
            set: 2,
            from_epoch: 2,
        };
        assert!(c.clone().resealed(&wrong, "node-1").is_err());
        assert_eq!(c.resealed(&done, "node-1"), Ok(Step::Resealed(2)));
        assert_eq!((c.set.epoch, c.set.resealing.clone()), (2, None));
        assert!(c.clone().resealed(&done, "node-1").is_err(), "once");
        c.start(
            &statement(3, &["node-1", "node-2", "node-3"], 2, &[1, 2]),
            BTreeSet::new(),
            member,
        )
        .unwrap();
    }
}
