//! The legitimate workload: who calls, how often, at what hours (Poisson arrivals over
//! working days), sized to the fund.

use super::*;

/// Callers per kind for a scenario, and the simulated window.
pub(super) fn plan(o: &Options, fund: &ribat_sim::Fund, wall_ms: u64) -> (Scale, (u64, u64)) {
    let employers = fund.employers.len();
    match o.scenario {
        Scenario::CompromisedGateway => (
            Scale {
                clerks: 40,
                supervisors: 4,
                partners: 10,
                employers: 0,
                uploads: 0,
                pension: false,
            },
            (wall_ms + 3_000, wall_ms + 63_000),
        ),
        Scenario::LegitWeek => {
            // Per clerk a week: 5 days × ~96 visitors × ~2 requests; the pension run reads
            // every person twice; the rest is small. Clerks make up what is left.
            let pension = 2 * fund.persons.len() as u64;
            // Per clerk a week: 96 visitors a day, 1.9 requests each (a CIN search 60 %, a
            // read, a re-read 30 %), and a tenth of a supervisor (16 requests a day).
            let per_clerk = 5 * 96 * 19 / 10 + 16;
            // Partners (12 × 72 a day, every day), employer checks and uploads.
            let others = 12 * 72 * 7 + 60 * 27 + 200;
            // 5 % over the target, so that the arrivals' randomness does not fall short.
            let want = o.requests + o.requests / 20;
            let clerks = want.saturating_sub(pension + others).div_ceil(per_clerk);
            let clerks = usize::try_from(clerks)
                .unwrap_or(usize::MAX)
                .clamp(5, 2_000);
            (
                Scale {
                    clerks,
                    supervisors: (clerks / 10).max(2),
                    partners: 12,
                    employers: 60.min(employers),
                    uploads: 200.min(employers),
                    pension: true,
                },
                (WEEK_START, WEEK_START + 7 * DAY),
            )
        }
        Scenario::PartnerReview => (
            Scale {
                clerks: 1,
                supervisors: 0,
                partners: 3,
                employers: 0,
                uploads: 0,
                pension: true,
            },
            (WEEK_START, WEEK_START + 30 * DAY),
        ),
        Scenario::LowAndSlow => (
            Scale {
                clerks: 30,
                supervisors: 3,
                partners: 6,
                employers: 20.min(employers),
                uploads: 0,
                pension: false,
            },
            (MONDAY + 8 * HOUR, MONDAY + 2 * DAY + 18 * HOUR),
        ),
        _ => (
            Scale {
                clerks: 40,
                supervisors: 4,
                partners: 10,
                employers: 20.min(employers),
                uploads: 0,
                pension: false,
            },
            (MONDAY + 8 * HOUR, MONDAY + 12 * HOUR),
        ),
    }
}

/// A minute of counters, supervisors and partners at a steady pace, any hour (the
/// compromised-gateway run keeps real time, whenever it runs).
pub(super) fn steady_jobs(w: &World, window: (u64, u64), rng: &mut ChaCha12Rng) -> Vec<Job> {
    let people = ordinary(&w.fund);
    let mut jobs = Vec::new();
    for (role, mean_ms) in [
        (Role::Clerk, 20_000.0),
        (Role::Supervisor, 60_000.0),
        (Role::Partner, 40_000.0),
    ] {
        for a in actors_of(w, role, false) {
            for t in arrivals(rng, window.0, window.1, mean_ms) {
                let person = people[rng.random_range(0..people.len())];
                jobs.push(Job {
                    t_ms: t,
                    actor: a,
                    req: Req::Person { person, case: true },
                });
                if role == Role::Supervisor {
                    jobs.push(Job {
                        t_ms: t + 2_000,
                        actor: a,
                        req: Req::Declarations { person },
                    });
                }
            }
        }
    }
    jobs
}

pub(super) fn actors_of(w: &World, role: Role, hostile: bool) -> Vec<usize> {
    w.actors
        .iter()
        .enumerate()
        .filter(|(_, a)| a.role == role && a.hostile == hostile)
        .map(|(i, _)| i)
        .collect()
}

/// Ordinary persons (never a honey record: nobody walks in with a synthetic identity).
pub(super) fn ordinary(fund: &ribat_sim::Fund) -> Vec<usize> {
    (0..fund.persons.len())
        .filter(|&i| !fund.persons[i].honey)
        .collect()
}

/// Poisson arrivals at `mean_ms` apart within [from, to).
pub(super) fn arrivals(rng: &mut ChaCha12Rng, from: u64, to: u64, mean_ms: f64) -> Vec<u64> {
    let exp = Exp::new(1.0 / mean_ms).ok();
    let mut out = Vec::new();
    let mut t = from as f64;
    while let Some(e) = &exp {
        t += e.sample(rng);
        if t >= to as f64 {
            break;
        }
        out.push(t as u64);
    }
    out
}

pub(super) fn weekday(day_start: u64) -> u64 {
    // Days since the epoch in local time; 1970-01-01 was a Thursday (ISO 4).
    ((day_start + HOUR) / DAY + 3) % 7 + 1
}

pub(super) fn legit_jobs(
    w: &World,
    s: Scale,
    window: (u64, u64),
    rng: &mut ChaCha12Rng,
) -> Vec<Job> {
    let people = ordinary(&w.fund);
    let pick = |rng: &mut ChaCha12Rng| people[rng.random_range(0..people.len())];
    let mut jobs = Vec::new();
    let first_day = window.0 - (window.0 + HOUR) % DAY;
    let mut day = first_day;
    while day < window.1 {
        let working = weekday(day) <= 5;
        let clamp = |a: u64, b: u64| (a.max(window.0), b.min(window.1));
        if working {
            let (from, to) = clamp(day + 8 * HOUR + HOUR / 2, day + 16 * HOUR + HOUR / 2);
            for a in actors_of(w, Role::Clerk, false) {
                for t in arrivals(rng, from, to, 5.0 * 60_000.0) {
                    let person = pick(rng);
                    if rng.random_bool(0.6) {
                        jobs.push(Job {
                            t_ms: t,
                            actor: a,
                            req: Req::Cin { person },
                        });
                    }
                    jobs.push(Job {
                        t_ms: t + 20_000,
                        actor: a,
                        req: Req::Person { person, case: true },
                    });
                    if rng.random_bool(0.3) {
                        jobs.push(Job {
                            t_ms: t + 120_000,
                            actor: a,
                            req: Req::Person { person, case: true },
                        });
                    }
                }
            }
            for a in actors_of(w, Role::Supervisor, false) {
                for t in arrivals(rng, from, to, 30.0 * 60_000.0) {
                    let person = pick(rng);
                    jobs.push(Job {
                        t_ms: t,
                        actor: a,
                        req: Req::Person { person, case: true },
                    });
                    jobs.push(Job {
                        t_ms: t + 30_000,
                        actor: a,
                        req: Req::Declarations { person },
                    });
                }
            }
            for (k, a) in actors_of(w, Role::Employer, false).into_iter().enumerate() {
                let staff: Vec<usize> = people
                    .iter()
                    .copied()
                    .filter(|&p| w.fund.persons[p].employer == k)
                    .collect();
                if staff.is_empty() {
                    continue;
                }
                for t in arrivals(rng, from, to, 90.0 * 60_000.0) {
                    let person = staff[rng.random_range(0..staff.len())];
                    jobs.push(Job {
                        t_ms: t,
                        actor: a,
                        req: Req::Employee { person },
                    });
                }
            }
        }
        let (from, to) = clamp(day + 8 * HOUR, day + 20 * HOUR);
        for a in actors_of(w, Role::Partner, false) {
            // A partner's request carries its own file number as the case reference.
            for t in arrivals(rng, from, to, 10.0 * 60_000.0) {
                jobs.push(Job {
                    t_ms: t,
                    actor: a,
                    req: Req::Person {
                        person: pick(rng),
                        case: true,
                    },
                });
            }
        }
        day += DAY;
    }
    // Month end (Friday 30 April): employers upload the next month's declarations.
    let uploaders = actors_of(w, Role::Employer, false);
    let month_end = WEEK_START + DAY;
    if s.uploads > 0 && (window.0..window.1).contains(&(month_end + 9 * HOUR)) {
        // Employer actors are the fund's first employers, in order.
        for (file, (employer, _)) in w.uploads.iter().enumerate().take(s.uploads) {
            let Some(&a) = uploaders.get(*employer) else {
                continue;
            };
            let t = month_end + 9 * HOUR + rng.random_range(0..8 * HOUR);
            jobs.push(Job {
                t_ms: t,
                actor: a,
                req: Req::Upload { file },
            });
        }
    }
    // The pension run on the 1st (Saturday 01:00), four hours, every person twice.
    if s.pension
        && let Some(&a) = actors_of(w, Role::Pension, false).first()
    {
        let start = WEEK_START + 2 * DAY + HOUR;
        let n = people.len() as u64;
        for (k, &person) in people.iter().enumerate() {
            let t = start + (k as u64) * 4 * HOUR / n.max(1);
            jobs.push(Job {
                t_ms: t,
                actor: a,
                req: Req::Pension { person },
            });
            jobs.push(Job {
                t_ms: t,
                actor: a,
                req: Req::Declarations { person },
            });
        }
    }
    jobs.retain(|j| j.t_ms < window.1);
    jobs
}
