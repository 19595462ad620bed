//! A honey record touched: hostile by definition (nobody has a reason to read one).
//! The custodian that saw it has quarantined the requester already; this makes it a
//! decision everywhere.

use super::{Detector, finding};
use crate::event::{Event, Kind, Refusal};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;

const RULE: RuleId = RuleId::Honey;

pub(super) struct Honey;

impl Detector for Honey {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let who = match &ev.kind {
            Kind::Denied(d) if d.reason == Refusal::Honey => d.actor.identity.clone(),
            Kind::CustodianAnswer(c)
                if c.quarantined
                    .as_deref()
                    .is_some_and(|q| q.contains("honey")) =>
            {
                c.identity.clone()
            }
            _ => return,
        };
        out.push(finding(
            RULE,
            rules.honey.common(),
            Severity::Critical,
            Target::Identity(who.clone()),
            format!("{who} requested a honey record"),
            vec![ev.summary()],
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;
    use crate::event::CustodianAnswer;

    #[test]
    fn a_custodian_honey_quarantine_becomes_a_finding_and_other_refusals_do_not() {
        let rules = Rules::default();
        let honey = Event {
            time_ms: MONDAY_9AM,
            component: "custodian-2".into(),
            kind: Kind::CustodianAnswer(CustodianAnswer {
                custodian: 2,
                request_id: "r1".into(),
                node: "gateway".into(),
                table: "persons".into(),
                identity: "partner-x".into(),
                records: 1,
                outcome: "denied".into(),
                quarantined: Some("honey record requested".into()),
            }),
        };
        let f = run(
            &mut Honey,
            &rules,
            &[
                denied(MONDAY_9AM, "partner-x", "partner", "quota-exceeded"),
                honey,
            ],
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].target, Target::Identity("partner-x".into()));
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[0].action, crate::response::Action::Quarantine);
        assert_eq!(f[0].duration_secs, 7 * 86_400);
    }

    fn custodian(quarantined: Option<&str>) -> Event {
        Event {
            time_ms: MONDAY_9AM,
            component: "custodian-1".into(),
            kind: Kind::CustodianAnswer(CustodianAnswer {
                custodian: 1,
                request_id: "r2".into(),
                node: "gateway".into(),
                table: "persons".into(),
                identity: "clerk-y".into(),
                records: 1,
                outcome: "denied".into(),
                quarantined: quarantined.map(str::to_string),
            }),
        }
    }

    #[test]
    fn a_gateway_refusal_for_a_honey_record_alone_is_a_finding() {
        let f = run(
            &mut Honey,
            &Rules::default(),
            &[denied(MONDAY_9AM, "partner-z", "partner", "honey")],
        );
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].target, Target::Identity("partner-z".into()));
        assert_eq!(f[0].title, "partner-z requested a honey record");
    }

    #[test]
    fn a_custodian_answer_without_a_honey_quarantine_is_not_a_finding() {
        let rules = Rules::default();
        let quiet = [custodian(None), custodian(Some("quota exceeded"))];
        assert!(run(&mut Honey, &rules, &quiet).is_empty());
        let f = run(&mut Honey, &rules, &[custodian(Some("honey record"))]);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].target, Target::Identity("clerk-y".into()));
    }
}
