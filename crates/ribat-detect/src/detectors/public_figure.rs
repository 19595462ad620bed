//! A public figure's record read without a case reference: the insider who looks up a
//! minister or a footballer because they can.

use super::{Detector, finding};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;

const RULE: RuleId = RuleId::PublicFigure;

pub(super) struct PublicFigure;

impl Detector for PublicFigure {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let Kind::Access(a) = &ev.kind else { return };
        let Some(subject) = &a.subject else { return };
        let watched = a.public_figure || rules.public_figure.records.contains(subject);
        if !watched || rules.is_bulk(&a.actor.role, &a.purpose) {
            return;
        }
        if a.case_ref.as_deref().is_some_and(|c| !c.trim().is_empty()) {
            return;
        }
        out.push(finding(
            RULE,
            rules.public_figure.common(),
            Severity::High,
            Target::Identity(a.actor.identity.clone()),
            format!(
                "{} read a public figure's record ({}) without a case reference",
                a.actor.identity, subject
            ),
            vec![ev.summary()],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;
    use crate::response::Action;

    #[test]
    fn a_public_figure_without_a_case_fires_with_a_case_does_not() {
        let rules = Rules::default();
        let pf = |case: Option<&str>| {
            with(
                read(MONDAY_9AM, "c-1", "clerk", "counter-service", "p-minister"),
                |a| {
                    a.public_figure = true;
                    a.case_ref = case.map(str::to_owned);
                },
            )
        };
        let f = run(
            &mut PublicFigure,
            &rules,
            &[pf(None), pf(Some("  ")), pf(Some("ticket-4711"))],
        );
        assert_eq!(
            f.len(),
            2,
            "no case and a blank case fire; a real one does not"
        );
        assert_eq!(f[0].action, Action::StepUp);
        // Each alone: the count above would hold if the blank and the real case swapped.
        for (case, fires) in [
            (None, true),
            (Some("  "), true),
            (Some("ticket-4711"), false),
        ] {
            let f = run(&mut PublicFigure, &rules, &[pf(case)]);
            assert_eq!(f.len(), usize::from(fires), "case {case:?}");
        }
        let plain = read(MONDAY_9AM, "c-1", "clerk", "counter-service", "p-citizen");
        assert!(run(&mut PublicFigure, &rules, &[plain]).is_empty());
        // The pension run pays public figures too, under its declared bulk purpose.
        let run_read = with(
            read(
                MONDAY_9AM,
                "batch",
                "pension-batch",
                "pension-run",
                "p-minister",
            ),
            |a| a.public_figure = true,
        );
        assert!(run(&mut PublicFigure, &rules, &[run_read]).is_empty());
    }

    #[test]
    fn a_record_the_rules_list_is_watched_like_one_the_gateway_flags() {
        let minister = format!("p-{}", "b".repeat(32));
        let mut rules = Rules::default();
        rules.public_figure.records.insert(minister.clone());
        let read_of = |id: &str| read(MONDAY_9AM, "c-1", "clerk", "counter-service", id);
        let f = run(&mut PublicFigure, &rules, &[read_of(&minister)]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert!(f[0].title.contains(&minister), "{}", f[0].title);
        assert!(run(&mut PublicFigure, &rules, &[read_of("p-citizen")]).is_empty());
        assert!(run(&mut PublicFigure, &Rules::default(), &[read_of(&minister)]).is_empty());
    }
}
