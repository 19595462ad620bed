//! A custodian's witness on another host counts a request as audited only when it saw the
//! request's entry and computed, from the tree's edge it had cosigned and the entries it
//! was shown, the very root of the checkpoint it cosigns. A gateway that hides an entry,
//! invents one or lies about the edge gets no cosignature, and the witness's state does not
//! move.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use ribat_audit::Hash;
use ribat_audit::log::{CosignError, Log};
use ribat_audit::note::{COSIGNATURE_V1, Checkpoint, ED25519, NoteSigner};
use ribat_audit::witness::Witness;

const ORIGIN: &str = "ribat.test/audit/node-1";

fn entry(i: u64) -> Vec<u8> {
    common::entry(i, &format!("p-{i:05}"))
}

struct Fixture {
    _tmp: tempfile::TempDir,
    log: Log,
    signer: NoteSigner,
    witness: Witness,
}

fn fixture(entries: u64) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let signer = NoteSigner::generate(ORIGIN, ED25519).unwrap();
    let key = NoteSigner::generate("custodian-2.ribat.test/witness", COSIGNATURE_V1).unwrap();
    let wdir = tmp.path().join("w");
    std::fs::create_dir_all(&wdir).unwrap();
    let witness = Witness::open(&wdir, key, signer.verifier(), Box::new(|| 1_763_900_000)).unwrap();
    let (log, _) = Log::open(&tmp.path().join("log"), ORIGIN).unwrap();
    for i in 0..entries {
        log.append(&entry(i)).unwrap();
    }
    Fixture {
        _tmp: tmp,
        log,
        signer,
        witness,
    }
}

impl Fixture {
    fn note(&self, size: u64) -> String {
        Checkpoint {
            origin: ORIGIN.into(),
            size,
            root: self.log.root(size).unwrap(),
            extensions: vec![],
        }
        .sign(&self.signer)
        .to_text()
    }

    fn entries(&self, from: u64, to: u64) -> Vec<Vec<u8>> {
        (from..to).map(|i| self.log.entry(i).unwrap()).collect()
    }

    fn cosign(
        &self,
        old: u64,
        size: u64,
        edge: &[Hash],
        entries: &[Vec<u8>],
    ) -> Result<Vec<String>, CosignError> {
        self.witness
            .cosign_entries(old, &self.note(size), edge, entries)
            .map(|(line, ids)| {
                assert!(line.starts_with("— custodian-2.ribat.test/witness "));
                ids
            })
    }
}

fn ids(r: std::ops::Range<u64>) -> Vec<String> {
    r.map(|i| format!("req-{i}")).collect()
}

#[test]
fn the_entries_shown_are_believed_once_they_make_the_checkpoints_root() {
    let fx = fixture(12);
    assert_eq!(fx.cosign(0, 5, &[], &fx.entries(0, 5)), Ok(ids(0..5)));
    let edge = fx.log.frontier(5).unwrap();
    assert_eq!(fx.cosign(5, 12, &edge, &fx.entries(5, 12)), Ok(ids(5..12)));
    assert_eq!(fx.witness.last_size(), 12);
}

#[test]
fn a_hidden_an_invented_or_a_reordered_entry_gets_no_cosignature_and_moves_nothing() {
    let fx = fixture(12);
    fx.cosign(0, 5, &[], &fx.entries(0, 5)).unwrap();
    let edge = fx.log.frontier(5).unwrap();
    let honest = fx.entries(5, 12);
    let mut hidden = honest.clone();
    hidden.remove(3);
    let mut invented = honest.clone();
    invented[3] = entry(99);
    let mut reordered = honest.clone();
    reordered.swap(1, 2);
    for (what, shown) in [
        ("hidden", hidden),
        ("invented", invented),
        ("reordered", reordered),
    ] {
        match fx.cosign(5, 12, &edge, &shown) {
            Err(CosignError::Inconsistent(why)) => {
                assert!(
                    why.contains("not the checkpoint's size 12"),
                    "{what}: {why}"
                )
            }
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(fx.witness.last_size(), 5, "{what}");
    }
    // The honest request still goes through afterwards.
    assert_eq!(fx.cosign(5, 12, &edge, &honest), Ok(ids(5..12)));
}

#[test]
fn an_edge_that_does_not_fold_to_the_cosigned_root_or_bytes_that_are_no_entry_are_refused() {
    let fx = fixture(12);
    fx.cosign(0, 5, &[], &fx.entries(0, 5)).unwrap();
    let mut edge = fx.log.frontier(5).unwrap();
    edge[0] = ribat_audit::hash::leaf(b"forged");
    match fx.cosign(5, 12, &edge, &fx.entries(5, 12)) {
        Err(CosignError::Inconsistent(why)) => assert!(why.contains("does not fold"), "{why}"),
        other => panic!("{other:?}"),
    }
    let wrong_shape = &fx.log.frontier(4).unwrap();
    assert!(matches!(
        fx.cosign(5, 12, wrong_shape, &fx.entries(5, 12)),
        Err(CosignError::Refused(_))
    ));
    let edge = fx.log.frontier(5).unwrap();
    let mut garbage = fx.entries(5, 12);
    garbage[0] = b"not an entry".to_vec();
    match fx.cosign(5, 12, &edge, &garbage) {
        Err(CosignError::Refused(why)) => assert!(why.starts_with("entry 5"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Asked from another size than the one it cosigned: the witness says which.
    assert_eq!(
        fx.cosign(3, 12, &[], &fx.entries(3, 12)),
        Err(CosignError::Conflict(5))
    );
    assert_eq!(fx.witness.last_size(), 5);
}

/// A witness on another host, as the log sees it: it asks for the entries and believes
/// only them (what a gateway's remote witness does over the network).
struct Remote<'a>(&'a Witness, std::sync::Mutex<Vec<String>>);

impl ribat_audit::Cosigner for Remote<'_> {
    fn name(&self) -> String {
        ribat_audit::Cosigner::name(self.0)
    }
    fn verifier(&self) -> ribat_audit::VerifierKey {
        self.0.verifier()
    }
    fn cosign(&self, _: u64, _: &[Hash], _: &str) -> Result<String, CosignError> {
        Err(CosignError::Refused(
            "this witness is always shown the entries".into(),
        ))
    }
    fn wants_entries(&self) -> bool {
        true
    }
    fn cosign_entries(
        &self,
        old_size: u64,
        _: &[Hash],
        note: &str,
        edge: &[Hash],
        entries: &[Vec<u8>],
    ) -> Result<String, CosignError> {
        let (line, ids) = self.0.cosign_entries(old_size, note, edge, entries)?;
        self.1.lock().unwrap().extend(ids);
        Ok(line)
    }
}

#[test]
fn the_log_shows_each_witness_the_entries_since_its_own_size() {
    let fx = fixture(5);
    let other = {
        let key = NoteSigner::generate("custodian-3.ribat.test/witness", COSIGNATURE_V1).unwrap();
        let dir = fx._tmp.path().join("w3");
        std::fs::create_dir_all(&dir).unwrap();
        Witness::open(&dir, key, fx.signer.verifier(), Box::new(|| 1_763_900_000)).unwrap()
    };
    let (a, b) = (
        Remote(&fx.witness, Default::default()),
        Remote(&other, Default::default()),
    );
    let r = fx.log.checkpoint(&fx.signer, &[&a, &b], 2).unwrap();
    assert!(r.quorum_met && r.refused.is_empty(), "{r:?}");
    for i in 5..12 {
        fx.log.append(&entry(i)).unwrap();
    }
    let r = fx.log.checkpoint(&fx.signer, &[&a, &b], 2).unwrap();
    assert!(r.quorum_met && r.refused.is_empty(), "{r:?}");
    for w in [&a, &b] {
        assert_eq!(*w.1.lock().unwrap(), ids(0..12));
    }
}
