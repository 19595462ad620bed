//! A custodian's partial decryption failed its DLEQ proof: the custodian is lying or
//! broken (a compromised host, a corrupted share). The reader that saw it has already set
//! it aside; this rule makes that a signed decision with the failed proof as evidence, so
//! the security team sees why reads skip the custodian, and two administrators can take it
//! back before it ends.

use super::{Detector, finding};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;

const RULE: RuleId = RuleId::ProofFailure;

/// The node name of custodian `index`, as decisions name it.
pub fn custodian_node(index: u32) -> String {
    format!("custodian-{index}")
}

#[derive(Default)]
pub(super) struct ProofFailure;

impl Detector for ProofFailure {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let Kind::ProofFailure { custodian, .. } = &ev.kind else {
            return;
        };
        out.push(finding(
            RULE,
            rules.proof_failure.common(),
            Severity::High,
            Target::Node(custodian_node(*custodian)),
            format!(
                "custodian {custodian}'s answer failed its proof: set aside, asked only when the others cannot make a quorum"
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

    fn failed(t: u64, custodian: u32) -> Event {
        Event {
            time_ms: t,
            component: "gateway".into(),
            kind: Kind::ProofFailure {
                custodian,
                reason: "the DLEQ proof does not verify".into(),
            },
        }
    }

    #[test]
    fn a_failed_proof_sets_its_custodian_aside_with_the_proof_as_evidence() {
        let rules = Rules::default();
        let mut d = ProofFailure;
        let mut out = Vec::new();
        d.observe(&failed(MONDAY_9AM, 2), &rules, &mut out);
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert_eq!(f.rule, RULE);
        assert_eq!(f.target, Target::Node("custodian-2".into()));
        assert_eq!(f.action, Action::Quarantine);
        assert_eq!(f.duration_secs, 600);
        assert!(
            f.evidence[0].contains("proof of custodian 2 failed"),
            "{f:?}"
        );
    }

    #[test]
    fn other_events_say_nothing() {
        let rules = Rules::default();
        let mut d = ProofFailure;
        let mut out = Vec::new();
        let tick = Event {
            time_ms: MONDAY_9AM,
            component: "gateway".into(),
            kind: Kind::Tick,
        };
        d.observe(&tick, &rules, &mut out);
        assert!(out.is_empty());
    }
}
