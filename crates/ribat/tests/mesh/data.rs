//! The fund's data in a running mesh: the monthly intake through a gateway, bulk exports
//! within what the log allows, and PostgreSQL shared by nodes that each hold their own role
//! and leave nothing readable in a dump (I4).

use crate::common;
use crate::support::*;
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn the_monthly_intake_goes_into_a_running_mesh_through_a_gateway_and_a_node_killed_after_acknowledging_imports_it_when_back()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let mut nodes = running_with_fund(d.path(), &dirs, (20, 2, 1, 51));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    let ca = dirs[0].join("ca.pem");
    let (sender, _) = issue(&deployment, "intake.cnss", "intake", "cnss-intake");
    let (clerk_dir, _) = issue(&deployment, "clerk.amal", "clerk", "agency-casa-anfa");
    let clerk = Clerk::new(ca.clone(), clerk_dir);
    // The month's files, sent to node 1's gateway while all three nodes run: employers,
    // persons, then the e-BDS files, each once the one before is imported.
    let src = d.path().join("month");
    generate(&src, 60, 4, 2, 52);
    let o = ribat(&[
        "import",
        "--gateway",
        &gw1,
        "--identity",
        sender.to_str().unwrap(),
        src.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        said.contains("employers.csv: 4 records stored, 0 already stored, 0 line(s) refused"),
        "{said}"
    );
    assert!(
        said.contains("persons.csv: 60 records stored, 0 already stored, 0 line(s) refused"),
        "{said}"
    );
    let declared: u64 = said
        .lines()
        .filter(|l| l.contains("/ebds/DS_"))
        .map(|l| {
            assert!(l.contains(", 0 line(s) refused"), "{l}");
            l.split(": ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .sum();
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(60, 4, 2, 52));
    assert_eq!(declared, fund.declarations.len() as u64, "{said}");
    // Imported, the files are gone from node 1's disk: no person's number or CIN stays
    // there in plaintext (I4).
    let values: Vec<&str> = fund
        .persons
        .iter()
        .flat_map(|p| [p.cnss.as_str(), p.cin.as_str()])
        .collect();
    let intake = dirs[0].join("intake");
    assert_eq!(files_holding(&intake, &values), Vec::<PathBuf>::new());
    // Read through the other node's gateway, its custodians on every node.
    let p = fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .unwrap();
    let r = clerk.read(&gw2, &p.cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["fields"]["surname"], p.surname.as_str());
    // Sent again: nothing is stored twice.
    let o = ribat(&[
        "import",
        "--gateway",
        &gw2,
        "--identity",
        sender.to_str().unwrap(),
        src.join("persons.csv").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("persons.csv: 0 records stored, 60 already stored"),
        "{}",
        common::text(&o)
    );
    // Only the intake role sends, and only files the importer knows.
    let clerk_token = common::api::token(&gw1, &ca, &clerk.who);
    let sender_token = common::api::token(&gw1, &ca, &sender);
    let sender_cfg = common::api::config(&ca, Some(&sender));
    for (cfg, token, path, status, problem) in [
        (
            clerk.cfg.clone(),
            &clerk_token,
            "/v1/intake?purpose=register-intake&file=persons.csv",
            403,
            "purpose-not-allowed",
        ),
        (
            sender_cfg.clone(),
            &sender_token,
            "/v1/intake?purpose=register-intake&file=notes.txt",
            400,
            "bad-file-name",
        ),
        (
            sender_cfg.clone(),
            &sender_token,
            "/v1/intake?file=persons.csv",
            400,
            "purpose-required",
        ),
    ] {
        let r = common::api::call(
            &gw1,
            cfg,
            "POST",
            path,
            Some(token),
            Some(serde_json::json!("cnss,cin")),
        )
        .unwrap();
        assert_eq!(
            r.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(common::api::problem(&r), problem, "{path}");
    }
    // Node 1 killed after it acknowledged a file and began importing it (the state a crash
    // leaves): started again, it imports that file before anything else.
    nodes[0] = None;
    let late = d.path().join("late");
    generate(&late, 30, 2, 1, 53);
    let id = "00000000000a0001";
    let kept = dirs[0].join("intake").join(id);
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::copy(late.join("persons.csv"), kept.join("persons.csv")).unwrap();
    std::fs::write(
        dirs[0].join("intake").join(format!("{id}.json")),
        serde_json::to_vec(&serde_json::json!({
            "id": id, "file": "persons.csv", "bytes": 1, "sha256": "00", "by": "intake.cnss",
            "state": "importing", "done": 12, "total": 31, "stored": 0, "already": 0,
            "rejected": 0, "rejects": []
        }))
        .unwrap(),
    )
    .unwrap();
    nodes[0] = Some(start(&dirs[0]));
    agreed_leader(&dirs[0], &[1, 2, 3]);
    let state = poll_until(Duration::from_secs(60), Duration::from_millis(300), || {
        // Its gateway listens only once the custodians answer again: asked until it does.
        let token =
            match common::api::call(&gw1, sender_cfg.clone(), "POST", "/v1/token", None, None) {
                Ok(r) if r.status == 200 => r.json()["token"].as_str().unwrap().to_owned(),
                other => {
                    return Err(format!(
                        "node-1's gateway gives no token yet: {:?}",
                        other.map(|r| r.status)
                    ));
                }
            };
        let r = common::api::call(
            &gw1,
            sender_cfg.clone(),
            "GET",
            &format!("/v1/intake/{id}"),
            Some(&token),
            None,
        );
        match r {
            Ok(r) if r.status == 200 && r.json()["state"] == "done" => Ok(r.json()),
            other => Err(format!(
                "intake {id} never finished after the restart: {:?}",
                other.map(|r| r.json())
            )),
        }
    });
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 2, 1, 53));
    assert_eq!(
        state["stored"].as_u64().unwrap(),
        fund.persons.len() as u64,
        "{state}"
    );
    let values: Vec<&str> = fund
        .persons
        .iter()
        .flat_map(|p| [p.cnss.as_str(), p.cin.as_str()])
        .collect();
    assert_eq!(files_holding(&intake, &values), Vec::<PathBuf>::new());
    let p = fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .unwrap();
    let r = clerk.read(&gw2, &p.cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn in_a_mesh_an_export_is_read_only_within_what_two_administrators_allowed_through_the_log() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1]);
    let _nodes = running_with_fund(d.path(), &dirs, (60, 4, 1, 61));
    let gw = gateway_addr(&dirs[0]);
    let deployment = out.join("deployment");
    let ca = dirs[0].join("ca.pem");
    let mut who = std::collections::BTreeMap::new();
    for (name, role) in [
        ("sec.karim", "security"),
        ("sec.hind", "security"),
        ("partner.delta", "partner"),
        ("clerk.amal", "clerk"),
    ] {
        who.insert(name, issue(&deployment, name, role, "x").0);
    }
    let call = |name: &str, method: &str, path: &str, body: Option<serde_json::Value>| {
        let token = common::api::token(&gw, &ca, &who[name]);
        common::api::call(
            &gw,
            common::api::config(&ca, Some(&who[name])),
            method,
            path,
            Some(&token),
            body,
        )
        .unwrap()
    };
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(60, 4, 1, 61));
    let ordinary: Vec<&ribat_sim::Person> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .collect();
    let numbers: Vec<String> = ordinary.iter().take(20).map(|p| p.cnss.clone()).collect();
    // Filed and approved at node 1's export desk by two security officers, as in one node.
    let r = call(
        "sec.karim",
        "POST",
        "/v1/exports",
        Some(
            serde_json::json!({"recipient": "partner.delta", "purpose": "partner-export", "cnss": numbers}),
        ),
    );
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["id"].as_str().unwrap().to_owned();
    for officer in ["sec.karim", "sec.hind"] {
        let r = call(
            officer,
            "POST",
            &format!("/v1/exports/{id}/approve"),
            Some(serde_json::json!({})),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    // The desk's approvals are the node's own word: without the log's allowance every
    // custodian refuses the bulk read, and nothing is written.
    let run = || {
        call(
            "sec.karim",
            "POST",
            &format!("/v1/exports/{id}/run"),
            Some(serde_json::json!({})),
        )
    };
    let r = run();
    assert_ne!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        String::from_utf8_lossy(&r.body).contains("custodians refused"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    // Two administrators allow it through the log (one is not enough).
    let until = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let terms = [
        "--export",
        id.as_str(),
        "--recipient",
        "partner.delta",
        "--purpose",
        "partner-export",
        "--persons",
        "20",
        "--until",
        until.as_str(),
    ];
    let (a1, a2) = (
        approval(&out, "sec.amina", &terms),
        approval(&out, "sec.youssef", &terms),
    );
    let allow = |approvals: &[&str]| {
        let mut args = vec!["mesh", "allow-export", "--dir", dirs[1].to_str().unwrap()];
        args.extend_from_slice(&terms);
        for a in approvals {
            args.extend(["--approval", a]);
        }
        ribat(&args)
    };
    let o = allow(&[&a1]);
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("where 2 are needed"),
        "{}",
        common::text(&o)
    );
    let o = allow(&[&a1, &a2]);
    assert!(o.status.success(), "{}", common::text(&o));
    let ran = poll_until(Duration::from_secs(15), Duration::from_millis(200), || {
        let r = run();
        match r.status {
            200 => Ok(r.json()),
            _ => Err(String::from_utf8_lossy(&r.body).into_owned()),
        }
    });
    assert!(
        ran["rows"].as_u64().unwrap() > 20,
        "20 persons and canaries: {ran}"
    );
    let r = call(
        "partner.delta",
        "GET",
        &format!("/v1/exports/{id}/file"),
        None,
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Holding node 1's gateway certificate, somebody asks each custodian for 21 persons
    // under the export's name (a custodian the run did not ask has counted fewer than 20,
    // so the ask is past the allowance however many it answered): refused. Another
    // recipient, never allowed, needs an end user's token like any read.
    let other = call(
        "clerk.amal",
        "GET",
        &format!("/v1/persons/{}?purpose=counter-service", ordinary[30].cnss),
        None,
    );
    assert_eq!(
        other.status,
        200,
        "{}",
        String::from_utf8_lossy(&other.body)
    );
    let record = other.json()["record_id"].as_str().unwrap().to_owned();
    let gateway_cert = dirs[0].join("identity/issued/gateway.embedded");
    let persons: Vec<String> = (0..21)
        .map(|n| match n {
            0 => record.clone(),
            _ => format!("{record}-{n}"),
        })
        .collect();
    for (i, c) in Direct::every(&dirs, &ca, &gateway_cert).iter().enumerate() {
        let who = format!("custodian {}", i + 1);
        let r = c.ask(
            &format!("bulk-{i}"),
            ("export/partner.delta", "export"),
            "partner-export",
            &persons,
            None,
        );
        refused_with(&r, 403, "may read 20 distinct records", &who);
        let r = c.ask(
            &format!("bulk-other-{i}"),
            ("export/partner.other", "export"),
            "partner-export",
            &persons,
            None,
        );
        refused_with(&r, 401, "no end-user token", &who);
    }
}

/// The test cluster's connection string (from `.ci/run`), or `None` when the caller chose
/// to skip PostgreSQL (`RIBAT_SKIP_PG=1`).
fn pg_conninfo() -> Option<String> {
    match std::env::var("RIBAT_TEST_PG") {
        Ok(c) => Some(c),
        Err(_) if std::env::var("RIBAT_SKIP_PG").is_ok_and(|v| v == "1") => None,
        Err(_) => panic!(
            "RIBAT_TEST_PG is not set: run the tests through .ci/run, or set RIBAT_SKIP_PG=1"
        ),
    }
}

fn pg_tool(tool: &str) -> String {
    std::env::var("RIBAT_PG_BIN").map_or(tool.to_owned(), |b| format!("{b}/{tool}"))
}

#[test]
fn i4_a_mesh_on_postgresql_gives_each_node_its_own_role_and_its_dump_holds_nothing_readable() {
    let Some(conninfo) = pg_conninfo() else {
        return;
    };
    let schema = format!("mesh_{}", std::process::id());
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let addrs: Vec<String> = (0..3).map(|_| free_addr()).collect();
    let store = format!("postgres:{conninfo}");
    let o = ribat_cmd(&["--store", &store, "--store-schema", &schema, "mesh", "init"])
        .args(["--out", out.to_str().unwrap(), "--addrs", &addrs.join(",")])
        .args(["--admins", "sec.amina,sec.youssef", "--passphrases", "env"])
        .arg("--gateway")
        .arg(format!("1={}", free_addr()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let dirs: Vec<PathBuf> = (1..=3).map(|i| out.join(format!("node-{i}"))).collect();
    // Each node reaches the database as a role of its own.
    for (i, dir) in dirs.iter().enumerate() {
        let mesh: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("mesh.json")).unwrap()).unwrap();
        let role = format!("{schema}_node_{}", i + 1);
        assert!(
            mesh["store"]
                .as_str()
                .unwrap()
                .ends_with(&format!("user={role}")),
            "{mesh}"
        );
        assert_eq!(mesh["store_schema"], schema.as_str());
    }
    let _nodes = running_with_fund(d.path(), &dirs, (60, 4, 2, 21));
    let gw = gateway_addr(&dirs[0]);
    let deployment = out.join("deployment");
    issue(&deployment, "clerk.amal", "clerk", "agency-casa-anfa");
    let clerk = Clerk::new(
        dirs[0].join("ca.pem"),
        deployment.join("identity/issued/clerk.amal"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(60, 4, 2, 21));
    let p = fund.persons.iter().find(|p| !p.honey).unwrap();
    let r = clerk.read(&gw, &p.cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["fields"]["cin"], p.cin.as_str());

    // A node's role reads and writes rows, and may not drop, truncate or alter the schema.
    let as_node = |sql: &str| {
        std::process::Command::new(pg_tool("psql"))
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(format!("{conninfo} user={schema}_node_2"))
            .args(["-c", sql])
            .output()
            .unwrap()
    };
    let o = as_node(&format!("SELECT count(*) FROM {schema}.sealed"));
    assert!(o.status.success(), "{}", common::text(&o));
    for (sql, says) in [
        (format!("DROP TABLE {schema}.sealed"), "must be owner"),
        (format!("TRUNCATE {schema}.records"), "permission denied"),
        (
            format!("ALTER TABLE {schema}.records ADD COLUMN x int"),
            "must be owner",
        ),
        (
            format!("CREATE TABLE {schema}.mine (x int)"),
            "permission denied",
        ),
    ] {
        let o = as_node(&sql);
        assert!(!o.status.success(), "{sql} was allowed");
        assert!(
            common::text(&o).contains(says),
            "{sql}: {}",
            common::text(&o)
        );
    }

    // I4: the whole schema, as its owner dumps it, holds no personal value in clear.
    let dump = std::process::Command::new(pg_tool("pg_dump"))
        .args(["-d", &conninfo, "-n", &schema, "--no-owner"])
        .output()
        .unwrap();
    assert!(dump.status.success(), "{}", common::text(&dump));
    let needles = common::needles(&fund);
    let ac = aho_corasick::AhoCorasick::new(&needles).unwrap();
    let decoded = common::decode_bytea(&dump.stdout);
    if let Some(m) = ac.find(&decoded) {
        panic!(
            "pg_dump holds `{}` in clear",
            needles[m.pattern().as_usize()]
        );
    }
    assert!(
        ac.find(format!("\n{}\n", p.cin).as_bytes()).is_some(),
        "the search can fail"
    );
}
