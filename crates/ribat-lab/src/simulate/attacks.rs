//! The attacks: each scenario's hostile identities and what they ask, and the thief who
//! bypasses the gateway with its stolen certificate.

use super::*;
use ribat_policy::{Class, Purpose, Table};

/// The attack's identities: (name, role, institution, hostile).
pub(super) fn attackers(s: Scenario, fund: &ribat_sim::Fund) -> Vec<(String, Role, String, bool)> {
    let one = |n: &str, r: Role, i: &str| vec![(n.to_owned(), r, i.to_owned(), true)];
    match s {
        Scenario::CnssBulk => one("partner.leaked", Role::Partner, "third-party-x"),
        Scenario::LowAndSlow => one("clerk.stolen", Role::Clerk, "agency-7"),
        Scenario::Distributed => (0..15)
            .map(|i| {
                (
                    format!("partner.stolen-{i:02}"),
                    Role::Partner,
                    format!("stolen-{i}"),
                    true,
                )
            })
            .collect(),
        Scenario::Enumeration => {
            let aff = fund
                .employers
                .last()
                .map_or("0000000", |e| e.affiliation.as_str());
            one("employer.walker", Role::Employer, aff)
        }
        Scenario::InsiderSnooping => one("clerk.curious", Role::Clerk, "agency-3"),
        Scenario::Honey => one("partner.list", Role::Partner, "data-broker-z"),
        Scenario::LegitWeek | Scenario::CompromisedGateway | Scenario::PartnerReview => Vec::new(),
    }
}

/// Schedules the attack; returns the hostile identities.
pub(super) fn attack_jobs(
    w: &World,
    s: Scenario,
    rng: &mut ChaCha12Rng,
    jobs: &mut Vec<Job>,
) -> Result<Vec<usize>> {
    if s == Scenario::CompromisedGateway {
        jobs.push(Job {
            t_ms: w.clock.now_ms() + 15_000,
            actor: 0,
            req: Req::StartBypass,
        });
        return Ok(Vec::new());
    }
    let hostile: Vec<usize> = (0..w.actors.len())
        .filter(|&i| w.actors[i].hostile)
        .collect();
    jobs.extend(attack_plan(s, &w.fund, &hostile, MONDAY + 10 * HOUR, rng)?);
    Ok(hostile)
}

/// What the `hostile` actors of scenario `s` ask, in any order, `at` (ms) being a working
/// day's 10:00: the embedded run schedules it on its simulated clock, the mesh run in real
/// time.
pub(super) fn attack_plan(
    s: Scenario,
    fund: &ribat_sim::Fund,
    hostile: &[usize],
    at: u64,
    rng: &mut ChaCha12Rng,
) -> Result<Vec<Job>> {
    let mut jobs = Vec::new();
    let Some(&first) = hostile.first() else {
        return Ok(jobs);
    };
    let people = ordinary(fund);
    match s {
        Scenario::CnssBulk => jobs.push(Job {
            t_ms: at,
            actor: first,
            req: Req::StartBulk,
        }),
        Scenario::LowAndSlow => {
            // ~190 distinct persons a working day (quota 200), every day of the window.
            // `at` is 10:00 on the first day; each day from 08:30.
            for d in 0..3 {
                let from = at - 10 * HOUR + d * DAY + 8 * HOUR + HOUR / 2;
                for k in 0..190u64 {
                    let person = people[rng.random_range(0..people.len())];
                    jobs.push(Job {
                        t_ms: from + k * (8 * HOUR / 190),
                        actor: first,
                        req: Req::Person { person, case: true },
                    });
                }
            }
        }
        Scenario::Distributed => {
            // Each credential one person every 4 s (15 a minute, under 20) for 10 minutes.
            for (n, &a) in hostile.iter().enumerate() {
                for k in 0..150u64 {
                    let person = people[rng.random_range(0..people.len())];
                    jobs.push(Job {
                        t_ms: at + k * 4_000 + n as u64 * 250,
                        actor: a,
                        req: Req::Person {
                            person,
                            case: false,
                        },
                    });
                }
            }
        }
        Scenario::Enumeration => {
            let start: u64 = fund.persons[people.len() / 2]
                .cnss
                .parse()
                .context("a generated CNSS number is not a number")?;
            for k in 0..200u64 {
                jobs.push(Job {
                    t_ms: at + k * 2_000,
                    actor: first,
                    req: Req::Walk { number: start + k },
                });
            }
        }
        Scenario::InsiderSnooping => {
            // Neighbours (the same city as a public figure) and public figures, no case.
            let figures: Vec<usize> = (0..fund.persons.len())
                .filter(|&i| fund.persons[i].sensitive)
                .collect();
            let figure = *figures.first().context("the fund has no public figure")?;
            let city = &fund.persons[figure].city;
            let neighbours: Vec<usize> = people
                .iter()
                .copied()
                .filter(|&i| &fund.persons[i].city == city && !fund.persons[i].sensitive)
                .take(12)
                .collect();
            let mut order: Vec<usize> = neighbours[..neighbours.len().min(3)].to_vec();
            order.extend(figures.iter().take(3));
            order.extend(neighbours.iter().skip(3));
            for (k, person) in order.into_iter().enumerate() {
                jobs.push(Job {
                    t_ms: at + k as u64 * 90_000,
                    actor: first,
                    req: Req::Person {
                        person,
                        case: false,
                    },
                });
            }
        }
        Scenario::Honey => {
            // A stolen list: real persons with a honey record planted among them.
            let honey: Vec<usize> = (0..fund.persons.len())
                .filter(|&i| fund.persons[i].honey)
                .collect();
            let planted = *honey.first().context("the fund has no honey record")?;
            let position = rng.random_range(5..25usize);
            for k in 0..60usize {
                let person = if k == position {
                    planted
                } else {
                    people[rng.random_range(0..people.len())]
                };
                jobs.push(Job {
                    t_ms: at + k as u64 * 10_000,
                    actor: first,
                    req: Req::Person {
                        person,
                        case: false,
                    },
                });
            }
        }
        Scenario::LegitWeek | Scenario::CompromisedGateway | Scenario::PartnerReview => {}
    }
    Ok(jobs)
}

/// The 2025 case: a partner's credentials reading the register in order, as fast as the
/// gateway answers, 8 connections at once, until it is refused 20 times in a row.
pub(super) async fn bulk(w: &Arc<World>, actor: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (w, next) = (w.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let a = &w.actors[actor];
            let Ok(mut c) = Connection::open(a.cfg.clone(), &a.gateway, "127.0.0.1", false).await
            else {
                return;
            };
            let Ok(token) = crate::api_client::token(&mut c, TOKEN_TTL).await else {
                return;
            };
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let stop = w.hostile.lock().map_or(true, |h| h.refused_in_a_row >= 20);
                if stop || i >= w.fund.persons.len() {
                    return;
                }
                let path = format!(
                    "/v1/persons/{}?purpose=partner-verification",
                    w.fund.persons[i].cnss
                );
                let sent = w.clock.now_ms();
                let r = c.send("GET", &path, Some(&token), None).await;
                record(
                    &w,
                    true,
                    Role::Partner,
                    sent,
                    r.as_ref().ok(),
                    r.as_ref().err().map(|e| e.to_string()),
                );
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// Somebody holding the gateway's certificate and key (and the token key, which sits on
/// the same host in the embedded shape) asks the networked custodians directly, as a
/// real partner, and combines their answers with the store's envelopes itself.
pub(super) fn bypass(w: &World) -> Result<()> {
    use ribat_custodian::{Custodian, PartialRequest, QuorumError, QuorumReader, Requester};
    let Place::InProcess(p) = &w.place else {
        bail!("the gateway bypass runs against an embedded gateway and networked custodians");
    };
    let ids = crate::identity::issued_dir(&p.node_home, STOLEN);
    let read = |p: &std::path::Path| {
        std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
    };
    let key = zeroize::Zeroizing::new(read(&ids.join("key.pem"))?);
    let cfg = ribat_identity::tls::client_config(
        &read(&ids.join("ca.pem"))?,
        Some((&read(&ids.join("cert.pem"))?, &key)),
        true,
    )?;
    let handle = tokio::runtime::Handle::current();
    let custodians: Vec<Arc<dyn Custodian>> = p
        .remotes
        .iter()
        .map(|(i, addr)| {
            Arc::new(ribat_gateway::link::RemoteCustodian::new(
                *i,
                ribat_gateway::link::Link::new(
                    addr,
                    "127.0.0.1",
                    cfg.clone(),
                    handle.clone(),
                    std::time::Duration::from_secs(2),
                ),
            )) as Arc<dyn Custodian>
        })
        .collect();
    let store = crate::embedded::open_store(&p.node_home)?;
    let reader = QuorumReader::new(p.vault.reader.group().clone(), custodians, store);
    let victim = actors_of(w, Role::Partner, false)
        .first()
        .map(|&a| w.actors[a].name.clone())
        .context("no partner identity to impersonate")?;
    let pem = read(&crate::identity::issued_dir(&p.node_home, &victim).join("cert.pem"))?;
    let der = ribat_identity::tls::certs_from_pem(&pem, "partner certificate")?;
    let peer =
        ribat_identity::PeerIdentity::from_der(der.first().context("no certificate")?.as_ref())?;
    let token_key = zeroize::Zeroizing::new(read(
        &crate::identity::dir(&p.node_home).join(ribat_identity::ca::TOKEN_KEY),
    )?);
    let issuer = ribat_identity::TokenIssuer::from_paserk(crate::embedded::DEPLOYMENT, &token_key)?;
    let (token, _) = issuer.issue(
        &peer,
        crate::embedded::DEPLOYMENT,
        time::OffsetDateTime::now_utc(),
        900,
    )?;
    for (n, i) in ordinary(&w.fund).into_iter().take(500).enumerate() {
        if w.hostile.lock().map_or(true, |h| h.refused_in_a_row >= 20) {
            break;
        }
        let Some(id) = p.vault.by_cnss(&w.fund.persons[i].cnss)?.into_iter().next() else {
            continue;
        };
        let req = PartialRequest {
            set: None,
            epoch: None,
            request_id: format!("bypass-{n}"),
            requester: Requester {
                identity: victim.clone(),
                role: ribat_policy::Role::constant("partner"),
            },
            purpose: Purpose::constant("partner-verification"),
            table: Table::Persons,
            class: Class::IDENTITY,
            record_ids: vec![id],
            token: Some(ribat_custodian::request::Bearer(token.clone())),
            asked: None,
        };
        let sent = w.clock.now_ms();
        let outcome = reader.read(&req);
        let Ok(mut t) = w.hostile.lock() else { break };
        t.requests += 1;
        t.first_ms = Some(t.first_ms.map_or(sent, |f| f.min(sent)));
        match outcome {
            Ok(r) => {
                t.ok += 1;
                t.refused_in_a_row = 0;
                t.records += r.records.len() as u64;
            }
            Err(e) => {
                t.refused_in_a_row += 1;
                let kind = match &e {
                    QuorumError::Refused { denial, .. } => serde_json::to_value(denial)
                        .ok()
                        .and_then(|v| v["denial"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "refused".into()),
                    QuorumError::NotEnoughCustodians { .. } => "not-enough-custodians".into(),
                    other => other.to_string(),
                };
                *t.failures.entry(kind).or_default() += 1;
            }
        }
        drop(t);
        // A patient thief: one request every 200 ms.
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    Ok(())
}

/// The stolen certificate in the compromised-gateway scenario.
pub(super) const STOLEN: &str = crate::identity::GATEWAY_NAME;
