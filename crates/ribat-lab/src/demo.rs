//! `ribat demo`: a small fund sealed in a fresh embedded node, then the story of who can
//! read what: a database thief, a clerk, a supervisor, a partner scraping, a honey touch,
//! a custodian down.

use crate::embedded::Embedded;
use crate::home::Home;
use crate::passphrases;
use ribat_crypto::passphrase::KdfParams;
use ribat_custodian::{Custodian, PartialRequest, QuorumError, QuorumReader, Requester};
use ribat_gateway::{Access, AuditFirstError, read_audited};
use ribat_import::records::RecordSealer;
use ribat_node::bail;
use ribat_node::{Context, Result};
use ribat_policy::{Class, Purpose, Role, Table};
use ribat_sim::FundSpec;
use std::sync::Arc;

const MARKER: &str = ".ribat-demo";

/// Options of the demo.
pub struct DemoOptions {
    /// Persons to generate.
    pub persons: usize,
    /// Seed of the fund.
    pub seed: u64,
}

fn section(title: &str) {
    println!(
        "\n── {title} {}",
        "─".repeat(70usize.saturating_sub(title.len()))
    );
}

const CLERK: Role = Role::constant("clerk");
const SUPERVISOR: Role = Role::constant("supervisor");
const PARTNER: Role = Role::constant("partner");
const COUNTER_SERVICE: Purpose = Purpose::constant("counter-service");
const INVESTIGATION: Purpose = Purpose::constant("investigation");
const PARTNER_VERIFICATION: Purpose = Purpose::constant("partner-verification");

fn request(
    who: &Requester,
    purpose: Purpose,
    table: Table,
    class: Class,
    ids: &[&str],
    n: usize,
) -> PartialRequest {
    PartialRequest {
        set: None,
        epoch: None,
        request_id: format!("demo-{n}"),
        requester: who.clone(),
        purpose,
        table,
        class,
        record_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        token: None,
        asked: None,
    }
}

/// The institution a demo identity belongs to, as the audit log records it.
fn institution(identity: &str) -> &'static str {
    match identity.split('.').next() {
        Some("clerk") => "CNSS agence Casa-Anfa",
        Some("supervisor") => "CNSS inspection",
        Some("partner") => "partner system",
        _ => "CNSS operations",
    }
}

/// A read through `reader` whose plaintext is released only once audited (I2).
fn audited(
    reader: &QuorumReader,
    node: &Embedded,
    req: &PartialRequest,
) -> Result<ribat_custodian::QuorumRead, AuditFirstError> {
    let fields: Vec<&str> = crate::read::PERSON_FIELDS
        .iter()
        .filter(|(_, c)| *c == req.class)
        .map(|(f, _)| *f)
        .collect();
    let time_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    read_audited(
        reader,
        &node.vault.audit,
        req,
        Access {
            institution: institution(&req.requester.identity),
            fields: &fields,
            time_ms,
            subject: None,
        },
    )
}

fn text(fields: &ribat_crypto::envelope::OpenedFields, name: &str) -> String {
    fields
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn mad(centimes: &str) -> String {
    let c: u64 = centimes.parse().unwrap_or(0);
    format!("{}.{:02} MAD", c / 100, c % 100)
}

/// Prepares `home/demo`, refusing to touch a directory that a demo did not create.
fn demo_home(home: &Home) -> Result<Home> {
    let dir = home.root().join("demo");
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by `ribat demo`; move it away or use another --home",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot clear the previous demo in {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(
        dir.join(MARKER),
        b"made by ribat demo; removed by the next one\n",
    )?;
    Ok(Home::at(dir))
}

/// Runs the demo.
pub fn run(home: &Home, opts: &DemoOptions) -> Result<()> {
    let home = demo_home(home)?;
    println!("Ribat demo — node directory {}", home.root().display());

    section("1. a synthetic fund and the files it would hold");
    let spec = FundSpec::new(opts.persons, (opts.persons / 12).max(3), 2, opts.seed);
    let source = home.root().join("source");
    let fund = ribat_sim::files::write(&spec, &source)?;
    crate::describe_fund(&fund, &source);
    println!(
        "({} honey persons, listed apart in ribat-only/honey.csv for the custodians)",
        fund.persons.iter().filter(|p| p.honey).count()
    );

    section("2. key ceremony: 2 of 3 custodians, classes identity and financial");
    let pass = passphrases::random_files(&home.root().join("passphrases"), 3)?;
    crate::ceremony::init(
        &home,
        2,
        3,
        &ribat_import::records::SEALED_CLASSES,
        &pass,
        KdfParams::default(),
    )?;
    println!(
        "(demo only: the three passphrases are in {}/passphrases, owner-only; in production three people hold them)",
        home.root().display()
    );

    section("3. import: validated, sealed with the public keys only, stored");
    let summary = crate::import::run(
        &home,
        &pass,
        &crate::import::ImportOptions {
            inputs: vec![
                source.join("employers.csv"),
                source.join("persons.csv"),
                source.join("ebds"),
            ],
            honey: Some(source.join("ribat-only/honey.csv")),
            public_figures: Some(source.join("ribat-only/sensitive.csv")),
            report: None,
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        },
    )?;
    if !summary.rejects.is_empty() {
        bail!(
            "the demo's own files were rejected: {:?}",
            summary.rejects.first()
        );
    }
    let node = Embedded::open(&home, &pass)?;
    let sealer = RecordSealer::new(&node.group, &node.vault.index)?;

    section("4. what a thief of the database file sees");
    let bytes = std::fs::read(home.store_file())?;
    let wal = std::fs::read(home.root().join("store.sqlite-wal")).unwrap_or_default();
    let sample: Vec<usize> = (0..5.min(fund.persons.len())).collect();
    let mut found = 0;
    for &i in &sample {
        let p = &fund.persons[i];
        let salary = fund
            .declarations
            .iter()
            .find(|d| d.person == i)
            .map_or(String::new(), |d| d.salary_real.to_string());
        for v in [&p.surname, &p.cin, &p.cnss, &p.rib, &salary] {
            if contains(&bytes, v.as_bytes()) || contains(&wal, v.as_bytes()) {
                found += 1;
            }
        }
    }
    let first = sealer.person_id(&fund.persons[0].cnss)?;
    let env = node
        .vault
        .store
        .envelope(Table::Persons.as_str(), &first, "identity")?
        .unwrap_or_default();
    println!(
        "store.sqlite + WAL: {} bytes; searching them for 5 persons' surname, CIN, CNSS, RIB and salary: {found} of 25 found",
        bytes.len() + wal.len()
    );
    println!("row {first} / identity, first 48 bytes of its envelope:");
    println!("  {}", hex::encode(env.get(..48).unwrap_or(&env)));

    section("5. a clerk at a counter finds a person by CNSS number");
    let clerk = Requester {
        identity: "clerk.casa-anfa.0042".into(),
        role: CLERK,
    };
    let target = fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .context("empty fund")?;
    let rid = crate::read::one(crate::read::by_cnss(&node, &target.cnss)?, "CNSS number")?;
    let read = audited(
        &node.vault.reader,
        &node,
        &request(
            &clerk,
            COUNTER_SERVICE,
            Table::Persons,
            Class::IDENTITY,
            &[&rid],
            1,
        ),
    )?;
    let f = &read.records[0].1;
    println!(
        "CNSS {} → {}: {} {} ({}), CIN {}, born {}, {} — combined from custodians {:?}",
        target.cnss,
        rid,
        text(f, "given"),
        text(f, "surname"),
        text(f, "name_ar"),
        text(f, "cin"),
        text(f, "birth_date"),
        text(f, "city"),
        read.served_by
    );
    match audited(
        &node.vault.reader,
        &node,
        &request(
            &clerk,
            COUNTER_SERVICE,
            Table::Persons,
            Class::FINANCIAL,
            &[&rid],
            2,
        ),
    ) {
        Err(e) => println!("the same clerk asks for the bank account: {e}"),
        Ok(_) => bail!("a clerk read the financial class; the policy is broken"),
    }

    section("6. a supervisor reads the bank account and salaries for an investigation");
    let sup = Requester {
        identity: "supervisor.casa.007".into(),
        role: SUPERVISOR,
    };
    let read = audited(
        &node.vault.reader,
        &node,
        &request(
            &sup,
            INVESTIGATION,
            Table::Persons,
            Class::FINANCIAL,
            &[&rid],
            3,
        ),
    )?;
    println!("RIB {}", text(&read.records[0].1, "rib"));
    let r = crate::read::Reader {
        who: sup.clone(),
        institution: institution(&sup.identity).into(),
        purpose: INVESTIGATION,
        token: None,
        asked: None,
    };
    for d in crate::read::history(&node, &r, &rid)? {
        println!(
            "declared {}: {} days, real salary {}, capped {}",
            d.period,
            d.days,
            mad(&d.salary_real_centimes),
            mad(&d.salary_capped_centimes)
        );
    }

    section("7. custodian 2 is unreachable: reads go on with 1 and 3");
    let others: Vec<Arc<dyn Custodian>> =
        vec![node.custodians[0].clone(), node.custodians[2].clone()];
    let degraded = QuorumReader::new(node.group.clone(), others, node.vault.store.clone());
    let read = audited(
        &degraded,
        &node,
        &request(
            &clerk,
            COUNTER_SERVICE,
            Table::Persons,
            Class::IDENTITY,
            &[&rid],
            4,
        ),
    )?;
    println!(
        "read {rid} again, served by custodians {:?}",
        read.served_by
    );
    let alone = QuorumReader::new(
        node.group.clone(),
        vec![node.custodians[0].clone() as Arc<dyn Custodian>],
        node.vault.store.clone(),
    );
    match audited(
        &alone,
        &node,
        &request(
            &clerk,
            COUNTER_SERVICE,
            Table::Persons,
            Class::IDENTITY,
            &[&rid],
            5,
        ),
    ) {
        Err(e) => println!("with custodian 1 alone: {e}"),
        Ok(_) => bail!("one custodian decrypted alone; I1 is broken"),
    }

    section("8. the 2025 case: a partner's valid credentials used to read everything");
    let partner = Requester {
        identity: "partner.insurer-x".into(),
        role: PARTNER,
    };
    let mut exposed = 0usize;
    let mut stop = None;
    for (n, p) in fund.persons.iter().filter(|p| !p.honey).enumerate() {
        let id = sealer.person_id(&p.cnss)?;
        match audited(
            &node.vault.reader,
            &node,
            &request(
                &partner,
                PARTNER_VERIFICATION,
                Table::Persons,
                Class::IDENTITY,
                &[&id],
                100 + n,
            ),
        ) {
            Ok(_) => exposed += 1,
            Err(e) => {
                stop = Some(e);
                break;
            }
        }
    }
    println!(
        "{exposed} of {} records read before the custodians refused, each on its own count: {}",
        fund.persons.len(),
        stop.map_or("never refused".to_owned(), |e| e.to_string())
    );

    section("9. a honey record is touched");
    let scraper = Requester {
        identity: "partner.broker-y".into(),
        role: PARTNER,
    };
    let bait = sealer.person_id(
        &fund
            .persons
            .iter()
            .find(|p| p.honey)
            .context("no honey person")?
            .cnss,
    )?;
    match audited(
        &node.vault.reader,
        &node,
        &request(
            &scraper,
            PARTNER_VERIFICATION,
            Table::Persons,
            Class::IDENTITY,
            &[&bait],
            9000,
        ),
    ) {
        Err(AuditFirstError::Quorum(QuorumError::Refused { denial, .. })) => {
            println!("refused: {denial}")
        }
        Err(e) => println!("refused: {e}"),
        Ok(_) => bail!("a honey record was served"),
    }
    let q: Vec<bool> = node
        .custodians
        .iter()
        .map(|c| c.is_quarantined(&scraper.identity))
        .collect::<Result<_, _>>()?;
    println!("quarantined at custodians 1, 2, 3: {q:?}");

    section("10. every custodian logged what it served and refused");
    for i in 1..=3 {
        let entries = ribat_custodian::served_log::ServedLog::read(&home.custodian_dir(i))?;
        let served = entries.iter().filter(|e| e.outcome == "served").count();
        let denied = entries.len() - served;
        println!(
            "custodian {i}: {served} answers served, {denied} refused or failed, in {}",
            home.custodian_dir(i).join("served").display()
        );
    }
    section("11. the audit log: cosigned by the custodians, asked who looked at this person");
    let cp = node.checkpoint()?;
    println!(
        "checkpoint at size {} cosigned by {} (quorum {}):",
        cp.size,
        cp.cosigned.join(", "),
        if cp.quorum_met { "met" } else { "NOT met" }
    );
    for line in cp.note.lines().take(3) {
        println!("  {line}");
    }
    for i in node.vault.audit.log().entries_of(&rid)? {
        let e = ribat_audit::AuditEntry::decode(&node.vault.audit.log().entry(i)?)?;
        println!(
            "  entry {i}: {} {} ({}) for {}: {} {:?}",
            e.outcome,
            e.role,
            e.institution,
            e.purpose,
            e.classes.join(","),
            e.fields
        );
    }
    println!(
        "verify it as an outsider: ribat audit verify {}",
        node.vault.audit.log().dir().display()
    );
    println!(
        "and as the person: ribat --home {} audit subject --cnss {} --passphrases dir:{}/passphrases",
        home.root().display(),
        target.cnss,
        home.root().display()
    );
    // The gateway process opens the same custodians and audit log: this one lets go first.
    drop((degraded, alone, node));
    section("12. the API: mTLS, a token bound to the certificate, policy and masks");
    api_story(&home, &target.cnss)?;
    section("13. the 2025 attack, replayed: a partner's credentials read everything they can");
    attack_story(&home, &fund)?;
    section("14. the mesh: three nodes, one custodian each, the security state replicated");
    crate::mesh_story::run(&home, &fund, &source)?;
    println!(
        "\nDone. Try: ribat --home {h} get --cnss {c} --purpose counter-service --passphrases dir:{h}/passphrases",
        h = home.root().display(),
        c = target.cnss
    );
    Ok(())
}

/// Section 12: the gateway as its own process, called as a partner system would.
fn api_story(home: &Home, cnss: &str) -> Result<()> {
    use ribat_net::client::Connection;
    let ca = crate::identity::init_quiet(home, &["localhost".into(), "127.0.0.1".into()])?;
    let partner =
        crate::identity::add_client_quiet(&ca, home, "partner.insurer-y", "partner", "insurer-y")?;
    let clerk = crate::identity::add_client_quiet(
        &ca,
        home,
        "clerk.casa-anfa.0042",
        "clerk",
        "CNSS agence Casa-Anfa",
    )?;
    println!(
        "identity CA and certificates in {}/identity",
        home.root().display()
    );
    let gw = crate::serve::spawn_gateway(home, &home.root().join("passphrases"))?;
    println!(
        "ribat serve listening on https://{} (client certificate required)",
        gw.addr
    );
    let config = |dir: &std::path::Path, with_cert: bool| -> Result<_> {
        let read = |f: &str| std::fs::read_to_string(dir.join(f)).with_context(|| f.to_owned());
        let key = zeroize::Zeroizing::new(read("key.pem")?);
        let cert = read("cert.pem")?;
        Ok(ribat_identity::tls::client_config(
            &read("ca.pem")?,
            with_cert.then_some((cert.as_str(), key.as_str())),
            false,
        )?)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let addr = gw.addr.as_str();
        let mut p = Connection::open(config(&partner, true)?, addr, "127.0.0.1", false).await?;
        let t = p.send("POST", "/v1/token", None, None).await?;
        let token = t.json()["token"].as_str().unwrap_or_default().to_owned();
        println!(
            "partner.insurer-y: POST /v1/token → {} (valid until {}, bound to its certificate)",
            t.status,
            t.json()["expires_at"].as_str().unwrap_or("?")
        );
        let path = format!("/v1/persons/{cnss}?purpose=partner-verification");
        let r = p.send("GET", &path, Some(&token), None).await?;
        println!("partner.insurer-y: GET /v1/persons/{cnss}?purpose=partner-verification → {}", r.status);
        println!("  {}", r.json()["fields"]);
        println!("  (CIN and birth date masked for partners; the Arabic name and city not in their field list)");
        let r = p.send("GET", &format!("/v1/persons/{cnss}?purpose=marketing"), Some(&token), None).await?;
        println!("same, purpose=marketing → {}: {}", r.status, r.json()["detail"].as_str().unwrap_or_default());
        let mut c = Connection::open(config(&clerk, true)?, addr, "127.0.0.1", false).await?;
        let r = c.send("GET", &path, Some(&token), None).await?;
        println!(
            "the partner's token replayed by clerk.casa-anfa.0042 → {}: {}",
            r.status,
            r.json()["detail"].as_str().unwrap_or_default()
        );
        match Connection::open(config(&partner, false)?, addr, "127.0.0.1", false).await {
            Ok(mut anon) => match anon.send("GET", "/healthz", None, None).await {
                Ok(r) => println!("no client certificate → HTTP {} (unexpected)", r.status),
                Err(e) => println!("no client certificate → refused before HTTP: {e}"),
            },
            Err(e) => println!("no client certificate → refused before HTTP: {e}"),
        }
        Ok::<_, ribat_node::NodeError>(())
    })?;
    println!(
        "try it: curl --cacert {d}/ca.pem --cert {d}/cert.pem --key {d}/key.pem -X POST https://127.0.0.1:8443/v1/token   (after `ribat --home {h} serve --passphrases dir:{h}/passphrases`)",
        d = partner.display(),
        h = home.root().display()
    );
    Ok(())
}

/// Section 13: `cnss-bulk` against the demo fund through the running gateway.
fn attack_story(home: &Home, fund: &ribat_sim::Fund) -> Result<()> {
    use ribat_net::client::Connection;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let ca = crate::identity::open_ca(home)?;
    let leaked = crate::identity::add_client_quiet(
        &ca,
        home,
        "partner.third-party-x",
        "partner",
        "third-party-x",
    )?;
    let amina = crate::identity::add_client_quiet(&ca, home, "sec.amina", "security", "cnss-soc")?;
    let gw = crate::serve::spawn_gateway(home, &home.root().join("passphrases"))?;
    let cnss: Vec<String> = fund
        .persons
        .iter()
        .filter(|p| !p.honey)
        .map(|p| p.cnss.clone())
        .collect();
    println!(
        "partner.third-party-x holds valid credentials, as the 2025 intruder did; it reads the register in order, 8 connections at once"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let cfg = crate::api_client::config_in(&leaked)?;
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let refused = std::sync::Arc::new(AtomicUsize::new(0));
    let started = std::time::Instant::now();
    let (got, first_refusal) = rt.block_on(async {
        let mut c = Connection::open(cfg.clone(), &gw.addr, "127.0.0.1", false).await?;
        let token = std::sync::Arc::new(crate::api_client::token(&mut c, 300).await?);
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (cfg, addr, token, next, refused, cnss) = (
                cfg.clone(),
                gw.addr.clone(),
                token.clone(),
                next.clone(),
                refused.clone(),
                cnss.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut c = Connection::open(cfg, &addr, "127.0.0.1", false).await?;
                let (mut got, mut first_no) = (0usize, None);
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= cnss.len() || refused.load(Ordering::SeqCst) >= 20 {
                        return Ok::<_, ribat_node::NodeError>((got, first_no));
                    }
                    let path = format!("/v1/persons/{}?purpose=partner-verification", cnss[i]);
                    let r = c.send("GET", &path, Some(&token), None).await?;
                    if r.status == 200 {
                        got += 1;
                    } else {
                        refused.fetch_add(1, Ordering::SeqCst);
                        first_no.get_or_insert((
                            started.elapsed(),
                            r.status,
                            r.json()["detail"].clone(),
                        ));
                    }
                }
            }));
        }
        let (mut got, mut first) = (0, None);
        for t in tasks {
            let (g, f) = t.await??;
            got += g;
            if let Some(f) = f
                && first
                    .as_ref()
                    .is_none_or(|x: &(std::time::Duration, u16, serde_json::Value)| f.0 < x.0)
            {
                first = Some(f);
            }
        }
        Ok::<_, ribat_node::NodeError>((got, first))
    })?;
    println!(
        "what the attacker got: {got} records of {} (in 2025: about two million)",
        cnss.len()
    );
    if let Some((at, status, detail)) = &first_refusal {
        println!(
            "when it was stopped: {} ms after its first request, HTTP {status}: {}",
            at.as_millis(),
            detail.as_str().unwrap_or_default()
        );
    }
    let decisions = rt.block_on(async {
        let mut c = Connection::open(
            crate::api_client::config_in(&amina)?,
            &gw.addr,
            "127.0.0.1",
            false,
        )
        .await?;
        let token = crate::api_client::token(&mut c, 60).await?;
        Ok::<_, ribat_node::NodeError>(
            c.send("GET", "/v1/decisions", Some(&token), None)
                .await?
                .json(),
        )
    })?;
    let all: Vec<ribat_detect::Decision> =
        serde_json::from_value(decisions["decisions"].clone()).unwrap_or_default();
    let key = ribat_gateway::watch::verifying_key(&home.root().join("decisions"))?;
    for d in all
        .iter()
        .filter(|d| d.target == ribat_detect::Target::Identity("partner.third-party-x".into()))
    {
        println!("which alert: rule `{}` — {}", d.rule, d.title);
        println!(
            "which decision: {} {} until {} UTC, enforced by {} {} ms after it was taken; signature {}",
            d.id,
            d.action,
            ribat_custodian::error_utc(d.until_ms / 1000),
            d.enforced_by.join(", "),
            d.enforced_ms.unwrap_or(d.time_ms).saturating_sub(d.time_ms),
            if d.verify(&key).is_ok() {
                "valid"
            } else {
                "INVALID"
            }
        );
        println!(
            "  lifted early only by two administrators: ribat --home {} decisions release {} --as sec.amina --reason …, then a second one",
            home.root().display(),
            d.id
        );
    }
    drop(gw);
    let mut reads = std::collections::BTreeSet::new();
    ribat_audit::journal::scan(
        &home.root().join("audit").join(ribat_audit::log::JOURNAL),
        0,
        |_, bytes, _| {
            if let Ok(e) = ribat_audit::AuditEntry::decode(bytes)
                && e.identity == "partner.third-party-x"
                && e.outcome == "released"
            {
                reads.insert(e.request_id);
            }
            Ok(())
        },
    )
    .map_err(|d| ribat_node::err!("reading the audit log: {d}"))?;
    println!(
        "what the audit log shows: {} releases to partner.third-party-x, each recorded before its plaintext left — the fund knows exactly whom to notify",
        reads.len()
    );
    println!(
        "the same against 200,000 persons, with counters and partners working beside it: ribat simulate --scenario cnss-bulk --persons 200000"
    );
    Ok(())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}
