//! Walking the number space: an identity's last lookups stepping through the numbers in
//! one direction by small steps (near-sequential CNSS or affiliation numbers), or most of
//! its lookups missing (guessing numbers). Looked-up numbers stay in this detector's
//! memory only.
//!
//! Closeness alone is not walking: an employer's staff were registered together and hold
//! neighbouring numbers, and it checks them in no particular order. A walk keeps going the
//! same way.

use super::{Detector, Trail, finding};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;
use std::collections::{HashMap, VecDeque};

const RULE: RuleId = RuleId::Enumeration;

/// Lookups older than this are forgotten: enumeration is a burst, not a career.
const HORIZON_MS: u64 = 3_600_000;

/// (time, number looked up, missed).
type Lookup = (u64, u64, bool);

#[derive(Default)]
pub(super) struct Enumeration {
    lookups: HashMap<String, (VecDeque<Lookup>, Trail)>,
}

impl Detector for Enumeration {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let r = &rules.enumeration;
        let Kind::Access(a) = &ev.kind else { return };
        let Some(number) = a.lookup else { return };
        if rules.is_bulk(&a.actor.role, &a.purpose) {
            return; // a pension run walks the register by design
        }
        let (recent, trail) = self.lookups.entry(a.actor.identity.clone()).or_default();
        if recent.back().is_some_and(|(_, n, _)| *n == number) {
            return; // the same person again (a read, then the declarations)
        }
        recent.push_back((ev.time_ms, number, a.subject.is_none()));
        while recent.len() > r.last
            || recent
                .front()
                .is_some_and(|(t, _, _)| ev.time_ms.saturating_sub(*t) > HORIZON_MS)
        {
            recent.pop_front();
        }
        trail.push(ev);
        // The last steps, newest first, while they go one way by at most `gap`.
        let numbers: Vec<u64> = recent.iter().rev().map(|(_, n, _)| *n).collect();
        let steps: Vec<i128> = numbers
            .windows(2)
            .map(|w| i128::from(w[0]) - i128::from(w[1]))
            .collect();
        let walk = steps
            .iter()
            .take_while(|d| {
                d.signum() == steps.first().map_or(0, |f| f.signum())
                    && **d != 0
                    && d.unsigned_abs() <= u128::from(r.gap)
            })
            .count();
        let misses = recent.iter().filter(|(_, _, miss)| *miss).count();
        let why = if walk >= r.near {
            format!(
                "its last {} lookups step through the numbers one way, by at most {} each",
                walk + 1,
                r.gap
            )
        } else if recent.len() >= r.min_lookups
            && misses as f64 >= r.miss_share * recent.len() as f64
        {
            format!("{misses} of its last {} lookups found nobody", recent.len())
        } else {
            return;
        };
        out.push(finding(
            RULE,
            r.common(),
            Severity::High,
            Target::Identity(a.actor.identity.clone()),
            format!("{} is walking the number space: {why}", a.actor.identity),
            trail.lines(),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;

    fn lookup(t: u64, n: u64, found: bool) -> Event {
        with(read(t, "e-1", "employer", "employee-check", "p-x"), |a| {
            a.lookup = Some(n);
            if !found {
                a.subject = None;
            }
        })
    }

    #[test]
    fn a_walk_fires_at_its_sixth_step_and_a_shuffled_neighbourhood_does_not() {
        let events: Vec<Event> = (0..9)
            .map(|i| lookup(MONDAY_9AM + i * 1000, 100_000_000 + i * 7, true))
            .collect();
        let f = run(&mut Enumeration::default(), &Rules::default(), &events);
        // Seven lookups make six steps up; the 8th and 9th keep walking.
        assert_eq!(f.len(), 3, "{f:?}");
        assert!(f[0].title.contains("last 7 lookups step"), "{}", f[0].title);
        // Downwards is a walk too.
        let down: Vec<Event> = (0..7)
            .map(|i| lookup(MONDAY_9AM + i * 1000, 100_000_000 - i * 3, true))
            .collect();
        assert_eq!(
            run(&mut Enumeration::default(), &Rules::default(), &down).len(),
            1
        );
        // An employer checking its twelve staff, numbered together, in no order: not a walk.
        let staff = [5u64, 61, 12, 40, 33, 70, 19, 54, 26, 47, 5, 68, 12, 61];
        let shuffled: Vec<Event> = staff
            .iter()
            .enumerate()
            .map(|(i, n)| lookup(MONDAY_9AM + i as u64 * 1000, 100_000_000 + n, true))
            .collect();
        assert!(run(&mut Enumeration::default(), &Rules::default(), &shuffled).is_empty());
    }

    #[test]
    fn guessing_numbers_that_miss_fires_and_random_reads_do_not() {
        let rules = Rules::default();
        let guesses: Vec<Event> = (0..8)
            .map(|i| lookup(MONDAY_9AM + i * 1000, 100_000_000 + i * 97_531, i % 4 == 0))
            .collect();
        let f = run(&mut Enumeration::default(), &rules, &guesses);
        assert_eq!(f.len(), 1);
        assert!(
            f[0].title.contains("6 of its last 8 lookups found nobody"),
            "{}",
            f[0].title
        );
        // Far-apart numbers, all found, the same person twice: nothing.
        let normal: Vec<Event> = (0..40)
            .map(|i| {
                lookup(
                    MONDAY_9AM + i * 1000,
                    100_000_000 + ((i * 7) % 40) * 48_611,
                    true,
                )
            })
            .collect();
        assert!(run(&mut Enumeration::default(), &rules, &normal).is_empty());
    }

    /// Far-apart numbers (no walk), `missed(i)` says which find nobody, a second apart.
    fn guesses(n: u64, missed: impl Fn(u64) -> bool) -> Vec<Event> {
        (0..n)
            .map(|i| lookup(MONDAY_9AM + i * 1000, 100_000_000 + i * 97_531, !missed(i)))
            .collect()
    }

    #[test]
    fn half_the_lookups_missing_is_enough_from_the_eighth_lookup() {
        let rules = Rules::default();
        let f = run(
            &mut Enumeration::default(),
            &rules,
            &guesses(8, |i| i % 2 == 0),
        );
        assert_eq!(f.len(), 1, "4 of 8 is half: {f:?}");
        assert!(
            f[0].title.contains("4 of its last 8 lookups"),
            "{}",
            f[0].title
        );
        let f = run(
            &mut Enumeration::default(),
            &rules,
            &guesses(8, |i| i % 2 == 0 && i > 0),
        );
        assert!(f.is_empty(), "3 of 8 is less: {f:?}");
        let f = run(&mut Enumeration::default(), &rules, &guesses(7, |_| true));
        assert!(f.is_empty(), "seven lookups are too few to judge: {f:?}");
    }

    #[test]
    fn only_the_last_twelve_lookups_of_the_last_hour_are_looked_at() {
        let rules = Rules::default();
        let f = run(&mut Enumeration::default(), &rules, &guesses(13, |_| true));
        let last = f.last().map(|f| f.title.as_str()).unwrap_or_default();
        assert!(last.contains("12 of its last 12 lookups"), "{last}");
        // Seven misses now and one an hour ago: eight while the hour lasts, then seven.
        let hour_ago = |age: u64| {
            let mut v = vec![lookup(MONDAY_9AM, 99_000_000, false)];
            v.extend(
                (0..7).map(|i| lookup(MONDAY_9AM + age - 6 + i, 100_000_000 + i * 97_531, false)),
            );
            run(&mut Enumeration::default(), &rules, &v).len()
        };
        assert_eq!(hour_ago(HORIZON_MS), 1, "an hour old is still remembered");
        assert_eq!(hour_ago(HORIZON_MS + 1), 0, "older is forgotten");
    }

    #[test]
    fn a_walk_steps_by_at_most_the_gap() {
        let rules = Rules::default();
        let gap = rules.enumeration.gap;
        let by = |step: u64| {
            let walk: Vec<Event> = (0..7)
                .map(|i| lookup(MONDAY_9AM + i * 1000, 100_000_000 + i * step, true))
                .collect();
            run(&mut Enumeration::default(), &rules, &walk).len()
        };
        assert_eq!(by(gap), 1);
        assert_eq!(by(gap + 1), 0);
    }

    #[test]
    fn a_pension_run_walking_the_register_with_its_purpose_is_not_enumeration() {
        let rules = Rules::default();
        let walk = |purpose: &str| -> Vec<Event> {
            (0..20)
                .map(|i| {
                    with(
                        read(MONDAY_9AM + i, "batch", "pension-batch", purpose, "p-x"),
                        |a| a.lookup = Some(100_000_000 + i * 3),
                    )
                })
                .collect()
        };
        assert!(run(&mut Enumeration::default(), &rules, &walk("pension-run")).is_empty());
        assert!(!run(&mut Enumeration::default(), &rules, &walk("benefit-claim")).is_empty());
    }
}
