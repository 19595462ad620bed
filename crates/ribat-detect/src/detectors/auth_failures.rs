//! Failed authentications from one certificate in a short time: a stolen certificate
//! without its tokens, or tokens being forged. The certificate is quarantined, not the
//! identity (its holder may have a good one).

use super::{Burst, Detector, finding};
use crate::event::{Event, Kind};
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::Rules;
use std::collections::HashMap;

const RULE: RuleId = RuleId::AuthFailures;

#[derive(Default)]
pub(super) struct AuthFailures {
    certs: HashMap<String, Burst>,
}

impl Detector for AuthFailures {
    fn rule(&self) -> RuleId {
        RULE
    }

    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>) {
        let r = &rules.auth_failures;
        let Kind::AuthFailure(f) = &ev.kind else {
            return;
        };
        let target = if f.actor.serial.is_empty() {
            Target::Address(f.actor.addr.clone())
        } else {
            Target::Certificate(f.actor.serial.clone())
        };
        let key = target.to_string();
        let burst = self.certs.entry(key).or_default();
        let n = burst.note(ev, r.window_secs);
        if n >= r.count {
            out.push(finding(
                RULE,
                r.common(),
                Severity::High,
                target.clone(),
                format!(
                    "{target} ({}) failed to authenticate {} times within {} s",
                    f.actor.identity, n, r.window_secs
                ),
                burst.lines(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;

    #[test]
    fn five_forged_tokens_in_a_minute_quarantine_the_certificate() {
        let rules = Rules::default();
        let burst: Vec<Event> = (0..5)
            .map(|i| auth_failure(MONDAY_9AM + i * 2_000, "p-1", "token-forged"))
            .collect();
        let f = run(&mut AuthFailures::default(), &rules, &burst);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].target, Target::Certificate("serial-p-1".into()));
        // An expired token now and then (a client's clock) is not a burst.
        let slow: Vec<Event> = (0..20)
            .map(|i| auth_failure(MONDAY_9AM + i * 20_000, "p-1", "token-expired"))
            .collect();
        assert!(run(&mut AuthFailures::default(), &rules, &slow).is_empty());
    }
}
