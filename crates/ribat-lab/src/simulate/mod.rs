//! `ribat simulate`: a generated fund in a fresh embedded node, served by the real gateway
//! (mTLS on loopback, the detectors, the custodians), driven through its API by real
//! identities — counter clerks, supervisors, partners, employers, the pension run — and
//! by one attack, on a simulated clock that runs at real speed during an attack burst and
//! skips the idle hours in between (a week in minutes).
//!
//! The gateway runs in this process (not `ribat serve`) so that it can share the simulated
//! clock; everything between the simulated callers and the custodians is the real thing.
//!
//! ```text
//!   workload (who calls, when) ─┐
//!                               ├─► jobs in time order ─► dispatch on the simulated clock
//!   attacks (what each scenario  ┘      ─► execute over mTLS ─► tally ─► scoring (report)
//!   asks, the gateway bypass)
//! ```

mod attacks;
mod lab;
pub mod mesh;
mod reviews;
mod scoring;
mod workload;

use attacks::*;
use scoring::*;
use workload::*;

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
    /// A month of third parties' access: one partner re-certified before its review date,
    /// one left to lapse (refused from that date, a finding a week before).
    PartnerReview,
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
    cfg: ribat_net::client::ClientSide,
    /// The gateway it calls.
    gateway: String,
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
    /// The gateway's daily check of the third parties' review dates.
    ReviewCheck,
    /// A security administrator re-certifies the actor's access until then.
    Recertify {
        /// The new review date, simulated ms.
        until_ms: u64,
    },
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
    clock: Arc<SimClock>,
    /// What the callers call: one node in this process, or node processes on a lab clock.
    place: Place,
    legit: Mutex<Tally>,
    hostile: Mutex<Tally>,
    /// An attack running at real speed: the clock must not jump meanwhile.
    realtime: AtomicBool,
    /// Attack tasks still running.
    attacking: AtomicUsize,
    done: AtomicU64,
    /// The third parties' review dates at the start (simulated ms), and what the reviews
    /// saw.
    review_dates: BTreeMap<String, u64>,
    reviews: reviews::Reviews,
}

/// Where the simulated callers' requests go.
enum Place {
    /// An embedded node whose gateway runs in this process, on the simulated clock.
    InProcess(InProcess),
    /// `ribat node` processes on loopback, following the lab clock this run moves.
    Mesh(lab::MeshLab),
}

/// The embedded node of a run without `--mesh`.
struct InProcess {
    /// Its gateway's detectors and decisions.
    watch: Arc<ribat_gateway::watch::Watch>,
    /// The node (the bypass attacker has its gateway's files).
    node_home: Home,
    vault: Arc<ribat_gateway::vault::Vault>,
    /// Networked custodians: (index, address), and their processes.
    remotes: Vec<(u32, String)>,
    _processes: Vec<crate::serve::GatewayProcess>,
}

impl World {
    /// A run's world before its first request: nothing counted yet.
    fn new(
        fund: ribat_sim::Fund,
        uploads: Vec<(usize, PathBuf)>,
        actors: Vec<Actor>,
        clock: Arc<SimClock>,
        place: Place,
        review_dates: BTreeMap<String, u64>,
        reviews: reviews::Reviews,
    ) -> Self {
        Self {
            fund,
            uploads,
            actors,
            clock,
            place,
            legit: Mutex::new(Tally::default()),
            hostile: Mutex::new(Tally::default()),
            realtime: AtomicBool::new(false),
            attacking: AtomicUsize::new(0),
            done: AtomicU64::new(0),
            review_dates,
            reviews,
        }
    }

    /// Moves the simulated clock forward to `t_ms` (never back), and the nodes' with it.
    fn advance_to_ms(&self, t_ms: u64) -> Result<()> {
        self.clock.advance_to_ms(t_ms);
        match &self.place {
            Place::InProcess(_) => Ok(()),
            Place::Mesh(m) => m.follow(&self.clock),
        }
    }

    /// Networked custodians beside an embedded gateway: (index, address).
    fn remotes(&self) -> &[(u32, String)] {
        match &self.place {
            Place::InProcess(p) => &p.remotes,
            Place::Mesh(_) => &[],
        }
    }

    /// Every decision the run's detectors took, each once.
    fn decisions(&self) -> Result<Vec<Decision>> {
        match &self.place {
            Place::InProcess(p) => {
                let mut decisions = p.watch.decisions();
                for (i, _) in &p.remotes {
                    let dir = p.node_home.custodian_dir(*i as usize).join("decisions");
                    for r in ribat_gateway::watch::read_log(&dir)? {
                        if let ribat_gateway::watch::Record::Decision(d) = r {
                            decisions.push(*d);
                        }
                    }
                }
                Ok(decisions)
            }
            Place::Mesh(m) => m.decisions(),
        }
    }

    /// The detection rules the gateways run on (which roles are essential).
    fn rules_file(&self) -> PathBuf {
        match &self.place {
            Place::InProcess(p) => p.node_home.root().join(ribat_node::serve::RULES_FILE),
            Place::Mesh(m) => m.rules_file(),
        }
    }
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
    enough_persons(o)?;
    // Progress goes to stderr in both modes: a week takes minutes; stdout keeps the report.
    let say = |m: &str| eprintln!("{m}");
    let built = build(home, o, &say)?;
    simulate(built, o)
}

/// Runs a scenario that spans days against `nodes` node processes on a lab clock
/// (`legit-week`, `low-and-slow`, `partner-review` with `--mesh`).
pub fn run_in_lab(home: &Home, o: &Options, nodes: usize) -> Result<()> {
    enough_persons(o)?;
    let say = |m: &str| eprintln!("{m}");
    let built = lab::build(home, o, nodes, &say)?;
    simulate(built, o)
}

/// Refused before anything is made or deleted: the workloads pick visitors, staff and
/// victims from the fund.
fn enough_persons(o: &Options) -> Result<()> {
    if o.persons < 1_000 {
        bail!(
            "--persons: at least 1000 (the workloads pick visitors, staff and victims from them)"
        );
    }
    Ok(())
}

/// Dispatches the scenario's jobs in time order on `built`'s clock; prints the report.
fn simulate(built: Built, o: &Options) -> Result<()> {
    let say = |m: &str| eprintln!("{m}");
    let (world, rt, scale, window) = built;
    let world = Arc::new(world);
    let mut rng = ChaCha12Rng::seed_from_u64(o.seed ^ 0x5eed);
    let mut jobs = if o.scenario == Scenario::CompromisedGateway {
        // Networked custodians keep real time: so does this whole run.
        world.realtime.store(true, Ordering::SeqCst);
        steady_jobs(&world, window, &mut rng)
    } else {
        legit_jobs(&world, scale, window, &mut rng)
    };
    if o.scenario == Scenario::PartnerReview {
        jobs.extend(reviews::jobs(&world, window));
    }
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
    world.advance_to_ms(window.0)?;
    rt.block_on(dispatch(world.clone(), jobs, o.in_flight.max(1)))?;
    let real = started.elapsed().as_secs_f64();
    let decisions = world.decisions()?;
    let mut report = report(&world, o, &hostile, &decisions, window, real);
    if o.scenario == Scenario::PartnerReview {
        report.reviews = reviews::report(&world, &world.review_dates, window);
    }
    if let Place::Mesh(m) = &world.place {
        report.lab = Some(m.report()?);
    }
    if o.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// Who calls in a run of `scenario` at `scale`: (name, role, institution, hostile).
fn callers(
    scenario: Scenario,
    scale: Scale,
    fund: &ribat_sim::Fund,
) -> Vec<(String, Role, String, bool)> {
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
    specs.extend(attackers(scenario, fund));
    specs
}

type Built = (World, tokio::runtime::Runtime, Scale, (u64, u64));

/// A generated fund of two months in `dir/source`: the fund, the first month (imported)
/// and the second (uploaded during the run).
fn generate(dir: &std::path::Path, o: &Options, say: &dyn Fn(&str)) -> Result<Generated> {
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
    Ok(Generated {
        fund,
        source,
        first,
        second,
    })
}

struct Generated {
    fund: ribat_sim::Fund,
    source: PathBuf,
    first: String,
    second: String,
}

impl Generated {
    /// Each employer's e-BDS file of `period`, where it has one: (employer index, file).
    fn ebds_of(&self, period: &str) -> Vec<(usize, PathBuf)> {
        self.fund
            .employers
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let f = ribat_import::ebds::file_name(&e.affiliation, period);
                (i, self.source.join("ebds").join(f))
            })
            .filter(|(_, p)| p.exists())
            .collect()
    }
}

fn build(home: &Home, o: &Options, say: &dyn Fn(&str)) -> Result<Built> {
    let dir = fresh_dir(home, "simulate")?;
    let g = generate(&dir, o, say)?;
    let (first_month, uploads) = (g.ebds_of(&g.first), g.ebds_of(&g.second));
    let Generated {
        fund,
        source,
        first,
        ..
    } = g;
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
        inputs.extend(first_month.into_iter().map(|(_, p)| p));
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
    say("issuing identities…");
    let ca = crate::identity::init_quiet(&node_home, &["127.0.0.1".into()])?;
    let specs = callers(o.scenario, scale, &fund);
    let mut actors = Vec::with_capacity(specs.len());
    for (name, role, inst, hostile) in specs {
        let d = crate::identity::add_client_quiet(&ca, &node_home, &name, role.name(), &inst)?;
        actors.push(Actor {
            name,
            role,
            hostile,
            cfg: crate::api_client::config_in(&d)?,
            gateway: String::new(),
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
    // The simulated callers live on the simulated clock: they date their signatures by it.
    for a in &mut actors {
        let c = clock.clone();
        a.cfg.now = Some(Arc::new(move || c.now()));
    }
    let opts = crate::serve::ServeOptions {
        published_witnesses: Default::default(),
        signed_requests: false,
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
        audited_by_log: false,
    };
    let a = crate::serve::assemble(&node_home, &pass, &opts, rt.handle(), clock.clone())?;
    // Every partner and batch identity carries a review date; the gateway refuses one past
    // it by the simulated clock, as `ribat serve` does by the real one.
    let review_dates = reviews::dates(o.scenario, &actors, window);
    reviews::set(&node_home, &review_dates)?;
    let register = ribat_node::reviews::vet_on_node(&node_home, &a.tls, clock.clone())?;
    let watch = a.app.watch.clone();
    let vault = a.app.vault.clone();
    let addr = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let router = ribat_gateway::api::router(a.app.clone());
        tokio::spawn(ribat_net::listener::serve(listener, a.tls, router, a.stats));
        Ok::<_, ribat_node::NodeError>(addr)
    })?;
    for a in &mut actors {
        a.gateway.clone_from(&addr);
    }
    let place = Place::InProcess(InProcess {
        watch,
        node_home,
        vault,
        remotes,
        _processes: processes,
    });
    let reviews = reviews::Reviews {
        register: Some(register),
        ..Default::default()
    };
    Ok((
        World::new(fund, uploads, actors, clock, place, review_dates, reviews),
        rt,
        scale,
        window,
    ))
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
            w.advance_to_ms(job.t_ms)?;
            drop(idle);
            permit = permits.clone().acquire_owned().await?;
        }
        w.advance_to_ms(job.t_ms)?;
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
        match job.req {
            Req::ReviewCheck => {
                reviews::check(&w);
                drop(permit);
                continue;
            }
            Req::Recertify { until_ms } => {
                if let Err(e) = reviews::recertify(&w, job.actor, until_ms) {
                    eprintln!("the re-certification could not be made: {}", e.chain());
                }
                drop(permit);
                continue;
            }
            _ => {}
        }
        if let Req::StartBypass = job.req {
            w.attacking.fetch_add(1, Ordering::SeqCst);
            let w2 = w.clone();
            tokio::spawn(async move {
                let w3 = w2.clone();
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || bypass(&w3)).await {
                    eprintln!("the bypass attack could not run: {}", e.chain());
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
    t.first_ms = Some(t.first_ms.map_or(sent_ms, |f| f.min(sent_ms)));
    t.count(role, r, error);
}

impl Tally {
    /// Counts one answer (or a transport failure, `error`) to a caller of `role`.
    fn count(
        &mut self,
        role: Role,
        r: Option<&ribat_net::client::Response>,
        error: Option<String>,
    ) {
        self.requests += 1;
        match r {
            Some(r) if (200..300).contains(&r.status) => {
                self.ok += 1;
                self.refused_in_a_row = 0;
                let v = r.json();
                self.records += match v.get("matches").and_then(|m| m.as_array()) {
                    Some(m) => m.len() as u64,
                    None if v.get("fields").is_some() || v.get("declarations").is_some() => 1,
                    None => 0,
                };
            }
            Some(r) => {
                self.refused_in_a_row += 1;
                let kind = r.json()["type"]
                    .as_str()
                    .and_then(|s| s.rsplit('/').next())
                    .map_or_else(|| format!("http-{}", r.status), str::to_owned);
                *self.failures.entry(kind).or_default() += 1;
                *self
                    .failures_by_role
                    .entry(role.name().to_owned())
                    .or_default() += 1;
            }
            None => {
                self.refused_in_a_row += 1;
                *self
                    .failures_by_role
                    .entry(role.name().to_owned())
                    .or_default() += 1;
                *self
                    .failures
                    .entry(format!("transport: {}", error.unwrap_or_default()))
                    .or_default() += 1;
            }
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
            let mut c = Connection::open(a.cfg.clone(), &a.gateway, "127.0.0.1", false).await?;
            let t = crate::api_client::token(&mut c, TOKEN_TTL).await?;
            Ok::<_, ribat_node::NodeError>((c, t, w.clock.now()))
        }
        .await;
        match opened {
            Ok(s) => *slot = Some(s),
            Err(e) => {
                let sent = w.clock.now_ms();
                reviews::note(w, job.actor, sent, None, Some(&e.chain()));
                record(w, a.hostile, a.role, sent, None, Some(e.chain()));
                return;
            }
        }
    }
    let Some((c, token, _)) = slot.as_mut() else {
        return;
    };
    let sent = w.clock.now_ms();
    let r = match &job.req {
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
        req => {
            let Some((method, path, body)) = request(&w.fund, a.role, job, req) else {
                return;
            };
            c.send(method, &path, Some(token), body).await
        }
    };
    reviews::note(
        w,
        job.actor,
        sent,
        r.as_ref().ok(),
        r.as_ref().err().map(|e| e.to_string()).as_deref(),
    );
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

/// The API request that `job` (a read) is: method, path and body; `None` for the jobs
/// that are not one request of the caller's (uploads, attacks started, reviews).
fn request(
    fund: &ribat_sim::Fund,
    role: Role,
    job: &Job,
    req: &Req,
) -> Option<(&'static str, String, Option<Vec<u8>>)> {
    let p = |i: usize| &fund.persons[i];
    let purpose = role.purpose();
    let get = |path: String| Some(("GET", path, None));
    match req {
        Req::Person { person, case } => {
            let case = if *case {
                format!("&case=T{}-{}", job.actor, job.t_ms % 100_000)
            } else {
                String::new()
            };
            get(format!(
                "/v1/persons/{}?purpose={purpose}{case}",
                p(*person).cnss
            ))
        }
        Req::Declarations { person } => {
            let case = if role == Role::Pension {
                String::new()
            } else {
                format!("&case=F{}-{}", job.actor, job.t_ms % 100_000)
            };
            get(format!(
                "/v1/persons/{}/declarations?purpose={purpose}{case}",
                p(*person).cnss
            ))
        }
        Req::Cin { person } => {
            let body = serde_json::json!({
                "purpose": purpose,
                "cin": p(*person).cin,
                "case": format!("T{}-{}", job.actor, job.t_ms % 100_000),
            });
            Some((
                "POST",
                "/v1/persons/search".to_owned(),
                serde_json::to_vec(&body).ok(),
            ))
        }
        Req::Employee { person } => get(format!(
            "/v1/persons/{}?purpose={purpose}&case=staff-{}",
            p(*person).cnss,
            job.actor
        )),
        Req::Pension { person } => get(format!(
            "/v1/persons/{}?purpose={purpose}&fields=cnss,given,surname,rib",
            p(*person).cnss
        )),
        Req::Walk { number } => get(format!("/v1/persons/{number:09}?purpose={purpose}")),
        Req::Upload { .. }
        | Req::StartBulk
        | Req::StartBypass
        | Req::ReviewCheck
        | Req::Recertify { .. } => None,
    }
}
