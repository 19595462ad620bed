//! The zero-trust matrix, over real TLS on loopback against a running `ribat serve` and a
//! networked `ribat custodian`: every way of calling without the right to, each refused
//! with its own clear error; and the compromised-gateway case, where a process holding
//! the gateway's certificate calls a custodian directly and still meets every check (I3).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::api::*;
use common::*;
use ribat_identity::{Ca, CertKind, PeerIdentity, TokenIssuer};
use ribat_store::PointSource;
use std::path::Path;

const DEPLOYMENT: &str = "ribat.local";

fn fixture() -> Served {
    let f = served(
        200,
        8,
        7,
        Marks::Honey,
        &[
            ("clerk.1", "clerk", "agency-casa-anfa"),
            ("clerk.2", "clerk", "agency-casa-anfa"),
            ("partner.insurer-x", "partner", "insurer-x"),
        ],
    );
    // This file is about the gate's own reasons. In a fund of 200 persons every CNSS
    // number is within a few dozen of another, so any dozen reads look like walking the
    // number space: the enumeration detector only alerts here (its own tests and the
    // simulator show it acting).
    set_rule_mode(&f.home, "enumeration", "shadow");
    f
}

fn persons(fund: &ribat_sim::Fund) -> Vec<&ribat_sim::fund::Person> {
    fund.persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .collect()
}

/// Custodian `i` as its own process, with a certificate of its own.
fn networked_custodian(home: &Path, i: u32) -> Server {
    networked_custodian_with(home, i, &[])
}

/// Same, `ribat custodian` given `extra` arguments besides.
fn networked_custodian_with(home: &Path, i: u32, extra: &[&str]) -> Server {
    let name = format!("custodian-{i}");
    let index = i.to_string();
    ok(ribat(
        home,
        &[
            "identity",
            "add",
            "--name",
            &name,
            "--role",
            "custodian",
            "--host",
            "127.0.0.1",
        ],
    ));
    let mut args = vec![
        "custodian",
        "--index",
        &index,
        "--listen",
        "127.0.0.1:0",
        "--passphrases",
        "env",
    ];
    args.extend_from_slice(extra);
    start(home, &args, &[])
}

fn tls_error(r: Result<ribat_net::client::Response, ribat_net::client::ClientError>) -> String {
    match r {
        Err(e) => e.to_string(),
        Ok(r) => panic!("expected a TLS refusal, got HTTP {}", r.status),
    }
}

/// The token service's key, as an insider or a test holds it, to mint tokens the API
/// would never issue (expired, for another audience).
fn issuer(home: &Path) -> TokenIssuer {
    let text = std::fs::read_to_string(home.join("identity/token.key")).unwrap();
    TokenIssuer::from_paserk(DEPLOYMENT, &text).unwrap()
}

fn peer_of(dir: &Path) -> PeerIdentity {
    let pem = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let der = ribat_identity::tls::certs_from_pem(&pem, "cert").unwrap();
    PeerIdentity::from_der(der[0].as_ref()).unwrap()
}

#[test]
fn every_unauthorised_call_is_refused_with_its_own_reason() {
    let f = fixture();
    let ocsf = f.home.join("events.ocsf.jsonl");
    let gw = start(
        &f.home,
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
    );
    let clerk = identity(&f.home, "clerk.1");
    let partner = identity(&f.home, "partner.insurer-x");
    let ps = persons(&f.fund);
    let path = |cnss: &str, q: &str| format!("/v1/persons/{cnss}?{q}");
    let get = |who: &Path, token: Option<&str>, p: &str| {
        call(&gw.addr, config(&f.ca, Some(who)), "GET", p, token, None).unwrap()
    };

    let health = |who: &Path| {
        call(
            &gw.addr,
            config(&f.ca, Some(who)),
            "GET",
            "/healthz",
            None,
            None,
        )
    };

    // The legitimate read works, and the partner's view is masked by policy.
    let tok = token(&gw.addr, &f.ca, &clerk);
    let r = get(
        &clerk,
        Some(&tok),
        &path(&ps[0].cnss, "purpose=counter-service"),
    );
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["fields"]["cin"], ps[0].cin.as_str());
    let ptok = token(&gw.addr, &f.ca, &partner);
    let r = get(
        &partner,
        Some(&ptok),
        &path(&ps[1].cnss, "purpose=partner-verification"),
    );
    assert_eq!(r.status, 200, "{r:?}");
    let cin = r.json()["fields"]["cin"].as_str().unwrap().to_owned();
    assert_ne!(cin, ps[1].cin);
    assert!(
        cin.starts_with(&ps[1].cin[..2]) && cin.contains("**"),
        "{cin}"
    );
    assert!(
        r.json()["fields"]["birth_date"]
            .as_str()
            .unwrap()
            .ends_with("-**-**")
    );
    assert!(
        r.json()["fields"].get("name_ar").is_none(),
        "not in the partner's field list"
    );

    // No client certificate: refused by TLS, before any HTTP.
    let e = tls_error(call(
        &gw.addr,
        config(&f.ca, None),
        "GET",
        "/healthz",
        None,
        None,
    ));
    assert!(e.contains("CertificateRequired"), "{e}");

    // A certificate from another CA; and from an impostor CA that copies our CA's name
    // (its signature does not verify under our CA's key).
    let other = tempfile::tempdir().unwrap();
    for (deployment, alert) in [
        ("ribat.elsewhere", "UnknownCA"),
        (DEPLOYMENT, "DecryptError"),
    ] {
        let d = other.path().join(deployment);
        let other_ca = Ca::init(&d.join("ca"), deployment).unwrap();
        let stranger = other_ca
            .issue(
                "clerk.1",
                "clerk",
                "agency-casa-anfa",
                &CertKind::Client,
                30,
            )
            .unwrap();
        std::fs::write(d.join("cert.pem"), &stranger.cert_pem).unwrap();
        std::fs::write(d.join("key.pem"), stranger.key_pem.as_bytes()).unwrap();
        let e = tls_error(health(&d));
        assert!(e.contains(alert), "{deployment}: {e}");
    }

    // An expired certificate from the right CA.
    let ca = Ca::open(&f.home.join("identity"), DEPLOYMENT).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let old = ca
        .issue_between(
            "clerk.old",
            "clerk",
            "agency",
            &CertKind::Client,
            now - time::Duration::days(60),
            now - time::Duration::days(30),
        )
        .unwrap();
    let odir = other.path().join("old");
    std::fs::create_dir_all(&odir).unwrap();
    std::fs::write(odir.join("cert.pem"), &old.cert_pem).unwrap();
    std::fs::write(odir.join("key.pem"), old.key_pem.as_bytes()).unwrap();
    let e = tls_error(health(&odir));
    assert!(e.contains("CertificateExpired"), "{e}");

    // Revocation takes effect at the next connection, without a restart.
    let clerk2 = identity(&f.home, "clerk.2");
    let r = health(&clerk2).unwrap();
    assert_eq!(r.status, 200);
    ok(ribat(&f.home, &["identity", "revoke", "--name", "clerk.2"]));
    let e = tls_error(health(&clerk2));
    assert!(e.contains("CertificateRevoked"), "{e}");

    // Tokens: missing, expired, forged, replayed from another certificate, other audience.
    let p0 = path(&ps[2].cnss, "purpose=counter-service");
    let r = get(&clerk, None, &p0);
    assert_eq!((r.status, problem(&r).as_str()), (401, "token-missing"));
    let clerk_peer = peer_of(&clerk);
    let (expired, _) = issuer(&f.home)
        .issue(
            &clerk_peer,
            DEPLOYMENT,
            now - time::Duration::minutes(20),
            300,
        )
        .unwrap();
    let r = get(&clerk, Some(&expired), &p0);
    assert_eq!((r.status, problem(&r).as_str()), (401, "token-expired"));
    let (forged, _) = TokenIssuer::generate(DEPLOYMENT)
        .unwrap()
        .issue(&clerk_peer, DEPLOYMENT, now, 300)
        .unwrap();
    let r = get(&clerk, Some(&forged), &p0);
    assert_eq!((r.status, problem(&r).as_str()), (401, "token-forged"));
    let r = get(
        &partner,
        Some(&tok),
        &path(&ps[2].cnss, "purpose=partner-verification"),
    );
    assert_eq!((r.status, problem(&r).as_str()), (401, "token-replayed"));
    let (elsewhere, _) = issuer(&f.home)
        .issue(&clerk_peer, "ribat.other", now, 300)
        .unwrap();
    let r = get(&clerk, Some(&elsewhere), &p0);
    assert_eq!((r.status, problem(&r).as_str()), (401, "token-audience"));
    assert!(r.json()["detail"].as_str().unwrap().contains("ribat.other"));

    // Purpose missing or not the role's; a class the role may not read.
    let r = get(&clerk, Some(&tok), &format!("/v1/persons/{}", ps[2].cnss));
    assert_eq!((r.status, problem(&r).as_str()), (400, "purpose-required"));
    let r = get(&clerk, Some(&tok), &path(&ps[2].cnss, "purpose=marketing"));
    assert_eq!(
        (r.status, problem(&r).as_str()),
        (403, "purpose-not-allowed")
    );
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("counter-service")
    );
    let r = get(
        &clerk,
        Some(&tok),
        &path(&ps[2].cnss, "purpose=counter-service&fields=rib"),
    );
    assert_eq!((r.status, problem(&r).as_str()), (403, "class-not-allowed"));
    let r = get(
        &clerk,
        Some(&tok),
        &path(&ps[2].cnss, "purpose=counter-service&fields=shoe_size"),
    );
    assert_eq!((r.status, problem(&r).as_str()), (400, "unknown-field"));

    // Quota: the clerk may read 10 distinct persons a minute (one is read already).
    for p in &ps[2..11] {
        let r = get(
            &clerk,
            Some(&tok),
            &path(&p.cnss, "purpose=counter-service"),
        );
        assert_eq!(r.status, 200, "{r:?}");
    }
    let r = get(
        &clerk,
        Some(&tok),
        &path(&ps[11].cnss, "purpose=counter-service"),
    );
    assert_eq!((r.status, problem(&r).as_str()), (429, "quota-exceeded"));
    assert!(r.retry_after.is_some());
    // Reading an already counted person again is not a new subject.
    let r = get(
        &clerk,
        Some(&tok),
        &path(&ps[3].cnss, "purpose=counter-service"),
    );
    assert_eq!(r.status, 200, "{r:?}");

    // A honey record quarantines the identity: refused at once, and from then on.
    let honey = f.fund.persons.iter().find(|p| p.honey).unwrap();
    let r = get(
        &partner,
        Some(&ptok),
        &path(&honey.cnss, "purpose=partner-verification"),
    );
    assert_eq!((r.status, problem(&r).as_str()), (403, "quarantined"));
    let r = get(
        &partner,
        Some(&ptok),
        &path(&ps[20].cnss, "purpose=partner-verification"),
    );
    assert_eq!((r.status, problem(&r).as_str()), (403, "quarantined"));
    assert!(
        !String::from_utf8_lossy(&r.body).contains("honey"),
        "never says why"
    );

    // Malformed input gets a clear 4xx, never a 5xx.
    let r = get(
        &clerk,
        Some(&tok),
        "/v1/persons/12ab?purpose=counter-service",
    );
    assert_eq!((r.status, problem(&r).as_str()), (400, "bad-value"));
    let r = call(
        &gw.addr,
        config(&f.ca, Some(&clerk)),
        "POST",
        "/v1/persons/search",
        Some(&tok),
        Some(serde_json::json!({"purpose": "counter-service"})),
    )
    .unwrap();
    assert_eq!((r.status, problem(&r).as_str()), (400, "bad-body"));

    // Operations: metrics carry no personal data.
    let m = call(
        &gw.addr,
        config(&f.ca, Some(&clerk)),
        "GET",
        "/metrics",
        None,
        None,
    )
    .unwrap();
    let text = String::from_utf8_lossy(&m.body).into_owned();
    assert!(text.contains("ribat_tls_handshake_failures_total"));
    assert!(
        text.contains("ribat_problems_total{type=\"quota-exceeded\"} 1"),
        "{text}"
    );
    for p in &ps[..12] {
        assert!(!text.contains(&p.cnss) && !text.contains(&p.cin));
    }

    // Every handshake refused above is an authentication failure for the detectors and
    // the SIEM, with its reason and address; five from one address within the minute are
    // alerted — an address may be shared, so it is not cut off (the clerk read on above).
    let events = std::fs::read_to_string(&ocsf).unwrap();
    for reason in [
        "tls-no-certificate",
        "tls-unknown-ca",
        "tls-bad-certificate",
        "tls-certificate-expired",
        "tls-certificate-revoked",
    ] {
        assert!(
            events
                .lines()
                .any(|l| l.contains(reason) && l.contains("127.0.0.1")),
            "no event for {reason} in:\n{events}"
        );
    }
    assert!(
        events.lines().any(|l| l.contains("auth-failures")
            && l.contains("address 127.0.0.1")
            && l.contains("alerted, not cut off")),
        "no alert on the address in:\n{events}"
    );
    let r = get(
        &clerk,
        Some(&tok),
        &path(&ps[3].cnss, "purpose=counter-service"),
    );
    assert_eq!(r.status, 200, "{r:?}");
}

#[test]
fn a_compromised_gateway_calling_a_custodian_directly_meets_every_check() {
    let f = fixture();
    let gateway = identity(&f.home, "gateway.embedded");
    let clerk = identity(&f.home, "clerk.1");
    let ps = persons(&f.fund);
    let node = open(&f.home);
    let sealer_ids: Vec<String> = ps
        .iter()
        .map(|p| {
            let t = node.index.cnss(&p.cnss).unwrap();
            node.store.lookup("cnss", &t.0).unwrap()[0]
                .record_id
                .clone()
        })
        .collect();
    // This process lets the custodians go before custodian 3 runs as its own process
    // (one process per custodian directory).
    drop(node);
    let cust = networked_custodian(&f.home, 3);
    let now = time::OffsetDateTime::now_utc();
    let iss = issuer(&f.home);
    let (clerk_token, _) = iss.issue(&peer_of(&clerk), DEPLOYMENT, now, 300).unwrap();
    let (forged, _) = TokenIssuer::generate(DEPLOYMENT)
        .unwrap()
        .issue(&peer_of(&clerk), DEPLOYMENT, now, 300)
        .unwrap();
    let (expired, _) = iss
        .issue(
            &peer_of(&clerk),
            DEPLOYMENT,
            now - time::Duration::minutes(20),
            300,
        )
        .unwrap();

    /// One direct call: who connects, whom the request names, what it asks, which token.
    struct Case<'a> {
        why: &'a str,
        cert: &'a Path,
        identity: &'a str,
        role: &'a str,
        purpose: &'a str,
        class: &'a str,
        ids: &'a [String],
        token: Option<&'a str>,
        status: u16,
        denial: &'a str,
        reason: &'a str,
    }
    let ask = |c: &Case<'_>| {
        let mut req = serde_json::json!({
            "request_id": "direct",
            "requester": {"identity": c.identity, "role": c.role},
            "purpose": c.purpose,
            "table": "persons",
            "class": c.class,
            "record_ids": c.ids,
        });
        if let Some(t) = c.token {
            req["token"] = t.into();
        }
        let r = call(
            &cust.addr,
            config(&f.ca, Some(c.cert)),
            "POST",
            "/v1/partial",
            None,
            Some(req),
        )
        .unwrap();
        let v = r.json();
        let denial = v["denial"]["denial"].as_str().unwrap_or("");
        assert_eq!((r.status, denial), (c.status, c.denial), "{}: {v}", c.why);
        let reason = v["denial"]["reason"].as_str().unwrap_or("");
        assert!(reason.contains(c.reason), "{}: {v}", c.why);
        v
    };
    let base = Case {
        why: "",
        cert: &gateway,
        identity: "clerk.1",
        role: "clerk",
        purpose: "counter-service",
        class: "identity",
        ids: &sealer_ids[..1],
        token: Some(&clerk_token),
        status: 200,
        denial: "",
        reason: "",
    };
    let refused = [
        Case {
            why: "a clerk's own certificate",
            cert: &clerk,
            status: 401,
            denial: "unauthenticated",
            reason: "gateways only",
            ..base
        },
        Case {
            why: "no end-user token",
            token: None,
            status: 401,
            denial: "unauthenticated",
            reason: "no end-user token",
            ..base
        },
        Case {
            why: "a forged token",
            token: Some(&forged),
            status: 401,
            denial: "unauthenticated",
            reason: "forged",
            ..base
        },
        Case {
            why: "an expired token",
            token: Some(&expired),
            status: 401,
            denial: "unauthenticated",
            reason: "expired",
            ..base
        },
        Case {
            why: "a token for someone else",
            identity: "supervisor.1",
            role: "supervisor",
            purpose: "investigation",
            class: "financial",
            status: 401,
            denial: "unauthenticated",
            reason: "the token is for `clerk.1`",
            ..base
        },
        // With the clerk's real token, the custodian's own policy still decides.
        Case {
            why: "a class the role may not read",
            class: "financial",
            status: 403,
            denial: "class-not-allowed",
            ..base
        },
        Case {
            why: "a purpose the role may not declare",
            purpose: "bulk-export",
            status: 403,
            denial: "purpose-not-allowed",
            ..base
        },
    ];
    for c in &refused {
        ask(c);
    }
    let v = ask(&Case {
        why: "the legitimate request",
        ..base
    });
    assert_eq!(v["points"].as_array().unwrap().len(), 1, "it is answered");
    // Bulk: the custodian's own per-minute quota (10 distinct records) stops it.
    ask(&Case {
        why: "bulk",
        ids: &sealer_ids[..40],
        status: 403,
        denial: "quota-exceeded",
        ..base
    });
    // A revoked user's token stops working at the custodian too, without a restart.
    ok(ribat(&f.home, &["identity", "revoke", "--name", "clerk.1"]));
    ask(&Case {
        why: "a revoked certificate's token",
        ids: &sealer_ids[1..2],
        status: 401,
        denial: "unauthenticated",
        reason: "revoked",
        ..base
    });
}

#[test]
fn reads_go_on_through_a_networked_custodian_and_skip_a_stalled_one_within_the_deadline() {
    let f = fixture();
    let cust = networked_custodian(&f.home, 2);
    let remote = format!("2={}", cust.addr);
    let serve = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--remote-custodian",
        &remote,
        "--deadline-ms",
        "1000",
        "--passphrases",
        "env",
    ];
    // Custodian 1 is not available to this gateway (no passphrase): reads need 2 (over
    // the network) and 3 (in process).
    let gw = start(&f.home, &serve, &["RIBAT_CUSTODIAN_1_PASSPHRASE"]);
    let clerk = identity(&f.home, "clerk.1");
    let tok = token(&gw.addr, &f.ca, &clerk);
    let ps = persons(&f.fund);
    let get = |cnss: &str| {
        call(
            &gw.addr,
            config(&f.ca, Some(&clerk)),
            "GET",
            &format!("/v1/persons/{cnss}?purpose=counter-service"),
            Some(&tok),
            None,
        )
        .unwrap()
    };
    // The first read also opens the gateway's connection to custodian 2; on a loaded
    // machine (CI runs tests in parallel) that may take longer than one deadline.
    let r = (0..3)
        .map(|_| get(&ps[0].cnss))
        .find(|r| r.status == 200)
        .expect("a read through the networked custodian");
    assert_eq!(r.json()["fields"]["surname"], ps[0].surname.as_str());

    // Stall the networked custodian: with only one other, the read fails within the
    // deadline with a clear 503 instead of hanging.
    let pid = cust.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let t = std::time::Instant::now();
    let r = get(&ps[1].cnss);
    let waited = t.elapsed();
    assert_eq!(
        (r.status, problem(&r).as_str()),
        (503, "custodians-unavailable"),
        "{r:?}"
    );
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("no answer within 1000 ms")
    );
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    assert!(
        std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let r = get(&ps[1].cnss);
    assert_eq!(r.status, 200, "{r:?}");

    // With all three available (1 and 3 in process, 2 over the network), a stalled
    // custodian 2 is skipped after the deadline and the read goes on with 1 and 3.
    drop(gw);
    let gw = start(&f.home, &serve, &[]);
    let tok = token(&gw.addr, &f.ca, &clerk);
    // Warm the second gateway's connection to custodian 2 before stalling it.
    let warm = call(
        &gw.addr,
        config(&f.ca, Some(&clerk)),
        "GET",
        &format!("/v1/persons/{}?purpose=counter-service", ps[3].cnss),
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!(warm.status, 200, "{warm:?}");
    let signal = |sig: &str| {
        assert!(
            std::process::Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    let t = std::time::Instant::now();
    let r = call(
        &gw.addr,
        config(&f.ca, Some(&clerk)),
        "GET",
        &format!("/v1/persons/{}?purpose=counter-service", ps[2].cnss),
        Some(&tok),
        None,
    )
    .unwrap();
    let waited = t.elapsed();
    signal("-CONT");
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["fields"]["surname"], ps[2].surname.as_str());
    assert!(
        waited >= std::time::Duration::from_millis(1000),
        "it waited for the deadline: {waited:?}"
    );
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
}

#[test]
fn a_gateway_stopped_by_sigterm_signs_a_last_checkpoint_of_what_it_served() {
    let f = fixture();
    let mut gw = start(
        &f.home,
        &["serve", "--listen", "127.0.0.1:0", "--passphrases", "env"],
        &[],
    );
    let clerk = identity(&f.home, "clerk.1");
    let tok = token(&gw.addr, &f.ca, &clerk);
    let p = persons(&f.fund)[0];
    let r = call(
        &gw.addr,
        config(&f.ca, Some(&clerk)),
        "GET",
        &format!("/v1/persons/{}?purpose=counter-service", p.cnss),
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    // No checkpoint yet (the periodic one comes after 10 s): the one below is the stop's.
    assert!(!f.home.join("audit/checkpoint").exists());
    let pid = gw.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "{status}");
    // The checkpoint covers the read (size on its second line), and the log verifies.
    let cp = std::fs::read_to_string(f.home.join("audit/checkpoint")).unwrap();
    let size: u64 = cp.lines().nth(1).unwrap().parse().unwrap();
    assert!(size >= 1, "{cp}");
    let audit = f.home.join("audit");
    ok(ribat(
        &f.home,
        &["audit", "verify", audit.to_str().unwrap()],
    ));
}

#[test]
fn a_quarantine_decided_at_the_gateway_reaches_a_networked_custodian_and_so_does_its_release() {
    let f = fixture();
    let cust = networked_custodian(&f.home, 3);
    let remote = format!("3={}", cust.addr);
    let gw = start(
        &f.home,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--remote-custodian",
            &remote,
            "--passphrases",
            "env",
        ],
        &[],
    );
    // A honey record read by the partner: the custodians it asked quarantine it, and the
    // gateway's decision carries that to custodian 3 over the link, durably.
    let partner = identity(&f.home, "partner.insurer-x");
    let tok = token(&gw.addr, &f.ca, &partner);
    let honey = f.fund.persons.iter().find(|p| p.honey).unwrap();
    let r = call(
        &gw.addr,
        config(&f.ca, Some(&partner)),
        "GET",
        &format!("/v1/persons/{}?purpose=partner-verification", honey.cnss),
        Some(&tok),
        None,
    )
    .unwrap();
    assert_eq!((r.status, problem(&r).as_str()), (403, "quarantined"));
    let decisions = ribat_gateway::watch::read_log(&f.home.join("decisions")).unwrap();
    let d = decisions
        .iter()
        .find_map(|r| match r {
            ribat_gateway::watch::Record::Decision(d) if d.rule == "honey" => Some(d.clone()),
            _ => None,
        })
        .expect("a honey decision");
    assert!(
        d.enforced_by.iter().any(|c| c == "custodian-3"),
        "{:?}",
        d.enforced_by
    );
    let logged = |outcome: &str| {
        ribat_custodian::served_log::ServedLog::read(&f.home.join("custodians/custodian-3"))
            .unwrap()
            .iter()
            .any(|e| e.outcome == outcome && e.identity == "partner.insurer-x")
    };
    assert!(
        logged("quarantined"),
        "custodian 3 logged the quarantine itself"
    );
    assert!(!logged("released"));
    // Two administrators release it: custodian 3 lifts it too.
    for admin in ["sec.a", "sec.b"] {
        add(&f.home, admin, "security", "cnss-soc");
        let who = identity(&f.home, admin);
        let r = call(
            &gw.addr,
            config(&f.ca, Some(&who)),
            "POST",
            &format!("/v1/decisions/{}/release", d.id),
            Some(&token(&gw.addr, &f.ca, &who)),
            Some(serde_json::json!({"reason": "test of the release path"})),
        )
        .unwrap();
        assert_eq!(r.status, 200, "{r:?}");
    }
    assert!(logged("released"), "custodian 3 logged the release");
}

/// `ribat custodian --require-signed-requests` behind `ribat serve --require-signed-requests`:
/// a clerk's signed read goes through (the networked custodian is one of the two that must
/// answer), and the gateway's certificate asking that custodian directly with the clerk's
/// token gets nothing without the clerk's signature, nor another person's record under it.
#[test]
fn a_networked_custodian_requiring_signed_requests_answers_only_what_the_user_signed() {
    let f = fixture();
    let cust = networked_custodian_with(&f.home, 2, &["--require-signed-requests"]);
    let remote = format!("2={}", cust.addr);
    let serve = [
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--remote-custodian",
        &remote,
        "--require-signed-requests",
        "--passphrases",
        "env",
    ];
    // Custodian 1 is not available to this gateway: reads need 2 (over the network) and 3.
    let gw = start(&f.home, &serve, &["RIBAT_CUSTODIAN_1_PASSPHRASE"]);
    let clerk = Caller::new(&f.home, &f.ca, &gw, "clerk.1");
    let ps = persons(&f.fund);
    let path =
        |p: &ribat_sim::fund::Person| format!("/v1/persons/{}?purpose=counter-service", p.cnss);
    let read = |p| {
        let r = clerk.get(&path(p));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["record_id"].as_str().unwrap().to_owned()
    };
    let (a, b) = (read(ps[0]), read(ps[1]));
    // Unsigned, the gateway itself refuses.
    let r = call(
        &gw.addr,
        config(&f.ca, Some(&identity(&f.home, "clerk.1"))).unsigned(),
        "GET",
        &path(ps[2]),
        Some(&clerk.token),
        None,
    )
    .unwrap();
    assert_eq!((r.status, problem(&r).as_str()), (401, "bad-signature"));
    // The gateway's certificate at custodian 2.
    let gateway = identity(&f.home, "gateway.embedded");
    let ask = |record: &str, asked: Option<ribat_custodian::request::Asked>| {
        let mut req = serde_json::json!({
            "request_id": "direct",
            "requester": {"identity": "clerk.1", "role": "clerk"},
            "purpose": "counter-service",
            "table": "persons",
            "class": "identity",
            "record_ids": [record],
            "token": clerk.token,
        });
        if let Some(a) = asked {
            req["asked"] = serde_json::to_value(a).unwrap();
        }
        let r = call(
            &cust.addr,
            config(&f.ca, Some(&gateway)),
            "POST",
            "/v1/partial",
            None,
            Some(req),
        )
        .unwrap();
        let reason = r.json()["denial"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (r.status, reason)
    };
    let signed_a = || {
        ribat_custodian::request::Asked::signed_by(
            &clerk.signer,
            "GET",
            &path(ps[0]),
            b"",
            &clerk.token,
        )
        .unwrap()
    };
    assert_eq!(ask(&a, Some(signed_a())).0, 200);
    let (status, why) = ask(&b, Some(signed_a()));
    assert_eq!(status, 401, "{why}");
    assert!(
        why.contains("not named by the user's signed request"),
        "{why}"
    );
    let (status, why) = ask(&b, None);
    assert_eq!(status, 401, "{why}");
    assert!(why.contains("none came with the read"), "{why}");
}
