//! `ribat simulate --mesh N`: the 2025 attack (`cnss-bulk`) against N `ribat node` processes
//! on loopback — one custodian and one gateway on every node — while honest clerks,
//! supervisors and partners keep reading through every node's gateway.
//!
//! Unlike the embedded simulation there is no simulated clock: the nodes are processes with
//! the real one, so the run is real time (a minute of honest traffic with the attack in
//! it), and only the scenarios that happen within a minute run here. What it measures:
//! records the attacker received, when the attacked gateway first refused it, and when
//! *every* node refused it — each node's gateway and each node's custodian, asked
//! directly with the attacked gateway's certificate — from the attack's first request.

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
/// Honest traffic after every node refuses the attacker.
const COOL_DOWN: Duration = Duration::from_secs(15);

/// One node's containment.
#[derive(Debug, Serialize)]
struct NodeContainment {
    node: String,
    /// Its gateway refused the attacker, seconds after the attack's first request.
    gateway_s: f64,
    /// Its custodian refused the attacker's partial decryption, same origin.
    custodian_s: f64,
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
    if o.scenario != Scenario::CnssBulk {
        bail!(
            "--mesh runs in real time (the nodes keep the real clock): only --scenario cnss-bulk happens within the minute it simulates; the other scenarios run on the embedded node's simulated clock (without --mesh)"
        );
    }
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
    let mesh = running_mesh(&dir, nodes, "sec.sim", &files, &say)?;
    let (out, addrs, gateways) = (&mesh.out, &mesh.addrs, &mesh.gateways);

    say("issuing identities (40 clerks, 4 supervisors, 10 partners, the leaked partner)…");
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
    let leaked = {
        let d = add_client_quiet(
            &ca,
            &deployment,
            "partner.leaked",
            Role::Partner.name(),
            "third-party-x",
        )?;
        issued.push(d.clone());
        Caller {
            name: "partner.leaked".into(),
            role: Role::Partner,
            cfg: crate::api_client::config_in(&d)?,
            gateway: gw(0),
        }
    };
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
        wait_listening(&rt, &leaked.cfg, a)?;
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
        "honest traffic on all {nodes} gateways; the leaked partner starts in {} s on node-1's…",
        WARM_UP.as_secs()
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
    std::thread::sleep(WARM_UP);

    // The attack: eight connections reading every person in order, as in 2025.
    let attack_started = Instant::now();
    let hostile = Arc::new(Mutex::new(Tally::default()));
    let refused_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let token = rt.block_on(async {
        let mut c =
            Connection::open(leaked.cfg.clone(), &leaked.gateway, "127.0.0.1", false).await?;
        crate::api_client::token(&mut c, TOKEN_TTL).await
    })?;
    let next = Arc::new(AtomicUsize::new(0));
    let mut attack = Vec::new();
    for _ in 0..8 {
        let (cfg, addr, token) = (leaked.cfg.clone(), leaked.gateway.clone(), token.clone());
        let (next, people, hostile, refused_at) = (
            next.clone(),
            people.clone(),
            hostile.clone(),
            refused_at.clone(),
        );
        attack.push(rt.spawn(async move {
            let Ok(mut c) = Connection::open(cfg, &addr, "127.0.0.1", false).await else {
                return;
            };
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let give_up = hostile.lock().map_or(true, |h| h.refused_in_a_row >= 20);
                if give_up || i >= people.len() {
                    return;
                }
                let path = format!("/v1/persons/{}?purpose=partner-verification", people[i]);
                let r = c.send("GET", &path, Some(&token), None).await;
                if r.as_ref().is_ok_and(|r| r.status == 403)
                    && let Ok(mut at) = refused_at.lock()
                {
                    at.get_or_insert_with(Instant::now);
                }
                let e = r.as_ref().err().map(ToString::to_string);
                tally(&hostile, Role::Partner, r.as_ref().ok(), e);
            }
        }));
    }
    // Meanwhile: when does each node refuse the attacker? Its gateway (the leaked partner's
    // token) and its custodian (a partial decryption in the partner's name, with node 1's
    // gateway certificate, as that gateway would forward it).
    // (with the probe's own gateway certificate, issued and granted above).
    let gateway_cert = crate::api_client::config_in(&probe_cert)?;
    let mut per_node: Vec<(Option<f64>, Option<f64>)> = vec![(None, None); nodes];
    let deadline = Duration::from_secs(60);
    let mut n = 0u64;
    while per_node.iter().any(|(g, c)| g.is_none() || c.is_none()) {
        if attack_started.elapsed() > deadline {
            break;
        }
        for (i, slot) in per_node.iter_mut().enumerate() {
            if slot.0.is_none() {
                let (status, why) = ask(
                    &rt,
                    &leaked.cfg,
                    &gateways[i].1,
                    "GET",
                    &format!("/v1/persons/{}?purpose=partner-verification", probe.cnss),
                    Some(&token),
                    None,
                )?;
                if status == 403 && why == "quarantined" {
                    slot.0 = Some(attack_started.elapsed().as_secs_f64());
                }
            }
            if slot.1.is_none() {
                n += 1;
                // As the gateway forwards it: with the request the partner's stolen key
                // signed, which the custodian checks before its guard.
                let signer = leaked
                    .cfg
                    .signer
                    .as_ref()
                    .context("the leaked identity has no key to sign with")?;
                let asked = ribat_custodian::request::Asked::signed_by(
                    signer,
                    "GET",
                    &format!("/v1/persons/{}?purpose=partner-verification", probe.cnss),
                    b"",
                    &token,
                )?;
                let body = serde_json::to_vec(&serde_json::json!({
                    "request_id": format!("simulate-mesh-probe-{n}"),
                    "requester": {"identity": leaked.name, "role": leaked.role.name()},
                    "purpose": "partner-verification",
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
                if status == 403 && why == format!("quarantined {}", leaked.name) {
                    slot.1 = Some(attack_started.elapsed().as_secs_f64());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for t in attack {
        let _ = rt.block_on(t);
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
    let bad = hostile.lock().map(|t| t.clone()).unwrap_or_default();
    let detect = refused_at
        .lock()
        .ok()
        .and_then(|t| *t)
        .map(|t| t.duration_since(attack_started).as_secs_f64());
    let everywhere = per_node
        .iter()
        .map(|(g, c)| Some(g.as_ref()?.max(*c.as_ref()?)))
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
                gateway_s: g.unwrap_or(f64::NAN),
                custodian_s: c.unwrap_or(f64::NAN),
            })
            .collect(),
    };
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if report.seconds_to_contain_everywhere.is_none() {
        bail!(
            "the attacker was not refused by every node within {} s",
            deadline.as_secs()
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
    // Under each role's quota (a clerk: 10 distinct persons a minute) with room to spare.
    let mean_ms = match c.role {
        Role::Clerk => 9_000.0,
        Role::Supervisor => 12_000.0,
        _ => 8_000.0,
    };
    let Ok(gap) = Exp::new(1.0 / mean_ms) else {
        return;
    };
    let mut session: Option<(Connection, String)> = None;
    let mut k = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let wait: f64 = gap.sample(&mut rng);
        tokio::time::sleep(Duration::from_millis(wait.min(30_000.0) as u64)).await;
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
        "  refused by the attacked gateway after {}",
        s(r.seconds_to_detect)
    );
    println!(
        "  refused by every gateway and custodian after {} ({} after detection)",
        s(r.seconds_to_contain_everywhere),
        s(r.seconds_from_detection_to_everywhere)
    );
    for n in &r.per_node {
        println!(
            "    {}: gateway {:.3} s, custodian {:.3} s",
            n.node, n.gateway_s, n.custodian_s
        );
    }
}
