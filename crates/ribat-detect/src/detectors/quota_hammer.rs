//! An identity refused for its quota again and again within a minute: a person stops at
//! the first refusal; a script keeps pushing.

use super::{Burst, Detector, finding};
use crate::event::{Event, Kind, Refusal};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;
use std::collections::HashMap;

const RULE: RuleId = RuleId::QuotaHammer;

#[derive(Default)]
pub(super) struct QuotaHammer {
    refusals: HashMap<String, Burst>,
}

impl Detector for QuotaHammer {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let r = &rules.quota_hammer;
        let Kind::Denied(d) = &ev.kind else { return };
        if d.reason != Refusal::QuotaExceeded {
            return;
        }
        let burst = self.refusals.entry(d.actor.identity.clone()).or_default();
        let n = burst.note(ev, r.window_secs);
        if n >= r.count {
            out.push(finding(
                RULE,
                r.common(),
                Severity::High,
                Target::Identity(d.actor.identity.clone()),
                format!(
                    "{} was refused for its quota {} times within {} s",
                    d.actor.identity, n, r.window_secs
                ),
                burst.lines(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;

    #[test]
    fn three_quota_refusals_in_a_minute_fire_and_spread_out_do_not() {
        let rules = Rules::default();
        let close: Vec<Event> = (0..3)
            .map(|i| denied(MONDAY_9AM + i * 1000, "c-1", "clerk", "quota-exceeded"))
            .collect();
        let f = run(&mut QuotaHammer::default(), &rules, &close);
        assert_eq!(f.len(), 1);
        assert!(f[0].title.contains("3 times"));
        let spread: Vec<Event> = (0..10)
            .map(|i| denied(MONDAY_9AM + i * 31_000, "c-1", "clerk", "quota-exceeded"))
            .collect();
        assert!(run(&mut QuotaHammer::default(), &rules, &spread).is_empty());
        let other: Vec<Event> = (0..10)
            .map(|i| denied(MONDAY_9AM + i, "c-1", "clerk", "purpose-not-allowed"))
            .collect();
        assert!(run(&mut QuotaHammer::default(), &rules, &other).is_empty());
    }
}
