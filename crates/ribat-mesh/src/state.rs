//! The security state every node holds, and the one function that changes it.
//!
//! `apply` is deterministic (no clock, no I/O, no randomness): two nodes that apply the same
//! entries in the same order hold the same state, byte for byte ([`SecurityState::snapshot`]).
//! An entry whose signatures do not justify it is [`Rejected`] and changes nothing; the
//! caller still counts it as applied, so every node stays at the same index.

use crate::attest::{
    AllowReleaseStatement, Allowed, AllowedSet, AttestGenesis, Attestation, Judging,
    MAX_ATTESTATION_BYTES, RetireStatement, Retired, Verdict, is_digest, judge, short,
};
use crate::command::{
    Admin, Approval, Command, ExportStatement, GrantStatement, Member, MembershipStatement,
    PolicyStatement, REVIEWED_ROLES, RecertifyStatement, Registration, ReleaseStatement,
    Restriction, RevokeStatement, Seat, kind,
};
use crate::custodians::{Custodians, Step};
use crate::sign::{PublicKey, verifies};
use ribat_detect::response::Target;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Administrators' signatures a relaxation needs.
pub const ADMINS_TO_RELAX: usize = 2;

/// Where the state starts: the bootstrap ceremony's members and administrators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The nodes.
    pub members: Vec<Member>,
    /// The security administrators.
    pub admins: Vec<Admin>,
    /// Distinct members whose signatures put a decision in force mesh-wide (`t`).
    pub threshold: usize,
    /// Where the members sit in Raft (from `mesh.json`), by name.
    pub seats: BTreeMap<String, Seat>,
    /// The certificates the ceremony issued to act in the mesh (its gateways'): granted
    /// from the start, by the ceremony.
    pub granted: Vec<Registration>,
    /// The ceremony's allowed set and the attestation interval.
    pub attestation: AttestGenesis,
    /// The node that holds each of the ceremony's custodians, by index.
    #[serde(default)]
    pub custodians: BTreeMap<u32, String>,
}

/// Who granted the ceremony's certificates.
pub const CEREMONY: &str = "ceremony";

/// A certificate in the register, and who let it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Granted {
    /// The certificate.
    pub registration: Registration,
    /// The administrators whose signatures granted it ([`CEREMONY`] for the ceremony's).
    pub by: BTreeSet<String>,
    /// The administrator who last re-certified it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recertified_by: Option<String>,
}

/// What the register says of a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Granted and not revoked: it may act.
    Granted,
    /// Revoked, for good.
    Revoked,
    /// A third party's access past its review date, until an administrator re-certifies it.
    Lapsed,
    /// Never granted, or granted for another certificate with the same serial.
    NotGranted,
}

/// A restriction as the state holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    /// The decision.
    pub restriction: Restriction,
    /// Members that signed it, with their signatures checked.
    pub signers: BTreeSet<String>,
    /// Administrators who released it, once two did.
    pub released_by: Option<BTreeSet<String>>,
}

/// What an entry did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Applied {
    /// A new restriction, enforced at once.
    Restricted {
        /// Its id.
        id: String,
    },
    /// One more signer; `mesh_wide` once `threshold` members have signed.
    Endorsed {
        /// The decision.
        id: String,
        /// Signers now.
        signers: usize,
        /// Whether it is now in force mesh-wide.
        mesh_wide: bool,
    },
    /// Lifted.
    Released {
        /// The decision.
        id: String,
    },
    /// A certificate that never authenticates again.
    Revoked {
        /// Its serial.
        serial: String,
    },
    /// A policy in force.
    Policy {
        /// Its version.
        version: u64,
    },
    /// Detection rules in force.
    Rules {
        /// Their version.
        version: u64,
    },
    /// A bulk export that may be read.
    ExportAllowed {
        /// Its id.
        id: String,
    },
    /// A third party's access goes on until a later review date.
    Recertified {
        /// The certificate.
        serial: String,
        /// Its next review date, Unix seconds.
        review_by: i64,
    },
    /// Certificates that may act from now on.
    Granted {
        /// Their serials (those already granted as they are included).
        serials: Vec<String>,
    },
    /// The membership changed.
    Membership,
    /// A member's statement of what it runs, kept as its latest.
    Attested {
        /// The member.
        node: String,
    },
    /// A release added to the allowed set.
    ReleaseAllowed {
        /// Its version.
        version: String,
    },
    /// A release retired.
    ReleaseRetired {
        /// Its version.
        version: String,
        /// Why.
        advisory: String,
    },
    /// A step of a resharing.
    Custodians(Step),
}

/// Why an entry changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum Rejected {
    /// Signed by a node that is not a member.
    #[error("`{0}` is not a member of the mesh")]
    NotAMember(String),
    /// A signature that does not verify.
    #[error("the signature of `{0}` does not verify")]
    BadSignature(String),
    /// An administrator the state does not know.
    #[error("`{0}` is not a security administrator")]
    NotAnAdmin(String),
    /// Too few distinct administrators signed.
    #[error("{got} distinct administrator signature(s) where {needed} are needed")]
    TooFewAdmins {
        /// Valid, distinct.
        got: usize,
        /// Needed.
        needed: usize,
    },
    /// The target of a decision approved its own release.
    #[error("`{0}` is the decision's target and cannot approve its release")]
    TargetApproves(String),
    /// No such decision.
    #[error("no decision `{0}`")]
    Unknown(String),
    /// A decision id reused for a different decision.
    #[error("decision `{0}` already exists with other contents")]
    Conflicting(String),
    /// Already released.
    #[error("decision `{0}` is already released")]
    AlreadyReleased(String),
    /// The same member twice.
    #[error("`{0}` already signed decision `{1}`")]
    AlreadySigned(String, String),
    /// A policy version not above the one in force.
    #[error("version {got} is not above {current}, the one in force")]
    StalePolicy {
        /// Proposed.
        got: u64,
        /// In force.
        current: u64,
    },
    /// A membership change that cannot be made.
    #[error("membership: {0}")]
    Membership(String),
    /// A policy whose digest is not its document's.
    #[error("version {0}: its digest is not its document's")]
    PolicyDigest(u64),
    /// A grant that cannot be made.
    #[error("grant: {0}")]
    Grant(String),
    /// An export that cannot be allowed.
    #[error("export: {0}")]
    Export(String),
    /// An attestation or a release that cannot be taken.
    #[error("attestation: {0}")]
    Attestation(String),
    /// A resharing step that cannot be taken.
    #[error("custodians: {0}")]
    Custodians(String),
}

/// The replicated security state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityState {
    members: BTreeMap<String, PublicKey>,
    admins: BTreeMap<String, PublicKey>,
    threshold: usize,
    restrictions: BTreeMap<String, Held>,
    revoked: BTreeSet<String>,
    policy: Option<PolicyStatement>,
    /// The detection rules in force through the log.
    #[serde(default)]
    rules: Option<PolicyStatement>,
    /// Entries applied, rejected ones included.
    applied: u64,
    /// Where each member sits in Raft (the leader makes Raft's voters match).
    #[serde(default)]
    seats: BTreeMap<String, Seat>,
    /// Raft ids that were ever given: never given again, so that an old member's log
    /// position can never be taken for a new one's.
    #[serde(default)]
    raft_ids: BTreeSet<u64>,
    /// The identity register, by serial: the certificates that may act in the mesh.
    #[serde(default)]
    granted: BTreeMap<String, Granted>,
    /// Bulk exports two administrators allowed, by id.
    #[serde(default)]
    exports: BTreeMap<String, ExportStatement>,
    /// Each member's node certificate (its thumbprint), by name.
    #[serde(default)]
    member_certs: BTreeMap<String, String>,
    /// How often members attest, ms.
    #[serde(default)]
    attest_every_ms: u64,
    /// The allowed set's releases, by binary digest.
    #[serde(default)]
    releases: BTreeMap<String, Allowed>,
    /// Digests of every policy the ceremony or the log put in force.
    #[serde(default)]
    policy_digests: BTreeSet<String>,
    /// Digests of every set of rules the ceremony or the log put in force.
    #[serde(default)]
    rules_digests: BTreeSet<String>,
    /// Each member's latest attestation.
    #[serde(default)]
    attestations: BTreeMap<String, Attestation>,
    /// The custodian set in force, and the resharing under way.
    #[serde(default)]
    custodians: Custodians,
}

impl SecurityState {
    /// The state before any entry.
    pub fn new(g: &Genesis) -> Self {
        Self {
            members: g.members.iter().map(|m| (m.name.clone(), m.key)).collect(),
            admins: g.admins.iter().map(|a| (a.name.clone(), a.key)).collect(),
            threshold: g.threshold.max(1),
            restrictions: BTreeMap::new(),
            revoked: BTreeSet::new(),
            policy: None,
            rules: None,
            applied: 0,
            seats: g.seats.clone(),
            raft_ids: g.seats.values().map(|s| s.raft_id).collect(),
            granted: g
                .granted
                .iter()
                .map(|r| {
                    let g = Granted {
                        registration: r.clone(),
                        by: BTreeSet::from([CEREMONY.to_owned()]),
                        recertified_by: None,
                    };
                    (r.serial.clone(), g)
                })
                .collect(),
            exports: BTreeMap::new(),
            member_certs: g
                .members
                .iter()
                .filter_map(|m| Some((m.name.clone(), m.cert.clone()?)))
                .collect(),
            attest_every_ms: g.attestation.every_ms,
            releases: g
                .attestation
                .releases
                .iter()
                .map(|r| {
                    let a = Allowed {
                        release: r.clone(),
                        by: BTreeSet::from([CEREMONY.to_owned()]),
                        retired: None,
                    };
                    (r.binary.clone(), a)
                })
                .collect(),
            policy_digests: g.attestation.policy.clone(),
            rules_digests: g.attestation.rules.clone(),
            attestations: BTreeMap::new(),
            custodians: Custodians::first(g.threshold, g.custodians.clone()),
        }
    }

    /// Applies one entry: checks its signatures against this state, then changes it, or
    /// changes nothing and says why.
    pub fn apply(&mut self, c: &Command) -> Result<Applied, Rejected> {
        self.applied += 1;
        match c {
            Command::Restrict {
                restriction,
                by,
                sig,
            } => {
                self.member_signed(by, restriction, sig)?;
                if let Some(held) = self.restrictions.get_mut(&restriction.id) {
                    // Two nodes that saw the same thing and decided the same: one decision
                    // with two signers.
                    if held.restriction != *restriction {
                        return Err(Rejected::Conflicting(restriction.id.clone()));
                    }
                    if !held.signers.insert(by.clone()) {
                        return Err(Rejected::AlreadySigned(by.clone(), restriction.id.clone()));
                    }
                    return Ok(Applied::Endorsed {
                        id: restriction.id.clone(),
                        signers: held.signers.len(),
                        mesh_wide: held.signers.len() >= self.threshold,
                    });
                }
                self.restrictions.insert(
                    restriction.id.clone(),
                    Held {
                        restriction: restriction.clone(),
                        signers: BTreeSet::from([by.clone()]),
                        released_by: None,
                    },
                );
                Ok(Applied::Restricted {
                    id: restriction.id.clone(),
                })
            }
            Command::Endorse { id, by, sig } => {
                let held = self
                    .restrictions
                    .get(id)
                    .ok_or_else(|| Rejected::Unknown(id.clone()))?;
                self.member_signed(by, &held.restriction, sig)?;
                if held.signers.contains(by) {
                    return Err(Rejected::AlreadySigned(by.clone(), id.clone()));
                }
                let threshold = self.threshold;
                let held = self
                    .restrictions
                    .get_mut(id)
                    .ok_or_else(|| Rejected::Unknown(id.clone()))?;
                held.signers.insert(by.clone());
                Ok(Applied::Endorsed {
                    id: id.clone(),
                    signers: held.signers.len(),
                    mesh_wide: held.signers.len() >= threshold,
                })
            }
            Command::Release {
                statement,
                approvals,
            } => self.release(statement, approvals),
            Command::Revoke {
                statement,
                approvals,
            } => self.revoke(statement, approvals),
            Command::Grant {
                statement,
                approvals,
            } => self.grant(statement, approvals),
            Command::AllowExport {
                statement,
                approvals,
            } => self.allow_export(statement, approvals),
            Command::Recertify {
                statement,
                approvals,
            } => self.recertify(statement, approvals),
            Command::SetPolicy {
                statement,
                approvals,
            } => {
                let version = self.put_in_force(kind::POLICY, statement, approvals)?;
                self.policy_digests.insert(statement.digest.clone());
                self.policy = Some(statement.clone());
                Ok(Applied::Policy { version })
            }
            Command::SetRules {
                statement,
                approvals,
            } => {
                let version = self.put_in_force(kind::RULES, statement, approvals)?;
                self.rules_digests.insert(statement.digest.clone());
                self.rules = Some(statement.clone());
                Ok(Applied::Rules { version })
            }
            Command::Membership {
                statement,
                approvals,
            } => {
                self.admins_signed(
                    kind::MEMBERSHIP,
                    statement,
                    approvals,
                    ADMINS_TO_RELAX,
                    None,
                )?;
                match statement {
                    MembershipStatement::Add { member, seat } => self.add_member(member, seat)?,
                    MembershipStatement::Remove(name) => {
                        if self.members.len() <= self.threshold {
                            return Err(Rejected::Membership(format!(
                                "removing `{name}` would leave fewer members than the threshold {}",
                                self.threshold
                            )));
                        }
                        self.members
                            .remove(name)
                            .ok_or_else(|| Rejected::NotAMember(name.clone()))?;
                        self.seats.remove(name);
                        self.member_certs.remove(name);
                        self.attestations.remove(name);
                    }
                }
                Ok(Applied::Membership)
            }
            Command::Attest { attestation, sig } => self.attest(attestation, sig),
            Command::AllowRelease {
                statement,
                approvals,
            } => self.allow_release(statement, approvals),
            Command::RetireRelease {
                statement,
                approvals,
            } => self.retire_release(statement, approvals),
            Command::Reshare {
                statement,
                approvals,
            } => {
                let by =
                    self.admins_signed(kind::RESHARE, statement, approvals, ADMINS_TO_RELAX, None)?;
                let members = &self.members;
                let step = self
                    .custodians
                    .start(statement, by, |n| members.contains_key(n))
                    .map_err(Rejected::Custodians)?;
                Ok(Applied::Custodians(step))
            }
            Command::ReshareDealt { statement, by, sig } => {
                self.node_signed(by, kind::RESHARE_DEALT, statement, sig)?;
                let step = self
                    .custodians
                    .dealt(statement, by)
                    .map_err(Rejected::Custodians)?;
                Ok(Applied::Custodians(step))
            }
            Command::ReshareReceived { statement, by, sig } => {
                self.node_signed(by, kind::RESHARE_RECEIVED, statement, sig)?;
                let step = self
                    .custodians
                    .received(statement, by)
                    .map_err(Rejected::Custodians)?;
                Ok(Applied::Custodians(step))
            }
            Command::Resealed { statement, by, sig } => {
                self.node_signed(by, kind::RESEALED, statement, sig)?;
                let step = self
                    .custodians
                    .resealed(statement, by)
                    .map_err(Rejected::Custodians)?;
                Ok(Applied::Custodians(step))
            }
        }
    }

    fn node_signed<T: Serialize>(
        &self,
        by: &str,
        kind: &str,
        statement: &T,
        sig: &crate::sign::Sig,
    ) -> Result<(), Rejected> {
        let key = self
            .members
            .get(by)
            .ok_or_else(|| Rejected::NotAMember(by.to_owned()))?;
        if verifies(key, kind, statement, sig) {
            Ok(())
        } else {
            Err(Rejected::BadSignature(by.to_owned()))
        }
    }

    /// The custodian set in force, and the resharing under way.
    pub fn custodians(&self) -> &Custodians {
        &self.custodians
    }

    /// Keeps a member's statement as its latest: signed by that member, later than the
    /// one it replaces (an old statement cannot be replayed), of a bounded size. What it
    /// says is judged by each node ([`Self::judge`]), not here.
    fn attest(&mut self, a: &Attestation, sig: &crate::sign::Sig) -> Result<Applied, Rejected> {
        let key = self
            .members
            .get(&a.node)
            .ok_or_else(|| Rejected::NotAMember(a.node.clone()))?;
        if !verifies(key, kind::ATTEST, a, sig) {
            return Err(Rejected::BadSignature(a.node.clone()));
        }
        let size = serde_json::to_vec(a).map_or(usize::MAX, |v| v.len());
        if size > MAX_ATTESTATION_BYTES {
            return Err(Rejected::Attestation(format!(
                "{}'s statement is {size} bytes, above {MAX_ATTESTATION_BYTES}",
                a.node
            )));
        }
        if let Some(last) = self.attestations.get(&a.node)
            && last.at_ms >= a.at_ms
        {
            return Err(Rejected::Attestation(format!(
                "{}'s statement at {} ms is not later than its last, at {} ms",
                a.node, a.at_ms, last.at_ms
            )));
        }
        self.attestations.insert(a.node.clone(), a.clone());
        Ok(Applied::Attested {
            node: a.node.clone(),
        })
    }

    fn allow_release(
        &mut self,
        statement: &AllowReleaseStatement,
        approvals: &[Approval],
    ) -> Result<Applied, Rejected> {
        let by = self.admins_signed(
            kind::ALLOW_RELEASE,
            statement,
            approvals,
            ADMINS_TO_RELAX,
            None,
        )?;
        let r = &statement.release;
        if !is_digest(&r.binary) || !is_digest(&r.lock) || r.version.is_empty() {
            return Err(Rejected::Attestation(
                "a release names its version and the hex SHA-256 of its binary and of its Cargo.lock".into(),
            ));
        }
        match self.releases.get(&r.binary) {
            Some(a) if a.retired.is_some() => Err(Rejected::Attestation(format!(
                "binary {} was retired; a retired build is never allowed again",
                short(&r.binary)
            ))),
            Some(a) if a.release != *r => Err(Rejected::Attestation(format!(
                "binary {} is allowed already as {}",
                short(&r.binary),
                a.release
            ))),
            Some(_) => Ok(Applied::ReleaseAllowed {
                version: r.version.clone(),
            }),
            None => {
                self.releases.insert(
                    r.binary.clone(),
                    Allowed {
                        release: r.clone(),
                        by,
                        retired: None,
                    },
                );
                Ok(Applied::ReleaseAllowed {
                    version: r.version.clone(),
                })
            }
        }
    }

    fn retire_release(
        &mut self,
        statement: &RetireStatement,
        approvals: &[Approval],
    ) -> Result<Applied, Rejected> {
        let by = self.admins_signed(
            kind::RETIRE_RELEASE,
            statement,
            approvals,
            ADMINS_TO_RELAX,
            None,
        )?;
        if statement.advisory.trim().is_empty() {
            return Err(Rejected::Attestation(
                "a retirement names its advisory".into(),
            ));
        }
        let live = self
            .releases
            .values()
            .filter(|a| a.retired.is_none() && a.release.binary != statement.binary)
            .count();
        let Some(allowed) = self.releases.get_mut(&statement.binary) else {
            return Err(Rejected::Attestation(format!(
                "binary {} is not in the allowed set",
                short(&statement.binary)
            )));
        };
        if allowed.retired.is_some() {
            return Err(Rejected::Attestation(format!(
                "{} is retired already",
                allowed.release
            )));
        }
        if live == 0 {
            return Err(Rejected::Attestation(format!(
                "retiring {} would leave no build allowed: allow its successor first",
                allowed.release
            )));
        }
        allowed.retired = Some(Retired {
            advisory: statement.advisory.clone(),
            at_ms: statement.at_ms,
            by,
        });
        Ok(Applied::ReleaseRetired {
            version: allowed.release.version.clone(),
            advisory: statement.advisory.clone(),
        })
    }

    /// How this node judges member `node` now ([`crate::attest::judge`]).
    pub fn judge(&self, node: &str, at: Judging) -> Verdict {
        judge(self.attestations.get(node), &self.allowed_set(), at)
    }

    /// The allowed set.
    pub fn allowed_set(&self) -> AllowedSet<'_> {
        AllowedSet {
            releases: &self.releases,
            policy: &self.policy_digests,
            rules: &self.rules_digests,
            every_ms: self.attest_every_ms,
        }
    }

    /// Each member's latest attestation, by name.
    pub fn attestations(&self) -> &BTreeMap<String, Attestation> {
        &self.attestations
    }

    /// The members, by name.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.keys().map(String::as_str)
    }

    /// How often members attest, ms.
    pub fn attest_every_ms(&self) -> u64 {
        self.attest_every_ms
    }

    /// Checks a policy or rules statement against the one of its kind in force: two
    /// administrators, a higher version, a digest that is its document's.
    fn put_in_force(
        &self,
        kind: &str,
        statement: &PolicyStatement,
        approvals: &[Approval],
    ) -> Result<u64, Rejected> {
        self.admins_signed(kind, statement, approvals, ADMINS_TO_RELAX, None)?;
        let current = match kind {
            kind::RULES => self.rules.as_ref(),
            _ => self.policy.as_ref(),
        }
        .map_or(0, |p| p.version);
        if statement.version <= current {
            return Err(Rejected::StalePolicy {
                got: statement.version,
                current,
            });
        }
        if PolicyStatement::new(statement.version, statement.document.clone()).digest
            != statement.digest
        {
            return Err(Rejected::PolicyDigest(statement.version));
        }
        Ok(statement.version)
    }

    fn add_member(&mut self, member: &Member, seat: &Seat) -> Result<(), Rejected> {
        let taken = |what: String| Err(Rejected::Membership(what));
        if self.members.contains_key(&member.name) {
            return taken(format!("`{}` is already a member", member.name));
        }
        if let Some((other, _)) = self.members.iter().find(|(_, k)| **k == member.key) {
            return taken(format!("`{other}` already signs with that key"));
        }
        if self.raft_ids.contains(&seat.raft_id) {
            return taken(format!("raft id {} was given before", seat.raft_id));
        }
        if let Some((other, _)) = self.seats.iter().find(|(_, s)| s.addr == seat.addr) {
            return taken(format!("`{other}` already listens at {}", seat.addr));
        }
        if let Some(cert) = &member.cert
            && let Some((other, _)) = self.member_certs.iter().find(|(_, c)| *c == cert)
        {
            return taken(format!("`{other}` already holds that node certificate"));
        }
        self.members.insert(member.name.clone(), member.key);
        if let Some(cert) = &member.cert {
            self.member_certs.insert(member.name.clone(), cert.clone());
        }
        self.seats.insert(member.name.clone(), seat.clone());
        self.raft_ids.insert(seat.raft_id);
        Ok(())
    }

    fn release(
        &mut self,
        statement: &ReleaseStatement,
        approvals: &[Approval],
    ) -> Result<Applied, Rejected> {
        let held = self
            .restrictions
            .get(&statement.id)
            .ok_or_else(|| Rejected::Unknown(statement.id.clone()))?;
        if held.released_by.is_some() {
            return Err(Rejected::AlreadyReleased(statement.id.clone()));
        }
        let target = match &held.restriction.target {
            Target::Identity(name) => Some(name.clone()),
            _ => None,
        };
        let by = self.admins_signed(
            kind::RELEASE,
            statement,
            approvals,
            ADMINS_TO_RELAX,
            target.as_deref(),
        )?;
        if let Some(h) = self.restrictions.get_mut(&statement.id) {
            h.released_by = Some(by);
        }
        Ok(Applied::Released {
            id: statement.id.clone(),
        })
    }

    fn revoke(
        &mut self,
        statement: &RevokeStatement,
        approvals: &[Approval],
    ) -> Result<Applied, Rejected> {
        // Revoking restricts: one administrator is enough, and nothing ever undoes it.
        self.admins_signed(kind::REVOKE, statement, approvals, 1, None)?;
        self.revoked.insert(statement.serial.clone());
        Ok(Applied::Revoked {
            serial: statement.serial.clone(),
        })
    }

    fn grant(
        &mut self,
        statement: &GrantStatement,
        approvals: &[Approval],
    ) -> Result<Applied, Rejected> {
        let refuse = |why: String| Err(Rejected::Grant(why));
        if statement.certificates.is_empty() {
            return refuse("no certificate to grant".into());
        }
        let by = self.admins_signed(kind::GRANT, statement, approvals, ADMINS_TO_RELAX, None)?;
        // Nobody lets their own certificate in, as nobody releases their own quarantine.
        if let Some(c) = statement.certificates.iter().find(|c| by.contains(&c.name)) {
            return Err(Rejected::TargetApproves(c.name.clone()));
        }
        let mut fresh = BTreeMap::new();
        for c in &statement.certificates {
            if c.serial.is_empty()
                || !c
                    .serial
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return refuse(format!(
                    "`{}`: serial `{}` is not lowercase hex",
                    c.name, c.serial
                ));
            }
            if c.role == "node" {
                return refuse(format!(
                    "`{}` is a node certificate: nodes come in as members (mesh add-node), not by grant",
                    c.name
                ));
            }
            if self.revoked.contains(&c.serial) {
                return refuse(format!(
                    "`{}` (serial {}) was revoked, for good: issue a new certificate",
                    c.name, c.serial
                ));
            }
            if REVIEWED_ROLES.contains(&c.role.as_str()) && c.review_by.is_none() {
                return refuse(format!(
                    "`{}` is a {} certificate, a third party's: its grant carries a review date",
                    c.name, c.role
                ));
            }
            let prior = self.granted.get(&c.serial).or_else(|| fresh.get(&c.serial));
            match prior {
                Some(g) if g.registration == *c => continue,
                Some(g) => {
                    return refuse(format!(
                        "serial {} is granted already to another certificate (`{}`)",
                        c.serial, g.registration.name
                    ));
                }
                None => {}
            }
            fresh.insert(
                c.serial.clone(),
                Granted {
                    registration: c.clone(),
                    by: by.clone(),
                    recertified_by: None,
                },
            );
        }
        let serials = statement
            .certificates
            .iter()
            .map(|c| c.serial.clone())
            .collect();
        self.granted.extend(fresh);
        Ok(Applied::Granted { serials })
    }

    fn recertify(
        &mut self,
        statement: &RecertifyStatement,
        approvals: &[Approval],
    ) -> Result<Applied, Rejected> {
        let refuse = |why: String| Err(Rejected::Grant(why));
        let Some(g) = self.granted.get(&statement.serial) else {
            return refuse(format!(
                "no certificate {} in the register",
                statement.serial
            ));
        };
        let holder = g.registration.name.clone();
        let current = g.registration.review_by;
        let by = self.admins_signed(kind::RECERTIFY, statement, approvals, 1, Some(&holder))?;
        if self.revoked.contains(&statement.serial) {
            return refuse(format!(
                "`{holder}` (serial {}) was revoked, for good",
                statement.serial
            ));
        }
        if current.is_some_and(|c| statement.review_by <= c) {
            return refuse(format!(
                "`{holder}`: the new review date is not later than the one in force"
            ));
        }
        if let Some(g) = self.granted.get_mut(&statement.serial) {
            g.registration.review_by = Some(statement.review_by);
            g.recertified_by = by.into_iter().next();
        }
        Ok(Applied::Recertified {
            serial: statement.serial.clone(),
            review_by: statement.review_by,
        })
    }

    fn allow_export(
        &mut self,
        statement: &ExportStatement,
        approvals: &[Approval],
    ) -> Result<Applied, Rejected> {
        let refuse = |why: String| Err(Rejected::Export(why));
        self.admins_signed(
            kind::EXPORT,
            statement,
            approvals,
            ADMINS_TO_RELAX,
            Some(&statement.recipient),
        )?;
        if statement.id.is_empty() || statement.recipient.is_empty() {
            return refuse("an export names its id and its recipient".into());
        }
        if statement.persons == 0 {
            return refuse(format!("export {} allows no person", statement.id));
        }
        match self.exports.get(&statement.id) {
            Some(e) if e == statement => {}
            Some(_) => {
                return refuse(format!(
                    "export {} was allowed before with other terms",
                    statement.id
                ));
            }
            None => {
                self.exports.insert(statement.id.clone(), statement.clone());
            }
        }
        Ok(Applied::ExportAllowed {
            id: statement.id.clone(),
        })
    }

    fn member_signed(
        &self,
        by: &str,
        restriction: &Restriction,
        sig: &crate::sign::Sig,
    ) -> Result<(), Rejected> {
        let key = self
            .members
            .get(by)
            .ok_or_else(|| Rejected::NotAMember(by.to_owned()))?;
        if verifies(key, kind::RESTRICT, restriction, sig) {
            Ok(())
        } else {
            Err(Rejected::BadSignature(by.to_owned()))
        }
    }

    /// The distinct administrators whose signatures verify; refused when fewer than
    /// `needed`, when one is unknown or does not verify, or when `not` signed.
    fn admins_signed<T: Serialize>(
        &self,
        kind: &str,
        statement: &T,
        approvals: &[Approval],
        needed: usize,
        not: Option<&str>,
    ) -> Result<BTreeSet<String>, Rejected> {
        let mut by = BTreeSet::new();
        for a in approvals {
            if Some(a.admin.as_str()) == not {
                return Err(Rejected::TargetApproves(a.admin.clone()));
            }
            let key = self
                .admins
                .get(&a.admin)
                .ok_or_else(|| Rejected::NotAnAdmin(a.admin.clone()))?;
            if !verifies(key, kind, statement, &a.sig) {
                return Err(Rejected::BadSignature(a.admin.clone()));
            }
            by.insert(a.admin.clone());
        }
        if by.len() < needed {
            return Err(Rejected::TooFewAdmins {
                got: by.len(),
                needed,
            });
        }
        Ok(by)
    }

    /// Restrictions not released whose end is after `now_ms` (the asking node's clock).
    pub fn in_force(&self, now_ms: u64) -> impl Iterator<Item = &Held> {
        self.restrictions
            .values()
            .filter(move |h| h.released_by.is_none() && h.restriction.until_ms > now_ms)
    }

    /// Whether `threshold` distinct members have signed the decision.
    pub fn mesh_wide(&self, id: &str) -> bool {
        self.restrictions
            .get(id)
            .is_some_and(|h| h.signers.len() >= self.threshold)
    }

    /// Every restriction the state holds, released or not, in id order.
    pub fn restrictions(&self) -> impl Iterator<Item = &Held> {
        self.restrictions.values()
    }

    /// A decision, released or not.
    pub fn restriction(&self, id: &str) -> Option<&Held> {
        self.restrictions.get(id)
    }

    /// Whether a certificate was revoked.
    pub fn is_revoked(&self, serial: &str) -> bool {
        self.revoked.contains(serial)
    }

    /// What the register says of the certificate with this serial and thumbprint at
    /// `now_s` (the asking node's clock, Unix seconds).
    pub fn standing(&self, serial: &str, thumbprint: &str, now_s: i64) -> Standing {
        if self.revoked.contains(serial) {
            return Standing::Revoked;
        }
        match self.granted.get(serial) {
            Some(g) if g.registration.thumbprint == thumbprint => match g.registration.review_by {
                Some(due) if due <= now_s => Standing::Lapsed,
                _ => Standing::Granted,
            },
            _ => Standing::NotGranted,
        }
    }

    /// The bulk exports two administrators allowed, in id order (ended ones included).
    pub fn exports(&self) -> impl Iterator<Item = &ExportStatement> {
        self.exports.values()
    }

    /// The identity register, in serial order (revoked certificates included:
    /// [`Self::is_revoked`] says which).
    pub fn granted(&self) -> impl Iterator<Item = &Granted> {
        self.granted.values()
    }

    /// The policy in force, if any was set through the log.
    pub fn policy(&self) -> Option<&PolicyStatement> {
        self.policy.as_ref()
    }

    /// The detection rules in force, if any were set through the log.
    pub fn rules(&self) -> Option<&PolicyStatement> {
        self.rules.as_ref()
    }

    /// Whether the node certificate with this thumbprint is a current member's.
    pub fn is_member_cert(&self, thumbprint: &str) -> bool {
        self.member_certs.values().any(|c| c == thumbprint)
    }

    /// Whether `name` is a member.
    pub fn is_member(&self, name: &str) -> bool {
        self.members.contains_key(name)
    }

    /// Where the members sit in Raft, by name: the voters the leader keeps Raft at.
    pub fn seats(&self) -> &BTreeMap<String, Seat> {
        &self.seats
    }

    /// Entries applied so far, rejected ones included.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The whole state as bytes (a Raft snapshot); equal states give equal bytes.
    pub fn snapshot(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }

    /// A state back from [`Self::snapshot`]'s bytes.
    pub fn restore(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Approval, Restriction};
    use crate::sign::KeyPair;
    use ribat_detect::response::Action;

    fn kp(seed: u8) -> KeyPair {
        KeyPair::from_seed(&[seed; 32])
    }

    fn state() -> SecurityState {
        SecurityState::new(&Genesis {
            members: ["node-a", "node-b", "node-c"]
                .iter()
                .zip(1..)
                .map(|(n, s)| Member {
                    name: (*n).into(),
                    key: kp(s).public(),
                    cert: None,
                })
                .collect(),
            admins: ["sec.1", "sec.2"]
                .iter()
                .zip(11..)
                .map(|(n, s)| Admin {
                    name: (*n).into(),
                    key: kp(s).public(),
                })
                .collect(),
            threshold: 2,
            seats: ["node-a", "node-b", "node-c"]
                .iter()
                .zip(1..)
                .map(|(n, id)| ((*n).into(), seat(id)))
                .collect(),
            granted: vec![cert("gateway.node-a", "gateway", "0a")],
            attestation: AttestGenesis {
                every_ms: 1_000,
                releases: vec![release('a')],
                policy: BTreeSet::from(["p".repeat(64)]),
                rules: BTreeSet::from(["r".repeat(64)]),
            },
            custodians: BTreeMap::from([
                (1, "node-a".into()),
                (2, "node-b".into()),
                (3, "node-c".into()),
            ]),
        })
    }

    fn cert(name: &str, role: &str, serial: &str) -> Registration {
        Registration {
            name: name.into(),
            role: role.into(),
            institution: "agency-1".into(),
            serial: serial.into(),
            thumbprint: format!("thumb-{serial}"),
            not_after: 2_000_000_000,
            review_by: None,
        }
    }

    fn grant(
        s: &mut SecurityState,
        certificates: Vec<Registration>,
        who: &[(&str, u8)],
    ) -> Result<Applied, Rejected> {
        let statement = GrantStatement {
            certificates,
            reason: "ticket 7".into(),
        };
        let approvals = approve(kind::GRANT, &statement, who);
        s.apply(&Command::Grant {
            statement,
            approvals,
        })
    }

    fn seat(raft_id: u64) -> Seat {
        Seat {
            raft_id,
            addr: format!("127.0.0.1:{}", 7000 + raft_id),
        }
    }

    fn approve<T: Serialize>(kind: &str, body: &T, who: &[(&str, u8)]) -> Vec<Approval> {
        who.iter()
            .map(|(name, seed)| Approval {
                admin: (*name).into(),
                sig: kp(*seed).sign(kind, body).unwrap(),
            })
            .collect()
    }

    /// A membership change signed by both administrators, applied.
    fn by_two(s: &mut SecurityState, statement: MembershipStatement) -> Result<Applied, Rejected> {
        let approvals = approve(
            kind::MEMBERSHIP,
            &statement,
            &[("sec.1", 11), ("sec.2", 12)],
        );
        s.apply(&Command::Membership {
            statement,
            approvals,
        })
    }

    fn restrict(by: &str, seed: u8, id: &str) -> Command {
        let restriction = Restriction {
            id: id.into(),
            rule: "honey".into(),
            target: Target::Identity("clerk.9".into()),
            action: Action::Quarantine,
            until_ms: 1_000,
            evidence: String::new(),
        };
        let sig = kp(seed).sign(kind::RESTRICT, &restriction).unwrap();
        Command::Restrict {
            restriction,
            by: by.into(),
            sig,
        }
    }

    #[test]
    fn a_certificate_acts_once_two_administrators_granted_it_and_never_after_its_revocation() {
        let mut s = state();
        let both = [("sec.1", 11), ("sec.2", 12)];
        // The ceremony's gateway is in from the start; a clerk's new certificate is not.
        assert_eq!(s.standing("0a", "thumb-0a", 0), Standing::Granted);
        let clerk = cert("clerk.1", "clerk", "1b");
        assert_eq!(s.standing("1b", "thumb-1b", 0), Standing::NotGranted);
        assert_eq!(
            grant(&mut s, vec![clerk.clone()], &[("sec.1", 11)]),
            Err(Rejected::TooFewAdmins { got: 1, needed: 2 })
        );
        assert_eq!(
            grant(&mut s, vec![clerk.clone()], &[("sec.1", 11), ("sec.1", 11)]),
            Err(Rejected::TooFewAdmins { got: 1, needed: 2 })
        );
        // sec.2's key signing as sec.1: refused.
        assert_eq!(
            grant(&mut s, vec![clerk.clone()], &[("sec.1", 12), ("sec.2", 12)]),
            Err(Rejected::BadSignature("sec.1".into()))
        );
        // Signed as a release, the same statement grants nothing.
        let statement = GrantStatement {
            certificates: vec![clerk.clone()],
            reason: "ticket 7".into(),
        };
        let approvals = approve(kind::RELEASE, &statement, &both);
        assert_eq!(
            s.apply(&Command::Grant {
                statement,
                approvals
            }),
            Err(Rejected::BadSignature("sec.1".into()))
        );
        assert_eq!(s.standing("1b", "thumb-1b", 0), Standing::NotGranted);
        assert_eq!(
            grant(&mut s, vec![clerk.clone()], &both),
            Ok(Applied::Granted {
                serials: vec!["1b".into()]
            })
        );
        assert_eq!(s.standing("1b", "thumb-1b", 0), Standing::Granted);
        // The serial alone is not the certificate: another one minted with it is not let in.
        assert_eq!(s.standing("1b", "thumb-other", 0), Standing::NotGranted);
        let mut forged = clerk.clone();
        forged.thumbprint = "thumb-other".into();
        assert!(matches!(
            grant(&mut s, vec![forged], &both),
            Err(Rejected::Grant(m)) if m.contains("granted already to another certificate")
        ));
        // The same grant again changes nothing and is not an error (a retried proposal).
        assert!(grant(&mut s, vec![clerk.clone()], &both).is_ok());
        // Nobody grants their own certificate; node certificates come in as members; a
        // grant is all or nothing.
        assert_eq!(
            grant(&mut s, vec![cert("sec.1", "security", "2c")], &both),
            Err(Rejected::TargetApproves("sec.1".into()))
        );
        assert!(matches!(
            grant(&mut s, vec![cert("clerk.2", "clerk", "3d"), cert("node-z", "node", "4e")], &both),
            Err(Rejected::Grant(m)) if m.contains("node certificate")
        ));
        assert_eq!(s.standing("3d", "thumb-3d", 0), Standing::NotGranted);
        assert!(matches!(
            grant(&mut s, vec![cert("clerk.2", "clerk", "3D")], &both),
            Err(Rejected::Grant(m)) if m.contains("not lowercase hex")
        ));
        assert!(matches!(
            grant(&mut s, vec![], &both),
            Err(Rejected::Grant(_))
        ));
        // Revoked: refused for good, and never granted again.
        let statement = RevokeStatement {
            serial: "1b".into(),
            reason: "lost laptop".into(),
        };
        let approvals = approve(kind::REVOKE, &statement, &[("sec.2", 12)]);
        s.apply(&Command::Revoke {
            statement,
            approvals,
        })
        .unwrap();
        assert_eq!(s.standing("1b", "thumb-1b", 0), Standing::Revoked);
        assert!(matches!(
            grant(&mut s, vec![clerk], &both),
            Err(Rejected::Grant(m)) if m.contains("revoked, for good")
        ));
        assert_eq!(s.standing("1b", "thumb-1b", 0), Standing::Revoked);
        assert_eq!(s.granted().count(), 2);
        let back = SecurityState::restore(&s.snapshot().unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn a_third_partys_access_lapses_at_its_review_date_until_one_administrator_recertifies_it() {
        let mut s = state();
        let both = [("sec.1", 11), ("sec.2", 12)];
        let mut partner = cert("partner.x", "partner", "5e");
        assert!(matches!(
            grant(&mut s, vec![partner.clone()], &both),
            Err(Rejected::Grant(m)) if m.contains("carries a review date")
        ));
        partner.review_by = Some(1_000);
        assert!(grant(&mut s, vec![partner.clone()], &both).is_ok());
        assert_eq!(s.standing("5e", "thumb-5e", 999), Standing::Granted);
        assert_eq!(s.standing("5e", "thumb-5e", 1_000), Standing::Lapsed);
        let recertify = |s: &mut SecurityState, review_by: i64, who: &[(&str, u8)]| {
            let statement = RecertifyStatement {
                serial: "5e".into(),
                review_by,
                reason: "contract renewed".into(),
            };
            let approvals = approve(kind::RECERTIFY, &statement, who);
            s.apply(&Command::Recertify {
                statement,
                approvals,
            })
        };
        // Signed as a grant, it proves nothing; a date not later is refused.
        let statement = RecertifyStatement {
            serial: "5e".into(),
            review_by: 5_000,
            reason: "contract renewed".into(),
        };
        let approvals = approve(kind::GRANT, &statement, &[("sec.1", 11)]);
        assert_eq!(
            s.apply(&Command::Recertify {
                statement,
                approvals
            }),
            Err(Rejected::BadSignature("sec.1".into()))
        );
        assert!(matches!(
            recertify(&mut s, 1_000, &[("sec.1", 11)]),
            Err(Rejected::Grant(m)) if m.contains("not later")
        ));
        assert_eq!(
            recertify(&mut s, 5_000, &[("sec.2", 12)]),
            Ok(Applied::Recertified {
                serial: "5e".into(),
                review_by: 5_000
            })
        );
        assert_eq!(s.standing("5e", "thumb-5e", 1_000), Standing::Granted);
        assert_eq!(s.standing("5e", "thumb-5e", 5_000), Standing::Lapsed);
        // Unknown serials, and a holder re-certifying their own access, are refused.
        assert!(matches!(
            s.apply(&Command::Recertify {
                statement: RecertifyStatement {
                    serial: "77".into(),
                    review_by: 9_000,
                    reason: "x".into()
                },
                approvals: vec![]
            }),
            Err(Rejected::Grant(_))
        ));
        let mut own = cert("sec.1", "partner", "6f");
        own.review_by = Some(1_000);
        let st = GrantStatement {
            certificates: vec![own],
            reason: "odd".into(),
        };
        assert!(
            s.apply(&Command::Grant {
                approvals: approve(kind::GRANT, &st, &both),
                statement: st,
            })
            .is_err()
        );
    }

    #[test]
    fn an_export_is_allowed_by_two_administrators_other_than_its_recipient_and_never_rewritten() {
        let mut s = state();
        let st = ExportStatement {
            id: "0123456789abcdef".into(),
            recipient: "partner.insurer-y".into(),
            purpose: "partner-export".into(),
            persons: 40,
            until_ms: 5_000,
        };
        let allow = |s: &mut SecurityState, st: &ExportStatement, who: &[(&str, u8)]| {
            let approvals = approve(kind::EXPORT, st, who);
            s.apply(&Command::AllowExport {
                statement: st.clone(),
                approvals,
            })
        };
        assert_eq!(
            allow(&mut s, &st, &[("sec.1", 11)]),
            Err(Rejected::TooFewAdmins { got: 1, needed: 2 })
        );
        let as_grant = approve(kind::GRANT, &st, &[("sec.1", 11), ("sec.2", 12)]);
        assert_eq!(
            s.apply(&Command::AllowExport {
                statement: st.clone(),
                approvals: as_grant,
            }),
            Err(Rejected::BadSignature("sec.1".into()))
        );
        assert_eq!(s.exports().count(), 0);
        let both = [("sec.1", 11), ("sec.2", 12)];
        assert_eq!(
            allow(&mut s, &st, &both),
            Ok(Applied::ExportAllowed { id: st.id.clone() })
        );
        // The same again changes nothing; other terms under the same id are refused.
        assert!(allow(&mut s, &st, &both).is_ok());
        let mut more = st.clone();
        more.persons = 4_000;
        assert!(matches!(
            allow(&mut s, &more, &both),
            Err(Rejected::Export(m)) if m.contains("other terms")
        ));
        assert_eq!(s.exports().collect::<Vec<_>>(), vec![&st]);
        // An administrator who is the recipient does not approve it.
        let mut own = st.clone();
        own.id = "fedcba9876543210".into();
        own.recipient = "sec.2".into();
        assert_eq!(
            allow(&mut s, &own, &both),
            Err(Rejected::TargetApproves("sec.2".into()))
        );
        let mut none = st.clone();
        none.id = "00000000000000aa".into();
        none.persons = 0;
        assert!(matches!(
            allow(&mut s, &none, &both),
            Err(Rejected::Export(_))
        ));
    }

    #[test]
    fn a_policy_needs_two_administrators_and_a_higher_version() {
        let mut s = state();
        let p1 = PolicyStatement::new(1, "{}".into());
        let one = approve(kind::POLICY, &p1, &[("sec.1", 11)]);
        let e = s.apply(&Command::SetPolicy {
            statement: p1.clone(),
            approvals: one,
        });
        assert_eq!(e, Err(Rejected::TooFewAdmins { got: 1, needed: 2 }));
        assert_eq!(s.policy(), None);
        let two = approve(kind::POLICY, &p1, &[("sec.1", 11), ("sec.2", 12)]);
        let cmd = Command::SetPolicy {
            statement: p1.clone(),
            approvals: two,
        };
        assert_eq!(s.apply(&cmd), Ok(Applied::Policy { version: 1 }));
        assert_eq!(s.policy(), Some(&p1));
        assert_eq!(
            s.apply(&cmd),
            Err(Rejected::StalePolicy { got: 1, current: 1 })
        );
        // Signed as a release, the same signatures prove nothing about a policy.
        let wrong_kind = approve(kind::RELEASE, &p1, &[("sec.1", 11), ("sec.2", 12)]);
        let e = s.apply(&Command::SetPolicy {
            statement: PolicyStatement::new(2, "{}".into()),
            approvals: wrong_kind,
        });
        assert_eq!(e, Err(Rejected::BadSignature("sec.1".into())));
        // Signed by both, but its digest names another document: refused.
        let mut lying = PolicyStatement::new(2, "{\"roles\":{}}".into());
        lying.digest = p1.digest.clone();
        let both = approve(kind::POLICY, &lying, &[("sec.1", 11), ("sec.2", 12)]);
        let e = s.apply(&Command::SetPolicy {
            statement: lying,
            approvals: both,
        });
        assert_eq!(e, Err(Rejected::PolicyDigest(2)));
        assert_eq!(s.policy(), Some(&p1));
        assert_eq!(s.applied(), 5);
        // Rules have versions of their own, and a policy's approvals are not theirs.
        let r1 = PolicyStatement::new(1, "{}".into());
        let as_policy = approve(kind::POLICY, &r1, &[("sec.1", 11), ("sec.2", 12)]);
        let e = s.apply(&Command::SetRules {
            statement: r1.clone(),
            approvals: as_policy,
        });
        assert_eq!(e, Err(Rejected::BadSignature("sec.1".into())));
        let as_rules = approve(kind::RULES, &r1, &[("sec.1", 11), ("sec.2", 12)]);
        let cmd = Command::SetRules {
            statement: r1.clone(),
            approvals: as_rules,
        };
        assert_eq!(s.apply(&cmd), Ok(Applied::Rules { version: 1 }));
        assert_eq!(s.rules(), Some(&r1));
        assert_eq!(s.policy(), Some(&p1));
        assert_eq!(
            s.apply(&cmd),
            Err(Rejected::StalePolicy { got: 1, current: 1 })
        );
    }

    #[test]
    fn members_join_and_leave_by_two_administrators_and_a_removed_node_signs_nothing() {
        let mut s = state();
        let add = MembershipStatement::Add {
            member: Member {
                name: "node-d".into(),
                key: kp(4).public(),
                cert: Some("cert-d".into()),
            },
            seat: seat(4),
        };
        assert_eq!(
            s.apply(&restrict("node-d", 4, "d-1")),
            Err(Rejected::NotAMember("node-d".into()))
        );
        assert!(!s.is_member_cert("cert-d"));
        assert_eq!(by_two(&mut s, add.clone()), Ok(Applied::Membership));
        assert_eq!(s.seats().get("node-d"), Some(&seat(4)));
        // Its node certificate is the one the mesh answers in its name, and nobody else's.
        assert!(s.is_member_cert("cert-d"));
        let same_cert = MembershipStatement::Add {
            member: Member {
                name: "node-f".into(),
                key: kp(6).public(),
                cert: Some("cert-d".into()),
            },
            seat: seat(6),
        };
        assert!(matches!(
            by_two(&mut s, same_cert),
            Err(Rejected::Membership(m)) if m.contains("already holds that node certificate")
        ));
        assert!(matches!(by_two(&mut s, add), Err(Rejected::Membership(_))));
        assert_eq!(
            s.apply(&restrict("node-d", 4, "d-1")),
            Ok(Applied::Restricted { id: "d-1".into() })
        );
        assert!(!s.mesh_wide("d-1"));
        assert!(matches!(
            s.apply(&restrict("node-a", 1, "d-1")),
            Ok(Applied::Endorsed {
                signers: 2,
                mesh_wide: true,
                ..
            })
        ));
        let remove = MembershipStatement::Remove("node-d".into());
        assert_eq!(by_two(&mut s, remove), Ok(Applied::Membership));
        assert_eq!(
            s.apply(&restrict("node-d", 4, "d-2")),
            Err(Rejected::NotAMember("node-d".into()))
        );
        assert_eq!(s.seats().get("node-d"), None);
        assert!(!s.is_member_cert("cert-d"));
        // Its Raft id is never given again, even with a new name and key.
        let again = |raft_id: u64, addr: &str, key: u8| MembershipStatement::Add {
            member: Member {
                name: "node-e".into(),
                key: kp(key).public(),
                cert: None,
            },
            seat: Seat {
                raft_id,
                addr: addr.into(),
            },
        };
        for (statement, why) in [
            (again(4, "127.0.0.1:9999", 5), "raft id 4 was given before"),
            (again(2, "127.0.0.1:9999", 5), "raft id 2 was given before"),
            (again(5, &seat(1).addr, 5), "`node-a` already listens at"),
            (
                again(5, "127.0.0.1:9999", 1),
                "`node-a` already signs with that key",
            ),
        ] {
            match by_two(&mut s, statement) {
                Err(Rejected::Membership(m)) => assert!(m.starts_with(why), "{m}"),
                other => panic!("{other:?}"),
            }
        }
        // The mesh never keeps fewer members than its threshold: of three, one more may
        // leave, not two.
        let remove = MembershipStatement::Remove("node-c".into());
        assert_eq!(by_two(&mut s, remove), Ok(Applied::Membership));
        let remove = MembershipStatement::Remove("node-b".into());
        assert!(matches!(
            by_two(&mut s, remove),
            Err(Rejected::Membership(_))
        ));
    }

    #[test]
    fn a_restriction_ends_by_each_nodes_clock_and_a_conflicting_reuse_of_its_id_is_refused() {
        let mut s = state();
        s.apply(&restrict("node-a", 1, "d-1")).unwrap();
        assert_eq!(s.in_force(999).count(), 1);
        assert_eq!(s.in_force(1_000).count(), 0);
        let mut other = Restriction {
            id: "d-1".into(),
            rule: "honey".into(),
            target: Target::Identity("clerk.1".into()),
            action: Action::Quarantine,
            until_ms: 1_000,
            evidence: String::new(),
        };
        other.until_ms = 1;
        let sig = kp(2).sign(kind::RESTRICT, &other).unwrap();
        assert_eq!(
            s.apply(&Command::Restrict {
                restriction: other,
                by: "node-b".into(),
                sig
            }),
            Err(Rejected::Conflicting("d-1".into()))
        );
        let back = SecurityState::restore(&s.snapshot().unwrap()).unwrap();
        assert_eq!(back, s);
    }

    fn release(b: char) -> crate::attest::Release {
        crate::attest::Release {
            version: format!("0.1.{b}"),
            binary: b.to_string().repeat(64),
            lock: "1".repeat(64),
        }
    }

    fn attest(node: &str, seed: u8, at_ms: u64, r: &crate::attest::Release) -> Command {
        let attestation = Attestation {
            node: node.into(),
            at_ms,
            measurement: crate::attest::Measurement {
                release: r.clone(),
                documents: BTreeMap::from([
                    ("policy".into(), "p".repeat(64)),
                    ("rules".into(), "r".repeat(64)),
                ]),
                config: "c".repeat(64),
                deps: BTreeMap::new(),
                kernel: "6.1".into(),
                started_ms: 0,
            },
        };
        let sig = kp(seed).sign(kind::ATTEST, &attestation).unwrap();
        Command::Attest { attestation, sig }
    }

    fn at(now_ms: u64) -> Judging {
        Judging {
            now_ms,
            known_since_ms: 0,
            grace_ms: 10_000,
        }
    }

    #[test]
    fn a_member_attests_for_itself_only_and_never_with_an_older_statement() {
        let mut s = state();
        let a = release('a');
        assert_eq!(
            s.apply(&attest("node-b", 2, 5_000, &a)),
            Ok(Applied::Attested {
                node: "node-b".into()
            })
        );
        assert!(matches!(
            s.judge("node-b", at(5_500)),
            Verdict::Attested { .. }
        ));
        // Signed by another member's key: refused.
        assert_eq!(
            s.apply(&attest("node-c", 2, 6_000, &a)),
            Err(Rejected::BadSignature("node-c".into()))
        );
        // Its own statement replayed, or an older one: refused, the latest kept.
        let replay = s.apply(&attest("node-b", 2, 5_000, &a)).unwrap_err();
        assert!(
            replay.to_string().contains("not later than its last"),
            "{replay}"
        );
        assert_eq!(s.attestations()["node-b"].at_ms, 5_000);
        assert_eq!(
            s.apply(&attest("node-z", 9, 6_000, &a)),
            Err(Rejected::NotAMember("node-z".into()))
        );
        // A member never heard from is isolated once three intervals have passed.
        assert!(s.judge("node-c", at(3_000)).is_isolated());
        // A removed member's statement goes with it.
        by_two(&mut s, MembershipStatement::Remove("node-b".into())).unwrap();
        assert!(!s.attestations().contains_key("node-b"));
    }

    #[test]
    fn releases_are_allowed_and_retired_by_two_administrators_and_never_all_retired() {
        let mut s = state();
        let (a, b) = (release('a'), release('b'));
        let allow = |r: &crate::attest::Release, who: &[(&str, u8)]| {
            let statement = AllowReleaseStatement {
                release: r.clone(),
                reason: "CHG-7".into(),
            };
            let approvals = approve(kind::ALLOW_RELEASE, &statement, who);
            Command::AllowRelease {
                statement,
                approvals,
            }
        };
        let retire = |r: &crate::attest::Release, who: &[(&str, u8)]| {
            let statement = RetireStatement {
                binary: r.binary.clone(),
                advisory: "RUSTSEC-2026-0042".into(),
                at_ms: 20_000,
            };
            let approvals = approve(kind::RETIRE_RELEASE, &statement, who);
            Command::RetireRelease {
                statement,
                approvals,
            }
        };
        // The only build cannot be retired: every node would be cut off.
        let e = s
            .apply(&retire(&a, &[("sec.1", 11), ("sec.2", 12)]))
            .unwrap_err();
        assert!(e.to_string().contains("allow its successor first"), "{e}");
        assert_eq!(
            s.apply(&allow(&b, &[("sec.1", 11)])),
            Err(Rejected::TooFewAdmins { got: 1, needed: 2 })
        );
        // Approvals of an allowance do not pass for a retirement.
        let statement = RetireStatement {
            binary: a.binary.clone(),
            advisory: "X".into(),
            at_ms: 1,
        };
        let forged = Command::RetireRelease {
            approvals: approve(
                kind::ALLOW_RELEASE,
                &statement,
                &[("sec.1", 11), ("sec.2", 12)],
            ),
            statement,
        };
        assert_eq!(
            s.apply(&forged),
            Err(Rejected::BadSignature("sec.1".into()))
        );
        assert!(s.apply(&allow(&b, &[("sec.1", 11), ("sec.2", 12)])).is_ok());
        assert_eq!(
            s.apply(&retire(&a, &[("sec.1", 11), ("sec.2", 12)])),
            Ok(Applied::ReleaseRetired {
                version: "0.1.a".into(),
                advisory: "RUSTSEC-2026-0042".into()
            })
        );
        // A node on the retired build drifts for the grace period, then is cut off.
        s.apply(&attest("node-a", 1, 25_000, &a)).unwrap();
        s.apply(&attest("node-b", 2, 25_000, &b)).unwrap();
        assert!(matches!(
            s.judge("node-a", at(25_500)),
            Verdict::Drifting { .. }
        ));
        assert!(matches!(
            s.judge("node-b", at(25_500)),
            Verdict::Attested { .. }
        ));
        s.apply(&attest("node-a", 1, 30_000, &a)).unwrap();
        let v = s.judge("node-a", at(30_000));
        assert!(
            v.to_string().contains("retired for RUSTSEC-2026-0042"),
            "{v}"
        );
        assert!(v.is_isolated());
        // A retired build is never allowed back.
        let e = s
            .apply(&allow(&a, &[("sec.1", 11), ("sec.2", 12)]))
            .unwrap_err();
        assert!(e.to_string().contains("never allowed again"), "{e}");
        let back = SecurityState::restore(&s.snapshot().unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn rules_put_in_force_through_the_log_join_the_allowed_documents() {
        let mut s = state();
        let statement = PolicyStatement::new(1, "{\"format\":\"x\"}".into());
        let digest = statement.digest.clone();
        let approvals = approve(kind::RULES, &statement, &[("sec.1", 11), ("sec.2", 12)]);
        s.apply(&Command::SetRules {
            statement,
            approvals,
        })
        .unwrap();
        assert!(s.allowed_set().rules.contains(&digest));
        // The ceremony's stay allowed: a node that has not carried the new ones yet is
        // not cut off for it (the freshness check covers a node that lags).
        assert!(s.allowed_set().rules.contains(&"r".repeat(64)));
    }

    #[test]
    fn a_resharing_needs_two_administrators_and_each_step_its_own_nodes_signature() {
        use crate::custodians::{DealtStatement, ReceivedStatement, ReshareStatement, Step};
        let mut s = state();
        let statement = ReshareStatement {
            set: 2,
            holders: BTreeMap::from([
                (1, "node-a".into()),
                (2, "node-c".into()),
                (3, "node-b".into()),
            ]),
            threshold: 2,
            dealers: vec![1, 3],
            reason: "hosts swapped".into(),
            rotate: None,
        };
        let approve = |seed: u8, name: &str| Approval {
            admin: name.into(),
            sig: kp(seed).sign(kind::RESHARE, &statement).unwrap(),
        };
        let one = Command::Reshare {
            statement: statement.clone(),
            approvals: vec![approve(11, "sec.1")],
        };
        assert!(matches!(s.apply(&one), Err(Rejected::TooFewAdmins { .. })));
        let two = Command::Reshare {
            statement: statement.clone(),
            approvals: vec![approve(11, "sec.1"), approve(12, "sec.2")],
        };
        assert_eq!(s.apply(&two), Ok(Applied::Custodians(Step::Started(2))));
        let dealt = |dealer: u32, by: &str, seed: u8| {
            let st = DealtStatement {
                set: 2,
                dealer,
                commitments: BTreeMap::from([("identity".into(), vec!["aa".into(); 2])]),
            };
            Command::ReshareDealt {
                sig: kp(seed).sign(kind::RESHARE_DEALT, &st).unwrap(),
                statement: st,
                by: by.into(),
            }
        };
        // node-c's commitments under node-a's key: refused.
        assert_eq!(
            s.apply(&dealt(3, "node-c", 1)),
            Err(Rejected::BadSignature("node-c".into()))
        );
        assert_eq!(
            s.apply(&dealt(1, "node-a", 1)),
            Ok(Applied::Custodians(Step::Dealt(1)))
        );
        assert_eq!(
            s.apply(&dealt(3, "node-c", 3)),
            Ok(Applied::Custodians(Step::Dealt(3)))
        );
        let ready = |custodian: u32, by: &str, seed: u8| {
            let st = ReceivedStatement {
                set: 2,
                custodian,
                witness: Some(format!("w{custodian}")),
            };
            Command::ReshareReceived {
                sig: kp(seed).sign(kind::RESHARE_RECEIVED, &st).unwrap(),
                statement: st,
                by: by.into(),
            }
        };
        for (i, by, seed) in [(1, "node-a", 1u8), (2, "node-c", 3)] {
            s.apply(&ready(i, by, seed)).unwrap();
        }
        let before = s.snapshot().unwrap();
        assert_eq!(
            s.apply(&ready(3, "node-b", 1)),
            Err(Rejected::BadSignature("node-b".into()))
        );
        assert_eq!(s.custodians().set.number, 1);
        assert_eq!(
            s.apply(&ready(3, "node-b", 2)),
            Ok(Applied::Custodians(Step::InForce(2)))
        );
        assert_ne!(s.snapshot().unwrap(), before);
        assert_eq!(
            s.custodians().set.holders.get(&2).map(String::as_str),
            Some("node-c")
        );
        let back = SecurityState::restore(&s.snapshot().unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
