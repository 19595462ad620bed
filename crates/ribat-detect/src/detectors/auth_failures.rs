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
            // An address is shared (a partner's NAT, a proxy): it is flagged, never cut
            // off, so that one holder of a bad certificate cannot take its neighbours down.
            let mut c = r.common();
            let shared = matches!(target, Target::Address(_));
            if shared {
                c.action = crate::response::Action::Alert;
            }
            let who = match f.actor.identity.as_str() {
                "" => String::new(),
                id => format!(" ({id})"),
            };
            out.push(finding(
                RULE,
                c,
                Severity::High,
                target.clone(),
                format!(
                    "{target}{who} failed to authenticate {n} times within {} s{}",
                    r.window_secs,
                    if shared {
                        " (an address may be shared: alerted, not cut off)"
                    } else {
                        ""
                    }
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
        // The evidence is the burst, one line per failure.
        assert_eq!(f[0].evidence.len(), 5);
        assert!(
            f[0].evidence.iter().all(|l| l.contains("token-forged")),
            "{:?}",
            f[0].evidence
        );
        // An expired token now and then (a client's clock) is not a burst.
        let slow: Vec<Event> = (0..20)
            .map(|i| auth_failure(MONDAY_9AM + i * 20_000, "p-1", "token-expired"))
            .collect();
        assert!(run(&mut AuthFailures::default(), &rules, &slow).is_empty());
    }

    #[test]
    fn handshakes_refused_from_one_address_are_alerted_never_cut_off() {
        let rules = Rules::default();
        let burst: Vec<Event> = (0..5)
            .map(|i| {
                let mut e = auth_failure(MONDAY_9AM + i * 1_000, "", "tls-unknown-ca");
                if let Kind::AuthFailure(f) = &mut e.kind {
                    f.actor.serial.clear();
                    f.actor.addr = "192.0.2.7".into();
                }
                e
            })
            .collect();
        let f = run(&mut AuthFailures::default(), &rules, &burst);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].target, Target::Address("192.0.2.7".into()));
        assert_eq!(f[0].action, crate::response::Action::Alert);
        assert!(
            f[0].title.contains("alerted, not cut off"),
            "{}",
            f[0].title
        );
    }
}
