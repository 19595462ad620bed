//! The custodian's own checks, as a pure state machine: (state, request, now) → verdict.
//!
//! ```text
//!   request ─► malformed? ─► quarantined? ─► honey record? ─► role/purpose/class/table ─► quota ─► allow
//!                                               └─► quarantine the identity (command)
//! ```
//!
//! No I/O and no clock: the custodian feeds it requests and the time, logs the verdict,
//! and carries out its commands. Its state is rebuilt at start by replaying the custodian's
//! log, so a restart does not reset quotas or lift quarantines.

use crate::error::Denial;
use crate::policy::{INDEX_KEY_RECORD, LEAK_KEY_RECORD, Policy};
use crate::request::{MAX_RECORDS_PER_REQUEST, PartialRequest};
use crate::window::{QuotaBook, Scope};
use ribat_policy::{Purpose, Table};
use std::collections::{BTreeMap, HashSet};

/// An extra check a deployment plugs into every custodian, run after the built-in ones.
///
/// It sees the request and the time and answers allow or deny; it must be pure and fast
/// (it runs under the custodian's lock). Examples: office hours for counter roles, a case
/// reference required for public figures.
pub trait PolicyHook: Send + Sync {
    /// A short name, shown in denials.
    fn name(&self) -> &str;
    /// `Err(reason)` to refuse.
    fn check(&self, req: &PartialRequest, now: u64) -> Result<(), String>;
}

/// Something the custodian must do because of a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Quarantine an identity until a time.
    Quarantine {
        /// Identity.
        identity: String,
        /// Unix time.
        until: u64,
        /// Why, for the log and the security team.
        reason: String,
    },
}

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Allowed, or why not.
    pub outcome: Result<(), Denial>,
    /// What the custodian must do.
    pub commands: Vec<Command>,
}

/// The guard's state.
#[derive(Clone)]
pub struct Guard {
    policy: Policy,
    hooks: Vec<std::sync::Arc<dyn PolicyHook>>,
    honey: HashSet<(String, String)>,
    quarantined: BTreeMap<String, u64>,
    /// Distinct records per window, per identity and per role.
    quotas: QuotaBook,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field(
                "hooks",
                &self
                    .hooks
                    .iter()
                    .map(|h| h.name().to_owned())
                    .collect::<Vec<_>>(),
            )
            .field("quarantined", &self.quarantined)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// A guard with no history.
    pub fn new(policy: Policy, honey: impl IntoIterator<Item = (String, String)>) -> Self {
        Self {
            policy,
            hooks: Vec::new(),
            honey: honey.into_iter().collect(),
            quarantined: BTreeMap::new(),
            quotas: QuotaBook::default(),
        }
    }

    /// The policy it decides by.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Decides by `policy` from now on; the quotas already counted stay counted.
    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Adds honey records; returns how many were new.
    pub fn add_honey(&mut self, records: &[(String, String)]) -> usize {
        records
            .iter()
            .filter(|r| self.honey.insert((*r).clone()))
            .count()
    }

    /// The honey records, sorted (for sealing to disk).
    pub fn honey_list(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self.honey.iter().cloned().collect();
        v.sort();
        v
    }

    /// Adds a deployment's own check.
    pub fn add_hook(&mut self, hook: std::sync::Arc<dyn PolicyHook>) {
        self.hooks.push(hook);
    }

    /// Judges a request at time `now`; when allowed, counts its records against the quota.
    pub fn decide(&mut self, req: &PartialRequest, now: u64) -> Verdict {
        let mut commands = Vec::new();
        let outcome = self
            .judge(req, now, &mut commands)
            .and_then(|()| self.check_quotas(req, now));
        for c in &commands {
            self.apply(c);
        }
        if outcome.is_ok() {
            self.record_served(
                &req.requester.identity,
                &req.requester.role,
                req.table.as_str(),
                &req.record_ids,
                now,
            );
        }
        Verdict { outcome, commands }
    }

    fn judge(
        &self,
        req: &PartialRequest,
        now: u64,
        commands: &mut Vec<Command>,
    ) -> Result<(), Denial> {
        let who = &req.requester;
        // A purpose is never empty here: `Purpose` cannot be built empty, and a request
        // whose purpose is missing or malformed is refused when it is read off the wire.
        if req.record_ids.is_empty() || req.record_ids.len() > MAX_RECORDS_PER_REQUEST {
            return Err(Denial::Malformed {
                reason: format!(
                    "a request names 1 to {MAX_RECORDS_PER_REQUEST} records, this one names {}",
                    req.record_ids.len()
                ),
            });
        }
        if let Some(&until) = self.quarantined.get(&who.identity).filter(|&&u| u > now) {
            return Err(Denial::Quarantined {
                identity: who.identity.clone(),
                until,
            });
        }
        // A rotation re-seals honey records like any other. The purpose is answered only
        // while a rotation is under way, only for records not yet re-sealed (each once),
        // and in a mesh only to the gateway of the node the administrators named for the
        // job (`serve::CustodianService::rotation_job`).
        if req.purpose != Purpose::KEY_ROTATION
            && req
                .record_ids
                .iter()
                .any(|id| self.honey.contains(&(req.table.to_string(), id.clone())))
        {
            // Hostile by definition. The requester is told only that it is quarantined.
            let until = now.saturating_add(self.policy.honey_quarantine_secs);
            commands.push(Command::Quarantine {
                identity: who.identity.clone(),
                until,
                reason: "honey record requested".into(),
            });
            return Err(Denial::Quarantined {
                identity: who.identity.clone(),
                until,
            });
        }
        let role = self
            .policy
            .roles
            .get(&who.role)
            .ok_or_else(|| Denial::UnknownRole {
                role: who.role.clone(),
            })?;
        if !role.purposes.contains(&req.purpose) {
            return Err(Denial::PurposeNotAllowed {
                role: who.role.clone(),
                purpose: req.purpose.clone(),
                allowed: role.purposes.iter().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        if !role.classes.contains(&req.class) {
            return Err(Denial::ClassNotAllowed {
                role: who.role.clone(),
                class: req.class.clone(),
            });
        }
        // Service keys are opened only under their own purpose, and that purpose opens
        // nothing else: a service identity cannot read persons.
        let key_record = if req.purpose == Purpose::OPEN_INDEX_KEY {
            Some(INDEX_KEY_RECORD)
        } else if req.purpose == Purpose::OPEN_LEAK_KEY {
            Some(LEAK_KEY_RECORD)
        } else {
            None
        };
        let only_that_key = key_record
            .is_some_and(|k| req.table == Table::Keys && req.record_ids.iter().all(|r| r == k));
        let rotation = req.purpose == Purpose::KEY_ROTATION;
        if (req.table == Table::Keys || key_record.is_some()) && !only_that_key && !rotation {
            return Err(Denial::TableNotAllowed {
                table: req.table,
                purpose: req.purpose.clone(),
            });
        }
        for h in &self.hooks {
            h.check(req, now).map_err(|reason| Denial::Hook {
                hook: h.name().to_owned(),
                reason,
            })?;
        }
        Ok(())
    }

    /// Every window of the identity and of its role must stay within its limit.
    fn check_quotas(&mut self, req: &PartialRequest, now: u64) -> Result<(), Denial> {
        let who = &req.requester;
        let keys: Vec<String> = req
            .record_ids
            .iter()
            .map(|id| key(req.table.as_str(), id))
            .collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.quotas
            .check(&self.policy, &who.identity, &who.role, &refs, now)
            .map_err(|o| Denial::QuotaExceeded {
                identity: match o.scope {
                    Scope::Identity => who.identity.clone(),
                    Scope::Role => format!("role {}", who.role),
                },
                limit: o.quota.distinct_records,
                window_secs: o.quota.window_secs,
                would_be: o.would_be,
            })
    }

    /// Applies a command (also used when replaying the log).
    pub fn apply(&mut self, c: &Command) {
        match c {
            Command::Quarantine {
                identity, until, ..
            } => {
                let e = self.quarantined.entry(identity.clone()).or_insert(0);
                *e = (*e).max(*until);
            }
        }
    }

    /// Whether an identity is quarantined at `now`.
    pub fn is_quarantined(&self, identity: &str, now: u64) -> bool {
        self.quarantined.get(identity).is_some_and(|&u| u > now)
    }

    /// Lifts a quarantine (the release of a decision two administrators approved).
    pub fn release(&mut self, identity: &str) {
        self.quarantined.remove(identity);
    }

    /// Counts served records (also used when replaying the log).
    pub fn record_served(
        &mut self,
        identity: &str,
        role: &str,
        table: &str,
        ids: &[String],
        now: u64,
    ) {
        let keys: Vec<String> = ids.iter().map(|id| key(table, id)).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.quotas.add(&self.policy, identity, role, &refs, now);
    }
}

fn key(table: &str, id: &str) -> String {
    format!("{table}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Quota;
    use crate::request::Requester;

    fn req(identity: &str, role: &str, purpose: &str, class: &str, ids: &[&str]) -> PartialRequest {
        PartialRequest {
            set: None,
            epoch: None,
            request_id: "r".into(),
            requester: Requester {
                identity: identity.into(),
                role: role.parse().unwrap(),
            },
            purpose: purpose.parse().unwrap(),
            table: Table::Persons,
            class: class.parse().unwrap(),
            record_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            token: None,
            asked: None,
        }
    }

    /// The embedded policy with the clerk's hourly quota alone (the tests of several
    /// windows set their own).
    fn guard() -> Guard {
        let mut policy = Policy::embedded_default();
        if let Some(clerk) = policy.roles.get_mut("clerk") {
            clerk.limits.clear();
            clerk.role_limits.clear();
        }
        Guard::new(policy, [("persons".to_owned(), "p-honey".to_owned())])
    }

    struct Named;

    impl PolicyHook for Named {
        fn name(&self) -> &str {
            "allowances"
        }
        fn check(&self, _: &PartialRequest, _: u64) -> Result<(), String> {
            Ok(())
        }
    }

    #[test]
    fn a_guard_shows_its_hooks_and_quarantines_and_never_its_honey_records() {
        let mut g = guard();
        g.add_hook(std::sync::Arc::new(Named));
        g.apply(&Command::Quarantine {
            identity: "clerk.q".into(),
            until: 9_000,
            reason: "test".into(),
        });
        let shown = format!("{g:?}");
        assert!(shown.starts_with("Guard {"), "{shown}");
        assert!(shown.contains("\"allowances\""), "{shown}");
        assert!(shown.contains("\"clerk.q\": 9000"), "{shown}");
        assert!(!shown.contains("p-honey"), "a honey record shown: {shown}");
    }

    #[test]
    fn every_window_of_the_identity_and_of_its_role_is_enforced() {
        let mut g = Guard::new(Policy::embedded_default(), []);
        let ids: Vec<String> = (0..300).map(|i| format!("p-{i}")).collect();
        let r = |who: &str, from: usize, n: usize| {
            let refs: Vec<&str> = ids[from..from + n].iter().map(String::as_str).collect();
            req(who, "partner", "partner-verification", "identity", &refs)
        };
        // Partner: 20 per minute, 100 per hour, 500 per day; 2,000 per hour for the role.
        assert_eq!(g.decide(&r("p1", 0, 20), 0).outcome, Ok(()));
        assert!(matches!(
            g.decide(&r("p1", 20, 1), 30).outcome,
            Err(Denial::QuotaExceeded {
                limit: 20,
                window_secs: 60,
                ..
            })
        ));
        // The minute has passed: the hourly quota is what binds now.
        for m in 1..5 {
            assert_eq!(
                g.decide(&r("p1", 20 * m, 20), 60 * m as u64).outcome,
                Ok(())
            );
        }
        assert!(matches!(
            g.decide(&r("p1", 100, 1), 400).outcome,
            Err(Denial::QuotaExceeded {
                limit: 100,
                window_secs: 3600,
                ..
            })
        ));
        // Role-wide: a small role limit binds many identities together.
        let mut policy = Policy::embedded_default();
        policy.roles.get_mut("partner").unwrap().role_limits = vec![Quota {
            distinct_records: 30,
            window_secs: 3600,
        }];
        let mut g = Guard::new(policy, []);
        assert_eq!(g.decide(&r("p1", 0, 20), 0).outcome, Ok(()));
        assert_eq!(g.decide(&r("p2", 20, 10), 0).outcome, Ok(()));
        let d = g.decide(&r("p3", 30, 1), 0).outcome.unwrap_err();
        assert!(d.to_string().contains("role partner"), "{d}");
    }

    #[test]
    fn a_quarantine_holds_until_its_end_and_not_a_second_longer() {
        let mut g = guard();
        g.apply(&Command::Quarantine {
            identity: "c1".into(),
            until: 1_000,
            reason: "test".into(),
        });
        let r = req("c1", "clerk", "counter-service", "identity", &["p-1"]);
        assert!(matches!(
            g.decide(&r, 999).outcome,
            Err(Denial::Quarantined { until: 1_000, .. })
        ));
        assert_eq!(g.decide(&r, 1_000).outcome, Ok(()));
        assert!(g.is_quarantined("c1", 999));
        assert!(!g.is_quarantined("c1", 1_000));
        assert!(!g.is_quarantined("c2", 999));
    }

    #[test]
    fn a_request_names_at_most_the_largest_batch() {
        let mut policy = Policy::embedded_default();
        let clerk = policy.roles.get_mut("clerk").unwrap();
        clerk.limits.clear();
        clerk.role_limits.clear();
        clerk.quota = Some(Quota {
            distinct_records: 1_000_000,
            window_secs: 3600,
        });
        let mut g = Guard::new(policy, []);
        let ids: Vec<String> = (0..=MAX_RECORDS_PER_REQUEST)
            .map(|i| format!("p-{i}"))
            .collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let most = req(
            "c1",
            "clerk",
            "counter-service",
            "identity",
            &refs[..MAX_RECORDS_PER_REQUEST],
        );
        assert_eq!(g.decide(&most, 0).outcome, Ok(()));
        let over = req("c2", "clerk", "counter-service", "identity", &refs);
        assert!(matches!(
            g.decide(&over, 0).outcome,
            Err(Denial::Malformed { .. })
        ));
    }

    #[test]
    fn a_new_policy_decides_from_the_next_request_on() {
        let mut g = guard();
        let r = req("c1", "clerk", "counter-service", "identity", &["p-1"]);
        assert_eq!(g.decide(&r, 0).outcome, Ok(()));
        let mut policy = Policy::embedded_default();
        policy.roles.get_mut("clerk").unwrap().purposes.clear();
        g.set_policy(policy);
        assert!(matches!(
            g.decide(&r, 1).outcome,
            Err(Denial::PurposeNotAllowed { .. })
        ));
    }

    #[test]
    fn role_purpose_class_and_table_rules() {
        let mut g = guard();
        assert_eq!(
            g.decide(
                &req("c1", "clerk", "counter-service", "identity", &["p-1"]),
                0
            )
            .outcome,
            Ok(())
        );
        assert!(matches!(
            g.decide(
                &req("c1", "clerk", "counter-service", "financial", &["p-1"]),
                0
            )
            .outcome,
            Err(Denial::ClassNotAllowed { .. })
        ));
        assert!(matches!(
            g.decide(&req("c1", "clerk", "marketing", "identity", &["p-1"]), 0)
                .outcome,
            Err(Denial::PurposeNotAllowed { .. })
        ));
        assert!(matches!(
            g.decide(&req("c1", "clerk", "counter-service", "identity", &[]), 0)
                .outcome,
            Err(Denial::Malformed { .. })
        ));
        assert!(matches!(
            g.decide(
                &req("x", "janitor", "counter-service", "identity", &["p-1"]),
                0
            )
            .outcome,
            Err(Denial::UnknownRole { .. })
        ));
        // The service role opens the index key and nothing else.
        assert!(matches!(
            g.decide(
                &req(
                    "svc",
                    "service",
                    &Purpose::OPEN_INDEX_KEY,
                    "identity",
                    &["p-1"]
                ),
                0
            )
            .outcome,
            Err(Denial::TableNotAllowed { .. })
        ));
        let mut k = req(
            "svc",
            "service",
            &Purpose::OPEN_INDEX_KEY,
            "identity",
            &["blind-index"],
        );
        k.table = Table::Keys;
        assert_eq!(g.decide(&k, 0).outcome, Ok(()));
        // Each key's purpose opens that key only: the leak key's purpose neither opens
        // the index key nor reads salaries, and the other way round.
        let mut leak = req(
            "svc",
            "service",
            &Purpose::OPEN_LEAK_KEY,
            "financial",
            &["leak-digest"],
        );
        leak.table = Table::Keys;
        assert_eq!(g.decide(&leak, 0).outcome, Ok(()));
        for (purpose, record, table) in [
            (Purpose::OPEN_LEAK_KEY, "blind-index", Table::Keys),
            (Purpose::OPEN_INDEX_KEY, "leak-digest", Table::Keys),
            (Purpose::OPEN_LEAK_KEY, "p-1", Table::Persons),
            (
                "counter-service".parse().unwrap(),
                "leak-digest",
                Table::Keys,
            ),
        ] {
            let mut r = req("svc", "service", &purpose, "financial", &[record]);
            r.table = table;
            assert!(
                matches!(
                    g.decide(&r, 0).outcome,
                    Err(Denial::TableNotAllowed { .. } | Denial::PurposeNotAllowed { .. })
                ),
                "{purpose} {table}/{record}"
            );
        }
    }

    struct OfficeHours;
    impl PolicyHook for OfficeHours {
        fn name(&self) -> &str {
            "office-hours"
        }
        fn check(&self, req: &PartialRequest, now: u64) -> Result<(), String> {
            let hour = (now / 3600) % 24;
            if req.requester.role == "clerk" && !(8..18).contains(&hour) {
                return Err(format!(
                    "counter roles read between 08:00 and 18:00 UTC, it is {hour:02}:00"
                ));
            }
            Ok(())
        }
    }

    #[test]
    fn a_plugged_hook_refuses_with_its_name_and_reason() {
        let mut g = guard();
        g.add_hook(std::sync::Arc::new(OfficeHours));
        let r = req("c1", "clerk", "counter-service", "identity", &["p-1"]);
        assert_eq!(g.decide(&r, 10 * 3600).outcome, Ok(()));
        let d = g.decide(&r, 22 * 3600).outcome.unwrap_err();
        assert!(matches!(&d, Denial::Hook { hook, .. } if hook == "office-hours"));
        assert!(d.to_string().contains("between 08:00 and 18:00"), "{d}");
        // The hook did not let the refused request count: the 10:00 read has left the hourly
        // window by 22:00, so only a counted refusal would still be there.
        let policy = g.policy.clone();
        let counted = g.quotas.held(&policy, "c1", "clerk", 22 * 3600);
        assert_eq!(counted, 0);
    }

    #[test]
    fn quota_counts_distinct_records_in_a_sliding_window() {
        let mut g = guard();
        let ids: Vec<String> = (0..60).map(|i| format!("p-{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        assert_eq!(
            g.decide(
                &req("c1", "clerk", "counter-service", "identity", &refs),
                100
            )
            .outcome,
            Ok(())
        );
        // Re-reading the same records costs nothing; one more record is refused.
        assert_eq!(
            g.decide(
                &req("c1", "clerk", "counter-service", "identity", &refs[..5]),
                200
            )
            .outcome,
            Ok(())
        );
        let v = g.decide(
            &req("c1", "clerk", "counter-service", "identity", &["p-new"]),
            300,
        );
        assert_eq!(
            v.outcome,
            Err(Denial::QuotaExceeded {
                identity: "c1".into(),
                limit: 60,
                window_secs: 3600,
                would_be: 61
            })
        );
        // Another clerk is not affected; after the window the first clerk may read again.
        assert_eq!(
            g.decide(
                &req("c2", "clerk", "counter-service", "identity", &["p-new"]),
                300
            )
            .outcome,
            Ok(())
        );
        assert_eq!(
            g.decide(
                &req("c1", "clerk", "counter-service", "identity", &["p-new"]),
                100 + 3600 + 101
            )
            .outcome,
            Ok(())
        );
    }

    #[test]
    fn a_honey_touch_quarantines_and_says_only_quarantined() {
        let mut g = guard();
        let v = g.decide(
            &req(
                "partner-x",
                "partner",
                "partner-verification",
                "identity",
                &["p-1", "p-honey"],
            ),
            50,
        );
        let until = 50 + 7 * 86_400;
        assert_eq!(
            v.outcome,
            Err(Denial::Quarantined {
                identity: "partner-x".into(),
                until
            })
        );
        assert!(
            matches!(&v.commands[..], [Command::Quarantine { identity, .. }] if identity == "partner-x")
        );
        // Everything else is refused while quarantined, then allowed after.
        assert!(matches!(
            g.decide(
                &req(
                    "partner-x",
                    "partner",
                    "partner-verification",
                    "identity",
                    &["p-1"]
                ),
                60
            )
            .outcome,
            Err(Denial::Quarantined { .. })
        ));
        assert_eq!(
            g.decide(
                &req(
                    "partner-x",
                    "partner",
                    "partner-verification",
                    "identity",
                    &["p-1"]
                ),
                until + 1
            )
            .outcome,
            Ok(())
        );
        assert!(!v.outcome.unwrap_err().to_string().contains("honey"));
    }
}
