//! Identities through the log: certificates granted by two administrators before they act,
//! revoked for good, a third party's access lapsing at its review date, and tokens issued by
//! the identity service only for what their user signed.

use crate::common;
use crate::support::*;
use std::path::Path;
use std::time::{Duration, Instant};

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn a_certificate_revoked_through_the_log_is_refused_by_every_gateway_and_custodian() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 17));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    let clerk = |name: &str| {
        let (who, serial) = issue(&deployment, name, "clerk", "agency-casa-anfa");
        assert!(!serial.is_empty(), "no serial printed for {name}");
        (Clerk::new(dirs[0].join("ca.pem"), who), serial)
    };
    let (amal, serial) = clerk("clerk.amal");
    let (omar, _) = clerk("clerk.omar");
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 17));
    let cnss = |i: usize| fund.persons[i].cnss.clone();
    assert_eq!(amal.read(&gw1, &cnss(0)).status, 200);
    // A token minted before the revocation, and the record's id, for the direct call below.
    let token = common::api::token(&gw2, &amal.ca, &amal.who);
    let record = {
        let r = common::api::call(
            &gw2,
            amal.cfg.clone(),
            "GET",
            &format!("/v1/persons/{}?purpose=counter-service", cnss(1)),
            Some(&token),
            None,
        )
        .unwrap();
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["record_id"].as_str().unwrap().to_owned()
    };

    // One administrator revokes the clerk's certificate through the log (its laptop was
    // stolen); no revocation list is copied anywhere.
    let o = revoke(&out, &dirs[2], "sec.amina", &serial, "laptop stolen");
    assert!(o.status.success(), "{}", common::text(&o));
    // Every gateway refuses the certificate at its next request.
    for gw in [&gw1, &gw2] {
        let started = Instant::now();
        loop {
            let r = common::api::call(
                gw,
                amal.cfg.clone(),
                "GET",
                &format!("/v1/persons/{}?purpose=counter-service", cnss(2)),
                Some(&token),
                None,
            );
            if let Ok(r) = &r
                && r.status != 200
            {
                // The custodians may learn it a moment before this gateway does: their
                // refusal (no plaintext either) comes back through it until it knows.
                if common::api::problem(r) == "certificate-revoked" {
                    break;
                }
                assert!(
                    String::from_utf8_lossy(&r.body).contains("has been revoked"),
                    "{}",
                    String::from_utf8_lossy(&r.body)
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{gw} still serves a revoked certificate"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // A gateway's certificate forwarding the clerk's earlier token to each custodian
    // directly (a compromised gateway): every custodian refuses it.
    let gateway_cert = dirs[1].join("identity/issued/gateway.embedded");
    for (i, c) in Direct::every(&dirs, &amal.ca, &gateway_cert)
        .iter()
        .enumerate()
    {
        let r = c.ask(
            &format!("direct-{i}"),
            ("clerk.amal", "clerk"),
            "counter-service",
            std::slice::from_ref(&record),
            Some(&token),
        );
        refused_with(&r, 401, "revoked", &format!("custodian {}", i + 1));
    }
    // Everyone else goes on.
    assert_eq!(omar.read(&gw2, &cnss(3)).status, 200);
}

#[test]
fn a_certificate_the_ca_issued_acts_only_once_two_administrators_grant_it_through_the_log() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1, 2]);
    let _nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 37));
    let (gw1, gw2) = (gateway_addr(&dirs[0]), gateway_addr(&dirs[1]));
    let deployment = out.join("deployment");
    let ca = dirs[0].join("ca.pem");
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 37));
    let cnss = |i: usize| fund.persons[i].cnss.clone();
    // Whoever holds the CA's key makes a clerk's certificate: the CLI says what it still
    // needs, and every gateway refuses it before any token.
    let o = ribat(&[
        "--home",
        deployment.to_str().unwrap(),
        "identity",
        "add",
        "--name",
        "clerk.amal",
        "--role",
        "clerk",
        "--institution",
        "agency-casa-anfa",
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("mesh approve --key KEY --as NAME --grant"),
        "{}",
        common::text(&o)
    );
    let who = deployment.join("identity/issued/clerk.amal");
    let cfg = common::api::config(&ca, Some(&who));
    for gw in [&gw1, &gw2] {
        let r = common::api::call(gw, cfg.clone(), "POST", "/v1/token", None, None).unwrap();
        assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
        assert_eq!(common::api::problem(&r), "certificate-not-granted");
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .contains("two security administrators grant it"),
            "{}",
            r.json()
        );
    }
    // A gateway that mints a token for it anyway (the token key is on every gateway node)
    // and forwards it: every custodian refuses a token bound to a certificate never granted.
    let o = ribat(&[
        "--home",
        deployment.to_str().unwrap(),
        "token",
        "issue",
        "--cert",
        who.join("cert.pem").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let minted = String::from_utf8_lossy(&o.stdout).trim().to_owned();
    let (omar_dir, _) = issue(&deployment, "clerk.omar", "clerk", "agency-casa-anfa");
    let omar = Clerk::new(ca.clone(), omar_dir.clone());
    let record = {
        let r = omar.read(&gw2, &cnss(1));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["record_id"].as_str().unwrap().to_owned()
    };
    let gateway_cert = dirs[1].join("identity/issued/gateway.embedded");
    for (i, c) in Direct::every(&dirs, &ca, &gateway_cert).iter().enumerate() {
        let r = c.ask(
            &format!("minted-{i}"),
            ("clerk.amal", "clerk"),
            "counter-service",
            std::slice::from_ref(&record),
            Some(&minted),
        );
        let who = format!("custodian {}", i + 1);
        refused_with(&r, 401, "never granted by two administrators", &who);
    }
    // One administrator is not a grant, nor one administrator twice, nor an approval of
    // another certificate passed off for this one: every node refuses the entry.
    let what = |w: &Path| {
        vec![
            "--grant".to_owned(),
            w.to_str().unwrap().to_owned(),
            "--reason".to_owned(),
            "ticket 9".to_owned(),
        ]
    };
    let amal_what = what(&who);
    let a1 = approval(&out, "sec.amina", &strs(&amal_what));
    let other = approval(&out, "sec.youssef", &strs(&what(&omar_dir)));
    for (approvals, why) in [
        (
            vec![&a1],
            "1 distinct administrator signature(s) where 2 are needed",
        ),
        (
            vec![&a1, &a1],
            "1 distinct administrator signature(s) where 2 are needed",
        ),
        (
            vec![&a1, &other],
            "the signature of `sec.youssef` does not verify",
        ),
    ] {
        let mut args = vec![
            "mesh",
            "grant",
            "--dir",
            dirs[2].to_str().unwrap(),
            "--cert",
            who.to_str().unwrap(),
            "--reason",
            "ticket 9",
        ];
        for a in &approvals {
            args.extend(["--approval", a.as_str()]);
        }
        let o = ribat(&args);
        assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
        assert!(common::text(&o).contains(why), "{}", common::text(&o));
    }
    assert!(!granted_in(&dirs[0], "clerk.amal"));
    // Two administrators: every gateway answers it.
    grant(&out, &[&who]);
    let amal = Clerk::new(ca.clone(), who.clone());
    for (gw, i) in [(&gw1, 2), (&gw2, 3)] {
        let r = amal.read(gw, &cnss(i));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    // The register as every node holds it: who granted what; the ceremony's gateways.
    let o = ribat(&[
        "mesh",
        "identities",
        "--json",
        "--dir",
        dirs[1].to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
    let entry = |name: &str| listed.iter().find(|i| i["name"] == name).cloned();
    let amal_entry = entry("clerk.amal").unwrap();
    assert_eq!(
        amal_entry["granted_by"],
        serde_json::json!(["sec.amina", "sec.youssef"])
    );
    let serial = amal_entry["serial"].as_str().unwrap().to_owned();
    for g in ["gateway.node-1", "gateway.node-2"] {
        assert_eq!(
            entry(g).unwrap()["granted_by"],
            serde_json::json!(["ceremony"])
        );
    }
    // Revoked, it is refused again, and no grant lets it back in.
    let o = revoke(&out, &dirs[0], "sec.youssef", &serial, "left the agency");
    assert!(o.status.success(), "{}", common::text(&o));
    let a1 = approval(&out, "sec.amina", &strs(&amal_what));
    let a2 = approval(&out, "sec.youssef", &strs(&amal_what));
    let o = ribat(&[
        "mesh",
        "grant",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--cert",
        who.to_str().unwrap(),
        "--reason",
        "ticket 9",
        "--approval",
        &a1,
        "--approval",
        &a2,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("was revoked, for good"),
        "{}",
        common::text(&o)
    );
    let o = ribat(&["mesh", "identities", "--dir", dirs[2].to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("clerk.amal") && l.contains(" revoked ")),
        "{}",
        common::text(&o)
    );
    poll_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let r = common::api::call(&gw1, amal.cfg.clone(), "POST", "/v1/token", None, None);
        match r {
            Ok(r) if common::api::problem(&r) == "certificate-revoked" => Ok(()),
            _ => Err("still served".to_owned()),
        }
    });
    assert_eq!(omar.read(&gw1, &cnss(5)).status, 200);
}

#[test]
fn a_third_partys_access_lapses_at_its_review_date_with_a_finding_before_and_one_administrator_recertifies_it()
 {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    let dirs = mesh_with_gateways(&out, &[1]);
    let ocsf = d.path().join("node-1.ocsf.jsonl");
    let _nodes = running_with_fund_and(
        d.path(),
        &dirs,
        (30, 3, 1, 71),
        &["--ocsf", ocsf.to_str().unwrap()],
    );
    let gw = gateway_addr(&dirs[0]);
    let deployment = out.join("deployment");
    let (who, _) = issue_only(&deployment, "partner.insurer-z", "partner", "insurer-z");
    // Without a review date, a partner's certificate is not granted.
    let what = |review: Option<&str>| {
        let mut w = vec![
            "--grant".to_owned(),
            who.to_str().unwrap().to_owned(),
            "--reason".to_owned(),
            "contract 2026-114".to_owned(),
        ];
        if let Some(r) = review {
            w.extend(["--review-by".to_owned(), r.to_owned()]);
        }
        w
    };
    let o = approve_with("sec.amina", &out, "sec.amina", &strs(&what(None)));
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        common::text(&o).contains("--review-by"),
        "{}",
        common::text(&o)
    );
    // Granted until a review 12 s from now: the finding comes at once (within a week).
    let review = in_seconds(12);
    let signed = what(Some(&review));
    let (a1, a2) = (
        approval(&out, "sec.amina", &strs(&signed)),
        approval(&out, "sec.youssef", &strs(&signed)),
    );
    let o = ribat(&[
        "mesh",
        "grant",
        "--dir",
        dirs[0].to_str().unwrap(),
        "--cert",
        who.to_str().unwrap(),
        "--reason",
        "contract 2026-114",
        "--review-by",
        &review,
        "--approval",
        &a1,
        "--approval",
        &a2,
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    let partner = Clerk::new(dirs[0].join("ca.pem"), who.clone());
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 71));
    let p = fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .unwrap();
    let path = format!("/v1/persons/{}?purpose=partner-verification", p.cnss);
    let read = || {
        common::api::call(&gw, partner.cfg.clone(), "POST", "/v1/token", None, None)
            .map(|r| {
                let problem = match r.status {
                    200 => String::new(),
                    _ => common::api::problem(&r),
                };
                (r.status, problem)
            })
            .unwrap()
    };
    poll_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || match read() {
            (200, _) => Ok(()),
            other => Err(format!("never granted: {other:?}")),
        },
    );
    let r = common::api::call(
        &gw,
        partner.cfg.clone(),
        "GET",
        &path,
        Some(&common::api::token(&gw, &partner.ca, &partner.who)),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let o = ribat(&["mesh", "identities", "--dir", dirs[0].to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .any(|l| l.starts_with("partner.insurer-z") && l.contains(" due ")),
        "{}",
        common::text(&o)
    );
    let log = dirs[0].join("node.log");
    poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        match text.contains("finding: review due — the access of partner.insurer-z") {
            true => Ok(()),
            false => Err("no finding in node-1's log".to_owned()),
        }
    });
    // And in its OCSF stream, for the SIEM.
    let finding = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let text = std::fs::read_to_string(&ocsf).unwrap_or_default();
        match text.lines().find(|l| l.contains("review-due")) {
            Some(l) => Ok(serde_json::from_str::<serde_json::Value>(l).unwrap()),
            None => Err(format!("no review-due in {text}")),
        }
    });
    assert_eq!(
        finding["actor"]["user"]["name"], "partner.insurer-z",
        "{finding}"
    );
    // Past its date: refused by the gateway, before any token.
    poll_until(
        Duration::from_secs(20),
        Duration::from_millis(250),
        || match read() {
            (403, p) if p == "certificate-review-lapsed" => Ok(()),
            other => Err(format!("not lapsed: {other:?}")),
        },
    );
    // One administrator re-certifies it after the review: it reads again.
    let serial = {
        let o = ribat(&[
            "mesh",
            "identities",
            "--json",
            "--dir",
            dirs[0].to_str().unwrap(),
        ]);
        let l: Vec<serde_json::Value> = serde_json::from_slice(&o.stdout).unwrap();
        l.iter().find(|i| i["name"] == "partner.insurer-z").unwrap()["serial"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let next = in_days(90);
    let o = ribat(&[
        "mesh",
        "recertify",
        "--dir",
        dirs[1].to_str().unwrap(),
        "--key",
        out.join("admins/sec.youssef.key").to_str().unwrap(),
        "--as",
        "sec.youssef",
        "--serial",
        &serial,
        "--review-by",
        &next,
        "--reason",
        "contract renewed",
    ]);
    assert!(o.status.success(), "{}", common::text(&o));
    poll_until(
        Duration::from_secs(10),
        Duration::from_millis(100),
        || match read() {
            (200, _) => Ok(()),
            other => Err(format!("still lapsed after recertify: {other:?}")),
        },
    );
}

#[test]
fn only_the_identity_service_holds_the_token_key_and_a_gateway_gets_a_token_only_for_what_its_user_signed()
 {
    use base64ct::{Base64UrlUnpadded, Encoding};
    use ribat_identity::signed::{Covered, digest};
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("mesh");
    // One gateway, on node 1: nodes 2 and 3 are the identity service.
    let dirs = mesh_with_gateways(&out, &[1]);
    let token_key = |i: usize| dirs[i].join("identity/token.key").exists();
    assert!(!token_key(0), "the gateway's node holds no token key");
    assert!(token_key(1) && token_key(2));
    let mut nodes = running_with_fund(d.path(), &dirs, (30, 3, 1, 61));
    // `mesh status` says who holds it.
    let members = status(&dirs[0]);
    let service: Vec<bool> = members
        .iter()
        .map(|m| m["identity_service"].as_bool().unwrap())
        .collect();
    assert_eq!(service, [false, true, true], "{members:?}");
    let gw = gateway_addr(&dirs[0]);
    let clerk = Clerk::granted(&out, &dirs, "clerk.salma", "agency-rabat");
    let who = clerk.who.clone();
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(30, 3, 1, 61));
    // The clerk's signed token request goes through the gateway to the identity service.
    let r = clerk.read(&gw, &fund.persons[0].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // `ribat api` signs both requests: a read answered, a refusal said, exit codes kept.
    let api = |target: &str| {
        ribat(&[
            "api",
            "GET",
            target,
            "--gateway",
            &gw,
            "--identity",
            who.to_str().unwrap(),
        ])
    };
    let o = api(&format!(
        "/v1/persons/{}?purpose=counter-service",
        fund.persons[2].cnss
    ));
    assert!(o.status.success(), "{}", common::text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["fields"]["cnss"], fund.persons[2].cnss.as_str(), "{v}");
    let o = api(&format!(
        "/v1/persons/{}?purpose=marketing",
        fund.persons[2].cnss
    ));
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("HTTP 403"),
        "{}",
        common::text(&o)
    );
    let o = api("persons/1");
    assert_eq!(o.status.code(), Some(1), "{}", common::text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the path of an API route"),
        "{}",
        common::text(&o)
    );
    // Unsigned, it gets no token: the gateway cannot mint one.
    let r = common::api::call(&gw, clerk.cfg.unsigned(), "POST", "/v1/token", None, None).unwrap();
    assert_eq!(r.status, 401, "{}", r.json());
    assert_eq!(common::api::problem(&r), "bad-signature");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("identity service"),
        "{}",
        r.json()
    );
    // Signed with another key than the connection's certificate's: the gateway itself
    // refuses it (an honest gateway forwards only what its client signed).
    let r = common::api::call_signing(
        &gw,
        clerk.cfg.tls.clone(),
        Some(common::api::signer(
            &dirs[0].join("identity/issued/gateway.embedded"),
        )),
        "POST",
        "/v1/token",
        None,
        None,
    )
    .unwrap();
    assert_eq!(r.status, 401, "{}", r.json());
    assert_eq!(common::api::problem(&r), "bad-signature");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("does not verify") && !detail.contains("the user's"),
        "refused by the gateway, not forwarded: {detail}"
    );
    // Whoever holds the gateway's certificate, asking the identity service directly.
    let gateway_cert = dirs[0].join("identity/issued/gateway.embedded");
    let ca = dirs[0].join("ca.pem");
    let node_addr = |i: usize| {
        let mesh: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dirs[i].join("mesh.json")).unwrap())
                .unwrap();
        mesh["peers"][i]["addr"].as_str().unwrap().to_owned()
    };
    let post = |as_who: &Path, path: &str, body: serde_json::Value| {
        common::api::call(
            &node_addr(1),
            common::api::config(&ca, Some(as_who)).unsigned(),
            "POST",
            path,
            None,
            Some(body),
        )
        .unwrap()
    };
    let clerk_key = common::api::signer(&who);
    let gateway_key = common::api::signer(&gateway_cert);
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let signed_by = |key: &ribat_identity::signed::RequestSigner| {
        let covered = Covered {
            method: "POST",
            target: "/v1/token",
            body_digest: &digest(b""),
            token: None,
        };
        serde_json::json!({
            "certificate": Base64UrlUnpadded::encode_string(clerk_key.certificate()),
            "body": "",
            "signature": key.sign(&covered, now()).unwrap().header(),
        })
    };
    // The clerk's own request, forwarded once: a token bound to the clerk's certificate.
    let ask = signed_by(&clerk_key);
    let r = post(&gateway_cert, "/v1/mesh/token", ask.clone());
    assert_eq!(r.status, 200, "{}", r.json());
    let claims = ribat_identity::TokenVerifier::from_paserk(
        "ribat.local",
        std::fs::read_to_string(dirs[0].join("identity/token.pub"))
            .unwrap()
            .trim(),
    )
    .unwrap()
    .verify(
        r.json()["token"].as_str().unwrap(),
        time::OffsetDateTime::now_utc(),
    )
    .unwrap();
    assert_eq!(claims.sub, "clerk.salma");
    assert_eq!(
        claims.cnf.x5t_s256,
        ribat_identity::peer::thumbprint(clerk_key.certificate())
    );
    // The same request again, or one the gateway signs itself in the clerk's name.
    let r = post(&gateway_cert, "/v1/mesh/token", ask);
    assert_eq!(r.status, 401, "{}", r.json());
    assert!(
        r.json()["detail"].as_str().unwrap().contains("used before"),
        "{}",
        r.json()
    );
    let r = post(&gateway_cert, "/v1/mesh/token", signed_by(&gateway_key));
    assert_eq!(r.status, 401, "{}", r.json());
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("does not verify"),
        "{}",
        r.json()
    );
    // A service token: its own node's, yes; another node's job, no.
    let service = |identity: &str, role: &str| {
        post(
            &gateway_cert,
            "/v1/mesh/service-token",
            serde_json::json!({"identity": identity, "role": role}),
        )
    };
    assert_eq!(service("node.embedded", "service").status, 200);
    let r = service("rotation.node-2", "rotation");
    assert_eq!(r.status, 403, "{}", r.json());
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("its own node"),
        "{}",
        r.json()
    );
    // Only gateways forward: the clerk's certificate asking directly is refused.
    let r = post(&who, "/v1/mesh/token", signed_by(&clerk_key));
    assert_eq!(r.status, 403, "{}", r.json());
    // An honest gateway checks a token request's signature before it forwards it: the
    // replayed and forged ones above are the gateway's doing, and three more make five
    // within a minute. Node 2 then holds that gateway: no token for it, even for a request
    // the clerk did sign, and no service token either.
    for _ in 0..3 {
        let r = post(&gateway_cert, "/v1/mesh/token", signed_by(&gateway_key));
        assert_eq!(r.status, 401, "{}", r.json());
    }
    let r = post(&gateway_cert, "/v1/mesh/token", signed_by(&clerk_key));
    assert_eq!(r.status, 403, "{}", r.json());
    assert_eq!(common::api::problem(&r), "quarantined");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("gateway.node-1"),
        "{}",
        r.json()
    );
    assert_eq!(service("node.embedded", "service").status, 403);
    // With node 2 gone, node 3 issues the tokens; the clerk reads on (custodians 1 and 3).
    drop(nodes[1].take());
    let r = clerk.read(&gw, &fund.persons[1].cnss);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
