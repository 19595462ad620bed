//! An identity connecting from an address it never used, once its usual addresses are
//! learned.

use super::{Detector, finding};
use crate::event::Event;
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;
use std::collections::{HashMap, HashSet};

const RULE: RuleId = RuleId::NewSource;

#[derive(Default)]
pub(super) struct NewSource {
    ids: HashMap<String, (HashSet<String>, usize)>,
}

impl Detector for NewSource {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let Some(actor) = ev.actor() else { return };
        if actor.addr.is_empty() {
            return;
        }
        let (addrs, events) = self.ids.entry(actor.identity.clone()).or_default();
        if !addrs.contains(&actor.addr) {
            if *events >= rules.new_source.learn_events {
                out.push(finding(
                    RULE,
                    rules.new_source.common(),
                    Severity::Low,
                    Target::Identity(actor.identity.clone()),
                    format!(
                        "{} connected from {} for the first time (known: {})",
                        actor.identity,
                        actor.addr,
                        addrs.len()
                    ),
                    vec![ev.summary()],
                ));
            }
            addrs.insert(actor.addr.clone());
        }
        *events += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;
    use crate::event::Kind;

    #[test]
    fn a_new_address_after_learning_fires_and_during_learning_does_not() {
        let rules = Rules::default();
        let from = |i: u64, addr: &str| {
            let mut e = read(
                MONDAY_9AM + i,
                "p-1",
                "partner",
                "partner-verification",
                "p-x",
            );
            if let Kind::Access(a) = &mut e.kind {
                a.actor.addr = addr.into();
            }
            e
        };
        let mut events: Vec<Event> = (0..5).map(|i| from(i, "10.0.0.1")).collect();
        events.push(from(5, "10.0.0.2"));
        events.extend((6..30).map(|i| from(i, "10.0.0.1")));
        events.push(from(30, "203.0.113.9"));
        events.push(from(31, "203.0.113.9"));
        let f = run(&mut NewSource::default(), &rules, &events);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].title.contains("203.0.113.9"));
        assert!(f[0].title.contains("known: 2"));
    }
}
