//! The durable log: appends with group commit, the tree, checkpoints and their
//! cosignatures, the per-subject index, and publication as tiles.
//!
//! ```text
//! DIR/journal              every entry, durable (see `journal`)
//! DIR/checkpoint           the latest checkpoint with a quorum of cosignatures
//! DIR/checkpoint-history   every checkpoint made, JSON lines {"note": "…"}
//! DIR/tile/…               the tlog-tiles copy (see `tiles`)
//! ```
//!
//! **Group commit.** An append returns only once its entry is written and `fdatasync`ed.
//! Appenders queue their records; whoever finds no write in progress becomes the leader,
//! writes everything queued in one `write` and one `fdatasync`, and wakes the others. While
//! it syncs, the next group gathers. One fsync thus serves as many appends as arrive during
//! the previous one.
//!
//! **Fail closed.** If a write or sync fails, the appends of that group (and any queued
//! behind it) fail, and callers that release plaintext only after `append` returns release
//! nothing. What comes next depends on why:
//! - **The disk is full** (`ENOSPC`, `EDQUOT`): the group is cut back to the last good sync
//!   and that cut is synced; then the log takes appends again, so service resumes once space
//!   returns. Nothing since the last good sync is kept or trusted — what the 2018
//!   "fsyncgate" lesson asks (never retry a failed sync and believe it).
//! - **Anything else** (an I/O error, a read-only filesystem, a cut that cannot be made):
//!   the log refuses every later append until it is reopened: after a failed `fsync` the
//!   kernel may have dropped the dirty pages, and the device itself is suspect.

use crate::entry::{MAX_ENTRY, subject_of};
use crate::hash::{Hash, leaf};
use crate::journal::{self, Damage, MAGIC};
use crate::memtree::MemTree;
use crate::note::{Checkpoint, NoteError, NoteSigner, SignedNote};
use crate::tiles;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// Journal file name.
pub const JOURNAL: &str = "journal";
/// Latest cosigned checkpoint.
pub const CHECKPOINT: &str = "checkpoint";
/// Every checkpoint made.
pub const HISTORY: &str = "checkpoint-history";

/// Why the log refuses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    /// The log directory or a file in it cannot be used.
    #[error("audit log {path}: {reason}")]
    Io {
        /// Path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The journal is damaged (not a crash tail): someone altered it.
    #[error("audit log {path} is damaged: {damage}; run `ribat audit verify` on it")]
    Damaged {
        /// Path.
        path: String,
        /// Where and how.
        damage: Damage,
    },
    /// The journal no longer matches its latest checkpoint.
    #[error("audit log {path} does not match its checkpoint: {reason}")]
    Tampered {
        /// Path.
        path: String,
        /// How.
        reason: String,
    },
    /// An earlier write or sync failed; the log refuses appends until reopened.
    #[error("audit log {path} cannot write ({reason}); every read that needs it is refused")]
    Failed {
        /// Path.
        path: String,
        /// The first failure.
        reason: String,
    },
    /// An entry is empty or too long.
    #[error("an audit entry must be 1 to {MAX_ENTRY} bytes, this one is {0}")]
    EntrySize(usize),
    /// A size or index outside the log.
    #[error("{what} {value} is outside the log of size {size}")]
    OutOfRange {
        /// What was asked.
        what: &'static str,
        /// Value.
        value: u64,
        /// Log size.
        size: u64,
    },
    /// A checkpoint could not be made or read.
    #[error("checkpoint: {0}")]
    Note(#[from] NoteError),
    /// A lock was poisoned by a panicking thread.
    #[error("audit log state poisoned by an earlier panic")]
    Poisoned,
}

/// Why a group was not written.
struct WriteFailure {
    reason: String,
    /// The disk (or the quota) was full, and the journal is back at its last good sync:
    /// the log may go on once space returns.
    disk_full: bool,
}

/// Whether an error says the filesystem (or the user's quota) has no room left.
fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// What opening found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Entries in the log.
    pub entries: u64,
    /// Bytes of an unfinished final append cut away (a crash).
    pub torn_bytes: u64,
}

struct State {
    tree: MemTree,
    /// Offset of each record in the journal.
    offsets: Vec<u64>,
    /// Journal length of the durable records.
    durable_len: u64,
    /// Next index to hand out.
    next_index: u64,
    /// Records queued for the next group.
    queue: Vec<u8>,
    /// Leaf hashes and subjects of the queued records, in order.
    queued: Vec<(Hash, Option<String>, u64)>,
    writing: bool,
    /// Threads whose entries are queued, to wake when their group is written.
    waiters: Vec<std::thread::Thread>,
    /// Why the log refuses every append until reopened.
    failed: Option<String>,
    /// Groups lost to a full disk so far: an appender whose entries were queued before the
    /// last such loss learns that they were not written (their indices are given again).
    lost: u64,
    /// Why the last group was lost.
    lost_reason: String,
    subjects: HashMap<String, Vec<u64>>,
    published: u64,
    groups: u64,
}

/// An open audit log.
pub struct Log {
    dir: PathBuf,
    origin: String,
    state: Mutex<State>,
    writer: Mutex<File>,
    reader: File,
    checkpointing: Mutex<()>,
    /// Held for as long as the log is open: one writer process per directory.
    _lock: File,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Log({})", self.dir.display())
    }
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> LogError {
    LogError::Io {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

/// One witness, as the log sees it.
pub trait Cosigner: Send + Sync {
    /// The witness's key name.
    fn name(&self) -> String;
    /// The key its cosignatures verify under (pinned in the log's trust file).
    fn verifier(&self) -> crate::VerifierKey;
    /// Asks for a cosignature of `note`, proving consistency from `old_size` (the size the
    /// log believes the witness last cosigned). Returns the cosignature line.
    fn cosign(&self, old_size: u64, proof: &[Hash], note: &str) -> Result<String, CosignError>;
    /// Whether it checks the entries themselves ([`Self::cosign_entries`]): a witness on
    /// another host that believes only what it cosigned.
    fn wants_entries(&self) -> bool {
        false
    }
    /// Same, shown the tree's right edge at `old_size` and the entries from there to the
    /// checkpoint's size, from which the witness computes the new root itself.
    fn cosign_entries(
        &self,
        old_size: u64,
        proof: &[Hash],
        note: &str,
        _edge: &[Hash],
        _entries: &[Vec<u8>],
    ) -> Result<String, CosignError> {
        self.cosign(old_size, proof, note)
    }
}

/// Why a witness did not cosign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CosignError {
    /// The witness last cosigned another size: retry with a proof from it.
    #[error("the witness last cosigned size {0}")]
    Conflict(u64),
    /// The checkpoint does not extend what the witness cosigned before: a fork.
    #[error("FORK: {0}")]
    Inconsistent(String),
    /// The request is malformed (bad signature, origin, proof shape).
    #[error("refused: {0}")]
    Refused(String),
    /// The witness could not persist its state or is unreachable.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// What a checkpoint round produced.
#[derive(Debug, Clone)]
pub struct CheckpointReport {
    /// The checkpoint with every signature it got.
    pub note: String,
    /// Tree size.
    pub size: u64,
    /// Witnesses that cosigned.
    pub cosigned: Vec<String>,
    /// Witnesses that refused, and why. A `CosignError::Inconsistent` here is an alert.
    pub refused: Vec<(String, CosignError)>,
    /// Whether the quorum was met (and `DIR/checkpoint` now holds this note).
    pub quorum_met: bool,
}

impl Log {
    /// Opens (or creates) the log in `dir`, whose checkpoints carry `origin`.
    pub fn open(dir: &Path, origin: &str) -> Result<(Self, OpenReport), LogError> {
        std::fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let lock = lock_dir(dir).map_err(|reason| LogError::Io {
            path: dir.display().to_string(),
            reason,
        })?;
        let path = dir.join(JOURNAL);
        let mut tree = MemTree::new();
        let mut offsets = Vec::new();
        let mut subjects: HashMap<String, Vec<u64>> = HashMap::new();
        // What the latest checkpoint signed must be intact: never cut as a crash tail.
        let cp_path = dir.join(CHECKPOINT);
        let checkpoint = match std::fs::read_to_string(&cp_path) {
            Ok(text) => Some(Checkpoint::parse(&SignedNote::parse(&text)?.text)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&cp_path, e)),
        };
        let protected = checkpoint.as_ref().map_or(0, |c| c.size);
        let mut pos = MAGIC.len() as u64;
        let end = journal::scan(&path, protected, |i, entry, h| {
            tree.push(*h);
            offsets.push(pos);
            pos += (entry.len() + journal::OVERHEAD) as u64;
            if let Some(s) = subject_of(entry) {
                subjects.entry(s).or_default().push(i);
            }
            Ok(())
        })
        .map_err(|damage| LogError::Damaged {
            path: path.display().to_string(),
            damage,
        })?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        let mut durable_len = end.valid_len;
        if durable_len == 0 {
            file.set_len(0).map_err(|e| io_err(&path, e))?;
            file.write_all_at(MAGIC, 0).map_err(|e| io_err(&path, e))?;
            durable_len = MAGIC.len() as u64;
        } else if end.torn_bytes > 0 {
            file.set_len(durable_len).map_err(|e| io_err(&path, e))?;
        }
        file.sync_all().map_err(|e| io_err(&path, e))?;
        sync_dir(dir)?;
        use std::io::Seek;
        file.seek(std::io::SeekFrom::Start(durable_len))
            .map_err(|e| io_err(&path, e))?;
        let reader = File::open(&path).map_err(|e| io_err(&path, e))?;
        // The journal must still contain what the latest checkpoint signed.
        if let Some(cp) = &checkpoint {
            match tree.root(cp.size) {
                None => {
                    return Err(LogError::Tampered {
                        path: path.display().to_string(),
                        reason: format!(
                            "the checkpoint covers {} entries, the journal has {}",
                            cp.size,
                            tree.size()
                        ),
                    });
                }
                Some(r) if !r.ct_eq(&cp.root) => {
                    return Err(LogError::Tampered {
                        path: path.display().to_string(),
                        reason: format!(
                            "the first {} entries no longer hash to the checkpoint's root",
                            cp.size
                        ),
                    });
                }
                Some(_) => {}
            }
        }
        let entries = tree.size();
        let log = Self {
            dir: dir.to_owned(),
            origin: origin.to_owned(),
            state: Mutex::new(State {
                tree,
                offsets,
                durable_len,
                next_index: entries,
                queue: Vec::new(),
                queued: Vec::new(),
                writing: false,
                waiters: Vec::new(),
                failed: None,
                lost: 0,
                lost_reason: String::new(),
                subjects,
                // Tiles up to the latest checkpoint were published before it was kept.
                published: protected - protected % tiles::WIDTH,
                groups: 0,
            }),
            writer: Mutex::new(file),
            reader,
            checkpointing: Mutex::new(()),
            _lock: lock,
        };
        Ok((
            log,
            OpenReport {
                entries,
                torn_bytes: end.torn_bytes,
            },
        ))
    }

    fn state(&self) -> Result<MutexGuard<'_, State>, LogError> {
        self.state.lock().map_err(|_| LogError::Poisoned)
    }

    fn failed(&self, reason: &str) -> LogError {
        LogError::Failed {
            path: self.dir.display().to_string(),
            reason: reason.to_owned(),
        }
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The checkpoint origin.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Appends one entry; returns its index once it is durable.
    pub fn append(&self, entry: &[u8]) -> Result<u64, LogError> {
        self.append_all(&[entry]).map(|r| r.start)
    }

    /// Appends entries with consecutive indices; returns once all are durable.
    pub fn append_all(&self, entries: &[&[u8]]) -> Result<std::ops::Range<u64>, LogError> {
        for e in entries {
            if e.is_empty() || e.len() > MAX_ENTRY {
                return Err(LogError::EntrySize(e.len()));
            }
        }
        // Hash outside the lock: appenders hash in parallel.
        let hashed: Vec<(Hash, Option<String>)> =
            entries.iter().map(|e| (leaf(e), subject_of(e))).collect();
        let mut st = self.state()?;
        if let Some(r) = &st.failed {
            return Err(self.failed(r));
        }
        let lost_before = st.lost;
        let first = st.next_index;
        for (e, (h, subject)) in entries.iter().zip(hashed) {
            let i = st.next_index;
            st.next_index += 1;
            let rec = journal::record(i, e, &h);
            st.queue.extend_from_slice(&rec);
            st.queued.push((h, subject, rec.len() as u64));
        }
        let last = st.next_index;
        // Sleep until the group holding these entries is written; only the threads of that
        // group are woken (waking every appender on every group costs more CPU than the
        // fsync itself on two cores).
        st.waiters.push(std::thread::current());
        loop {
            // Before the size: once a group is lost its indices are given again, and the
            // tree may grow past `last` with others' entries.
            if st.lost != lost_before {
                return Err(self.failed(&st.lost_reason));
            }
            if st.tree.size() >= last {
                return Ok(first..last);
            }
            if let Some(r) = &st.failed {
                return Err(self.failed(r));
            }
            if st.writing {
                drop(st);
                std::thread::park();
                st = self.state()?;
                continue;
            }
            // Lead: write everything queued.
            st.writing = true;
            let bytes = std::mem::take(&mut st.queue);
            let queued = std::mem::take(&mut st.queued);
            let waiters = std::mem::take(&mut st.waiters);
            let at = st.durable_len;
            drop(st);
            let result = self.write_group(&bytes, at);
            st = self.state()?;
            st.writing = false;
            match result {
                Ok(()) => {
                    let mut pos = at;
                    for (h, subject, len) in queued {
                        let i = st.tree.size();
                        st.tree.push(h);
                        st.offsets.push(pos);
                        pos += len;
                        if let Some(s) = subject {
                            st.subjects.entry(s).or_default().push(i);
                        }
                    }
                    st.durable_len = pos;
                    st.groups += 1;
                }
                Err(WriteFailure { reason, disk_full }) => {
                    if disk_full {
                        // Cut back and synced: every entry not yet written is dropped (its
                        // appender is told), and the log goes on from its last good sync.
                        st.lost += 1;
                        st.lost_reason = reason;
                        st.queue.clear();
                        st.queued.clear();
                        st.next_index = st.tree.size();
                    } else {
                        st.failed = Some(reason);
                    }
                    // Everyone waiting must learn it.
                    for t in &st.waiters {
                        t.unpark();
                    }
                    if disk_full {
                        st.waiters.clear();
                    }
                }
            }
            // Hand the lead to the next group, if one gathered meanwhile.
            if let Some(next) = st.waiters.first() {
                next.unpark();
            }
            let me = std::thread::current().id();
            for t in waiters.iter().filter(|t| t.id() != me) {
                t.unpark();
            }
        }
    }

    fn write_group(&self, bytes: &[u8], at: u64) -> Result<(), WriteFailure> {
        let mut f = self.writer.lock().map_err(|_| WriteFailure {
            reason: "writer poisoned".into(),
            disk_full: false,
        })?;
        // A sync at least every MAX_GROUP bytes bounds what a crash can leave unfinished.
        let r = bytes
            .chunks(journal::MAX_GROUP)
            .try_for_each(|chunk| f.write_all(chunk).and_then(|()| f.sync_data()));
        if let Err(e) = r {
            // Cut back what may have landed, so a reopen does not see half a group as
            // damage; if even that fails, the scan at reopen treats it as a torn tail.
            let full = is_disk_full(&e);
            let cut = {
                use std::io::Seek;
                f.set_len(at)
                    .and_then(|()| f.seek(std::io::SeekFrom::Start(at)).map(|_| ()))
                    .and_then(|()| f.sync_all())
            };
            return Err(WriteFailure {
                reason: e.to_string(),
                disk_full: full && cut.is_ok(),
            });
        }
        Ok(())
    }

    /// Number of durable entries.
    pub fn size(&self) -> Result<u64, LogError> {
        Ok(self.state()?.tree.size())
    }

    /// Number of fsync groups written since open.
    pub fn groups(&self) -> Result<u64, LogError> {
        Ok(self.state()?.groups)
    }

    /// The root at `size`.
    pub fn root(&self, size: u64) -> Result<Hash, LogError> {
        let st = self.state()?;
        st.tree.root(size).ok_or(LogError::OutOfRange {
            what: "size",
            value: size,
            size: st.tree.size(),
        })
    }

    /// The right edge of the tree at `size` ([`crate::frontier::Frontier`]).
    pub fn frontier(&self, size: u64) -> Result<Vec<Hash>, LogError> {
        let st = self.state()?;
        st.tree.frontier(size).ok_or(LogError::OutOfRange {
            what: "size",
            value: size,
            size: st.tree.size(),
        })
    }

    /// The leaf hash of entry `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, LogError> {
        let st = self.state()?;
        st.tree.leaf(index).ok_or(LogError::OutOfRange {
            what: "index",
            value: index,
            size: st.tree.size(),
        })
    }

    /// The inclusion proof of `index` in the tree of `size`.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, LogError> {
        let st = self.state()?;
        st.tree
            .inclusion_proof(index, size)
            .ok_or(LogError::OutOfRange {
                what: "index or size",
                value: index.max(size),
                size: st.tree.size(),
            })
    }

    /// The consistency proof between two sizes.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Hash>, LogError> {
        let st = self.state()?;
        st.tree
            .consistency_proof(old, new)
            .ok_or(LogError::OutOfRange {
                what: "size",
                value: old.max(new),
                size: st.tree.size(),
            })
    }

    /// The bytes of entry `index`.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, LogError> {
        let off = {
            let st = self.state()?;
            *st.offsets
                .get(usize::try_from(index).unwrap_or(usize::MAX))
                .ok_or(LogError::OutOfRange {
                    what: "index",
                    value: index,
                    size: st.tree.size(),
                })?
        };
        let path = self.dir.join(JOURNAL);
        let mut head = [0u8; 4];
        self.reader
            .read_exact_at(&mut head, off)
            .map_err(|e| io_err(&path, e))?;
        let len = u32::from_be_bytes(head) as usize;
        let mut buf = vec![0u8; len];
        self.reader
            .read_exact_at(&mut buf, off + 12)
            .map_err(|e| io_err(&path, e))?;
        Ok(buf)
    }

    /// Indices of the entries about `subject`, in order.
    pub fn entries_of(&self, subject: &str) -> Result<Vec<u64>, LogError> {
        Ok(self
            .state()?
            .subjects
            .get(subject)
            .cloned()
            .unwrap_or_default())
    }

    /// The latest checkpoint with a quorum of cosignatures, as text.
    pub fn latest_checkpoint(&self) -> Result<Option<String>, LogError> {
        let p = self.dir.join(CHECKPOINT);
        match std::fs::read_to_string(&p) {
            Ok(t) => Ok(Some(t)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&p, e)),
        }
    }

    /// The last `n` checkpoints this log signed, newest first, as their notes with the
    /// cosignatures they gathered (a quorum or not). The history grows by a line at every
    /// checkpoint for as long as the log lives, so it is read from its end.
    pub fn recent_checkpoints(&self, n: usize) -> Result<Vec<String>, LogError> {
        const BLOCK: u64 = 64 * 1024;
        let p = self.dir.join(HISTORY);
        let f = match File::open(&p) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&p, e)),
        };
        let len = f.metadata().map_err(|e| io_err(&p, e))?.len();
        let (mut tail, mut from) = (Vec::new(), len);
        while from > 0 && tail.iter().filter(|b| **b == b'\n').count() <= n {
            let start = from.saturating_sub(BLOCK);
            let mut block = vec![0u8; usize::try_from(from - start).unwrap_or(0)];
            f.read_exact_at(&mut block, start)
                .map_err(|e| io_err(&p, e))?;
            block.extend_from_slice(&tail);
            (tail, from) = (block, start);
        }
        let text = String::from_utf8_lossy(&tail);
        let mut lines: Vec<&str> = text.lines().collect();
        if from > 0 && !lines.is_empty() {
            lines.remove(0); // cut by the block's start
        }
        Ok(lines
            .iter()
            .rev()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                v.get("note")?.as_str().map(str::to_owned)
            })
            .take(n)
            .collect())
    }

    /// Signs a checkpoint of everything durable, asks each witness to cosign it, keeps it
    /// (history always; `DIR/checkpoint` when `quorum` witnesses cosigned) and publishes
    /// the tiles up to it.
    pub fn checkpoint(
        &self,
        signer: &NoteSigner,
        witnesses: &[&dyn Cosigner],
        quorum: usize,
    ) -> Result<CheckpointReport, LogError> {
        let _one = self.checkpointing.lock().map_err(|_| LogError::Poisoned)?;
        let size = self.size()?;
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size,
            root: self.root(size)?,
            extensions: Vec::new(),
        };
        let mut note = cp.sign(signer);
        let mut cosigned = Vec::new();
        let mut refused = Vec::new();
        // Without a record of what each witness saw, start from the last cosigned size.
        let last = self
            .latest_checkpoint()?
            .and_then(|t| SignedNote::parse(&t).ok())
            .and_then(|n| Checkpoint::parse(&n.text).ok())
            .map_or(0, |c| c.size.min(size));
        // Each witness sees the note as the log signed it.
        let log_signed = note.to_text();
        // The edge and entries shown to witnesses that check them, read once per starting
        // size (witnesses are usually all at the same one).
        let mut shown: Vec<(u64, Vec<Hash>, Vec<Vec<u8>>)> = Vec::new();
        for w in witnesses {
            let mut old = last;
            let mut answer = Err(CosignError::Unavailable("not asked".into()));
            for _ in 0..2 {
                let proof = self.consistency_proof(old, size)?;
                answer = if w.wants_entries() {
                    let k = match shown.iter().position(|(o, _, _)| *o == old) {
                        Some(k) => k,
                        None => {
                            let entries = (old..size)
                                .map(|i| self.entry(i))
                                .collect::<Result<Vec<_>, _>>()?;
                            shown.push((old, self.frontier(old)?, entries));
                            shown.len() - 1
                        }
                    };
                    let (_, edge, entries) = &shown[k];
                    w.cosign_entries(old, &proof, &log_signed, edge, entries)
                } else {
                    w.cosign(old, &proof, &log_signed)
                };
                match &answer {
                    Err(CosignError::Conflict(s)) if *s <= size && *s != old => old = *s,
                    _ => break,
                }
            }
            match answer.and_then(|line| {
                note.add_lines(&line)
                    .map_err(|e| CosignError::Refused(e.to_string()))
            }) {
                Ok(()) => cosigned.push(w.name()),
                Err(e) => refused.push((w.name(), e)),
            }
        }
        let full = note.to_text();
        let quorum_met = cosigned.len() >= quorum;
        // Tiles first: a kept checkpoint promises its tiles exist (open relies on it).
        self.publish(size)?;
        self.keep(&full, quorum_met)?;
        Ok(CheckpointReport {
            note: full,
            size,
            cosigned,
            refused,
            quorum_met,
        })
    }

    fn keep(&self, note: &str, latest: bool) -> Result<(), LogError> {
        let hist = self.dir.join(HISTORY);
        let line = serde_json::json!({ "note": note }).to_string();
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&hist)
            .map_err(|e| io_err(&hist, e))?;
        f.write_all(format!("{line}\n").as_bytes())
            .and_then(|()| f.sync_data())
            .map_err(|e| io_err(&hist, e))?;
        if latest {
            let p = self.dir.join(CHECKPOINT);
            write_atomic(&p, note.as_bytes())?;
        }
        Ok(())
    }

    /// Writes the tiles up to `size` (hashes and entry bundles).
    pub fn publish(&self, size: u64) -> Result<(), LogError> {
        let (hash_tiles, from) = {
            let st = self.state()?;
            let from = st.published;
            let t = tiles::hash_tiles(&self.dir, &st.tree, size, from)
                .map_err(|e| io_err(&self.dir, e))?;
            (t, from)
        };
        tiles::write_tiles(&hash_tiles).map_err(|e| io_err(&self.dir, e))?;
        tiles::publish_entries(&self.dir, size, from, |i| {
            self.entry(i)
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
        .map_err(|e| io_err(&self.dir, e))?;
        let mut st = self.state()?;
        // Full tiles below this point are written once and for all.
        st.published = st.published.max(size - size % tiles::WIDTH);
        Ok(())
    }
}

/// Takes `DIR/lock` exclusively for the life of the returned file, so that two processes
/// never append to the same directory (each would think it owns the tree). The kernel
/// releases the lock when the process ends, however it ends.
pub fn lock_dir(dir: &Path) -> Result<File, String> {
    let path = dir.join("lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(format!(
            "another process has {} open (a second `ribat serve` or custodian on the same directory?); stop it first",
            dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

/// Writes a file by rename, synced, so a reader sees the old or the new one whole.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| io_err(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io_err(path, e))?;
    if let Some(d) = path.parent() {
        sync_dir(d)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err(dir, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_full_disk_or_quota_is_told_from_other_write_errors() {
        use std::io::{Error, ErrorKind};
        assert!(is_disk_full(&Error::from(ErrorKind::StorageFull)));
        assert!(is_disk_full(&Error::from(ErrorKind::QuotaExceeded)));
        assert!(!is_disk_full(&Error::from(ErrorKind::PermissionDenied)));
        assert!(!is_disk_full(&Error::other("no")));
    }

    #[test]
    fn a_log_shows_its_directory() {
        let d = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(&d.path().join("log"), "ribat.test/debug").unwrap();
        assert_eq!(
            format!("{log:?}"),
            format!("Log({})", d.path().join("log").display())
        );
        assert_eq!(log.origin(), "ribat.test/debug");
    }

    #[test]
    fn an_entry_is_one_to_max_entry_bytes() {
        let d = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(d.path(), "ribat.test/sizes").unwrap();
        assert!(matches!(log.append(b""), Err(LogError::EntrySize(0))));
        let over = vec![b'x'; MAX_ENTRY + 1];
        assert!(matches!(log.append(&over), Err(LogError::EntrySize(n)) if n == MAX_ENTRY + 1));
        assert_eq!(log.append(&vec![b'x'; MAX_ENTRY]).unwrap(), 0);
    }

    #[test]
    fn entries_appended_together_are_read_back_each_at_its_own_place() {
        let d = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(d.path(), "ribat.test/group").unwrap();
        assert_eq!(log.append_all(&[b"one", b"two", b"three"]).unwrap(), 0..3);
        assert_eq!(log.append(b"four").unwrap(), 3);
        for (i, e) in ["one", "two", "three", "four"].iter().enumerate() {
            assert_eq!(log.entry(i as u64).unwrap(), e.as_bytes());
        }
        assert_eq!(log.groups().unwrap(), 2, "one fsync group per call here");
        // Each entry's inclusion proof leads from its leaf to the log's root.
        let root = log.root(4).unwrap();
        for i in 0..4 {
            let proof = log.inclusion_proof(i, 4).unwrap();
            let leaf = log.leaf_hash(i).unwrap();
            crate::proof::verify_inclusion(i, 4, &leaf, &proof, &root).unwrap();
        }
        let old = log.root(3).unwrap();
        let proof = log.consistency_proof(3, 4).unwrap();
        crate::proof::verify_consistency(3, 4, &proof, &old, &root).unwrap();
        assert!(log.inclusion_proof(4, 4).is_err());
    }

    #[test]
    fn appenders_on_many_threads_each_learn_their_entries_are_durable() {
        let d = tempfile::tempdir().unwrap();
        let (log, _) = Log::open(d.path(), "ribat.test/threads").unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let log = &log;
                s.spawn(move || {
                    for i in 0..50 {
                        let e = format!("thread {t} entry {i}");
                        let at = log.append(e.as_bytes()).unwrap();
                        assert_eq!(log.entry(at).unwrap(), e.as_bytes());
                    }
                });
            }
        });
        assert_eq!(log.size().unwrap(), 400);
    }

    #[test]
    fn a_torn_tail_is_cut_from_the_journal_when_the_log_opens() {
        let d = tempfile::tempdir().unwrap();
        {
            let (log, _) = Log::open(d.path(), "ribat.test/torn").unwrap();
            log.append_all(&[b"one", b"two"]).unwrap();
        }
        let journal = d.path().join(JOURNAL);
        let good = std::fs::metadata(&journal).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&journal).unwrap();
        f.write_all(&[0; 100]).unwrap();
        drop(f);
        let (log, report) = Log::open(d.path(), "ribat.test/torn").unwrap();
        assert_eq!(
            report,
            OpenReport {
                entries: 2,
                torn_bytes: 100
            }
        );
        assert_eq!(std::fs::metadata(&journal).unwrap().len(), good);
        drop(log);
        // Opened again: nothing torn any more.
        let (_, report) = Log::open(d.path(), "ribat.test/torn").unwrap();
        assert_eq!(report.torn_bytes, 0);
    }

    #[test]
    fn a_checkpoint_that_cannot_be_read_stops_the_opening() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join(CHECKPOINT)).unwrap();
        let e = Log::open(d.path(), "ribat.test/debug").unwrap_err();
        assert!(
            matches!(&e, LogError::Io { path, .. } if path.ends_with(CHECKPOINT)),
            "{e}"
        );
    }

    #[test]
    fn a_partial_tile_at_the_last_checkpoint_is_completed_after_the_log_reopens() {
        let d = tempfile::tempdir().unwrap();
        let signer = NoteSigner::generate("ribat.test/tiles", crate::note::ED25519).unwrap();
        let entry = |i: u32| format!("entry {i}").into_bytes();
        {
            let (log, _) = Log::open(d.path(), "ribat.test/tiles").unwrap();
            for i in 0..200 {
                log.append(&entry(i)).unwrap();
            }
            log.checkpoint(&signer, &[], 0).unwrap();
        }
        let partial = tiles::tile_path(d.path(), "entries", 0, 200);
        assert!(partial.exists());
        let (log, _) = Log::open(d.path(), "ribat.test/tiles").unwrap();
        for i in 200..300 {
            log.append(&entry(i)).unwrap();
        }
        log.checkpoint(&signer, &[], 0).unwrap();
        assert!(tiles::tile_path(d.path(), "entries", 0, tiles::WIDTH).exists());
        assert!(tiles::tile_path(d.path(), "entries", 1, 44).exists());
    }

    #[test]
    fn a_partial_tile_is_completed_by_a_later_checkpoint_of_the_same_process() {
        let d = tempfile::tempdir().unwrap();
        let signer = NoteSigner::generate("ribat.test/tiles", crate::note::ED25519).unwrap();
        let (log, _) = Log::open(d.path(), "ribat.test/tiles").unwrap();
        for size in [200, 300] {
            while log.size().unwrap() < size {
                log.append(format!("entry {}", log.size().unwrap()).as_bytes())
                    .unwrap();
            }
            log.checkpoint(&signer, &[], 0).unwrap();
        }
        assert!(tiles::tile_path(d.path(), "entries", 0, tiles::WIDTH).exists());
    }

    #[test]
    fn the_recent_checkpoints_are_read_newest_first_from_the_end_of_a_long_history() {
        let d = tempfile::tempdir().unwrap();
        let signer = NoteSigner::generate("ribat.test/history", crate::note::ED25519).unwrap();
        let (log, _) = Log::open(d.path(), "ribat.test/history").unwrap();
        assert!(log.recent_checkpoints(5).unwrap().is_empty());
        // Enough checkpoints that the history spans several of the blocks read.
        for i in 0..1000u32 {
            log.append(format!("entry {i}").as_bytes()).unwrap();
            log.checkpoint(&signer, &[], 0).unwrap();
        }
        assert!(std::fs::metadata(d.path().join(HISTORY)).unwrap().len() > 2 * 64 * 1024);
        let sizes = |notes: Vec<String>| -> Vec<u64> {
            notes
                .iter()
                .map(|n| {
                    Checkpoint::parse(&SignedNote::parse(n).unwrap().text)
                        .unwrap()
                        .size
                })
                .collect()
        };
        assert_eq!(
            sizes(log.recent_checkpoints(3).unwrap()),
            vec![1000, 999, 998]
        );
        let all = sizes(log.recent_checkpoints(5000).unwrap());
        assert_eq!(all.len(), 1000);
        assert_eq!(all.first(), Some(&1000));
        assert_eq!(all.last(), Some(&1));
    }

    /// A witness that knows only `cosign`: what the trait's defaults make of it.
    struct Plain(NoteSigner);

    impl Cosigner for Plain {
        fn name(&self) -> String {
            "plain".into()
        }
        fn verifier(&self) -> crate::VerifierKey {
            self.0.verifier()
        }
        fn cosign(&self, old_size: u64, proof: &[Hash], note: &str) -> Result<String, CosignError> {
            Ok(format!("{old_size} {} {note}", proof.len()))
        }
    }

    #[test]
    fn a_witness_that_only_cosigns_wants_no_entries_and_cosigns_the_same_when_shown_them() {
        let w = Plain(NoteSigner::generate("plain", crate::note::COSIGNATURE_V1).unwrap());
        assert!(!w.wants_entries());
        let proof = [Hash([1; 32])];
        assert_eq!(
            w.cosign_entries(3, &proof, "n", &[], &[b"e".to_vec()])
                .unwrap(),
            "3 1 n"
        );
    }
}
