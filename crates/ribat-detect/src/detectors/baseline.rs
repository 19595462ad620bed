//! A role's distinct subjects this hour against what it learned for the same hour of the
//! week (Monday 10:00 is busy, Sunday 03:00 is not). It learns from every completed hour;
//! it judges a slot only after `warmup` hours of that slot.

use super::{Detector, finding, local, weekday};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;
use std::collections::{HashMap, HashSet};

const RULE: RuleId = RuleId::Baseline;

/// Weight of the newest hour in the learned mean.
const ALPHA: f64 = 0.3;

#[derive(Default)]
struct RoleHours {
    hour: i64,
    slot: usize,
    subjects: HashSet<String>,
    fired: bool,
    /// Per hour of the week: learned mean and hours learned.
    learned: HashMap<usize, (f64, u32)>,
}

#[derive(Default)]
pub(super) struct Baseline {
    /// Per role, and per identity.
    roles: HashMap<String, RoleHours>,
    identities: HashMap<String, RoleHours>,
}

impl RoleHours {
    /// Counts `subject` in the hour of `time_ms`; returns (distinct this hour, learned
    /// mean for this hour of the week and hours learned) once the slot has been learned.
    fn count(&mut self, time_ms: u64, offset: i32, subject: &str) -> (usize, Option<(f64, u32)>) {
        let (day, minute) = local(time_ms, offset);
        let hour = day * 24 + i64::from(minute / 60);
        let slot = (usize::from(weekday(day)) - 1) * 24 + (minute / 60) as usize;
        if hour != self.hour {
            if self.hour != 0 {
                let n = self.subjects.len() as f64;
                let e = self.learned.entry(self.slot).or_insert((n, 0));
                e.0 = if e.1 == 0 {
                    n
                } else {
                    ALPHA * n + (1.0 - ALPHA) * e.0
                };
                e.1 += 1;
            }
            self.hour = hour;
            self.slot = slot;
            self.subjects.clear();
            self.fired = false;
        }
        self.subjects.insert(subject.to_owned());
        (self.subjects.len(), self.learned.get(&slot).copied())
    }
}

impl Detector for Baseline {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let r = &rules.baseline;
        let Kind::Access(a) = &ev.kind else { return };
        let Some(subject) = &a.subject else { return };
        let offset = rules.utc_offset_minutes;
        for (by_role, name, floor) in [
            (true, &a.actor.role, r.floor),
            (false, &a.actor.identity, r.identity_floor),
        ] {
            let table = if by_role {
                &mut self.roles
            } else {
                &mut self.identities
            };
            let h = table.entry(name.clone()).or_default();
            let (n, learned) = h.count(ev.time_ms, offset, subject);
            let Some((mean, hours)) = learned else {
                continue;
            };
            if !h.fired && hours >= r.warmup && n > floor && n as f64 > r.factor * mean {
                h.fired = true;
                let (target, who) = if by_role {
                    (Target::Role(name.clone()), format!("role {name}"))
                } else {
                    (Target::Identity(name.clone()), name.clone())
                };
                out.push(finding(
                    RULE,
                    r.common(),
                    Severity::Medium,
                    target,
                    format!(
                        "{who} read {n} distinct subjects this hour; it usually reads {mean:.0} at this hour of the week"
                    ),
                    vec![ev.summary()],
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;

    const MIN: u64 = 60_000;
    const HOUR: u64 = 60 * MIN;
    const DAY: u64 = 24 * HOUR;

    #[test]
    fn an_hour_is_counted_by_distinct_subjects_and_learned_for_its_hour_of_the_week() {
        let mut h = RoleHours::default();
        let t = MONDAY_9AM;
        assert_eq!(h.count(t, 0, "a"), (1, None));
        assert_eq!(h.count(t + MIN, 0, "a"), (1, None), "the same subject once");
        assert_eq!(h.count(t + 2 * MIN, 0, "b"), (2, None));
        // The next hour starts afresh; its slot has not been learned.
        assert_eq!(h.count(t + HOUR, 0, "c"), (1, None));
        // The next day at the same hour is another slot of the week.
        assert_eq!(h.count(t + DAY, 0, "d"), (1, None));
        // A week later, the same hour: learned from the first week's 2 subjects.
        assert_eq!(h.count(t + 7 * DAY, 0, "x"), (1, Some((2.0, 1))));
        for (i, s) in ["y", "z", "w"].iter().enumerate() {
            assert_eq!(h.count(t + 7 * DAY + (i as u64 + 1) * MIN, 0, s).0, i + 2);
        }
        // Another week on: the newest hour weighs ALPHA in the mean.
        let (_, learned) = h.count(t + 14 * DAY, 0, "v");
        let (mean, hours) = learned.unwrap();
        assert_eq!(hours, 2);
        assert!(
            (mean - (ALPHA * 4.0 + (1.0 - ALPHA) * 2.0)).abs() < 1e-9,
            "{mean}"
        );
        // An hour at which nothing was ever read has learned nothing (not even a zero).
        assert_eq!(h.count(t + 21 * DAY - 9 * HOUR + 30 * MIN, 0, "q").1, None);
        // An hour seen through a UTC offset is that local hour's slot: 08:xx UTC at +60
        // is the 09:xx slot learned above (the hour after 14 days, 1 subject).
        let (_, shifted) = h.count(t + 28 * DAY - HOUR, 60, "r");
        assert_eq!(shifted.map(|(_, hours)| hours), Some(3));
    }

    #[test]
    fn midnight_of_the_next_day_is_another_hour() {
        // 00:xx local on Monday, then on Tuesday: hour 0 of two days, not one hour.
        let mut h = RoleHours::default();
        let monday_midnight = MONDAY_9AM - 9 * HOUR;
        assert_eq!(h.count(monday_midnight, 60, "a"), (1, None));
        assert_eq!(h.count(monday_midnight + DAY, 60, "b"), (1, None));
    }

    #[test]
    fn an_hour_fires_only_above_its_floor() {
        // One subject learned; four times that is nothing next to a floor of five.
        let mut rules = Rules::default();
        rules.baseline.floor = 5;
        rules.baseline.identity_floor = 1_000;
        let week_later = |n: usize| {
            let mut events = hour_of(0, 1);
            events.extend(hour_of(1, n));
            run(&mut Baseline::default(), &rules, &events).len()
        };
        assert_eq!(week_later(5), 0, "at the floor");
        assert_eq!(week_later(6), 1, "above it");
    }

    fn hour_of(week: u64, n: usize) -> Vec<Event> {
        (0..n)
            .map(|i| {
                read(
                    MONDAY_9AM + week * 7 * 86_400_000 + i as u64 * 1_000,
                    "c-1",
                    "clerk",
                    "counter-service",
                    &format!("p-{week}-{i}"),
                )
            })
            .collect()
    }

    #[test]
    fn a_monday_hour_four_times_its_usual_volume_fires_after_one_learned_monday() {
        let rules = Rules::default();
        let mut events = hour_of(0, 300);
        // Same slot next week, far above 4 × 300.
        events.extend(hour_of(1, 1_300));
        let f = run(&mut Baseline::default(), &rules, &events);
        // The role and the identity (the only one of its role here) both fire.
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(
            f[0].title.starts_with("role clerk read 1201 distinct"),
            "{}",
            f[0].title
        );
        assert!(f[0].title.contains("usually reads 300"), "{}", f[0].title);
        assert_eq!(f[1].target, Target::Identity("c-1".into()));
        // The first week alone (nothing learned) and a normal second week: nothing.
        let mut calm = hour_of(0, 300);
        calm.extend(hour_of(1, 350));
        assert!(run(&mut Baseline::default(), &rules, &calm).is_empty());
    }
}
