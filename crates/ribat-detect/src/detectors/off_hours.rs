//! Counter roles reading outside office hours (local time, working days).

use super::{Detector, Trail, finding, local, weekday};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;
use std::collections::{HashMap, HashSet};

const RULE: RuleId = RuleId::OffHours;

#[derive(Default)]
pub(super) struct OffHours {
    ids: HashMap<String, (i64, HashSet<String>, Trail, bool)>,
}

impl Detector for OffHours {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let r = &rules.off_hours;
        let Kind::Access(a) = &ev.kind else { return };
        let Some(subject) = &a.subject else { return };
        if !r.roles.contains(&a.actor.role) {
            return;
        }
        let (day, minute) = local(ev.time_ms, rules.utc_offset_minutes);
        let working =
            r.days.contains(&weekday(day)) && minute >= r.start_minute && minute < r.end_minute;
        if working {
            return;
        }
        let (d, subjects, trail, fired) = self.ids.entry(a.actor.identity.clone()).or_default();
        if *d != day {
            *d = day;
            subjects.clear();
            *fired = false;
        }
        subjects.insert(subject.clone());
        trail.push(ev);
        if !*fired && subjects.len() >= r.subjects {
            *fired = true;
            out.push(finding(
                RULE,
                r.common(),
                Severity::Medium,
                Target::Identity(a.actor.identity.clone()),
                format!(
                    "{} ({}) read {} subject(s) outside office hours (local {:02}:{:02}, day {})",
                    a.actor.identity,
                    a.actor.role,
                    subjects.len(),
                    minute / 60,
                    minute % 60,
                    weekday(day)
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

    #[test]
    fn a_clerk_at_night_and_on_sunday_fires_once_a_day_at_nine_does_not() {
        let rules = Rules::default();
        let hour = 3_600_000;
        let events = vec![
            read(MONDAY_9AM, "c-1", "clerk", "counter-service", "p-1"),
            read(
                MONDAY_9AM + 13 * hour,
                "c-1",
                "clerk",
                "counter-service",
                "p-2",
            ),
            read(
                MONDAY_9AM + 13 * hour + 1,
                "c-1",
                "clerk",
                "counter-service",
                "p-3",
            ),
            read(
                MONDAY_9AM + 6 * 24 * hour,
                "c-1",
                "clerk",
                "counter-service",
                "p-4",
            ),
            // Batch jobs run at night by design.
            read(
                MONDAY_9AM + 13 * hour,
                "batch",
                "pension-batch",
                "pension-run",
                "p-5",
            ),
        ];
        let f = run(&mut OffHours::default(), &rules, &events);
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f[0].title.contains("local 22:00, day 1"), "{}", f[0].title);
        assert!(f[1].title.contains("day 7"), "{}", f[1].title);
    }

    #[test]
    fn office_hours_include_their_first_minute_and_end_before_their_last() {
        // Defaults: 07:30 to 18:30, local time UTC+1; MONDAY_9AM is 09:00 local.
        let rules = Rules::default();
        let minute = 60_000;
        let at = |t: u64| {
            let e = read(t, "c-1", "clerk", "counter-service", "p-1");
            run(&mut OffHours::default(), &rules, &[e]).len()
        };
        assert_eq!(at(MONDAY_9AM - 90 * minute), 0, "07:30 is office hours");
        assert_eq!(at(MONDAY_9AM - 91 * minute), 1, "07:29 is not");
        assert_eq!(at(MONDAY_9AM + 569 * minute), 0, "18:29 is office hours");
        assert_eq!(at(MONDAY_9AM + 570 * minute), 1, "18:30 is not");
    }
}
