//! What a node's gateway and custodian must do so that they restrict exactly what the
//! security state restricts: a pure step from the state (and the node's clock) to the acts
//! still owed.
//!
//! Restricting is always safe, so a restriction is imposed as soon as its entry is applied
//! (one member's signature); a release is carried out only once it is in the state, which
//! means two administrators signed it. A target held twice the same way stays held until
//! both are released. A node that restarts has forgotten what it did: it owes every act
//! again, and imposing or lifting twice is harmless.
//!
//! What travels ([`carried`]): an identity's quarantine, step-up or throttle, and a role's
//! fall-back to essential services. Restrictions of one certificate, one source address or
//! one node stay where they were decided: they are about what that node saw of a peer.

use crate::state::{Held, SecurityState};
use ribat_detect::response::{Action, Target};
use std::collections::BTreeSet;

/// One act owed by a custodian.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Act {
    /// Restrict `target` by `action` until `until_ms`: refuse an identity (a quarantine,
    /// carried out by gateways and custodians), ask a supervisor's co-signature of each of
    /// its requests (a step-up) or slow it down (a throttle), or serve a role's essential
    /// services only (these three carried out by gateways).
    Impose {
        /// The restriction.
        id: String,
        /// Whom: an identity, or a role for [`Action::Essential`].
        target: Target,
        /// One of the actions that are [`carried`].
        action: Action,
        /// Until, ms since the epoch.
        until_ms: u64,
    },
    /// Serve `target` again as the restriction did not.
    Lift {
        /// The restriction released.
        id: String,
        /// Whom.
        target: Target,
        /// What the restriction was.
        action: Action,
        /// The administrators whose signatures released it.
        by: Vec<String>,
    },
    /// Decide by this policy from now on (two administrators put it in force).
    SetPolicy {
        /// Its version.
        version: u64,
        /// The policy, as `policy.json` holds it.
        document: String,
    },
    /// Detect by these rules from now on (two administrators put them in force).
    SetRules {
        /// Their version.
        version: u64,
        /// The rules, as `rules.json` holds them.
        document: String,
    },
    /// Answer reads under the `export` role for `identity`: so many more distinct persons,
    /// until `until_ms` (two administrators allowed the export).
    AllowExport {
        /// The export.
        id: String,
        /// Who reads (`export/RECIPIENT`).
        identity: String,
        /// Distinct persons.
        persons: u64,
        /// Until, ms since the epoch.
        until_ms: u64,
    },
}

/// What has been carried out on this node since it started.
#[derive(Debug, Default)]
pub struct Enforcement {
    imposed: BTreeSet<String>,
    lifted: BTreeSet<String>,
    /// The policy version carried out (0: the one the node started with).
    policy: u64,
    /// Same for the detection rules.
    rules: u64,
    /// Exports whose allowance was handed on.
    allowed: BTreeSet<String>,
}

/// Whether a restriction of `target` by `action` travels through the mesh: every node
/// carries it out, not only the one whose detectors decided it.
pub fn carried(target: &Target, action: Action) -> bool {
    matches!(
        (target, action),
        (
            Target::Identity(_),
            Action::Quarantine | Action::StepUp | Action::Throttle { .. }
        ) | (Target::Role(_), Action::Essential)
    )
}

/// What a restriction holds and how, for the restrictions a node carries out from the log.
fn restricted(h: &Held) -> Option<(&Target, Action)> {
    let (target, action) = (&h.restriction.target, h.restriction.action);
    carried(target, action).then_some((target, action))
}

impl Enforcement {
    /// The acts owed by the state at `now_ms` that were not yet carried out.
    pub fn owed(&self, state: &SecurityState, now_ms: u64) -> Vec<Act> {
        let held: BTreeSet<(&Target, Action)> =
            state.in_force(now_ms).filter_map(restricted).collect();
        let mut acts = Vec::new();
        if let Some(p) = state.policy()
            && p.version > self.policy
        {
            acts.push(Act::SetPolicy {
                version: p.version,
                document: p.document.clone(),
            });
        }
        if let Some(r) = state.rules()
            && r.version > self.rules
        {
            acts.push(Act::SetRules {
                version: r.version,
                document: r.document.clone(),
            });
        }
        for e in state.exports() {
            if e.until_ms > now_ms && !self.allowed.contains(&e.id) {
                acts.push(Act::AllowExport {
                    id: e.id.clone(),
                    identity: format!("export/{}", e.recipient),
                    persons: e.persons,
                    until_ms: e.until_ms,
                });
            }
        }
        for h in state.restrictions() {
            let Some((target, action)) = restricted(h) else {
                continue;
            };
            let id = &h.restriction.id;
            if let Some(by) = &h.released_by {
                if !self.lifted.contains(id) && !held.contains(&(target, action)) {
                    acts.push(Act::Lift {
                        id: id.clone(),
                        target: target.clone(),
                        action,
                        by: by.iter().cloned().collect(),
                    });
                }
            } else if h.restriction.until_ms > now_ms && !self.imposed.contains(id) {
                acts.push(Act::Impose {
                    id: id.clone(),
                    target: target.clone(),
                    action,
                    until_ms: h.restriction.until_ms,
                });
            }
        }
        acts
    }

    /// Records that `act` was carried out (a failed act stays owed).
    pub fn done(&mut self, act: &Act) {
        match act {
            Act::Impose { id, .. } => {
                self.imposed.insert(id.clone());
            }
            Act::Lift { id, .. } => {
                self.lifted.insert(id.clone());
            }
            Act::SetPolicy { version, .. } => self.policy = self.policy.max(*version),
            Act::SetRules { version, .. } => self.rules = self.rules.max(*version),
            Act::AllowExport { id, .. } => {
                self.allowed.insert(id.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::{Approval, Command, ExportStatement, ReleaseStatement, Restriction, kind};
    use crate::sign::KeyPair;
    use crate::state::Genesis;
    use crate::{Admin, Member};

    struct World {
        state: SecurityState,
        node: KeyPair,
        admins: [KeyPair; 2],
    }

    fn world() -> World {
        let node = KeyPair::from_seed(&[1; 32]);
        let admins = [KeyPair::from_seed(&[2; 32]), KeyPair::from_seed(&[3; 32])];
        let g = Genesis {
            members: vec![Member {
                name: "node-1".into(),
                key: node.public(),
                cert: None,
            }],
            admins: vec![
                Admin {
                    name: "sec.a".into(),
                    key: admins[0].public(),
                },
                Admin {
                    name: "sec.b".into(),
                    key: admins[1].public(),
                },
            ],
            threshold: 1,
            seats: Default::default(),
            granted: Vec::new(),
            attestation: Default::default(),
            custodians: Default::default(),
        };
        World {
            state: SecurityState::new(&g),
            node,
            admins,
        }
    }

    impl World {
        fn restrict(&mut self, id: &str, who: &str, until_ms: u64) {
            self.restrict_by(id, who, Action::Quarantine, until_ms);
        }

        fn restrict_by(&mut self, id: &str, who: &str, action: Action, until_ms: u64) {
            self.restrict_until(id, Target::Identity(who.into()), action, until_ms);
        }

        fn restrict_target(&mut self, id: &str, target: Target, action: Action) {
            self.restrict_until(id, target, action, 10_000);
        }

        fn restrict_until(&mut self, id: &str, target: Target, action: Action, until_ms: u64) {
            let restriction = Restriction {
                id: id.into(),
                rule: "bulk-read".into(),
                target,
                action,
                until_ms,
                evidence: "00".into(),
            };
            let sig = self.node.sign(kind::RESTRICT, &restriction).unwrap();
            self.state
                .apply(&Command::Restrict {
                    restriction,
                    by: "node-1".into(),
                    sig,
                })
                .unwrap();
        }

        fn release(&mut self, id: &str, admins: usize) {
            let statement = ReleaseStatement {
                id: id.into(),
                reason: "checked".into(),
            };
            let approvals = self.admins[..admins]
                .iter()
                .zip(["sec.a", "sec.b"])
                .map(|(k, name)| Approval {
                    admin: name.into(),
                    sig: k.sign(kind::RELEASE, &statement).unwrap(),
                })
                .collect();
            let _ = self.state.apply(&Command::Release {
                statement,
                approvals,
            });
        }
    }

    impl World {
        fn set_policy(&mut self, version: u64, document: &str) {
            let statement = crate::command::PolicyStatement::new(version, document.into());
            let approvals = self
                .admins
                .iter()
                .zip(["sec.a", "sec.b"])
                .map(|(k, name)| Approval {
                    admin: name.into(),
                    sig: k.sign(kind::POLICY, &statement).unwrap(),
                })
                .collect();
            self.state
                .apply(&Command::SetPolicy {
                    statement,
                    approvals,
                })
                .unwrap();
        }
    }

    #[test]
    fn a_policy_in_force_is_owed_once_and_only_the_latest() {
        let mut w = world();
        let mut e = Enforcement::default();
        assert!(e.owed(&w.state, 0).is_empty(), "the start-up policy stands");
        w.set_policy(1, "{\"v\":1}");
        w.set_policy(2, "{\"v\":2}");
        let acts = e.owed(&w.state, 0);
        assert_eq!(
            acts,
            vec![Act::SetPolicy {
                version: 2,
                document: "{\"v\":2}".into()
            }]
        );
        carry_out(&mut e, &acts);
        assert!(e.owed(&w.state, 0).is_empty());
        // A node that restarts owes it again (it starts from its file's policy).
        assert_eq!(Enforcement::default().owed(&w.state, 0).len(), 1);
    }

    #[test]
    fn an_allowed_export_is_owed_once_while_it_lasts_and_again_after_a_restart() {
        let mut w = world();
        let statement = ExportStatement {
            id: "00000000000000e1".into(),
            recipient: "partner.y".into(),
            purpose: "partner-export".into(),
            persons: 12,
            until_ms: 9_000,
        };
        let approvals = w
            .admins
            .iter()
            .zip(["sec.a", "sec.b"])
            .map(|(k, name)| Approval {
                admin: name.into(),
                sig: k.sign(kind::EXPORT, &statement).unwrap(),
            })
            .collect();
        w.state
            .apply(&Command::AllowExport {
                statement,
                approvals,
            })
            .unwrap();
        let mut e = Enforcement::default();
        let acts = e.owed(&w.state, 1_000);
        assert_eq!(
            acts,
            vec![Act::AllowExport {
                id: "00000000000000e1".into(),
                identity: "export/partner.y".into(),
                persons: 12,
                until_ms: 9_000,
            }]
        );
        carry_out(&mut e, &acts);
        assert!(e.owed(&w.state, 1_000).is_empty());
        assert_eq!(Enforcement::default().owed(&w.state, 1_000).len(), 1);
        // Ended: nothing owed to a node that starts after.
        assert!(Enforcement::default().owed(&w.state, 9_000).is_empty());
    }

    fn carry_out(e: &mut Enforcement, acts: &[Act]) {
        for a in acts {
            e.done(a);
        }
    }

    #[test]
    fn a_quarantine_is_imposed_once_and_lifted_only_after_two_administrators() {
        let mut w = world();
        let mut e = Enforcement::default();
        assert!(e.owed(&w.state, 0).is_empty());
        w.restrict("node-1/a", "partner.x", 10_000);
        let acts = e.owed(&w.state, 0);
        assert_eq!(
            acts,
            vec![Act::Impose {
                id: "node-1/a".into(),
                target: Target::Identity("partner.x".into()),
                action: Action::Quarantine,
                until_ms: 10_000
            }]
        );
        carry_out(&mut e, &acts);
        assert!(e.owed(&w.state, 1).is_empty(), "imposed once");
        w.release("node-1/a", 1);
        assert!(
            e.owed(&w.state, 2).is_empty(),
            "one administrator lifts nothing"
        );
        w.release("node-1/a", 2);
        let acts = e.owed(&w.state, 3);
        assert_eq!(
            acts,
            vec![Act::Lift {
                id: "node-1/a".into(),
                target: Target::Identity("partner.x".into()),
                action: Action::Quarantine,
                by: vec!["sec.a".into(), "sec.b".into()]
            }]
        );
        carry_out(&mut e, &acts);
        assert!(e.owed(&w.state, 4).is_empty(), "lifted once");
    }

    #[test]
    fn an_identity_held_twice_stays_held_until_both_are_released() {
        let mut w = world();
        let mut e = Enforcement::default();
        w.restrict("node-1/a", "partner.x", 10_000);
        w.restrict("node-1/b", "partner.x", 20_000);
        let acts = e.owed(&w.state, 0);
        assert_eq!(acts.len(), 2);
        carry_out(&mut e, &acts);
        w.release("node-1/a", 2);
        assert!(e.owed(&w.state, 1).is_empty(), "b still holds partner.x");
        w.release("node-1/b", 2);
        assert_eq!(e.owed(&w.state, 2).len(), 2, "both lifts owed now");
    }

    #[test]
    fn a_restarted_node_owes_what_is_in_force_and_what_was_released() {
        let mut w = world();
        w.restrict("node-1/a", "partner.x", 10_000);
        w.restrict("node-1/b", "clerk.y", 10_000);
        w.restrict("node-1/old", "clerk.z", 5_000);
        w.release("node-1/b", 2);
        // A fresh start at 6 s: a is owed, b's release is owed (the custodian may still
        // hold clerk.y from before), the expired one is not imposed again.
        let acts = Enforcement::default().owed(&w.state, 6_000);
        assert_eq!(
            acts,
            vec![
                Act::Impose {
                    id: "node-1/a".into(),
                    target: Target::Identity("partner.x".into()),
                    action: Action::Quarantine,
                    until_ms: 10_000
                },
                Act::Lift {
                    id: "node-1/b".into(),
                    target: Target::Identity("clerk.y".into()),
                    action: Action::Quarantine,
                    by: vec!["sec.a".into(), "sec.b".into()]
                },
            ]
        );
    }

    #[test]
    fn a_step_up_is_carried_like_a_quarantine_and_neither_lifts_the_other() {
        let mut w = world();
        let mut e = Enforcement::default();
        w.restrict_by("node-1/s", "clerk.c", Action::StepUp, 10_000);
        w.restrict("node-1/q", "clerk.c", 10_000);
        let acts = e.owed(&w.state, 0);
        assert_eq!(
            acts,
            vec![
                Act::Impose {
                    id: "node-1/q".into(),
                    target: Target::Identity("clerk.c".into()),
                    action: Action::Quarantine,
                    until_ms: 10_000
                },
                Act::Impose {
                    id: "node-1/s".into(),
                    target: Target::Identity("clerk.c".into()),
                    action: Action::StepUp,
                    until_ms: 10_000
                },
            ]
        );
        carry_out(&mut e, &acts);
        // The step-up released: lifted, though the quarantine still holds the clerk.
        w.release("node-1/s", 2);
        assert_eq!(
            e.owed(&w.state, 1),
            vec![Act::Lift {
                id: "node-1/s".into(),
                target: Target::Identity("clerk.c".into()),
                action: Action::StepUp,
                by: vec!["sec.a".into(), "sec.b".into()]
            }]
        );
    }

    #[test]
    fn a_throttle_and_a_roles_essential_fallback_travel_and_what_a_node_saw_of_a_peer_does_not() {
        let mut w = world();
        let mut e = Enforcement::default();
        let throttle = Action::Throttle { per_minute: 2 };
        w.restrict_by("node-1/t", "partner.p", throttle, 10_000);
        w.restrict_target(
            "node-1/e",
            Target::Role("partner".into()),
            Action::Essential,
        );
        // Stay where they were decided: what one node saw of a certificate, an address or
        // a node, an alert, and a role held by anything but the fallback.
        w.restrict_target(
            "node-1/c",
            Target::Certificate("s-1".into()),
            Action::Quarantine,
        );
        w.restrict_target(
            "node-1/a",
            Target::Address("10.0.0.9".into()),
            Action::Quarantine,
        );
        w.restrict_target(
            "node-1/n",
            Target::Node("gateway.node-2".into()),
            Action::Quarantine,
        );
        w.restrict_by("node-1/al", "partner.p", Action::Alert, 10_000);
        w.restrict_target("node-1/r", Target::Role("clerk".into()), Action::Quarantine);
        let acts = e.owed(&w.state, 0);
        assert_eq!(
            acts,
            vec![
                Act::Impose {
                    id: "node-1/e".into(),
                    target: Target::Role("partner".into()),
                    action: Action::Essential,
                    until_ms: 10_000
                },
                Act::Impose {
                    id: "node-1/t".into(),
                    target: Target::Identity("partner.p".into()),
                    action: throttle,
                    until_ms: 10_000
                },
            ]
        );
        carry_out(&mut e, &acts);
        w.release("node-1/e", 2);
        assert_eq!(
            e.owed(&w.state, 1),
            vec![Act::Lift {
                id: "node-1/e".into(),
                target: Target::Role("partner".into()),
                action: Action::Essential,
                by: vec!["sec.a".into(), "sec.b".into()]
            }]
        );
        assert!(carried(&Target::Identity("x".into()), Action::Quarantine));
        assert!(!carried(&Target::Identity("x".into()), Action::Essential));
        assert!(!carried(&Target::Role("x".into()), Action::StepUp));
    }

    #[test]
    fn a_failed_act_stays_owed() {
        let mut w = world();
        let e = Enforcement::default();
        w.restrict("node-1/a", "partner.x", 10_000);
        assert_eq!(e.owed(&w.state, 0).len(), 1);
        assert_eq!(e.owed(&w.state, 1).len(), 1, "not marked done");
    }
}
