//! An embedded vault in a temporary directory: ceremony, store, sealed records, custodians.
#![allow(dead_code)]

use ribat_crypto::envelope::Sealer;
use ribat_crypto::group::GroupPublic;
use ribat_crypto::passphrase::KdfParams;
use ribat_crypto::secret::Passphrase;
use ribat_custodian::ceremony::{self, CeremonySpec};
use ribat_custodian::clock::ManualClock;
use ribat_custodian::policy::Policy;
use ribat_custodian::{Custodian, LocalCustodian, PartialRequest, QuorumReader, Requester};
use ribat_store::{SqliteStore, Store, StoredClass, StoredRecord};
use std::path::PathBuf;
use std::sync::Arc;

pub(crate) const NAMES: [&str; 4] = [
    "Fatima Zahra Benali",
    "Mohammed El Amrani",
    "Khadija Ait Ouahmane",
    "Youssef Tazi",
];
pub(crate) const SALARIES: [&str; 4] = ["1234500", "987600", "45000000", "320000"];
pub(crate) const HONEY: &str = "p-honey";

pub(crate) struct Vault {
    pub dir: tempfile::TempDir,
    pub group: GroupPublic,
    pub store: Arc<SqliteStore>,
    pub clock: Arc<ManualClock>,
    pub custodian_dirs: Vec<PathBuf>,
    pub passphrases: Vec<Passphrase>,
    /// Custodians open now: one process opens a custodian's directory once (its log is
    /// locked), so a second `custodian(i)` while the first lives returns the same one.
    pub live: std::sync::Mutex<Vec<std::sync::Weak<LocalCustodian>>>,
}

pub(crate) fn pass(i: usize) -> Passphrase {
    Passphrase::new(format!("custodian-{i}-passphrase"))
}

impl Vault {
    /// Three custodians, any two of which open a record.
    pub(crate) fn new() -> Self {
        Self::of(3, 2)
    }

    /// `n` custodians, any `threshold` of which open a record.
    pub(crate) fn of(n: usize, threshold: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let custodian_dirs: Vec<PathBuf> = (1..=n)
            .map(|i| dir.path().join(format!("custodian-{i}")))
            .collect();
        let passphrases: Vec<Passphrase> = (1..=n).map(pass).collect();
        let spec = CeremonySpec {
            threshold,
            classes: vec!["identity".into(), "financial".into()],
            epoch: 1,
            kdf: KdfParams::insecure_for_tests(),
        };
        let group = ceremony::run(
            &spec,
            &custodian_dirs,
            &passphrases,
            &dir.path().join("group.json"),
        )
        .unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("store.sqlite")).unwrap());
        let ids = Sealer::new("identity", group.class("identity").unwrap(), 1);
        let fin = Sealer::new("financial", group.class("financial").unwrap(), 1);
        let mut recs = Vec::new();
        let people: Vec<(String, &str, &str)> = NAMES
            .iter()
            .zip(SALARIES)
            .enumerate()
            .map(|(i, (n, s))| (format!("p-{i}"), *n, s))
            .chain(std::iter::once((
                HONEY.to_owned(),
                "Hicham Honey",
                "100000",
            )))
            .collect();
        for (id, name, salary) in &people {
            let e1 = ids
                .seal("persons", id, &[("name", name.as_bytes())])
                .unwrap();
            let e2 = fin
                .seal("persons", id, &[("salary", salary.as_bytes())])
                .unwrap();
            recs.push(StoredRecord {
                table: "persons".into(),
                record_id: id.clone(),
                version: 1,
                classes: [e1, e2]
                    .iter()
                    .map(|e| StoredClass {
                        class: e.class.clone(),
                        epoch: e.epoch,
                        r: e.r,
                        envelope: e.to_bytes().unwrap(),
                    })
                    .collect(),
                index: Vec::new(),
                digests: Vec::new(),
            });
        }
        store.put_records(&recs).unwrap();
        QuorumReader::create_index_key(&group, store.as_ref()).unwrap();
        for d in &custodian_dirs {
            LocalCustodian::write_policy(d, &Policy::embedded_default()).unwrap();
        }
        let v = Self {
            dir,
            group,
            store,
            clock: Arc::new(ManualClock::at(1_800_000_000)),
            custodian_dirs,
            passphrases,
            live: std::sync::Mutex::new((0..n).map(|_| std::sync::Weak::new()).collect()),
        };
        // Honey records are registered with live custodians, which keep the list sealed.
        for i in 1..=n {
            assert_eq!(
                v.custodian(i)
                    .add_honey(&[("persons".into(), HONEY.into())])
                    .unwrap(),
                1
            );
        }
        v
    }

    /// Custodian `i`: the one open now, or freshly opened (a restart when none is).
    pub(crate) fn custodian(&self, i: usize) -> Arc<LocalCustodian> {
        let mut live = self.live.lock().unwrap();
        if let Some(c) = live[i - 1].upgrade() {
            return c;
        }
        let c = Arc::new(
            LocalCustodian::open(
                &self.custodian_dirs[i - 1],
                &self.passphrases[i - 1],
                self.store.clone(),
                self.clock.clone(),
            )
            .unwrap(),
        );
        live[i - 1] = Arc::downgrade(&c);
        c
    }

    pub(crate) fn reader_over(&self, custodians: Vec<Arc<dyn Custodian>>) -> QuorumReader {
        QuorumReader::new(self.group.clone(), custodians, self.store.clone())
    }

    pub(crate) fn reader(&self) -> QuorumReader {
        self.reader_over(
            (1..=3)
                .map(|i| self.custodian(i) as Arc<dyn Custodian>)
                .collect(),
        )
    }
}

pub(crate) fn request(
    identity: &str,
    role: &str,
    purpose: &str,
    class: &str,
    ids: &[&str],
) -> PartialRequest {
    PartialRequest {
        set: None,
        epoch: None,
        request_id: format!("req-{identity}-{}", ids.join("+")),
        requester: Requester {
            identity: identity.into(),
            role: role.parse().unwrap(),
        },
        purpose: purpose.parse().unwrap(),
        table: ribat_policy::Table::Persons,
        class: class.parse().unwrap(),
        record_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
        token: None,
        asked: None,
    }
}

/// Every file under `dir`, recursively, as bytes.
pub(crate) fn all_bytes(dir: &std::path::Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

pub(crate) fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
