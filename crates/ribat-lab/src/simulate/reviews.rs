//! Third parties' access reviews over a simulated month (`partner-review`): every partner
//! and batch identity carries a review date in the register; one partner is re-certified
//! by a security administrator before its date, one is left to lapse, and the pension
//! batch's date passes the day before its monthly run. The gateway refuses a lapsed
//! certificate by the simulated clock — unless its role is essential by the rules (the
//! pension batch: pensions are paid, and the finding goes on daily) — and the daily check
//! raises the findings from a week ahead, as `ribat serve` does.

use super::*;
use ribat_node::reviews::{Notices, Register};

/// The partner re-certified before its date.
pub(super) const RECERTIFIED: &str = "partner.00";
/// The partner nobody reviews.
pub(super) const UNREVIEWED: &str = "partner.01";

/// Review dates, simulated ms, by identity: what the register says at the start.
pub(super) fn dates(s: Scenario, actors: &[Actor], window: (u64, u64)) -> BTreeMap<String, u64> {
    actors
        .iter()
        .filter(|a| matches!(a.role, Role::Partner | Role::Pension))
        .map(|a| {
            let due = match (s, a.name.as_str()) {
                (Scenario::PartnerReview, RECERTIFIED) => window.0 + 10 * DAY,
                (Scenario::PartnerReview, UNREVIEWED) => window.0 + 20 * DAY,
                // Lapses before the pension run of the 1st: an essential role, it runs.
                (Scenario::PartnerReview, _) if a.role == Role::Pension => window.0 + DAY,
                // Everyone else reviewed well after the run.
                _ => window.1 + 60 * DAY,
            };
            (a.name.clone(), due)
        })
        .collect()
}

/// Writes the review dates into the node's register (the CA's, as `identity add` does).
pub(super) fn set(home: &Home, dates: &BTreeMap<String, u64>) -> Result<()> {
    let ca = ribat_node::identity::open_ca(home)?;
    for (name, due_ms) in dates {
        ca.review(name, i64::try_from(due_ms / 1000)?)?;
    }
    Ok(())
}

/// The month's review work: the daily check at 07:00, and the administrator's review of
/// the re-certified partner on day 7, to day 100.
pub(super) fn jobs(w: &World, window: (u64, u64)) -> Vec<Job> {
    let mut jobs = Vec::new();
    let first_day = window.0 - (window.0 + HOUR) % DAY;
    let mut day = first_day;
    while day < window.1 {
        jobs.push(Job {
            t_ms: (day + 7 * HOUR).max(window.0),
            actor: 0,
            req: Req::ReviewCheck,
        });
        day += DAY;
    }
    if let Some(a) = w.actors.iter().position(|a| a.name == RECERTIFIED) {
        jobs.push(Job {
            t_ms: window.0 + 7 * DAY + 10 * HOUR,
            actor: a,
            req: Req::Recertify {
                until_ms: window.0 + 100 * DAY,
            },
        });
    }
    jobs
}

/// What the review side of a run keeps.
#[derive(Default)]
pub(super) struct Reviews {
    /// The node's register (the gateway vets by it).
    pub(super) register: Option<Arc<Register>>,
    /// Findings said once a day.
    pub(super) notices: Mutex<Notices>,
    /// Findings raised: (identity, simulated ms).
    pub(super) findings: Mutex<Vec<(String, u64)>>,
    /// Each third party's answers: (actor, simulated ms sent, outcome).
    pub(super) outcomes: Mutex<Vec<(usize, u64, String)>>,
    /// Re-certifications made: (identity, simulated ms, new date in ms).
    pub(super) recertified: Mutex<Vec<(String, u64, u64)>>,
}

/// The daily check: raises what is due (a week ahead or past) on the gateway's detectors,
/// as `ribat serve` does. Mesh nodes raise their own every few seconds: the check collects
/// the findings their logs gained since the last one.
pub(super) fn check(w: &World) {
    let due: Vec<String> = match (&w.place, &w.reviews.register) {
        (Place::InProcess(p), Some(register)) => match w.reviews.notices.lock() {
            Ok(mut n) => ribat_node::reviews::raise_due(
                register,
                &mut n,
                &p.watch,
                ribat_node::identity::GATEWAY_NAME,
            )
            .into_iter()
            .map(|d| d.identity)
            .collect(),
            Err(_) => return,
        },
        (Place::InProcess(_), None) => return,
        (Place::Mesh(m), _) => m.new_findings(),
    };
    let now_ms = w.clock.now_ms();
    if let Ok(mut f) = w.reviews.findings.lock() {
        f.extend(due.into_iter().map(|d| (d, now_ms)));
    }
}

/// A security administrator re-certifies `actor`'s access until `until_ms` (in a mesh:
/// through the log, as `ribat mesh recertify` does).
pub(super) fn recertify(w: &World, actor: usize, until_ms: u64) -> Result<()> {
    let name = &w.actors[actor].name;
    let until_s = i64::try_from(until_ms / 1000)?;
    match &w.place {
        Place::InProcess(p) => {
            ribat_node::identity::open_ca(&p.node_home)?.review(name, until_s)?;
        }
        Place::Mesh(m) => m.recertify(name, until_s)?,
    }
    if let Ok(mut r) = w.reviews.recertified.lock() {
        r.push((name.clone(), w.clock.now_ms(), until_ms));
    }
    Ok(())
}

/// Keeps a third party's answer (by its problem type, `ok`, or the transport error).
pub(super) fn note(
    w: &World,
    actor: usize,
    sent_ms: u64,
    r: Option<&ribat_net::client::Response>,
    error: Option<&str>,
) {
    if !matches!(w.actors[actor].role, Role::Partner | Role::Pension) || w.actors[actor].hostile {
        return;
    }
    let outcome = match (r, error) {
        (Some(r), _) if (200..300).contains(&r.status) => "ok".to_owned(),
        (Some(r), _) => r.json()["type"]
            .as_str()
            .and_then(|s| s.rsplit('/').next())
            .map_or_else(|| format!("http-{}", r.status), str::to_owned),
        (None, Some(e)) if e.contains("passed its review date") => {
            "certificate-review-lapsed".to_owned()
        }
        (None, e) => format!("transport: {}", e.unwrap_or_default()),
    };
    if let Ok(mut o) = w.reviews.outcomes.lock() {
        o.push((actor, sent_ms, outcome));
    }
}

/// One third party's month.
#[derive(Debug, Serialize)]
pub(super) struct ReviewReport {
    pub(super) identity: String,
    pub(super) role: String,
    /// Whether its role is essential by the rules (kept past its review date).
    pub(super) essential: bool,
    /// Its review date at the start, simulated ms.
    pub(super) review_by_ms: u64,
    /// When an administrator re-certified it, and to when.
    pub(super) recertified: Option<(u64, u64)>,
    /// When its access lapsed (its review date in force when the run ended), if within the
    /// run.
    pub(super) lapsed_at_ms: Option<u64>,
    pub(super) ok_before_lapse: u64,
    /// Answered at or after its review date at the start (re-certified before it).
    pub(super) ok_after_first_date: u64,
    pub(super) refused_before_lapse: BTreeMap<String, u64>,
    pub(super) ok_after_lapse: u64,
    pub(super) refused_after_lapse: BTreeMap<String, u64>,
    pub(super) first_refused_ms: Option<u64>,
    /// Review-due findings raised for it, simulated ms.
    pub(super) findings_ms: Vec<u64>,
}

/// The third parties' month, one report each.
pub(super) fn report(
    w: &World,
    dates: &BTreeMap<String, u64>,
    window: (u64, u64),
) -> Vec<ReviewReport> {
    let outcomes = w
        .reviews
        .outcomes
        .lock()
        .map(|o| o.clone())
        .unwrap_or_default();
    let recertified = w
        .reviews
        .recertified
        .lock()
        .map(|r| r.clone())
        .unwrap_or_default();
    let findings = w
        .reviews
        .findings
        .lock()
        .map(|f| f.clone())
        .unwrap_or_default();
    let essential = ribat_node::reviews::Essential::from_rules_file(&w.rules_file());
    dates
        .iter()
        .filter_map(|(name, &due)| {
            let actor = w.actors.iter().position(|a| &a.name == name)?;
            let re = recertified
                .iter()
                .find(|(n, _, _)| n == name)
                .map(|(_, at, to)| (*at, *to));
            let in_force = re.map_or(due, |(_, to)| to);
            let lapsed_at_ms = (in_force < window.1).then_some(in_force);
            let mut r = ReviewReport {
                identity: name.clone(),
                role: w.actors[actor].role.name().to_owned(),
                essential: essential.contains(w.actors[actor].role.name(), None),
                review_by_ms: due,
                recertified: re,
                lapsed_at_ms,
                ok_before_lapse: 0,
                ok_after_first_date: 0,
                refused_before_lapse: BTreeMap::new(),
                ok_after_lapse: 0,
                refused_after_lapse: BTreeMap::new(),
                first_refused_ms: None,
                findings_ms: findings
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, t)| *t)
                    .collect(),
            };
            for (_, sent, outcome) in outcomes.iter().filter(|(a, _, _)| *a == actor) {
                let after = lapsed_at_ms.is_some_and(|l| *sent >= l);
                if outcome == "ok" && *sent >= due {
                    r.ok_after_first_date += 1;
                }
                match (outcome.as_str(), after) {
                    ("ok", false) => r.ok_before_lapse += 1,
                    ("ok", true) => r.ok_after_lapse += 1,
                    (kind, after) => {
                        r.first_refused_ms =
                            Some(r.first_refused_ms.map_or(*sent, |f| f.min(*sent)));
                        let m = if after {
                            &mut r.refused_after_lapse
                        } else {
                            &mut r.refused_before_lapse
                        };
                        *m.entry(kind.to_owned()).or_default() += 1;
                    }
                }
            }
            Some(r)
        })
        .collect()
}

/// The third parties' month, for people.
pub(super) fn print(reports: &[ReviewReport]) {
    let day = |ms: u64| ribat_custodian::error_utc(ms / 1000);
    for r in reports {
        println!(
            "  {} ({}{}): review by {}{}; {} answered{}, {} refused after{}; findings: {}",
            r.identity,
            r.role,
            if r.essential { ", essential: kept" } else { "" },
            day(r.review_by_ms),
            r.recertified.map_or_else(String::new, |(at, to)| format!(
                ", re-certified at {} to {}",
                day(at),
                day(to)
            )),
            r.ok_before_lapse + r.ok_after_lapse,
            r.lapsed_at_ms
                .map_or_else(String::new, |l| format!(" (lapsed at {})", day(l))),
            r.refused_after_lapse.values().sum::<u64>(),
            if r.refused_before_lapse.is_empty() {
                String::new()
            } else {
                format!(", {:?} refused before", r.refused_before_lapse)
            },
            r.findings_ms.len()
        );
    }
}
