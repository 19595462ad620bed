//! What the gateway enforces because of decisions in force: quarantined identities,
//! certificates and addresses, throttles, step-up, and the essential-services fallback.
//! Checked on every authenticated request, before the gate's own checks.

use ribat_detect::event::Actor;
use ribat_detect::{Action, Decision, Target};
use ribat_net::problem::Problem;
use std::collections::{BTreeSet, HashMap, VecDeque};

/// A decision in force here.
#[derive(Debug, Clone)]
struct Active {
    id: String,
    action: Action,
    until_ms: u64,
}

/// The enforcement state.
#[derive(Debug, Default)]
pub struct Containment {
    by_target: HashMap<Target, Vec<Active>>,
    /// Essential-services fallbacks: (until, decision id). The fund serves essential
    /// services only while any of them lasts.
    essential: Vec<(u64, String)>,
    /// Request times in the last minute, per throttled identity.
    recent: HashMap<String, VecDeque<u64>>,
}

fn utc(ms: u64) -> String {
    ribat_custodian::error_utc(ms / 1000)
}

impl Containment {
    /// Puts a decision in force (alerts and shadow decisions change nothing).
    pub fn apply(&mut self, d: &Decision) {
        if !d.enforces() {
            return;
        }
        self.hold(&d.id, d.target.clone(), d.action, d.until_ms);
    }

    /// Holds `target` by `action` until `until_ms` under restriction `id`: this gateway's
    /// decision, or one decided elsewhere (in a mesh: another node's, carried by the log).
    /// An essential-services fallback holds the whole fund whatever role it names: the
    /// role that surged is not among the essential ones.
    pub fn hold(&mut self, id: &str, target: Target, action: Action, until_ms: u64) {
        if action == Action::Essential {
            if !self.essential.iter().any(|(_, e)| e == id) {
                self.essential.push((until_ms, id.to_owned()));
            }
            return;
        }
        let list = self.by_target.entry(target).or_default();
        if list.iter().any(|a| a.id == id) {
            return; // carried out again (a restart of the carrier): once is enough
        }
        list.push(Active {
            id: id.to_owned(),
            action,
            until_ms,
        });
    }

    /// Lifts a decision.
    pub fn release(&mut self, id: &str) {
        self.essential.retain(|(_, e)| e != id);
        for list in self.by_target.values_mut() {
            list.retain(|a| a.id != id);
        }
        self.by_target.retain(|_, l| !l.is_empty());
    }

    /// Whether `actor` may be served now. `cosigned` says a supervisor co-signed this
    /// request; `essential` lists the roles served in essential-services mode.
    pub fn check(
        &mut self,
        actor: &Actor,
        cosigned: bool,
        essential: &BTreeSet<String>,
        now_ms: u64,
    ) -> Result<(), Problem> {
        let targets = [
            Target::Identity(actor.identity.clone()),
            Target::Certificate(actor.serial.clone()),
            Target::Address(actor.addr.clone()),
        ];
        let mut step_up = None;
        let mut throttle: Option<(u32, &str)> = None;
        for t in &targets {
            for a in self.by_target.get(t).into_iter().flatten() {
                if a.until_ms <= now_ms {
                    continue;
                }
                match a.action {
                    Action::Quarantine => {
                        return Err(Problem::forbidden(
                            "quarantined",
                            format!(
                                "{t} is quarantined until {} UTC (decision {}); contact the security team",
                                utc(a.until_ms),
                                a.id
                            ),
                        ));
                    }
                    Action::StepUp => step_up = Some(a),
                    Action::Throttle { per_minute } => {
                        throttle = Some(throttle.map_or((per_minute, a.id.as_str()), |(p, id)| {
                            if per_minute < p {
                                (per_minute, a.id.as_str())
                            } else {
                                (p, id)
                            }
                        }));
                    }
                    Action::Alert | Action::Essential => {}
                }
            }
        }
        if let Some((until, id)) = self
            .essential
            .iter()
            .filter(|(until, _)| *until > now_ms)
            .max_by_key(|(until, _)| *until)
            && !essential.contains(&actor.role)
            // The security team and the auditors are who look at a fallback and release
            // it (their routes read decisions, not persons): it never suspends them.
            && !crate::service::DECISION_READERS.contains(&actor.role.as_str())
        {
            return Err(Problem::unavailable(
                "essential-only",
                format!(
                    "the fund serves essential services only until {} UTC (decision {id}); role `{}` is suspended until then",
                    utc(*until),
                    actor.role
                ),
            ));
        }
        if let Some(a) = step_up
            && !cosigned
        {
            return Err(Problem::forbidden(
                "step-up-required",
                format!(
                    "until {} UTC (decision {}), each request of `{}` needs a supervisor's co-signature of that very request: sign it (`Ribat-Signature`) and send the supervisor's signature of it in the `Ribat-Cosign` header",
                    utc(a.until_ms),
                    a.id,
                    actor.identity
                ),
            ));
        }
        if let Some((per_minute, id)) = throttle {
            let recent = self.recent.entry(actor.identity.clone()).or_default();
            while recent
                .front()
                .is_some_and(|t| now_ms.saturating_sub(*t) >= 60_000)
            {
                recent.pop_front();
            }
            if recent.len() >= per_minute as usize {
                let wait = recent
                    .front()
                    .map_or(60, |t| 60 - now_ms.saturating_sub(*t) / 1000);
                return Err(Problem::new(
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    "throttled",
                    "Throttled",
                    format!(
                        "`{}` is throttled to {per_minute} requests a minute (decision {id})",
                        actor.identity
                    ),
                )
                .retry_after(wait.max(1)));
            }
            recent.push_back(now_ms);
        }
        Ok(())
    }

    /// Whether node `name`, or the certificate `serial` it calls with, is quarantined at
    /// `now_ms`: until when, and by which decision. A node is held by name when its answers
    /// went unaudited, by certificate when it failed to authenticate (auth-failures).
    pub fn node_quarantined(&self, name: &str, serial: &str, now_ms: u64) -> Option<(u64, String)> {
        [
            Target::Node(name.to_owned()),
            Target::Certificate(serial.to_owned()),
        ]
        .iter()
        .filter_map(|t| self.by_target.get(t))
        .flatten()
        .filter(|a| a.action == Action::Quarantine && a.until_ms > now_ms)
        .max_by_key(|a| a.until_ms)
        .map(|a| (a.until_ms, a.id.clone()))
    }

    /// Decisions in force at `now_ms` (ids).
    pub fn in_force(&self, now_ms: u64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_target
            .values()
            .flatten()
            .filter(|a| a.until_ms > now_ms)
            .map(|a| a.id.clone())
            .chain(
                self.essential
                    .iter()
                    .filter(|(u, _)| *u > now_ms)
                    .map(|(_, id)| id.clone()),
            )
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ribat_detect::rules::Mode;
    use ribat_detect::{Finding, Severity};

    fn decision(target: Target, action: Action) -> Decision {
        let f = Finding {
            rule: ribat_detect::RuleId::Velocity,
            title: "t".into(),
            severity: Severity::High,
            target,
            action,
            duration_secs: 60,
            evidence: vec![],
        };
        Decision::from_finding("gw", &f, Mode::Enforce, 1_000_000, 0)
    }

    fn actor(identity: &str, role: &str) -> Actor {
        Actor {
            identity: identity.into(),
            role: role.into(),
            institution: "i".into(),
            serial: format!("s-{identity}"),
            addr: "10.0.0.1".into(),
        }
    }

    fn essential() -> BTreeSet<String> {
        ["clerk".to_owned()].into_iter().collect()
    }

    #[test]
    fn each_response_refuses_with_its_own_problem_until_it_ends_or_is_released() {
        let mut c = Containment::default();
        let q = decision(Target::Certificate("s-p1".into()), Action::Quarantine);
        c.apply(&q);
        let e = c
            .check(&actor("p1", "partner"), false, &essential(), 1_000_001)
            .unwrap_err();
        assert_eq!(e.slug(), "quarantined");
        assert!(
            c.check(&actor("p2", "partner"), false, &essential(), 1_000_001)
                .is_ok()
        );
        assert!(
            c.check(&actor("p1", "partner"), false, &essential(), 1_060_000)
                .is_ok(),
            "ended"
        );
        c.apply(&decision(Target::Identity("c1".into()), Action::StepUp));
        let e = c
            .check(&actor("c1", "clerk"), false, &essential(), 1_000_001)
            .unwrap_err();
        assert_eq!(e.slug(), "step-up-required");
        assert!(
            c.check(&actor("c1", "clerk"), true, &essential(), 1_000_001)
                .is_ok()
        );

        let ess = decision(Target::Role("partner".into()), Action::Essential);
        c.apply(&ess);
        let e = c
            .check(&actor("p9", "partner"), false, &essential(), 1_000_001)
            .unwrap_err();
        assert_eq!(e.slug(), "essential-only");
        assert!(
            c.check(&actor("c2", "clerk"), false, &essential(), 1_000_001)
                .is_ok()
        );
        // The security team and auditors are not suspended: they release it.
        for role in ["security", "auditor"] {
            assert!(
                c.check(&actor("s1", role), false, &essential(), 1_000_001)
                    .is_ok()
            );
        }
        // A second fallback, decided elsewhere (another node's, carried by the mesh) and
        // lasting longer: releasing the first leaves the fund on the second, which says so.
        c.hold(
            "node-2/e",
            Target::Role("partner".into()),
            Action::Essential,
            2_000_000,
        );
        c.hold(
            "node-2/e",
            Target::Role("partner".into()),
            Action::Essential,
            2_000_000,
        );
        c.release(&ess.id);
        let e = c
            .check(&actor("p9", "partner"), false, &essential(), 1_000_001)
            .unwrap_err();
        assert!(e.detail.contains("node-2/e"), "{}", e.detail);
        let held = c.in_force(1_000_001);
        assert!(held.contains(&"node-2/e".to_owned()) && !held.contains(&ess.id));
        c.release("node-2/e");
        assert!(
            c.check(&actor("p9", "partner"), false, &essential(), 1_000_001)
                .is_ok()
        );
        assert!(!c.in_force(1_000_001).contains(&"node-2/e".to_owned()));

        c.apply(&decision(
            Target::Identity("p3".into()),
            Action::Throttle { per_minute: 2 },
        ));
        for t in [1_000_001, 1_000_002] {
            assert!(
                c.check(&actor("p3", "partner"), false, &essential(), t)
                    .is_ok()
            );
        }
        let e = c
            .check(&actor("p3", "partner"), false, &essential(), 1_000_003)
            .unwrap_err();
        assert_eq!(e.slug(), "throttled");
    }

    #[test]
    fn a_node_is_held_by_its_name_or_by_the_certificate_it_calls_with_until_the_decision_ends() {
        let mut c = Containment::default();
        assert_eq!(
            c.node_quarantined("gateway.node-1", "s-g1", 1_000_001),
            None
        );
        let by_cert = decision(Target::Certificate("s-g1".into()), Action::Quarantine);
        c.apply(&by_cert);
        assert_eq!(
            c.node_quarantined("gateway.node-1", "s-g1", 1_000_001),
            Some((by_cert.until_ms, by_cert.id.clone()))
        );
        // Another certificate of another node, or an alert on this one, holds nothing.
        assert_eq!(
            c.node_quarantined("gateway.node-2", "s-g2", 1_000_001),
            None
        );
        let mut other = Containment::default();
        other.apply(&decision(Target::Certificate("s-g1".into()), Action::Alert));
        assert_eq!(
            other.node_quarantined("gateway.node-1", "s-g1", 1_000_001),
            None
        );
        // By name as well; the decision that lasts longer is named.
        let mut by_name = decision(Target::Node("gateway.node-1".into()), Action::Quarantine);
        by_name.until_ms = by_cert.until_ms + 1;
        c.apply(&by_name);
        assert_eq!(
            c.node_quarantined("gateway.node-1", "s-g1", 1_000_001),
            Some((by_name.until_ms, by_name.id.clone()))
        );
        assert_eq!(
            c.node_quarantined("gateway.node-1", "s-g1", by_name.until_ms),
            None
        );
    }
}
