//! `ribat simulate --mesh 3`: the attacks that fit in real time, and the weeks and months that
//! run on a lab clock, against three node processes.

use crate::common;
use crate::support::*;
use std::path::Path;
use std::process::Command;

/// `ribat --home HOME simulate --scenario S --mesh 3 EXTRA…`.
fn simulate_mesh(home: &Path, scenario: &str, extra: &[&str]) -> std::process::Output {
    let home = home.to_str().unwrap();
    let mut args = vec![
        "--home",
        home,
        "simulate",
        "--scenario",
        scenario,
        "--mesh",
        "3",
    ];
    args.extend_from_slice(extra);
    ribat(&args)
}

#[test]
fn the_2025_attack_simulated_against_three_node_processes_is_refused_everywhere_and_honest_readers_go_on()
 {
    let d = tempfile::tempdir().unwrap();
    let o = simulate_mesh(d.path(), "cnss-bulk", &["--persons", "2000", "--json"]);
    assert!(o.status.success(), "{}", common::text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["nodes"], 3, "{r}");
    let exposed = r["records_exposed"].as_u64().unwrap();
    assert!(exposed > 0 && exposed <= 25, "{r}");
    assert_eq!(r["legit_failures"], 0, "{r}");
    assert!(r["legit_requests"].as_u64().unwrap() > 0, "{r}");
    // Every node's gateway and custodian refused the attacker (how fast is the bench's
    // and the release build's to say: `simulate --mesh` in the README).
    let nodes = r["per_node"].as_array().unwrap();
    assert_eq!(nodes.len(), 3, "{r}");
    for n in nodes {
        for part in ["gateway_s", "custodian_s"] {
            assert!(n[part].as_f64().is_some(), "{part} of {}: {r}", n["node"]);
        }
    }
    // Its node processes are gone with it.
    let left = Command::new("pgrep")
        .args(["-f", &format!("node --dir {}", d.path().display())])
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn the_honey_enumeration_and_snooping_attacks_simulated_against_three_node_processes_are_held_by_every_node()
 {
    for scenario in ["honey", "enumeration", "insider-snooping"] {
        let d = tempfile::tempdir().unwrap();
        let o = simulate_mesh(d.path(), scenario, &["--persons", "2000", "--json"]);
        assert!(o.status.success(), "{scenario}: {}", common::text(&o));
        let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(r["scenario"], scenario, "{r}");
        // The embedded run's bounds: a honey record comes among the first 25 reads, a walk
        // is seen at its seventh lookup, a snoop at its first public figure.
        let most = if scenario == "honey" { 25 } else { 10 };
        assert!(r["records_exposed"].as_u64().unwrap() <= most, "{r}");
        assert_eq!(r["legit_failures"], 0, "{r}");
        assert!(r["legit_requests"].as_u64().unwrap() > 0, "{r}");
        // Quarantines are carried out by every node's gateway and custodian; a step-up (the
        // snoop) by every node's gateway, though only node 1's detectors saw it.
        let parts: &[&str] = if scenario == "insider-snooping" {
            &["gateway_s"]
        } else {
            &["gateway_s", "custodian_s"]
        };
        for n in r["per_node"].as_array().unwrap() {
            for part in parts {
                assert!(
                    n[part].as_f64().is_some(),
                    "{scenario} {part} of {}: {r}",
                    n["node"]
                );
            }
        }
        assert_eq!(
            r["hostile_refused_everywhere"], r["hostile_identities"],
            "{r}"
        );
    }
}

/// The report's lab section: every node dated by the clock the run moved, a week or more
/// from where the nodes started.
fn on_the_lab_clock(r: &serde_json::Value) {
    let lab = &r["lab"];
    assert_eq!(lab["nodes"], 3, "{r:#}");
    assert_eq!(lab["nodes_on_the_lab_clock"], 3, "{r:#}");
    assert!(lab["disagreement_grace_ms"].as_u64().unwrap() >= 30 * 86_400_000);
}

#[test]
fn a_simulated_month_on_three_node_processes_refuses_the_unreviewed_partner_from_its_date_and_keeps_the_re_certified_one()
 {
    let d = tempfile::tempdir().unwrap();
    let o = simulate_mesh(d.path(), "partner-review", &["--persons", "1000", "--json"]);
    assert!(o.status.success(), "{}", common::text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    on_the_lab_clock(&r);
    // The same month as the embedded run's: review dates in the log, lapses and findings
    // by the lab clock, the re-certification through the log.
    common::a_month_of_third_parties(&r);
}

#[test]
fn the_gateway_bypass_is_refused_with_mesh_and_says_where_it_runs() {
    let d = tempfile::tempdir().unwrap();
    let o = simulate_mesh(d.path(), "compromised-gateway", &[]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("without --mesh"), "{err}");
    // Nothing was started or written for it.
    assert!(!d.path().join("simulate-mesh").exists());
}
