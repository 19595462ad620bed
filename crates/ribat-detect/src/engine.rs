//! Runs every detector that is not `off` over each event and grades what they find: a
//! rule in `shadow` only alerts; a finding about a target that is already under the same
//! response is not repeated until that response ends.

use crate::detectors::{self, Detector};
use crate::event::Event;
use crate::response::{Action, Finding, Target};
use crate::rule_id::RuleId;
use crate::rules::{Mode, Rules};
use std::collections::HashMap;

/// A finding and what the engine made of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judged {
    /// The finding.
    pub finding: Finding,
    /// `Enforce`: carry out the response; `Shadow`: alert only.
    pub mode: Mode,
}

/// The engine's state.
pub struct Engine {
    rules: Rules,
    detectors: Vec<Box<dyn Detector>>,
    /// (target, response kind) → until, ms.
    active: HashMap<(Target, &'static str), u64>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("active", &self.active.len())
            .finish_non_exhaustive()
    }
}

fn kind(a: Action) -> &'static str {
    match a {
        Action::Alert => "alert",
        Action::Throttle { .. } => "throttle",
        Action::StepUp => "step-up",
        Action::Quarantine => "quarantine",
        Action::Essential => "essential",
    }
}

/// The mode a rule has in `rules` (`Off` for a name no rule has).
pub fn mode_of(r: &Rules, rule: RuleId) -> Mode {
    match rule {
        RuleId::Velocity => r.velocity.mode,
        RuleId::QuotaHammer => r.quota_hammer.mode,
        RuleId::RoleSurge => r.role_surge.mode,
        RuleId::Sustained => r.sustained.mode,
        RuleId::Baseline => r.baseline.mode,
        RuleId::Breadth => r.breadth.mode,
        RuleId::Enumeration => r.enumeration.mode,
        RuleId::Honey => r.honey.mode,
        RuleId::PublicFigure => r.public_figure.mode,
        RuleId::OffHours => r.off_hours.mode,
        RuleId::NewSource => r.new_source.mode,
        RuleId::AuthFailures => r.auth_failures.mode,
        RuleId::Disagreement => r.disagreement.mode,
        RuleId::ProofFailure => r.proof_failure.mode,
    }
}

impl Engine {
    /// An engine with fresh detectors.
    pub fn new(rules: Rules) -> Self {
        Self {
            rules,
            detectors: detectors::all(),
            active: HashMap::new(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Detects by `rules` from the next event on; what the detectors have seen so far, and
    /// the responses in force, stay.
    pub fn set_rules(&mut self, rules: Rules) {
        self.rules = rules;
    }

    /// Feeds one event to every detector that is on.
    pub fn observe(&mut self, ev: &Event) -> Vec<Judged> {
        let mut found = Vec::new();
        for d in &mut self.detectors {
            if mode_of(&self.rules, d.rule()) != Mode::Off {
                d.observe(ev, &self.rules, &mut found);
            }
        }
        let mut out = Vec::new();
        for f in found {
            let mode = mode_of(&self.rules, f.rule);
            if mode == Mode::Off {
                continue;
            }
            let key = (f.target.clone(), kind(f.action));
            if self
                .active
                .get(&key)
                .is_some_and(|&until| until > ev.time_ms)
            {
                continue;
            }
            self.active.insert(
                key,
                ev.time_ms
                    .saturating_add(f.duration_secs.saturating_mul(1000)),
            );
            out.push(Judged { finding: f, mode });
        }
        out
    }

    /// Forgets that `target` is under a response (it was released): the next finding
    /// about it is new.
    pub fn forget(&mut self, target: &Target) {
        self.active.retain(|(t, _), _| t != target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detectors::test_events::*;

    fn scrape(engine: &mut Engine, from: u64, n: u64) -> Vec<Judged> {
        (0..n)
            .flat_map(|i| {
                engine.observe(&read(
                    from + i * 50,
                    "partner-x",
                    "partner",
                    "partner-verification",
                    &format!("p-{from}-{i}"),
                ))
            })
            .collect()
    }

    #[test]
    fn a_finding_is_acted_on_once_while_its_response_lasts() {
        let mut e = Engine::new(Rules::default());
        let j = scrape(&mut e, MONDAY_9AM, 30);
        assert_eq!(j.len(), 1, "{j:?}");
        assert_eq!(j[0].mode, Mode::Enforce);
        assert_eq!(j[0].finding.rule, RuleId::Velocity);
        // Released by the administrators: the next scrape is a new decision.
        e.forget(&Target::Identity("partner-x".into()));
        assert_eq!(scrape(&mut e, MONDAY_9AM + 60_000, 30).len(), 1);
    }

    #[test]
    fn a_shadow_rule_alerts_and_an_off_rule_is_silent() {
        let mut rules = Rules::default();
        rules.velocity.mode = Mode::Shadow;
        let j = scrape(&mut Engine::new(rules.clone()), MONDAY_9AM, 30);
        assert_eq!(j.len(), 1);
        assert_eq!(j[0].mode, Mode::Shadow);
        rules.velocity.mode = Mode::Off;
        assert!(scrape(&mut Engine::new(rules), MONDAY_9AM, 30).is_empty());
    }

    #[test]
    fn a_response_ends_at_its_last_millisecond_and_each_kind_is_its_own() {
        let mut e = Engine::new(Rules::default());
        let week = Rules::default().honey.duration_secs * 1000;
        let honey = |t| denied(t, "clerk-h", "clerk", "honey");
        assert_eq!(e.observe(&honey(MONDAY_9AM)).len(), 1);
        assert!(
            e.observe(&honey(MONDAY_9AM + week - 1)).is_empty(),
            "in force"
        );
        assert_eq!(e.observe(&honey(MONDAY_9AM + week)).len(), 1, "ended");
        // One target can be under a step-up and a quarantine at once: suppression is per kind.
        let kinds: std::collections::BTreeSet<&str> = [
            Action::Alert,
            Action::Throttle { per_minute: 1 },
            Action::StepUp,
            Action::Quarantine,
            Action::Essential,
        ]
        .into_iter()
        .map(kind)
        .collect();
        assert_eq!(kinds.len(), 5);
    }

    #[test]
    fn new_rules_are_the_rules_from_the_next_event_on() {
        let mut engine = Engine::new(Rules::default());
        assert_eq!(engine.rules(), &Rules::default());
        assert_eq!(format!("{engine:?}"), "Engine { active: 0, .. }");
        let mut stricter = Rules::default();
        stricter.velocity.mode = crate::rules::Mode::Shadow;
        engine.set_rules(stricter.clone());
        assert_eq!(engine.rules(), &stricter);
        assert_ne!(engine.rules(), &Rules::default());
    }
}
