//! Attestation and patch drift: a node on another build or with edited rules cut off until it
//! attests within the allowed set; a retired build listed and cut off after the grace.

use crate::common;
use crate::support::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How the members other than `node` that answer judge its attestation, each as `verdict`
/// or `verdict/why` (e.g. `isolated/unknown-release`).
fn judged(dir: &Path, node: &str) -> Vec<String> {
    status(dir)
        .iter()
        .filter(|m| m["name"] != node)
        .filter_map(|m| {
            let v = &m["status"]["attestation"][node];
            let verdict = v["verdict"].as_str()?;
            Some(match v["why"]["why"].as_str() {
                Some(why) => format!("{verdict}/{why}"),
                None => verdict.to_owned(),
            })
        })
        .collect()
}

/// Waits until both other members of a mesh of three judge `node` as `want`.
fn judged_by_peers(dir: &Path, node: &str, want: &str, within: Duration) {
    poll_until(within, Duration::from_millis(200), || {
        let j = judged(dir, node);
        match j.len() == 2 && j.iter().all(|v| v == want) {
            true => Ok(()),
            false => Err(format!(
                "{node} judged {j:?} by its peers, awaited `{want}` by both"
            )),
        }
    });
}

/// The partial decryptions custodian `index` in `dir` served for `identity`.
fn served_to(dir: &Path, index: usize, identity: &str) -> usize {
    ribat_custodian::served_log::ServedLog::read(&dir.join(format!("custodians/custodian-{index}")))
        .unwrap()
        .into_iter()
        .filter(|e| e.identity == identity && e.outcome == "served")
        .count()
}

/// How many times the gateway of the node in `dir` started listening (its log).
fn gateway_starts(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("node.log"))
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with("gateway listening on https://"))
        .count()
}

/// This ribat with one constant changed: the first letter of `ribat demo`'s help text,
/// in place — the same code and size, another executable, as a rebuild with one changed
/// constant would be (a real rebuild in a test would take minutes).
fn another_build(at: &Path) -> PathBuf {
    let path = at.join("ribat-rebuilt");
    let mut bytes = std::fs::read(env!("CARGO_BIN_EXE_ribat")).unwrap();
    let needle = b"Generate a small fund, seal it in a fresh embedded node";
    let found: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "the help text to change is in the binary once"
    );
    bytes[found[0]] = b'g';
    std::fs::write(&path, &bytes).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn sha256_hex(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

#[test]
fn a_node_on_another_build_or_with_edited_rules_is_cut_off_until_it_attests_within_the_allowed_set()
{
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    // Nodes attest every second; gateways on nodes 1 and 3.
    let dirs = mesh_made_with(&out, &[1, 3], &["--attest-every", "1"]);
    let ocsf = d.path().join("node-1-ocsf.jsonl");
    let mut nodes = running_with_fund_and(
        d.path(),
        &dirs,
        (20, 2, 1, 5),
        &["--ocsf", ocsf.to_str().unwrap()],
    );
    for node in ["node-1", "node-2", "node-3"] {
        judged_by_peers(&dirs[0], node, "attested", Duration::from_secs(20));
    }
    let (gw1, gw3) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[2]));
    issue(
        &out.join("deployment"),
        "clerk.nadia",
        "clerk",
        "agency-fes",
    );
    let clerk = Clerk::new(
        dirs[0].join("ca.pem"),
        out.join("deployment/identity/issued/clerk.nadia"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(20, 2, 1, 5));
    let cnss: Vec<&str> = fund.persons.iter().map(|p| p.cnss.as_str()).collect();
    let ok_read = |gw: &str, c: &str| {
        let r = clerk.read(gw, c);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    };
    ok_read(&gw1, cnss[0]);
    ok_read(&gw3, cnss[1]);

    // Node 3 restarted on another build (one constant changed): isolated as soon as it
    // attests, named in status.
    let rebuilt = another_build(d.path());
    nodes[2] = None;
    nodes[2] = Some(start_as(&rebuilt, &dirs[2], &[]));
    judged_by_peers(
        &dirs[0],
        "node-3",
        "isolated/unknown-release",
        Duration::from_secs(30),
    );
    let o = ribat(&["mesh", "status", "--dir", dirs[0].to_str().unwrap()]);
    let said = common::text(&o);
    let digest = sha256_hex(&rebuilt);
    assert!(
        said.contains(&format!(
            "node-3   isolated: it runs 0.1.0 (binary {})",
            &digest[..12]
        )) && said.contains("not in the allowed set"),
        "{said}"
    );
    // Node 1's gateway reads on through custodians 1 and 2 and never asks custodian 3.
    let before = served_to(&dirs[2], 3, "clerk.nadia");
    for c in &cnss[2..6] {
        ok_read(&gw1, c);
    }
    assert_eq!(served_to(&dirs[2], 3, "clerk.nadia"), before);
    // Its custodian, asked directly with node 1's gateway certificate, answers no one.
    let token = common::api::token(
        &gw1,
        &dirs[0].join("ca.pem"),
        &out.join("deployment/identity/issued/clerk.nadia"),
    );
    let record = {
        let r = clerk.read(&gw1, cnss[6]);
        r.json()["record_id"].as_str().unwrap().to_owned()
    };
    let gateway1 = dirs[0].join("identity/issued/gateway.embedded");
    let direct = Direct::every(&dirs, &dirs[0].join("ca.pem"), &gateway1);
    let r = direct[2].ask(
        "direct-to-isolated",
        ("clerk.nadia", "clerk"),
        "counter-service",
        std::slice::from_ref(&record),
        Some(&token),
    );
    assert_eq!(r.status, 503, "{}", r.json());
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or_default()
            .contains("node-3 is isolated"),
        "{}",
        r.json()
    );
    // Its gateway is refused by custodians 1 and 2: no read through node 3, saying why.
    let r = clerk.read(&gw3, cnss[7]);
    let body = String::from_utf8_lossy(&r.body).into_owned();
    assert_eq!(r.status, 503, "{body}");
    assert!(
        body.contains("gateway.node-3 is refused: node-3 is isolated"),
        "{body}"
    );
    assert!(!body.contains(&fund.persons[7].surname), "{body}");
    // The SIEM heard it from node 1's gateway.
    poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let lines = std::fs::read_to_string(&ocsf).unwrap_or_default();
        match lines.lines().any(|l| {
            l.contains("node-attestation: node-3 isolated") && l.contains("\"status_id\":2")
        }) {
            true => Ok(()),
            false => Err("no node-attestation event for node 3 in node 1's OCSF file".into()),
        }
    });

    // Back on the allowed build: answered again once it has attested again.
    let started_before = gateway_starts(&dirs[2]);
    nodes[2] = None;
    nodes[2] = Some(start(&dirs[2]));
    judged_by_peers(&dirs[0], "node-3", "attested", Duration::from_secs(30));
    // Its gateway starts once the custodians answer it again (it waits for them).
    poll_until(
        Duration::from_secs(60),
        Duration::from_millis(200),
        || match gateway_starts(&dirs[2]) > started_before {
            true => Ok(()),
            false => Err("node 3's gateway did not start again".to_owned()),
        },
    );
    poll_until(Duration::from_secs(60), Duration::from_millis(300), || {
        let r = clerk.read(&gw3, cnss[7]);
        match r.status {
            200 => Ok(()),
            s => Err(format!(
                "node 3 attested again but its gateway still fails ({s}): {}",
                String::from_utf8_lossy(&r.body)
            )),
        }
    });

    // Node 2's rules edited by hand (a detector put in shadow mode): isolated, reads go
    // on through custodians 1 and 3; the ceremony's rules back, attested again.
    let rules = dirs[1].join("rules.json");
    let original = std::fs::read_to_string(&rules).unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&original).unwrap();
    edited["velocity"]["mode"] = "shadow".into();
    nodes[1] = None;
    std::fs::write(&rules, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    nodes[1] = Some(start(&dirs[1]));
    judged_by_peers(
        &dirs[0],
        "node-2",
        "isolated/document",
        Duration::from_secs(30),
    );
    let said = common::text(&ribat(&[
        "mesh",
        "status",
        "--dir",
        dirs[0].to_str().unwrap(),
    ]));
    assert!(said.contains("node-2   isolated: its rules ("), "{said}");
    ok_read(&gw1, cnss[8]);
    nodes[1] = None;
    std::fs::write(&rules, &original).unwrap();
    nodes[1] = Some(start(&dirs[1]));
    judged_by_peers(&dirs[0], "node-2", "attested", Duration::from_secs(30));
}

/// `mesh drift` from `dir`: its exit code and output.
fn drift(dir: &Path) -> (Option<i32>, String) {
    let o = ribat(&["mesh", "drift", "--dir", dir.to_str().unwrap()]);
    (o.status.code(), common::text(&o))
}

#[test]
fn a_retired_build_is_listed_on_every_node_still_running_it_and_cut_off_only_after_the_rules_grace()
{
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_made_with(&out, &[1], &["--attest-every", "1"]);
    let ocsf = d.path().join("node-1-ocsf.jsonl");
    let mut nodes = running_with_fund_and(
        d.path(),
        &dirs,
        (20, 2, 1, 6),
        &["--ocsf", ocsf.to_str().unwrap()],
    );
    let (code, said) = drift(&dirs[0]);
    assert_eq!(code, Some(0), "{said}");
    // A new build, allowed by two administrators, rolled out to nodes 1 and 2.
    let fixed = another_build(d.path());
    let fixed_path = fixed.to_str().unwrap();
    by_two_admins(
        &out,
        &[
            "--allow-build",
            fixed_path,
            "--reason",
            "CHG-2031 advisory fix",
        ],
        "allow-build",
        &dirs[0],
        &["--binary", fixed_path, "--reason", "CHG-2031 advisory fix"],
    );
    let node1_args = ["--ocsf", ocsf.to_str().unwrap()];
    for (i, args) in [&node1_args[..], &[]].into_iter().enumerate() {
        nodes[i] = None;
        nodes[i] = Some(start_as(&fixed, &dirs[i], args));
    }
    judged_by_peers(&dirs[2], "node-1", "attested", Duration::from_secs(30));
    judged_by_peers(&dirs[2], "node-2", "attested", Duration::from_secs(30));
    // The old build retired for an advisory: node 3, still on it, drifts (a week's grace by
    // the rules) and is still answered.
    let old = sha256_hex(Path::new(env!("CARGO_BIN_EXE_ribat")));
    let now = in_seconds(0);
    let retire = [
        "--advisory",
        "RUSTSEC-2026-0104",
        "--retired-at",
        now.as_str(),
    ];
    let mut what = vec!["--retire-build", old.as_str()];
    what.extend(retire);
    let mut args = vec!["--build", old.as_str()];
    args.extend(retire);
    by_two_admins(&out, &what, "retire-build", &dirs[0], &args);
    judged_by_peers(&dirs[0], "node-3", "drifting", Duration::from_secs(10));
    let (code, said) = drift(&dirs[0]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("drifting: 0.1.0 (binary")
            && said.contains("retired for RUSTSEC-2026-0104; isolated in 6 d"),
        "{said}"
    );
    assert!(
        said.contains(&format!("binary {old}"))
            && said.contains(
                "RETIRED for RUSTSEC-2026-0104 by sec.amina and sec.youssef; running on node-3"
            ),
        "{said}"
    );
    assert!(
        said.contains("1 member(s) drifting or cut off: node-3"),
        "{said}"
    );
    let gw = gateway_addr(&dirs[0]);
    issue(
        &out.join("deployment"),
        "clerk.ilyas",
        "clerk",
        "agency-oujda",
    );
    let clerk = Clerk::new(
        dirs[0].join("ca.pem"),
        out.join("deployment/identity/issued/clerk.ilyas"),
    );
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(20, 2, 1, 6));
    let before = served_to(&dirs[2], 3, "clerk.ilyas");
    // Custodian 2 set aside for the moment (its node restarting would do the same): the
    // read needs custodian 3, which still answers while it drifts.
    nodes[1] = None;
    let r = clerk.read(&gw, &fund.persons[0].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(served_to(&dirs[2], 3, "clerk.ilyas"), before + 1);
    nodes[1] = Some(start_as(&fixed, &dirs[1], &[]));
    judged_by_peers(&dirs[2], "node-2", "attested", Duration::from_secs(30));
    // The finding reached the SIEM.
    poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let lines = std::fs::read_to_string(&ocsf).unwrap_or_default();
        match lines
            .lines()
            .any(|l| l.contains("node-attestation: node-3 drifting"))
        {
            true => Ok(()),
            false => Err("no drift finding for node 3 in node 1's OCSF file".into()),
        }
    });
    // Rules with a grace of 5 s: past it, node 3 is cut off; reads go on without it.
    rules_in_force(&out, &dirs[0], 1, |r| {
        r["patch-drift"]["grace-secs"] = 5.into();
    });
    judged_by_peers(
        &dirs[0],
        "node-3",
        "isolated/retired",
        Duration::from_secs(20),
    );
    let before = served_to(&dirs[2], 3, "clerk.ilyas");
    for p in &fund.persons[1..4] {
        let r = clerk.read(&gw, &p.cnss);
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    assert_eq!(served_to(&dirs[2], 3, "clerk.ilyas"), before);
    // Upgraded, it is answered again.
    nodes[2] = None;
    nodes[2] = Some(start_as(&fixed, &dirs[2], &[]));
    judged_by_peers(&dirs[0], "node-3", "attested", Duration::from_secs(30));
    let (code, said) = drift(&dirs[0]);
    assert_eq!(code, Some(0), "{said}");
}
