//! Running the real `ribat` binary on a real node directory, and opening that node
//! in-process to check what it holds.
#![allow(dead_code)]

use ribat_crypto::secret::Passphrase;
use ribat_custodian::clock::SystemClock;
use ribat_custodian::{Custodian, LocalCustodian, PartialRequest, QuorumReader, Requester};
use ribat_store::SqliteStore;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

pub(crate) mod api;

pub(crate) const PASSES: [(&str, &str); 3] = [
    (
        "RIBAT_CUSTODIAN_1_PASSPHRASE",
        "first custodian's long passphrase",
    ),
    (
        "RIBAT_CUSTODIAN_2_PASSPHRASE",
        "second custodian's long passphrase",
    ),
    (
        "RIBAT_CUSTODIAN_3_PASSPHRASE",
        "third custodian's long passphrase",
    ),
];

pub(crate) fn command(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ribat"));
    c.arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RIBAT_HOME");
    for (k, v) in PASSES {
        c.env(k, v);
    }
    c
}

pub(crate) fn ribat(home: &Path, args: &[&str]) -> Output {
    command(home, args).output().unwrap()
}

pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub(crate) fn ok(o: Output) -> String {
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    t
}

/// Generates a fund's files with the CLI and initialises keys in `home`.
pub(crate) fn fund_and_keys(
    dir: &Path,
    persons: usize,
    employers: usize,
    months: usize,
    seed: u64,
) -> (PathBuf, PathBuf, ribat_sim::Fund) {
    let src = dir.join("source");
    let home = dir.join("node");
    let (p, e, m, s) = (
        persons.to_string(),
        employers.to_string(),
        months.to_string(),
        seed.to_string(),
    );
    ok(ribat(
        &home,
        &[
            "sim",
            "generate",
            "--persons",
            &p,
            "--employers",
            &e,
            "--months",
            &m,
            "--seed",
            &s,
            "--out",
            src.to_str().unwrap(),
        ],
    ));
    ok(ribat(&home, &["keys", "init", "--passphrases", "env"]));
    let fund = ribat_sim::generate(&ribat_sim::FundSpec::new(persons, employers, months, seed));
    (src, home, fund)
}

/// Sets one detector rule's mode in HOME/rules.json.
pub(crate) fn set_rule_mode(home: &Path, rule: &str, mode: &str) {
    let path = home.join("rules.json");
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v[rule]["mode"] = mode.into();
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
}

/// The node opened in this process: a reader over its three custodians.
pub(crate) struct Node {
    pub reader: QuorumReader,
    pub store: Arc<SqliteStore>,
    pub index: ribat_crypto::blind_index::BlindIndexer,
    pub group: ribat_crypto::group::GroupPublic,
}

pub(crate) fn open(home: &Path) -> Node {
    let group = ribat_crypto::group::GroupPublic::from_json(
        &std::fs::read_to_string(home.join("group.json")).unwrap(),
    )
    .unwrap();
    let store = Arc::new(SqliteStore::open(&home.join("store.sqlite")).unwrap());
    let custodians: Vec<Arc<dyn Custodian>> = (1..=3)
        .map(|i| {
            let dir = home.join(format!("custodians/custodian-{i}"));
            Arc::new(
                LocalCustodian::open(
                    &dir,
                    &Passphrase::new(PASSES[i - 1].1.into()),
                    store.clone(),
                    Arc::new(SystemClock),
                )
                .unwrap(),
            ) as Arc<dyn Custodian>
        })
        .collect();
    let reader = QuorumReader::new(group.clone(), custodians, store.clone());
    let index = reader
        .open_index_key(
            &Requester {
                identity: "test".into(),
                role: ribat_policy::Role::SERVICE,
            },
            "test-start",
        )
        .unwrap();
    Node {
        reader,
        store,
        index,
        group,
    }
}

/// Reads `class` of records in batches, as the pension run would.
pub(crate) fn read_all(
    node: &Node,
    table: ribat_policy::Table,
    class: &str,
    ids: &[String],
) -> Vec<ribat_crypto::envelope::OpenedFields> {
    let who = Requester {
        identity: "batch.pension-run".into(),
        role: "pension-batch".parse().unwrap(),
    };
    let mut out = Vec::new();
    for (n, chunk) in ids.chunks(5_000).enumerate() {
        let read = node
            .reader
            .read(&PartialRequest {
                set: None,
                epoch: None,
                request_id: format!("check-{table}-{class}-{n}"),
                requester: who.clone(),
                purpose: "pension-run".parse().unwrap(),
                table,
                class: class.parse().unwrap(),
                record_ids: chunk.to_vec(),
                token: None,
                asked: None,
            })
            .unwrap();
        out.extend(read.records.into_iter().map(|(_, f)| f));
    }
    out
}

/// The record ids of the fund's declarations, as the import made them.
pub(crate) fn declaration_ids(
    sealer: &ribat_import::records::RecordSealer,
    fund: &ribat_sim::Fund,
    person_ids: &[String],
) -> Vec<String> {
    fund.declarations
        .iter()
        .map(|d| {
            let employer = sealer
                .employer_id(&fund.employers[d.employer].affiliation)
                .unwrap();
            ribat_import::records::declaration_id(&d.period, &person_ids[d.person], &employer)
        })
        .collect()
}

pub(crate) fn field(f: &ribat_crypto::envelope::OpenedFields, name: &str) -> String {
    String::from_utf8(f.get(name).unwrap().to_vec()).unwrap()
}

/// Every identifying or financial value of the fund, as it would be written in clear.
pub(crate) fn needles(fund: &ribat_sim::Fund) -> Vec<String> {
    let mut v = Vec::new();
    for p in &fund.persons {
        v.push(format!("{} {}", p.given, p.surname));
        v.push(p.nom_prenom());
        v.push(p.name_arabic.clone());
        v.push(p.cin.clone());
        v.push(p.cnss.clone());
        v.push(p.rib.clone());
    }
    for d in &fund.declarations {
        if d.salary_real > 0 {
            v.push(d.salary_real.to_string());
        }
    }
    v.sort();
    v.dedup();
    v
}

/// The dump with every `\x…` BYTEA field replaced by its bytes; fields and lines are kept
/// apart by newlines so that no match spans two of them.
pub(crate) fn decode_bytea(dump: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(dump.len());
    for line in dump.split(|&b| b == b'\n') {
        for field in line.split(|&b| b == b'\t') {
            // COPY text format doubles the backslash of BYTEA's `\\x` prefix.
            match field.strip_prefix(b"\\\\x") {
                Some(hex_digits)
                    if hex_digits.len() % 2 == 0
                        && hex_digits.iter().all(u8::is_ascii_hexdigit) =>
                {
                    for pair in hex_digits.chunks(2) {
                        let s = std::str::from_utf8(pair).unwrap();
                        out.push(u8::from_str_radix(s, 16).unwrap());
                    }
                }
                _ => out.extend_from_slice(field),
            }
            out.push(b'\n');
        }
    }
    out
}

/// Now plus `secs` seconds, RFC 3339.
pub(crate) fn in_seconds(secs: i64) -> String {
    (time::OffsetDateTime::now_utc() + time::Duration::seconds(secs))
        .replace_nanosecond(0)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// What `simulate --scenario partner-review --json` must report, embedded or against a mesh:
/// the partner nobody reviewed answered until its review date and refused from it (with
/// findings from a week before), the re-certified one and the one reviewed after the month
/// never refused, the pension batch kept past its date as an essential role, and nobody
/// else refused.
pub(crate) fn a_month_of_third_parties(r: &serde_json::Value) {
    assert!(
        r["simulated_hours"].as_f64().unwrap() > 24.0 * 29.0,
        "{r:#}"
    );
    let reviews = r["reviews"].as_array().unwrap();
    let of = |name: &str| reviews.iter().find(|x| x["identity"] == name).unwrap();
    let day = 86_400_000u64;
    // The partner nobody reviewed: answered until its review date, refused from it, with
    // findings from a week before.
    let lapsed = of("partner.01");
    let due = lapsed["review_by_ms"].as_u64().unwrap();
    assert_eq!(lapsed["lapsed_at_ms"].as_u64(), Some(due), "{lapsed:#}");
    assert!(
        lapsed["ok_before_lapse"].as_u64().unwrap() > 100,
        "{lapsed:#}"
    );
    assert_eq!(
        lapsed["refused_before_lapse"],
        serde_json::json!({}),
        "{lapsed:#}"
    );
    assert_eq!(lapsed["ok_after_lapse"], 0, "{lapsed:#}");
    let refused = lapsed["refused_after_lapse"]["certificate-review-lapsed"]
        .as_u64()
        .unwrap_or(0);
    assert!(refused > 100, "{lapsed:#}");
    let first = lapsed["first_refused_ms"].as_u64().unwrap();
    assert!(first >= due && first < due + day, "{lapsed:#}");
    let findings: Vec<u64> = lapsed["findings_ms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_u64().unwrap())
        .collect();
    assert!(
        findings
            .first()
            .is_some_and(|&f| f < due && f >= due - 7 * day),
        "{lapsed:#}"
    );
    // The partner re-certified before its date, and the identities reviewed after the
    // month: never refused.
    let recertified = of("partner.00");
    assert!(recertified["recertified"].is_array(), "{recertified:#}");
    assert_eq!(recertified["lapsed_at_ms"], serde_json::Value::Null);
    for name in ["partner.00", "partner.02"] {
        let x = of(name);
        assert_eq!(x["refused_before_lapse"], serde_json::json!({}), "{x:#}");
        assert_eq!(x["refused_after_lapse"], serde_json::json!({}), "{x:#}");
        assert!(x["ok_before_lapse"].as_u64().unwrap() > 100, "{x:#}");
    }
    // The pension batch's review lapsed the day before its run: an essential role by the
    // rules, it is kept — the whole run answered — and its finding is raised every day.
    let batch = of("batch.pensions");
    assert_eq!(batch["essential"], true, "{batch:#}");
    assert!(batch["lapsed_at_ms"].is_u64(), "{batch:#}");
    assert_eq!(
        batch["refused_after_lapse"],
        serde_json::json!({}),
        "{batch:#}"
    );
    assert!(
        batch["ok_after_lapse"].as_u64().unwrap() > 1_000,
        "{batch:#}"
    );
    // Its own first date passed while it kept working: the re-certification counted.
    assert!(
        recertified["ok_after_first_date"].as_u64().unwrap() > 100,
        "{recertified:#}"
    );
    // Nobody else lost a request.
    assert_eq!(
        r["legit_failures"].as_u64().unwrap(),
        refused,
        "only the lapsed partner was refused: {r:#}"
    );
    assert_eq!(r["false_quarantines"], 0, "{r:#}");
}
