//! The records a user's signed read names, as a custodian finds them with its own copy of
//! the blind-index key and its view of the store: exactly those, and a partial request
//! stays within them or is refused with its reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use ribat_crypto::blind_index::{BlindIndexer, DECLARATIONS_OF};
use ribat_crypto::envelope::Sealer;
use ribat_crypto::secret::SecretBytes;
use ribat_custodian::asked::{AskedRead, Subject, records_named, within};
use ribat_custodian::{PartialRequest, Requester};
use ribat_policy::{Class, Table};
use ribat_store::{Store, StoredClass, StoredRecord};
use std::collections::BTreeSet;

const CNSS_A: &str = "152099839";
const CNSS_B: &str = "118214873";
const AFFILIATION: &str = "1234567";

struct World {
    v: Vault,
    index: BlindIndexer,
    a: String,
    b: String,
    declarations_a: BTreeSet<String>,
    employer: String,
}

fn index() -> BlindIndexer {
    BlindIndexer::new(SecretBytes::new([0x3c; 32]))
}

/// Two persons (A with two declarations, B with one) and an employer, with the index tags
/// the import writes.
fn world() -> World {
    let v = Vault::new();
    let idx = index();
    let sealer = Sealer::new("identity", v.group.class("identity").unwrap(), 1);
    let record = |table: &str, id: &str, tags: Vec<(String, [u8; 16])>| {
        let e = sealer.seal(table, id, &[("x", b"y")]).unwrap();
        StoredRecord {
            table: table.into(),
            record_id: id.into(),
            version: 1,
            classes: vec![StoredClass {
                class: e.class.clone(),
                epoch: e.epoch,
                r: e.r,
                envelope: e.to_bytes().unwrap(),
            }],
            index: tags,
            digests: Vec::new(),
        }
    };
    let a = idx.person_record_id(CNSS_A).unwrap();
    let b = idx.person_record_id(CNSS_B).unwrap();
    let employer = idx.employer_record_id(AFFILIATION).unwrap();
    let of = |p: &str| {
        (
            DECLARATIONS_OF.to_owned(),
            idx.reference(DECLARATIONS_OF, p).unwrap().0,
        )
    };
    let declarations_a: BTreeSet<String> = ["202401", "202402"]
        .iter()
        .map(|m| format!("d-{m}-{a}-{employer}"))
        .collect();
    let mut recs = vec![
        record(
            "persons",
            &a,
            vec![
                ("cin".into(), idx.cin("AB123456").unwrap().0),
                (
                    "name-birth".into(),
                    idx.name_birth("Amina Tazi", "1980-01-02").unwrap().0,
                ),
            ],
        ),
        record(
            "persons",
            &b,
            vec![("cin".into(), idx.cin("CD654321").unwrap().0)],
        ),
        record("employers", &employer, Vec::new()),
        record(
            "declarations",
            &format!("d-202401-{b}-{employer}"),
            vec![of(&b)],
        ),
    ];
    for d in &declarations_a {
        recs.push(record("declarations", d, vec![of(&a)]));
    }
    v.store.put_records(&recs).unwrap();
    World {
        v,
        index: idx,
        a,
        b,
        declarations_a,
        employer,
    }
}

fn named(w: &World, s: Subject) -> (Table, BTreeSet<String>) {
    records_named(&w.index, w.v.store.as_ref(), &s).unwrap()
}

#[test]
fn each_subject_names_exactly_its_records() {
    let w = world();
    let one = |id: &String| BTreeSet::from([id.clone()]);
    assert_eq!(
        named(&w, Subject::Person(CNSS_A.into())),
        (Table::Persons, one(&w.a))
    );
    assert_eq!(
        named(&w, Subject::Declarations(CNSS_A.into())),
        (Table::Declarations, w.declarations_a.clone())
    );
    assert_eq!(
        named(&w, Subject::Cin("CD654321".into())),
        (Table::Persons, one(&w.b))
    );
    assert_eq!(
        named(
            &w,
            Subject::NameBirth("Amina Tazi".into(), "1980-01-02".into())
        ),
        (Table::Persons, one(&w.a))
    );
    assert_eq!(
        named(&w, Subject::Employer(AFFILIATION.into())),
        (Table::Employers, one(&w.employer))
    );
    // A search that finds nobody names nothing.
    assert_eq!(
        named(&w, Subject::Cin("ZZ000000".into())),
        (Table::Persons, BTreeSet::new())
    );
}

fn request(table: Table, purpose: &str, ids: &[&String]) -> PartialRequest {
    PartialRequest {
        set: None,
        epoch: None,
        request_id: "r".into(),
        requester: Requester {
            identity: "clerk.amal".into(),
            role: "clerk".parse().unwrap(),
        },
        purpose: purpose.parse().unwrap(),
        table,
        class: Class::FINANCIAL,
        record_ids: ids.iter().map(|s| (*s).clone()).collect(),
        token: None,
        asked: None,
    }
}

#[test]
fn a_partial_request_stays_within_the_signed_read_or_is_refused_saying_why() {
    let w = world();
    let store = w.v.store.as_ref();
    let read = |subject| AskedRead {
        subject,
        purpose: "counter-service".into(),
    };
    let person_a = read(Subject::Person(CNSS_A.into()));
    let ok = |r: &AskedRead, req: &PartialRequest| within(r, req, &w.index, store);
    assert_eq!(
        ok(
            &person_a,
            &request(Table::Persons, "counter-service", &[&w.a])
        ),
        Ok(())
    );
    let e = ok(
        &person_a,
        &request(Table::Persons, "counter-service", &[&w.b]),
    )
    .unwrap_err();
    assert!(e.contains("1 of the 1 records asked are not named"), "{e}");
    let e = ok(
        &person_a,
        &request(Table::Persons, "counter-service", &[&w.a, &w.b]),
    )
    .unwrap_err();
    assert!(e.contains("1 of the 2 records"), "{e}");
    let e = ok(
        &person_a,
        &request(Table::Declarations, "counter-service", &[&w.a]),
    )
    .unwrap_err();
    assert!(
        e.contains("reads table `persons`, not `declarations`"),
        "{e}"
    );
    let e = ok(
        &person_a,
        &request(Table::Persons, "investigation", &[&w.a]),
    )
    .unwrap_err();
    assert!(
        e.contains("for purpose `counter-service`, the request is for `investigation`"),
        "{e}"
    );
    // A person's declarations: any of theirs, none of another's.
    let history = read(Subject::Declarations(CNSS_A.into()));
    let mine: Vec<&String> = w.declarations_a.iter().collect();
    assert_eq!(
        ok(
            &history,
            &request(Table::Declarations, "counter-service", &mine)
        ),
        Ok(())
    );
    let theirs = format!("d-202401-{}-{}", w.b, w.employer);
    let e = ok(
        &history,
        &request(Table::Declarations, "counter-service", &[&theirs]),
    )
    .unwrap_err();
    assert!(e.contains("not named"), "{e}");
    // Another key finds other records: what the custodian holds decides.
    let other = BlindIndexer::new(SecretBytes::new([0x3d; 32]));
    let e = within(
        &person_a,
        &request(Table::Persons, "counter-service", &[&w.a]),
        &other,
        store,
    )
    .unwrap_err();
    assert!(e.contains("not named"), "{e}");
}

#[test]
fn node_jobs_need_no_user_signature_and_every_read_does() {
    let w = world();
    for (purpose, needs) in [
        ("open-index-key", false),
        ("open-leak-key", false),
        ("key-rotation", false),
        ("counter-service", true),
        ("partner-verification", true),
        ("partner-export", true),
        ("breach-notification", true),
    ] {
        assert_eq!(
            ribat_custodian::asked::needs_signature(&request(Table::Persons, purpose, &[&w.a])),
            needs,
            "{purpose}"
        );
    }
}

#[test]
fn a_forwarded_signed_read_is_checked_over_everything_it_covers() {
    use ribat_custodian::asked::check_signed;
    use ribat_custodian::request::Asked;
    let d = tempfile::tempdir().unwrap();
    let ca = ribat_identity::Ca::init(d.path(), "test").unwrap();
    let issued = ca
        .issue(
            "clerk.amal",
            "clerk",
            "agency-1",
            &ribat_identity::CertKind::Client,
            1,
        )
        .unwrap();
    let signer =
        ribat_identity::signed::RequestSigner::from_pem(&issued.cert_pem, &issued.key_pem).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let target = format!("/v1/persons/{CNSS_A}?purpose=counter-service");
    let asked = Asked::signed_by(&signer, "GET", &target, b"", "v4.public.t").unwrap();
    let (cert, read) = check_signed(&asked, "v4.public.t", now).unwrap();
    assert_eq!(cert, signer.certificate());
    assert_eq!(read.subject, Subject::Person(CNSS_A.into()));
    assert_eq!(read.purpose, "counter-service");
    // A search's body is part of what is signed.
    let body = br#"{"purpose":"counter-service","cin":"AB123456"}"#;
    let search =
        Asked::signed_by(&signer, "POST", "/v1/persons/search", body, "v4.public.t").unwrap();
    assert_eq!(
        check_signed(&search, "v4.public.t", now).unwrap().1.subject,
        Subject::Cin("AB123456".into())
    );
    let refused = |a: &Asked, token: &str, at: u64, says: &str| {
        let e = check_signed(a, token, at).unwrap_err();
        assert!(e.contains(says), "{says}: {e}");
    };
    let changed = [
        (asked.clone(), "v4.public.other", now, "does not verify"),
        (asked.clone(), "v4.public.t", now + 61, "good for 60 s"),
        (
            Asked {
                target: format!("/v1/persons/{CNSS_B}?purpose=counter-service"),
                ..asked.clone()
            },
            "v4.public.t",
            now,
            "does not verify",
        ),
        (
            Asked {
                method: "POST".into(),
                ..asked.clone()
            },
            "v4.public.t",
            now,
            "does not verify",
        ),
        (
            Asked {
                body: Some("e30".into()),
                ..search.clone()
            },
            "v4.public.t",
            now,
            "not the body the signature covers",
        ),
        (
            Asked {
                certificate: "!!".into(),
                ..asked.clone()
            },
            "v4.public.t",
            now,
            "not base64url",
        ),
        (
            Asked {
                signature: "t=1".into(),
                ..asked.clone()
            },
            "v4.public.t",
            now,
            "malformed",
        ),
    ];
    for (a, token, at, says) in &changed {
        refused(a, token, *at, says);
    }
    // Signed correctly but no read: refused as such.
    let other = Asked::signed_by(&signer, "GET", "/v1/decisions", b"", "v4.public.t").unwrap();
    refused(&other, "v4.public.t", now, "no read");
}
