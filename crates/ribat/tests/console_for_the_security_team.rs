#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design
//! The security team's console, served by a real `ribat serve` over mTLS to real
//! certificates: a quarantine pushed to an open page within 2 s of the attack's first
//! request, released from two administrators' own pages (the target never), a clerk
//! refused, an auditor reading without acting, and forms from another site, without their
//! token or with another certificate's refused while nothing changes.
//!
//! These requests are what a browser sends (HTML, forms, `Origin`, an event stream); the
//! tests in a real Chromium are for later (see the README's console section).

mod common;

use common::api::*;
use ribat_net::client::{Connection, Response};
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn fixture() -> Served {
    served(
        600,
        20,
        41,
        Marks::HoneyAndPublicFigures,
        &[
            ("partner.scraper", "partner", "insurer-x"),
            ("clerk.1", "clerk", "agency-casa-anfa"),
            ("sec.amina", "security", "cnss-soc"),
            ("sec.youssef", "security", "cnss-soc"),
            ("audit.rachid", "auditor", "cndp"),
            ("portal.citizens", "citizen-portal", "cnss-portal"),
        ],
    )
}

fn serve(home: &Path) -> Server {
    start(
        home,
        &["serve", "--listen", "127.0.0.1:0", "--passphrases", "env"],
        &[],
    )
}

/// What a browser holding `name`'s certificate gets for `method path` with `headers`
/// (a form's body when `form` is not empty).
fn browse(
    f: &Served,
    gw: &Server,
    name: &str,
    method: &str,
    path: &str,
    form: &str,
    headers: &[(&str, &str)],
) -> Response {
    let cfg = tls_config(&f.ca, Some(&identity(&f.home, name)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let host = gw.addr.rsplit_once(':').unwrap().0;
        let mut c = Connection::open(cfg, &gw.addr, host, false).await.unwrap();
        let ct = (!form.is_empty()).then_some("application/x-www-form-urlencoded");
        c.send_as_browser(method, path, form.as_bytes().to_vec(), ct, headers)
            .await
            .unwrap()
    })
}

fn page(f: &Served, gw: &Server, name: &str, path: &str) -> (Response, String) {
    let r = browse(f, gw, name, "GET", path, "", &[]);
    let body = String::from_utf8(r.body.clone()).unwrap();
    (r, body)
}

/// Posts a release form as `name` from this gateway's own origin.
fn release(f: &Served, gw: &Server, name: &str, id: &str, csrf: &str, reason: &str) -> Response {
    let origin = format!("https://{}", gw.addr);
    let form = format!("csrf={csrf}&reason={}", reason.replace(' ', "+"));
    browse(
        f,
        gw,
        name,
        "POST",
        &format!("/console/decisions/{id}/release"),
        &form,
        &[("origin", &origin)],
    )
}

/// The form token a page carries.
fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a release form") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// The first decision a page links to.
fn first_decision(html: &str) -> String {
    let at = html.find("href=\"/console/decisions/").expect("a decision") + 25;
    html[at..at + 16].to_owned()
}

/// The console's event stream as `name`, read over a raw TLS connection: each `data:`
/// line, with when it arrived.
fn events(f: &Served, gw: &Server, name: &str) -> mpsc::Receiver<(Instant, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cfg = tls_config(&f.ca, Some(&identity(&f.home, name)));
    let addr = gw.addr.clone();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let host = addr.rsplit_once(':').unwrap().0.to_owned();
            let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from(host).unwrap();
            let mut tls = tokio_rustls::TlsConnector::from(cfg)
                .connect(name, tcp)
                .await
                .unwrap();
            let ask = format!(
                "GET /console/events HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n"
            );
            tls.write_all(ask.as_bytes()).await.unwrap();
            let (mut buf, mut pending) = (vec![0u8; 4096], String::new());
            loop {
                let n = match tls.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                while let Some(end) = pending.find('\n') {
                    let line = pending[..end].trim_end().to_owned();
                    pending.drain(..=end);
                    if let Some(data) = line.strip_prefix("data: ")
                        && tx.send((Instant::now(), data.to_owned())).is_err()
                    {
                        return;
                    }
                    if line.starts_with("HTTP/1.1 ") && !line.contains(" 200") {
                        let _ = tx.send((Instant::now(), line));
                        return;
                    }
                }
            }
        });
    });
    rx
}

/// Every `<script>` has a `src`, no element carries `style=` or an `on…=` handler: nothing
/// the Content Security Policy would have to allow inline.
fn nothing_inline(html: &str) {
    for (i, _) in html.match_indices("<script") {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        assert!(tag.contains(" src="), "inline script: {tag}");
    }
    assert!(!html.contains(" style="), "inline style");
    let lower = html.to_ascii_lowercase();
    for handler in [
        " onclick=",
        " onload=",
        " onerror=",
        " onsubmit=",
        "javascript:",
    ] {
        assert!(!lower.contains(handler), "{handler} in the page");
    }
}

#[test]
fn a_quarantine_reaches_an_open_console_within_2_s_and_two_administrators_release_it_from_their_own_pages()
 {
    let f = fixture();
    let gw = serve(&f.home);
    let scraper = Caller::new(&f.home, &f.ca, &gw, "partner.scraper");

    // Amina's console is open: nothing in force, in English by default, in French for a
    // browser that asks for it, under a strict policy with nothing inline.
    let (r, now) = page(&f, &gw, "sec.amina", "/console");
    assert_eq!(r.status, 200);
    assert_eq!(r.content_type, "text/html; charset=utf-8");
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none';"), "{csp}");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert!(now.contains("No decision is in force."), "{now}");
    nothing_inline(&now);
    let fr = browse(
        &f,
        &gw,
        "sec.amina",
        "GET",
        "/console",
        "",
        &[("accept-language", "fr-MA,fr;q=0.9,en;q=0.5")],
    );
    assert!(String::from_utf8_lossy(&fr.body).contains("Aucune décision n&#39;est en vigueur."));
    let stream = events(&f, &gw, "sec.amina");
    let (_, first) = stream.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(first, "0", "the stream says at once what is in force");

    // The 2025 attack: a partner's certificate reads the register as fast as it can.
    let started = Instant::now();
    let persons: Vec<&str> = f
        .fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .step_by(8)
        .map(|p| p.cnss.as_str())
        .collect();
    for cnss in &persons[..12] {
        let r = scraper.get(&format!("/v1/persons/{cnss}?purpose=partner-verification"));
        if r.status != 200 {
            break;
        }
    }
    let (at, in_force) = stream.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(in_force, "1");
    let pushed = at.duration_since(started);
    assert!(
        pushed < Duration::from_secs(2),
        "the open page heard of the quarantine {pushed:?} after the attack's first request"
    );
    // What the page's script fetches on that event: the quarantine, with its target.
    let (r, live) = page(&f, &gw, "sec.amina", "/console/live");
    assert_eq!(r.status, 200);
    assert!(live.contains("identity partner.scraper"), "{live}");
    assert!(live.contains("quarantine"), "{live}");
    let id = first_decision(&live);
    // No personal data in a URL or a title: links are decision ids, the title is fixed.
    for cnss in &persons[..12] {
        assert!(!live.contains(cnss), "a CNSS number on the page");
    }

    // The decision's page: rule, evidence, a verified signature, and a release form.
    let (r, mine) = page(&f, &gw, "sec.amina", &format!("/console/decisions/{id}"));
    assert_eq!(r.status, 200);
    assert!(mine.contains("velocity"), "{mine}");
    assert!(
        mine.contains("verifies under this gateway&#39;s decision key")
            || mine.contains("verifies under this gateway's decision key"),
        "{mine}"
    );
    assert!(mine.contains("No administrator has approved a release yet."));
    assert!(mine.contains("<title>Ribat — security console</title>"));
    nothing_inline(&mine);
    let amina_token = csrf_of(&mine);

    // An empty reason: the page again, the message next to the field, nothing recorded.
    let r = release(&f, &gw, "sec.amina", &id, &amina_token, " ");
    assert_eq!(r.status, 400);
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("class=\"field-error\""), "{body}");
    assert!(body.contains("Say why the decision is lifted"), "{body}");
    // Amina approves: recorded, pending the second administrator.
    let r = release(
        &f,
        &gw,
        "sec.amina",
        &id,
        &amina_token,
        "insurer-x fixed its batch",
    );
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("location"),
        Some(format!("/console/decisions/{id}?done=pending").as_str())
    );
    // Amina again is still one administrator.
    let r = release(&f, &gw, "sec.amina", &id, &amina_token, "once more");
    assert_eq!(r.status, 409);
    assert!(String::from_utf8_lossy(&r.body).contains("has already approved"));

    // Youssef sees Amina's approval; her page's token is not his.
    let (_, his) = page(&f, &gw, "sec.youssef", &format!("/console/decisions/{id}"));
    assert!(his.contains("<li>sec.amina</li>"), "{his}");
    let r = release(&f, &gw, "sec.youssef", &id, &amina_token, "confirmed");
    assert_eq!(r.status, 403);
    assert!(
        String::from_utf8_lossy(&r.body)
            .contains("was not made by this gateway for your certificate")
    );
    assert_eq!(
        scraper
            .get(&format!(
                "/v1/persons/{}?purpose=partner-verification",
                persons[20]
            ))
            .status,
        403,
        "still quarantined"
    );
    let r = release(
        &f,
        &gw,
        "sec.youssef",
        &id,
        &csrf_of(&his),
        "confirmed with insurer-x",
    );
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("location"),
        Some(format!("/console/decisions/{id}?done=released").as_str())
    );
    let (_, after) = page(
        &f,
        &gw,
        "sec.youssef",
        &format!("/console/decisions/{id}?done=released"),
    );
    assert!(
        after.contains("Released: the decision is lifted."),
        "{after}"
    );
    assert!(
        after.contains("released (sec.amina, sec.youssef)"),
        "{after}"
    );
    let (_, in_force) = stream.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(in_force, "0", "the open page hears of the release too");
    // The Now page's last hour: the partner's nine records read and its refusals, the
    // minute of the decision marked on the chart.
    let (_, now) = page(&f, &gw, "sec.amina", "/console");
    assert!(now.contains("<svg class=\"chart\""), "{now}");
    assert!(now.contains("class=\"decision\""), "{now}");
    assert!(
        now.contains("<tr><td>partner</td><td>9</td><td>2</td></tr>"),
        "{now}"
    );
    nothing_inline(&now);
    let fresh = Caller::new(&f.home, &f.ca, &gw, "partner.scraper");
    assert_eq!(
        fresh
            .get(&format!(
                "/v1/persons/{}?purpose=partner-verification",
                persons[21]
            ))
            .status,
        200,
        "released at the gateway and the custodians"
    );
}

#[test]
fn only_the_security_team_and_auditors_open_the_console_and_forms_from_elsewhere_change_nothing() {
    let f = fixture();
    let gw = serve(&f.home);
    let scraper = Caller::new(&f.home, &f.ca, &gw, "partner.scraper");
    for p in f
        .fund
        .persons
        .iter()
        .filter(|p| !p.honey && !p.sensitive)
        .step_by(8)
        .take(12)
    {
        let r = scraper.get(&format!(
            "/v1/persons/{}?purpose=partner-verification",
            p.cnss
        ));
        if r.status != 200 {
            break;
        }
    }

    // A clerk's certificate: 403 on every console route, as a page that says why.
    for path in [
        "/console",
        "/console/live",
        "/console/events",
        "/console/decisions",
    ] {
        let (r, body) = page(&f, &gw, "clerk.1", path);
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.content_type, "text/html; charset=utf-8");
        assert!(body.contains("role `clerk`"), "{body}");
    }
    // The quarantined partner's certificate too.
    let (r, _) = page(&f, &gw, "partner.scraper", "/console");
    assert_eq!(r.status, 403);

    // Identities: who holds which role for which institution, a revoked one marked.
    common::ok(common::ribat(
        &f.home,
        &["identity", "revoke", "--name", "sec.youssef"],
    ));
    let (r, ids) = page(&f, &gw, "audit.rachid", "/console/identities");
    assert_eq!(r.status, 200);
    assert!(
        ids.contains("<td>clerk.1</td><td>clerk</td><td>agency-casa-anfa</td>"),
        "{ids}"
    );
    assert!(
        ids.contains(
            "<tr class=\"revoked\" data-identity=\"sec.youssef\"><td>sec.youssef</td><td>security</td>"
        ),
        "{ids}"
    );
    assert!(
        ids.contains(
            "<tr class=\"active\" data-identity=\"sec.amina\"><td>sec.amina</td><td>security</td>"
        ),
        "{ids}"
    );
    let (r, _) = page(&f, &gw, "clerk.1", "/console/identities");
    assert_eq!(r.status, 403);

    // An auditor reads the decision, with no form to release it; a release posted all
    // the same, with a token of its own page, is refused.
    let (r, list) = page(&f, &gw, "audit.rachid", "/console/decisions");
    assert_eq!(r.status, 200);
    let id = first_decision(&list);
    let (_, theirs) = page(&f, &gw, "audit.rachid", &format!("/console/decisions/{id}"));
    assert!(theirs.contains("Your role reads the console"), "{theirs}");
    assert!(!theirs.contains("<form"), "{theirs}");
    let (_, amina) = page(&f, &gw, "sec.amina", &format!("/console/decisions/{id}"));
    let token = csrf_of(&amina);

    // Forms that are not the console's own: from another site, from nowhere, marked
    // cross-site by the browser, without a token, with a token altered.
    let form = format!("csrf={token}&reason=ok");
    let path = format!("/console/decisions/{id}/release");
    let ours = format!("https://{}", gw.addr);
    for (headers, form, why) in [
        (
            vec![("origin", "https://evil.example")],
            form.as_str(),
            "came from https://evil.example",
        ),
        (vec![], form.as_str(), "carries no Origin"),
        (
            vec![("origin", ours.as_str()), ("sec-fetch-site", "cross-site")],
            form.as_str(),
            "`cross-site`",
        ),
        (
            vec![("origin", ours.as_str())],
            "reason=ok",
            "could not be read",
        ),
        (
            vec![("origin", ours.as_str())],
            &form.replacen(&token[token.len() - 4..], "0000", 1),
            "was not made by this gateway",
        ),
    ] {
        let r = browse(&f, &gw, "sec.amina", "POST", &path, form, &headers);
        assert!(
            r.status == 403 || r.status == 400,
            "{headers:?}: {}",
            r.status
        );
        let body = String::from_utf8_lossy(&r.body);
        assert!(body.contains(why), "{headers:?}: {body}");
    }
    let r = release(&f, &gw, "audit.rachid", &id, &token, "x");
    assert_eq!(r.status, 403);
    assert!(String::from_utf8_lossy(&r.body).contains("Your role reads the console"));
    // Nothing changed: no approval recorded, the partner still held.
    let (_, still) = page(&f, &gw, "sec.amina", &format!("/console/decisions/{id}"));
    assert!(
        still.contains("No administrator has approved a release yet."),
        "{still}"
    );
    assert!(still.contains("in force"), "{still}");
    assert_eq!(
        scraper
            .get(&format!(
                "/v1/persons/{}?purpose=partner-verification",
                f.fund.persons[3].cnss
            ))
            .status,
        403
    );
}

#[test]
fn the_audit_page_and_the_citizen_portals_route_list_who_read_a_person_with_proofs_that_ribat_audit_verify_proof_accepts()
 {
    let f = fixture();
    let gw = serve(&f.home);
    let clerk = Caller::new(&f.home, &f.ca, &gw, "clerk.1");
    let person = f
        .fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .unwrap();
    for _ in 0..2 {
        let r = clerk.get(&format!(
            "/v1/persons/{}?purpose=counter-service",
            person.cnss
        ));
        assert_eq!(r.status, 200);
    }
    let origin = format!("https://{}", gw.addr);
    let lookup = |name: &str, cnss: &str| {
        let (_, form) = page(&f, &gw, name, "/console/audit");
        let body = format!("csrf={}&cnss={cnss}", csrf_of(&form));
        browse(
            &f,
            &gw,
            name,
            "POST",
            "/console/audit",
            &body,
            &[("origin", &origin)],
        )
    };
    // Bad input: the message next to the field, the number as typed kept in it.
    let r = lookup("sec.amina", "12AB");
    assert_eq!(r.status, 400);
    let body = String::from_utf8_lossy(&r.body);
    assert!(body.contains("class=\"field-error\"") && body.contains("A CNSS number is 9 digits."));
    assert!(body.contains("value=\"12AB\""), "{body}");
    let r = lookup("sec.amina", "000000000");
    assert!(String::from_utf8_lossy(&r.body).contains("No person has this CNSS number."));

    // The auditor's lookup, once the gateway's next checkpoint is cosigned (every 10 s):
    // both reads, by whom and why, each with its inclusion proof verified.
    let rows_of = |page: &str, who: &str| -> Vec<String> {
        page.split("<tr>")
            .filter(|row| row.contains(&format!("<td>{who}</td>")))
            .map(str::to_owned)
            .collect()
    };
    let started = Instant::now();
    let mut asked = 0;
    let found = loop {
        let r = lookup("audit.rachid", &person.cnss);
        asked += 1;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let body = String::from_utf8(r.body).unwrap();
        let proved = rows_of(&body, "clerk.1")
            .iter()
            .filter(|row| row.contains("inclusion proof verified"))
            .count();
        if proved == 2 {
            break body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no cosigned checkpoint covers both reads: {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(rows_of(&found, "clerk.1").len(), 2, "{found}");
    // Each lookup is itself an access, recorded before the list was shown: the auditor's
    // own are in it (no field read, outcome `listed`), the latest not yet in a checkpoint.
    let lookups = rows_of(&found, "audit.rachid");
    assert_eq!(lookups.len(), asked, "every lookup, this one too: {found}");
    for row in &lookups {
        assert!(
            row.contains("<td>access-review</td>") && row.contains("<td>listed</td>"),
            "{row}"
        );
    }
    let listed: usize = found
        .split("Accesses to this person&#39;s record: ")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(listed, 2 + lookups.len(), "{found}");
    // The log's latest checkpoints, newest first, the one proofs are checked against
    // marked, each with who signed it (the log and its witnesses).
    let history = &found[found
        .find("id=\"checkpoints\"")
        .expect("the checkpoint history")..];
    assert!(history.matches("<tr").count() >= 2, "{history}");
    assert_eq!(history.matches("class=\"latest\"").count(), 1, "{history}");
    assert!(
        history.contains("proofs are checked against this one"),
        "{history}"
    );
    assert!(found.contains("<td>counter-service</td>"), "{found}");
    // The number travels in bodies only: no address on the page holds it.
    for href in found.split("href=\"").skip(1) {
        let url = href.split('"').next().unwrap();
        assert!(!url.contains(&person.cnss), "{url}");
    }
    // Each proof downloads as the file `ribat audit verify-proof` checks.
    let at = found.find("href=\"/console/audit/proof/").unwrap() + 6;
    let link = found[at..].split('"').next().unwrap();
    let r = browse(&f, &gw, "audit.rachid", "GET", link, "", &[]);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition")
            .is_some_and(|d| d.starts_with("attachment;")),
        "{:?}",
        r.headers
    );
    let file = f.home.join("downloaded-proof.json");
    std::fs::write(&file, &r.body).unwrap();
    let o = common::ribat(&f.home, &["audit", "verify-proof", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o));
    // Altered by one byte, the same file is refused.
    let mut v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    v["leafIdx"] = (v["leafIdx"].as_u64().unwrap() + 1).into();
    std::fs::write(&file, v.to_string()).unwrap();
    let o = common::ribat(&f.home, &["audit", "verify-proof", file.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", common::text(&o));
    // A clerk is refused the page.
    let (r, _) = page(&f, &gw, "clerk.1", "/console/audit");
    assert_eq!(r.status, 403);

    // The same question through the API: the citizen portal, on behalf of the person it
    // authenticated, learns when, which institution, why — never who; the authority
    // (an auditor) learns who too. Each inclusion object is a proof file.
    let ask = |name: &str| {
        Caller::new(&f.home, &f.ca, &gw, name).post(
            "/v1/audit/accesses",
            serde_json::json!({"cnss": person.cnss}),
        )
    };
    let r = ask("portal.citizens");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let citizen = r.json();
    let all = citizen["accesses"].as_array().unwrap();
    let accesses: Vec<&serde_json::Value> =
        all.iter().filter(|a| a["outcome"] == "released").collect();
    assert_eq!(accesses.len(), 2, "{citizen}");
    for a in &accesses {
        assert_eq!(a["institution"], "agency-casa-anfa");
        assert_eq!(a["purpose"], "counter-service");
        assert!(a.get("identity").is_none(), "the reader's name: {a}");
        assert!(!a.to_string().contains("clerk.1"), "{a}");
    }
    // The citizen also learns that the authority looked at who read the record (never
    // who at the authority), and sees the portal's own question recorded last.
    assert!(
        all.iter().any(|a| a["institution"] == "cndp"
            && a["purpose"] == "access-review"
            && a["outcome"] == "listed"
            && a.get("identity").is_none()),
        "{citizen}"
    );
    let last = all.last().unwrap();
    assert_eq!(
        (&last["purpose"], &last["role"]),
        (&"citizen-request".into(), &"citizen-portal".into()),
        "{citizen}"
    );
    assert!(!citizen.to_string().contains("audit.rachid"), "{citizen}");
    std::fs::write(&file, accesses[0]["inclusion"].to_string()).unwrap();
    let o = common::ribat(&f.home, &["audit", "verify-proof", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", common::text(&o));
    let authority = ask("audit.rachid").json();
    let released: Vec<&serde_json::Value> = authority["accesses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["outcome"] == "released")
        .collect();
    assert_eq!(released[1]["identity"], "clerk.1", "{authority}");
    // Other roles are refused; a malformed number or an unknown person says so.
    let r = ask("clerk.1");
    assert_eq!((r.status, problem(&r).as_str()), (403, "role-not-allowed"));
    let portal = Caller::new(&f.home, &f.ca, &gw, "portal.citizens");
    let r = portal.post("/v1/audit/accesses", serde_json::json!({"cnss": "12-34"}));
    assert_eq!((r.status, problem(&r).as_str()), (400, "bad-cnss"));
    let r = portal.post(
        "/v1/audit/accesses",
        serde_json::json!({"cnss": "000000000"}),
    );
    assert_eq!(r.status, 404, "{}", String::from_utf8_lossy(&r.body));
}

#[test]
fn an_export_is_approved_by_two_officers_and_run_from_the_console_and_each_fetch_is_listed() {
    let f = fixture();
    let gw = serve(&f.home);
    let amina = Caller::new(&f.home, &f.ca, &gw, "sec.amina");
    let numbers: Vec<&str> = f
        .fund
        .persons
        .iter()
        .filter(|p| !p.honey)
        .take(10)
        .map(|p| p.cnss.as_str())
        .collect();
    let r = amina.post(
        "/v1/exports",
        serde_json::json!({"recipient": "partner.scraper", "purpose": "partner-export", "cnss": numbers}),
    );
    assert_eq!(r.status, 201, "{r:?}");
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let origin = format!("https://{}", gw.addr);
    let step = |name: &str, what: &str| {
        // A form token is the certificate's, whichever page carried it (once Amina has
        // approved, her row has no form left).
        let (_, audit) = page(&f, &gw, name, "/console/audit");
        let form = format!("csrf={}", csrf_of(&audit));
        browse(
            &f,
            &gw,
            name,
            "POST",
            &format!("/console/exports/{id}/{what}"),
            &form,
            &[("origin", &origin)],
        )
    };
    let row = |name: &str| {
        let (_, list) = page(&f, &gw, name, "/console/exports");
        let at = list.find(&format!("<tr id=\"export-{id}\">")).unwrap();
        list[at..at + list[at..].find("</tr>").unwrap()].to_owned()
    };
    assert!(
        row("sec.amina").contains("waiting for approval (0/2)"),
        "{}",
        row("sec.amina")
    );
    assert!(
        !row("sec.amina").contains(&numbers[0].to_string()),
        "no person on the page"
    );

    // Amina approves; her row no longer offers her an approval; the auditor reads it all
    // without a button, and is refused if she posts one anyway.
    let r = step("sec.amina", "approve");
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("location"), Some("/console/exports?done=approve"));
    let mine = row("sec.amina");
    assert!(
        mine.contains("waiting for approval (1/2)") && mine.contains("<td>sec.amina</td>"),
        "{mine}"
    );
    assert!(!mine.contains("/approve"), "{mine}");
    assert!(!row("audit.rachid").contains("<form"));
    assert_eq!(step("audit.rachid", "approve").status, 403);
    let r = step("sec.amina", "run");
    assert_eq!(r.status, 409, "one approval runs nothing");
    // Youssef approves and runs it.
    assert_eq!(step("sec.youssef", "approve").status, 303);
    assert!(row("sec.youssef").contains("approved, ready to run"));
    assert_eq!(step("sec.youssef", "run").status, 303);
    assert!(
        row("sec.youssef").contains("ran "),
        "{}",
        row("sec.youssef")
    );
    assert!(
        row("sec.youssef").contains("(12 rows)"),
        "{}",
        row("sec.youssef")
    );
    // The recipient fetches the file; the page lists the fetch.
    let partner = Caller::new(&f.home, &f.ca, &gw, "partner.scraper");
    assert_eq!(partner.get(&format!("/v1/exports/{id}/file")).status, 200);
    assert!(
        row("audit.rachid").contains("partner.scraper 20"),
        "{}",
        row("audit.rachid")
    );
}

/// A multipart form as a browser sends one: the page's token first, then the file.
fn multipart(csrf: &str, file_name: &str, bytes: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----ribat-test-boundary-7f3a";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"dump\"; filename=\"{file_name}\"\r\nContent-Type: text/csv\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// Uploads `bytes` from the Leaks page as `name`, from `origin` (with the page's token,
/// or none when the page has no form for `name`).
fn upload(f: &Served, gw: &Server, name: &str, origin: &str, bytes: &[u8]) -> Response {
    let (_, form) = page(f, gw, name, "/console/leaks");
    let csrf = form.contains("name=\"csrf\"").then(|| csrf_of(&form));
    let (ct, body) = multipart(csrf.as_deref().unwrap_or(""), "dump 2025 (copy).csv", bytes);
    browse_bytes(f, gw, name, "/console/leaks", body, &ct, origin)
}

/// The scans the node keeps (`HOME/leaks/ID.json`).
fn scans_on_disk(home: &Path) -> usize {
    std::fs::read_dir(home.join("leaks")).map_or(0, |d| {
        d.filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count()
    })
}

#[test]
fn a_dump_uploaded_from_the_console_is_scanned_and_two_administrators_write_the_notification_list()
{
    let f = fixture();
    let gw = serve(&f.home);
    let origin = format!("https://{}", gw.addr);
    let (dump, truth) = leaked_dump(&f.fund, 5_000);

    // Refused before a byte of the dump is read: an auditor, another site, no token. (The
    // answer comes before the body is read, so a client still sending a large body may see
    // the connection close first: these refusals send a few rows.)
    let few = dump.lines().take(3).collect::<Vec<_>>().join("\n");
    let r = upload(&f, &gw, "audit.rachid", &origin, few.as_bytes());
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let r = upload(&f, &gw, "sec.amina", "https://evil.example", few.as_bytes());
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    let (ct, body) = multipart("", "dump.csv", few.as_bytes());
    let r = browse_bytes(&f, &gw, "sec.amina", "/console/leaks", body, &ct, &origin);
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(scans_on_disk(&f.home), 0);
    // An empty file: the message next to the field.
    let r = upload(&f, &gw, "sec.amina", &origin, b"");
    assert_eq!(r.status, 400);
    let page_text = String::from_utf8_lossy(&r.body);
    assert!(
        page_text.contains("class=\"field-error\" id=\"dump-error\">The file is empty."),
        "{page_text}"
    );
    assert_eq!(scans_on_disk(&f.home), 0);

    // Amina's upload: the scan's page, followed until the report.
    let r = upload(&f, &gw, "sec.amina", &origin, dump.as_bytes());
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    let at = r.header("location").unwrap().to_owned();
    let id = at.strip_prefix("/console/leaks/").unwrap().to_owned();
    let started = Instant::now();
    let report = loop {
        let (r, body) = page(&f, &gw, "audit.rachid", &at);
        assert_eq!(r.status, 200, "{body}");
        if body.contains("data-phase=\"done\"") {
            break body;
        }
        assert!(!body.contains("data-phase=\"failed\""), "{body}");
        assert!(started.elapsed() < Duration::from_secs(60), "{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    nothing_inline(&report);
    let count = |class: &str| -> u64 {
        let at = report
            .find(&format!("<tr data-class=\"{class}\"><td>{class}</td><td>"))
            .unwrap_or_else(|| panic!("no {class} row: {report}"));
        let rest = &report[at..];
        let n = rest
            .split("<td>")
            .nth(2)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        n.parse().unwrap()
    };
    assert_eq!(count("genuine-current"), truth.genuine, "{report}");
    assert_eq!(count("honey"), truth.honey, "{report}");
    assert_eq!(count("fabricated"), truth.fabricated, "{report}");
    assert_eq!(count("altered"), truth.altered, "{report}");
    assert!(
        report.contains(&format!("<dd id=\"affected\">{}</dd>", truth.genuine)),
        "{report}"
    );
    // The name as kept: no path, no markup; the leaked rows are gone from the disk.
    assert!(report.contains("dump_2025__copy_.csv"), "{report}");
    assert!(!f.home.join("leaks").join(&id).join("dump").exists());
    assert!(
        f.home
            .join("leaks")
            .join(&id)
            .join("report/rows.jsonl")
            .exists()
    );
    // No leaked value on the page: not a CIN, not a name.
    let p = f.fund.persons.iter().find(|p| !p.honey).unwrap();
    assert!(
        !report.contains(&p.cin) && !report.contains(&p.cnss),
        "{report}"
    );

    // The notification list: Amina approves, cannot approve twice, an auditor cannot;
    // Youssef's approval writes it.
    let notify = |name: &str| {
        let (_, body) = page(&f, &gw, name, &at);
        let csrf = csrf_of(&body);
        browse(
            &f,
            &gw,
            name,
            "POST",
            &format!("/console/leaks/{id}/notify"),
            &format!("csrf={csrf}"),
            &[("origin", &origin)],
        )
    };
    let r = notify("sec.amina");
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("location"),
        Some(format!("{at}?done=pending").as_str())
    );
    let r = browse(
        &f,
        &gw,
        "sec.amina",
        "POST",
        &format!("/console/leaks/{id}/notify"),
        &format!("csrf={}", csrf_of(&page(&f, &gw, "sec.youssef", &at).1)),
        &[("origin", &origin)],
    );
    assert_eq!(r.status, 403, "another administrator's token");
    let (_, again) = page(&f, &gw, "sec.amina", &at);
    assert!(
        again.contains("a second administrator must approve from their own browser"),
        "{again}"
    );
    assert!(!again.contains("action=\"/console/leaks/"), "{again}");
    let r = browse(
        &f,
        &gw,
        "audit.rachid",
        "POST",
        &format!("/console/leaks/{id}/notify"),
        "csrf=x",
        &[("origin", &origin)],
    );
    assert_eq!(r.status, 403);
    let r = browse(
        &f,
        &gw,
        "sec.amina",
        "GET",
        &format!("/console/leaks/{id}/notification.csv"),
        "",
        &[],
    );
    assert_eq!(r.status, 409, "no list before the second approval");
    let r = notify("sec.youssef");
    assert_eq!(r.status, 303, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(
        r.header("location"),
        Some(format!("{at}?done=written").as_str())
    );

    // The list names every real person of the dump, in clear, for the security team only;
    // each fetch is on the page.
    let r = browse(
        &f,
        &gw,
        "audit.rachid",
        "GET",
        &format!("/console/leaks/{id}/notification.csv"),
        "",
        &[],
    );
    assert_eq!(r.status, 403);
    let r = browse(
        &f,
        &gw,
        "sec.youssef",
        "GET",
        &format!("/console/leaks/{id}/notification.csv"),
        "",
        &[],
    );
    assert_eq!(r.status, 200);
    let csv = String::from_utf8(r.body).unwrap();
    assert_eq!(csv.lines().count() as u64, truth.genuine + 1, "{csv}");
    assert!(csv.contains(&p.cin), "{csv}");
    let (_, after) = page(&f, &gw, "sec.amina", &at);
    assert!(
        after.contains(&format!(
            "kept nowhere on the node); persons named: {}",
            truth.genuine
        )),
        "{after}"
    );
    assert!(after.contains("Fetched by: sec.youssef"), "{after}");
    // I4: the list, personal data in clear, is made at each download and kept nowhere on
    // the node: no file under its leaks directory holds a listed person's CIN.
    fn files(dir: &Path) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir).map_or(Vec::new(), |d| {
            d.flat_map(|e| {
                let p = e.unwrap().path();
                if p.is_dir() { files(&p) } else { vec![p] }
            })
            .collect()
        })
    }
    let kept = files(&f.home.join("leaks"));
    assert!(!kept.is_empty());
    for file in kept {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&p.cin),
            "{} holds a listed person's CIN",
            file.display()
        );
    }
    // Each person's decryption is audited under breach-notification: the Audit page says
    // so for one of them.
    let (_, form) = page(&f, &gw, "sec.amina", "/console/audit");
    let lookup = browse(
        &f,
        &gw,
        "sec.amina",
        "POST",
        "/console/audit",
        &format!("csrf={}&cnss={}", csrf_of(&form), p.cnss),
        &[("origin", &origin)],
    );
    let found = String::from_utf8_lossy(&lookup.body);
    assert!(found.contains("<td>breach-notification</td>"), "{found}");
}

/// Posts raw bytes as a browser would, with `ct` and `origin`.
fn browse_bytes(
    f: &Served,
    gw: &Server,
    name: &str,
    path: &str,
    body: Vec<u8>,
    ct: &str,
    origin: &str,
) -> Response {
    let cfg = tls_config(&f.ca, Some(&identity(&f.home, name)));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let host = gw.addr.rsplit_once(':').unwrap().0;
        let mut c = Connection::open(cfg, &gw.addr, host, false).await.unwrap();
        c.send_as_browser("POST", path, body, Some(ct), &[("origin", origin)])
            .await
            .unwrap()
    })
}

#[test]
fn a_certificate_asked_for_by_one_administrator_is_issued_on_anothers_approval_and_revoked_with_a_reason()
 {
    let f = fixture();
    let gw = serve(&f.home);
    let origin = format!("https://{}", gw.addr);
    let post = |name: &str, path: &str, fields: &str| {
        let (_, form) = page(&f, &gw, name, "/console/identities");
        let body = format!("csrf={}&{fields}", csrf_of(&form));
        let r = browse(&f, &gw, name, "POST", path, &body, &[("origin", &origin)]);
        let text = String::from_utf8_lossy(&r.body).into_owned();
        (r, text)
    };
    let ask = "/console/identities/request";

    // Bad input: the message next to its field, what was typed kept.
    let (r, text) = post(
        "sec.amina",
        ask,
        "name=clerk+new%21&role=clerk&institution=agency-fes&days=30",
    );
    assert_eq!(r.status, 400);
    assert!(
        text.contains("id=\"issue-name-error\">identity name `clerk new!`"),
        "{text}"
    );
    assert!(text.contains("value=\"agency-fes\""), "{text}");
    let (r, text) = post(
        "sec.amina",
        ask,
        "name=clerk.new&role=clerk&institution=agency-fes&days=0",
    );
    assert_eq!(r.status, 400);
    assert!(
        text.contains("id=\"issue-days-error\">from 1 to 397 days"),
        "{text}"
    );
    let (r, text) = post(
        "sec.amina",
        ask,
        "name=gw.2&role=gateway&institution=cnss&days=30",
    );
    assert_eq!(r.status, 400);
    assert!(
        text.contains("id=\"issue-role-error\">a `gateway` certificate serves TLS"),
        "{text}"
    );
    // Nor the node's own roles: a `service` certificate would open the blind-index key.
    let (r, text) = post(
        "sec.amina",
        ask,
        "name=svc.2&role=service&institution=cnss&days=30",
    );
    assert_eq!(r.status, 400);
    assert!(
        text.contains("id=\"issue-role-error\">`service` is the node&#39;s own role"),
        "{text}"
    );
    // An auditor reads the page and cannot ask.
    let r = browse(
        &f,
        &gw,
        "audit.rachid",
        "POST",
        ask,
        "csrf=x&name=clerk.new&role=clerk&institution=agency-fes&days=30",
        &[("origin", &origin)],
    );
    assert_eq!(r.status, 403);

    // Amina asks; she cannot approve her own request; Youssef's approval issues it.
    let (r, _) = post(
        "sec.amina",
        ask,
        "name=clerk.new&role=clerk&institution=agency-fes&days=30",
    );
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/console/identities?done=requested")
    );
    let (_, listed) = page(&f, &gw, "sec.amina", "/console/identities");
    let at = listed.find("id=\"request-").expect("the request listed") + 12;
    let id = listed[at..at + 16].to_owned();
    assert!(
        listed.contains("waiting for a second administrator"),
        "{listed}"
    );
    assert!(
        !listed.contains(&format!("/console/identities/approve/{id}")),
        "no approval form for the one who asked: {listed}"
    );
    let approve = format!("/console/identities/approve/{id}");
    let (r, text) = post("sec.amina", &approve, "x=1");
    assert_eq!(r.status, 409);
    assert!(
        text.contains("a second administrator must approve it"),
        "{text}"
    );
    let issued_dir = f.home.join("identity/issued/clerk.new");
    assert!(!issued_dir.exists());
    let (r, _) = post("sec.youssef", &approve, "x=1");
    assert_eq!(r.status, 303);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(issued_dir.join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let (_, listed) = page(&f, &gw, "audit.rachid", "/console/identities");
    assert!(
        listed.contains("issued: approved by sec.youssef"),
        "{listed}"
    );
    assert!(
        listed.contains("<tr class=\"active\" data-identity=\"clerk.new\">"),
        "{listed}"
    );
    // The new clerk reads at a counter with the certificate issued.
    let clerk = Caller::new(&f.home, &f.ca, &gw, "clerk.new");
    let person = f
        .fund
        .persons
        .iter()
        .find(|p| !p.honey && !p.sensitive)
        .unwrap();
    let r = clerk.get(&format!(
        "/v1/persons/{}?purpose=counter-service",
        person.cnss
    ));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    // Revoked on Amina's word, with a reason (none: the message next to the field); not
    // her own certificate from her own console.
    let revoke = "/console/identities/revoke";
    let (r, text) = post("sec.amina", revoke, "name=clerk.new&reason=");
    assert_eq!(r.status, 400);
    assert!(
        text.contains("id=\"reason-clerk.new-error\">say why"),
        "{text}"
    );
    let (r, text) = post("sec.amina", revoke, "name=sec.amina&reason=testing");
    assert_eq!(r.status, 400);
    assert!(
        text.contains("you cannot revoke your own certificate"),
        "{text}"
    );
    let (r, _) = post(
        "sec.amina",
        revoke,
        "name=clerk.new&reason=badge+reported+stolen",
    );
    assert_eq!(r.status, 303);
    let journal = std::fs::read_to_string(f.home.join("identity/revocations.jsonl")).unwrap();
    // Nothing to revoke: refused next to the field, and the journal names no revocation
    // that did not happen.
    let (r, text) = post("sec.amina", revoke, "name=nobody.here&reason=typo");
    assert_eq!(r.status, 400);
    assert!(
        text.contains("role=\"alert\">no unrevoked certificate named `nobody.here`"),
        "{text}"
    );
    assert!(!text.contains("id=\"issue-name-error\""), "{text}");
    assert_eq!(
        std::fs::read_to_string(f.home.join("identity/revocations.jsonl")).unwrap(),
        journal
    );
    let line: serde_json::Value = serde_json::from_str(journal.lines().last().unwrap()).unwrap();
    assert_eq!(
        (
            line["name"].as_str(),
            line["by"].as_str(),
            line["reason"].as_str()
        ),
        (
            Some("clerk.new"),
            Some("sec.amina"),
            Some("badge reported stolen")
        )
    );
    let e = match call(
        &gw.addr,
        config(&f.ca, Some(&identity(&f.home, "clerk.new"))),
        "GET",
        "/healthz",
        None,
        None,
    ) {
        Err(e) => e.to_string(),
        Ok(r) => panic!("a revoked certificate was answered: HTTP {}", r.status),
    };
    assert!(e.contains("CertificateRevoked"), "{e}");
    let (_, listed) = page(&f, &gw, "sec.youssef", "/console/identities");
    assert!(
        listed.contains("<tr class=\"revoked\" data-identity=\"clerk.new\">"),
        "{listed}"
    );
}

/// What a node killed while a dump waited (or was half scanned) leaves on its disk, and an
/// upload cut off before it was acknowledged: at the next start the first is scanned, the
/// second deleted.
#[test]
fn a_dump_left_queued_by_a_killed_node_is_scanned_at_its_next_start_and_an_unacknowledged_upload_is_deleted()
 {
    let f = fixture();
    let (dump, truth) = leaked_dump(&f.fund, 1_000);
    let leaks = f.home.join("leaks");
    let (queued, cut) = ("01a0000000000001", "01a0000000000002");
    std::fs::create_dir_all(leaks.join(queued)).unwrap();
    std::fs::create_dir_all(leaks.join(cut)).unwrap();
    std::fs::write(leaks.join(queued).join("dump"), &dump).unwrap();
    std::fs::write(leaks.join(cut).join("dump.partial"), &dump[..100]).unwrap();
    let state = serde_json::json!({
        "id": queued, "file": "left.csv", "bytes": dump.len(), "sha256": "00",
        "by": "sec.amina", "uploaded_at": 1_796_000_000, "phase": "scanning",
        "rows_done": 120, "report": null, "error": null, "approvals": [],
        "notification": null,
    });
    std::fs::write(leaks.join(format!("{queued}.json")), state.to_string()).unwrap();

    let gw = serve(&f.home);
    let at = format!("/console/leaks/{queued}");
    let started = Instant::now();
    let report = loop {
        let (r, body) = page(&f, &gw, "sec.amina", &at);
        assert_eq!(r.status, 200, "{body}");
        if body.contains("data-phase=\"done\"") {
            break body;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "{body}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        report.contains(&format!(
            "<tr data-class=\"genuine-current\"><td>genuine-current</td><td>{}</td>",
            truth.genuine
        )),
        "{report}"
    );
    assert!(!leaks.join(queued).join("dump").exists());
    assert!(!leaks.join(cut).exists());
    let (_, list) = page(&f, &gw, "sec.amina", "/console/leaks");
    assert!(!list.contains(cut), "{list}");
}
