//! A log's checkpoint round asks each witness to cosign from the size it last cosigned:
//! a witness that missed a round says where it stands and is shown the entries from
//! there (not those another witness was shown), one that claims a size the log never had
//! is refused without stopping the round, and the checkpoint kept is the one the round
//! signed. The log finds each subject's entries by the subject's record id.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::entry;
use ribat_audit::log::{CosignError, Cosigner, Log};
use ribat_audit::note::{COSIGNATURE_V1, ED25519, NoteSigner};
use ribat_audit::witness::Witness;
use ribat_audit::{Hash, VerifierKey};
use std::sync::atomic::{AtomicUsize, Ordering};

const ORIGIN: &str = "ribat.test/audit/rounds";

/// A witness on another host: it believes only the entries it is shown.
struct Checking(Witness);

impl Cosigner for Checking {
    fn name(&self) -> String {
        Cosigner::name(&self.0)
    }
    fn verifier(&self) -> VerifierKey {
        Cosigner::verifier(&self.0)
    }
    fn cosign(&self, old_size: u64, proof: &[Hash], note: &str) -> Result<String, CosignError> {
        Cosigner::cosign(&self.0, old_size, proof, note)
    }
    fn wants_entries(&self) -> bool {
        true
    }
    fn cosign_entries(
        &self,
        old_size: u64,
        _proof: &[Hash],
        note: &str,
        edge: &[Hash],
        entries: &[Vec<u8>],
    ) -> Result<String, CosignError> {
        self.0
            .cosign_entries(old_size, note, edge, entries)
            .map(|(line, _)| line)
    }
}

fn checking(dir: &std::path::Path, name: &str, log: &NoteSigner) -> Checking {
    let key = NoteSigner::generate(name, COSIGNATURE_V1).unwrap();
    let wdir = dir.join(name);
    std::fs::create_dir_all(&wdir).unwrap();
    Checking(Witness::open(&wdir, key, log.verifier(), Box::new(|| 1_763_900_000)).unwrap())
}

/// A witness that says it last cosigned `size`, whatever it is asked; counts the asks.
struct Claims(u64, AtomicUsize, NoteSigner);

impl Cosigner for Claims {
    fn name(&self) -> String {
        "claims".into()
    }
    fn verifier(&self) -> VerifierKey {
        self.2.verifier()
    }
    fn cosign(&self, _old: u64, _proof: &[Hash], _note: &str) -> Result<String, CosignError> {
        self.1.fetch_add(1, Ordering::SeqCst);
        Err(CosignError::Conflict(self.0))
    }
}

#[test]
fn a_witness_that_missed_a_round_is_shown_the_entries_since_its_own_last_cosignature() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = NoteSigner::generate(ORIGIN, ED25519).unwrap();
    let (log, _) = Log::open(&tmp.path().join("log"), ORIGIN).unwrap();
    let (w1, w2) = (
        checking(tmp.path(), "w1.ribat.test", &signer),
        checking(tmp.path(), "w2.ribat.test", &signer),
    );
    assert_eq!(log.latest_checkpoint().unwrap(), None);
    let mut i = 0;
    let mut append = |n: u64| {
        for _ in 0..n {
            log.append(&entry(i, &format!("p-{:05}", i % 4))).unwrap();
            i += 1;
        }
    };
    append(3);
    let both: [&dyn Cosigner; 2] = [&w1, &w2];
    let r = log.checkpoint(&signer, &both, 2).unwrap();
    assert_eq!(r.cosigned.len(), 2, "{r:?}");
    assert_eq!(
        log.latest_checkpoint().unwrap().as_deref(),
        Some(r.note.as_str())
    );
    // w2 is away for a round.
    append(3);
    let r = log.checkpoint(&signer, &[&w1 as &dyn Cosigner], 1).unwrap();
    assert_eq!((r.size, r.cosigned.len()), (6, 1));
    // Back: w1 is asked from 6, w2 says it stands at 3 and is shown entries 3..9.
    append(3);
    let r = log.checkpoint(&signer, &both, 2).unwrap();
    assert!(r.refused.is_empty(), "{:?}", r.refused);
    assert_eq!(r.cosigned.len(), 2);
    assert_eq!(
        log.latest_checkpoint().unwrap().as_deref(),
        Some(r.note.as_str())
    );
    // Subjects: p-00000 at 0, 4, 8.
    assert_eq!(log.entries_of("p-00000").unwrap(), [0, 4, 8]);
    assert_eq!(log.entries_of("p-00003").unwrap(), [3, 7]);
    assert!(log.entries_of("p-99999").unwrap().is_empty());
}

#[test]
fn a_witness_claiming_a_size_the_log_never_had_is_refused_and_the_round_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let signer = NoteSigner::generate(ORIGIN, ED25519).unwrap();
    let (log, _) = Log::open(&tmp.path().join("log"), ORIGIN).unwrap();
    for i in 0..4 {
        log.append(&entry(i, "p-00001")).unwrap();
    }
    let key = || NoteSigner::generate("claims", COSIGNATURE_V1).unwrap();
    let ahead = Claims(100, AtomicUsize::new(0), key());
    let honest = checking(tmp.path(), "w1.ribat.test", &signer);
    let r = log
        .checkpoint(&signer, &[&ahead as &dyn Cosigner, &honest], 1)
        .unwrap();
    assert_eq!(r.cosigned, ["w1.ribat.test"]);
    assert!(matches!(r.refused[..], [(ref n, CosignError::Conflict(100))] if n == "claims"));
    assert_eq!(
        ahead.1.load(Ordering::SeqCst),
        1,
        "asked once, not again from 100"
    );
    // A witness that says it stands where it was asked from (the last checkpoint, 4) is
    // not asked again either.
    let stuck = Claims(4, AtomicUsize::new(0), key());
    let r = log
        .checkpoint(&signer, &[&stuck as &dyn Cosigner], 0)
        .unwrap();
    assert_eq!(r.refused.len(), 1);
    assert_eq!(stuck.1.load(Ordering::SeqCst), 1);
}

#[test]
fn a_checkpoint_that_cannot_be_read_is_an_error_not_an_absent_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let (log, _) = Log::open(&dir, ORIGIN).unwrap();
    std::fs::create_dir_all(dir.join("checkpoint")).unwrap();
    assert!(log.latest_checkpoint().is_err());
}
