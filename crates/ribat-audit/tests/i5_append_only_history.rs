//! I5 — append-only history. Every way of rewriting the log is detected, with the index
//! where it happens, and a witness refuses to cosign a forked checkpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers fail loudly by design

use ribat_audit::log::{CosignError, Cosigner, Log, LogError};
use ribat_audit::note::{COSIGNATURE_V1, Checkpoint, ED25519, NoteSigner};
use ribat_audit::verify::{Report, Trust, verify_dir};
use ribat_audit::witness::Witness;
use std::path::Path;

const ORIGIN: &str = "ribat.test/audit/node-1";

struct Fixture {
    _tmp: tempfile::TempDir,
    log_dir: std::path::PathBuf,
    signer: NoteSigner,
    witnesses: Vec<Witness>,
    trust: Trust,
}

fn entry(i: u64) -> Vec<u8> {
    format!(r#"{{"v":1,"subject":"p-{:05}","n":{i}}}"#, i % 7).into_bytes()
}

/// A log of 40 entries with cosigned checkpoints at 10, 25 and 40.
fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let log_dir = tmp.path().join("log");
    let signer = NoteSigner::generate(ORIGIN, ED25519).unwrap();
    let witnesses: Vec<Witness> = (1..=3)
        .map(|i| {
            let d = tmp.path().join(format!("w{i}"));
            std::fs::create_dir_all(&d).unwrap();
            let key =
                NoteSigner::generate(&format!("custodian-{i}.ribat.test/witness"), COSIGNATURE_V1)
                    .unwrap();
            Witness::open(&d, key, signer.verifier(), Box::new(|| 1_763_900_000)).unwrap()
        })
        .collect();
    let trust = Trust {
        log: signer.verifier(),
        witnesses: witnesses.iter().map(Witness::verifier).collect(),
        quorum: 2,
    };
    let (log, _) = Log::open(&log_dir, ORIGIN).unwrap();
    let ws: Vec<&dyn Cosigner> = witnesses.iter().map(|w| w as &dyn Cosigner).collect();
    for i in 0..40 {
        log.append(&entry(i)).unwrap();
        if i == 9 || i == 24 || i == 39 {
            let r = log.checkpoint(&signer, &ws, 2).unwrap();
            assert!(r.quorum_met && r.refused.is_empty(), "{r:?}");
        }
    }
    Fixture {
        _tmp: tmp,
        log_dir,
        signer,
        witnesses,
        trust,
    }
}

/// Byte ranges of each record in the journal.
fn records(journal: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < journal.len() {
        let len = u32::from_be_bytes(journal[pos..pos + 4].try_into().unwrap()) as usize;
        out.push(pos..pos + 20 + len);
        pos += 20 + len;
    }
    out
}

fn edit_journal(dir: &Path, f: impl FnOnce(&mut Vec<u8>, &[std::ops::Range<usize>])) {
    let p = dir.join("journal");
    let mut bytes = std::fs::read(&p).unwrap();
    let recs = records(&bytes);
    f(&mut bytes, &recs);
    std::fs::write(&p, bytes).unwrap();
}

fn first_problem(r: &Report) -> (Option<u64>, String) {
    let p = r
        .problems
        .first()
        .unwrap_or_else(|| panic!("no problem found: {r:?}"));
    (p.index, p.message.clone())
}

#[test]
fn an_untouched_log_verifies() {
    let fx = fixture();
    let r = verify_dir(&fx.log_dir, &fx.trust);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.entries, 40);
    assert_eq!(r.checkpoints, 4); // three in the history, and the latest
    assert_eq!(r.latest.map(|l| l.0), Some(40));
}

#[test]
fn a_flipped_byte_in_an_old_entry_is_found_at_its_index() {
    let fx = fixture();
    edit_journal(&fx.log_dir, |b, recs| b[recs[5].start + 15] ^= 0x01);
    let (index, msg) = first_problem(&verify_dir(&fx.log_dir, &fx.trust));
    assert_eq!(index, Some(5), "{msg}");
    assert!(msg.contains("altered"), "{msg}");
    let err = Log::open(&fx.log_dir, ORIGIN).unwrap_err();
    assert!(matches!(err, LogError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("entry 5"), "{err}");
}

#[test]
fn a_careful_forger_who_fixes_the_check_bytes_is_caught_by_the_tree() {
    let fx = fixture();
    edit_journal(&fx.log_dir, |b, recs| {
        let r = recs[5].clone();
        let len = r.len() - 20;
        b[r.start + 12 + 2] ^= 0x01; // inside the entry
        let h = ribat_audit::hash::leaf(&b[r.start + 12..r.start + 12 + len]);
        b[r.end - 8..r.end].copy_from_slice(&h.0[..8]);
    });
    let r = verify_dir(&fx.log_dir, &fx.trust);
    let (index, msg) = first_problem(&r);
    assert_eq!(index, Some(5), "{msg}");
    assert!(msg.contains("does not reproduce its root"), "{msg}");
    assert!(matches!(
        Log::open(&fx.log_dir, ORIGIN).unwrap_err(),
        LogError::Tampered { .. }
    ));
}

#[test]
fn a_dropped_entry_is_found_at_its_index() {
    let fx = fixture();
    edit_journal(&fx.log_dir, |b, recs| {
        b.drain(recs[7].clone());
    });
    let (index, msg) = first_problem(&verify_dir(&fx.log_dir, &fx.trust));
    assert_eq!(index, Some(7), "{msg}");
    assert!(msg.contains("found the record of entry 8"), "{msg}");
}

#[test]
fn two_reordered_entries_are_found_at_the_first() {
    let fx = fixture();
    edit_journal(&fx.log_dir, |b, recs| {
        let (r3, r4) = (recs[3].clone(), recs[4].clone());
        let mut swapped = b[r4.clone()].to_vec();
        swapped.extend_from_slice(&b[r3.clone()]);
        b.splice(r3.start..r4.end, swapped);
    });
    let (index, msg) = first_problem(&verify_dir(&fx.log_dir, &fx.trust));
    assert_eq!(index, Some(3), "{msg}");
    assert!(msg.contains("found the record of entry 4"), "{msg}");
}

#[test]
fn a_truncated_journal_is_found_where_the_cut_is() {
    let fx = fixture();
    edit_journal(&fx.log_dir, |b, recs| b.truncate(recs[20].start));
    let (index, msg) = first_problem(&verify_dir(&fx.log_dir, &fx.trust));
    assert_eq!(index, Some(20), "{msg}");
    assert!(msg.contains("truncated"), "{msg}");
    let err = Log::open(&fx.log_dir, ORIGIN).unwrap_err();
    assert!(
        err.to_string()
            .contains("covers 40 entries, the journal has 20"),
        "{err}"
    );
}

#[test]
fn a_forked_history_is_detected_and_no_witness_cosigns_it() {
    let fx = fixture();
    // The attacker holds the node's log key, keeps the first 30 entries, rewrites the rest
    // and replaces the journal and the checkpoint.
    let forged_dir = fx._tmp.path().join("forged");
    let (forged, _) = Log::open(&forged_dir, ORIGIN).unwrap();
    for i in 0..40 {
        let e = if i < 30 {
            entry(i)
        } else {
            format!(r#"{{"v":1,"n":{i},"x":1}}"#).into_bytes()
        };
        forged.append(&e).unwrap();
    }
    let fork = Checkpoint {
        origin: ORIGIN.into(),
        size: 40,
        root: forged.root(40).unwrap(),
        extensions: vec![],
    }
    .sign(&fx.signer)
    .to_text();
    // Every witness cosigned size 40 of the real log: the fork does not extend it.
    for w in &fx.witnesses {
        let proof = forged.consistency_proof(40, 40).unwrap();
        match w.cosign(40, &proof, &fork) {
            Err(CosignError::Inconsistent(why)) => {
                assert!(why.contains("does not extend"), "{why}")
            }
            other => panic!("a witness cosigned a fork: {other:?}"),
        }
    }
    // …and it keeps the evidence.
    let alerts = std::fs::read_to_string(fx._tmp.path().join("w1/witness-alerts.jsonl")).unwrap();
    assert!(alerts.contains("refused_checkpoint"), "{alerts}");
    // A fork from an older point is refused as well: shrinking history.
    let old = Checkpoint {
        origin: ORIGIN.into(),
        size: 30,
        root: forged.root(30).unwrap(),
        extensions: vec![],
    }
    .sign(&fx.signer)
    .to_text();
    assert!(matches!(
        fx.witnesses[0].cosign(40, &[], &old),
        Err(CosignError::Inconsistent(_))
    ));

    drop(forged);
    std::fs::copy(forged_dir.join("journal"), fx.log_dir.join("journal")).unwrap();
    std::fs::write(fx.log_dir.join("checkpoint"), &fork).unwrap();
    let r = verify_dir(&fx.log_dir, &fx.trust);
    let msgs: Vec<&str> = r.problems.iter().map(|p| p.message.as_str()).collect();
    assert!(
        msgs.iter()
            .any(|m| m.contains("0 valid witness cosignatures") && m.contains("fork")),
        "{msgs:?}"
    );
    // The cosigned history at size 40 no longer matches; the published tiles place the
    // first rewritten entry.
    assert_eq!(r.problems[0].index, Some(30), "{msgs:?}");
}

#[test]
fn a_witness_that_lost_track_asks_for_a_proof_from_its_own_size() {
    let fx = fixture();
    let (log, _) = Log::open(&fx.log_dir, ORIGIN).unwrap();
    for i in 40..50 {
        log.append(&entry(i)).unwrap();
    }
    let cp = Checkpoint {
        origin: ORIGIN.into(),
        size: 50,
        root: log.root(50).unwrap(),
        extensions: vec![],
    }
    .sign(&fx.signer)
    .to_text();
    assert_eq!(
        fx.witnesses[0].cosign(10, &[], &cp),
        Err(CosignError::Conflict(40))
    );
    let proof = log.consistency_proof(40, 50).unwrap();
    let line = fx.witnesses[0].cosign(40, &proof, &cp).unwrap();
    assert!(
        line.starts_with("— custodian-1.ribat.test/witness "),
        "{line}"
    );
}

#[test]
fn a_log_whose_checkpoints_have_exactly_the_quorum_of_cosignatures_verifies() {
    let fx = fixture();
    let all_three = Trust {
        quorum: 3,
        ..fx.trust.clone()
    };
    let r = verify_dir(&fx.log_dir, &all_three);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    assert_eq!(r.latest.map(|l| l.0), Some(40));
}

#[test]
fn the_latest_checkpoint_without_a_quorum_is_no_latest_even_after_ones_that_had_it() {
    let fx = fixture();
    // Five more entries, checkpointed with one witness only (a quorum of one, here).
    let (log, _) = Log::open(&fx.log_dir, ORIGIN).unwrap();
    for i in 40..45 {
        log.append(&entry(i)).unwrap();
    }
    let one: Vec<&dyn Cosigner> = vec![&fx.witnesses[0]];
    assert!(log.checkpoint(&fx.signer, &one, 1).unwrap().quorum_met);
    drop(log);
    let r = verify_dir(&fx.log_dir, &fx.trust);
    assert_eq!(r.latest, None, "{r:?}");
    assert!(
        r.problems.iter().any(|p| p
            .message
            .contains("the latest checkpoint (size 45): 1 valid witness")),
        "{:?}",
        r.problems
    );
}

#[test]
fn a_history_whose_checkpoints_shrink_is_a_problem_and_one_made_twice_at_a_size_is_not() {
    let fx = fixture();
    // Checkpointed again at 40 with nothing new: the same size twice is no rewrite.
    let (log, _) = Log::open(&fx.log_dir, ORIGIN).unwrap();
    let ws: Vec<&dyn Cosigner> = fx.witnesses.iter().map(|w| w as &dyn Cosigner).collect();
    assert!(log.checkpoint(&fx.signer, &ws, 2).unwrap().quorum_met);
    drop(log);
    let r = verify_dir(&fx.log_dir, &fx.trust);
    assert!(r.problems.is_empty(), "{:?}", r.problems);
    // The history's lines swapped: the checkpoint at 10 now comes after the one at 25.
    let p = fx.log_dir.join(ribat_audit::log::HISTORY);
    let text = std::fs::read_to_string(&p).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.swap(0, 1);
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    let r = verify_dir(&fx.log_dir, &fx.trust);
    assert!(
        r.problems
            .iter()
            .any(|p| p.message
                == "history line 2: size 10 is smaller than an earlier checkpoint's 25"),
        "{:?}",
        r.problems
    );
}
