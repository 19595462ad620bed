//! `ribat simulate --mesh N`: an attack against N `ribat node` processes on loopback — one
//! custodian and one gateway on every node — while honest clerks, supervisors and partners
//! keep reading through every node's gateway.
//!
//! The scenarios that happen within minutes run here in real time: `cnss-bulk` (the 2025
//! attack), `distributed`, `enumeration`, `honey` and `insider-snooping`, each on node 1's
//! gateway with its embedded plan (gaps that only spread a burst over a simulated morning
//! shortened, see `pace`). Those that span days (`legit-week`, `low-and-slow`,
//! `partner-review`) run on a lab clock the nodes follow (`super::lab`). What it measures:
//! records the attackers received, when the attacked gateway first answered with a
//! response in force, and when *every* node did — each node's gateway and, for
//! quarantines, each node's custodian asked directly — from the attack's first request.
use super::{Role, Scenario, TOKEN_TTL, Tally};
use crate::bench::BenchError;
use crate::bench::mesh::{ask, record_id};
use crate::bench::node::{fresh_dir, running_mesh, wait_listening};
use crate::home::Home;
use crate::identity::add_client_quiet;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;
use rand_distr::{Distribution, Exp};
use ribat_net::client::Connection;
use ribat_node::{Context, bail};
use serde::Serialize;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Result<T, E = BenchError> = std::result::Result<T, E>;

/// Honest traffic before the attack starts.
const WARM_UP: Duration = Duration::from_secs(10);
/// Honest traffic before `distributed` starts: the role-surge rule tells a stolen
/// credential from an honest one by each identity's own history before its 10-minute
/// window, so honest partners need a history first, and a long enough one to average out
/// (with 10 s, an honest partner reading a few records in the window looked like a
/// credential seen only now: 2 honest refusals in one run; with 11 minutes, a minute of
/// history said too little: 23 in one run). Twenty minutes of history at a partner's
/// pace (a read a minute) is about twenty reads.
const WARM_UP_DISTRIBUTED: Duration = Duration::from_secs(1_800);
/// An honest counter clerk or supervisor serves one citizen at a time: never two reads
/// closer than this (ten a minute at most, which is their quota).
const COUNTER_GAP_MS: f64 = 6_500.0;
/// Honest traffic after every node refuses the attacker.
const COOL_DOWN: Duration = Duration::from_secs(15);

/// The attack's schedule is its embedded plan's, from this (simulated) 10:00 on.
const ATTACK_AT: u64 = 10 * 3_600_000;
/// How long the lead attacker may go on before the run says it was not contained.
const ATTACK_DEADLINE_S: u64 = 240;
/// The refusals that are a response in force (not a policy refusal of one request).
const CONTAINED: [&str; 3] = ["quarantined", "step-up-required", "essential-only"];

/// How much faster than its embedded plan a scenario runs in real time, or why it cannot
/// run against processes with the real clock. The plans' gaps that only spread a burst
/// over the simulated morning are shortened; those the detectors measure (a rate under a
/// quota, a walk's pace) are kept.
fn pace(s: Scenario) -> Result<u64> {
    Ok(match s {
        Scenario::CnssBulk | Scenario::Distributed | Scenario::Enumeration => 1,
        // One read every 10 s → 1 s; the honey record comes within half a minute.
        Scenario::Honey => 10,
        // One read every 90 s → 9 s (a clerk's quota is 10 a minute).
        Scenario::InsiderSnooping => 10,
        Scenario::LegitWeek | Scenario::LowAndSlow | Scenario::PartnerReview => bail!(
            "--mesh: {s:?} spans days: it runs on a lab clock (simulate::run_in_lab), not in real time"
        ),
        Scenario::CompromisedGateway => bail!(
            "--mesh: compromised-gateway runs without --mesh (networked custodians beside an embedded gateway); against node processes it is the test a_compromised_gateway_with_a_clerks_token_and_signed_read_opens_no_other_record_and_is_cut_off"
        ),
    })
}

/// One node's containment, seconds after the attack's first request.
#[derive(Debug, Serialize)]
struct NodeContainment {
    node: String,
    /// Its gateway refused the lead attacker (a response in force).
    gateway_s: Option<f64>,
    /// Its custodian refused the lead attacker's partial decryption (quarantines only:
    /// custodians carry out quarantines, gateways every response).
    custodian_s: Option<f64>,
    /// What its custodian last answered the lead, when it never refused it.
    #[serde(skip_serializing_if = "Option::is_none")]
    custodian_last_answer: Option<String>,
}

/// What the attack's tasks share.
#[derive(Clone)]
struct Hostile {
    tally: Arc<Mutex<Tally>>,
    /// The attacked gateway's first response in force.
    refused_at: Arc<Mutex<Option<Instant>>>,
    /// Set once every node refuses the lead (or the deadline passed).
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Hostile {
    /// Counts one answer; whether it was a response in force.
    fn count(
        &self,
        role: Role,
        r: &Result<ribat_net::client::Response, ribat_net::client::ClientError>,
    ) -> bool {
        let held = r.as_ref().is_ok_and(|r| {
            CONTAINED.contains(
                &r.json()["type"]
                    .as_str()
                    .and_then(|t| t.rsplit('/').next())
                    .unwrap_or_default(),
            )
        });
        if held && let Ok(mut at) = self.refused_at.lock() {
            at.get_or_insert_with(Instant::now);
        }
        let e = r.as_ref().err().map(ToString::to_string);
        tally(&self.tally, role, r.as_ref().ok(), e);
        held
    }
}

/// The 2025 attack: eight connections reading every person in order, as fast as the
/// gateway answers, until refused 20 times in a row.
fn bulk(
    rt: &tokio::runtime::Runtime,
    lead: &Arc<Caller>,
    token: &str,
    people: Arc<Vec<String>>,
    side: &Hostile,
) -> Vec<tokio::task::JoinHandle<()>> {
    let next = Arc::new(AtomicUsize::new(0));
    (0..8)
        .map(|_| {
            let (lead, token, next, people, side) = (
                lead.clone(),
                token.to_owned(),
                next.clone(),
                people.clone(),
                side.clone(),
            );
            rt.spawn(async move {
                let Ok(mut c) =
                    Connection::open(lead.cfg.clone(), &lead.gateway, "127.0.0.1", false).await
                else {
                    return;
                };
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let give_up = side.tally.lock().map_or(true, |h| h.refused_in_a_row >= 20);
                    if give_up || i >= people.len() {
                        return;
                    }
                    let path = format!("/v1/persons/{}?purpose={}", people[i], lead.role.purpose());
                    let r = c.send("GET", &path, Some(&token), None).await;
                    side.count(lead.role, &r);
                }
            })
        })
        .collect()
}

/// One hostile identity's planned requests, each at its time in the plan divided by
/// `pace` after the attack's start, until the mesh stops it or it is refused 20 times in a
/// row by responses in force.
async fn planned(
    h: Arc<Caller>,
    token: String,
    jobs: Vec<super::Job>,
    fund: Arc<ribat_sim::Fund>,
    pace: u64,
    started: Instant,
    side: Hostile,
) {
    let Ok(mut c) = Connection::open(h.cfg.clone(), &h.gateway, "127.0.0.1", false).await else {
        return;
    };
    let mut held_in_a_row = 0;
    for job in jobs {
        let at = started + Duration::from_millis(job.t_ms.saturating_sub(ATTACK_AT) / pace.max(1));
        tokio::time::sleep_until(at.into()).await;
        if side.stop.load(Ordering::SeqCst) || held_in_a_row >= 20 {
            return;
        }
        let Some((method, path, body)) = super::request(&fund, h.role, &job, &job.req) else {
            continue;
        };
        let r = c.send(method, &path, Some(&token), body).await;
        if side.count(h.role, &r) {
            held_in_a_row += 1;
        } else {
            held_in_a_row = 0;
        }
    }
}

#[derive(Debug, Serialize)]
struct MeshReport {
    scenario: Scenario,
    nodes: usize,
    threshold: usize,
    persons: usize,
    real_seconds: f64,
    legit_requests: u64,
    legit_failures: u64,
    legit_failure_kinds: std::collections::BTreeMap<String, u64>,
    legit_failures_by_role: std::collections::BTreeMap<String, u64>,
    /// The first refusal of each kind an honest caller got, as the gateway explained it.
    legit_failure_examples: std::collections::BTreeMap<String, String>,
    attack_requests: u64,
    records_exposed: u64,
    /// The attacked gateway's first refusal, from the attack's first request.
    seconds_to_detect: Option<f64>,
    /// The last node to refuse (gateway and custodian), from the attack's first request.
    seconds_to_contain_everywhere: Option<f64>,
    /// Same, from the attacked gateway's first refusal: the mesh's part.
    seconds_from_detection_to_everywhere: Option<f64>,
    per_node: Vec<NodeContainment>,
    /// The scenario's hostile identities, and how many of them every node's gateway
    /// refused (a response in force) once the attack was over.
    hostile_identities: usize,
    hostile_refused_everywhere: usize,
}

/// A caller of the simulation.
struct Caller {
    name: String,
    role: Role,
    cfg: ribat_net::client::ClientSide,
    /// The gateway it calls.
    gateway: String,
}

/// Runs `o.scenario` against a mesh of `nodes` node processes.
pub fn run(home: &Home, o: &super::Options, nodes: usize) -> Result<()> {
    if matches!(
        o.scenario,
        Scenario::LegitWeek | Scenario::LowAndSlow | Scenario::PartnerReview
    ) {
        return Ok(super::run_in_lab(home, o, nodes)?);
    }
    let pace = pace(o.scenario)?;
    let warm_up = match o.scenario {
        Scenario::Distributed => WARM_UP_DISTRIBUTED,
        _ => WARM_UP,
    };
    if nodes < 3 {
        bail!("--mesh: at least 3 nodes (a threshold of 2 needs a third to survive a loss)");
    }
    if o.persons < 1_000 {
        bail!("--persons: at least 1000");
    }
    let say = |m: &str| eprintln!("{m}");
    let threshold = nodes / 2 + 1;
    let dir = fresh_dir(home, "simulate-mesh")?;
    say(&format!("generating a fund of {} persons…", o.persons));
    let spec = ribat_sim::FundSpec::new(o.persons, (o.persons / 12).max(3), 1, o.seed);
    let source = dir.join("source");
    let fund = ribat_sim::files::write(&spec, &source)?;
    let files = [source.join("employers.csv"), source.join("persons.csv")];
    let figures = source.join("ribat-only/sensitive.csv");
    let mesh = running_mesh(&dir, nodes, "sec.sim", &files, Some(&figures), None, &say)?;
    let (out, addrs, gateways) = (&mesh.out, &mesh.addrs, &mesh.gateways);

    say("issuing identities (40 clerks, 4 supervisors, 10 partners, the attack's)…");
    let deployment = ribat_node::mesh::deployment_home(out);
    let ca = crate::identity::open_ca(&deployment)?;
    let gw = |i: usize| gateways[i % gateways.len()].1.clone();
    let mut honest = Vec::new();
    // Every certificate issued here is refused by every node until two administrators
    // grant it through the log: one grant for all of them.
    let mut issued = Vec::new();
    let kinds = [
        (40, Role::Clerk, "clerk"),
        (4, Role::Supervisor, "supervisor"),
        (10, Role::Partner, "partner"),
    ];
    for (count, role, prefix) in kinds {
        for i in 0..count {
            let name = format!("{prefix}.{i:03}");
            let inst = match role {
                Role::Partner => format!("partner-{i}"),
                _ => format!("agency-{}", i % 40),
            };
            let d = add_client_quiet(&ca, &deployment, &name, role.name(), &inst)?;
            issued.push(d.clone());
            honest.push(Arc::new(Caller {
                name,
                role,
                cfg: crate::api_client::config_in(&d)?,
                gateway: gw(honest.len()),
            }));
        }
    }
    // The scenario's hostile identities, all on node 1's gateway.
    let mut hostile = Vec::new();
    for (name, role, inst, _) in super::attacks::attackers(o.scenario, &fund) {
        let d = add_client_quiet(&ca, &deployment, &name, role.name(), &inst)?;
        issued.push(d.clone());
        hostile.push(Arc::new(Caller {
            name,
            role,
            cfg: crate::api_client::config_in(&d)?,
            gateway: gw(0),
        }));
    }
    let lead = hostile
        .first()
        .cloned()
        .context("the scenario has no attacker")?;
    let batch = add_client_quiet(
        &ca,
        &deployment,
        "batch.pensions",
        Role::Pension.name(),
        "cnss-pensions",
    )?;
    // The probe holds a gateway certificate of its own, not node 1's gateway's: asking
    // custodians directly for what no gateway audited is what a stolen gateway certificate
    // does, and each custodian's disagreement detector quarantines that certificate's
    // identity once its grace has passed (5 s, long after the probe is done). With node
    // 1's own certificate the probe would take node 1's honest readers down with it.
    let probe_cert = add_client_quiet(
        &ca,
        &deployment,
        "gateway.containment-probe",
        "gateway",
        "mesh",
    )?;
    issued.extend([batch.clone(), probe_cert.clone()]);
    say(&format!(
        "two administrators grant the {} certificates through the log…",
        issued.len()
    ));
    ribat_node::grants::grant_by_ceremony_admins(
        out,
        &mesh.dirs[0],
        &issued,
        "the simulation's callers",
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for (_, a) in gateways {
        wait_listening(&rt, &lead.cfg, a)?;
    }
    // A record the custodians are asked about directly (any will do: the question is
    // whether they answer the attacker at all).
    let probe = fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .context("the fund has no ordinary person")?;
    let record = record_id(
        &rt,
        &crate::api_client::config_in(&batch)?,
        &gw(0),
        &probe.cnss,
    )?;

    let people: Arc<Vec<String>> = Arc::new(
        fund.persons
            .iter()
            .filter(|p| !p.honey && !p.sensitive)
            .map(|p| p.cnss.clone())
            .collect(),
    );
    let legit = Arc::new(Mutex::new(Tally::default()));
    let examples: Examples = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let run_started = Instant::now();
    say(&format!(
        "honest traffic on all {nodes} gateways; the attack ({} identities) starts in {} s on node-1's…",
        hostile.len(),
        warm_up.as_secs()
    ));
    let mut tasks = Vec::new();
    for (k, c) in honest.iter().enumerate() {
        let (c, people, legit, stop) = (c.clone(), people.clone(), legit.clone(), stop.clone());
        let examples = examples.clone();
        let seed = o.seed ^ (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        tasks.push(
            rt.spawn(async move { honest_caller(c, people, (legit, examples), stop, seed).await }),
        );
    }
    std::thread::sleep(warm_up);

    // The attack, each hostile identity with a token from node 1's gateway.
    let attack_started = Instant::now();
    let bad = Arc::new(Mutex::new(Tally::default()));
    let refused_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let stop_attack = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tokens = Vec::new();
    for h in &hostile {
        tokens.push(rt.block_on(async {
            let mut c = Connection::open(h.cfg.clone(), &h.gateway, "127.0.0.1", false).await?;
            crate::api_client::token(&mut c, TOKEN_TTL).await
        })?);
    }
    let token = tokens.first().cloned().context("no attacker's token")?;
    let hostile_side = Hostile {
        tally: bad.clone(),
        refused_at: refused_at.clone(),
        stop: stop_attack.clone(),
    };
    let attack = if o.scenario == Scenario::CnssBulk {
        bulk(&rt, &lead, &token, people.clone(), &hostile_side)
    } else {
        let mut rng = ChaCha12Rng::seed_from_u64(o.seed ^ 0x5eed);
        let indices: Vec<usize> = (0..hostile.len()).collect();
        let plan = super::attacks::attack_plan(o.scenario, &fund, &indices, ATTACK_AT, &mut rng)?;
        let fund = Arc::new(fund.clone());
        hostile
            .iter()
            .zip(&tokens)
            .enumerate()
            .map(|(k, (h, t))| {
                let mut jobs: Vec<super::Job> =
                    plan.iter().filter(|j| j.actor == k).cloned().collect();
                jobs.sort_by_key(|j| j.t_ms);
                let (h, t, fund, side) = (h.clone(), t.clone(), fund.clone(), hostile_side.clone());
                rt.spawn(async move {
                    planned(h, t, jobs, fund, pace, attack_started, side).await;
                })
            })
            .collect()
    };
    // Meanwhile: when does each node refuse the attack's lead identity? Its gateway (the
    // lead's token) and, where the response is a quarantine, its custodian (a partial
    // decryption in the lead's name, as a forwarding gateway would send it, with the
    // probe's own gateway certificate, issued and granted above).
    let gateway_cert = crate::api_client::config_in(&probe_cert)?;
    // Custodians carry out quarantines; insider-snooping's step-up is the gateways' alone.
    let custodians_hold = o.scenario != Scenario::InsiderSnooping;
    let read_path = format!("/v1/persons/{}?purpose={}", probe.cnss, lead.role.purpose());
    let mut per_node: Vec<(Option<f64>, Option<f64>)> = vec![(None, None); nodes];
    let mut custodian_last = vec![String::new(); nodes];
    let deadline = Duration::from_secs(ATTACK_DEADLINE_S);
    let mut n = 0u64;
    while per_node
        .iter()
        .any(|(g, c)| g.is_none() || (custodians_hold && c.is_none()))
    {
        if attack_started.elapsed() > deadline {
            break;
        }
        // Custodians are asked only once a gateway answers with a response in force: the
        // probe's certificate is a gateway's, and what a custodian serves it before then
        // nobody audits (each custodian's disagreement detector would hold the probe 5 s
        // later, and a slower detection would then be measured as never).
        let detected = per_node.iter().any(|(g, _)| g.is_some())
            || refused_at.lock().is_ok_and(|t| t.is_some());
        for (i, slot) in per_node.iter_mut().enumerate() {
            if slot.0.is_none() {
                let (_, why) = ask(
                    &rt,
                    &lead.cfg,
                    &gateways[i].1,
                    "GET",
                    &read_path,
                    Some(&token),
                    None,
                )?;
                if CONTAINED.contains(&why.as_str()) {
                    slot.0 = Some(attack_started.elapsed().as_secs_f64());
                }
            }
            if custodians_hold && detected && slot.1.is_none() {
                n += 1;
                // As the gateway forwards it: with the request the lead's stolen key
                // signed, which the custodian checks before its guard.
                let signer = lead
                    .cfg
                    .signer
                    .as_ref()
                    .context("the attacker's identity has no key to sign with")?;
                let asked = ribat_custodian::request::Asked::signed_by(
                    signer, "GET", &read_path, b"", &token,
                )?;
                let body = serde_json::to_vec(&serde_json::json!({
                    "request_id": format!("simulate-mesh-probe-{n}"),
                    "requester": {"identity": lead.name, "role": lead.role.name()},
                    "purpose": lead.role.purpose(),
                    "table": "persons",
                    "class": "identity",
                    "record_ids": [record],
                    "token": token,
                    "asked": asked,
                }))?;
                let (status, why) = ask(
                    &rt,
                    &gateway_cert,
                    &addrs[i],
                    "POST",
                    "/v1/partial",
                    None,
                    Some(body),
                )?;
                if status == 403 && why == format!("quarantined {}", lead.name) {
                    slot.1 = Some(attack_started.elapsed().as_secs_f64());
                } else {
                    custodian_last[i] = format!("{status} {why}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    stop_attack.store(true, Ordering::SeqCst);
    for t in attack {
        let _ = rt.block_on(t);
    }
    // Every hostile identity, not only the lead: refused by every node's gateway now?
    let mut refused_everywhere = 0;
    for (h, t) in hostile.iter().zip(&tokens) {
        let mut everywhere = true;
        for (_, g) in gateways {
            let (_, why) = ask(&rt, &h.cfg, g, "GET", &read_path, Some(t), None)?;
            everywhere &= CONTAINED.contains(&why.as_str());
        }
        refused_everywhere += usize::from(everywhere);
    }
    say(&format!(
        "attack over; {} s more of honest traffic…",
        COOL_DOWN.as_secs()
    ));
    std::thread::sleep(COOL_DOWN);
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = rt.block_on(t);
    }
    let real = run_started.elapsed().as_secs_f64();
    drop(mesh);

    let legit = legit.lock().map(|t| t.clone()).unwrap_or_default();
    let bad = bad.lock().map(|t| t.clone()).unwrap_or_default();
    // The attacked gateway's first response in force: to an attacker's request, or to the
    // probe's (the attack may stop before its next request).
    let detect = refused_at
        .lock()
        .ok()
        .and_then(|t| *t)
        .map(|t| t.duration_since(attack_started).as_secs_f64())
        .into_iter()
        .chain(per_node.first().and_then(|(g, _)| *g))
        .reduce(f64::min);
    let everywhere = per_node
        .iter()
        .map(|(g, c)| {
            let g = (*g)?;
            Some(if custodians_hold { g.max((*c)?) } else { g })
        })
        .collect::<Option<Vec<f64>>>()
        .map(|v| v.into_iter().fold(0.0, f64::max));
    let report = MeshReport {
        scenario: o.scenario,
        nodes,
        threshold,
        persons: o.persons,
        real_seconds: real,
        legit_requests: legit.requests,
        legit_failures: legit.requests - legit.ok,
        legit_failure_kinds: legit.failures.clone(),
        legit_failures_by_role: legit.failures_by_role.clone(),
        legit_failure_examples: examples.lock().map(|e| e.clone()).unwrap_or_default(),
        attack_requests: bad.requests,
        records_exposed: bad.records,
        seconds_to_detect: detect,
        seconds_to_contain_everywhere: everywhere,
        seconds_from_detection_to_everywhere: everywhere.zip(detect).map(|(e, d)| e - d),
        per_node: per_node
            .iter()
            .enumerate()
            .map(|(i, (g, c))| NodeContainment {
                node: format!("node-{}", i + 1),
                gateway_s: *g,
                custodian_s: *c,
                custodian_last_answer: (custodians_hold && c.is_none())
                    .then(|| custodian_last[i].clone()),
            })
            .collect(),
        hostile_identities: hostile.len(),
        hostile_refused_everywhere: refused_everywhere,
    };
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if report.seconds_to_contain_everywhere.is_none() {
        bail!(
            "the attack's lead identity was not refused by every node within {} s",
            deadline.as_secs()
        );
    }
    if refused_everywhere < hostile.len() {
        bail!(
            "{} of the {} hostile identities are still answered by some node after the attack",
            hostile.len() - refused_everywhere,
            hostile.len()
        );
    }
    Ok(())
}

/// One honest caller: a read every few seconds (exponential gaps), through its gateway,
/// until told to stop.
async fn honest_caller(
    c: Arc<Caller>,
    people: Arc<Vec<String>>,
    (legit, examples): (Arc<Mutex<Tally>>, Examples),
    stop: Arc<std::sync::atomic::AtomicBool>,
    seed: u64,
) {
    let mut rng = ChaCha12Rng::seed_from_u64(seed);
    // Well under each role's quotas, over runs of half an hour too: a clerk 10 distinct
    // persons a minute and 60 an hour, a supervisor 200 an hour, a partner 20 a minute and
    // 100 an hour (at a read every 8 s, partners passed their hour's 100 in the first
    // 20-minute run and were then held for hammering).
    let mean_ms = match c.role {
        Role::Clerk => 90_000.0,
        Role::Supervisor => 30_000.0,
        _ => 60_000.0,
    };
    let Ok(gap) = Exp::new(1.0 / mean_ms) else {
        return;
    };
    let mut session: Option<(Connection, String)> = None;
    let mut k = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let wait: f64 = match c.role {
            Role::Clerk | Role::Supervisor => f64::max(gap.sample(&mut rng), COUNTER_GAP_MS),
            _ => gap.sample(&mut rng),
        };
        // Waits of minutes, told to stop within a second.
        let until = tokio::time::Instant::now() + Duration::from_millis(wait as u64);
        while tokio::time::Instant::now() < until && !stop.load(Ordering::SeqCst) {
            tokio::time::sleep_until(
                until.min(tokio::time::Instant::now() + Duration::from_secs(1)),
            )
            .await;
        }
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if !session.as_ref().is_some_and(|(c, _)| c.is_open()) {
            let opened = async {
                let mut conn =
                    Connection::open(c.cfg.clone(), &c.gateway, "127.0.0.1", false).await?;
                let t = crate::api_client::token(&mut conn, TOKEN_TTL).await?;
                Ok::<_, ribat_node::NodeError>((conn, t))
            }
            .await;
            match opened {
                Ok(s) => session = Some(s),
                Err(e) => {
                    tally(&legit, c.role, None, Some(e.chain()));
                    continue;
                }
            }
        }
        let Some((conn, token)) = session.as_mut() else {
            continue;
        };
        k += 1;
        let person = &people[rng.random_range(0..people.len())];
        let case = match c.role {
            Role::Partner => String::new(),
            _ => format!("&case={}-{k}", c.name),
        };
        let path = format!("/v1/persons/{person}?purpose={}{case}", c.role.purpose());
        let r = conn.send("GET", &path, Some(token), None).await;
        let over_quota = r.as_ref().is_ok_and(|r| r.status == 429);
        if let Ok(r) = &r
            && r.status >= 300
            && let Ok(mut ex) = examples.lock()
        {
            let v = r.json();
            let kind = v["type"].as_str().unwrap_or_default().rsplit('/').next();
            let kind = kind.unwrap_or_default().to_owned();
            let detail = v["detail"].as_str().unwrap_or_default();
            ex.entry(kind)
                .or_insert_with(|| format!("{} ({}): {detail}", c.name, c.gateway));
        }
        let e = r.as_ref().err().map(ToString::to_string);
        tally(&legit, c.role, r.as_ref().ok(), e);
        if over_quota {
            // As the refusal says: wait (a minute is the quota's window).
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
    }
}

/// The first refusal of each kind an honest caller got.
type Examples = Arc<Mutex<std::collections::BTreeMap<String, String>>>;

/// Counts one answer (or transport failure) as the embedded run does.
fn tally(t: &Mutex<Tally>, role: Role, r: Option<&ribat_net::client::Response>, e: Option<String>) {
    if let Ok(mut t) = t.lock() {
        t.count(role, r, e);
    }
}

fn print_report(r: &MeshReport) {
    let s = |v: Option<f64>| v.map_or("never".to_owned(), |s| format!("{s:.3} s"));
    println!(
        "{:?} against a mesh of {} nodes (threshold {}), {} persons, {:.0} s of real time",
        r.scenario, r.nodes, r.threshold, r.persons, r.real_seconds
    );
    println!(
        "  honest callers: {} requests, {} failed {:?}",
        r.legit_requests, r.legit_failures, r.legit_failure_kinds
    );
    println!(
        "  attacker: {} requests, {} records exposed",
        r.attack_requests, r.records_exposed
    );
    println!(
        "  a response in force at the attacked gateway after {}",
        s(r.seconds_to_detect)
    );
    println!(
        "  refused by every gateway and custodian after {} ({} after detection)",
        s(r.seconds_to_contain_everywhere),
        s(r.seconds_from_detection_to_everywhere)
    );
    for n in &r.per_node {
        let custodian = n
            .custodian_s
            .map_or("carries out quarantines only".to_owned(), |c| {
                format!("{c:.3} s")
            });
        println!(
            "    {}: gateway {}, custodian {custodian}",
            n.node,
            s(n.gateway_s)
        );
        if let Some(last) = &n.custodian_last_answer {
            println!("      its custodian's last answer to the lead: {last}");
        }
    }
    for (kind, example) in &r.legit_failure_examples {
        println!("  an honest caller's first {kind}: {example}");
    }
    println!(
        "  hostile identities refused by every gateway afterwards: {} of {}",
        r.hostile_refused_everywhere, r.hostile_identities
    );
}
