//! `ribat bench mesh`: a mesh of N node processes on loopback (one custodian each, a gateway
//! on every node), against the embedded node serving the same fund in the same run.
//!
//! | figure | how |
//! |---|---|
//! | reads/s, p50, p99 through custodians on other nodes | the same single-person reads as `bench api`, through node 1's gateway, beside the same reads from an embedded `ribat serve` |
//! | detection → enforced on every node | a partner's certificate scrapes through node 1's gateway until its detectors quarantine it; from that first refusal until every other node's gateway and every custodian refuse the partner (whichever path reaches it first: node 1's word to each custodian, or the mesh's log) |
//! | detection → committed on every node | from the same refusal until every node's replicated state holds the restriction |
//! | reads after the leader is killed | a reader on a gateway that does not lead, the leader killed with SIGKILL: the longest time without a successful read, and the reads that failed |

use crate::bench::node::{
    embedded_gateway, fresh_dir, generated_fund, running_mesh, wait_listening,
};
use crate::bench::reads::{Latencies, percentile, time_reads};
use crate::home::Home;
use crate::identity::add_client_quiet;
use ribat_net::client::Connection;
use ribat_node::{Context, bail};
use serde::Serialize;
use std::path::Path;
use std::time::{Duration, Instant};

type Result<T, E = super::BenchError> = std::result::Result<T, E>;

/// What the benchmark is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Node processes (threshold: a majority).
    pub nodes: usize,
    /// Persons in the generated fund.
    pub persons: usize,
    /// Reads to time on each side.
    pub requests: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Decisions to time (each a partner quarantined by node 1's detectors).
    pub decisions: usize,
    /// Print one JSON object.
    pub json: bool,
}

#[derive(Serialize)]
struct Side {
    reads_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

impl Side {
    fn of(l: &Latencies) -> Self {
        Self {
            reads_per_s: l.ms.len() as f64 / l.seconds.max(1e-9),
            p50_ms: percentile(&l.ms, 0.50),
            p99_ms: percentile(&l.ms, 0.99),
            errors: l.errors,
        }
    }
}

#[derive(Serialize)]
struct Spread {
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

impl Spread {
    fn of(mut ms: Vec<f64>) -> Self {
        ms.sort_by(f64::total_cmp);
        Self {
            p50_ms: percentile(&ms, 0.50),
            p99_ms: percentile(&ms, 0.99),
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

#[derive(Serialize)]
struct LeaderKilled {
    leader: String,
    reads_through: String,
    longest_gap_ms: f64,
    failed_reads: usize,
    reads: usize,
    /// What the first failed read answered, if one failed.
    first_failure: Option<String>,
}

#[derive(Serialize)]
struct Report {
    nodes: usize,
    threshold: usize,
    persons: usize,
    clients: usize,
    mesh_reads: Side,
    embedded_reads: Side,
    /// Mesh reads/s over embedded reads/s.
    ratio: f64,
    decisions: usize,
    enforced_everywhere: Spread,
    committed_everywhere: Spread,
    leader_killed: LeaderKilled,
}

/// One call on a fresh connection; the status and the problem type (or denial) it names.
pub(crate) fn ask(
    rt: &tokio::runtime::Runtime,
    cfg: &ribat_net::client::ClientSide,
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Vec<u8>>,
) -> Result<(u16, String)> {
    let r = rt.block_on(async {
        let mut c = Connection::open(cfg.clone(), addr, "127.0.0.1", false).await?;
        c.send(method, path, token, body).await
    });
    let r = match r {
        Ok(r) => r,
        Err(e) => return Ok((0, e.to_string())),
    };
    let v = r.json();
    let why = v["type"]
        .as_str()
        .and_then(|t| t.rsplit('/').next())
        .or(v["denial"]["denial"].as_str())
        .unwrap_or_default()
        .to_owned();
    // A custodian names whom it refuses: the caller asked about, or the gateway asking.
    let why = match v["denial"]["identity"].as_str() {
        Some(who) => format!("{why} {who}"),
        None => why,
    };
    Ok((r.status, why))
}

/// Runs the bench.
pub fn run(home: &Home, o: &Options) -> Result<()> {
    let say = |m: &str| {
        if !o.json {
            eprintln!("{m}");
        }
    };
    if o.nodes < 3 || o.persons < 100 || o.requests == 0 || o.clients == 0 || o.decisions == 0 {
        bail!(
            "--nodes at least 3, --persons at least 100, --requests, --clients and --decisions at least 1"
        );
    }
    let threshold = o.nodes / 2 + 1;
    let dir = fresh_dir(home, "bench-mesh")?;
    say(&format!("generating {} persons…", o.persons));
    let (fund, cnss) = generated_fund(&dir, o.persons)?;
    let src = dir.join("source");
    let files = [src.join("employers.csv"), src.join("persons.csv")];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    // The baseline: the embedded node (every custodian in one process) behind `ribat serve`.
    say("embedded baseline: key ceremony, sealed import, gateway…");
    let embedded_reads = {
        let (gw, client) = embedded_gateway(&dir)?;
        let cfg = crate::api_client::config_in(&client)?;
        say(&format!(
            "timing {} reads through the embedded gateway…",
            o.requests
        ));
        let l = time_reads(&rt, &cfg, &gw.addr, &cnss, o.requests, o.clients)?;
        drop(gw);
        l
    };

    // The mesh: N node directories, a gateway on each node.
    let mut mesh = running_mesh(&dir, o.nodes, "sec.bench", &files, None, None, &say)?;
    let (out, dirs, addrs, gateways) = (
        mesh.out.clone(),
        mesh.dirs.clone(),
        mesh.addrs.clone(),
        mesh.gateways.clone(),
    );
    let deployment = ribat_node::mesh::deployment_home(&out);
    let ca = crate::identity::open_ca(&deployment)?;
    let client = add_client_quiet(
        &ca,
        &deployment,
        "bench.pension-run",
        "pension-batch",
        "cnss.pensions",
    )?;
    // The custodians are asked directly with a gateway certificate of the bench's own: what
    // it asks is audited by no gateway, and each custodian's disagreement detector cuts that
    // certificate off after its grace — it must not be node 1's gateway's.
    let gateway_cert =
        add_client_quiet(&ca, &deployment, "gateway.bench-probe", "gateway", "mesh")?;
    // One partner per decision, each quarantined in turn.
    let mut partners = Vec::new();
    for k in 0..o.decisions {
        let name = format!("bench.partner-{k}");
        let d = add_client_quiet(&ca, &deployment, &name, "partner", "bench-insurer")?;
        partners.push(d);
    }
    say(&format!(
        "two administrators grant the bench's {} certificates through the log…",
        partners.len() + 2
    ));
    let mut issued = vec![client.clone(), gateway_cert.clone()];
    issued.extend(partners.iter().cloned());
    ribat_node::grants::grant_by_ceremony_admins(&out, &dirs[0], &issued, "the bench's callers")?;
    let cfg = crate::api_client::config_in(&client)?;
    let gw_addr = |id: u64| mesh.gateway(id);
    for (_, a) in &gateways {
        wait_listening(&rt, &cfg, a)?;
    }
    say(&format!(
        "timing {} reads through node 1's gateway (custodians on every node)…",
        o.requests
    ));
    let mesh_reads = time_reads(&rt, &cfg, &gw_addr(1), &cnss, o.requests, o.clients)?;

    // Decisions: each partner scrapes through node 1's gateway until quarantined.
    say(&format!(
        "timing {} decisions from detection to every node…",
        o.decisions
    ));
    let gw_cfg = crate::api_client::config_in(&gateway_cert)?;
    // The same persons for every partner: the partner role's window counts distinct records.
    let targets: Vec<String> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .step_by(8)
        .take(12)
        .map(|p| p.cnss.clone())
        .collect();
    let record = record_id(&rt, &cfg, &gw_addr(1), &targets[0])?;
    let mut enforced = Vec::new();
    let mut committed = Vec::new();
    for (k, dir_k) in partners.iter().enumerate() {
        let name = format!("bench.partner-{k}");
        let pcfg = crate::api_client::config_in(dir_k)?;
        let token = rt.block_on(async {
            let mut c = Connection::open(pcfg.clone(), &gw_addr(1), "127.0.0.1", false).await?;
            crate::api_client::token(&mut c, 900).await
        })?;
        let before = in_force_everywhere(&dirs[0])?;
        let mut t0 = None;
        for cnss in &targets {
            let (status, why) = ask(
                &rt,
                &pcfg,
                &gw_addr(1),
                "GET",
                &format!("/v1/persons/{cnss}?purpose=partner-verification"),
                Some(&token),
                None,
            )?;
            if status == 403 && why == "quarantined" {
                t0 = Some(Instant::now());
                break;
            }
            if status != 200 {
                bail!("partner read answered {status} {why}");
            }
        }
        let Some(t0) = t0 else {
            bail!("node 1's detectors did not quarantine a scraping partner");
        };
        // Every other gateway and every custodian refuse the partner (asked as a gateway
        // forwards the partner's read: with the request the partner signed).
        let signer = pcfg
            .signer
            .clone()
            .context("the partner's identity has no key to sign with")?;
        let partial = |index: usize| -> Result<Vec<u8>> {
            let asked = ribat_custodian::request::Asked::signed_by(
                &signer,
                "GET",
                &format!("/v1/persons/{}?purpose=partner-verification", targets[0]),
                b"",
                &token,
            )?;
            Ok(serde_json::to_vec(&serde_json::json!({
                "request_id": format!("bench-{k}-{index}"),
                "requester": {"identity": name, "role": "partner"},
                "purpose": "partner-verification",
                "table": "persons",
                "class": "identity",
                "record_ids": [record],
                "token": token,
                "asked": asked,
            }))?)
        };
        let mut pending_gw: Vec<u64> = (2..=o.nodes as u64).collect();
        let mut pending_custodian: Vec<usize> = (0..o.nodes).collect();
        let mut pending_state = true;
        let mut enforced_at = None;
        while enforced_at.is_none() || pending_state {
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("decision {k} did not reach every node within 30 s");
            }
            let mut still = Vec::new();
            for g in pending_gw {
                let (status, why) = ask(
                    &rt,
                    &pcfg,
                    &gw_addr(g),
                    "GET",
                    &format!("/v1/persons/{}?purpose=partner-verification", targets[0]),
                    Some(&token),
                    None,
                )?;
                if !(status == 403 && why == "quarantined") {
                    still.push(g);
                }
            }
            pending_gw = still;
            let mut still = Vec::new();
            for c in pending_custodian {
                let (status, why) = ask(
                    &rt,
                    &gw_cfg,
                    &addrs[c],
                    "POST",
                    "/v1/partial",
                    None,
                    Some(partial(c)?),
                )?;
                if !(status == 403 && why == format!("quarantined {name}")) {
                    still.push(c);
                }
            }
            pending_custodian = still;
            if enforced_at.is_none() && pending_gw.is_empty() && pending_custodian.is_empty() {
                enforced_at = Some(t0.elapsed());
            }
            if pending_state && in_force_everywhere(&dirs[0])? > before {
                committed.push(t0.elapsed().as_secs_f64() * 1e3);
                pending_state = false;
            }
        }
        if let Some(e) = enforced_at {
            enforced.push(e.as_secs_f64() * 1e3);
        }
    }

    // The leader killed: reads through a gateway on a node that does not lead.
    let members = ribat_node::mesh::status(&dirs[0])?;
    let leader = ribat_node::mesh::majority_leader(&members).context("no leader")?;
    let reader_node = (1..=o.nodes as u64)
        .find(|i| *i != leader)
        .context("no node other than the leader")?;
    say(&format!(
        "killing the leader (node-{leader}) while reading through node-{reader_node}'s gateway…"
    ));
    let reader = gw_addr(reader_node);
    let token = rt.block_on(async {
        let mut c = Connection::open(cfg.clone(), &reader, "127.0.0.1", false).await?;
        crate::api_client::token(&mut c, 900).await
    })?;
    let mut outcomes: Vec<(Instant, bool)> = Vec::new();
    let mut first_failure = None;
    let start = Instant::now();
    let mut killed = false;
    let mut k = 0usize;
    while start.elapsed() < Duration::from_secs(8) {
        if !killed && start.elapsed() > Duration::from_secs(1) {
            let idx = usize::try_from(leader - 1).unwrap_or(0);
            mesh.procs[idx] = None;
            killed = true;
        }
        let (status, why) = ask(
            &rt,
            &cfg,
            &reader,
            "GET",
            &format!("/v1/persons/{}?purpose=pension-run", cnss[k % cnss.len()]),
            Some(&token),
            None,
        )?;
        if status != 200 && first_failure.is_none() {
            first_failure = Some(format!(
                "{status} {why} at {} ms after the kill",
                start.elapsed().as_millis().saturating_sub(1_000)
            ));
        }
        outcomes.push((Instant::now(), status == 200));
        k += 1;
    }
    let mut longest = Duration::ZERO;
    let mut last_ok = start;
    for (t, ok) in &outcomes {
        if *ok {
            longest = longest.max(t.duration_since(last_ok));
            last_ok = *t;
        }
    }
    longest = longest.max(
        start
            .elapsed()
            .saturating_sub(last_ok.duration_since(start)),
    );
    let leader_killed = LeaderKilled {
        leader: format!("node-{leader}"),
        reads_through: format!("node-{reader_node}"),
        longest_gap_ms: longest.as_secs_f64() * 1e3,
        failed_reads: outcomes.iter().filter(|(_, ok)| !ok).count(),
        reads: outcomes.len(),
        first_failure,
    };
    drop(mesh);

    let report = Report {
        nodes: o.nodes,
        threshold,
        persons: o.persons,
        clients: o.clients,
        ratio: Side::of(&mesh_reads).reads_per_s / Side::of(&embedded_reads).reads_per_s.max(1e-9),
        mesh_reads: Side::of(&mesh_reads),
        embedded_reads: Side::of(&embedded_reads),
        decisions: enforced.len(),
        enforced_everywhere: Spread::of(enforced),
        committed_everywhere: Spread::of(committed),
        leader_killed,
    };
    if o.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let (m, e) = (&report.mesh_reads, &report.embedded_reads);
        println!(
            "reads through custodians on {} nodes: {:.0} reads/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            report.nodes, m.reads_per_s, m.p50_ms, m.p99_ms, m.errors
        );
        println!(
            "embedded node (same fund, same clients): {:.0} reads/s, p50 {:.2} ms, p99 {:.2} ms, {} errors",
            e.reads_per_s, e.p50_ms, e.p99_ms, e.errors
        );
        println!("ratio (mesh / embedded): {:.2}", report.ratio);
        println!(
            "detection → refused by every node's gateway and custodian, {} decisions: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            report.decisions,
            report.enforced_everywhere.p50_ms,
            report.enforced_everywhere.p99_ms,
            report.enforced_everywhere.max_ms
        );
        println!(
            "detection → committed in every node's replicated state: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            report.committed_everywhere.p50_ms,
            report.committed_everywhere.p99_ms,
            report.committed_everywhere.max_ms
        );
        let l = &report.leader_killed;
        println!(
            "leader {} killed, reading through {}: longest gap between successful reads {:.0} ms, {} of {} reads failed{}",
            l.leader,
            l.reads_through,
            l.longest_gap_ms,
            l.failed_reads,
            l.reads,
            l.first_failure
                .as_ref()
                .map_or(String::new(), |f| format!(" (first: {f})"))
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The smallest count of restrictions in force among the members (every one answering).
fn in_force_everywhere(dir: &Path) -> Result<usize> {
    let members = ribat_node::mesh::status(dir)?;
    Ok(members
        .iter()
        .map(|m| m.status.as_ref().map_or(0, |s| s.in_force))
        .min()
        .unwrap_or(0))
}

/// The vault's record id of the person `cnss`, as the gateway names it.
pub(crate) fn record_id(
    rt: &tokio::runtime::Runtime,
    cfg: &ribat_net::client::ClientSide,
    addr: &str,
    cnss: &str,
) -> Result<String> {
    let r = rt.block_on(async {
        let mut c = Connection::open(cfg.clone(), addr, "127.0.0.1", false).await?;
        let token = crate::api_client::token(&mut c, 900).await?;
        Ok::<_, ribat_node::NodeError>(
            c.send(
                "GET",
                &format!("/v1/persons/{cnss}?purpose=pension-run"),
                Some(&token),
                None,
            )
            .await?,
        )
    })?;
    Ok(r.json()["record_id"]
        .as_str()
        .map(str::to_owned)
        .context("no record id in the gateway's answer")?)
}
