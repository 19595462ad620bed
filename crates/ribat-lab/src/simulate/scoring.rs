//! Scoring a run: records exposed before containment, time to contain, what honest callers
//! lost, the report and its printing.

use super::*;

#[derive(Serialize)]
pub(super) struct AttackReport {
    pub(super) identities: Vec<String>,
    pub(super) requests: u64,
    pub(super) records_exposed: u64,
    pub(super) detected: bool,
    pub(super) seconds_to_contain: Option<f64>,
    pub(super) rule: Option<String>,
    pub(super) decision: Option<String>,
    pub(super) response: Option<String>,
    pub(super) refusals: BTreeMap<String, u64>,
}

#[derive(Serialize)]
pub(super) struct LegitDecision {
    pub(super) rule: String,
    pub(super) target: String,
    pub(super) action: String,
    pub(super) mode: String,
}

#[derive(Serialize)]
pub(super) struct Report {
    pub(super) scenario: Scenario,
    pub(super) persons: usize,
    pub(super) identities: usize,
    pub(super) simulated_hours: f64,
    pub(super) real_seconds: f64,
    pub(super) requests: u64,
    pub(super) requests_per_s: f64,
    pub(super) legit_failures: u64,
    pub(super) legit_failure_kinds: BTreeMap<String, u64>,
    /// Legitimate failures by the caller's role: beside `records_exposed`, what the
    /// response cost the honest members of the attacked role.
    pub(super) legit_failures_by_role: BTreeMap<String, u64>,
    pub(super) false_quarantines: usize,
    pub(super) legit_decisions: Vec<LegitDecision>,
    pub(super) alerts_by_rule: BTreeMap<String, usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) attack: Option<AttackReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) records_exposed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) seconds_to_contain: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) detected: Option<bool>,
    /// The third parties' access reviews (`partner-review`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(super) reviews: Vec<super::reviews::ReviewReport>,
    /// Against node processes on a lab clock (`--mesh` for the scenarios that span days).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) lab: Option<super::lab::LabReport>,
}

pub(super) fn targets_actor(d: &Decision, a: &Actor) -> bool {
    targets(d, &a.name, a.role.name())
}

pub(super) fn targets(d: &Decision, name: &str, role: &str) -> bool {
    match &d.target {
        Target::Identity(i) | Target::Node(i) => i == name,
        Target::Role(r) => r == role,
        Target::Certificate(_) | Target::Address(_) => false,
    }
}

pub(super) fn report(
    w: &World,
    o: &Options,
    hostile: &[usize],
    decisions: &[Decision],
    window: (u64, u64),
    real: f64,
) -> Report {
    let bypass = o.scenario == Scenario::CompromisedGateway;
    let legit = w.legit.lock().map(|t| t.clone()).unwrap_or_default();
    let bad = w.hostile.lock().map(|t| t.clone()).unwrap_or_default();
    let legit_actors: Vec<&Actor> = w.actors.iter().filter(|a| !a.hostile).collect();
    let mut legit_decisions = Vec::new();
    let mut false_quarantines = BTreeSet::new();
    let mut alerts_by_rule: BTreeMap<String, usize> = BTreeMap::new();
    for d in decisions {
        *alerts_by_rule.entry(d.rule.clone()).or_default() += 1;
        let hostile_target = hostile.iter().any(|&h| match &d.target {
            Target::Identity(i) => *i == w.actors[h].name,
            _ => false,
        });
        if hostile_target {
            continue;
        }
        if legit_actors.iter().any(|a| targets_actor(d, a)) {
            if d.enforces() && d.action == ribat_detect::Action::Quarantine {
                false_quarantines.insert(d.target.to_string());
            }
            legit_decisions.push(LegitDecision {
                rule: d.rule.clone(),
                target: d.target.to_string(),
                action: d.action.to_string(),
                mode: format!("{:?}", d.mode).to_lowercase(),
            });
        }
    }
    let attack = (!hostile.is_empty() || bypass).then(|| {
        let mine: Vec<&Decision> = decisions
            .iter()
            .filter(|d| {
                hostile.iter().any(|&h| targets_actor(d, &w.actors[h]))
                    || (bypass && targets(d, STOLEN, "gateway"))
            })
            .collect();
        // Contained when every hostile identity is under an enforced decision (its own or
        // its role's): the latest of each identity's first such decision.
        let contained = if bypass {
            // Every networked custodian must have cut the certificate off.
            w.remotes()
                .iter()
                .map(|(i, _)| {
                    mine.iter()
                        .filter(|d| d.enforces() && d.node == format!("custodian-{i}"))
                        .min_by_key(|d| d.enforced_ms.unwrap_or(u64::MAX))
                        .copied()
                })
                .collect::<Option<Vec<&Decision>>>()
        } else {
            hostile
                .iter()
                .map(|&h| {
                    mine.iter()
                        .filter(|d| d.enforces() && targets_actor(d, &w.actors[h]))
                        .min_by_key(|d| d.enforced_ms.unwrap_or(u64::MAX))
                        .copied()
                })
                .collect::<Option<Vec<&Decision>>>()
        }
        .and_then(|v| {
            v.into_iter()
                .max_by_key(|d| d.enforced_ms.unwrap_or(u64::MAX))
        });
        AttackReport {
            identities: if bypass {
                vec![format!("{STOLEN} (stolen certificate)")]
            } else {
                hostile.iter().map(|&h| w.actors[h].name.clone()).collect()
            },
            requests: bad.requests,
            records_exposed: bad.records,
            detected: !mine.is_empty(),
            seconds_to_contain: contained.and_then(|d| {
                let first = bad.first_ms?;
                Some(d.enforced_ms?.saturating_sub(first) as f64 / 1000.0)
            }),
            rule: contained.or(mine.first().copied()).map(|d| d.rule.clone()),
            decision: contained.or(mine.first().copied()).map(|d| d.id.clone()),
            response: contained.map(|d| d.action.to_string()),
            refusals: bad.failures.clone(),
        }
    });
    let end = w.clock.now_ms().max(window.0);
    Report {
        scenario: o.scenario,
        persons: o.persons,
        identities: w.actors.len(),
        simulated_hours: (end - window.0) as f64 / HOUR as f64,
        real_seconds: real,
        requests: legit.requests,
        requests_per_s: (legit.requests + bad.requests) as f64 / real.max(1e-9),
        legit_failures: legit.failures.values().sum(),
        legit_failure_kinds: legit.failures.clone(),
        legit_failures_by_role: legit.failures_by_role.clone(),
        false_quarantines: false_quarantines.len(),
        legit_decisions,
        alerts_by_rule,
        records_exposed: attack.as_ref().map(|a| a.records_exposed),
        seconds_to_contain: attack.as_ref().and_then(|a| a.seconds_to_contain),
        detected: attack.as_ref().map(|a| a.detected),
        attack,
        reviews: Vec::new(),
        lab: None,
    }
}

pub(super) fn print_report(r: &Report) {
    println!(
        "{:?}: {} legitimate requests in {:.1} simulated hours ({:.0} s real, {:.0} requests/s)",
        r.scenario, r.requests, r.simulated_hours, r.real_seconds, r.requests_per_s
    );
    println!(
        "legitimate failures: {} {:?} by role {:?}; false quarantines: {}",
        r.legit_failures, r.legit_failure_kinds, r.legit_failures_by_role, r.false_quarantines
    );
    for d in &r.legit_decisions {
        println!(
            "  decision on a legitimate caller: {} {} ({}, {})",
            d.rule, d.target, d.action, d.mode
        );
    }
    if let Some(a) = &r.attack {
        println!(
            "attack by {}: {} requests, {} records exposed, detected: {}, contained in {} by {} ({})",
            a.identities.join(", "),
            a.requests,
            a.records_exposed,
            a.detected,
            a.seconds_to_contain
                .map_or_else(|| "—".to_owned(), |s| format!("{s:.3} s")),
            a.rule.as_deref().unwrap_or("—"),
            a.response.as_deref().unwrap_or("no response")
        );
    }
    println!("decisions by rule: {:?}", r.alerts_by_rule);
    if let Some(l) = &r.lab {
        println!(
            "against {} node processes on a lab clock ({:+.1} days from the system's at the end; {} of them dated by it); the lab's rules gave the disagreement detector a grace of {} days",
            l.nodes,
            l.clock_ahead_ms as f64 / DAY as f64,
            l.nodes_on_the_lab_clock,
            l.disagreement_grace_ms / DAY
        );
    }
    if !r.reviews.is_empty() {
        println!("third parties' access reviews:");
        super::reviews::print(&r.reviews);
    }
}
