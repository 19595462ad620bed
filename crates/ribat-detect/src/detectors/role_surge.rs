//! A whole role reading far more than it does: many stolen credentials, each under its own
//! quota (the `distributed` attack).
//!
//! The response is graded. First the identities that made the surge are quarantined:
//! those reading far more in the window than their own history says they do (a
//! credential seen only now, or one reading three times its usual rate) and reading at
//! least half what the median one of them does; the honest members of the role, reading
//! as they always do, go on. Only when no identity stands
//! out, or the role surges again without them, does the whole role fall back to essential
//! services (counters, employers and the pension run go on; the role stops).
//!
//! ```text
//!   read ─► identity's window and day ─► role's window (targeted identities left out)
//!             over the limit? ─► identities above their own history? ─► quarantine each,
//!                                   │ none                              start the window again
//!                                   └─► essential services for the role
//! ```

use super::{Detector, Trail, finding};
use crate::event::{Event, Kind};
use crate::response::{Action, Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;
use ribat_policy::window::DistinctWindow;
use std::collections::{BTreeMap, HashMap, VecDeque};

const RULE: RuleId = RuleId::RoleSurge;

/// How far back an identity's own history goes.
const HISTORY_MS: u64 = 24 * 3_600_000;
/// An identity stands out when it reads more than this many times its usual rate…
const FACTOR: f64 = 3.0;
/// …and more than this many records in the window.
const AT_LEAST: usize = 2;

/// One identity of a watched role.
#[derive(Default)]
struct Member {
    /// Times of its reads over the last day, oldest first.
    reads: VecDeque<u64>,
    /// Its reads in the role's window (time, subject), oldest first: the role's window
    /// is counted again from these without the identities answered for.
    window: VecDeque<(u64, String)>,
    /// When it was first seen.
    first_ms: u64,
    /// Quarantined by this rule until then.
    targeted_until: u64,
}

impl Member {
    fn forget(&mut self, now: u64, window_ms: u64) {
        while self
            .window
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) >= window_ms)
        {
            self.window.pop_front();
        }
        while self
            .reads
            .front()
            .is_some_and(|t| now.saturating_sub(*t) >= HISTORY_MS)
        {
            self.reads.pop_front();
        }
    }

    /// Reads in the window ending now, and the reads its own history predicts for one.
    fn recent_and_usual(&self, now: u64, window_ms: u64) -> (usize, f64) {
        let start = now.saturating_sub(window_ms);
        let recent = self.reads.iter().rev().take_while(|t| **t > start).count();
        let older = self.reads.len() - recent;
        // The history it has: from when it was first seen (at most a day) to the window.
        let known = start.saturating_sub(self.first_ms.max(now.saturating_sub(HISTORY_MS)));
        let usual = if known == 0 {
            0.0
        } else {
            older as f64 * window_ms as f64 / known as f64
        };
        (recent, usual)
    }
}

/// Whether an identity reading `recent` records in the window, where its own history
/// predicts `usual`, reads far above itself.
fn stands_out(recent: usize, usual: f64) -> bool {
    recent > AT_LEAST && recent as f64 > FACTOR * usual
}

/// Keeps, of the identities standing out (id, recent, usual), those that made the surge,
/// most reads first. They read alike, and much: one reading less than half what the
/// median one of them read is a bystander a little above its usual (a quiet partner with
/// no history yet), not a cause.
fn keep_causes(surging: &mut Vec<(String, usize, f64)>) {
    surging.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let median = surging.get(surging.len() / 2).map_or(0, |x| x.1);
    surging.retain(|x| x.1 * 2 >= median);
}

#[derive(Default)]
struct Role {
    window: Option<DistinctWindow>,
    trail: Trail,
    members: BTreeMap<String, Member>,
}

#[derive(Default)]
pub(super) struct RoleSurge {
    roles: HashMap<String, Role>,
}

impl Detector for RoleSurge {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let r = &rules.role_surge;
        let Kind::Access(a) = &ev.kind else { return };
        let (Some(subject), Some(&limit)) = (&a.subject, r.limits.get(&a.actor.role)) else {
            return;
        };
        let now = ev.time_ms;
        let window_ms = r.window_secs.saturating_mul(1000);
        let role = self.roles.entry(a.actor.role.clone()).or_default();
        let m = role
            .members
            .entry(a.actor.identity.clone())
            .or_insert_with(|| Member {
                first_ms: now,
                ..Member::default()
            });
        m.forget(now, window_ms);
        m.reads.push_back(now);
        m.window.push_back((now, subject.clone()));
        if m.targeted_until > now {
            return; // already answered for (its reads are refused; stragglers in flight)
        }
        let w = role
            .window
            .get_or_insert_with(|| DistinctWindow::new(window_ms));
        w.add([subject.as_str()], now);
        role.trail.push(ev);
        let n = w.would_be([], now);
        if n <= limit {
            return;
        }
        let mut surging: Vec<(String, usize, f64)> = Vec::new();
        let mut readers = 0;
        for (id, m) in &mut role.members {
            m.forget(now, window_ms);
            if m.targeted_until > now {
                continue;
            }
            let (recent, usual) = m.recent_and_usual(now, window_ms);
            readers += usize::from(recent > 0);
            if stands_out(recent, usual) {
                surging.push((id.clone(), recent, usual));
            }
        }
        keep_causes(&mut surging);
        let c = r.common();
        if surging.is_empty() {
            let evidence = role.trail.lines();
            out.push(finding(
                RULE,
                c,
                Severity::High,
                Target::Role(a.actor.role.clone()),
                format!(
                    "role {} read {n} distinct subjects within {} s (limit {limit}) across {readers} identities, none far above its own history",
                    a.actor.role, r.window_secs
                ),
                evidence,
            ));
            return;
        }
        let total: usize = surging.iter().map(|(_, k, _)| k).sum();
        for (id, recent, usual) in &surging {
            let mut evidence = role.trail.lines();
            evidence.push(format!(
                "{id} read {recent} records in {} s, {usual:.1} by its own history of the last day; {} identities made {total} of the role's reads in the surge",
                r.window_secs,
                surging.len()
            ));
            let mut f = finding(
                RULE,
                c,
                Severity::High,
                Target::Identity(id.clone()),
                format!(
                    "role {} read {n} distinct subjects within {} s (limit {limit}); {id} is one of the {} identities reading far above their own history",
                    a.actor.role,
                    r.window_secs,
                    surging.len()
                ),
                evidence,
            );
            f.action = Action::Quarantine;
            out.push(f);
            if let Some(m) = role.members.get_mut(id) {
                m.targeted_until = now.saturating_add(c.duration_secs.saturating_mul(1000));
            }
        }
        // Counted again without them: if the role still surges, the fallback follows.
        let mut rest: Vec<&(u64, String)> = role
            .members
            .values()
            .filter(|m| m.targeted_until <= now)
            .flat_map(|m| m.window.iter())
            .collect();
        rest.sort_unstable();
        let mut w = DistinctWindow::new(window_ms);
        for (t, subject) in rest {
            w.add([subject.as_str()], *t);
        }
        role.window = Some(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;

    /// `n` honest partners, each reading one person every `every` ms in [from, to).
    fn honest(n: u64, from: u64, to: u64, every: u64) -> Vec<Event> {
        let mut v = Vec::new();
        let mut t = from;
        while t < to {
            for i in 0..n {
                v.push(read(
                    t + i * (every / n.max(1)),
                    &format!("partner.honest-{i}"),
                    "partner",
                    "partner-verification",
                    &format!("h-{t}-{i}"),
                ));
            }
            t += every;
        }
        v
    }

    /// `n` stolen credentials, each one person every 4 s from `from`, `reads` each.
    fn stolen(n: u64, from: u64, reads: u64) -> Vec<Event> {
        (0..n * reads)
            .map(|i| {
                read(
                    from + (i / n) * 4_000 + (i % n),
                    &format!("partner.stolen-{}", i % n),
                    "partner",
                    "partner-verification",
                    &format!("s-{i}"),
                )
            })
            .collect()
    }

    fn merged(parts: Vec<Vec<Event>>) -> Vec<Event> {
        let mut all: Vec<Event> = parts.into_iter().flatten().collect();
        all.sort_by_key(|e| e.time_ms);
        all
    }

    const HOUR: u64 = 3_600_000;

    #[test]
    fn the_identities_that_made_the_surge_are_quarantined_and_honest_partners_go_on() {
        // A hundred honest partners, two reads each per 10 minutes since 8:00 (200 in the
        // window); at 9:00, 40 stolen credentials reading 8 each.
        let events = merged(vec![
            honest(100, MONDAY_9AM - HOUR, MONDAY_9AM + HOUR, 300_000),
            stolen(40, MONDAY_9AM, 8),
        ]);
        let f = run(&mut RoleSurge::default(), &Rules::default(), &events);
        assert!(!f.is_empty(), "the surge is seen");
        assert!(
            f.iter().all(
                |f| matches!(&f.target, Target::Identity(id) if id.starts_with("partner.stolen-"))
                    && f.action == Action::Quarantine
            ),
            "{f:#?}"
        );
        let targeted: std::collections::BTreeSet<&Target> = f.iter().map(|f| &f.target).collect();
        assert_eq!(targeted.len(), 40, "every stolen credential, each once");
        assert!(
            f[0].evidence
                .iter()
                .any(|e| e.contains("by its own history"))
        );
    }

    #[test]
    fn a_partner_reading_a_little_more_than_usual_is_not_taken_for_the_surge() {
        // A quiet partner with no history reads 4 persons just as 20 stolen credentials
        // read 16 each: the stolen explain the surge; the quiet partner goes on.
        let quiet: Vec<Event> = (0..4u64)
            .map(|i| {
                read(
                    MONDAY_9AM + 30_000 + i * 10_000,
                    "partner.quiet",
                    "partner",
                    "partner-verification",
                    &format!("q-{i}"),
                )
            })
            .collect();
        let events = merged(vec![
            honest(100, MONDAY_9AM - HOUR, MONDAY_9AM + HOUR, 300_000),
            stolen(20, MONDAY_9AM, 16),
            quiet,
        ]);
        let f = run(&mut RoleSurge::default(), &Rules::default(), &events);
        assert!(!f.is_empty());
        assert!(
            f.iter().all(
                |f| matches!(&f.target, Target::Identity(id) if id.starts_with("partner.stolen-"))
            ),
            "{:#?}",
            f.iter().map(|f| &f.target).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_surge_no_identity_stands_out_in_falls_back_to_essential_services() {
        // The same hundred partners all read twice as much from 9:00 (400 in a window):
        // nobody is three times above its own history, so the role as a whole falls back.
        let events = merged(vec![
            honest(100, MONDAY_9AM - HOUR, MONDAY_9AM, 300_000),
            honest(100, MONDAY_9AM, MONDAY_9AM + HOUR, 150_000),
        ]);
        let f = run(&mut RoleSurge::default(), &Rules::default(), &events);
        assert!(!f.is_empty());
        assert_eq!(f[0].target, Target::Role("partner".into()));
        assert_eq!(f[0].action, Action::Essential);
        assert!(f[0].title.contains("none far above"), "{}", f[0].title);
        // Only identities that read in the window count as its readers.
        let early = read(
            MONDAY_9AM - HOUR + 1,
            "partner.early",
            "partner",
            "partner-verification",
            "e-1",
        );
        let events = merged(vec![
            vec![early],
            honest(100, MONDAY_9AM - HOUR, MONDAY_9AM, 300_000),
            honest(100, MONDAY_9AM, MONDAY_9AM + HOUR, 150_000),
        ]);
        let f = run(&mut RoleSurge::default(), &Rules::default(), &events);
        assert!(
            f[0].title.contains("across 100 identities"),
            "{}",
            f[0].title
        );
    }

    #[test]
    fn a_role_that_surges_again_without_its_quarantined_identities_falls_back() {
        // Stolen credentials first, quarantined; twenty minutes later the honest partners
        // themselves double their reads: the fallback follows.
        let events = merged(vec![
            honest(100, MONDAY_9AM - HOUR, MONDAY_9AM + 1_200_000, 300_000),
            stolen(40, MONDAY_9AM, 8),
            honest(100, MONDAY_9AM + 1_200_000, MONDAY_9AM + 2 * HOUR, 150_000),
        ]);
        let f = run(&mut RoleSurge::default(), &Rules::default(), &events);
        let first_role = f.iter().position(|f| matches!(f.target, Target::Role(_)));
        let first_id = f
            .iter()
            .position(|f| matches!(f.target, Target::Identity(_)));
        assert!(first_id.is_some() && first_role.is_some(), "{f:#?}");
        assert!(first_id < first_role);
        assert!(f[..first_role.unwrap()].iter().all(
            |f| matches!(&f.target, Target::Identity(id) if id.starts_with("partner.stolen-"))
        ));
    }

    const WINDOW: u64 = 600_000;

    fn member(first_ms: u64, reads: &[u64]) -> Member {
        Member {
            reads: reads.iter().copied().collect(),
            window: reads.iter().map(|t| (*t, format!("p-{t}"))).collect(),
            first_ms,
            targeted_until: 0,
        }
    }

    #[test]
    fn a_member_forgets_the_window_and_the_day_at_their_exact_ends() {
        let now = MONDAY_9AM;
        let mut m = member(
            now - 2 * HISTORY_MS,
            &[
                now - HISTORY_MS,
                now - HISTORY_MS + 1,
                now - WINDOW,
                now - WINDOW + 1,
            ],
        );
        m.forget(now, WINDOW);
        assert_eq!(
            m.reads,
            [now - HISTORY_MS + 1, now - WINDOW, now - WINDOW + 1],
            "a day old is gone"
        );
        let in_window: Vec<u64> = m.window.iter().map(|(t, _)| *t).collect();
        assert_eq!(in_window, [now - WINDOW + 1], "a window old is gone");
        // The history is a whole day: a read of two hours ago stays.
        let mut m = member(now - 3 * HOUR, &[now - 2 * HOUR]);
        m.forget(now, WINDOW);
        assert_eq!(m.reads, [now - 2 * HOUR]);
    }

    #[test]
    fn recent_reads_are_those_after_the_window_starts_and_usual_is_the_rate_before() {
        let now = MONDAY_9AM;
        let start = now - WINDOW;
        // First seen an hour ago: 50 minutes of history before the window, two reads in
        // it (one exactly at the window's start), two after.
        let m = member(now - HOUR, &[now - HOUR, start, start + 1, now]);
        let (recent, usual) = m.recent_and_usual(now, WINDOW);
        assert_eq!(recent, 2);
        assert!(
            (usual - 2.0 * WINDOW as f64 / (HOUR - WINDOW) as f64).abs() < 1e-9,
            "{usual}"
        );
        // Seen for two days: only the last day counts as history.
        let m = member(now - 2 * HISTORY_MS, &[now - HOUR, now - 1]);
        let (recent, usual) = m.recent_and_usual(now, WINDOW);
        assert_eq!(recent, 1);
        assert!(
            (usual - WINDOW as f64 / (HISTORY_MS - WINDOW) as f64).abs() < 1e-9,
            "{usual}"
        );
        // First seen within the window: no history, nothing usual.
        let m = member(now - 1_000, &[now - 1_000, now]);
        assert_eq!(m.recent_and_usual(now, WINDOW), (2, 0.0));
    }

    #[test]
    fn an_identity_stands_out_above_two_reads_and_three_times_its_usual() {
        assert!(!stands_out(2, 0.0));
        assert!(stands_out(3, 0.0));
        assert!(!stands_out(3, 1.0), "exactly three times");
        assert!(stands_out(4, 1.0));
        assert!(!stands_out(9, 3.0));
        assert!(stands_out(10, 3.0));
    }

    #[test]
    fn the_causes_are_those_reading_at_least_half_the_median_most_first() {
        let mut s: Vec<(String, usize, f64)> =
            [("d", 5), ("a", 10), ("e", 4), ("b", 10), ("c", 10)]
                .into_iter()
                .map(|(id, n)| (id.to_string(), n, 0.0))
                .collect();
        keep_causes(&mut s);
        let kept: Vec<&str> = s.iter().map(|x| x.0.as_str()).collect();
        assert_eq!(
            kept,
            ["a", "b", "c", "d"],
            "half the median (10) stays; 4 goes"
        );
        // The median is the middle one (8 of five), not the second (14).
        let mut s: Vec<(String, usize, f64)> = [20, 14, 8, 6, 5]
            .into_iter()
            .enumerate()
            .map(|(i, n)| (format!("p{i}"), n, 0.0))
            .collect();
        keep_causes(&mut s);
        assert_eq!(s.len(), 5, "{s:?}");
        let mut none = Vec::new();
        keep_causes(&mut none);
        assert!(none.is_empty());
    }

    /// One fresh partner reading `n` persons a second apart, under a role limit of five.
    fn fresh_partner_reads(n: u64) -> Vec<Finding> {
        let mut rules = Rules::default();
        rules.role_surge.limits.insert("partner".into(), 5);
        let events: Vec<Event> = (0..n)
            .map(|i| {
                read(
                    MONDAY_9AM + i * 1000,
                    "partner.fresh",
                    "partner",
                    "partner-verification",
                    &format!("f-{i}"),
                )
            })
            .collect();
        run(&mut RoleSurge::default(), &rules, &events)
    }

    #[test]
    fn the_role_limit_is_reached_by_its_count_and_passed_by_one_more() {
        assert!(fresh_partner_reads(5).is_empty());
        let f = fresh_partner_reads(6);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].target, Target::Identity("partner.fresh".into()));
        // Quarantined: its stragglers in flight are not judged again.
        assert_eq!(fresh_partner_reads(12).len(), 1);
    }

    #[test]
    fn a_quarantine_ends_at_its_last_millisecond_for_the_role_surge() {
        let mut rules = Rules::default();
        rules.role_surge.limits.insert("partner".into(), 5);
        let p = |t: u64, who: &str, subject: String| {
            read(t, who, "partner", "partner-verification", &subject)
        };
        let t0 = MONDAY_9AM;
        let end = t0 + 5_000 + rules.role_surge.duration_secs * 1000;
        // X surges and is quarantined until `end`; its stragglers read just before.
        let mut events: Vec<Event> = (0..6)
            .map(|i| p(t0 + i * 1000, "x", format!("x{i}")))
            .collect();
        events.extend((0..4).map(|i| p(end - 10_000 + i * 1000, "x", format!("s{i}"))));
        // Y reads five persons, the sixth at exactly `end`: X is no longer answered for
        // then, and reads far above its own history again.
        events.extend((0..6).map(|i| p(end - 5_000 + i * 1000, "y", format!("y{i}"))));
        let f = run(&mut RoleSurge::default(), &rules, &events);
        let at_end: Vec<&Target> = f[1..].iter().map(|f| &f.target).collect();
        assert_eq!(
            at_end,
            [&Target::Identity("y".into()), &Target::Identity("x".into())],
            "{f:#?}"
        );
        // A read at exactly `end` counts towards the role's window again.
        let mut events: Vec<Event> = (0..6)
            .map(|i| p(t0 + i * 1000, "x", format!("x{i}")))
            .collect();
        events.extend((0..6).map(|i| p(end + i, "x", format!("again{i}"))));
        let f = run(&mut RoleSurge::default(), &rules, &events);
        assert_eq!(f.len(), 2, "{f:#?}");
    }

    #[test]
    fn clerks_have_no_role_limit_in_the_default_rules() {
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
