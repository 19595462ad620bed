//! Decisions: each response the mesh carries out is a signed record with its evidence,
//! kept in the node's decision log, and lifted early only when two distinct
//! administrators approve (one person can neither silence an alarm nor free an attacker).

use crate::response::{Action, Finding, Severity, Target};
use crate::rules::Mode;
use base64ct::{Base64, Encoding};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// Format string of a decision.
pub const DECISION_FORMAT: &str = "ribat-decision/v1";

/// Distinct administrators needed to release a decision.
pub const RELEASE_APPROVALS: usize = 2;

/// Errors about decisions.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecisionError {
    /// The signature does not verify under the node's key.
    #[error("decision {id}: the signature does not verify under the node's decision key")]
    BadSignature {
        /// Decision id.
        id: String,
    },
    /// Malformed.
    #[error("decision {id}: {reason}")]
    Malformed {
        /// Decision id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// Nothing to release.
    #[error("no decision {0} is in force")]
    Unknown(String),
    /// The same administrator twice.
    #[error(
        "{admin} has already approved releasing {id}; a second, different administrator must approve"
    )]
    SameAdministrator {
        /// Decision id.
        id: String,
        /// Administrator.
        admin: String,
    },
    /// The target of the decision approving its own release.
    #[error("{admin} is the target of {id} and cannot approve its release")]
    OwnDecision {
        /// Decision id.
        id: String,
        /// Administrator.
        admin: String,
    },
}

/// A signed decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// `ribat-decision/v1`.
    pub format: String,
    /// Short id (hex), unique per node.
    pub id: String,
    /// When it was decided, ms since the epoch.
    pub time_ms: u64,
    /// The node that decided.
    pub node: String,
    /// The rule that fired.
    pub rule: String,
    /// `enforce` or `shadow` (a shadow decision is an alert that changed nothing).
    pub mode: Mode,
    /// How bad.
    pub severity: Severity,
    /// One line for people.
    pub title: String,
    /// Who or what.
    pub target: Target,
    /// The response.
    pub action: Action,
    /// When it ends, ms since the epoch.
    pub until_ms: u64,
    /// The events that led to it (no personal data).
    pub evidence: Vec<String>,
    /// When every component enforced it, ms since the epoch (`None` for shadow decisions).
    pub enforced_ms: Option<u64>,
    /// The components that enforce it.
    pub enforced_by: Vec<String>,
    /// Hex SHA-256 of the node's decision key, first 8 bytes.
    pub key_id: String,
    /// Ed25519 signature (base64) over [`Decision::signed_bytes`].
    pub signature: String,
}

impl Decision {
    /// A decision from a finding, not yet signed.
    pub fn from_finding(node: &str, f: &Finding, mode: Mode, time_ms: u64, seq: u64) -> Self {
        let id = {
            let mut h = Sha256::new();
            for part in [node, f.rule.as_str(), &f.target.to_string()] {
                h.update(part.as_bytes());
                h.update([0]);
            }
            h.update(time_ms.to_be_bytes());
            h.update(seq.to_be_bytes());
            hex::encode(&h.finalize()[..8])
        };
        Self {
            format: DECISION_FORMAT.into(),
            id,
            time_ms,
            node: node.into(),
            rule: f.rule.as_str().to_owned(),
            mode,
            severity: f.severity,
            title: f.title.clone(),
            target: f.target.clone(),
            action: if mode == Mode::Shadow {
                Action::Alert
            } else {
                f.action
            },
            until_ms: time_ms.saturating_add(f.duration_secs.saturating_mul(1000)),
            evidence: f.evidence.clone(),
            enforced_ms: None,
            enforced_by: Vec::new(),
            key_id: String::new(),
            signature: String::new(),
        }
    }

    /// What is signed: the format line and the record's JSON with an empty signature.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut unsigned = self.clone();
        unsigned.signature.clear();
        let mut out = format!("{DECISION_FORMAT}\n").into_bytes();
        // Strings, numbers and enums only: serialising cannot fail.
        out.extend(serde_json::to_vec(&unsigned).unwrap_or_default());
        out
    }

    /// Whether the response changes anything (not an alert, not shadow).
    pub fn enforces(&self) -> bool {
        self.mode == Mode::Enforce && self.action != Action::Alert
    }

    /// Checks the signature under `key`.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), DecisionError> {
        if self.format != DECISION_FORMAT {
            return Err(DecisionError::Malformed {
                id: self.id.clone(),
                reason: format!("format `{}` is not `{DECISION_FORMAT}`", self.format),
            });
        }
        let sig = Base64::decode_vec(&self.signature)
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or_else(|| DecisionError::Malformed {
                id: self.id.clone(),
                reason: "the signature is not a base64 Ed25519 signature".into(),
            })?;
        key.verify(&self.signed_bytes(), &sig)
            .map_err(|_| DecisionError::BadSignature {
                id: self.id.clone(),
            })
    }
}

/// The node's decision-signing key.
pub struct DecisionSigner {
    key: SigningKey,
}

impl std::fmt::Debug for DecisionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DecisionSigner({})", self.key_id())
    }
}

impl DecisionSigner {
    /// From a 32-byte seed (the caller zeroizes its copy).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The verifying key.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }

    /// First 8 bytes of SHA-256 of the verifying key, hex.
    pub fn key_id(&self) -> String {
        key_id(&self.verifying_key())
    }

    /// Signs a decision in place.
    pub fn sign(&self, d: &mut Decision) {
        d.key_id = self.key_id();
        d.signature.clear();
        let sig = self.key.sign(&d.signed_bytes());
        d.signature = Base64::encode_string(&sig.to_bytes());
    }
}

/// Key id of a verifying key.
pub fn key_id(k: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(k.as_bytes())[..8])
}

/// One administrator's approval to release a decision early.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Release {
    /// Decision id.
    pub decision: String,
    /// Administrator identity (from its certificate and token).
    pub admin: String,
    /// When, ms.
    pub time_ms: u64,
    /// Why (free text from the administrator).
    pub reason: String,
}

/// Where a release stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseState {
    /// Approved by these, waiting for more.
    Pending {
        /// Approvals so far.
        approvals: Vec<String>,
    },
    /// Released: approved by these.
    Released {
        /// The approving administrators.
        approvals: Vec<String>,
    },
}

/// Approvals per decision in force (a pure state machine: the gateway replays it from
/// its decision log at start).
#[derive(Debug, Default, Clone)]
pub struct ReleaseBook {
    in_force: BTreeMap<String, Target>,
    approvals: BTreeMap<String, BTreeSet<String>>,
}

impl ReleaseBook {
    /// A decision now in force.
    pub fn decided(&mut self, d: &Decision) {
        if d.enforces() {
            self.in_force.insert(d.id.clone(), d.target.clone());
        }
    }

    /// A decision that ended (expired or released).
    pub fn ended(&mut self, id: &str) {
        self.in_force.remove(id);
        self.approvals.remove(id);
    }

    /// The administrators who approved releasing decision `id` so far (it is in force).
    pub fn approvals(&self, id: &str) -> Vec<String> {
        self.approvals
            .get(id)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Records one approval; the decision is released at the second distinct one.
    pub fn approve(&mut self, r: &Release) -> Result<ReleaseState, DecisionError> {
        let target = self
            .in_force
            .get(&r.decision)
            .ok_or_else(|| DecisionError::Unknown(r.decision.clone()))?;
        if *target == Target::Identity(r.admin.clone()) {
            return Err(DecisionError::OwnDecision {
                id: r.decision.clone(),
                admin: r.admin.clone(),
            });
        }
        let set = self.approvals.entry(r.decision.clone()).or_default();
        if !set.insert(r.admin.clone()) {
            return Err(DecisionError::SameAdministrator {
                id: r.decision.clone(),
                admin: r.admin.clone(),
            });
        }
        let approvals: Vec<String> = set.iter().cloned().collect();
        if approvals.len() >= RELEASE_APPROVALS {
            self.ended(&r.decision);
            Ok(ReleaseState::Released { approvals })
        } else {
            Ok(ReleaseState::Pending { approvals })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(signer: &DecisionSigner) -> Decision {
        let f = Finding {
            rule: crate::RuleId::Velocity,
            title: "partner-x read 9 distinct subjects within 10 s".into(),
            severity: Severity::High,
            target: Target::Identity("partner-x".into()),
            action: Action::Quarantine,
            duration_secs: 86_400,
            evidence: vec!["e1".into(), "e2".into()],
        };
        let mut d = Decision::from_finding("gateway.embedded", &f, Mode::Enforce, 1_000, 0);
        d.enforced_ms = Some(1_004);
        d.enforced_by = vec!["gateway.embedded".into(), "custodian-1".into()];
        signer.sign(&mut d);
        d
    }

    #[test]
    fn a_signed_decision_verifies_and_any_change_breaks_it() {
        let signer = DecisionSigner::from_seed(&[7; 32]);
        let d = decision(&signer);
        d.verify(&signer.verifying_key()).unwrap();
        assert_eq!(d.until_ms, 1_000 + 86_400_000);
        for tamper in [
            |d: &mut Decision| d.until_ms = 2_000,
            |d: &mut Decision| d.target = Target::Identity("someone-else".into()),
            |d: &mut Decision| d.evidence.pop().map_or((), drop),
            |d: &mut Decision| d.mode = Mode::Shadow,
        ] {
            let mut t = d.clone();
            tamper(&mut t);
            assert_eq!(
                t.verify(&signer.verifying_key()),
                Err(DecisionError::BadSignature { id: d.id.clone() })
            );
        }
        let other = DecisionSigner::from_seed(&[8; 32]);
        assert!(d.verify(&other.verifying_key()).is_err());
        let json = serde_json::to_string(&d).unwrap();
        let back: Decision = serde_json::from_str(&json).unwrap();
        back.verify(&signer.verifying_key()).unwrap();
    }

    #[test]
    fn release_needs_two_distinct_administrators_and_not_the_target() {
        let signer = DecisionSigner::from_seed(&[7; 32]);
        let d = decision(&signer);
        let mut book = ReleaseBook::default();
        book.decided(&d);
        let approve = |admin: &str| Release {
            decision: d.id.clone(),
            admin: admin.into(),
            time_ms: 2_000,
            reason: "false positive, partner confirmed".into(),
        };
        assert!(matches!(
            book.approve(&approve("partner-x")),
            Err(DecisionError::OwnDecision { .. })
        ));
        assert_eq!(
            book.approve(&approve("sec.amina")).unwrap(),
            ReleaseState::Pending {
                approvals: vec!["sec.amina".into()]
            }
        );
        assert!(matches!(
            book.approve(&approve("sec.amina")),
            Err(DecisionError::SameAdministrator { .. })
        ));
        assert_eq!(
            book.approve(&approve("sec.youssef")).unwrap(),
            ReleaseState::Released {
                approvals: vec!["sec.amina".into(), "sec.youssef".into()]
            }
        );
        assert_eq!(
            book.approve(&approve("sec.karim")),
            Err(DecisionError::Unknown(d.id.clone()))
        );
    }

    #[test]
    fn a_key_id_is_the_first_eight_bytes_of_the_verifying_keys_sha256_and_debug_shows_only_it() {
        let signer = DecisionSigner::from_seed(&[7; 32]);
        let vk = signer.verifying_key();
        let expected = hex::encode(&Sha256::digest(vk.as_bytes())[..8]);
        assert_eq!(signer.key_id(), expected);
        assert_eq!(key_id(&vk), expected);
        assert_ne!(DecisionSigner::from_seed(&[8; 32]).key_id(), expected);
        let shown = format!("{signer:?}");
        assert_eq!(shown, format!("DecisionSigner({expected})"));
        assert!(
            !shown.contains(&hex::encode([7u8; 32])),
            "the seed stays hidden"
        );
    }

    #[test]
    fn only_an_enforced_response_that_is_not_an_alert_enforces() {
        let f = |action| Finding {
            rule: crate::rule_id::RuleId::Velocity,
            title: "t".into(),
            severity: Severity::High,
            target: Target::Identity("p-1".into()),
            action,
            duration_secs: 60,
            evidence: vec![],
        };
        let d = |action, mode| Decision::from_finding("gw", &f(action), mode, 1, 0).enforces();
        assert!(d(Action::Quarantine, Mode::Enforce));
        assert!(!d(Action::Quarantine, Mode::Shadow));
        assert!(!d(Action::Alert, Mode::Enforce));
        assert!(!d(Action::Alert, Mode::Shadow));
    }
}
