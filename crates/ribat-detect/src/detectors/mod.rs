//! The detectors, each a pure state machine: it is fed one event at a time (the time is
//! in the event) and appends findings. No I/O, no clock, no randomness, so each has exact
//! tests of the sequences that must and must not fire.

mod auth_failures;
mod baseline;
mod breadth;
mod disagreement;
mod enumeration;
mod honey;
mod new_source;
mod off_hours;
mod proof_failure;
mod public_figure;
mod quota_hammer;
mod role_surge;
mod sustained;
mod velocity;

pub use proof_failure::custodian_node;

use crate::event::Event;
use crate::response::{Finding, Severity, Target};
use crate::rule_id::RuleId;
use crate::rules::{Common, Rules};
use std::collections::VecDeque;

/// One detector.
pub trait Detector: Send {
    /// The rule it implements (the key in the rules file).
    fn rule(&self) -> RuleId;
    /// Feeds one event; appends what it concludes.
    fn observe(&mut self, ev: &Event, rules: &Rules, out: &mut Vec<Finding>);
}

/// Every detector, fresh.
pub fn all() -> Vec<Box<dyn Detector>> {
    vec![
        Box::new(honey::Honey),
        Box::new(velocity::Velocity::default()),
        Box::new(quota_hammer::QuotaHammer::default()),
        Box::new(enumeration::Enumeration::default()),
        Box::new(role_surge::RoleSurge::default()),
        Box::new(sustained::Sustained::default()),
        Box::new(baseline::Baseline::default()),
        Box::new(breadth::Breadth::default()),
        Box::new(public_figure::PublicFigure),
        Box::new(off_hours::OffHours::default()),
        Box::new(new_source::NewSource::default()),
        Box::new(auth_failures::AuthFailures::default()),
        Box::new(disagreement::Disagreement::default()),
        Box::new(proof_failure::ProofFailure),
    ]
}

/// The last few event summaries about one target: a finding's evidence.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trail(VecDeque<String>);

/// Evidence lines kept per target.
const TRAIL: usize = 12;

impl Trail {
    pub(crate) fn push(&mut self, ev: &Event) {
        if self.0.len() == TRAIL {
            self.0.pop_front();
        }
        self.0.push_back(ev.summary());
    }
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}

/// Events within a sliding window (and their trail): bursts of refusals or failures.
#[derive(Debug, Default)]
pub(crate) struct Burst {
    times: VecDeque<u64>,
    trail: Trail,
}

impl Burst {
    /// Notes `ev`; returns how many noted events fall within the last `window_secs`.
    pub(crate) fn note(&mut self, ev: &Event, window_secs: u64) -> usize {
        let window = window_secs.saturating_mul(1000);
        while self
            .times
            .front()
            .is_some_and(|t| ev.time_ms.saturating_sub(*t) >= window)
        {
            self.times.pop_front();
        }
        self.times.push_back(ev.time_ms);
        self.trail.push(ev);
        self.times.len()
    }

    /// The evidence.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.trail.lines()
    }
}

pub(crate) fn finding(
    rule: RuleId,
    c: Common,
    severity: Severity,
    target: Target,
    title: String,
    evidence: Vec<String>,
) -> Finding {
    Finding {
        rule,
        title,
        severity,
        target,
        action: c.action,
        duration_secs: c.duration_secs,
        evidence,
    }
}

/// Local day number and minute of day for a time in ms.
pub(crate) fn local(time_ms: u64, offset_minutes: i32) -> (i64, u32) {
    let secs = (time_ms / 1000) as i64 + i64::from(offset_minutes) * 60;
    (
        secs.div_euclid(86_400),
        (secs.rem_euclid(86_400) / 60) as u32,
    )
}

/// ISO weekday (1 = Monday) of a day number since 1970-01-01 (a Thursday).
pub(crate) fn weekday(day: i64) -> u8 {
    ((day + 3).rem_euclid(7) + 1) as u8
}

#[cfg(test)]
pub(crate) mod test_events {
    //! Event builders for the detectors' tests.
    use crate::event::{Access, Actor, AuthFailure, Denied, Event, Kind};
    use ribat_policy::Table;

    /// 2026-11-23 (a Monday) 09:00 in Morocco (UTC+1), in ms.
    pub(crate) const MONDAY_9AM: u64 = 1_795_420_800_000;

    pub(crate) fn actor(identity: &str, role: &str) -> Actor {
        Actor {
            identity: identity.into(),
            role: role.into(),
            institution: "inst".into(),
            serial: format!("serial-{identity}"),
            addr: "10.0.0.1".into(),
        }
    }

    pub(crate) fn read(t: u64, identity: &str, role: &str, purpose: &str, subject: &str) -> Event {
        Event {
            time_ms: t,
            component: "gateway".into(),
            kind: Kind::Access(Access {
                actor: actor(identity, role),
                purpose: purpose.parse().unwrap(),
                route: "/v1/persons/{cnss}".into(),
                table: Table::Persons,
                subject: Some(subject.into()),
                lookup: None,
                case_ref: None,
                public_figure: false,
                area: None,
            }),
        }
    }

    pub(crate) fn with(mut e: Event, f: impl FnOnce(&mut Access)) -> Event {
        if let Kind::Access(a) = &mut e.kind {
            f(a);
        }
        e
    }

    pub(crate) fn denied(t: u64, identity: &str, role: &str, reason: &str) -> Event {
        Event {
            time_ms: t,
            component: "gateway".into(),
            kind: Kind::Denied(Denied {
                actor: actor(identity, role),
                purpose: None,
                route: "/v1/persons/{cnss}".into(),
                reason: reason.into(),
            }),
        }
    }

    pub(crate) fn auth_failure(t: u64, identity: &str, reason: &str) -> Event {
        Event {
            time_ms: t,
            component: "gateway".into(),
            kind: Kind::AuthFailure(AuthFailure {
                actor: actor(identity, "partner"),
                reason: reason.into(),
            }),
        }
    }

    /// Runs one detector over events; returns every finding.
    pub(crate) fn run(
        d: &mut dyn super::Detector,
        rules: &crate::rules::Rules,
        events: &[Event],
    ) -> Vec<crate::response::Finding> {
        let mut out = Vec::new();
        for e in events {
            d.observe(e, rules, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_exactly_one_detector() {
        let mut rules: Vec<RuleId> = all().iter().map(|d| d.rule()).collect();
        rules.sort_unstable();
        let mut expected = RuleId::ALL.to_vec();
        expected.sort_unstable();
        assert_eq!(rules, expected);
    }

    #[test]
    fn local_time_and_weekday() {
        let (day, minute) = local(test_events::MONDAY_9AM, 60);
        assert_eq!(weekday(day), 1, "2026-11-23 is a Monday");
        assert_eq!(minute, 9 * 60);
        assert_eq!(weekday(0), 4, "1970-01-01 was a Thursday");
    }
}
