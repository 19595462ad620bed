//! What the mesh's log carries. Raft orders and replicates these; the signatures inside
//! make them authentic, and every node checks them when it applies an entry
//! ([`crate::state::SecurityState::apply`]), so a leader can reorder or delay entries but
//! cannot forge one.
//!
//! | entry | restricts or relaxes | signatures it needs |
//! |---|---|---|
//! | `Restrict` | restricts | the member that decided |
//! | `Endorse` | restricts (counts towards mesh-wide) | another member, over the same decision |
//! | `Revoke` | restricts | one administrator |
//! | `Grant` | relaxes (a certificate may act) | two distinct administrators, neither its holder |
//! | `Recertify` | relaxes (a third party's access goes on) | one administrator, not its holder |
//! | `AllowExport` | relaxes (a bulk read) | two distinct administrators, neither the recipient |
//! | `Release` | relaxes | two distinct administrators, neither the decision's target |
//! | `SetPolicy`, `SetRules` | either | two distinct administrators |
//! | `AddMember`, `RemoveMember` | either | two distinct administrators |
//! | `Attest` | neither (judged by each node against the allowed set) | the member itself |
//! | `AllowRelease` | relaxes (a build may run) | two distinct administrators |
//! | `RetireRelease` | restricts (nodes on it drift, then are isolated) | two distinct administrators |
//! | `Reshare` | either (who holds the custodians) | two distinct administrators |
//! | `ReshareDealt` | neither (public commitments) | the dealer's node |
//! | `ReshareReceived` | neither (a new custodian is ready) | the new custodian's node |
//! | `Resealed` | neither (the previous key epoch's shares go) | the re-sealing job's node |

use crate::attest::{AllowReleaseStatement, Attestation, RetireStatement};
use crate::custodians::{DealtStatement, ReceivedStatement, ResealedStatement, ReshareStatement};
use crate::sign::{PublicKey, Sig};
use ribat_detect::response::{Action, Target};
use serde::{Deserialize, Serialize};

/// A node of the mesh: its name (its certificate's) and the key it signs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Unique name, e.g. `node-a`.
    pub name: String,
    /// Its Ed25519 node key.
    pub key: PublicKey,
    /// SHA-256 of its node certificate, base64url: the one certificate the mesh answers in
    /// its name (whoever holds the CA's key cannot mint another with the member's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
}

/// A security administrator: whose two signatures relax anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admin {
    /// Identity name (as in the certificate register).
    pub name: String,
    /// Their signing key.
    pub key: PublicKey,
}

/// A decision to restrict, as the node whose detectors fired made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restriction {
    /// Id, unique in the mesh (the deciding node's name is part of it).
    pub id: String,
    /// The rule that fired.
    pub rule: String,
    /// Who or what.
    pub target: Target,
    /// The response.
    pub action: Action,
    /// When it ends, ms since the epoch: each node compares it with its own clock, so the
    /// log never has to carry time (a leader cannot make a restriction end early).
    pub until_ms: u64,
    /// Hex SHA-256 of the evidence (the events are kept where they were seen).
    pub evidence: String,
}

/// One administrator's signature on a statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The administrator.
    pub admin: String,
    /// Their signature over the statement.
    pub sig: Sig,
}

/// The statement administrators sign to lift a restriction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseStatement {
    /// The restriction.
    pub id: String,
    /// Why.
    pub reason: String,
}

/// The statement administrators sign to revoke a certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeStatement {
    /// Certificate serial, lowercase hex.
    pub serial: String,
    /// Why.
    pub reason: String,
}

/// The statement administrators sign to put a policy (or the detection rules) in force: the
/// document itself travels in the log, so every node's gateway and custodian apply the same
/// one, and none reads it from a file somebody could swap. Signed as [`kind::POLICY`] or
/// [`kind::RULES`], so approvals of one never pass for the other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyStatement {
    /// Strictly greater than the one in force.
    pub version: u64,
    /// Hex SHA-256 of `document` (what logs and `mesh status` show).
    pub digest: String,
    /// The policy, as `policy.json` holds it.
    pub document: String,
}

impl PolicyStatement {
    /// The statement for `document` at `version`, its digest computed.
    pub fn new(version: u64, document: String) -> Self {
        use sha2::Digest;
        Self {
            version,
            digest: hex::encode(sha2::Sha256::digest(document.as_bytes())),
            document,
        }
    }
}

/// A certificate in the identity register: what two administrators granted. The
/// thumbprint binds the very certificate, so that whoever holds the CA's key cannot mint
/// another one with a granted serial and be let in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Identity name (the certificate's CN).
    pub name: String,
    /// Role (OU).
    pub role: String,
    /// Institution (O).
    pub institution: String,
    /// Serial, lowercase hex.
    pub serial: String,
    /// SHA-256 of the DER certificate, base64url (the tokens' `cnf` binding).
    pub thumbprint: String,
    /// When the certificate expires, Unix seconds (shown; TLS refuses it after).
    pub not_after: i64,
    /// When its access lapses unless an administrator re-certifies it, Unix seconds:
    /// required for third parties ([`REVIEWED_ROLES`]), each node's clock decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_by: Option<i64>,
}

/// Roles whose certificates carry a review date: the partners and batch systems outside
/// the fund's own staff, the door of 2025.
pub use ribat_policy::REVIEWED_ROLES;

/// The statement an administrator signs to keep a third party's access beyond its review
/// date, after reviewing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecertifyStatement {
    /// The certificate's serial, lowercase hex.
    pub serial: String,
    /// The next review date, Unix seconds (later than the one in force).
    pub review_by: i64,
    /// What was reviewed (a contract, a ticket).
    pub reason: String,
}

/// The statement administrators sign to let certificates act in the mesh: issuing a
/// certificate only makes it; granting it, by two administrators through the log, is
/// what lets it in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantStatement {
    /// The certificates, one or more.
    pub certificates: Vec<Registration>,
    /// Why (a ticket, a contract).
    pub reason: String,
}

/// The statement administrators sign to let one bulk export be read: in a mesh, every
/// custodian answers reads under the `export` role only within what such statements allow
/// (so many distinct persons for that recipient, until then), whatever a gateway says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportStatement {
    /// The export's id (as the export desk filed it).
    pub id: String,
    /// The partner it goes to (the reads are made as `export/RECIPIENT`).
    pub recipient: String,
    /// Why.
    pub purpose: String,
    /// How many distinct persons may be read for it.
    pub persons: u64,
    /// Until when it may be read, ms since the epoch (each node's clock decides).
    pub until_ms: u64,
}

/// Where a member sits in Raft: its id and the address its peers reach it at. The
/// ceremony's members have theirs in every node's `mesh.json`; a member that joins later
/// carries its seat in the statement the administrators sign, so that no node learns an
/// address from anyone but them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seat {
    /// Raft id, unique in the mesh for good (a removed member's id is not given again).
    pub raft_id: u64,
    /// `HOST:PORT`.
    pub addr: String,
}

/// The statement administrators sign to change who is a member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MembershipStatement {
    /// A node joins.
    Add {
        /// Its name and key.
        member: Member,
        /// Where it sits in Raft.
        seat: Seat,
    },
    /// A node leaves; its signatures count no more, and the leader takes it out of Raft.
    Remove(String),
}

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// A member restricts (enforced by every node at once).
    Restrict {
        /// The decision.
        restriction: Restriction,
        /// The member that decided.
        by: String,
        /// Its signature over the decision.
        sig: Sig,
    },
    /// Another member signs the same decision; at `threshold` signers it is in force
    /// mesh-wide.
    Endorse {
        /// The decision's id.
        id: String,
        /// The member.
        by: String,
        /// Its signature over the decision as first logged.
        sig: Sig,
    },
    /// Two administrators lift a restriction.
    Release {
        /// What they signed.
        statement: ReleaseStatement,
        /// Their signatures.
        approvals: Vec<Approval>,
    },
    /// An administrator revokes a certificate, for good.
    Revoke {
        /// What they signed.
        statement: RevokeStatement,
        /// Their signatures (one suffices).
        approvals: Vec<Approval>,
    },
    /// Two administrators grant certificates: from then on they may act in the mesh.
    Grant {
        /// What they signed.
        statement: GrantStatement,
        /// Their signatures.
        approvals: Vec<Approval>,
    },
    /// An administrator re-certifies a third party's access until a later review date.
    Recertify {
        /// What they signed.
        statement: RecertifyStatement,
        /// Their signatures (one suffices).
        approvals: Vec<Approval>,
    },
    /// Two administrators let one bulk export be read.
    AllowExport {
        /// What they signed.
        statement: ExportStatement,
        /// Their signatures.
        approvals: Vec<Approval>,
    },
    /// Two administrators put a policy in force.
    SetPolicy {
        /// What they signed.
        statement: PolicyStatement,
        /// Their signatures.
        approvals: Vec<Approval>,
    },
    /// Two administrators put detection rules in force (`rules.json`'s document).
    SetRules {
        /// What they signed.
        statement: PolicyStatement,
        /// Their signatures.
        approvals: Vec<Approval>,
    },
    /// Two administrators change the membership.
    Membership {
        /// What they signed.
        statement: MembershipStatement,
        /// Their signatures.
        approvals: Vec<Approval>,
    },
    /// A member says what it runs (every node judges it against the allowed set).
    Attest {
        /// The statement (it names the member).
        attestation: Attestation,
        /// The member's signature over it.
        sig: Sig,
    },
    /// Two administrators allow a release.
    AllowRelease {
        /// What they signed.
        statement: AllowReleaseStatement,
        /// Their signatures.
        approvals: Vec<Approval>,
    },
    /// Two administrators retire a release.
    RetireRelease {
        /// What they signed.
        statement: RetireStatement,
        /// Their signatures.
        approvals: Vec<Approval>,
    },
    /// Two administrators move the custodians to a new set.
    Reshare {
        /// What they signed.
        statement: ReshareStatement,
        /// Their signatures.
        approvals: Vec<Approval>,
    },
    /// A dealer's node logs its commitments.
    ReshareDealt {
        /// The commitments.
        statement: DealtStatement,
        /// The node.
        by: String,
        /// Its signature.
        sig: Sig,
    },
    /// A new custodian's node says its shares are checked and sealed.
    ReshareReceived {
        /// Which custodian of which set.
        statement: ReceivedStatement,
        /// The node.
        by: String,
        /// Its signature.
        sig: Sig,
    },
    /// A key rotation's job node says no record is left under the previous epoch.
    Resealed {
        /// Which set and epoch.
        statement: ResealedStatement,
        /// The node.
        by: String,
        /// Its signature.
        sig: Sig,
    },
}

/// The kinds statements are signed as (see [`crate::sign::digest`]).
pub mod kind {
    /// A restriction (by its decider and its endorsers).
    pub const RESTRICT: &str = "restrict";
    /// A release.
    pub const RELEASE: &str = "release";
    /// A revocation.
    pub const REVOKE: &str = "revoke";
    /// A grant of certificates.
    pub const GRANT: &str = "grant";
    /// A bulk export allowed.
    pub const EXPORT: &str = "export";
    /// A third party's access re-certified.
    pub const RECERTIFY: &str = "recertify";
    /// A policy.
    pub const POLICY: &str = "policy";
    /// Detection rules.
    pub const RULES: &str = "rules";
    /// A membership change.
    pub const MEMBERSHIP: &str = "membership";
    /// A member's attestation.
    pub const ATTEST: &str = "attest";
    /// A release allowed.
    pub const ALLOW_RELEASE: &str = "allow-release";
    /// A release retired.
    pub const RETIRE_RELEASE: &str = "retire-release";
    /// A resharing started.
    pub const RESHARE: &str = "reshare";
    /// A dealer's commitments.
    pub const RESHARE_DEALT: &str = "reshare-dealt";
    /// A new custodian ready.
    pub const RESHARE_RECEIVED: &str = "reshare-received";
    /// Every record re-sealed after a key rotation (by the job's node).
    pub const RESEALED: &str = "resealed";
}

/// One line for logs: what the entry does and who signed, never a signature.
impl std::fmt::Display for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let admins = |a: &[Approval]| {
            a.iter()
                .map(|x| x.admin.as_str())
                .collect::<Vec<_>>()
                .join("+")
        };
        match self {
            Self::Restrict {
                restriction, by, ..
            } => write!(
                f,
                "restrict {} ({} on {}, rule {}) by {by}",
                restriction.id, restriction.action, restriction.target, restriction.rule
            ),
            Self::Endorse { id, by, .. } => write!(f, "endorse {id} by {by}"),
            Self::Release {
                statement,
                approvals,
            } => write!(f, "release {} by {}", statement.id, admins(approvals)),
            Self::Revoke {
                statement,
                approvals,
            } => write!(
                f,
                "revoke certificate {} by {}",
                statement.serial,
                admins(approvals)
            ),
            Self::Grant {
                statement,
                approvals,
            } => write!(
                f,
                "grant {} certificate(s) ({}) by {}",
                statement.certificates.len(),
                {
                    let mut names: Vec<String> = statement
                        .certificates
                        .iter()
                        .take(3)
                        .map(|c| format!("{} as {}", c.name, c.role))
                        .collect();
                    if statement.certificates.len() > 3 {
                        names.push(format!("{} more", statement.certificates.len() - 3));
                    }
                    names.join(", ")
                },
                admins(approvals)
            ),
            Self::Recertify {
                statement,
                approvals,
            } => write!(
                f,
                "recertify {} until {} by {}",
                statement.serial,
                statement.review_by,
                admins(approvals)
            ),
            Self::AllowExport {
                statement,
                approvals,
            } => write!(
                f,
                "allow export {} ({} persons to {}) by {}",
                statement.id,
                statement.persons,
                statement.recipient,
                admins(approvals)
            ),
            Self::SetPolicy {
                statement,
                approvals,
            } => write!(
                f,
                "policy version {} by {}",
                statement.version,
                admins(approvals)
            ),
            Self::SetRules {
                statement,
                approvals,
            } => write!(
                f,
                "rules version {} by {}",
                statement.version,
                admins(approvals)
            ),
            Self::Membership {
                statement,
                approvals,
            } => match statement {
                MembershipStatement::Add { member, seat } => write!(
                    f,
                    "add member {} (raft id {} at {}) by {}",
                    member.name,
                    seat.raft_id,
                    seat.addr,
                    admins(approvals)
                ),
                MembershipStatement::Remove(n) => {
                    write!(f, "remove member {n} by {}", admins(approvals))
                }
            },
            Self::Attest { attestation, .. } => write!(
                f,
                "attestation of {} ({})",
                attestation.node, attestation.measurement.release
            ),
            Self::AllowRelease {
                statement,
                approvals,
            } => write!(
                f,
                "allow release {} by {}",
                statement.release,
                admins(approvals)
            ),
            Self::RetireRelease {
                statement,
                approvals,
            } => write!(
                f,
                "retire binary {} for {} by {}",
                crate::attest::short(&statement.binary),
                statement.advisory,
                admins(approvals)
            ),
            Self::Reshare {
                statement,
                approvals,
            } => write!(
                f,
                "reshare to custodian set {} ({} of {}: {}) by {}",
                statement.set,
                statement.threshold,
                statement.holders.len(),
                crate::custodians::holders_line(&statement.holders),
                admins(approvals)
            ),
            Self::ReshareDealt { statement, by, .. } => write!(
                f,
                "custodian {} dealt set {} ({by})",
                statement.dealer, statement.set
            ),
            Self::ReshareReceived { statement, by, .. } => write!(
                f,
                "custodian {} of set {} is ready ({by})",
                statement.custodian, statement.set
            ),
            Self::Resealed { statement, by, .. } => write!(
                f,
                "every record re-sealed from epoch {} in set {} ({by})",
                statement.from_epoch, statement.set
            ),
        }
    }
}
