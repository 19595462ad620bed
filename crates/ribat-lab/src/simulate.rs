//! `ribat simulate`: a generated fund in a fresh embedded node, served by the real gateway
//! (mTLS on loopback, the detectors, the custodians), driven through its API by real
//! identities — counter clerks, supervisors, partners, employers, the pension run — and
//! by one attack, on a simulated clock that runs at real speed during an attack burst and
//! skips the idle hours in between (a week in minutes).
//!
//! The gateway runs in this process (not `ribat serve`) so that it can share the simulated
//! clock; everything between the simulated callers and the custodians is the real thing.

use crate::bench::node::{fresh_dir, keyed_node};
use crate::embedded::Embedded;
use crate::home::Home;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha12Rng;
use rand_distr::{Distribution, Exp};
use ribat_custodian::clock::{Clock, SimClock};
use ribat_detect::{Decision, Target};
use ribat_import::importer::Importer;
use ribat_import::records::RecordSealer;
use ribat_net::client::Connection;
use ribat_node::bail;
use ribat_node::{Context, Result};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The scenarios.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// A week of legitimate traffic only.
    LegitWeek,
    /// A partner's credentials used to read everything as fast as possible (2025).
    CnssBulk,
    /// A stolen clerk credential reading just under its daily quota, day after day.
    LowAndSlow,
    /// Many stolen partner credentials, each under its own quota.
    Distributed,
    /// An employer credential walking the CNSS number space.
    Enumeration,
    /// A clerk looking up public figures and neighbours without a case.
    InsiderSnooping,
    /// Requests straight to custodians with a gateway's certificate.
    CompromisedGateway,
    /// A stolen list of persons that includes a honey record.
    Honey,
}

/// What the simulation is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scenario.
    pub scenario: Scenario,
    /// Persons in the generated fund.
    pub persons: usize,
    /// Seed.
    pub seed: u64,
    /// Legitimate requests to aim for in `legit-week`.
    pub requests: u64,
    /// Requests in flight at once.
    pub in_flight: usize,
    /// Print one JSON object.
    pub json: bool,
}

const HOUR: u64 = 3_600_000;
const DAY: u64 = 24 * HOUR;
/// Thursday 2027-04-29 00:00 in Morocco (UTC+1): a week with a month end and a pension run.
const WEEK_START: u64 = 1_808_953_200_000;
/// Monday 2027-05-03 00:00 in Morocco: the attacks' day.
const MONDAY: u64 = 1_809_298_800_000;
/// Largest step of the simulated clock while requests are in flight: with 16 in flight a
/// request sees at most 4 simulated seconds pass (under the disagreement grace of 5 s).
const MAX_STEP_IN_FLIGHT_MS: u64 = 250;
/// Token lifetime asked for, seconds.
const TOKEN_TTL: u64 = 900;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Clerk,
    Supervisor,
    Partner,
    Employer,
    Pension,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Clerk => "clerk",
            Self::Supervisor => "supervisor",
            Self::Partner => "partner",
            Self::Employer => "employer",
            Self::Pension => "pension-batch",
        }
    }
    fn purpose(self) -> &'static str {
        match self {
            Self::Clerk => "counter-service",
            Self::Supervisor => "benefit-claim",
            Self::Partner => "partner-verification",
            Self::Employer => "employee-check",
            Self::Pension => "pension-run",
        }
    }
}

/// A simulated caller.
struct Actor {
    name: String,
    role: Role,
    hostile: bool,
    cfg: Arc<rustls::ClientConfig>,
    /// Connection, token and when (simulated seconds) the token was issued.
    conn: tokio::sync::Mutex<Option<(Connection, String, u64)>>,
}

/// One request.
#[derive(Debug, Clone)]
enum Req {
    /// A person by CNSS (index into the fund's persons), with a case reference or not.
    Person { person: usize, case: bool },
    /// A person's declarations.
    Declarations { person: usize },
    /// A search by CIN, with a case reference.
    Cin { person: usize },
    /// An employer's own employee.
    Employee { person: usize },
    /// A pension-run read (identity and bank account).
    Pension { person: usize },
    /// A number walked (enumeration): may be nobody's.
    Walk { number: u64 },
    /// An employer's monthly upload.
    Upload { file: usize },
    /// Starts the as-fast-as-possible attack.
    StartBulk,
    /// Starts the stolen-gateway-certificate attack on the networked custodians.
    StartBypass,
}

#[derive(Debug, Clone)]
struct Job {
    t_ms: u64,
    actor: usize,
    req: Req,
}

/// What one side (legitimate or hostile) saw.
#[derive(Debug, Default, Clone, Serialize)]
struct Tally {
    requests: u64,
    ok: u64,
    /// Failures by problem type (or HTTP status).
    failures: BTreeMap<String, u64>,
    /// Failures by the caller's role (how much of a role the response held up).
    failures_by_role: BTreeMap<String, u64>,
    /// Plaintext records received.
    records: u64,
    #[serde(skip)]
    first_ms: Option<u64>,
    #[serde(skip)]
    refused_in_a_row: u64,
}

struct World {
    fund: ribat_sim::Fund,
    /// Next month's e-BDS files: (employer index, file).
    uploads: Vec<(usize, PathBuf)>,
    actors: Vec<Actor>,
    addr: String,
    clock: Arc<SimClock>,
    watch: Arc<ribat_gateway::watch::Watch>,
    legit: Mutex<Tally>,
    hostile: Mutex<Tally>,
    /// An attack running at real speed: the clock must not jump meanwhile.
    realtime: AtomicBool,
    /// Attack tasks still running.
    attacking: AtomicUsize,
    done: AtomicU64,
    /// The node (the bypass attacker has its gateway's files).
    node_home: Home,
    vault: Arc<ribat_gateway::vault::Vault>,
    /// Networked custodians: (index, address), and their processes.
    remotes: Vec<(u32, String)>,
    _processes: Vec<crate::serve::GatewayProcess>,
}

#[derive(Serialize)]
struct AttackReport {
    identities: Vec<String>,
    requests: u64,
    records_exposed: u64,
    detected: bool,
    seconds_to_contain: Option<f64>,
    rule: Option<String>,
    decision: Option<String>,
    response: Option<String>,
    refusals: BTreeMap<String, u64>,
}

#[derive(Serialize)]
struct LegitDecision {
    rule: String,
    target: String,
    action: String,
    mode: String,
}

#[derive(Serialize)]
struct Report {
    scenario: Scenario,
    persons: usize,
    identities: usize,
    simulated_hours: f64,
    real_seconds: f64,
    requests: u64,
    requests_per_s: f64,
    legit_failures: u64,
    legit_failure_kinds: BTreeMap<String, u64>,
    /// Legitimate failures by the caller's role: beside `records_exposed`, what the
    /// response cost the honest members of the attacked role.
    legit_failures_by_role: BTreeMap<String, u64>,
    false_quarantines: usize,
    legit_decisions: Vec<LegitDecision>,
    alerts_by_rule: BTreeMap<String, usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attack: Option<AttackReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    records_exposed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seconds_to_contain: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detected: Option<bool>,
}

/// How much legitimate work, per kind of caller.
#[derive(Debug, Clone, Copy)]
struct Scale {
    clerks: usize,
    supervisors: usize,
    partners: usize,
    employers: usize,
    uploads: usize,
    pension: bool,
}

/// Runs a scenario.
pub fn run(home: &Home, o: &Options) -> Result<()> {
    if o.persons < 1_000 {
        bail!(
            "--persons: at least 1000 (the workloads pick visitors, staff and victims from them)"
        );
    }
    // Progress goes to stderr in both modes: a week takes minutes; stdout keeps the report.
    let say = |m: &str| eprintln!("{m}");
    let (world, rt, scale, window) = build(home, o, &say)?;
    let world = Arc::new(world);
    let mut rng = ChaCha12Rng::seed_from_u64(o.seed ^ 0x5eed);
    let mut jobs = if o.scenario == Scenario::CompromisedGateway {
        // Networked custodians keep real time: so does this whole run.
        world.realtime.store(true, Ordering::SeqCst);
        steady_jobs(&world, window, &mut rng)
    } else {
        legit_jobs(&world, scale, window, &mut rng)
    };
    let hostile = attack_jobs(&world, o.scenario, &mut rng, &mut jobs)?;
    jobs.sort_by_key(|j| j.t_ms);
    say(&format!(
        "simulating {:?}: {} scheduled requests over {:.0} simulated hours, {} identities",
        o.scenario,
        jobs.len(),
        (window.1 - window.0) as f64 / HOUR as f64,
        world.actors.len()
    ));
    let started = Instant::now();
    world.clock.advance_to_ms(window.0);
    rt.block_on(dispatch(world.clone(), jobs, o.in_flight.max(1)))?;
    let real = started.elapsed().as_secs_f64();
    let mut decisions = world.watch.decisions();
    for (i, _) in &world.remotes {
        let dir = world.node_home.custodian_dir(*i as usize).join("decisions");
        for r in ribat_gateway::watch::read_log(&dir)? {
            if let ribat_gateway::watch::Record::Decision(d) = r {
                decisions.push(*d);
            }
        }
    }
    let report = report(&world, o, &hostile, &decisions, window, real);
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

type Built = (World, tokio::runtime::Runtime, Scale, (u64, u64));

fn build(home: &Home, o: &Options, say: &dyn Fn(&str)) -> Result<Built> {
    let dir = fresh_dir(home, "simulate")?;
    say(&format!("generating a fund of {} persons…", o.persons));
    let spec = ribat_sim::FundSpec::new(o.persons, (o.persons / 12).max(3), 2, o.seed);
    let source = dir.join("source");
    let fund = ribat_sim::files::write(&spec, &source)?;
    let periods: BTreeSet<String> = fund.declarations.iter().map(|d| d.period.clone()).collect();
    let mut periods = periods.into_iter();
    let (first, second) = (
        periods.next().context("the fund has no declarations")?,
        periods.next().context("the fund has one month only")?,
    );
    let ebds_of = |period: &str| -> Vec<(usize, PathBuf)> {
        fund.employers
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let f = ribat_import::ebds::file_name(&e.affiliation, period);
                (i, source.join("ebds").join(f))
            })
            .filter(|(_, p)| p.exists())
            .collect()
    };
    let (node_home, pass) = keyed_node(&dir)?;
    {
        let node = Embedded::open(&node_home, &pass)?;
        let leak = node.leak_digester("import")?;
        let sealer = RecordSealer::new(&node.group, &node.vault.index)?.with_leak_digests(&leak);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let importer = Importer::new(node.vault.store.as_ref(), &sealer, threads, 5_000);
        say(&format!(
            "importing it (sealed), with the declarations of {first}…"
        ));
        let mut inputs = vec![source.join("employers.csv"), source.join("persons.csv")];
        inputs.extend(ebds_of(&first).into_iter().map(|(_, p)| p));
        let summary = importer.run(&inputs, &mut |_| {})?;
        if !summary.rejects.is_empty() {
            bail!(
                "the generated files were rejected: {:?}",
                summary.rejects.first()
            );
        }
        crate::import::install_honey(&node, &sealer, &source.join("ribat-only/honey.csv"))?;
        crate::import::write_public_figures(
            &node_home,
            &sealer,
            &source.join("ribat-only/sensitive.csv"),
        )?;
    }
    let wall = ribat_custodian::clock::SystemClock.now_ms();
    let (scale, window) = plan(o, &fund, wall);
    let uploads = ebds_of(&second);
    say("issuing identities…");
    let ca = crate::identity::init_quiet(&node_home, &["127.0.0.1".into()])?;
    let mut specs: Vec<(String, Role, String, bool)> = Vec::new();
    for i in 0..scale.clerks {
        specs.push((
            format!("clerk.{i:04}"),
            Role::Clerk,
            format!("agency-{}", i % 40),
            false,
        ));
    }
    for i in 0..scale.supervisors {
        specs.push((
            format!("supervisor.{i:03}"),
            Role::Supervisor,
            format!("agency-{}", i % 40),
            false,
        ));
    }
    for i in 0..scale.partners {
        specs.push((
            format!("partner.{i:02}"),
            Role::Partner,
            format!("partner-{i}"),
            false,
        ));
    }
    for (i, e) in fund
        .employers
        .iter()
        .take(scale.employers.max(scale.uploads))
        .enumerate()
    {
        specs.push((
            format!("employer.{i:04}"),
            Role::Employer,
            e.affiliation.clone(),
            false,
        ));
    }
    if scale.pension {
        specs.push((
            "batch.pensions".into(),
            Role::Pension,
            "cnss-pensions".into(),
            false,
        ));
    }
    specs.extend(attackers(o.scenario, &fund));
    let mut actors = Vec::with_capacity(specs.len());
    for (name, role, inst, hostile) in specs {
        let d = crate::identity::add_client_quiet(&ca, &node_home, &name, role.name(), &inst)?;
        actors.push(Actor {
            name,
            role,
            hostile,
            cfg: crate::api_client::config_in(&d)?,
            conn: tokio::sync::Mutex::new(None),
        });
    }
    let mut processes = Vec::new();
    let mut remotes = Vec::new();
    if o.scenario == Scenario::CompromisedGateway {
        say("starting custodians 2 and 3 as their own processes (`ribat custodian`)…");
        for i in [2u32, 3] {
            let name = format!("custodian-{i}");
            crate::identity::add_server_quiet(
                &ca,
                &node_home,
                &name,
                "custodian",
                &["127.0.0.1".into()],
            )?;
            let p = crate::serve::spawn_custodian(&node_home, &dir.join("passphrases"), i)?;
            remotes.push((i, p.addr.clone()));
            processes.push(p);
        }
    }
    say("starting the gateway (mTLS on loopback, 3 custodians, detectors)…");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let clock = Arc::new(if remotes.is_empty() {
        SimClock::at_ms(window.0.saturating_sub(HOUR))
    } else {
        SimClock::at_ms(wall)
    });
    let opts = crate::serve::ServeOptions {
        outputs: ribat_gateway::watch::Outputs {
            ocsf: Some(node_home.root().join("events.ocsf.jsonl")),
            syslog: None,
        },
        remotes: remotes
            .iter()
            .map(|(index, addr)| crate::serve::RemoteSpec {
                index: *index,
                addr: addr.clone(),
            })
            .collect(),
        deadline: std::time::Duration::from_secs(2),
    };
    let a = crate::serve::assemble(&node_home, &pass, &opts, rt.handle(), clock.clone())?;
    let watch = a.app.watch.clone();
    let vault = a.app.vault.clone();
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let router = ribat_gateway::api::router(a.app.clone());
        tokio::spawn(ribat_net::listener::serve(listener, a.tls, router, a.stats));
        Ok::<_, ribat_node::NodeError>(addr)
    })?;
    Ok((
        World {
            fund,
            uploads,
            actors,
            addr,
            clock,
            watch,
            legit: Mutex::new(Tally::default()),
            hostile: Mutex::new(Tally::default()),
            realtime: AtomicBool::new(false),
            attacking: AtomicUsize::new(0),
            done: AtomicU64::new(0),
            node_home,
            vault,
            remotes,
            _processes: processes,
        },
        rt,
        scale,
        window,
    ))
}

/// Callers per kind for a scenario, and the simulated window.
fn plan(o: &Options, fund: &ribat_sim::Fund, wall_ms: u64) -> (Scale, (u64, u64)) {
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

/// The attack's identities: (name, role, institution, hostile).
fn attackers(s: Scenario, fund: &ribat_sim::Fund) -> Vec<(String, Role, String, bool)> {
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
        Scenario::LegitWeek | Scenario::CompromisedGateway => Vec::new(),
    }
}

/// A minute of counters, supervisors and partners at a steady pace, any hour (the
/// compromised-gateway run keeps real time, whenever it runs).
fn steady_jobs(w: &World, window: (u64, u64), rng: &mut ChaCha12Rng) -> Vec<Job> {
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

fn actors_of(w: &World, role: Role, hostile: bool) -> Vec<usize> {
    w.actors
        .iter()
        .enumerate()
        .filter(|(_, a)| a.role == role && a.hostile == hostile)
        .map(|(i, _)| i)
        .collect()
}

/// Ordinary persons (never a honey record: nobody walks in with a synthetic identity).
fn ordinary(fund: &ribat_sim::Fund) -> Vec<usize> {
    (0..fund.persons.len())
        .filter(|&i| !fund.persons[i].honey)
        .collect()
}

/// Poisson arrivals at `mean_ms` apart within [from, to).
fn arrivals(rng: &mut ChaCha12Rng, from: u64, to: u64, mean_ms: f64) -> Vec<u64> {
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

fn weekday(day_start: u64) -> u64 {
    // Days since the epoch in local time; 1970-01-01 was a Thursday (ISO 4).
    ((day_start + HOUR) / DAY + 3) % 7 + 1
}

fn legit_jobs(w: &World, s: Scale, window: (u64, u64), rng: &mut ChaCha12Rng) -> Vec<Job> {
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

/// Schedules the attack; returns the hostile identities.
fn attack_jobs(
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
    let Some(&first) = hostile.first() else {
        return Ok(hostile);
    };
    let people = ordinary(&w.fund);
    let at = MONDAY + 10 * HOUR;
    match s {
        Scenario::CnssBulk => jobs.push(Job {
            t_ms: at,
            actor: first,
            req: Req::StartBulk,
        }),
        Scenario::LowAndSlow => {
            // ~190 distinct persons a working day (quota 200), every day of the window.
            for d in 0..3 {
                let from = MONDAY + d * DAY + 8 * HOUR + HOUR / 2;
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
            let start: u64 = w.fund.persons[people.len() / 2]
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
            let figures: Vec<usize> = (0..w.fund.persons.len())
                .filter(|&i| w.fund.persons[i].sensitive)
                .collect();
            let figure = *figures.first().context("the fund has no public figure")?;
            let city = &w.fund.persons[figure].city;
            let neighbours: Vec<usize> = people
                .iter()
                .copied()
                .filter(|&i| &w.fund.persons[i].city == city && !w.fund.persons[i].sensitive)
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
            let honey: Vec<usize> = (0..w.fund.persons.len())
                .filter(|&i| w.fund.persons[i].honey)
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
        Scenario::LegitWeek | Scenario::CompromisedGateway => {}
    }
    Ok(hostile)
}

async fn dispatch(w: Arc<World>, jobs: Vec<Job>, in_flight: usize) -> Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(in_flight));
    let total = jobs.len();
    let started = Instant::now();
    let mut last_note = Instant::now();
    for job in jobs {
        let mut permit = permits.clone().acquire_owned().await?;
        if w.realtime.load(Ordering::SeqCst) {
            // An attack runs at real speed: wait for the clock instead of moving it.
            while w.clock.now_ms() < job.t_ms && w.realtime.load(Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        } else if job.t_ms > w.clock.now_ms() + MAX_STEP_IN_FLIGHT_MS {
            // A longer jump waits until nothing is in flight: a request must not see its
            // token expire, or its custodian answer outlive the detectors' grace, because
            // the simulation skipped an idle hour while it was on the wire.
            drop(permit);
            let idle = permits.acquire_many(u32::try_from(in_flight)?).await?;
            w.clock.advance_to_ms(job.t_ms);
            drop(idle);
            permit = permits.clone().acquire_owned().await?;
        }
        w.clock.advance_to_ms(job.t_ms);
        if let Req::StartBulk = job.req {
            w.realtime.store(true, Ordering::SeqCst);
            w.attacking.fetch_add(1, Ordering::SeqCst);
            let w2 = w.clone();
            tokio::spawn(async move {
                bulk(&w2, job.actor).await;
                w2.realtime.store(false, Ordering::SeqCst);
                w2.attacking.fetch_sub(1, Ordering::SeqCst);
            });
            drop(permit);
            continue;
        }
        if let Req::StartBypass = job.req {
            w.attacking.fetch_add(1, Ordering::SeqCst);
            let w2 = w.clone();
            tokio::spawn(async move {
                let w3 = w2.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || bypass(&w3)).await {
                    eprintln!("the bypass attack could not run: {e:#}");
                }
                w2.attacking.fetch_sub(1, Ordering::SeqCst);
            });
            drop(permit);
            continue;
        }
        let w2 = w.clone();
        tokio::spawn(async move {
            execute(&w2, &job).await;
            w2.done.fetch_add(1, Ordering::Relaxed);
            drop(permit);
        });
        if last_note.elapsed().as_secs() >= 10 {
            last_note = Instant::now();
            let done = w.done.load(Ordering::Relaxed);
            eprintln!(
                "  {done}/{total} requests, simulated {}, {:.0} requests/s",
                ribat_custodian::error_utc(w.clock.now()),
                done as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    let _all = permits.acquire_many(u32::try_from(in_flight)?).await?;
    while w.attacking.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The 2025 case: a partner's credentials reading the register in order, as fast as the
/// gateway answers, 8 connections at once, until it is refused 20 times in a row.
async fn bulk(w: &Arc<World>, actor: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (w, next) = (w.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let a = &w.actors[actor];
            let Ok(mut c) = Connection::open(a.cfg.clone(), &w.addr, "127.0.0.1", false).await
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
fn bypass(w: &World) -> Result<()> {
    use ribat_custodian::{Custodian, PartialRequest, QuorumError, QuorumReader, Requester};
    let ids = crate::identity::issued_dir(&w.node_home, STOLEN);
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
    let custodians: Vec<Arc<dyn Custodian>> = w
        .remotes
        .iter()
        .map(|(i, addr)| {
            Arc::new(ribat_gateway::link::RemoteCustodian::new(
                *i,
                addr,
                "127.0.0.1",
                cfg.clone(),
                handle.clone(),
                std::time::Duration::from_secs(2),
            )) as Arc<dyn Custodian>
        })
        .collect();
    let store = crate::embedded::open_store(&w.node_home)?;
    let reader = QuorumReader::new(w.vault.reader.group().clone(), custodians, store);
    let victim = actors_of(w, Role::Partner, false)
        .first()
        .map(|&a| w.actors[a].name.clone())
        .context("no partner identity to impersonate")?;
    let pem = read(&crate::identity::issued_dir(&w.node_home, &victim).join("cert.pem"))?;
    let der = ribat_identity::tls::certs_from_pem(&pem, "partner certificate")?;
    let peer =
        ribat_identity::PeerIdentity::from_der(der.first().context("no certificate")?.as_ref())?;
    let token_key = zeroize::Zeroizing::new(read(
        &crate::identity::dir(&w.node_home).join(ribat_identity::ca::TOKEN_KEY),
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
        let Some(id) = w.vault.by_cnss(&w.fund.persons[i].cnss)?.into_iter().next() else {
            continue;
        };
        let req = PartialRequest {
            request_id: format!("bypass-{n}"),
            requester: Requester {
                identity: victim.clone(),
                role: "partner".into(),
            },
            purpose: "partner-verification".into(),
            table: ribat_import::records::PERSONS.into(),
            class: "identity".into(),
            record_ids: vec![id],
            token: Some(ribat_custodian::request::Bearer(token.clone())),
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

fn record(
    w: &World,
    hostile: bool,
    role: Role,
    sent_ms: u64,
    r: Option<&ribat_net::client::Response>,
    error: Option<String>,
) {
    let tally = if hostile { &w.hostile } else { &w.legit };
    let Ok(mut t) = tally.lock() else { return };
    t.requests += 1;
    t.first_ms = Some(t.first_ms.map_or(sent_ms, |f| f.min(sent_ms)));
    match r {
        Some(r) if (200..300).contains(&r.status) => {
            t.ok += 1;
            t.refused_in_a_row = 0;
            let v = r.json();
            t.records += match v.get("matches").and_then(|m| m.as_array()) {
                Some(m) => m.len() as u64,
                None if v.get("fields").is_some() || v.get("declarations").is_some() => 1,
                None => 0,
            };
        }
        Some(r) => {
            t.refused_in_a_row += 1;
            let kind = r.json()["type"]
                .as_str()
                .and_then(|s| s.rsplit('/').next())
                .map_or_else(|| format!("http-{}", r.status), str::to_owned);
            *t.failures.entry(kind).or_default() += 1;
            *t.failures_by_role
                .entry(role.name().to_owned())
                .or_default() += 1;
        }
        None => {
            t.refused_in_a_row += 1;
            *t.failures_by_role
                .entry(role.name().to_owned())
                .or_default() += 1;
            *t.failures
                .entry(format!("transport: {}", error.unwrap_or_default()))
                .or_default() += 1;
        }
    }
}

async fn execute(w: &World, job: &Job) {
    let a = &w.actors[job.actor];
    let mut slot = a.conn.lock().await;
    let now = w.clock.now();
    let fresh = match slot.as_ref() {
        Some((c, _, issued)) => !c.is_open() || now.saturating_sub(*issued) > TOKEN_TTL - 120,
        None => true,
    };
    if fresh {
        let opened = async {
            let mut c = Connection::open(a.cfg.clone(), &w.addr, "127.0.0.1", false).await?;
            let t = crate::api_client::token(&mut c, TOKEN_TTL).await?;
            Ok::<_, ribat_node::NodeError>((c, t, w.clock.now()))
        }
        .await;
        match opened {
            Ok(s) => *slot = Some(s),
            Err(e) => {
                record(
                    w,
                    a.hostile,
                    a.role,
                    w.clock.now_ms(),
                    None,
                    Some(format!("{e:#}")),
                );
                return;
            }
        }
    }
    let Some((c, token, _)) = slot.as_mut() else {
        return;
    };
    let p = |i: usize| &w.fund.persons[i];
    let purpose = a.role.purpose();
    let sent = w.clock.now_ms();
    let r = match &job.req {
        Req::Person { person, case } => {
            let case = if *case {
                format!("&case=T{}-{}", job.actor, job.t_ms % 100_000)
            } else {
                String::new()
            };
            let path = format!("/v1/persons/{}?purpose={purpose}{case}", p(*person).cnss);
            c.send("GET", &path, Some(token), None).await
        }
        Req::Declarations { person } => {
            let case = if a.role == Role::Pension {
                String::new()
            } else {
                format!("&case=F{}-{}", job.actor, job.t_ms % 100_000)
            };
            let path = format!(
                "/v1/persons/{}/declarations?purpose={purpose}{case}",
                p(*person).cnss
            );
            c.send("GET", &path, Some(token), None).await
        }
        Req::Cin { person } => {
            let body = serde_json::json!({
                "purpose": purpose,
                "cin": p(*person).cin,
                "case": format!("T{}-{}", job.actor, job.t_ms % 100_000),
            });
            c.send(
                "POST",
                "/v1/persons/search",
                Some(token),
                serde_json::to_vec(&body).ok(),
            )
            .await
        }
        Req::Employee { person } => {
            let path = format!(
                "/v1/persons/{}?purpose={purpose}&case=staff-{}",
                p(*person).cnss,
                job.actor
            );
            c.send("GET", &path, Some(token), None).await
        }
        Req::Pension { person } => {
            let path = format!(
                "/v1/persons/{}?purpose={purpose}&fields=cnss,given,surname,rib",
                p(*person).cnss
            );
            c.send("GET", &path, Some(token), None).await
        }
        Req::Walk { number } => {
            let path = format!("/v1/persons/{number:09}?purpose={purpose}");
            c.send("GET", &path, Some(token), None).await
        }
        Req::Upload { file } => {
            let body = w
                .uploads
                .get(*file)
                .and_then(|(_, f)| std::fs::read(f).ok())
                .unwrap_or_default();
            c.send_raw(
                "POST",
                "/v1/declarations?purpose=declaration-upload",
                Some(token),
                body,
                "text/plain",
            )
            .await
        }
        Req::StartBulk | Req::StartBypass => return,
    };
    // A walked number that is nobody's is the expected answer, not a failure of the walk.
    record(
        w,
        a.hostile,
        a.role,
        sent,
        r.as_ref().ok(),
        r.as_ref().err().map(|e| e.to_string()),
    );
}

fn targets_actor(d: &Decision, a: &Actor) -> bool {
    targets(d, &a.name, a.role.name())
}

fn targets(d: &Decision, name: &str, role: &str) -> bool {
    match &d.target {
        Target::Identity(i) | Target::Node(i) => i == name,
        Target::Role(r) => r == role,
        Target::Certificate(_) | Target::Address(_) => false,
    }
}

/// The stolen certificate in the compromised-gateway scenario.
const STOLEN: &str = crate::identity::GATEWAY_NAME;

fn report(
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
            w.remotes
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
    }
}

fn print_report(r: &Report) {
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
}
