//! Low and slow: an identity near its daily quota day after day. Each day alone is
//! allowed; the streak is not what a counter or a partner does.

use super::{Detector, Trail, finding, local};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;
use std::collections::{HashMap, HashSet};

const RULE: RuleId = RuleId::Sustained;

#[derive(Default)]
struct Streak {
    day: i64,
    today: HashSet<String>,
    /// Consecutive days near the quota, ending the day before `day`.
    streak: u32,
    fired_today: bool,
    trail: Trail,
}

#[derive(Default)]
pub(super) struct Sustained {
    ids: HashMap<String, Streak>,
}

impl Detector for Sustained {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let r = &rules.sustained;
        let Kind::Access(a) = &ev.kind else { return };
        let Some(subject) = &a.subject else { return };
        let Some(&quota) = r.daily_quota.get(a.actor.role.as_str()) else {
            return;
        };
        let near = ((quota as f64) * r.share).ceil() as usize;
        let (day, _) = local(ev.time_ms, rules.utc_offset_minutes);
        let s = self.ids.entry(a.actor.identity.clone()).or_default();
        if day != s.day {
            let was_near = s.today.len() >= near;
            s.streak = if was_near && day == s.day + 1 {
                s.streak + 1
            } else {
                0
            };
            s.day = day;
            s.today.clear();
            s.fired_today = false;
        }
        s.today.insert(subject.clone());
        s.trail.push(ev);
        if !s.fired_today && s.today.len() >= near && s.streak + 1 >= r.days {
            s.fired_today = true;
            out.push(finding(
                RULE,
                r.common(),
                Severity::Medium,
                Target::Identity(a.actor.identity.clone()),
                format!(
                    "{} read {} distinct subjects today, {:.0} % of its daily quota of {quota}, for the {} day running",
                    a.actor.identity,
                    s.today.len(),
                    r.share * 100.0,
                    ordinal(s.streak + 1)
                ),
                s.trail.lines(),
            ));
        }
    }
}

fn ordinal(n: u32) -> String {
    match n {
        1 => "1st".into(),
        2 => "2nd".into(),
        3 => "3rd".into(),
        n => format!("{n}th"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;
    use crate::response::Action;

    fn day_of_reads(day: u64, n: usize, identity: &str) -> Vec<Event> {
        (0..n)
            .map(|i| {
                read(
                    MONDAY_9AM + day * 86_400_000 + i as u64 * 60_000,
                    identity,
                    "clerk",
                    "counter-service",
                    &format!("p-{day}-{i}"),
                )
            })
            .collect()
    }

    fn rules() -> Rules {
        Rules::default().with_policy(&ribat_policy::policy::Policy::embedded_default())
    }

    #[test]
    fn two_days_near_the_quota_fire_on_the_second_one_day_does_not() {
        let mut events = day_of_reads(0, 170, "c-1");
        events.extend(day_of_reads(1, 170, "c-1"));
        let f = run(&mut Sustained::default(), &rules(), &events);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].action, Action::StepUp);
        assert!(f[0].title.contains("160 distinct"), "{}", f[0].title);
        assert!(f[0].title.contains("2nd day"), "{}", f[0].title);

        // Near on Monday, a gap on Tuesday, near on Wednesday: no streak.
        let mut gap = day_of_reads(0, 170, "c-2");
        gap.extend(day_of_reads(2, 170, "c-2"));
        assert!(run(&mut Sustained::default(), &rules(), &gap).is_empty());

        // A busy clerk at 100 a day for a week: nothing.
        let busy: Vec<Event> = (0..7).flat_map(|d| day_of_reads(d, 100, "c-3")).collect();
        assert!(run(&mut Sustained::default(), &rules(), &busy).is_empty());
    }
}
