#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design
//! Detection and containment through the real gateway process, over mTLS, with real
//! identities: a partner's credentials used to scrape the register (the 2025 case) are
//! quarantined within a dozen records at the gateway and at every custodian, by a signed
//! decision that two administrators — and only two distinct ones — can lift; a public
//! figure read without a case makes the next reads need a supervisor's co-signature; the
//! events go out as OCSF.

mod common;

use common::api::*;
use common::*;
use std::path::Path;

fn fixture() -> Served {
    served(
        600,
        20,
        41,
        Marks::HoneyAndPublicFigures,
        &[
            ("partner.scraper", "partner", "insurer-x"),
            ("partner.bank", "partner", "bank-y"),
            ("clerk.1", "clerk", "agency-casa-anfa"),
            ("supervisor.1", "supervisor", "agency-casa-anfa"),
            ("sec.amina", "security", "cnss-soc"),
            ("sec.youssef", "security", "cnss-soc"),
        ],
    )
}

/// Ordinary persons, every 8th: far enough apart in the CNSS number space that reading
/// them in a row is not enumeration.
fn spread(fund: &ribat_sim::Fund) -> Vec<&ribat_sim::fund::Person> {
    fund.persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .step_by(8)
        .collect()
}

fn serve(home: &Path) -> Server {
    let ocsf = home.join("events.ocsf.jsonl");
    start(
        home,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--passphrases",
            "env",
            "--ocsf",
            ocsf.to_str().unwrap(),
        ],
        &[],
    )
}

fn person(cnss: &str, purpose: &str) -> String {
    format!("/v1/persons/{cnss}?purpose={purpose}")
}

fn sigterm(gw: &Server) {
    let pid = gw.child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
}

#[test]
fn a_partner_scraping_the_register_is_quarantined_everywhere_within_a_dozen_records_and_released_only_by_two_administrators()
 {
    let f = fixture();
    let mut gw = serve(&f.home);
    let scraper = Caller::new(&f.home, &f.ca, &gw, "partner.scraper");
    let bank = Caller::new(&f.home, &f.ca, &gw, "partner.bank");
    let clerk = Caller::new(&f.home, &f.ca, &gw, "clerk.1");
    let amina = Caller::new(&f.home, &f.ca, &gw, "sec.amina");
    let ps = spread(&f.fund);

    // The scraper reads as fast as it can; count what it got before the first refusal.
    let mut exposed = 0;
    let mut refused = None;
    for p in &ps[..30] {
        let r = scraper.get(&person(&p.cnss, "partner-verification"));
        if r.status == 200 {
            assert!(refused.is_none(), "served after a refusal: {r:?}");
            exposed += 1;
        } else {
            refused.get_or_insert_with(|| problem(&r));
        }
    }
    assert_eq!(
        exposed, 9,
        "the partner velocity limit is 8 distinct in 10 s: the 9th read fires"
    );
    assert_eq!(refused.as_deref(), Some("quarantined"));

    // Everyone else goes on.
    let other = &ps[40];
    assert_eq!(
        bank.get(&person(&other.cnss, "partner-verification"))
            .status,
        200
    );
    assert_eq!(
        clerk.get(&person(&ps[41].cnss, "counter-service")).status,
        200
    );

    // The decision: signed, with its evidence, enforced by the gateway and each custodian.
    let r = amina.get("/v1/decisions");
    assert_eq!(r.status, 200, "{r:?}");
    let all: Vec<ribat_detect::Decision> =
        serde_json::from_value(r.json()["decisions"].clone()).unwrap();
    let d = all
        .iter()
        .find(|d| d.rule == "velocity")
        .unwrap_or_else(|| panic!("no velocity decision in {all:?}"));
    assert_eq!(
        d.target,
        ribat_detect::Target::Identity("partner.scraper".into())
    );
    assert_eq!(d.action, ribat_detect::Action::Quarantine);
    for c in [
        "gateway.embedded",
        "custodian-1",
        "custodian-2",
        "custodian-3",
    ] {
        assert!(
            d.enforced_by.iter().any(|e| e == c),
            "{c} in {:?}",
            d.enforced_by
        );
    }
    let enforced_in = d.enforced_ms.unwrap() - d.time_ms;
    assert!(
        enforced_in < 1_000,
        "enforced everywhere in {enforced_in} ms"
    );
    assert_eq!(d.evidence.len(), 9, "{:?}", d.evidence);
    assert!(d.evidence.iter().all(|e| e.contains("partner.scraper")));
    let key = ribat_gateway::watch::verifying_key(&f.home.join("decisions")).unwrap();
    d.verify(&key).unwrap();
    assert!(
        r.json()["in_force"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == d.id.as_str())
    );
    // Each custodian logged the quarantine itself, durably.
    for i in 1..=3 {
        let entries = ribat_custodian::served_log::ServedLog::read(
            &f.home.join(format!("custodians/custodian-{i}")),
        )
        .unwrap();
        assert!(
            entries
                .iter()
                .any(|e| e.outcome == "quarantined" && e.identity == "partner.scraper"),
            "custodian {i}"
        );
    }

    // Release: not by a clerk, not twice by one administrator; by two distinct ones.
    let release = format!("/v1/decisions/{}/release", d.id);
    let r = clerk.post(&release, serde_json::json!({"reason": "let me"}));
    assert_eq!((r.status, problem(&r).as_str()), (403, "role-not-allowed"));
    let r = amina.post(
        &release,
        serde_json::json!({"reason": "partner confirmed a bug"}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["state"], "pending");
    let r = amina.post(&release, serde_json::json!({"reason": "again"}));
    assert_eq!((r.status, problem(&r).as_str()), (409, "release-refused"));
    assert_eq!(
        problem(&scraper.get(&person(&ps[50].cnss, "partner-verification"))),
        "quarantined",
        "one approval lifts nothing"
    );
    let out = ok(ribat(
        &f.home,
        &[
            "decisions",
            "release",
            &d.id,
            "--as",
            "sec.youssef",
            "--reason",
            "confirmed: the partner's batch job misfired",
        ],
    ));
    assert!(out.contains("released"), "{out}");
    assert_eq!(
        scraper
            .get(&person(&ps[50].cnss, "partner-verification"))
            .status,
        200,
        "released at the gateway and at the custodians"
    );
    let listed: serde_json::Value =
        serde_json::from_str(&ok(ribat(&f.home, &["decisions", "list", "--json"]))).unwrap();
    let row = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["decision"]["id"] == d.id.as_str())
        .unwrap();
    assert_eq!(row["state"], "released");
    assert_eq!(row["signature_valid"], true);
    assert_eq!(
        row["approvals"],
        serde_json::json!(["sec.amina", "sec.youssef"])
    );

    // The SIEM's view: a Datastore Activity per read, a Detection Finding for the decision.
    sigterm(&gw);
    gw.child.wait().unwrap();
    let ocsf = std::fs::read_to_string(f.home.join("events.ocsf.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = ocsf
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let reads = lines
        .iter()
        .filter(|l| l["class_uid"] == 6005 && l["actor"]["user"]["name"] == "partner.scraper")
        .count();
    assert_eq!(
        reads, 10,
        "9 reads before the decision and 1 after the release"
    );
    // What the gateway enforces is on record: its policy and rules, with their digests.
    for file in ["policy.json", "rules.json"] {
        assert!(
            lines
                .iter()
                .any(|l| l["status_detail"] == format!("{file} loaded")
                    && l["unmapped"]["sha256"]
                        .as_str()
                        .is_some_and(|d| d.len() == 64)),
            "{file}"
        );
    }
    assert!(lines.iter().any(|l| l["class_uid"] == 2004
        && l["finding_info"]["uid"] == d.id.as_str()
        && l["finding_info"]["analytic"]["name"] == "velocity"));
    for p in &ps[..30] {
        assert!(
            !ocsf.contains(&p.cnss) && !ocsf.contains(&p.cin),
            "no CNSS or CIN in what goes to the SIEM"
        );
    }
}

#[test]
fn a_public_figure_read_without_a_case_makes_the_next_reads_need_a_supervisors_cosignature() {
    let f = fixture();
    let gw = serve(&f.home);
    let clerk = Caller::new(&f.home, &f.ca, &gw, "clerk.1");
    let supervisor = Caller::new(&f.home, &f.ca, &gw, "supervisor.1");
    let figure = f.fund.persons.iter().find(|p| p.sensitive).unwrap();
    let ps = spread(&f.fund);

    // With a counter ticket: nothing happens.
    let r = clerk.get(&format!(
        "{}&case=ticket-0042",
        person(&figure.cnss, "counter-service")
    ));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        clerk.get(&person(&ps[0].cnss, "counter-service")).status,
        200
    );
    // Without one: the read is served (and audited) and the clerk is stepped up.
    assert_eq!(
        clerk.get(&person(&figure.cnss, "counter-service")).status,
        200
    );
    let r = clerk.get(&person(&ps[1].cnss, "counter-service"));
    assert_eq!((r.status, problem(&r).as_str()), (403, "step-up-required"));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("Ribat-Cosign")
    );

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let connection = || {
        rt.block_on(async {
            ribat_net::client::Connection::open(clerk.cfg.clone(), &clerk.addr, "127.0.0.1", false)
                .await
                .unwrap()
                .signing(clerk.signer.clone())
        })
    };
    let path = person(&ps[1].cnss, "counter-service");
    let cosigned_by = |cosigner: &ribat_identity::signed::RequestSigner| {
        let mut c = connection();
        rt.block_on(c.send_cosigned("GET", &path, &clerk.token, None, cosigner))
            .unwrap()
    };
    // The clerk's own co-signature is none; a supervisor's token no longer co-signs.
    let r = cosigned_by(&clerk.signer);
    assert_eq!((r.status, problem(&r).as_str()), (403, "step-up-refused"));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("not a `clerk`"),
        "{r:?}"
    );
    let mut c = connection();
    let r = rt
        .block_on(c.get_with(
            &path,
            Some(&clerk.token),
            &[("ribat-cosign", &supervisor.token)],
        ))
        .unwrap();
    assert_eq!((r.status, problem(&r).as_str()), (403, "step-up-refused"));
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("no longer co-signs"),
        "{r:?}"
    );
    // The supervisor's co-signature of this one request is.
    let r = cosigned_by(&supervisor.signer);
    assert_eq!(r.status, 200, "{r:?}");
    // It is good for that request only: put on the next one, it covers nothing.
    let signed_next = {
        use ribat_identity::signed::{Covered, digest};
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let covered = Covered {
            method: "GET",
            target: &path,
            body_digest: &digest(b""),
            token: Some(&clerk.token),
        };
        let first = clerk.signer.sign(&covered, now).unwrap();
        let co = supervisor.signer.cosign(&covered, &first).unwrap();
        let second = clerk.signer.sign(&covered, now).unwrap();
        (second.header(), co.header())
    };
    let r = rt.block_on(async {
        // An unsigned connection, so that the headers are exactly these.
        ribat_net::client::Connection::open(clerk.cfg.clone(), &clerk.addr, "127.0.0.1", false)
            .await
            .unwrap()
            .get_with(
                &path,
                Some(&clerk.token),
                &[
                    ("ribat-signature", &signed_next.0),
                    ("ribat-cosign", &signed_next.1),
                ],
            )
            .await
            .unwrap()
    });
    assert_eq!(
        (r.status, problem(&r).as_str()),
        (403, "step-up-refused"),
        "{r:?}"
    );
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("does not cover this request"),
        "{r:?}"
    );
}

/// Walks through CINs by `POST /v1/persons/search`: stepping +1 through numbers nobody
/// holds, random guesses, and a clerk stepping +37 are each quarantined, as the same walks
/// through CNSS numbers are; a clerk searching real persons by CIN and by name is not.
#[test]
fn walks_and_guesses_through_cin_searches_are_enumeration() {
    let f = fixture();
    let gw = serve(&f.home);
    add(&f.home, "clerk.walker", "clerk", "agency-7");
    add(&f.home, "clerk.guesser", "clerk", "agency-7");
    add(&f.home, "clerk.stepper", "clerk", "agency-7");
    let search = |who: &Caller, body: serde_json::Value| who.post("/v1/persons/search", body);
    let cin = |n: u64| format!("ZX{n:06}");
    let outcomes = |who: &str, cins: Vec<String>| -> (usize, String) {
        let c = Caller::new(&f.home, &f.ca, &gw, who);
        for (i, x) in cins.iter().enumerate() {
            let r = search(
                &c,
                serde_json::json!({"purpose": "counter-service", "cin": x}),
            );
            if r.status == 403 {
                return (i, problem(&r));
            }
            assert_eq!(r.status, 200, "{who} search {i}: {r:?}");
        }
        (cins.len(), String::new())
    };
    let (n, why) = outcomes("clerk.walker", (0..30).map(|k| cin(400_000 + k)).collect());
    assert!(n < 30 && why == "quarantined", "+1 walk: {n} {why}");
    let mut x = 0x9e37_79b9u64;
    let guesses: Vec<String> = (0..30)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            cin((x >> 33) % 1_000_000)
        })
        .collect();
    let (n, why) = outcomes("clerk.guesser", guesses);
    assert!(n < 30 && why == "quarantined", "guesses: {n} {why}");
    let (n, why) = outcomes(
        "clerk.stepper",
        (0..30).map(|k| cin(100_000 + 37 * k)).collect(),
    );
    assert!(n < 30 && why == "quarantined", "+37 steps: {n} {why}");

    // The honest clerk: real persons, by CIN and by name and birth date.
    let clerk = Caller::new(&f.home, &f.ca, &gw, "clerk.1");
    for p in spread(&f.fund).into_iter().take(6) {
        let r = search(
            &clerk,
            serde_json::json!({"purpose": "counter-service", "cin": p.cin}),
        );
        assert_eq!(r.status, 200, "{r:?}");
        assert_eq!(r.json()["matches"].as_array().unwrap().len(), 1, "{r:?}");
        let name = format!("{} {}", p.given, p.surname);
        let r = search(
            &clerk,
            serde_json::json!({"purpose": "counter-service", "name": name, "birth_date": p.birth_date}),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
}
