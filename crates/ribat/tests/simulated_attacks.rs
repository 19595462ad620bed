#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design
//! The simulator end to end (`ribat simulate`, a fresh node served over mTLS, real
//! identities, the detectors): each attack is detected and contained with its exposure
//! bounded, while the legitimate workload beside it sees no failure and no quarantine.
//! The figures at full scale (200,000 persons, a week of 1,000,000 requests) are in the
//! closing notes; these runs are small so that CI stays quick.

mod common;

use common::ribat;

fn simulate(scenario: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec![
        "simulate",
        "--scenario",
        scenario,
        "--persons",
        "2000",
        "--json",
    ];
    args.extend_from_slice(extra);
    let out = ribat(dir.path(), &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn no_harm_to_the_legitimate(r: &serde_json::Value) {
    assert_eq!(r["false_quarantines"], 0, "{r:#}");
    assert!(r["requests"].as_u64().unwrap() > 1_000, "{r:#}");
}

#[test]
fn cnss_bulk_the_2025_case_is_quarantined_within_a_couple_dozen_records() {
    let r = simulate("cnss-bulk", &[]);
    no_harm_to_the_legitimate(&r);
    assert_eq!(r["legit_failures"], 0, "{r:#}");
    let a = &r["attack"];
    assert_eq!(a["detected"], true, "{r:#}");
    assert_eq!(a["response"], "quarantine", "{r:#}");
    let exposed = a["records_exposed"].as_u64().unwrap();
    assert!((1..=25).contains(&exposed), "{r:#}");
    assert!(a["seconds_to_contain"].is_number(), "{r:#}");
    assert!(
        a["refusals"]["quarantined"].as_u64().unwrap() >= 20,
        "{r:#}"
    );
}

#[test]
fn enumeration_honey_and_insider_snooping_are_each_caught_by_their_rule() {
    for (scenario, rule, most) in [
        ("enumeration", "enumeration", 10),
        ("honey", "honey", 25),
        ("insider-snooping", "public-figure", 10),
    ] {
        let r = simulate(scenario, &[]);
        no_harm_to_the_legitimate(&r);
        assert_eq!(r["legit_failures"], 0, "{scenario}: {r:#}");
        let a = &r["attack"];
        assert_eq!(a["detected"], true, "{scenario}: {r:#}");
        assert_eq!(a["rule"], rule, "{scenario}: {r:#}");
        assert!(
            a["records_exposed"].as_u64().unwrap() <= most,
            "{scenario}: {r:#}"
        );
    }
}

#[test]
fn distributed_credentials_are_quarantined_one_by_one_and_honest_partners_go_on() {
    let r = simulate("distributed", &[]);
    no_harm_to_the_legitimate(&r);
    let a = &r["attack"];
    assert_eq!(a["rule"], "role-surge", "{r:#}");
    // The identities that made the surge, not the whole role.
    assert_eq!(a["response"], "quarantine", "{r:#}");
    // The role limit is 300 distinct subjects in 10 minutes; a few more were in flight.
    assert!(a["records_exposed"].as_u64().unwrap() <= 330, "{r:#}");
    // Nobody honest was refused: not the partners, not the counters.
    assert_eq!(r["legit_failures"], 0, "{r:#}");
    assert_eq!(r["false_quarantines"], 0, "{r:#}");
    assert!(
        r["legit_failures_by_role"].as_object().unwrap().is_empty(),
        "{r:#}"
    );
}

#[test]
fn a_legitimate_week_with_a_pension_run_and_month_end_uploads_quarantines_nobody() {
    let r = simulate("legit-week", &["--requests", "10000"]);
    no_harm_to_the_legitimate(&r);
    assert_eq!(r["legit_failures"], 0, "{r:#}");
    assert!(r["simulated_hours"].as_f64().unwrap() > 160.0, "{r:#}");
    assert!(r.get("attack").is_none());
}

#[test]
fn a_stolen_gateway_certificate_asking_custodians_directly_is_cut_off_by_the_custodians() {
    // Custodians 2 and 3 run as their own processes; the thief holds the gateway's
    // certificate and token key and asks them directly, as a real partner.
    let r = simulate("compromised-gateway", &[]);
    assert_eq!(r["false_quarantines"], 0, "{r:#}");
    let a = &r["attack"];
    assert_eq!(a["detected"], true, "{r:#}");
    assert_eq!(a["rule"], "disagreement", "{r:#}");
    assert_eq!(a["response"], "quarantine", "{r:#}");
    // Bounded by the custodians' own quota for the impersonated partner (20 a minute).
    assert!(a["records_exposed"].as_u64().unwrap() <= 20, "{r:#}");
    assert!(a["refusals"]["quarantined"].as_u64().unwrap() >= 1, "{r:#}");
    // The honest gateway shares the certificate: once it is cut off, reads through the
    // networked custodians stop until the certificate is replaced, and nothing else fails.
    let kinds = r["legit_failure_kinds"].as_object().unwrap();
    assert!(kinds.keys().all(|k| k == "quarantined"), "{r:#}");
}

#[test]
fn a_simulated_month_suspends_the_unreviewed_partner_on_its_lapse_date_not_before_and_no_reviewed_identity()
 {
    // 1,000 persons: the month's traffic is the partners' and one clerk's.
    let dir = tempfile::tempdir().unwrap();
    let out = ribat(
        dir.path(),
        &[
            "simulate",
            "--scenario",
            "partner-review",
            "--persons",
            "1000",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    common::a_month_of_third_parties(&r);
    // The pension batch's finding is raised every day of the month.
    let batch = r["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["identity"] == "batch.pensions")
        .unwrap();
    assert!(
        batch["findings_ms"].as_array().unwrap().len() > 20,
        "{batch:#}"
    );
}
