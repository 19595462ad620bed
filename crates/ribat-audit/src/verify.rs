//! Verification of a whole log directory by an outsider who holds only the keys: the
//! journal is read entry by entry, the tree recomputed, and every checkpoint checked for
//! the log's signature, a quorum of witness cosignatures, and a root that the recomputed
//! tree reproduces. The first problem is reported with the entry index where it is.
//!
//! The keys come from a trust file (`ribat audit verify --trust FILE`), one per line:
//!
//! ```text
//! log ribat.local/audit/node.embedded+1a2b3c4d+AQ…
//! witness custodian-1.ribat.local/witness+5e6f7a8b+BA…
//! quorum 2
//! ```

use crate::hash::Hash;
use crate::journal;
use crate::log::{CHECKPOINT, HISTORY, JOURNAL};
use crate::memtree::MemTree;
use crate::note::{Checkpoint, NoteError, VerifierKey, open_checkpoint};
use crate::tiles;
use std::path::Path;

/// The keys an outsider trusts.
#[derive(Debug, Clone)]
pub struct Trust {
    /// The log's key.
    pub log: VerifierKey,
    /// Witness keys.
    pub witnesses: Vec<VerifierKey>,
    /// Cosignatures a checkpoint needs.
    pub quorum: usize,
}

impl Trust {
    /// Parses a trust file.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut log = None;
        let mut witnesses = Vec::new();
        let mut quorum = None;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |why: &str| NoteError::MalformedKey(format!("trust line {}: {why}", n + 1));
            match line.split_once(' ') {
                Some(("log", k)) => {
                    log = Some(VerifierKey::parse(k).map_err(|e| bad(&e.to_string()))?)
                }
                Some(("witness", k)) => {
                    witnesses.push(VerifierKey::parse(k).map_err(|e| bad(&e.to_string()))?)
                }
                Some(("quorum", q)) => {
                    quorum = Some(q.trim().parse().map_err(|_| bad("quorum is a number"))?);
                }
                _ => return Err(bad("expected `log KEY`, `witness KEY` or `quorum N`")),
            }
        }
        let log = log.ok_or_else(|| NoteError::MalformedKey("no `log KEY` line".into()))?;
        let quorum = quorum.unwrap_or(witnesses.len());
        if quorum > witnesses.len() {
            return Err(NoteError::MalformedKey(format!(
                "quorum {quorum} with {} witnesses",
                witnesses.len()
            )));
        }
        Ok(Self {
            log,
            witnesses,
            quorum,
        })
    }

    /// The trust file text.
    pub fn to_text(&self) -> String {
        let mut out = format!("log {}\n", self.log);
        for w in &self.witnesses {
            out.push_str(&format!("witness {w}\n"));
        }
        out.push_str(&format!("quorum {}\n", self.quorum));
        out
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The entry index where it is, when known.
    pub index: Option<u64>,
    /// What is wrong.
    pub message: String,
}

/// What verification found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Entries read and hashed.
    pub entries: u64,
    /// Bytes of an unfinished last append (a crash, not damage).
    pub torn_bytes: u64,
    /// Checkpoints checked.
    pub checkpoints: usize,
    /// Size and root of the latest checkpoint with a quorum of cosignatures.
    pub latest: Option<(u64, Hash)>,
    /// Problems, the first one first. Empty means the log verifies.
    pub problems: Vec<Problem>,
    /// Remarks that are not failures (e.g. a checkpoint made while witnesses were down).
    pub remarks: Vec<String>,
}

/// Verifies the log in `dir` against `trust`.
pub fn verify_dir(dir: &Path, trust: &Trust) -> Report {
    let mut report = Report::default();
    if !dir.join(JOURNAL).exists() {
        report.problems.push(Problem {
            index: None,
            message: format!("no journal in {}", dir.display()),
        });
        return report;
    }
    let notes = read_notes(dir, &mut report);
    // Entries any checkpoint claims cannot be a crash tail (signatures are checked below).
    let protected = notes
        .iter()
        .filter_map(|(_, t)| {
            Checkpoint::parse(&crate::note::SignedNote::parse(t).ok()?.text)
                .ok()
                .map(|c| c.size)
        })
        .max()
        .unwrap_or(0);
    let mut tree = MemTree::new();
    match journal::scan(&dir.join(JOURNAL), protected, |_, _, h| {
        tree.push(*h);
        Ok(())
    }) {
        Ok(end) => report.torn_bytes = end.torn_bytes,
        Err(d) => report.problems.push(Problem {
            index: d.index(),
            message: d.to_string(),
        }),
    }
    report.entries = tree.size();
    check_notes(&notes, &tree, trust, dir, &mut report);
    if notes.is_empty() {
        report
            .remarks
            .push("no checkpoint yet: only the journal's own checks ran".into());
    }
    // Damage found by position comes first, then the rest in the order found.
    report.problems.sort_by_key(|p| p.index.unwrap_or(u64::MAX));
    report
}

/// The checkpoint history and the latest checkpoint, labelled.
fn read_notes(dir: &Path, report: &mut Report) -> Vec<(String, String)> {
    let mut notes: Vec<(String, String)> = Vec::new();
    if let Ok(text) = std::fs::read_to_string(dir.join(HISTORY)) {
        for (n, line) in text.lines().enumerate() {
            match serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("note")?.as_str().map(str::to_owned))
            {
                Some(note) => notes.push((format!("history line {}", n + 1), note)),
                None => report.problems.push(Problem {
                    index: None,
                    message: format!("checkpoint history line {} is not {{\"note\": …}}", n + 1),
                }),
            }
        }
    }
    if let Ok(t) = std::fs::read_to_string(dir.join(CHECKPOINT)) {
        notes.push(("the latest checkpoint".into(), t));
    }
    notes
}

/// Checks each checkpoint's signatures and root against the recomputed tree.
fn check_notes(
    notes: &[(String, String)],
    tree: &MemTree,
    trust: &Trust,
    dir: &Path,
    report: &mut Report,
) {
    let published = tiles::read_leaf_hashes(dir, tree.size());
    let mut last_good = 0u64;
    let mut last_size = 0u64;
    for (label, text) in notes {
        report.checkpoints += 1;
        let opened = match open_checkpoint(text, &trust.log) {
            Ok(o) => o,
            Err(e) => {
                report.problems.push(Problem {
                    index: None,
                    message: format!("{label}: not a checkpoint signed by the log's key: {e}"),
                });
                continue;
            }
        };
        let cp = &opened.checkpoint;
        let mut valid = 0;
        for w in &trust.witnesses {
            match opened.note.verify(w) {
                Ok(_) => valid += 1,
                Err(NoteError::NotSigned { .. }) => {}
                Err(e) => report.problems.push(Problem {
                    index: None,
                    message: format!("{label} (size {}): {e}", cp.size),
                }),
            }
        }
        let is_latest = label == "the latest checkpoint";
        if valid < trust.quorum {
            let msg = format!(
                "{label} (size {}): {valid} valid witness cosignatures, {} needed",
                cp.size, trust.quorum
            );
            if is_latest {
                report.problems.push(Problem {
                    index: None,
                    message: format!(
                        "{msg}: a checkpoint no quorum of witnesses saw may be a fork"
                    ),
                });
            } else {
                report
                    .remarks
                    .push(format!("{msg} (witnesses unavailable then)"));
            }
        }
        if cp.size < last_size && !is_latest {
            report.problems.push(Problem {
                index: None,
                message: format!(
                    "{label}: size {} is smaller than an earlier checkpoint's {last_size}",
                    cp.size
                ),
            });
        }
        last_size = last_size.max(cp.size);
        match tree.root(cp.size) {
            None => report.problems.push(Problem {
                index: Some(tree.size()),
                message: format!(
                    "{label} signed {} entries, the journal has {}: entries from {} on are missing (truncated)",
                    cp.size,
                    tree.size(),
                    tree.size()
                ),
            }),
            Some(r) if !r.ct_eq(&cp.root) => {
                let first = (0..cp.size.min(published.len() as u64)).find(|i| {
                    tree.leaf(*i).map(|h| h.0) != published.get(*i as usize).copied()
                });
                let message = match first {
                    Some(i) => format!(
                        "{label} (size {}): the journal does not reproduce its root; entry {i} differs from the published tile",
                        cp.size
                    ),
                    None => format!(
                        "{label} (size {}): the journal does not reproduce its root; the change is between entries {last_good} and {}",
                        cp.size,
                        cp.size - 1
                    ),
                };
                report.problems.push(Problem {
                    index: Some(first.unwrap_or(last_good)),
                    message,
                });
            }
            Some(_) => {
                last_good = last_good.max(cp.size);
                if is_latest && valid >= trust.quorum {
                    report.latest = Some((cp.size, cp.root));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::note::{COSIGNATURE_V1, ED25519, NoteSigner};

    fn key(name: &str, kind: u8, seed: u8) -> VerifierKey {
        NoteSigner::from_seed(name, kind, &[seed; 32])
            .unwrap()
            .verifier()
    }

    #[test]
    fn a_trust_file_names_the_log_its_witnesses_and_their_quorum() {
        let log = key("ribat.test/log", ED25519, 1);
        let (w1, w2) = (
            key("w1.ribat.test", COSIGNATURE_V1, 2),
            key("w2.ribat.test", COSIGNATURE_V1, 3),
        );
        let text = format!("# the fund's log\n\nlog {log}\nwitness {w1}\nwitness {w2}\nquorum 1\n");
        let t = Trust::parse(&text).unwrap();
        assert_eq!((t.log.id(), t.witnesses.len(), t.quorum), (log.id(), 2, 1));
        assert_eq!(t.witnesses[1].id(), w2.id());
        assert_eq!(Trust::parse(&t.to_text()).unwrap().to_text(), t.to_text());
        assert_eq!(
            t.to_text(),
            format!("log {log}\nwitness {w1}\nwitness {w2}\nquorum 1\n")
        );
        // Without a quorum line: every witness.
        let all = Trust::parse(&format!("log {log}\nwitness {w1}\nwitness {w2}\n")).unwrap();
        assert_eq!(all.quorum, 2);
        assert_eq!(
            Trust::parse(&format!("log {log}\nwitness {w1}\nquorum 1\n"))
                .unwrap()
                .quorum,
            1,
            "a quorum of all the witnesses"
        );
        for (bad, says) in [
            (format!("witness {w1}\n"), "no `log KEY` line"),
            (
                format!("log {log}\nwitness {w1}\nquorum 2\n"),
                "quorum 2 with 1 witnesses",
            ),
            (
                format!("log {log}\nquorum x\n"),
                "trust line 2: quorum is a number",
            ),
            (
                format!("log {log}\nwatcher {w1}\n"),
                "trust line 2: expected",
            ),
        ] {
            let e = Trust::parse(&bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
