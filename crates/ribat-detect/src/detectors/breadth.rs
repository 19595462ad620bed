//! Too many distinct employers or cities in a day for the role: an employer checks its
//! own staff, a partner its own customers; a collector goes everywhere.

use super::{Detector, Trail, finding};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::{Rules, limit_for};
use ribat_policy::window::DistinctWindow;
use std::collections::HashMap;

const RULE: RuleId = RuleId::Breadth;

#[derive(Default)]
pub(super) struct Breadth {
    ids: HashMap<String, (DistinctWindow, Trail, bool)>,
}

impl Detector for Breadth {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let r = &rules.breadth;
        let Kind::Access(a) = &ev.kind else { return };
        let (Some(area), Some(limit)) = (&a.area, limit_for(&r.limits, &a.actor.role)) else {
            return;
        };
        let (w, trail, fired) = self.ids.entry(a.actor.identity.clone()).or_insert_with(|| {
            (
                DistinctWindow::new(r.window_secs.saturating_mul(1000)),
                Trail::default(),
                false,
            )
        });
        w.add([area.as_str()], ev.time_ms);
        trail.push(ev);
        let n = w.would_be([], ev.time_ms);
        if n <= limit {
            *fired = false;
        } else if !*fired {
            *fired = true;
            out.push(finding(
                RULE,
                r.common(),
                Severity::Medium,
                Target::Identity(a.actor.identity.clone()),
                format!(
                    "{} ({}) read people of {n} distinct employers or cities within {} s (limit {limit})",
                    a.actor.identity, a.actor.role, r.window_secs
                ),
                trail.lines(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;

    fn reads(n: usize, areas: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                with(
                    read(
                        MONDAY_9AM + i as u64 * 60_000,
                        "e-1",
                        "employer",
                        "employee-check",
                        &format!("p-{i}"),
                    ),
                    |a| a.area = Some(format!("area-{}", i % areas)),
                )
            })
            .collect()
    }

    #[test]
    fn an_employer_reading_four_employers_staff_fires_once_its_own_does_not() {
        let rules = Rules::default();
        let f = run(&mut Breadth::default(), &rules, &reads(40, 4));
        assert_eq!(f.len(), 1, "fires once while over the limit");
        assert!(f[0].title.contains("4 distinct"), "{}", f[0].title);
        assert!(run(&mut Breadth::default(), &rules, &reads(200, 1)).is_empty());
    }
}
