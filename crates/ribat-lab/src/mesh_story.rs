//! The demo's mesh section: three node processes on loopback, one custodian each; a node
//! killed and reads going on; the 2025 attack on node 1's gateway refused by the other
//! nodes through the replicated security state.

use crate::bench::node::{free_addr, wait_listening};
use crate::home::Home;
use ribat_net::client::Connection;
use ribat_node::mesh::{InitSpec, NodeChild};
use ribat_node::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One GET on a fresh connection: status and the problem's detail (or a field).
fn get(
    rt: &tokio::runtime::Runtime,
    cfg: &std::sync::Arc<rustls::ClientConfig>,
    addr: &str,
    path: &str,
) -> Result<(u16, serde_json::Value)> {
    rt.block_on(async {
        let mut c = Connection::open(cfg.clone(), addr, "127.0.0.1", false).await?;
        let token = crate::api_client::token(&mut c, 300).await?;
        let r = c.send("GET", path, Some(&token), None).await?;
        Ok((r.status, r.json()))
    })
}

fn say_read(who: &str, via: &str, cnss: &str, answer: &(u16, serde_json::Value)) {
    match answer {
        (200, v) => println!(
            "{who} reads {cnss} through {via} → 200 ({} {})",
            v["fields"]["given"].as_str().unwrap_or("?"),
            v["fields"]["surname"].as_str().unwrap_or("?")
        ),
        (status, v) => println!(
            "{who} reads {cnss} through {via} → {status}: {}",
            v["detail"].as_str().unwrap_or_default()
        ),
    }
}

/// Runs the section in `home`, on the demo's generated files in `source`.
pub(crate) fn run(home: &Home, fund: &ribat_sim::Fund, source: &Path) -> Result<()> {
    let out = home.root().join("mesh");
    let passes_dir = home.root().join("mesh-passphrases");
    let passes = crate::passphrases::random_files(&passes_dir, 3)?;
    let addrs = (0..3).map(|_| free_addr()).collect::<Result<Vec<_>>>()?;
    let gateways = vec![(1, free_addr()?), (2, free_addr()?)];
    let dirs = ribat_node::mesh::init(&InitSpec {
        out: out.clone(),
        addrs,
        threshold: 2,
        admins: vec!["sec.amina".into(), "sec.youssef".into()],
        gateways: gateways.clone(),
        passphrases: passes,
        store: ribat_node::StoreSpec::Sqlite,
        kdf: ribat_crypto::passphrase::KdfParams::default(),
        attest_every: ribat_node::mesh::ATTEST_EVERY,
    })?;
    println!(
        "ribat mesh init: three node directories in {}, to carry to three hosts:",
        out.display()
    );
    for d in &dirs {
        let held = ribat_node::mesh::held_custodians(&Home::at(d.clone()))?;
        println!(
            "  {}: custodian {} only, its shares sealed under its own passphrase",
            d.display(),
            held.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    println!(
        "  {}: the CA and the identity register, and no share: whoever takes one machine holds at most one of the two shares a read needs",
        ribat_node::mesh::deployment_home(&out).root().display()
    );

    // Node 1's own process holds its audit log: the fund goes in through its directory first.
    let exe = std::env::current_exe().context("cannot find this program to start nodes")?;
    let mut nodes: Vec<Option<NodeChild>> = vec![
        None,
        Some(NodeChild::start(&exe, &dirs[1], &passes_dir)?),
        Some(NodeChild::start(&exe, &dirs[2], &passes_dir)?),
    ];
    let files: Vec<PathBuf> = vec![source.join("employers.csv"), source.join("persons.csv")];
    let node1 = ribat_node::mesh::adopt_store(Home::at(dirs[0].clone()))?;
    let started = Instant::now();
    loop {
        match crate::embedded::Embedded::open(&node1, &crate::passphrases::Source::Env) {
            Ok(node) => {
                crate::bench::node::import_fund(&node, &files)
                    .map_err(|e| ribat_node::err!("{e}"))?;
                break;
            }
            Err(_) if started.elapsed() < Duration::from_secs(60) => {
                std::thread::sleep(Duration::from_millis(300));
            }
            Err(e) => return Err(e),
        }
    }
    println!(
        "imported {} persons through node-1's directory, sealed with the public keys; custodians 2 and 3 opened the blind-index key over mTLS",
        fund.persons.len()
    );
    nodes[0] = Some(NodeChild::start(&exe, &dirs[0], &passes_dir)?);
    let members = ribat_node::mesh::wait_ready(&dirs[0], Duration::from_secs(60))?;
    println!("three `ribat node` processes, each with its custodian and its Raft member:");
    print!("{}", ribat_node::mesh::render(&members));

    let deployment = ribat_node::mesh::deployment_home(&out);
    let ca = crate::identity::open_ca(&deployment)?;
    let clerk_dir = crate::identity::add_client_quiet(
        &ca,
        &deployment,
        "clerk.casa-anfa.0042",
        "clerk",
        "CNSS agence Casa-Anfa",
    )?;
    let partner_dir = crate::identity::add_client_quiet(
        &ca,
        &deployment,
        "partner.third-party-x",
        "partner",
        "third-party-x",
    )?;
    let clerk = crate::api_client::config_in(&clerk_dir)?;
    let partner = crate::api_client::config_in(&partner_dir)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (gw1, gw2) = (gateways[0].1.clone(), gateways[1].1.clone());
    for a in [&gw1, &gw2] {
        wait_listening(&rt, &clerk, a)?;
    }
    // The CA made the two certificates; no node answers them until two administrators
    // grant them through the log.
    let (status, v) = rt.block_on(async {
        let mut c = Connection::open(clerk.clone(), &gw1, "127.0.0.1", false).await?;
        let r = c.send("POST", "/v1/token", None, None).await?;
        Ok::<_, ribat_node::NodeError>((r.status, r.json()))
    })?;
    println!(
        "clerk.casa-anfa.0042's certificate, fresh from the CA, asks node-1's gateway for a token → {status} {}",
        v["type"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
    );
    let p = ribat_node::grants::grant_by_ceremony_admins(
        &out,
        &dirs[0],
        &[clerk_dir.clone(), partner_dir.clone()],
        "demo: a counter clerk and a partner",
    )?;
    println!(
        "sec.amina and sec.youssef each sign a grant of both certificates; {}",
        ribat_node::mesh::describe(&p)?
    );
    let ordinary: Vec<&str> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .map(|p| p.cnss.as_str())
        .collect();
    let counter = |cnss: &str| format!("/v1/persons/{cnss}?purpose=counter-service");
    say_read(
        "clerk.casa-anfa.0042",
        "node-1's gateway",
        ordinary[0],
        &get(&rt, &clerk, &gw1, &counter(ordinary[0]))?,
    );
    nodes[2] = None;
    println!("node-3 killed (SIGKILL): its custodian is gone");
    say_read(
        "clerk.casa-anfa.0042",
        "node-1's gateway",
        ordinary[1],
        &get(&rt, &clerk, &gw1, &counter(ordinary[1]))?,
    );
    println!("  (custodians 1 and 2 answered: any 2 of 3 open a record)");
    nodes[2] = Some(NodeChild::start(&exe, &dirs[2], &passes_dir)?);
    ribat_node::mesh::wait_ready(&dirs[0], Duration::from_secs(60))?;
    println!("node-3 restarted from its directory and caught up");

    println!("partner.third-party-x scrapes the register through node-1's gateway, as in 2025:");
    let started = Instant::now();
    let mut got = 0;
    for cnss in ordinary.iter().step_by(7).take(40) {
        let (status, v) = get(
            &rt,
            &partner,
            &gw1,
            &format!("/v1/persons/{cnss}?purpose=partner-verification"),
        )?;
        if status == 200 {
            got += 1;
            continue;
        }
        println!(
            "  {got} records, then refused after {} ms: {}",
            started.elapsed().as_millis(),
            v["detail"].as_str().unwrap_or_default()
        );
        break;
    }
    // The restriction goes through the log, signed by node 1; node 3 applies it to its
    // custodian, node 2 to its gateway and custodian.
    let started = Instant::now();
    let id = loop {
        let entries =
            ribat_custodian::served_log::ServedLog::read(&dirs[2].join("custodians/custodian-3"))?;
        if let Some(id) = entries
            .iter()
            .filter(|e| e.identity == "partner.third-party-x" && e.outcome == "quarantined")
            .find_map(|e| e.reason.as_deref()?.strip_prefix("mesh restriction "))
        {
            break id.to_owned();
        }
        if started.elapsed() > Duration::from_secs(30) {
            ribat_node::bail!("node-3 never applied the restriction");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    println!(
        "node-1 signed restriction {id} with its node key and proposed it; committed, every node's state machine checked the signature"
    );
    println!("  node-3's custodian carried it out from the log (durably, in its own log)");
    let target = ordinary.get(300).copied().unwrap_or(ordinary[0]);
    say_read(
        "  partner.third-party-x",
        "node-2's gateway, which saw nothing of the attack",
        target,
        &get(
            &rt,
            &partner,
            &gw2,
            &format!("/v1/persons/{target}?purpose=partner-verification"),
        )?,
    );
    say_read(
        "  clerk.casa-anfa.0042",
        "node-2's gateway",
        target,
        &get(&rt, &clerk, &gw2, &counter(target))?,
    );
    let members = ribat_node::mesh::status(&dirs[1])?;
    print!("{}", ribat_node::mesh::render(&members));
    println!(
        "  lifted only by two administrators' signed approvals: ribat mesh approve --key {}/admins/sec.amina.key --as sec.amina --id {id} --reason …, the same by sec.youssef, then ribat mesh release",
        out.display()
    );
    drop(nodes);
    println!(
        "try it: ribat mesh up --dir /tmp/mesh --import {},{}",
        source.join("employers.csv").display(),
        source.join("persons.csv").display()
    );
    Ok(())
}
