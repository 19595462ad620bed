//! A custodian served a request that the gateway never audited: somebody with a gateway's
//! certificate asked the custodian directly (a compromised gateway), or the gateway
//! dropped its audit entry. Custodian answers wait `grace_ms` for the gateway's audited
//! access with the same request id.

use super::{Detector, finding};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;
use ribat_policy::Table;
use std::collections::{HashMap, VecDeque};

const RULE: RuleId = RuleId::Disagreement;

/// Service tables (the node's own key openings) are not user reads and not audited as such.
const SERVICE_TABLE: Table = Table::Keys;

#[derive(Default)]
pub(super) struct Disagreement {
    /// Request id → (time, node, summary) of custodian answers not yet matched.
    waiting: HashMap<String, (u64, String, String)>,
    /// Request ids the gateway audited recently, oldest first.
    audited: VecDeque<(u64, String)>,
    audited_set: std::collections::HashSet<String>,
}

impl Detector for Disagreement {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let grace = rules.disagreement.grace_ms;
        match &ev.kind {
            Kind::Audited { request_id: id } => {
                self.waiting.remove(id);
                if self.audited_set.insert(id.clone()) {
                    self.audited.push_back((ev.time_ms, id.clone()));
                }
            }
            Kind::CustodianAnswer(c)
                if c.outcome == "served"
                    && c.table != SERVICE_TABLE.as_str()
                    && !self.audited_set.contains(&c.request_id) =>
            {
                self.waiting.insert(
                    c.request_id.clone(),
                    (ev.time_ms, c.node.clone(), ev.summary()),
                );
            }
            _ => {}
        }
        // Audited ids are kept twice the grace: an answer arrives before its audit entry.
        while self
            .audited
            .front()
            .is_some_and(|(t, _)| ev.time_ms.saturating_sub(*t) > 2 * grace)
        {
            if let Some((_, id)) = self.audited.pop_front() {
                self.audited_set.remove(&id);
            }
        }
        let mut late: Vec<(String, (u64, String, String))> = self
            .waiting
            .iter()
            .filter(|(_, (t, _, _))| ev.time_ms.saturating_sub(*t) > grace)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        late.sort_by_key(|(_, (t, _, _))| *t);
        let mut by_node: HashMap<String, Vec<String>> = HashMap::new();
        for (id, (_, node, summary)) in late {
            self.waiting.remove(&id);
            by_node.entry(node).or_default().push(summary);
        }
        let mut nodes: Vec<_> = by_node.into_iter().collect();
        nodes.sort();
        for (node, evidence) in nodes {
            out.push(finding(
                RULE,
                rules.disagreement.common(),
                Severity::Critical,
                Target::Node(node.clone()),
                format!(
                    "custodians served {} request(s) from {node} that it never audited",
                    evidence.len()
                ),
                evidence,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;
    use crate::event::CustodianAnswer;

    fn answer(t: u64, id: &str) -> Event {
        Event {
            time_ms: t,
            component: "custodian-3".into(),
            kind: Kind::CustodianAnswer(CustodianAnswer {
                custodian: 3,
                request_id: id.into(),
                node: "gateway.embedded".into(),
                table: "persons".into(),
                identity: "partner-1".into(),
                records: 1,
                outcome: "served".into(),
                quarantined: None,
            }),
        }
    }

    #[test]
    fn an_answer_the_gateway_audited_is_fine_one_it_never_audited_fires_after_the_grace() {
        let rules = Rules::default();
        let audited = Event {
            time_ms: MONDAY_9AM + 20,
            component: "gateway".into(),
            kind: Kind::Audited {
                request_id: "r-1".into(),
            },
        };
        let events = vec![
            answer(MONDAY_9AM, "r-1"),
            audited,
            answer(MONDAY_9AM + 100, "r-2"),
            // Time passes (any event): r-2 is late at grace + 1.
            read(MONDAY_9AM + 5_000, "c-1", "clerk", "counter-service", "p-9"),
            read(MONDAY_9AM + 5_101, "c-1", "clerk", "counter-service", "p-9"),
            read(MONDAY_9AM + 9_000, "c-1", "clerk", "counter-service", "p-9"),
        ];
        let f = run(&mut Disagreement::default(), &rules, &events);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].target, Target::Node("gateway.embedded".into()));
        assert!(f[0].evidence[0].contains("r-2"));
    }

    fn audited(t: u64, id: &str) -> Event {
        Event {
            time_ms: t,
            component: "gateway".into(),
            kind: Kind::Audited {
                request_id: id.into(),
            },
        }
    }

    /// Any event: time passes.
    fn tick(t: u64) -> Event {
        read(t, "c-1", "clerk", "counter-service", "p-9")
    }

    #[test]
    fn refusals_service_openings_and_answers_audited_first_never_wait() {
        let rules = Rules::default();
        let with_answer = |f: &dyn Fn(&mut CustodianAnswer)| {
            let mut e = answer(MONDAY_9AM, "r-1");
            if let Kind::CustodianAnswer(c) = &mut e.kind {
                f(c);
            }
            e
        };
        let refused = with_answer(&|c| c.outcome = "denied".into());
        let service = with_answer(&|c| c.table = SERVICE_TABLE.as_str().into());
        for quiet in [refused, service] {
            let f = run(
                &mut Disagreement::default(),
                &rules,
                &[quiet, tick(MONDAY_9AM + 60_000)],
            );
            assert!(f.is_empty(), "{f:?}");
        }
        // The gateway's audit entry came first: the answer is already accounted for.
        let f = run(
            &mut Disagreement::default(),
            &rules,
            &[
                audited(MONDAY_9AM - 10, "r-1"),
                answer(MONDAY_9AM, "r-1"),
                tick(MONDAY_9AM + 60_000),
            ],
        );
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn an_answer_is_late_one_millisecond_after_its_grace() {
        let rules = Rules::default();
        let grace = rules.disagreement.grace_ms;
        let at = |late: u64| {
            run(
                &mut Disagreement::default(),
                &rules,
                &[answer(MONDAY_9AM, "r-1"), tick(MONDAY_9AM + late)],
            )
            .len()
        };
        assert_eq!(at(grace), 0, "at the grace it may still be audited");
        assert_eq!(at(grace + 1), 1);
    }

    #[test]
    fn an_audit_entry_covers_an_answer_for_twice_the_grace_and_no_longer() {
        let rules = Rules::default();
        let grace = rules.disagreement.grace_ms;
        let answered_after = |age: u64| {
            run(
                &mut Disagreement::default(),
                &rules,
                &[
                    audited(MONDAY_9AM, "r-1"),
                    tick(MONDAY_9AM + age),
                    answer(MONDAY_9AM + age, "r-1"),
                    tick(MONDAY_9AM + age + 2 * grace),
                ],
            )
            .len()
        };
        assert_eq!(answered_after(2 * grace), 0, "still remembered");
        assert_eq!(
            answered_after(2 * grace + 1),
            1,
            "forgotten: the answer waits"
        );
    }
}
