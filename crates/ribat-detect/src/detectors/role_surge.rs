//! A whole role reading far more than it does: many stolen credentials, each under its own
//! quota (the `distributed` attack). The response is the essential-services fallback:
//! counters, employers and the pension run go on; the surging role stops.

use super::{Detector, Trail, finding};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rules::Rules;
use ribat_custodian::window::DistinctWindow;
use std::collections::{HashMap, HashSet};

const RULE: &str = "role-surge";

#[derive(Default)]
pub struct RoleSurge {
    roles: HashMap<String, (DistinctWindow, Trail, HashSet<String>)>,
}

impl Detector for RoleSurge {
    fn rule(&self) -> &'static str {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let r = &rules.role_surge;
        let Kind::Access(a) = &ev.kind else { return };
        let (Some(subject), Some(&limit)) = (&a.subject, r.limits.get(&a.actor.role)) else {
            return;
        };
        let (w, trail, who) = self.roles.entry(a.actor.role.clone()).or_insert_with(|| {
            (
                DistinctWindow::new(r.window_secs.saturating_mul(1000)),
                Trail::default(),
                HashSet::new(),
            )
        });
        w.add([subject.as_str()], ev.time_ms);
        trail.push(ev);
        who.insert(a.actor.identity.clone());
        let n = w.would_be([], ev.time_ms);
        if n > limit {
            let mut ids: Vec<&String> = who.iter().collect();
            ids.sort();
            let mut evidence = trail.lines();
            evidence.push(format!(
                "identities of role {} seen: {}",
                a.actor.role,
                ids.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            out.push(finding(
                RULE,
                r.common(),
                Severity::High,
                Target::Role(a.actor.role.clone()),
                format!(
                    "role {} read {n} distinct subjects within {} s (limit {limit}) across {} identities",
                    a.actor.role,
                    r.window_secs,
                    who.len()
                ),
                evidence,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;
    use crate::response::Action;

    #[test]
    fn many_partners_each_slow_together_fire_once_over_the_role_limit() {
        // 20 credentials, each one person every 4 s: 300 distinct subjects in 60 s.
        let events: Vec<Event> = (0..301u64)
            .map(|i| {
                read(
                    MONDAY_9AM + (i / 20) * 4_000,
                    &format!("partner-{}", i % 20),
                    "partner",
                    "partner-verification",
                    &format!("p-{i}"),
                )
            })
            .collect();
        let f = run(&mut RoleSurge::default(), &Rules::default(), &events);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].target, Target::Role("partner".into()));
        assert_eq!(f[0].action, Action::Essential);
        assert!(
            f[0].title.contains("across 20 identities"),
            "{}",
            f[0].title
        );
        // Clerks have no role limit in the default rules: never essential mode for them.
        let clerks: Vec<Event> = (0..2_000u64)
            .map(|i| {
                read(
                    MONDAY_9AM + i,
                    &format!("c-{}", i % 500),
                    "clerk",
                    "counter-service",
                    &format!("p-{i}"),
                )
            })
            .collect();
        assert!(run(&mut RoleSurge::default(), &Rules::default(), &clerks).is_empty());
    }
}
