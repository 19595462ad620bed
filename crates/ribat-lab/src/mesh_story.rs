//! The demo's mesh section: three node processes on loopback, one custodian each; a node
//! killed and reads going on; the 2025 attack on node 1's gateway refused by the other
//! nodes through the replicated security state; a custodian moved to a new node by
//! resharing while a clerk reads, the old share left worthless.

use crate::bench::node::{free_addr, wait_listening};
use crate::home::Home;
use ribat_net::client::Connection;
use ribat_node::mesh::{InitSpec, NodeChild};
use ribat_node::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One GET on a fresh connection, with a fresh token: status and the problem's detail (or
/// a field).
fn get(
    rt: &tokio::runtime::Runtime,
    cfg: &ribat_net::client::ClientSide,
    addr: &str,
    path: &str,
) -> Result<(u16, serde_json::Value)> {
    let token = token_of(rt, cfg, addr)?;
    get_with(rt, cfg, addr, path, &token)
}

/// A token for `cfg`'s certificate from the gateway at `addr` (five minutes).
fn token_of(
    rt: &tokio::runtime::Runtime,
    cfg: &ribat_net::client::ClientSide,
    addr: &str,
) -> Result<String> {
    rt.block_on(async {
        let mut c = Connection::open(cfg.clone(), addr, "127.0.0.1", false).await?;
        crate::api_client::token(&mut c, 300).await
    })
}

/// One GET on a fresh connection with `token`.
fn get_with(
    rt: &tokio::runtime::Runtime,
    cfg: &ribat_net::client::ClientSide,
    addr: &str,
    path: &str,
    token: &str,
) -> Result<(u16, serde_json::Value)> {
    rt.block_on(async {
        let mut c = Connection::open(cfg.clone(), addr, "127.0.0.1", false).await?;
        let r = c.send("GET", path, Some(token), None).await?;
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
        token_service: vec![],
    })?;
    println!(
        "ribat mesh init: three node directories in {}, to carry to three hosts:",
        out.display()
    );
    for d in &dirs {
        let held = ribat_node::mesh::held_custodians(&Home::at(d.clone()))?;
        let mesh = ribat_node::mesh::MeshFile::read(d)?;
        println!(
            "  {}: custodian {} only, its shares sealed under its own passphrase{}",
            d.display(),
            held.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            match (
                mesh.gateway.is_some(),
                mesh.token_service.contains(&mesh.id)
            ) {
                (true, false) => "; a gateway, which holds no token key",
                (true, true) => "; a gateway, and the identity service (the token key) beside it",
                (false, true) => "; the identity service (the token key)",
                (false, false) => "",
            }
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
    // Committed is not yet applied everywhere: node-1 takes the grant a moment later.
    let started = Instant::now();
    loop {
        let status = rt.block_on(async {
            let mut c = Connection::open(clerk.clone(), &gw1, "127.0.0.1", false).await?;
            Ok::<_, ribat_node::NodeError>(c.send("POST", "/v1/token", None, None).await?.status)
        })?;
        if status == 200 {
            break;
        }
        if started.elapsed() > Duration::from_secs(15) {
            ribat_node::bail!(
                "node-1's gateway did not take the grant within 15 s (HTTP {status}); see its node.log"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ordinary: Vec<&str> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .map(|p| p.cnss.as_str())
        .collect();
    let counter = |cnss: &str| format!("/v1/persons/{cnss}?purpose=counter-service");
    // The clerk signs in once, at the start of the shift (through node-2's gateway, which
    // forwards the signed token request to the identity service).
    let shift = token_of(&rt, &clerk, &gw2)?;
    println!(
        "clerk.casa-anfa.0042 signs its token request at node-2's gateway, which holds no token key and forwards it to the identity service"
    );
    say_read(
        "clerk.casa-anfa.0042",
        "node-1's gateway",
        ordinary[0],
        &get_with(&rt, &clerk, &gw1, &counter(ordinary[0]), &shift)?,
    );
    nodes[2] = None;
    println!("node-3 killed (SIGKILL): its custodian is gone");
    say_read(
        "clerk.casa-anfa.0042",
        "node-1's gateway",
        ordinary[1],
        &get_with(&rt, &clerk, &gw1, &counter(ordinary[1]), &shift)?,
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
    reshare_story(&ReshareStory {
        home,
        out: &out,
        dirs: &dirs,
        exe: &exe,
        rt: &rt,
        clerk: &clerk,
        gw1: &gw1,
        read: &counter(ordinary[2]),
        cnss: ordinary[2],
    })?;
    drop(nodes);
    println!(
        "try it: ribat mesh up --dir /tmp/mesh --import {},{}",
        source.join("employers.csv").display(),
        source.join("persons.csv").display()
    );
    Ok(())
}

/// What the resharing episode needs from the rest of the story.
struct ReshareStory<'a> {
    home: &'a Home,
    out: &'a Path,
    dirs: &'a [PathBuf],
    exe: &'a Path,
    rt: &'a tokio::runtime::Runtime,
    clerk: &'a ribat_net::client::ClientSide,
    gw1: &'a str,
    read: &'a str,
    cnss: &'a str,
}

/// node-2's host is taken: custodian 2 moves to a new node-4 by resharing, with reads
/// going on and no record re-sealed; the copy of node-2's share the intruder took is
/// worthless afterwards.
fn reshare_story(s: &ReshareStory<'_>) -> Result<()> {
    println!(
        "node-2's host is taken: two administrators move custodian 2 to a new node-4 by resharing"
    );
    // What the intruder copies: custodian 2's directory, and (say) its passphrase.
    let stolen_dir = s.dirs[1].join("custodians/custodian-2");
    let stolen = ribat_custodian::keystore::load(
        &stolen_dir,
        &crate::passphrases::Source::Dir(s.home.root().join("mesh-passphrases")).get(2, false)?,
    )?;
    let store = ribat_node::mesh::MeshFile::read(&s.dirs[0])?
        .store
        .context("node-1's mesh.json names no store")?;
    let n4 = ribat_node::mesh::prepare_node(
        s.out,
        &free_addr()?,
        None,
        Some(ribat_node::StoreSpec::parse(&store, "ribat")?),
    )?;
    // node-4's operator has a passphrase of its own for the custodian it will hold.
    let passes4 = s.home.root().join("mesh-passphrases-node-4");
    crate::passphrases::random_files(&passes4, 2)?;
    let _node4 = NodeChild::start(s.exe, &n4, &passes4)?;
    let admins = ["sec.amina", "sec.youssef"];
    let key = |a: &str| s.out.join("admins").join(format!("{a}.key"));
    let joining = ribat_node::mesh::joining(&n4)?;
    let approvals = admins
        .iter()
        .map(|a| ribat_node::mesh::approve_membership(&key(a), a, &joining))
        .collect::<Result<Vec<_>>>()?;
    ribat_node::mesh::change_membership(&s.dirs[0], joining, approvals)?;
    let current = ribat_node::reshare::custodians(&s.dirs[0])?;
    let statement = ribat_node::reshare::statement(
        &current,
        &["custodian-2".into()],
        &["node-4".into()],
        None,
        "demo: node-2's host was taken",
    )?;
    let approvals = admins
        .iter()
        .map(|a| ribat_node::reshare::approve(&key(a), a, &statement))
        .collect::<Result<Vec<_>>>()?;
    let p = ribat_node::reshare::propose(&s.dirs[0], statement, approvals)?;
    println!("  node-4 added, then {}", ribat_node::mesh::describe(&p)?);
    let started = Instant::now();
    let mut reads = (0, 0);
    let set = loop {
        // A clerk reads all along.
        match get(s.rt, s.clerk, s.gw1, s.read)?.0 {
            200 => reads.0 += 1,
            _ => reads.1 += 1,
        }
        let c = ribat_node::reshare::custodians(&s.dirs[0])?;
        if c.set.number == 2 {
            break c.set;
        }
        if started.elapsed() > Duration::from_secs(60) {
            ribat_node::bail!("the resharing did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    println!(
        "  custodians 1 and 3 dealt new shares to custodians 1, 2 (node-4) and 3 over mTLS; custodian set 2 in force after {} ms ({} of {}: {}), meanwhile {} reads answered and {} refused",
        started.elapsed().as_millis(),
        set.threshold,
        set.holders.len(),
        ribat_node::reshare::holders_line(&set.holders),
        reads.0,
        reads.1
    );
    let started = Instant::now();
    while stolen_dir
        .join(ribat_custodian::keystore::SHARES_FILE)
        .exists()
    {
        if started.elapsed() > Duration::from_secs(30) {
            ribat_node::bail!("node-2 kept custodian 2's shares");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("  node-2 erased custodian 2's shares and answers no one");
    say_read(
        "  clerk.casa-anfa.0042",
        "node-1's gateway (custodians of set 2)",
        s.cnss,
        &get(s.rt, s.clerk, s.gw1, s.read)?,
    );
    // The intruder's copy with custodian 1's new share: the point of the key they would
    // rebuild, against the group key no record stopped using. Node-1 puts the set in force
    // at the same log entry as node-2, but its switch (promote, unseal the new share) may
    // finish a moment later: wait for it.
    let n1_dir = s.dirs[0].join("custodians/custodian-1");
    let started = Instant::now();
    while ribat_custodian::keystore::pending_set(&n1_dir)?.is_some()
        || !std::fs::read_to_string(s.dirs[0].join("group.json"))?.contains("\"set\": 2")
    {
        if started.elapsed() > Duration::from_secs(30) {
            ribat_node::bail!("node-1 did not put custodian set 2 in force within 30 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let new1 = ribat_custodian::keystore::load(
        &n1_dir,
        &crate::passphrases::Source::Dir(s.home.root().join("mesh-passphrases")).get(1, false)?,
    )?;
    let class = "identity";
    let l = ribat_crypto::combine::lagrange_at_zero(&[2, 1])?;
    let rebuilt = l[0] * stolen.shares[class].public() + l[1] * new1.shares[class].public();
    let y = stolen.group.class(class)?.group_key;
    println!(
        "  the intruder's copy of old share 2 with custodian 1's new share {} the identity key",
        match rebuilt == y {
            true => "REBUILDS",
            false => "rebuilds nothing of",
        }
    );
    Ok(())
}
