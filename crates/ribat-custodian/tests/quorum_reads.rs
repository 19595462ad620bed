//! A reader gets its `t` answers even when some custodians lie or are down, and names them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

mod common;

use common::*;
use ribat_crypto::combine::Partial;
use ribat_custodian::{
    Custodian, CustodianError, Fault, PartialRequest, QuorumError, QuorumReader,
};
use std::sync::Arc;

/// A counter clerk's read of `records`' identity class.
fn counter(records: &[&str]) -> ribat_custodian::PartialRequest {
    request("clerk-1", "clerk", "counter-service", "identity", records)
}

/// A custodian that answers with another custodian's points (a lying or broken node).
/// A stand-in on purpose: the test is about the reader, the caller.
struct Liar(Arc<dyn Custodian>, u32);
impl Custodian for Liar {
    fn index(&self) -> u32 {
        self.1
    }
    fn partial_decrypt(&self, req: &PartialRequest) -> Result<Partial, CustodianError> {
        let mut p = self.0.partial_decrypt(req)?;
        p.custodian = self.1;
        Ok(p)
    }
}

/// The same liar, claiming to run in the reader's process: its proof is not checked up
/// front, so the opening is what catches it.
struct InProcessLiar(Liar);
impl Custodian for InProcessLiar {
    fn index(&self) -> u32 {
        self.0.index()
    }
    fn partial_decrypt(&self, req: &PartialRequest) -> Result<Partial, CustodianError> {
        self.0.partial_decrypt(req)
    }
    fn in_process(&self) -> bool {
        true
    }
}

/// A custodian that is down.
struct Down(u32);
impl Custodian for Down {
    fn index(&self) -> u32 {
        self.0
    }
    fn partial_decrypt(&self, _: &PartialRequest) -> Result<Partial, CustodianError> {
        Err(CustodianError::Unavailable {
            custodian: self.0,
            reason: "connection refused".into(),
        })
    }
}

#[test]
fn an_in_process_liar_is_caught_by_the_opening_then_named_by_its_proof_and_replaced() {
    let v = Vault::new();
    let liar = Arc::new(InProcessLiar(Liar(v.custodian(3), 1))) as Arc<dyn Custodian>;
    let reader = v.reader_over(vec![liar, v.custodian(2), v.custodian(3)]);
    let read = reader.read(&counter(&["p-1", "p-2"])).unwrap();
    assert_eq!(read.records[0].1.get("name").unwrap(), NAMES[1].as_bytes());
    assert_eq!(read.records[1].1.get("name").unwrap(), NAMES[2].as_bytes());
    assert_eq!(read.served_by, vec![2, 3]);
    assert_eq!(read.faults.len(), 1);
    assert_eq!(read.faults[0].custodian, 1);
    assert!(matches!(
        read.faults[0].fault,
        Fault::BadAnswer(ribat_crypto::CryptoError::ProofInvalid)
    ));
    // With no honest third custodian left, the read fails cleanly, naming the liar.
    let liar = Arc::new(InProcessLiar(Liar(v.custodian(3), 1))) as Arc<dyn Custodian>;
    let reader = v.reader_over(vec![liar, v.custodian(2)]);
    let err = reader.read(&counter(&["p-1"])).unwrap_err();
    assert!(
        matches!(&err, QuorumError::NotEnoughCustodians { have: 1, need: 2, faults } if faults[0].custodian == 1),
        "{err}"
    );
}

/// A custodian in the reader's process that hands over another custodian's genuine
/// answer as its own (a replay: the answer's proof is valid, for the other one).
struct Replayer(Arc<dyn Custodian>, u32);
impl Custodian for Replayer {
    fn index(&self) -> u32 {
        self.1
    }
    fn partial_decrypt(&self, req: &PartialRequest) -> Result<Partial, CustodianError> {
        self.0.partial_decrypt(req)
    }
    fn in_process(&self) -> bool {
        true
    }
}

#[test]
fn an_answer_that_names_another_custodian_is_refused_at_once_even_from_the_readers_process() {
    let v = Vault::new();
    let replayer = Arc::new(Replayer(v.custodian(2), 1)) as Arc<dyn Custodian>;
    let reader = v.reader_over(vec![replayer, v.custodian(2), v.custodian(3)]);
    let read = reader.read(&counter(&["p-1"])).unwrap();
    assert_eq!(read.records[0].1.get("name").unwrap(), NAMES[1].as_bytes());
    assert_eq!(read.served_by, vec![2, 3]);
    assert_eq!(read.faults.len(), 1, "{:?}", read.faults);
    assert_eq!(read.faults[0].custodian, 1);
    assert!(matches!(
        read.faults[0].fault,
        Fault::BadAnswer(ribat_crypto::CryptoError::ProofInvalid)
    ));
}

#[test]
fn a_custodian_whose_proof_fails_is_named_and_replaced() {
    let v = Vault::new();
    let liar = Arc::new(Liar(v.custodian(3), 1)) as Arc<dyn Custodian>;
    let reader = v.reader_over(vec![liar, v.custodian(2), v.custodian(3)]);
    let read = reader.read(&counter(&["p-1"])).unwrap();
    assert_eq!(read.records[0].1.get("name").unwrap(), NAMES[1].as_bytes());
    assert_eq!(read.served_by, vec![2, 3]);
    assert_eq!(read.faults.len(), 1);
    assert_eq!(read.faults[0].custodian, 1);
    assert!(matches!(
        read.faults[0].fault,
        Fault::BadAnswer(ribat_crypto::CryptoError::ProofInvalid)
    ));
}

/// A liar that counts how often it is asked.
struct CountingLiar(Liar, Arc<std::sync::atomic::AtomicUsize>);
impl Custodian for CountingLiar {
    fn index(&self) -> u32 {
        self.0.index()
    }
    fn partial_decrypt(&self, req: &PartialRequest) -> Result<Partial, CustodianError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.partial_decrypt(req)
    }
}

#[test]
fn a_custodian_whose_proof_fails_is_set_aside_and_asked_only_as_a_last_resort() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let v = Vault::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let liar = Arc::new(CountingLiar(Liar(v.custodian(3), 1), asked.clone())) as Arc<dyn Custodian>;
    let reader = v.reader_over(vec![liar, v.custodian(2), v.custodian(3)]);
    let req = || counter(&["p-1"]);
    let first = reader.read(&req()).unwrap();
    assert_eq!(first.faults.len(), 1);
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    let aside = reader.set_aside();
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].custodian, 1);
    assert!(aside[0].reason.contains("failed verification"), "{aside:?}");
    assert!(aside[0].remaining_secs > 500);
    // The next reads go to the honest two without asking it, and pay nothing for it.
    for _ in 0..3 {
        let r = reader.read(&req()).unwrap();
        assert!(r.faults.is_empty(), "{:?}", r.faults);
        assert_eq!(r.served_by, vec![2, 3]);
    }
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "not asked again while set aside"
    );
}

#[test]
fn a_decision_holds_a_custodian_aside_for_its_duration_and_its_release_takes_it_back() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let v = Vault::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let liar = Arc::new(CountingLiar(Liar(v.custodian(3), 1), asked.clone())) as Arc<dyn Custodian>;
    let reader = v.reader_over(vec![liar, v.custodian(2), v.custodian(3)]);
    let req = || counter(&["p-1"]);
    reader.read(&req()).unwrap();
    // The signed decision holds it aside for a day, with its reason.
    reader.set_aside_for(
        1,
        std::time::Duration::from_secs(86_400),
        "decision 0a1b: custodian 1's answer failed its proof".into(),
    );
    let aside = reader.set_aside();
    assert_eq!(aside.len(), 1);
    assert!(aside[0].remaining_secs > 80_000, "{aside:?}");
    assert!(aside[0].reason.starts_with("decision 0a1b"), "{aside:?}");
    // A shorter hold never shortens a longer one.
    reader.set_aside_for(1, std::time::Duration::from_secs(5), "later".into());
    assert!(reader.set_aside()[0].remaining_secs > 80_000);
    reader.read(&req()).unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1, "not asked while aside");
    // Released by two administrators: asked in its turn again (and caught again).
    reader.take_back(1);
    assert!(reader.set_aside().is_empty());
    let r = reader.read(&req()).unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    assert_eq!(r.faults.len(), 1);
}

#[test]
fn reads_go_on_with_one_custodian_down_and_stop_cleanly_with_two() {
    let v = Vault::new();
    let one_down = v.reader_over(vec![Arc::new(Down(1)), v.custodian(2), v.custodian(3)]);
    let read = one_down.read(&counter(&["p-3"])).unwrap();
    assert_eq!(read.records[0].1.get("name").unwrap(), NAMES[3].as_bytes());

    let two_down = v.reader_over(vec![Arc::new(Down(1)), Arc::new(Down(2)), v.custodian(3)]);
    let err = two_down.read(&counter(&["p-3"])).unwrap_err();
    let text = err.to_string();
    assert!(matches!(
        err,
        QuorumError::NotEnoughCustodians {
            have: 1,
            need: 2,
            ..
        }
    ));
    assert!(
        text.contains("custodian 1 unavailable") && text.contains("custodian 2 unavailable"),
        "{text}"
    );
}

#[test]
fn the_blind_index_key_opens_through_the_quorum_for_the_service_only() {
    let v = Vault::new();
    let reader = v.reader();
    let svc = ribat_custodian::Requester {
        identity: "gateway-1".into(),
        role: ribat_policy::Role::SERVICE,
    };
    let a = reader.open_index_key(&svc, "start-1").unwrap();
    let b = reader.open_index_key(&svc, "start-2").unwrap();
    assert_eq!(a.cin("BE123456").unwrap(), b.cin("be 123456").unwrap());
    let clerk = ribat_custodian::Requester {
        identity: "clerk-1".into(),
        role: "clerk".parse().unwrap(),
    };
    assert!(matches!(
        reader.open_index_key(&clerk, "x"),
        Err(QuorumError::Refused { .. })
    ));
}

#[test]
fn an_unknown_record_is_named() {
    let v = Vault::new();
    let err = v.reader().read(&counter(&["p-404"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no record persons/p-404 with class `identity` in the store"
    );
}

/// A custodian that answers truly and counts how often it was asked.
struct Counted(Arc<dyn Custodian>, Arc<std::sync::atomic::AtomicUsize>);
impl Custodian for Counted {
    fn index(&self) -> u32 {
        self.0.index()
    }
    fn partial_decrypt(&self, req: &PartialRequest) -> Result<Partial, CustodianError> {
        self.1.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.0.partial_decrypt(req)
    }
}

#[test]
fn a_custodian_cut_off_is_never_asked_even_when_the_others_cannot_make_a_quorum() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let v = Vault::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let first = Arc::new(Counted(v.custodian(1), asked.clone())) as Arc<dyn Custodian>;
    let reader = v.reader_over(vec![first, v.custodian(2), Arc::new(Down(3))]);
    let req = || counter(&["p-1"]);
    reader.read(&req()).unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 1);
    reader.cut_off(
        1,
        "node-1 is isolated: it runs 0.1.0 (binary 0a1b), not in the allowed set".into(),
    );
    // Custodians 2 and 3 cannot make two answers (3 is down), yet 1 is not asked: its
    // answer is not trusted whatever the others do; the refusal names why.
    let e = reader.read(&req()).unwrap_err();
    assert_eq!(
        asked.load(Ordering::SeqCst),
        1,
        "a custodian cut off was asked"
    );
    let said = e.to_string();
    assert!(said.contains("only 1 of the 2"), "{said}");
    assert!(said.contains("not asked: node-1 is isolated"), "{said}");
    assert_eq!(reader.cut_off_now().len(), 1);
    reader.ask_again(1);
    assert!(reader.cut_off_now().is_empty());
    let r = reader.read(&req()).unwrap();
    assert_eq!(asked.load(Ordering::SeqCst), 2);
    assert_eq!(r.served_by.len(), 2);
}

#[test]
fn a_new_set_is_asked_from_the_next_read_on_and_nobody_stays_aside_from_the_old_one() {
    let v = Vault::new();
    let reader = v.reader_over(vec![Arc::new(Down(1)), Arc::new(Down(2)), v.custodian(3)]);
    let req = || counter(&["p-2"]);
    assert!(reader.read(&req()).is_err());
    reader.set_aside_for(3, std::time::Duration::from_secs(600), "held".into());
    assert_eq!(reader.set_aside().len(), 1);
    let indexes = |r: &ribat_custodian::QuorumReader| {
        r.custodians().iter().map(|c| c.index()).collect::<Vec<_>>()
    };
    assert_eq!(indexes(&reader), [1, 2, 3]);
    // The set in force now: custodians 2 and 3, both up.
    reader.replace_set(
        v.group.clone(),
        vec![v.custodian(2) as Arc<dyn Custodian>, v.custodian(3)],
    );
    assert_eq!(indexes(&reader), [2, 3]);
    assert!(reader.set_aside().is_empty());
    let read = reader.read(&req()).unwrap();
    assert_eq!(read.records[0].1.get("name").unwrap(), NAMES[2].as_bytes());
}

/// A custodian that is mid-way through a set change: the first `n` requests it answers
/// "another set is in force here", then it answers as `inner`.
struct Switching(Arc<dyn Custodian>, std::sync::atomic::AtomicUsize);
impl Custodian for Switching {
    fn index(&self) -> u32 {
        self.0.index()
    }
    fn partial_decrypt(&self, r: &PartialRequest) -> Result<Partial, CustodianError> {
        use std::sync::atomic::Ordering;
        if self
            .1
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(CustodianError::OtherSet {
                custodian: self.index(),
                asked: 1,
                held: 2,
                retired: false,
            });
        }
        self.0.partial_decrypt(r)
    }
}

#[test]
fn a_read_that_meets_a_set_change_is_asked_again_and_answered() {
    let v = Vault::new();
    let switching = |i| {
        Arc::new(Switching(
            v.custodian(i) as Arc<dyn Custodian>,
            std::sync::atomic::AtomicUsize::new(1),
        )) as Arc<dyn Custodian>
    };
    // Two of three are between sets when the read starts: without asking again there is
    // no quorum.
    let reader = v.reader_over(vec![Arc::new(Down(1)), switching(2), switching(3)]);
    let read = reader.read(&counter(&["p-1"])).unwrap();
    assert_eq!(read.records[0].1.get("name").unwrap(), NAMES[1].as_bytes());
}

#[test]
fn a_custodian_that_fails_is_replaced_by_one_more_not_by_a_whole_new_round() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    // Five custodians, any three: the first asked is down.
    let v = Vault::of(5, 3);
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = |c: Arc<dyn Custodian>| Arc::new(Counted(c, asked.clone())) as Arc<dyn Custodian>;
    let mut custodians = vec![counted(Arc::new(Down(1)))];
    custodians.extend((2..=5).map(|i| counted(v.custodian(i))));
    let read = v.reader_over(custodians).read(&counter(&["p-0"])).unwrap();
    assert_eq!(read.served_by, [2, 3, 4]);
    assert_eq!(
        asked.load(Ordering::SeqCst),
        4,
        "three at once, then one for the one down; the fifth never"
    );
}

#[test]
fn a_read_asks_no_more_custodians_than_the_threshold_when_they_answer() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let v = Vault::new();
    let asked = Arc::new(AtomicUsize::new(0));
    let counted = |i| {
        Arc::new(CountingLiar(Liar(v.custodian(i), i as u32), asked.clone())) as Arc<dyn Custodian>
    };
    let reader = v.reader_over(vec![counted(1), counted(2), counted(3)]);
    let read = reader.read(&counter(&["p-0"])).unwrap();
    assert_eq!(read.served_by, [1, 2]);
    assert_eq!(asked.load(Ordering::SeqCst), 2);
}

#[test]
fn the_leak_key_is_made_once_and_opens_through_the_quorum_for_the_service_only() {
    let v = Vault::new();
    QuorumReader::create_leak_key(&v.group, v.store.as_ref()).unwrap();
    let sealed = || {
        ribat_store::Store::envelope(
            v.store.as_ref(),
            ribat_policy::Table::Keys.as_str(),
            ribat_custodian::quorum::LEAK_KEY_RECORD,
            "financial",
        )
        .unwrap()
        .unwrap()
    };
    let first = sealed();
    // Made again, it is kept: its digests would be lost with another key.
    QuorumReader::create_leak_key(&v.group, v.store.as_ref()).unwrap();
    assert_eq!(sealed(), first);
    let reader = v.reader();
    let svc = ribat_custodian::Requester {
        identity: "gateway-1".into(),
        role: ribat_policy::Role::SERVICE,
    };
    let a = reader.open_leak_key(&svc, "leak-1").unwrap();
    let b = reader.open_leak_key(&svc, "leak-2").unwrap();
    assert_eq!(a.expose(), b.expose());
    let clerk = ribat_custodian::Requester {
        identity: "clerk-1".into(),
        role: "clerk".parse().unwrap(),
    };
    assert!(matches!(
        reader.open_leak_key(&clerk, "x"),
        Err(QuorumError::Refused { .. })
    ));
}
