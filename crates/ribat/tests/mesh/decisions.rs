//! Decisions across nodes: restrict at once, relax by two administrators — quarantines,
//! step-ups, throttles and essential-services fallbacks carried by the log to every gateway
//! and custodian, through a paused node and a killed leader; policy and rules changes.

use crate::common;
use crate::support::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn in_force_everywhere(dir: &Path, want: u64) {
    every_member_says(dir, "in_force", want);
}

/// Waits until each of the three members reports `field` = `want` in its status.
fn every_member_says(dir: &Path, field: &str, want: u64) {
    let start = Instant::now();
    loop {
        let s = status(dir);
        if s.len() == 3 && s.iter().all(|m| m["status"][field].as_u64() == Some(want)) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not {field} = {want} on every node: {s:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_restriction_proposed_from_any_node_binds_all_and_only_two_administrators_lift_it() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = three_node_mesh(&out);
    let nodes: Vec<NodeProcess> = dirs.iter().map(|d| start(d)).collect();
    agreed_leader(&dirs[0], &[1, 2, 3]);
    let dir = |i: usize| dirs[i].to_str().unwrap().to_owned();

    // Node 3 decides (whoever leads); every node enforces once it is committed.
    let o = ribat(&[
        "mesh",
        "restrict",
        "--dir",
        &dir(2),
        "--identity",
        "partner.broker-y",
        "--reason",
        "cnss-bulk from the broker's certificate",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("restriction "))
        .unwrap()
        .to_owned();
    assert!(id.starts_with("node-3/"), "{id}");
    in_force_everywhere(&dirs[0], 1);

    // I6: every node killed with SIGKILL at once; restarted from their directories, each
    // holds the committed restriction again (from its own log and snapshot on disk).
    drop(nodes);
    let _nodes: Vec<NodeProcess> = dirs.iter().map(|d| start(d)).collect();
    agreed_leader(&dirs[0], &[1, 2, 3]);
    in_force_everywhere(&dirs[0], 1);

    let approve = |who: &str| {
        approval(
            &out,
            who,
            &["--id", &id, "--reason", "the broker's contract was checked"],
        )
    };
    let (a1, a2) = (approve("sec.amina"), approve("sec.youssef"));
    let release = |approvals: &[&str]| {
        let mut args = vec![
            "mesh".to_owned(),
            "release".into(),
            "--dir".into(),
            dir(1),
            "--id".into(),
            id.clone(),
            "--reason".into(),
            "the broker's contract was checked".into(),
        ];
        for a in approvals {
            args.push("--approval".into());
            args.push((*a).into());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ribat(&args)
    };
    // One administrator twice is still one.
    let o = release(&[&a1, &a1]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("1 distinct administrator signature(s) where 2 are needed"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    in_force_everywhere(&dirs[0], 1);
    // A second approval forged in sec.youssef's name with sec.amina's key: committed, and
    // refused by every node's state machine (whoever carried it, the leader included).
    let forged = approval_with_key_of(
        &out,
        "sec.amina",
        "sec.youssef",
        &["--id", &id, "--reason", "the broker's contract was checked"],
    );
    let o = release(&[&a1, &forged]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("the signature of `sec.youssef` does not verify"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    in_force_everywhere(&dirs[0], 1);
    let o = release(&[&a1, &a2]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("Released"));
    in_force_everywhere(&dirs[2], 0);
}

/// The custodian log entries of the custodian in node directory `dir` about `identity`.
fn custodian_acts(dir: &Path, index: usize, identity: &str) -> Vec<(String, String)> {
    ribat_custodian::served_log::ServedLog::read(&dir.join(format!("custodians/custodian-{index}")))
        .unwrap()
        .into_iter()
        .filter(|e| {
            e.identity == identity && (e.outcome == "quarantined" || e.outcome == "released")
        })
        .map(|e| (e.outcome, e.reason.unwrap_or_default()))
        .collect()
}

#[test]
fn the_2025_attack_on_one_gateway_binds_every_node_even_one_down_through_it_and_two_administrators_lift_it()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let mut nodes = running_with_fund(d.path(), &dirs, (200, 8, 1, 41));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    issue(&deployment, "partner.scraper", "partner", "insurer-x");
    let who = deployment.join("identity/issued/partner.scraper");
    let partner = Clerk::new(dirs[0].join("ca.pem"), who.clone());
    let read = |gw: &str, cnss: &str| partner_read(gw, &partner, cnss);
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(200, 8, 1, 41));
    let spread: Vec<&str> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .step_by(8)
        .map(|p| p.cnss.as_str())
        .collect();

    // Node 3 is down (SIGKILL) when the partner's certificate scrapes the register
    // through node 1's gateway: no direct word from that gateway can reach it.
    nodes[2] = None;
    let mut exposed = 0;
    let mut refused = None;
    for c in &spread[..20] {
        let r = read(&gw1, c);
        if r.status == 200 {
            assert!(refused.is_none(), "served after a refusal");
            exposed += 1;
        } else {
            refused.get_or_insert_with(|| common::api::problem(&r));
        }
    }
    assert_eq!(refused.as_deref(), Some("quarantined"));
    assert!(exposed <= 9, "{exposed} records exposed");

    // Back from its directory, node 3's custodian imposes the quarantine from the mesh's
    // log (signed by node 1), durably in its own log.
    nodes[2] = Some(start(&dirs[2]));
    let started = Instant::now();
    let id = loop {
        let acts = custodian_acts(&dirs[2], 3, "partner.scraper");
        if let Some(id) = acts
            .iter()
            .find(|(o, _)| o == "quarantined")
            .and_then(|(_, why)| why.strip_prefix("mesh restriction "))
        {
            break id.to_owned();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "node 3 never enforced the mesh's restriction: {acts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(id.starts_with("node-1/"), "{id}");
    in_force_everywhere(&dirs[0], 1);
    // The other nodes endorse it once their custodians carried it out: signed by t = 2
    // members (node 1 and an endorser), it is mesh-wide on every node.
    every_member_says(&dirs[0], "mesh_wide", 1);
    // Node 2's gateway never saw the attack; its custodians refuse the partner anyway.
    let r = read(&gw2, spread[21]);
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(common::api::problem(&r), "quarantined");

    // Two administrators' signed approvals release it through the mesh; every custodian
    // lifts it, node 3's included, and node 2's gateway serves the partner again.
    let approve = |admin: &str| {
        approval(
            &out,
            admin,
            &["--id", &id, "--reason", "insurer-x's integration was fixed"],
        )
    };
    let (a1, a2) = (approve("sec.amina"), approve("sec.youssef"));
    let o = ribat(&[
        "mesh",
        "release",
        "--dir",
        dirs[1].to_str().unwrap(),
        "--id",
        &id,
        "--reason",
        "insurer-x's integration was fixed",
        "--approval",
        &a1,
        "--approval",
        &a2,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    in_force_everywhere(&dirs[0], 0);
    for (i, dir) in dirs.iter().enumerate() {
        let started = Instant::now();
        while !custodian_acts(dir, i + 1, "partner.scraper")
            .iter()
            .any(|(o, _)| o == "released")
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never lifted on node {}",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Each gateway lifts what it held once it applied the release (node 1's own decision
    // included, by the same signatures): a bounded wait, as every node applies the
    // committed release on its own.
    for (gw, c) in [(&gw2, spread[22]), (&gw1, spread[23])] {
        let started = Instant::now();
        loop {
            let r = read(gw, c);
            if r.status == 200 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the gateway at {gw} still refuses: {}",
                String::from_utf8_lossy(&r.body)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn signal(p: &NodeProcess, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &p.0.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success(), "kill {sig}");
}

#[test]
fn a_node_paused_through_a_restriction_carries_it_out_before_it_answers_again_and_lifts_it_only_once_released()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 9));
    let gw2 = gateway_addr(&dirs[1]);
    let deployment = out.join("deployment");
    issue(&deployment, "partner.x", "partner", "insurer-x");
    let ca = dirs[0].join("ca.pem");
    let token = common::api::token(&gw2, &ca, &deployment.join("identity/issued/partner.x"));
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 9));
    // The record's id in the vault, as the gateway names it to the partner.
    let record = {
        let who = deployment.join("identity/issued/partner.x");
        let r = common::api::call(
            &gw2,
            common::api::config(&ca, Some(&who)),
            "GET",
            &format!(
                "/v1/persons/{}?purpose=partner-verification",
                fund.persons[2].cnss
            ),
            Some(&token),
            None,
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["record_id"].as_str().unwrap().to_owned()
    };
    // Custodian 3 asked directly with node 2's gateway certificate and the partner's token:
    // exactly what any gateway forwards for this partner.
    let gateway_cert = dirs[1].join("identity/issued/gateway.embedded");
    let node3 = Direct::every(&dirs, &ca, &gateway_cert).remove(2);
    let calls = std::cell::Cell::new(0);
    let partner = common::api::signer(&deployment.join("identity/issued/partner.x"));
    let ask = || {
        calls.set(calls.get() + 1);
        let signed = ribat_custodian::request::Asked::signed_by(
            &partner,
            "GET",
            &format!(
                "/v1/persons/{}?purpose=partner-verification",
                fund.persons[2].cnss
            ),
            b"",
            &token,
        )
        .unwrap();
        let r = node3.ask_as_signed(
            &format!("direct-{}", calls.get()),
            ("partner.x", "partner"),
            "partner-verification",
            std::slice::from_ref(&record),
            Some(&token),
            Some(signed),
        );
        let v = r.json();
        let why = v["denial"]["denial"]
            .as_str()
            .or(v["error"].as_str())
            .unwrap_or("")
            .to_owned();
        // Whom a quarantine refuses: the partner, or the gateway asking.
        let why = match v["denial"]["identity"].as_str() {
            Some(who) => format!("{why} {who}"),
            None => why,
        };
        (r.status, why)
    };
    let eventually = |want: u16, within: Duration| {
        let started = Instant::now();
        loop {
            let (status, why) = ask();
            if status == want {
                return why;
            }
            assert!(
                started.elapsed() < within,
                "never {want}: last {status} {why}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    // These direct requests are audited by no gateway: custodian 3's disagreement detector
    // would rightly stop answering node 2's gateway certificate after its grace. Two
    // administrators set that rule to alert only, through the log, for this test.
    rules_in_force(&out, &dirs[0], 1, |r| {
        r["disagreement"]["mode"] = "shadow".into()
    });
    // Committed is not yet carried out: custodian 3's detectors must run on them before it
    // is asked (and paused), or its first tick after the pause could judge by the old ones.
    carried_out(&dirs[0], 3, "custodian-3", (0, 1));
    eventually(200, Duration::from_secs(15));

    // Paused through the restriction (longer than a node may go without confirming).
    signal(nodes[2].as_ref().unwrap(), "-STOP");
    let o = ribat(&[
        "mesh",
        "restrict",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--identity",
        "partner.x",
        "--reason",
        "seen scraping through node 1",
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let id = String::from_utf8_lossy(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("restriction "))
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    std::thread::sleep(Duration::from_millis(ribat_node::mesh::FRESH_FOR_MS + 500));
    signal(nodes[2].as_ref().unwrap(), "-CONT");
    // From its first answer on, custodian 3 never serves the partner: unavailable while it
    // catches up, then quarantined.
    let started = Instant::now();
    let mut unavailable = 0;
    loop {
        let (status, why) = ask();
        assert_ne!(
            status, 200,
            "custodian 3 served a restricted identity after its pause"
        );
        if status == 503 {
            assert!(
                why.contains("has not confirmed the mesh's security state"),
                "{why}"
            );
            unavailable += 1;
        }
        if status == 403 && why == "quarantined partner.x" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{status} {why}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("custodian 3 said it was catching up {unavailable} times before refusing");

    // Paused again through the release: it lifts only once it applied the committed release.
    signal(nodes[2].as_ref().unwrap(), "-STOP");
    let approve = |admin: &str| {
        approval(
            &out,
            admin,
            &["--id", &id, "--reason", "checked with insurer-x"],
        )
    };
    let (a1, a2) = (approve("sec.amina"), approve("sec.youssef"));
    let o = ribat(&[
        "mesh",
        "release",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--id",
        &id,
        "--reason",
        "checked with insurer-x",
        "--approval",
        &a1,
        "--approval",
        &a2,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    signal(nodes[2].as_ref().unwrap(), "-CONT");
    let started = Instant::now();
    loop {
        let (status, why) = ask();
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never 200 after the release: last {status} {why}; custodian 3's log about partner.x: {:?}",
            custodian_acts(&dirs[2], 3, "partner.x")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let acts = custodian_acts(&dirs[2], 3, "partner.x");
    assert_eq!(
        acts.iter().map(|(o, _)| o.as_str()).collect::<Vec<_>>(),
        ["quarantined", "released"],
        "{acts:?}"
    );
}

#[test]
fn a_policy_travels_through_the_log_by_two_administrators_and_every_gateway_and_custodian_decides_by_it()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 19));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let clerk = Clerk::granted(&out, &dirs, "clerk.amal", "agency-casa-anfa");
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 19));
    let cnss = |i: usize| fund.persons[i].cnss.clone();
    assert_eq!(clerk.read(&gw1, &cnss(0)).status, 200);
    assert_eq!(clerk.read(&gw2, &cnss(1)).status, 200);
    // Version 1: the counters no longer read at all (the clerk role is gone).
    let mut policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("policy.json")).unwrap())
            .unwrap();
    policy["roles"].as_object_mut().unwrap().remove("clerk");
    let file = d.path().join("policy-v1.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&policy).unwrap()).unwrap();
    let approve = |who: &str, f: &Path| {
        approval(
            &out,
            who,
            &["--policy", f.to_str().unwrap(), "--version", "1"],
        )
    };
    let set = |f: &Path, approvals: &[&str]| {
        let mut args = vec![
            "mesh",
            "set-policy",
            "--dir",
            dirs[2].to_str().unwrap(),
            "--file",
            f.to_str().unwrap(),
            "--version",
            "1",
        ];
        for a in approvals {
            args.extend(["--approval", a]);
        }
        ribat(&args)
    };
    let amina = approve("sec.amina", &file);
    let o = set(&file, &[&amina]);
    assert!(
        !o.status.success(),
        "one administrator put a policy in force"
    );
    assert!(
        common::text(&o).contains("where 2 are needed"),
        "{}",
        common::text(&o)
    );
    // Approvals of one file do not carry another (its text is what they signed).
    let youssef = approve("sec.youssef", &file);
    let other = d.path().join("policy-other.json");
    let mut changed = policy.clone();
    changed["roles"].as_object_mut().unwrap().remove("partner");
    std::fs::write(&other, serde_json::to_vec_pretty(&changed).unwrap()).unwrap();
    let o = set(&other, &[&amina, &youssef]);
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("does not verify"),
        "{}",
        common::text(&o)
    );
    assert_eq!(clerk.read(&gw1, &cnss(2)).status, 200);
    // A file no node could read is refused before anything is signed.
    let broken = d.path().join("policy-broken.json");
    std::fs::write(&broken, b"{\"roles\": 3}").unwrap();
    let o = approve_with(
        "sec.amina",
        &out,
        "sec.amina",
        &["--policy", broken.to_str().unwrap(), "--version", "1"],
    );
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("policy-broken.json"),
        "{}",
        common::text(&o)
    );
    let o = set(&file, &[&amina, &youssef]);
    assert!(o.status.success(), "{}", common::text(&o));
    // Every gateway refuses the clerk by the new policy, and every custodian decides by it
    // (and keeps it in its directory for its next start).
    let started = Instant::now();
    loop {
        let (a, b) = (clerk.read(&gw1, &cnss(3)), clerk.read(&gw2, &cnss(4)));
        if a.status == 403 && b.status == 403 {
            assert_eq!(common::api::problem(&a), "role-unknown");
            assert_eq!(common::api::problem(&b), "role-unknown");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the clerk still reads: {} {}",
            a.status,
            b.status
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    for (i, dir) in dirs.iter().enumerate() {
        let kept = dir.join(format!("custodians/custodian-{}/policy.json", i + 1));
        let started = Instant::now();
        loop {
            let p: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(&kept).unwrap()).unwrap();
            if p["roles"].get("clerk").is_none() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "custodian {} still decides by the old policy",
                i + 1
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for m in status(&dirs[0]) {
        assert_eq!(m["status"]["policy"][0], 1, "{m}");
    }
    for i in 1..=3 {
        carried_out(&dirs[0], i, &format!("custodian-{i}"), (1, 0));
    }
    for i in 1..=2 {
        carried_out(&dirs[0], i, &format!("gateway.node-{i}"), (1, 0));
    }
    // The same version again is stale.
    let o = set(&file, &[&amina, &youssef]);
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("version 1 is not above 1, the one in force"),
        "{}",
        common::text(&o)
    );
}

/// Waits until node `id` (asked from `dir`) says its `part` carried out `want` (policy
/// version, rules version): committed is not yet carried out.
fn carried_out(dir: &Path, id: usize, part: &str, want: (u64, u64)) {
    let started = Instant::now();
    loop {
        let s = status(dir);
        let got = &s[id - 1]["status"]["carried"][part];
        if got[0] == want.0 && got[1] == want.1 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "node-{id}'s {part} carried out {got}, not {want:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A partner's reads of `persons` through `gateway` until one is refused; the statuses.
fn partner_reads(gateway: &str, partner: &Clerk, persons: &[String]) -> Vec<u16> {
    let token = common::api::token(gateway, &partner.ca, &partner.who);
    let mut statuses = Vec::new();
    for cnss in persons {
        let r = common::api::call(
            gateway,
            partner.cfg.clone(),
            "GET",
            &format!("/v1/persons/{cnss}?purpose=partner-verification"),
            Some(&token),
            None,
        )
        .unwrap();
        statuses.push(r.status);
        if r.status != 200 {
            assert_eq!(
                common::api::problem(&r),
                "quarantined",
                "{}",
                String::from_utf8_lossy(&r.body)
            );
            break;
        }
    }
    statuses
}

#[test]
fn detection_rules_travel_through_the_log_by_two_administrators_and_every_gateway_detects_by_them()
{
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (40, 3, 1, 23));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    let partner = |name: &str| {
        let (who, _) = issue(&deployment, name, "partner", "insurer-atlas");
        Clerk::new(dirs[0].join("ca.pem"), who)
    };
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(40, 3, 1, 23));
    let ordered: Vec<String> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .take(12)
        .map(|p| p.cnss.clone())
        .collect();
    assert_eq!(ordered.len(), 12);
    // From both ends in turn: no walk through the number space (another rule's business).
    let persons: Vec<String> = (0..6)
        .flat_map(|i| [ordered[i].clone(), ordered[11 - i].clone()])
        .collect();
    // By the ceremony's rules, a partner reading 9 persons within 10 s is quarantined.
    let reads = partner_reads(&gw1, &partner("partner.before"), &persons);
    assert_eq!(reads.last(), Some(&403), "{reads:?}");
    let decided = ribat(&["--home", dirs[0].to_str().unwrap(), "decisions", "list"]);
    assert!(
        common::text(&decided).contains("velocity"),
        "{}",
        common::text(&decided)
    );
    // Version 1: the velocity rule off (say, while a partner's yearly reconciliation runs).
    let mut rules: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dirs[0].join("rules.json")).unwrap())
            .unwrap();
    rules["velocity"]["mode"] = "off".into();
    let file = d.path().join("rules-v1.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&rules).unwrap()).unwrap();
    let approve = |who: &str, what: &str| {
        approval(&out, who, &[what, file.to_str().unwrap(), "--version", "1"])
    };
    let set = |approvals: &[&str]| {
        let mut args = vec![
            "mesh",
            "set-rules",
            "--dir",
            dirs[1].to_str().unwrap(),
            "--file",
            file.to_str().unwrap(),
            "--version",
            "1",
        ];
        for a in approvals {
            args.extend(["--approval", a]);
        }
        ribat(&args)
    };
    // Rules are not a policy: nobody is asked to sign them as one.
    let o = approve_with(
        "sec.amina",
        &out,
        "sec.amina",
        &["--policy", file.to_str().unwrap(), "--version", "1"],
    );
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("rules-v1.json"),
        "{}",
        common::text(&o)
    );
    let (ra, rb) = (
        approve("sec.amina", "--rules"),
        approve("sec.youssef", "--rules"),
    );
    let o = set(&[&ra]);
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("where 2 are needed"),
        "{}",
        common::text(&o)
    );
    let o = set(&[&ra, &rb]);
    assert!(o.status.success(), "{}", common::text(&o));
    let started = Instant::now();
    while status(&dirs[0])
        .iter()
        .any(|m| m["status"]["rules"][0] != 1)
    {
        assert!(started.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(200));
    }
    // Every gateway now detects by them (once it says it carried them out): a partner reads
    // the twelve on either gateway.
    for i in 1..=2 {
        carried_out(&dirs[0], i, &format!("gateway.node-{i}"), (0, 1));
    }
    for (gw, name, dir) in [
        (&gw1, "partner.after-1", &dirs[0]),
        (&gw2, "partner.after-2", &dirs[1]),
    ] {
        let reads = partner_reads(gw, &partner(name), &persons);
        let decided = ribat(&["--home", dir.to_str().unwrap(), "decisions", "list"]);
        assert_eq!(
            reads,
            vec![200; 12],
            "{name} on {gw}; its node decided:\n{}",
            common::text(&decided)
        );
    }
}

/// A partner's read through `gateway` with a fresh token.
fn partner_read(gateway: &str, partner: &Clerk, cnss: &str) -> ribat_net::client::Response {
    let token = partner.token(gateway);
    common::api::call(
        gateway,
        partner.cfg.clone(),
        "GET",
        &format!("/v1/persons/{cnss}?purpose=partner-verification"),
        Some(&token),
        None,
    )
    .unwrap()
}

/// The id in the mesh of the decision node `dir`'s own detectors took by `action`.
fn mesh_id_of(dir: &Path, node: &str, action: &str) -> String {
    let o = ribat(&[
        "--home",
        dir.to_str().unwrap(),
        "decisions",
        "list",
        "--json",
    ]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let row = rows
        .iter()
        .find(|r| {
            let a = &r["decision"]["action"];
            a == action || a.get(action).is_some() // `{"throttle": {"per_minute": 2}}`
        })
        .unwrap_or_else(|| panic!("no {action} decision on {node}: {rows:?}"));
    format!("{node}/{}", row["decision"]["id"].as_str().unwrap())
}

#[test]
fn a_throttle_and_a_roles_essential_services_fallback_decided_on_one_node_hold_at_every_gateway_until_two_administrators_release_them()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (40, 3, 1, 23));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    let names = [
        "partner.a",
        "partner.b",
        "partner.c",
        "partner.d",
        "partner.e",
    ];
    let issued: Vec<PathBuf> = names
        .iter()
        .chain(&["partner.t"])
        .map(|n| issue_only(&deployment, n, "partner", "insurer-atlas").0)
        .collect();
    let (officer, _) = issue_only(&deployment, "sec.console", "security", "cnss-soc");
    grant(
        &out,
        &issued
            .iter()
            .chain([&officer])
            .map(PathBuf::as_path)
            .collect::<Vec<_>>(),
    );
    let partners: Vec<Clerk> = issued
        .iter()
        .map(|w| Clerk::new(dirs[0].join("ca.pem"), w.clone()))
        .collect();
    let clerk = Clerk::granted(&out, &dirs, "clerk.counter", "agence-fes");
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(40, 3, 1, 23));
    let ordered: Vec<String> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .take(12)
        .map(|p| p.cnss.clone())
        .collect();
    // From both ends in turn: no walk through the number space (another rule's business).
    let persons: Vec<String> = (0..6)
        .flat_map(|i| [ordered[i].clone(), ordered[11 - i].clone()])
        .collect();

    // Rules version 1: the partners' role surges past 6 distinct persons in ten minutes.
    rules_in_force(&out, &dirs[0], 1, |r| {
        r["role-surge"]["limits"]["partner"] = 6.into();
    });
    // Four partners read two persons each on node 1's gateway, none above its own
    // history: the role stands out, no identity does, and node 1 falls back to essential
    // services from the seventh person on.
    let mut statuses = Vec::new();
    'reads: for (i, p) in partners[..4].iter().enumerate() {
        for cnss in &persons[2 * i..2 * i + 2] {
            let r = partner_read(&gw1, p, cnss);
            statuses.push(r.status);
            if r.status != 200 {
                assert_eq!(common::api::problem(&r), "essential-only", "{statuses:?}");
                break 'reads;
            }
        }
    }
    assert!(
        statuses.len() >= 7 && statuses[..6] == [200; 6],
        "{statuses:?}"
    );
    let fallback = mesh_id_of(&dirs[0], "node-1", "essential");
    in_force_everywhere(&dirs[0], 1);
    // Node 2's gateway saw none of it: a fifth partner is refused there all the same,
    // naming node 1's decision; a clerk at a counter (an essential role) is served.
    let r = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let r = partner_read(&gw2, &partners[4], &persons[8]);
        match r.status {
            503 => Ok(r),
            s => Err(format!("node 2's gateway answered {s}, not 503")),
        }
    });
    assert_eq!(common::api::problem(&r), "essential-only");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(&fallback), "{detail}");
    let r = clerk.read(&gw2, &persons[9]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Node 1's console shows the decision with the commands that release it through the
    // log, and no form that would lift it at this gateway only.
    let local = fallback.strip_prefix("node-1/").unwrap();
    let page = console_page(
        &gw1,
        &dirs[0],
        &officer,
        &format!("/console/decisions/{local}"),
    );
    assert!(page.contains("ribat mesh approve"), "{page}");
    assert!(page.contains(&format!("--id {fallback}")), "{page}");
    assert!(!page.contains("<form"), "{page}");
    // Nor are certificates issued or revoked from a mesh node's page: through the log.
    let page = console_page(&gw1, &dirs[0], &officer, "/console/identities");
    assert!(page.contains("ribat mesh revoke"), "{page}");
    assert!(page.contains("data-identity=\"sec.console\""), "{page}");
    assert!(!page.contains("<form"), "{page}");
    // Nor does the API lift it at this gateway alone.
    let sec = Clerk::new(dirs[0].join("ca.pem"), officer.clone());
    let r = common::api::call(
        &gw1,
        sec.cfg.clone(),
        "POST",
        &format!("/v1/decisions/{local}/release"),
        Some(&sec.token(&gw1)),
        Some(serde_json::json!({"reason": "one gateway only"})),
    )
    .unwrap();
    assert_eq!(
        (r.status, common::api::problem(&r).as_str()),
        (409, "release-through-the-mesh")
    );
    assert!(
        String::from_utf8_lossy(&r.body).contains(&format!("--id {fallback}")),
        "{}",
        String::from_utf8_lossy(&r.body)
    );

    // Two administrators release it through the mesh: both gateways serve partners again
    // (node 1's own decision lifted by the same signatures).
    let why = "a partner's yearly reconciliation, announced";
    let (a1, a2) = (
        approval(&out, "sec.amina", &["--id", &fallback, "--reason", why]),
        approval(&out, "sec.youssef", &["--id", &fallback, "--reason", why]),
    );
    let o = ribat(&[
        "mesh",
        "release",
        "--dir",
        dirs[1].to_str().unwrap(),
        "--id",
        &fallback,
        "--reason",
        why,
        "--approval",
        &a1,
        "--approval",
        &a2,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    in_force_everywhere(&dirs[0], 0);
    let served_again = |gw: &str, p: &Clerk| {
        poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
            let r = partner_read(gw, p, &persons[0]);
            match r.status {
                200 => Ok(()),
                s => Err(format!(
                    "{gw} still answers {s}: {}",
                    String::from_utf8_lossy(&r.body)
                )),
            }
        })
    };
    served_again(&gw2, &partners[4]);

    // Rules version 2: the role's limit back (at 6 node 1 would still see the role
    // surging, and now single out whichever partner reads there next), and a partner
    // reading too fast is throttled to two requests a minute rather than quarantined.
    rules_in_force(&out, &dirs[0], 2, |r| {
        r["role-surge"]["limits"]["partner"] = 300.into();
        r["velocity"]["action"] = serde_json::json!({"throttle": {"per_minute": 2}});
    });
    served_again(&gw1, &partners[1]);
    let t = &partners[5];
    let mut statuses = Vec::new();
    for cnss in &persons {
        let r = partner_read(&gw1, t, cnss);
        statuses.push(r.status);
        if r.status != 200 {
            assert_eq!(common::api::problem(&r), "throttled", "{statuses:?}");
            break;
        }
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let throttle = mesh_id_of(&dirs[0], "node-1", "throttle");
    // Node 2's gateway throttles the partner by node 1's decision, never having seen it
    // read more than one person: at most two reads a minute there too.
    let r = poll_until(Duration::from_secs(10), Duration::from_millis(300), || {
        let r = partner_read(&gw2, t, &persons[0]);
        match r.status {
            429 => Ok(r),
            s => Err(format!("node 2's gateway answered {s}, not 429")),
        }
    });
    assert_eq!(common::api::problem(&r), "throttled");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains(&throttle), "{detail}");
    let r = partner_read(&gw2, t, &persons[1]);
    assert_eq!(r.status, 429, "{}", String::from_utf8_lossy(&r.body));
    let r = partner_read(&gw2, &partners[4], &persons[1]);
    assert_eq!(r.status, 200, "only the throttled partner is slowed down");
}

#[test]
fn the_leader_killed_in_the_middle_of_an_attack_the_quarantine_still_reaches_every_live_node() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2, 3]);
    let mut nodes = running_with_fund(d.path(), &dirs, (200, 8, 1, 43));
    let (leader, _) = agreed_leader(&dirs[0], &[1, 2, 3]);
    // The attacked gateway is on a node that does not lead; the third node neither leads
    // nor sees the attack.
    let attacked = (1..=3u64).find(|i| *i != leader).unwrap();
    let third = (1..=3u64).find(|i| *i != leader && *i != attacked).unwrap();
    let dir = |i: u64| dirs[(i - 1) as usize].clone();
    let gw = gateway_addr(&dir(attacked));
    let deployment = out.join("deployment");
    let (who, _) = issue(&deployment, "partner.scraper", "partner", "insurer-x");
    let partner = Clerk::new(dirs[0].join("ca.pem"), who.clone());
    let read = |gw: &str, cnss: &str| partner_read(gw, &partner, cnss);
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(200, 8, 1, 43));
    let spread: Vec<&str> = fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .step_by(8)
        .map(|p| p.cnss.as_str())
        .collect();
    let mut exposed = 0;
    let mut refused = None;
    for (k, c) in spread[..20].iter().enumerate() {
        if k == 3 {
            // SIGKILL to the leader, three reads into the attack.
            nodes[(leader - 1) as usize] = None;
        }
        let r = read(&gw, c);
        if r.status == 200 {
            assert!(refused.is_none(), "served after a refusal");
            exposed += 1;
        } else {
            refused.get_or_insert_with(|| common::api::problem(&r));
        }
    }
    assert_eq!(refused.as_deref(), Some("quarantined"));
    assert!(exposed <= 9, "{exposed} records exposed");
    // The two live nodes elect a new leader, commit the attacked gateway's restriction,
    // and the third node's custodian carries it out from the log (its reason names the
    // mesh's restriction, not only the attacked gateway's direct word).
    let started = Instant::now();
    loop {
        let acts = custodian_acts(&dir(third), third as usize, "partner.scraper");
        if acts.iter().any(|(o, why)| {
            o == "quarantined" && why.starts_with(&format!("mesh restriction node-{attacked}/"))
        }) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "node-{third} never carried out the mesh's restriction: {acts:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // On both live nodes it is in force and mesh-wide (the attacked node decided, the
    // third endorsed: t = 2), and the third node's gateway refuses the partner too.
    let started = Instant::now();
    loop {
        let s = status(&dir(attacked));
        let live: Vec<&serde_json::Value> = [attacked, third]
            .iter()
            .map(|i| &s[(*i - 1) as usize])
            .collect();
        if live
            .iter()
            .all(|m| m["status"]["in_force"] == 1 && m["status"]["mesh_wide"] == 1)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not in force mesh-wide on both live nodes: {live:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let r = read(&gateway_addr(&dir(third)), spread[21]);
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(common::api::problem(&r), "quarantined");
}
