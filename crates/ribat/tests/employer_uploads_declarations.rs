//! An employer uploads its monthly e-BDS file through the API, for its own affiliation
//! only; a supervisor then reads the person's declarations. Malformed files and files of
//! another employer are refused with a line number or a reason, never a value.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::api::*;
use common::*;

#[test]
fn an_employer_uploads_its_own_declarations_and_nobody_elses() {
    let dir = tempfile::tempdir().unwrap();
    let (src, home, fund) = fund_and_keys(dir.path(), 120, 4, 1, 11);
    ok(ribat(
        &home,
        &[
            "import",
            src.join("persons.csv").to_str().unwrap(),
            src.join("employers.csv").to_str().unwrap(),
            "--passphrases",
            "env",
        ],
    ));
    ok(ribat(&home, &["identity", "init"]));
    let (mine, theirs) = (&fund.employers[0], &fund.employers[1]);
    add(&home, "employer.payroll", "employer", &mine.affiliation);
    add(&home, "supervisor.1", "supervisor", "cnss-inspection");
    let ca = identity(&home, "gateway.embedded").join("ca.pem");
    // What a crash mid-import left behind: an upload never answered.
    let stale = home.join("uploads").join(&mine.affiliation);
    std::fs::create_dir_all(&stale).unwrap();
    std::fs::write(stale.join("DS_left_by_a_crash.txt"), "E1 salaries in clear").unwrap();
    let gw = start(
        &home,
        &["serve", "--listen", "127.0.0.1:0", "--passphrases", "env"],
        &[],
    );
    let emp = identity(&home, "employer.payroll");
    let tok = token(&gw.addr, &ca, &emp);
    let file = |aff: &str| {
        let entries = std::fs::read_dir(src.join("ebds")).unwrap();
        let path = entries
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .starts_with(&format!("DS_{aff}_"))
            })
            .unwrap();
        std::fs::read_to_string(path).unwrap()
    };
    let upload = |body: &str, purpose: &str| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut c = ribat_net::client::Connection::open(
                tls_config(&ca, Some(&emp)),
                &gw.addr,
                "127.0.0.1",
                false,
            )
            .await
            .unwrap();
            c.send_raw(
                "POST",
                &format!("/v1/declarations?purpose={purpose}"),
                Some(&tok),
                body.as_bytes().to_vec(),
                "text/plain",
            )
            .await
            .unwrap()
        })
    };

    // The gateway deleted it at start: its employer sends it again.
    assert!(!stale.join("DS_left_by_a_crash.txt").exists());
    let r = upload(&file(&mine.affiliation), "declaration-upload");
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // Sealed and stored, the file is not kept in clear on the gateway's disk (I4).
    let kept: Vec<_> = walk(&home.join("uploads"));
    assert!(kept.is_empty(), "uploads kept in clear: {kept:?}");
    let stored = r.json()["stored"].as_u64().unwrap();
    let employees = fund.persons.iter().filter(|p| p.employer == 0).count() as u64;
    assert!(stored > 0 && stored <= employees, "{stored} of {employees}");
    // The same file again stores nothing new (an employer's retry after a timeout).
    let r = upload(&file(&mine.affiliation), "declaration-upload");
    assert_eq!((r.status, r.json()["stored"].as_u64()), (201, Some(0)));
    assert_eq!(r.json()["already_stored"].as_u64(), Some(stored));

    // Another employer's file, a damaged file, a missing purpose.
    let r = upload(&file(&theirs.affiliation), "declaration-upload");
    assert_eq!(
        (r.status, problem(&r).as_str()),
        (403, "affiliation-mismatch")
    );
    assert!(
        !String::from_utf8_lossy(&r.body).contains(&theirs.affiliation),
        "no value of the file is echoed"
    );
    let mut damaged = file(&mine.affiliation);
    damaged.replace_range(0..3, "Z99");
    let r = upload(&damaged, "declaration-upload");
    assert_eq!((r.status, problem(&r).as_str()), (422, "ebds-refused"));
    assert!(walk(&home.join("uploads")).is_empty());
    assert!(
        r.json()["detail"].as_str().unwrap().contains("line 1"),
        "{r:?}"
    );
    let r = upload(&file(&mine.affiliation), "employee-check");
    assert_eq!(
        (r.status, problem(&r).as_str()),
        (403, "purpose-not-allowed")
    );

    // A supervisor sees the uploaded month in the person's history.
    let person = fund
        .persons
        .iter()
        .find(|p| p.employer == 0 && !p.honey)
        .unwrap();
    let sup = identity(&home, "supervisor.1");
    let stok = token(&gw.addr, &ca, &sup);
    let r = call(
        &gw.addr,
        config(&ca, Some(&sup)),
        "GET",
        &format!(
            "/v1/persons/{}/declarations?purpose=investigation",
            person.cnss
        ),
        Some(&stok),
        None,
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["declarations"].as_array().unwrap().len(),
        1,
        "{r:?}"
    );

    // Lookups through the blind indexes: a CIN as typed at a counter, a name in Arabic script.
    let search = |body: serde_json::Value| {
        call(
            &gw.addr,
            config(&ca, Some(&sup)),
            "POST",
            "/v1/persons/search",
            Some(&stok),
            Some(body),
        )
        .unwrap()
    };
    let r =
        search(serde_json::json!({"purpose": "investigation", "cin": person.cin.to_lowercase()}));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["matches"][0]["fields"]["cnss"],
        person.cnss.as_str()
    );
    let r = search(serde_json::json!({
        "purpose": "investigation",
        "name": person.name_arabic,
        "birth_date": person.birth_date,
        "fields": ["cnss", "surname"],
    }));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.json()["matches"][0]["fields"]["surname"],
        person.surname.as_str()
    );
    assert!(
        r.json()["matches"][0]["fields"].get("cin").is_none(),
        "only the fields asked for"
    );
}

/// Every file under `dir` (none when it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                found.push(p);
            }
        }
    }
    found
}
