//! Distinct subjects per identity in a few seconds, against the role's limit. A person at
//! a counter reads one citizen at a time; a script reading "everything as fast as
//! possible" (the 2025 case) crosses the limit within its first dozen records. Reads under
//! a purpose the rules declare as bulk for the role (the monthly pension run) are exempt;
//! the same volume under any other purpose is not.

use super::{Detector, Trail, finding};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::{Rules, limit_for};
use ribat_policy::window::DistinctWindow;
use std::collections::HashMap;

const RULE: RuleId = RuleId::Velocity;

#[derive(Default)]
pub(super) struct Velocity {
    seen: HashMap<String, (DistinctWindow, Trail)>,
}

impl Detector for Velocity {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let r = &rules.velocity;
        let Kind::Access(a) = &ev.kind else { return };
        let Some(subject) = &a.subject else { return };
        if rules.is_bulk(&a.actor.role, &a.purpose) {
            return;
        }
        let Some(limit) = limit_for(&r.limits, &a.actor.role) else {
            return;
        };
        let window_ms = r.window_secs.saturating_mul(1000);
        let (w, trail) = self
            .seen
            .entry(a.actor.identity.clone())
            .or_insert_with(|| (DistinctWindow::new(window_ms), Trail::default()));
        w.add([subject.as_str()], ev.time_ms);
        trail.push(ev);
        let n = w.would_be([], ev.time_ms);
        if n > limit {
            out.push(finding(
                RULE,
                r.common(),
                Severity::High,
                Target::Identity(a.actor.identity.clone()),
                format!(
                    "{} ({}) read {n} distinct subjects within {} s (limit {limit}) under purpose {}",
                    a.actor.identity, a.actor.role, r.window_secs, a.purpose
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
    use crate::response::Action;

    fn burst(role: &str, purpose: &str, n: usize, every_ms: u64) -> Vec<Event> {
        (0..n)
            .map(|i| {
                read(
                    MONDAY_9AM + i as u64 * every_ms,
                    "id-1",
                    role,
                    purpose,
                    &format!("p-{i}"),
                )
            })
            .collect()
    }

    #[test]
    fn a_partner_scraping_is_caught_at_its_ninth_distinct_subject() {
        let f = run(
            &mut Velocity::default(),
            &Rules::default(),
            &burst("partner", "partner-verification", 12, 50),
        );
        assert_eq!(f.len(), 4, "the 9th to the 12th subject each fire");
        assert_eq!(f[0].target, Target::Identity("id-1".into()));
        assert_eq!(f[0].action, Action::Quarantine);
        assert!(f[0].title.contains("read 9 distinct"), "{}", f[0].title);
        assert_eq!(f[0].evidence.len(), 9);
    }

    #[test]
    fn the_same_subject_again_and_a_usual_pace_do_not_fire() {
        let rules = Rules::default();
        let again: Vec<Event> = (0..50)
            .map(|i| read(MONDAY_9AM + i * 10, "id-1", "partner", "p", "p-same"))
            .collect();
        assert!(run(&mut Velocity::default(), &rules, &again).is_empty());
        // One new person every 2 s: 5 per 10 s window, under the limit of 8, for 10 minutes.
        let pace = burst("partner", "partner-verification", 300, 2_000);
        assert!(run(&mut Velocity::default(), &rules, &pace).is_empty());
    }

    #[test]
    fn a_pension_run_with_its_declared_purpose_is_not_an_attack_and_without_it_is() {
        let rules = Rules::default();
        let run_ok = burst("pension-batch", "pension-run", 5_000, 1);
        assert!(run(&mut Velocity::default(), &rules, &run_ok).is_empty());
        let other = burst("pension-batch", "benefit-claim", 5_000, 1);
        let f = run(&mut Velocity::default(), &rules, &other);
        assert!(!f.is_empty());
        assert!(f[0].title.contains("read 21 distinct"), "{}", f[0].title);
        assert!(f[0].title.contains("benefit-claim"));
    }
}
